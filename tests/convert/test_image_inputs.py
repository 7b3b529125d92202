"""Exports whose input is serialized data: encoded images (decoded in the graph, also inside
tf.map_fn in a TF2 function) and a string input whose meaning the graph does not show.

References are computed here, by TensorFlow from the untouched original files, on images this
test encodes itself; the artifacts are loaded the way TF Serving loads them.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, converted, run_cli
from fixtures.tf_image_models import JPEG_SIZE, PNG_SIZE
from tfsconvert.model import TensorSpec
from tfsconvert.runtimes.tf import ServingSession
from tfsconvert.samples import load_samples

IMAGES = 256
# fixture -> (source path below the fixture, input alias, output alias, format, height, width, channels)
MODELS = {
    "tf2_jpeg_classifier": ("1", "image_bytes", "probabilities", "jpeg", JPEG_SIZE, JPEG_SIZE, 3),
    "frozen_png_digits_pb": ("", "image", "scores", "png", PNG_SIZE, PNG_SIZE, 1),
}


def _source(fixture_path, fixture: str) -> Path:
    path = fixture_path(fixture)
    return path / MODELS[fixture][0] if MODELS[fixture][0] else path


@pytest.fixture(scope="module")
def conversions(fixture_path, tmp_path_factory):
    """fixture -> (JSON result, base path) of `tfsconvert saved-model` with the default 256 samples."""
    out = {}
    for fixture in MODELS:
        data, _ = converted(lambda name: _source(fixture_path, name), tmp_path_factory, "saved-model", fixture)
        out[fixture] = data, Path(data["base_path"])
    return out


def _encoded_images(fmt: str, height: int, width: int, channels: int, count: int, seed: int = 7) -> list[bytes]:
    """`count` images encoded by TensorFlow, independent of the product's maker (other seed, noise pixels)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    encode = tf.io.encode_png if fmt == "png" else tf.io.encode_jpeg
    return [encode(rng.integers(0, 256, (height, width, channels)).astype(np.uint8)).numpy() for _ in range(count)]


def _reference(fixture_path, fixture: str, images: list[bytes]) -> list[np.ndarray]:
    """The original file run by TensorFlow: the TF2 SavedModel by tf.saved_model.load, the frozen graph
    parsed by tf.compat.v1.GraphDef from its bytes; one output array per image."""
    import tensorflow as tf

    source = _source(fixture_path, fixture)
    if fixture == "tf2_jpeg_classifier":
        serve = tf.saved_model.load(str(source)).signatures["serving_default"]
        return [serve(image_bytes=tf.constant([image]))["probabilities"].numpy() for image in images]
    graph_def = tf.compat.v1.GraphDef.FromString(source.read_bytes())
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as session:
            return [session.run("scores:0", {"image:0": image}) for image in images]


def _served(artifact: Path, alias: str, output: str, images: list[bytes], scalar: bool) -> list[np.ndarray]:
    with ServingSession(artifact) as served:
        feeds = [np.array(image, dtype=object) if scalar else np.array([image], dtype=object) for image in images]
        return [served.run("serving_default", {alias: feed})[output] for feed in feeds]


@pytest.mark.parametrize("fixture", MODELS)
def test_image_models_convert_with_parity_on_256_images(fixture, conversions, fixture_path):
    _, alias, output, fmt, height, width, channels = MODELS[fixture]
    data, base = conversions[fixture]
    assert data["parity"]["ok"] and data["parity"]["samples"] == IMAGES
    [row] = data["parity"]["outputs"]
    assert row["alias"] == output and row["max_abs"] <= 1e-6
    images = _encoded_images(fmt, height, width, channels, IMAGES)
    expected = _reference(fixture_path, fixture, images)
    actual = _served(base / "1", alias, output, images, scalar=fixture == "frozen_png_digits_pb")
    assert len(expected) == IMAGES and np.ptp(np.concatenate(expected)) > 0.1  # the images change the answer
    for want, got in zip(expected, actual):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fixture", MODELS)
