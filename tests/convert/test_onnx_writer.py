"""SavedModel -> ONNX with real TensorFlow, tf2onnx and ONNX Runtime (tfsconvert.convert.onnx_writer)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from fixtures.tf_models import write_tf1_savedmodel
from tfsconvert.convert.onnx_writer import onnx_runner, savedmodel_to_onnx
from tfsconvert.errors import InputError
from tfsconvert.quiet import DEBUG_ENV, native_stderr_silenced

BATCHES = (1, 5, 16)


@pytest.fixture(scope="module")
def tf():
    with native_stderr_silenced():
        import tensorflow as tf
    from tensorflow.python.util import deprecation

    with deprecation.silence():
        yield tf


def tf1_savedmodel(tf, path, build):
    """A TF1 `Builder` SavedModel whose `serving_default` maps `build(tf)`'s (inputs, outputs) aliases."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        inputs, outputs = build(tf)
        builder = tf.compat.v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={
            "serving_default": tf.compat.v1.saved_model.predict_signature_def(inputs, outputs)})
        builder.save()
    return path


def tf_reference(tf, saved_model_dir):
    """The signature's TensorInfos and a `run(feeds by alias)`, loaded the TF Serving way (TF1 session)."""
    graph = tf.Graph()
    sess = tf.compat.v1.Session(graph=graph)
    with graph.as_default():
        signature = tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(saved_model_dir)).signature_def[
            "serving_default"]

    def run(feeds):
        aliases = sorted(signature.outputs)
        values = sess.run([signature.outputs[a].name for a in aliases],
                          {signature.inputs[a].name: value for a, value in feeds.items()})
        return dict(zip(aliases, values))

    return signature, run


def onnx_io(path):
    """{name: (numpy dtype, shape with None for a dynamic dim)} of the ONNX graph's inputs and outputs."""
    import onnx

    def specs(values):
        return [(v.name, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)),
                 [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim])
                for v in values]

    graph = onnx.load(str(path)).graph
    return specs(graph.input), specs(graph.output)


def tf_specs(tf, infos):
    """The same view of a signature's TensorInfos, in sorted alias order."""
    return [(alias, np.dtype(tf.as_dtype(info.dtype).as_numpy_dtype),
             [None if d.size == -1 else d.size for d in info.tensor_shape.dim])
            for alias, info in sorted(infos.items())]


def random_feeds(rng, signature, tf, batch):
    feeds = {}
    for alias, info in signature.inputs.items():
        shape = [batch if d.size == -1 else d.size for d in info.tensor_shape.dim]
        dtype = tf.as_dtype(info.dtype).as_numpy_dtype
        feeds[alias] = (rng.normal(size=shape) if np.issubdtype(dtype, np.floating)
                        else rng.integers(0, 100, size=shape)).astype(dtype)
    return feeds


def two_io(tf):
    """Aliases sort opposite to their tensor names, and one input is int64."""
    dense = tf.compat.v1.placeholder(tf.float32, [None, 2], name="a")
    ids = tf.compat.v1.placeholder(tf.int64, [None], name="z")
    return ({"b_dense": dense, "a_ids": ids},
            {"x_ids": tf.identity(ids + 1, name="aa_out"), "y_scaled": tf.identity(dense * 2.0, name="zz_out")})


SOURCES = {
    "savedmodel_base": (lambda fx, tf, tmp: fx("savedmodel_base") / "1", ["features"], ["probabilities"]),
    "keras_export_savedmodel": (lambda fx, tf, tmp: fx("keras_export_savedmodel"), ["keras_tensor"], ["output_0"]),
    "tf1_builder": (lambda fx, tf, tmp: write_tf1_savedmodel(tmp / "tf1", ["serve"]), ["features"], ["probabilities"]),
    "tf1_two_io": (lambda fx, tf, tmp: tf1_savedmodel(tf, tmp / "two_io", two_io), ["a_ids", "b_dense"],
                   ["x_ids", "y_scaled"]),
}


@pytest.mark.parametrize("source", SOURCES)
def test_onnx_is_named_by_aliases_and_matches_tensorflow(fixture_path, tf, tmp_path, source):
    build, inputs, outputs = SOURCES[source]
    saved_model_dir = build(fixture_path, tf, tmp_path)
    dest = tmp_path / "model.onnx"
    savedmodel_to_onnx(saved_model_dir, "serving_default", dest)

    signature, tf_run = tf_reference(tf, saved_model_dir)
    onnx_inputs, onnx_outputs = onnx_io(dest)
    assert [name for name, _, _ in onnx_inputs] == inputs and [name for name, _, _ in onnx_outputs] == outputs
    assert onnx_inputs == tf_specs(tf, signature.inputs)  # dtypes, and the batch dim stays dynamic
    assert onnx_outputs == tf_specs(tf, signature.outputs)
    assert all(shape[0] is None for _, _, shape in onnx_inputs + onnx_outputs)

    run = onnx_runner(dest)
    rng = np.random.default_rng(0)
    for batch in BATCHES:
        feeds = random_feeds(rng, signature, tf, batch)
        got, expected = run(feeds), tf_run(feeds)
        assert list(got) == outputs
        for alias in outputs:
            assert got[alias].dtype == expected[alias].dtype and got[alias].shape == expected[alias].shape
            np.testing.assert_allclose(got[alias], expected[alias], rtol=0, atol=1e-5, err_msg=alias)


