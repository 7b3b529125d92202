"""tfsconvert.onnxproto (the ONNX reader without `onnx`) against onnx's own parse (`onnx.load`), field by field,
on every ONNX fixture and on ONNX artifacts our converters write; and `inspect` of ONNX never imports `onnx`."""

from __future__ import annotations

import subprocess
import sys

import onnx
import pytest
from onnx import TensorProto, helper

from conftest import REPO, run_cli
from fixtures.registry import REGISTRY
from tfsconvert import onnxproto
from tfsconvert.errors import InputError
from tfsconvert.inspect import onnx_model

# Every fixture that is or holds an ONNX file (its description names one).
ONNX_FIXTURES = sorted(f.name for f in REGISTRY.values()
                       if not f.lazy and (f.format == "onnx" or ".onnx" in f.description))


def assert_same(light, official, where: str = "ModelProto") -> None:
    """Every field onnxproto declares: presence, value, repeated lengths, and the set oneof member."""
    name = light.DESCRIPTOR.full_name.removeprefix("tfsconvert.onnx.")
    for oneof in light.DESCRIPTOR.oneofs:
        assert light.WhichOneof(oneof.name) == official.WhichOneof(oneof.name), f"{where}: oneof {oneof.name}"
    for field, _, _, repeated in onnxproto.MESSAGES[name]:
        mine, theirs = getattr(light, field), getattr(official, field)
        here = f"{where}.{field}"
        descriptor = light.DESCRIPTOR.fields_by_name[field]
        if repeated:
            assert len(mine) == len(theirs), here
            for index, (a, b) in enumerate(zip(mine, theirs)):
                if descriptor.message_type:
                    assert_same(a, b, f"{here}[{index}]")
                else:
                    assert a == b, f"{here}[{index}]"
            continue
        assert light.HasField(field) == official.HasField(field), f"{here}: presence"
        if descriptor.message_type:
            if light.HasField(field):
                assert_same(mine, theirs, here)
        else:
            assert mine == theirs, here


def onnx_files(fixture_path, name: str) -> list:
    path = fixture_path(name)
    return [path] if path.suffix == ".onnx" else sorted(path.rglob("*.onnx"))


def test_the_onnx_fixtures_are_found(fixture_path):
    assert {"onnx_model", "validate_model_repository", "bad_text_onnx"} <= set(ONNX_FIXTURES)
    assert all(onnx_files(fixture_path, name) for name in ONNX_FIXTURES)


@pytest.mark.parametrize("name", ONNX_FIXTURES)
def test_every_onnx_fixture_reads_as_onnx_reads_it(fixture_path, name):
    for path in onnx_files(fixture_path, name):
        data = path.read_bytes()
        try:
            official = onnx.load_from_string(data)
        except Exception:  # noqa: BLE001 - whatever onnx raises, ours must refuse too
            with pytest.raises(InputError) as raised:
                onnx_model.load(path)
            assert raised.value.code == "corrupt-model-file"
            continue
        assert_same(onnxproto.parse_model(data), official, str(path))


def _every_type_model() -> onnx.ModelProto:
    """Value infos of every TypeProto kind, dims with values, params and neither, metadata, external data."""
    def info(name, type_proto):
        return helper.make_value_info(name, type_proto)

    tensor = helper.make_tensor_type_proto(TensorProto.FLOAT, ["batch", 3, None])
    inputs = [info("x", tensor), info("ids", helper.make_tensor_type_proto(TensorProto.INT64, None)),
              info("maybe", helper.make_optional_type_proto(helper.make_tensor_type_proto(TensorProto.STRING, [2]))),
              info("sparse", helper.make_sparse_tensor_type_proto(TensorProto.DOUBLE, [4, 4]))]
    outputs = [info("probs", helper.make_sequence_type_proto(helper.make_map_type_proto(
        TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, [])))), info("y", tensor)]
    weight = helper.make_tensor("w", TensorProto.FLOAT16, [3, 1], [1.0, 2.0, 3.0])
    external = helper.make_tensor("big", TensorProto.FLOAT, [2], [0.0, 0.0])
    external.ClearField("float_data")
    external.data_location = TensorProto.EXTERNAL
    external.external_data.add(key="location", value="weights.bin")
    nodes = [helper.make_node("Identity", ["x"], ["y"], name="n0"),
             helper.make_node("ZipMap", ["x"], ["probs"], domain="ai.onnx.ml", classlabels_int64s=[0, 1])]
    graph = helper.make_graph(nodes, "g", inputs, outputs, [weight, external], doc_string="graph doc",
                              value_info=[info("mid", tensor)])
    model = helper.make_model(graph, producer_name="p", producer_version="1.0", domain="d", model_version=7,
                              doc_string="doc", opset_imports=[helper.make_opsetid("", 17),
                                                               helper.make_opsetid("ai.onnx.ml", 3)])
    helper.set_model_props(model, {"author": "me", "license": "mit"})
    return model


def test_every_declared_kind_of_field_reads_as_onnx_reads_it():
    data = _every_type_model().SerializeToString()
    light = onnxproto.parse_model(data)
    assert_same(light, onnx.load_from_string(data))
    assert light.graph.input[2].type.WhichOneof("value") == "optional_type"  # the comparison saw every kind
    assert light.graph.initializer[1].data_location == onnxproto.EXTERNAL


@pytest.fixture(scope="module")
def converted(fixture_path, tmp_path_factory):
    """ONNX files written by `tfsconvert onnx`: tf2onnx (frozen graph) and skl2onnx (a pipeline, ZipMap output)."""
    root = tmp_path_factory.mktemp("converted")
    written = []
    for name in ("frozen_mlp_pb", "sklearn_pipeline"):
        result = run_cli("onnx", fixture_path(name), "--base-path", root / name, "--version", 1, "--json")
        assert result.exit_code == 0, result.stdout + result.stderr
        written.append(root / name / "1" / "model.onnx")
    return written


def test_converter_outputs_read_as_onnx_reads_them(converted):
    for path in converted:
        data = path.read_bytes()
        assert_same(onnxproto.parse_model(data), onnx.load_from_string(data), str(path))


def test_inspect_of_onnx_does_not_import_onnx(fixture_path):
    probe = ("import sys\nfrom typer.testing import CliRunner\nfrom tfsconvert.cli import app\n"
             f"result = CliRunner().invoke(app, ['inspect', {str(fixture_path('onnx_model'))!r}, '--json'])\n"
             "assert result.exit_code == 0, result.output\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'ml_dtypes')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
