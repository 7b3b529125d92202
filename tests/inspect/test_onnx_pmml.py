"""`inspect` of ONNX models and PMML documents (tfsconvert.inspect.onnx_model / .pmml)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tfsconvert.errors import InputError
from conftest import assert_one_line_error
from tfsconvert.inspect import onnx_model, pmml

REPO = Path(__file__).resolve().parents[2]



# --- ONNX ---------------------------------------------------------------------------------------

def test_onnx_fixture_signature_and_details(cli, fixture_path):
    path = fixture_path("onnx_model")
    result = cli("inspect", path, "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["format"] == "onnx" and data["diagnostics"] == []
    (version,) = data["versions"]
    assert version["version"] is None and version["tags"] == []
    signature = version["signatures"]["serving_default"]
    assert signature["method"] is None
    # the initializers (weights, bias) are graph inputs in old exporters but never request inputs
    assert signature["inputs"] == {"features": {"dtype": "DT_FLOAT", "shape": [-1, 4], "name": "features",
                                                "native_dtype": "tensor(float)"}}
    assert signature["outputs"] == {"probabilities": {"dtype": "DT_FLOAT", "shape": [-1, 3],
                                                      "name": "probabilities", "native_dtype": "tensor(float)"}}
    details = version["details"]
    assert details["opsets"] == {"ai.onnx": 17}
    assert details["ir_version"] == 8
    assert details["producer_name"] == "tfsconvert-fixtures"
    assert details["graph_name"] == "classifier"
    assert details["node_count"] == 3 and details["initializer_count"] == 2
    assert details["op_types"] == ["Add", "MatMul", "Softmax"]


def test_onnx_fixture_human_output(cli, fixture_path):
    result = cli("inspect", fixture_path("onnx_model"))
    assert result.exit_code == 0
    assert "format: onnx" in result.stdout and "signature serving_default" in result.stdout
    assert "DT_FLOAT (tensor(float))" in result.stdout and "[-1, 4]" in result.stdout
    assert "no problems found" in result.stdout


def _save(model, path: Path) -> Path:
    onnx.save(model, path)
    return path


def test_onnx_dtypes_shapes_and_generic_names(tmp_path):
    zipmap = helper.make_sequence_type_proto(helper.make_map_type_proto(
        TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, None)))
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output_0"])],
        "io",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("W", TensorProto.FLOAT, [3]),  # an initializer listed as input
         helper.make_tensor_value_info("ids", TensorProto.INT64, None),  # unknown rank
         helper.make_tensor_value_info("half", TensorProto.FLOAT16, [None, 2]),
         helper.make_tensor_value_info("words", TensorProto.STRING, [-1]),
         helper.make_tensor_value_info("mask", TensorProto.BOOL, []),
         helper.make_tensor_value_info("pixels", TensorProto.UINT8, [1, 28, 28])],
        [helper.make_tensor_value_info("output_0", TensorProto.FLOAT, ["batch", 3]),
         helper.make_value_info("output_probability", zipmap)],
        initializer=[numpy_helper.from_array(np.array([1.0, 2.0, 3.0], np.float32), "W")],
    )
    path = _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                          helper.make_opsetid("ai.onnx.ml", 3)]),
                 tmp_path / "m.onnx")
    description = onnx_model.describe(path)
    signature = description.versions[0].signatures["serving_default"]
    inputs = {k: v.to_json() for k, v in signature.inputs.items()}
    assert list(inputs) == ["input", "ids", "half", "words", "mask", "pixels"]
    assert inputs["input"] == {"dtype": "DT_FLOAT", "shape": [-1, 3], "name": "input", "native_dtype": "tensor(float)"}
    assert inputs["ids"]["dtype"] == "DT_INT64" and inputs["ids"]["shape"] is None
    assert (inputs["half"]["dtype"], inputs["half"]["shape"], inputs["half"]["native_dtype"]) == \
        ("DT_HALF", [-1, 2], "tensor(float16)")
    assert inputs["words"]["dtype"] == "DT_STRING" and inputs["mask"] == {
        "dtype": "DT_BOOL", "shape": [], "name": "mask", "native_dtype": "tensor(bool)"}
    assert inputs["pixels"]["dtype"] == "DT_UINT8" and inputs["pixels"]["shape"] == [1, 28, 28]
    probability = signature.outputs["output_probability"].to_json()
    assert probability == {"dtype": "DT_VARIANT", "shape": [-1], "name": "output_probability",
                           "native_dtype": "seq(map(int64,tensor(float)))"}
    assert description.versions[0].details["opsets"] == {"ai.onnx": 18, "ai.onnx.ml": 3}
    (warning,) = description.diagnostics
    assert (warning.code, warning.severity) == ("unnamed-signature-io", "warning")
    assert "input" in warning.message and "output_0" in warning.message
    assert "input_names" in warning.hint and "--feature-names" in warning.hint
    json.dumps(description.to_json())  # plain JSON-ready data


def test_onnx_missing_external_data_is_reported(tmp_path):
    weights = numpy_helper.from_array(np.ones((4, 3), np.float32), "weights")
    graph = helper.make_graph([helper.make_node("MatMul", ["features", "weights"], ["scores"])], "g",
                              [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3])],
                              initializer=[weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "m.onnx", save_as_external_data=True, location="m.weights",
              size_threshold=0)
    assert onnx_model.describe(tmp_path / "m.onnx").diagnostics == []
    (tmp_path / "m.weights").unlink()
    description = onnx_model.describe(tmp_path / "m.onnx")
    assert description.versions[0].details["external_data"] == ["m.weights"]
    assert [d.code for d in description.diagnostics] == ["corrupt-model-file"]
    assert "m.weights" in description.diagnostics[0].message


def test_onnx_text_file_is_rejected_in_one_line(cli, fixture_path):
    path = fixture_path("bad_text_onnx")
    result = cli("inspect", path)
    assert_one_line_error(result, path, "corrupt-model-file")
    assert "is not an ONNX model: protobuf parse failed (the file looks like text)" in result.stderr
    as_json = cli("inspect", path, "--json")
    assert as_json.exit_code == 2 and as_json.json()["error"]["code"] == "corrupt-model-file"


@pytest.mark.parametrize("content, why", [
    (b"", "the file is empty"),
    (bytes(range(256)) * 4, "protobuf parse failed"),
])
def test_onnx_empty_and_binary_garbage(tmp_path, content, why):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        onnx_model.describe(path)
    assert caught.value.code == "corrupt-model-file"
    assert caught.value.message == f"{path} is not an ONNX model: {why}"
    assert "\n" not in caught.value.message and caught.value.hint


# --- PMML ---------------------------------------------------------------------------------------

def test_pmml_fixture_fields_and_signature(cli, fixture_path):
    path = fixture_path("pmml_model")
    result = cli("inspect", path, "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["format"] == "pmml" and data["diagnostics"] == []
    version = data["versions"][0]
    signature = version["signatures"]["serving_default"]
    assert signature["inputs"]["color"] == {"dtype": "DT_STRING", "shape": [-1], "name": "color",
                                            "native_dtype": "string"}
    for name in ("sepal_length", "sepal_width", "petal_length"):
        assert signature["inputs"][name] == {"dtype": "DT_DOUBLE", "shape": [-1], "name": name,
                                             "native_dtype": "double"}
    assert sorted(signature["inputs"]) == ["color", "petal_length", "sepal_length", "sepal_width"]
    assert list(signature["outputs"]) == [f"probability({c})" for c in ("setosa", "versicolor", "virginica")]
    assert signature["outputs"]["probability(setosa)"]["dtype"] == "DT_DOUBLE"
    details = version["details"]
    assert details["pmml_version"] == "4.4"
    assert details["model_type"] == "RegressionModel" and details["function_name"] == "classification"
    assert details["producer"].startswith("SkLearn2PMML package")
    assert details["target_fields"] == ["species"]
    fields = {f["name"]: f for f in details["data_dictionary"]}
    assert fields["species"] == {"name": "species", "optype": "categorical", "dataType": "string",
                                 "values": ["setosa", "versicolor", "virginica"]}
    assert fields["color"]["values"] == ["blue", "green", "red"]
    assert details["output_fields"][0] == {"name": "probability(setosa)", "feature": "probability",
                                           "dataType": "double", "value": "setosa"}


GENERIC_PMML = """\
<?xml version="1.0" encoding="UTF-8"?>
<PMML xmlns="http://www.dmg.org/PMML-4_3" version="4.3">
  <Header><Application name="handwritten" version="1"/></Header>
  <DataDictionary>
    <DataField name="y" optype="continuous" dataType="double"/>
    <DataField name="x1" optype="continuous" dataType="integer"/>
    <DataField name="x2" optype="categorical" dataType="boolean"><Value value="true"/><Value value="false"/></DataField>
    <DataField name="x3" optype="continuous" dataType="date"/>
    <DataField name="row_id" optype="categorical" dataType="string"/>
  </DataDictionary>
  <MiningModel functionName="regression">
    <MiningSchema>
      <MiningField name="y" usageType="target"/>
      <MiningField name="x1"/>
      <MiningField name="x2" usageType="active"/>
      <MiningField name="x3"/>
      <MiningField name="row_id" usageType="supplementary"/>
    </MiningSchema>
    <Segmentation multipleModelMethod="sum">
      <Segment id="1"><True/><TreeModel functionName="regression"><MiningSchema/></TreeModel></Segment>
      <Segment id="2"><True/><TreeModel functionName="regression"><MiningSchema/></TreeModel></Segment>
    </Segmentation>
  </MiningModel>