@pytest.fixture
def lgamma_savedmodel(fixture_path, tf, tmp_path):
    """frozen_unsupported_op_pb as a TF1 SavedModel: serving_default features -> score (an Lgamma op)."""
    graph_def = tf.compat.v1.GraphDef.FromString(fixture_path("frozen_unsupported_op_pb").read_bytes())

    def build(tf):
        tf.graph_util.import_graph_def(graph_def, name="")
        graph = tf.compat.v1.get_default_graph()
        return {"features": graph.get_tensor_by_name("features:0")}, {"score": graph.get_tensor_by_name("score:0")}

    return tf1_savedmodel(tf, tmp_path / "lgamma", build)


def test_op_without_a_tf2onnx_handler_is_one_unsupported_op_error(lgamma_savedmodel, tmp_path, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    dest = tmp_path / "model.onnx"
    with pytest.raises(InputError) as raised:
        savedmodel_to_onnx(lgamma_savedmodel, "serving_default", dest, opset=17)
    error = raised.value
    assert error.code == "unsupported-op" and error.exit_code == 2
    assert error.message == "tf2onnx 1.17.0 cannot convert Lgamma at opset 17"
    assert "--opset" not in error.hint and "SavedModel" in error.hint  # no opset has an Lgamma handler
    assert not dest.exists()
    # tf2onnx's error log, TensorFlow's deprecation notices and native lines all stay off the terminal.
    assert capfd.readouterr() == ("", "")
    assert [r for r in caplog.records if r.name.startswith(("tf2onnx", "tensorflow"))] == []


def test_debug_lets_tf2onnx_logs_through(lgamma_savedmodel, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(InputError, match="Lgamma"):
        savedmodel_to_onnx(lgamma_savedmodel, "serving_default", tmp_path / "model.onnx")
    assert "Unsupported ops: %s" in [r.msg for r in caplog.records if r.name == "tf2onnx.tfonnx"]


def test_handler_that_needs_a_higher_opset_suggests_it(tf, tmp_path):
    def resize(tf):  # tf2onnx converts ResizeBicubic only from opset 11; at 10 its handler fails
        images = tf.compat.v1.placeholder(tf.float32, [None, 8, 8, 3], name="images")
        return {"images": images}, {"resized": tf.compat.v1.image.resize_bicubic(images, [16, 16])}

    saved_model_dir = tf1_savedmodel(tf, tmp_path / "resize", resize)
    dest = tmp_path / "model.onnx"
    with pytest.raises(InputError) as raised:
        savedmodel_to_onnx(saved_model_dir, "serving_default", dest, opset=10)
    assert raised.value.code == "unsupported-op"
    assert raised.value.message == "tf2onnx 1.17.0 cannot convert ResizeBicubic at opset 10"
    assert raised.value.hint.startswith("try --opset 18 ")
    assert not dest.exists()


def test_aliases_sharing_a_tensor_cannot_be_named_in_onnx(tf, tmp_path):
    def shared(tf):
        x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
        doubled = tf.identity(x * 2.0, name="doubled")
        return {"x": x}, {"p": doubled, "q": doubled}

    dest = tmp_path / "model.onnx"
    with pytest.raises(InputError) as raised:
        savedmodel_to_onnx(tf1_savedmodel(tf, tmp_path / "shared", shared), "serving_default", dest)
    assert raised.value.code == "unsupported-signature" and "['p', 'q']" in raised.value.message
    assert not dest.exists()


@pytest.mark.parametrize("signature, opset, code", [("predict", 17, "signature-not-found"),
                                                    ("serving_default", 19, "unsupported-opset")])
def test_bad_signature_or_opset_fails_before_converting(fixture_path, tmp_path, signature, opset, code):
    dest = tmp_path / "model.onnx"
    with pytest.raises(InputError) as raised:
        savedmodel_to_onnx(fixture_path("savedmodel_base") / "1", signature, dest, opset=opset)
    assert raised.value.code == code and raised.value.hint
    assert not dest.exists()
