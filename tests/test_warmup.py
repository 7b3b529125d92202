"""tf_serving_warmup_requests: PredictionLog records that TF Serving's loader can read (docs/tf-serving.md §2.6)."""

from __future__ import annotations

import numpy as np
import pytest

from tfsconvert.model import TensorSpec
from conftest import read_warmup, write_warmup
from tfsconvert.samples import synthesize
from tfsconvert.warmup import MAX_RECORDS

INPUTS = {"x": TensorSpec("DT_FLOAT", [-1, 4]), "ids": TensorSpec("DT_INT64", [-1]),
          "text": TensorSpec("DT_STRING", [-1])}


@pytest.fixture(scope="module")
def tf():
    from tfsconvert.quiet import native_stderr_silenced

    with native_stderr_silenced():
        import tensorflow
    return tensorflow


def test_round_trip_through_the_official_protos(tmp_path, tf):
    samples = synthesize(INPUTS, 3, seed=7)
    path = tmp_path / "tf_serving_warmup_requests"
    assert write_warmup(path, samples, "mlp", "serving_default") == 3
    logs = read_warmup(path)
    assert len(logs) == 3
    for log, sample in zip(logs, samples):
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        assert (request.model_spec.name, request.model_spec.signature_name) == ("mlp", "serving_default")
        assert sorted(request.inputs) == sorted(INPUTS)
        assert tf.dtypes.as_dtype(request.inputs["x"].dtype).name == "float32"
        assert tf.dtypes.as_dtype(request.inputs["ids"].dtype).name == "int64"
        for alias, array in sample.items():
            decoded = tf.make_ndarray(request.inputs[alias])
            assert decoded.shape == array.shape
            assert decoded.tolist() == array.tolist()


def test_tensorflow_reads_every_record_as_a_prediction_log(tmp_path, tf):
    from tensorflow_serving.apis import prediction_log_pb2

    path = tmp_path / "tf_serving_warmup_requests"
    write_warmup(path, synthesize(INPUTS, 2), "m", "classify_me")
    records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    assert len(records) == 2
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record)
        assert log.predict_log.request.model_spec.signature_name == "classify_me"
        assert tf.make_ndarray(log.predict_log.request.inputs["text"]).dtype == object


def test_at_most_max_records_are_written(tmp_path):
    sample = {"x": np.zeros((1, 1), np.float32)}
    path = tmp_path / "tf_serving_warmup_requests"
    assert MAX_RECORDS == 1000
    assert write_warmup(path, [sample] * (MAX_RECORDS + 5), "m", "serving_default") == MAX_RECORDS
    assert len(read_warmup(path)) == MAX_RECORDS


def test_no_samples_is_an_empty_file_tf_serving_accepts(tmp_path):
    path = tmp_path / "tf_serving_warmup_requests"
    assert write_warmup(path, [], "m", "serving_default") == 0
    assert path.read_bytes() == b"" and read_warmup(path) == []