</PMML>
"""


def test_pmml_generic_names_types_and_nested_models(tmp_path):
    path = tmp_path / "model.pmml"
    path.write_text(GENERIC_PMML)
    description = pmml.describe(path)
    signature = description.versions[0].signatures["serving_default"]
    inputs = {k: (v.dtype, v.shape, v.native_dtype) for k, v in signature.inputs.items()}
    # supplementary fields are not model inputs; dates travel as strings
    assert inputs == {"x1": ("DT_INT64", [-1], "integer"), "x2": ("DT_BOOL", [-1], "boolean"),
                      "x3": ("DT_STRING", [-1], "date")}
    # no <Output>: the target is the output
    assert {k: v.dtype for k, v in signature.outputs.items()} == {"y": "DT_DOUBLE"}
    details = description.versions[0].details
    assert details["pmml_version"] == "4.3" and details["model_type"] == "MiningModel"
    assert details["nested_models"] == {"TreeModel": 2}
    assert details["active_fields"] == ["x1", "x2", "x3"] and details["target_fields"] == ["y"]
    (warning,) = description.diagnostics
    assert warning.code == "unnamed-signature-io" and warning.severity == "warning"
    assert "x1, x2, x3, y" in warning.message and "--feature-names" in warning.hint


def test_pmml_without_namespace(tmp_path):
    path = tmp_path / "plain.pmml"
    path.write_text(GENERIC_PMML.replace(' xmlns="http://www.dmg.org/PMML-4_3"', ""))
    assert list(pmml.describe(path).versions[0].signatures["serving_default"].inputs) == ["x1", "x2", "x3"]


def test_pmml_not_xml_is_rejected_in_one_line(cli, fixture_path):
    path = fixture_path("bad_nonxml_pmml")
    result = cli("inspect", path)
    assert_one_line_error(result, path, "corrupt-model-file")
    assert "is not a PMML document: XML parse failed at line 1" in result.stderr


def test_pmml_other_xml_is_rejected(cli, tmp_path):
    path = tmp_path / "model.pmml"
    path.write_text('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>')
    result = cli("inspect", path, "--json")
    assert result.exit_code == 2
    error = result.json()["error"]
    assert error["code"] == "unsupported-format"
    assert error["message"] == f"{path} is XML but not PMML: its root element is <svg>, expected <PMML>"


@pytest.mark.parametrize("module, fixture", [("onnx_model", "onnx_model"), ("pmml", "pmml_model")])
def test_readers_import_no_framework(fixture_path, module, fixture):
    """docs/architecture.md "Conventions": inspect of ONNX/PMML must not import TensorFlow, Spark, sklearn or onnxruntime."""
    code = textwrap.dedent(f"""
        import sys
        from tfsconvert.inspect import {module}
        {module}.describe({str(fixture_path(fixture))!r})
        heavy = sorted(m for m in sys.modules
                       if m.split('.')[0] in ('tensorflow', 'keras', 'sklearn', 'pyspark', 'onnxruntime', 'jpype'))
        print(heavy)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
