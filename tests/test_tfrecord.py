"""TFRecord framing without TensorFlow, checked against TensorFlow's own reader and writer (docs/tf-serving.md §2.6)."""

from __future__ import annotations

import pytest

from tfsconvert.tfrecord import TFRecordError, crc32c, read_records, write_records

RECORDS = [b"first", b"", b"\x00\xff" * 300, "caf\u00e9".encode()]


@pytest.fixture(scope="module")
def tf():
    from tfsconvert.quiet import native_stderr_silenced

    with native_stderr_silenced():
        import tensorflow
    return tensorflow


def tf_read(tf, path) -> list[bytes]:
    return list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())


def tf_error(tf, path) -> str:
    with pytest.raises(tf.errors.DataLossError) as caught:
        tf_read(tf, path)
    return caught.value.message


def test_crc32c_known_vector():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


def test_tensorflow_reads_our_file(tmp_path, tf):
    path = tmp_path / "ours.tfrecord"
    assert write_records(path, iter(RECORDS)) == len(RECORDS)
    assert tf_read(tf, path) == RECORDS


def test_we_read_tensorflows_file(tmp_path, tf):
    path = tmp_path / "theirs.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in RECORDS:
            writer.write(record)
    assert list(read_records(path)) == RECORDS
    # Byte-for-byte the same framing, not merely readable.
    write_records(tmp_path / "ours.tfrecord", RECORDS)
    assert (tmp_path / "ours.tfrecord").read_bytes() == path.read_bytes()


@pytest.mark.parametrize("position, offset", [(3, 0), (9, 0), (14, 12), (24, 12)],
                         ids=["length", "length-crc", "data", "data-crc"])
def test_flipped_byte_is_a_corrupted_record(tmp_path, tf, position, offset):
    path = tmp_path / "bad.tfrecord"
    write_records(path, [b"hello world"])
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(TFRecordError, match=f"^corrupted record at {offset}") as caught:
        list(read_records(path))
    assert caught.value.offset == offset
    assert str(caught.value) in tf_error(tf, path)


def test_corruption_at_offset_0_gets_tensorflows_reminder(tmp_path):
    path = tmp_path / "not-a-tfrecord"
    path.write_bytes(b"this is a JSON file, not TFRecord")
    with pytest.raises(TFRecordError) as caught:
        list(read_records(path))
    assert str(caught.value) == "corrupted record at 0 (Is this even a TFRecord file?)"


# TensorFlow 2.21 reports a cut in the data at the record's start offset.
@pytest.mark.parametrize("keep, offset", [(12, 0), (20, 0), (26, 0), (27 + 14, 27)],
                         ids=["header-only", "in-data", "no-data-crc", "second-record"])
def test_truncated_file_is_a_truncated_record(tmp_path, tf, keep, offset):
    path = tmp_path / "cut.tfrecord"
    write_records(path, [b"hello world", b"second"])
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(TFRecordError) as caught:
        list(read_records(path))
    assert str(caught.value) == f"truncated record at {offset}" and caught.value.offset == offset
    assert str(caught.value) in tf_error(tf, path)


@pytest.mark.parametrize("keep, records", [(5, []), (27 + 11, [b"hello world"])])
def test_partial_header_reads_as_end_of_file_like_tensorflow(tmp_path, tf, keep, records):
    path = tmp_path / "cut.tfrecord"
    write_records(path, [b"hello world", b"second"])
    path.write_bytes(path.read_bytes()[:keep])
    assert list(read_records(path)) == records == tf_read(tf, path)


def test_records_before_the_damage_are_yielded(tmp_path):
    path = tmp_path / "cut.tfrecord"
    write_records(path, [b"hello world", b"second"])
    path.write_bytes(path.read_bytes()[:-1])
    records = read_records(path)
    assert next(records) == b"hello world"
    with pytest.raises(TFRecordError, match="truncated record at 27"):
        next(records)


def test_empty_file_has_no_records(tmp_path, tf):
    path = tmp_path / "empty.tfrecord"
    assert write_records(path, []) == 0
    assert path.read_bytes() == b""
    assert list(read_records(path)) == [] == tf_read(tf, path)