def test_golden_requests_carry_valid_images_as_b64(fixture, conversions, fixture_path):
    import tensorflow as tf

    _, alias, output, fmt, height, width, channels = MODELS[fixture]
    _, base = conversions[fixture]
    lines = [json.loads(line) for line in (base / "1" / "assets.extra" / "golden.jsonl").read_text().splitlines()]
    assert len(lines) == 8
    images = []
    for line in lines:
        value = line["request"]["inputs"][alias]
        [item] = value if isinstance(value, list) else [value]
        assert list(item) == ["b64"]
        data = base64.b64decode(item["b64"], validate=True)
        assert data.startswith(b"\xff\xd8\xff" if fmt == "jpeg" else b"\x89PNG\r\n\x1a\n")
        assert tuple(tf.io.decode_image(data).shape) == (height, width, channels)
        images.append(data)
    assert len(set(images)) == 8  # a different picture per request
    expected = _reference(fixture_path, fixture, images)
    for line, want in zip(lines, expected):
        np.testing.assert_allclose(np.asarray(line["response"]["outputs"], np.float32), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fixture", MODELS)
def test_validate_replays_the_image_requests_over_rest_and_grpc(fixture, conversions):
    _, base = conversions[fixture]
    result = run_cli("validate", base, "--json")
    assert result.exit_code == 0, result.stdout[-2000:]
    report = result.json()
    assert report["ok"] and report["summary"]["golden_passed"] == 16 and report["summary"]["golden_failed"] == 0
    [version] = report["versions"]
    assert sorted({(g["protocol"], g["ok"]) for g in version["golden"]}) == [("grpc", True), ("rest", True)]


@pytest.mark.parametrize("fixture,op", [("tf2_jpeg_classifier", "DecodeJpeg"), ("frozen_png_digits_pb", "DecodePng")])
def test_onnx_names_the_decode_op_tf2onnx_cannot_convert(fixture, op, convert, fixture_path, tmp_path):
    result = convert("onnx", _source(fixture_path, fixture))
    assert result.exit_code == 2, result.stdout
    error = result.json()["error"]
    assert error["code"] == "unsupported-op" and f"cannot convert {op} at opset 17" in error["message"]
    assert not (tmp_path / "models").exists()


# --sample-inputs with an input named `inputs`: every REST body form, and the plain columnar one.
def _bodies(images: list[dict]) -> dict[str, object]:
    return {
        "rest-columnar": {"inputs": {"inputs": images}},
        "rest-columnar-bare": {"signature_name": "serving_default", "inputs": images},
        "rest-rows": {"instances": [{"inputs": image} for image in images]},
        "rest-rows-bare": {"signature_name": "serving_default", "instances": images},
        "columns": {"inputs": images},
    }


@pytest.mark.parametrize("form", list(_bodies([])))
def test_sample_files_for_an_input_named_inputs_are_read_in_every_form(form, tmp_path):
    images = [{"b64": base64.b64encode(data).decode()} for data in (b"\xff\xd8one", b"\xff\xd8two", b"\x89PNGthree")]
    path = tmp_path / "body.json"
    path.write_text(json.dumps(_bodies(images)[form]))
    samples = load_samples(path, {"inputs": TensorSpec("DT_STRING", [-1], "x:0")})
    assert [sample["inputs"].tolist() for sample in samples] == [[b"\xff\xd8one"], [b"\xff\xd8two"], [b"\x89PNGthree"]]


def test_sample_files_hold_one_entry_per_sample_for_a_scalar_input(tmp_path):
    path = tmp_path / "images.json"
    path.write_text(json.dumps({"instances": [{"b64": "AAE="}, {"b64": "AgM="}]}))
    samples = load_samples(path, {"image": TensorSpec("DT_STRING", [], "image:0")})
    assert [(s["image"].shape, s["image"][()]) for s in samples] == [((), b"\x00\x01"), ((), b"\x02\x03")]


@pytest.mark.parametrize("form", ["rest-columnar", "rest-rows"])
def test_convert_reads_a_rest_body_for_an_input_renamed_inputs(form, convert, fixture_path, tmp_path):
    images = _encoded_images("jpeg", 40, 24, 3, 5, seed=11)
    body = tmp_path / "body.json"
    body.write_text(json.dumps(_bodies([{"b64": base64.b64encode(data).decode()} for data in images])[form]))
    result = convert("saved-model", _source(fixture_path, "tf2_jpeg_classifier"), "--input", "inputs=image_bytes",
                     "--sample-inputs", body)
    assert result.exit_code == 0, result.stdout + result.stderr
    data = result.json()
    assert list(data["signature"]["inputs"]) == ["inputs"]
    assert (data["parity"]["samples"], data["parity"]["ok"]) == (5, True)
    lines = (tmp_path / data["files"]["golden"]).read_text().splitlines()
    sent = [base64.b64decode(json.loads(line)["request"]["inputs"]["inputs"][0]["b64"]) for line in lines]
    assert sent == images


# A string input whose meaning nothing in the graph shows.
@pytest.mark.parametrize("command", ["saved-model", "onnx"])
def test_made_up_strings_the_source_rejects_are_a_clear_exit_2(command, cli_subprocess, fixture_path, tmp_path):
    source = fixture_path("frozen_amounts_pb")
    result = cli_subprocess(command, source, "--base-path", tmp_path / "models" / "amounts")
    assert_one_line_error(result, source, "samples-rejected")
    message, hint = result.stderr.splitlines()
    assert "string input 'amount_text'" in message and "'amount_text-0'" in message
    assert "StringToNumber op 'StringToNumber'" in message and "could not correctly convert string" in message
    assert hint.startswith('  fix: pass --sample-inputs FILE with real values: JSON {"amount_text": [...]}')
    assert not (tmp_path / "models").exists()


def test_real_values_for_that_input_convert(convert, fixture_path, tmp_path):
    samples = tmp_path / "amounts.json"
    samples.write_text(json.dumps({"amount_text": ["1.5", "-2", "1e3", "0.25"]}))
    result = convert("saved-model", fixture_path("frozen_amounts_pb"), "--sample-inputs", samples)
    assert result.exit_code == 0, result.stdout
    line = json.loads((tmp_path / result.json()["files"]["golden"]).read_text().splitlines()[2])
    assert line["request"]["inputs"]["amount_text"] == ["1e3"] and line["response"]["outputs"] == [1200.5]


def test_rejected_sample_from_a_file_names_the_sample(convert, fixture_path, tmp_path):
    samples = tmp_path / "images.json"
    samples.write_text(json.dumps({"image_bytes": ["not an image"]}))
    result = convert("saved-model", _source(fixture_path, "tf2_jpeg_classifier"), "--sample-inputs", samples)
    assert result.exit_code == 2, result.stdout
    error = result.json()["error"]
    assert error["code"] == "samples-rejected"
    assert f"rejects sample 0 of {samples}: op 'map/while/DecodeJpeg': Unknown image file format" in error["message"]


# What the graph says about the image, in the shapes real exports take.
def _decode_map_resize(tf, data):
    """tf.map_fn in a graph: a StatelessWhile whose body function reads the strings from a TensorList."""
    def decode(item):
        return tf.image.resize(tf.io.decode_image(item, channels=3, expand_animations=False), [64, 48])

    return tf.map_fn(decode, data, fn_output_signature=tf.float32)


def _decode_map_v1_loop(tf, data):
    """The same as TF 1.x built it: Enter/Merge/Switch frames over TensorArrayV3 (no functions)."""
    enabled = tf.compat.v1.control_flow_v2_enabled()
    tf.compat.v1.disable_control_flow_v2()
    try:
        return _decode_map_resize(tf, data)
    finally:
        if enabled:
            tf.compat.v1.enable_control_flow_v2()


def _decode_set_shape(tf, data):
    image = tf.io.decode_jpeg(data)
    image.set_shape([50, 60, 3])
    return tf.cast(image, tf.float32) * 2.0


GRAPHS = {  # name -> (input shape, graph after the input, (format, height, width, channels, bits))
    "map_fn-decode_image-resize": ([None], _decode_map_resize, ("jpeg", 64, 48, 3, 8)),
    "map_fn-v1-loop": ([None], _decode_map_v1_loop, ("jpeg", 64, 48, 3, 8)),
    "ensure_shape": ([], lambda tf, x: tf.ensure_shape(tf.io.decode_jpeg(x, channels=1), [40, 30, 1]),
                     ("jpeg", 40, 30, 1, 8)),
    "set_shape": ([], _decode_set_shape, ("jpeg", 50, 60, 3, 8)),
    "nothing-sizes-it": ([], lambda tf, x: tf.reduce_mean(tf.cast(tf.io.decode_png(x), tf.float32)),
                         ("png", 224, 224, 3, 8)),
    "crop-window": ([], lambda tf, x: tf.io.decode_and_crop_jpeg(x, [2, 3, 20, 10], channels=3),
                    ("jpeg", 22, 13, 3, 8)),
    "png-16-bit-rgba": ([], lambda tf, x: tf.reshape(tf.io.decode_png(x, 4, tf.uint16), [1, 16, 16, 4]),
                        ("png", 16, 16, 4, 16)),
    "jpeg-ratio-2": ([], lambda tf, x: tf.reshape(tf.io.decode_jpeg(x, 3, ratio=2), [10, 8, 3]),
                     ("jpeg", 20, 16, 3, 8)),
}


@pytest.mark.parametrize("name", GRAPHS)
def test_the_synthesized_image_is_what_the_graph_decodes(name):
    import tensorflow as tf

    from tfsconvert.convert.image_inputs import image_makers

    shape, build, (fmt, height, width, channels, bits) = GRAPHS[name]
    with tf.Graph().as_default() as graph:
        data = tf.compat.v1.placeholder(tf.string, shape, name="data")
        result = build(tf, data)
        other = tf.strings.length(tf.compat.v1.placeholder(tf.string, [None], name="text"))
    makers = image_makers(graph, {"data": data, "text": other.op.inputs[0]})
    assert list(makers) == ["data"]  # a string that is only measured is no image
    batch = tuple(1 if d is None else d for d in shape)
    sample = makers["data"](np.random.default_rng(0), 0, batch)
    assert sample.shape == batch and sample.dtype == object
    assert sample.tolist() == makers["data"](np.random.default_rng(0), 0, batch).tolist()  # seeded
    image = sample.ravel()[0]
    assert image.startswith(b"\xff\xd8\xff" if fmt == "jpeg" else b"\x89PNG")
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        decoded = session.run(tf.io.decode_image(image, dtype=tf.uint16 if bits == 16 else tf.uint8))
    assert decoded.shape == (height, width, channels)
    if fmt == "png":
        assert image[24] == bits  # IHDR bit depth
    with tf.compat.v1.Session(graph=graph) as session:
        session.run(result, {data: sample})  # TensorFlow accepts it
