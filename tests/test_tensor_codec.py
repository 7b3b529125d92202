"""tfsconvert.tensor_codec against TensorFlow's own make_tensor_proto / make_ndarray, and our
PredictRequest/PredictResponse declarations against the official tensorflow_serving protos."""

import numpy as np
import pytest

from tfsconvert import tfproto
from tfsconvert.tensor_codec import from_proto, to_proto

ARRAYS = [
    (np.array([[0.5, -1.25], [3.0, 1e-8]], np.float32), "DT_FLOAT"),
    (np.array([1.5, 2.5], np.float64), "DT_DOUBLE"),
    (np.array([[1, -2, 3]], np.int32), "DT_INT32"),
    (np.array([2 ** 40, -7], np.int64), "DT_INT64"),
    (np.array([True, False]), "DT_BOOL"),
    (np.array([0.5, 2.0], np.float16), "DT_HALF"),
    (np.array(7.0, np.float32), "DT_FLOAT"),  # a scalar
]


@pytest.fixture(scope="module")
def tf():
    from tfsconvert.runtimes.tf import import_tf

    return import_tf()


def _official(tf, ours):
    """Our TensorProto re-read as TensorFlow's own message."""
    return tf.make_tensor_proto(0).__class__.FromString(ours.SerializeToString())


@pytest.mark.parametrize("array, dtype", ARRAYS)
def test_arrays_round_trip_through_tensorflow(tf, array, dtype):
    written = tf.make_ndarray(_official(tf, to_proto(array, dtype)))
    assert written.dtype == array.dtype and np.array_equal(written, array)
    read = from_proto(tfproto.parse_binary("TensorProto", tf.make_tensor_proto(array).SerializeToString()))
    assert read.dtype == array.dtype and read.shape == array.shape and np.array_equal(read, array)


def test_strings(tf):
    array = np.array([[b"a", "b\u00e9".encode()], [b"", b"\xff"]], dtype=object)
    assert tf.make_ndarray(_official(tf, to_proto(array, "DT_STRING"))).tolist() == array.tolist()
    proto = tfproto.parse_binary("TensorProto", tf.make_tensor_proto(array).SerializeToString())
    assert from_proto(proto).tolist() == array.tolist()


def test_typed_value_lists_and_their_broadcast(tf):
    """Servers may answer in float_val/int64_val; a short list is filled with its last value."""
    proto = tfproto.message_class("TensorProto")()
    proto.dtype = 1  # DT_FLOAT
    for size in (2, 3):
        proto.tensor_shape.dim.add(size=size)
    proto.float_val.extend([1.0, 2.0])
    expected = tf.make_ndarray(_official(tf, proto))
    assert np.array_equal(from_proto(proto), expected)
    assert from_proto(proto).tolist() == [[1.0, 2.0, 2.0], [2.0, 2.0, 2.0]]


@pytest.mark.parametrize("dtype, number", [("DT_FLOAT", 1), ("DT_BOOL", 10), ("DT_INT32", 3)])
def test_an_empty_value_list_means_zeros_as_tensorflow_reads_it(tf, dtype, number):
    """A Const whose value is all zeros (`false`, `0.0`) may be written with no values at all."""
    proto = tfproto.message_class("TensorProto")()
    proto.dtype = number
    proto.tensor_shape.dim.add(size=2)
    expected = tf.make_ndarray(_official(tf, proto))
    assert from_proto(proto).dtype == expected.dtype and from_proto(proto).tolist() == expected.tolist()
    proto.ClearField("tensor_shape")  # a scalar
    assert from_proto(proto).tolist() == tf.make_ndarray(_official(tf, proto)).tolist()


def test_predict_messages_match_the_official_protos(tf):
    from tensorflow_serving.apis import predict_pb2

    ours = tfproto.message_class("PredictRequest")()
    ours.model_spec.name, ours.model_spec.signature_name = "m", "serving_default"
    ours.model_spec.version.value = 3
    ours.inputs["x"].CopyFrom(to_proto(np.ones((1, 2), np.float32), "DT_FLOAT"))
    official = predict_pb2.PredictRequest.FromString(ours.SerializeToString())
    assert (official.model_spec.name, official.model_spec.version.value) == ("m", 3)
    assert tf.make_ndarray(official.inputs["x"]).tolist() == [[1.0, 1.0]]
    response = predict_pb2.PredictResponse()
    response.outputs["y"].CopyFrom(tf.make_tensor_proto(np.array([0.25], np.float32)))
    response.model_spec.version.value = 3
    parsed = tfproto.message_class("PredictResponse").FromString(response.SerializeToString())
    assert parsed.model_spec.version.value == 3 and from_proto(parsed.outputs["y"]).tolist() == [0.25]


TYPED = [(array, dtype) for array, dtype in ARRAYS if dtype != "DT_HALF"] + [
    (np.array([[7, 255]], np.uint8), "DT_UINT8"), (np.array([b"a", b"\xff"], dtype=object), "DT_STRING")]


@pytest.mark.parametrize("array, dtype", TYPED)
def test_answers_in_typed_fields_as_tf_serving_writes_them(tf, array, dtype):
    """The server's answers: TensorFlow's own message, values in float_val/int_val/..., never tensor_content."""
    from tensorflow.core.framework import tensor_pb2

    proto = to_proto(array, dtype, typed=True, message=tensor_pb2.TensorProto)
    assert isinstance(proto, tensor_pb2.TensorProto) and not proto.tensor_content
    read = tf.make_ndarray(proto)
    assert read.dtype == array.dtype and read.tolist() == array.tolist()
    assert from_proto(proto).tolist() == array.tolist()


def test_half_answers_stay_in_tensor_content(tf):
    """TF Serving has no typed field it writes DT_HALF into: the bytes, as make_tensor_proto writes them."""
    proto = to_proto(np.array([0.5, 2.0], np.float16), "DT_HALF", typed=True)
    assert proto.tensor_content and tf.make_ndarray(_official(tf, proto)).tolist() == [0.5, 2.0]


def test_malformed_tensors_are_refused(tf):
    """Too many values for the shape or content of the wrong size: ValueError, as make_ndarray raises. A
    negative dimension too, as TensorFlow's C++ parser (Tensor::FromProto) refuses it and make_ndarray does not."""
    too_many = to_proto(np.array([1.0, 2.0, 3.0], np.float32), "DT_FLOAT", typed=True)
    too_many.tensor_shape.dim[0].size = 2
    wrong_size = to_proto(np.array([1.0, 2.0, 3.0], np.float32), "DT_FLOAT")
    wrong_size.tensor_shape.dim[0].size = 2
    for proto in (too_many, wrong_size):
        with pytest.raises(ValueError):
            tf.make_ndarray(_official(tf, proto))
        with pytest.raises(ValueError):
            from_proto(proto)
    negative = to_proto(np.array([1.0, 2.0], np.float32), "DT_FLOAT")
    negative.tensor_shape.dim[0].size = -1
    with pytest.raises(ValueError, match="negative dimension"):
        from_proto(negative)


def test_read_arrays_are_writable(tf):
    read = from_proto(to_proto(np.ones(2, np.float32), "DT_FLOAT"))
    read[0] = 3.0
    assert read.tolist() == [3.0, 1.0]
