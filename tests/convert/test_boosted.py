"""Tree ensembles as users have them (GradientBoosting, HistGradientBoosting, RandomForest, XGBoost, LightGBM;
binary, multiclass, regression; ColumnTransformer with an imputer and OneHotEncoder(handle_unknown='ignore'))
to PMML and ONNX. Each artifact is converted once per module. Each: parity on the same 10,000 seeded rows (decimal
grid, NaNs, unseen categories) against the library's own predict/predict_proba on the original file (PMML through
JPMML-Evaluator and pypmml), and its golden file replayed through the embedded server's own servables.

`validate` (a sandboxed server per version, and per PMML engine) replays the golden file over REST and gRPC for
SERVED only: per format every library and every task (binary, multiclass, regression) at least once, the two formats
on different cells, plus one native model file each. The other artifacts replay their golden file in-process
through the same servables (`backends.load`, what the server runs for `:predict`), which keeps the module's time to
a few minutes instead of starting about fifty servers and their JVMs."""

from __future__ import annotations

import joblib
import numpy as np
import pytest

from conftest import assert_serves, converted
from fixtures import boosted_models
from tfsconvert import golden
from tfsconvert.compare import compare
from tfsconvert.rest_codec import request_tensors, response_tensors
from tfsconvert.runtimes import pmml as pmml_runtime
from tfsconvert.runtimes.onnx import OnnxModel

NAMES = [f"{family}_{task}" for family in ("gbt", "hgb", "rf", "xgb", "lgbm")
         for task in ("binary", "multiclass", "regression")]
NATIVE = ["xgb_booster_json", "lgbm_booster_txt"]  # XGBoost/LightGBM model files on the numeric columns
ROWS = 10_000
# (atol, rtol) of the 10,000-row check: PMML computes in double (XGBoost's float32 in JPMML too); ONNX in float32.
TOLERANCE = {"pmml": (1e-6, 1e-6), "onnx": (1e-5, 1e-5)}
# HistGradientBoosting and LightGBM split on float64 thresholds, ONNX's trees compare float32: the synthesized rows
# one ulp off a threshold take the other branch, so their conversion accepts those rows (the 10,000 rows below
# must still agree with no flip).
FLAGS = {(f"{family}_{task}", "onnx"): ("--allow-flips", "0.06") for family in ("hgb", "lgbm")
         for task in ("binary", "multiclass", "regression")} | {("lgbm_booster_txt", "onnx"): ("--allow-flips", "0.06")}


# served by `validate` over REST and gRPC: per format each library and each task once, plus a native file
SERVED = {"pmml": {"gbt_binary", "hgb_multiclass", "rf_regression", "xgb_multiclass", "lgbm_regression",
                   "xgb_booster_json"},
          "onnx": {"gbt_multiclass", "hgb_regression", "rf_binary", "xgb_regression", "lgbm_binary",
                   "lgbm_booster_txt"}}


def _case_list(served=None):
    for name in NAMES + NATIVE:
        for fmt in ("pmml", "onnx"):
            if served is None or (name in SERVED[fmt]) == served:
                yield pytest.param(name, fmt, marks=[pytest.mark.slow] if fmt == "pmml" else [], id=f"{name}-{fmt}")


CASES = list(_case_list())


@pytest.fixture(scope="module")
def artifacts(fixture_path, tmp_path_factory):
    """`artifacts(name, fmt)` -> the base path of the fixture converted once to that format."""
    made = {}

    def get(name: str, fmt: str):
        if (name, fmt) not in made:
            made[name, fmt] = converted(fixture_path, tmp_path_factory, fmt, name, *FLAGS.get((name, fmt), ()))[1]
        return made[name, fmt]

    return get


@pytest.fixture(scope="module", autouse=True)
def _pypmml_gateway():
    """pypmml runs in this process here (one py4j JVM for the module), stopped at the end."""
    yield
    import sys

    if "pypmml" in sys.modules:
        from pypmml.base import PMMLContext

        PMMLContext.shutdown()


@pytest.fixture(scope="module")
def rows():
    """10,000 seeded rows unlike the training ones: amounts on a 0.01 grid, 10% NaN per numeric column, 2% of
    regions never seen in training."""
    return boosted_models.frame(ROWS, seed=7, nan_rate=0.1, unseen_rate=0.02)


def reference(path, data) -> dict[str, np.ndarray]:
    """The library's own answer: the original file loaded by joblib (or the library's own loader for its native
    files), predict and predict_proba."""
    if path.suffix == ".txt":
        import lightgbm

        return {"prediction": lightgbm.Booster(model_file=str(path)).predict(data)}
    if path.suffix == ".json":
        import xgboost

        model = xgboost.XGBClassifier()
        model.load_model(path)
    else:
        model = joblib.load(path)
    if not hasattr(model, "classes_"):
        return {"prediction": model.predict(data).astype(np.float64)}
    proba = model.predict_proba(data)
    return {"label": model.predict(data), **{f"probability({c})": proba[:, j] for j, c in enumerate(model.classes_)}}


def artifact_answers(base, fmt: str, data) -> dict[str, dict[str, np.ndarray]]:
    """Evaluator -> the artifact's answer, through tfsconvert.runtimes (what the server runs), in this process."""
    columns = {c: data[c].tolist() for c in data.columns}
    if fmt == "onnx":
        return {"onnxruntime": OnnxModel(base / "1" / "model.onnx").predict(columns)}
    answers = {}
    for engine in pmml_runtime.ENGINES:
        model = pmml_runtime.PmmlModel(base / "1" / "model.pmml", engine)
        answers[engine] = model.predict(columns)
        model.close()
    return answers


def errors(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> dict[str, float]:
    """Label flip rate, max abs of probabilities / predictions, max rel of predictions."""
    assert set(actual) == set(expected), (sorted(actual), sorted(expected))
    out = {}
    if "label" in expected:
        out["flip_rate"] = float(np.mean(np.asarray(actual["label"]).astype(str)
                                         != np.asarray(expected["label"]).astype(str)))
    values = [name for name in expected if name != "label"]
    diffs = [np.abs(np.asarray(actual[n], np.float64) - np.asarray(expected[n], np.float64)) for n in values]
    out["max_abs"] = float(max(d.max() for d in diffs))
    if "prediction" in expected:
        out["max_rel"] = float((diffs[0] / np.maximum(np.abs(expected["prediction"]), 1e-12)).max())
    return out


@pytest.mark.parametrize("name, fmt", CASES)
def test_parity_on_10000_rows(name, fmt, artifacts, fixture_path, rows):
    """ONNX Runtime and JPMML-Evaluator (the serving default) reproduce the library; pypmml does too, except on
    XGBoost pipelines' rows with an unseen category, which `second_opinion` reports as pmml-evaluators-disagree."""
    rows = rows[boosted_models.NUMERIC] if name in NATIVE else rows
    expected = reference(fixture_path(name), rows)
    atol, rtol = TOLERANCE[fmt]
    scale = np.max(np.abs(expected.get("prediction", [1.0])))
    answers = artifact_answers(artifacts(name, fmt), fmt, rows)
    for evaluator, actual in answers.items():
        found = errors(expected, actual)
        print(f"\nTABLE {name} {fmt} {evaluator} {found}")
        agrees = found.get("flip_rate", 0.0) == 0.0 and found["max_abs"] <= atol + rtol * scale
        if evaluator == "pypmml" and not agrees:
            assert name.startswith("xgb"), found  # the one family where pypmml departs from the library
            assert_disagreement_reported(expected, answers, rows, atol, rtol)
            continue
        assert agrees, (evaluator, found)


def assert_disagreement_reported(expected, answers, rows, atol, rtol):
    """The conversion's check of the second PMML engine names rows where the engines disagree."""
    from tfsconvert.convert.pmml_writer import second_opinion
    from tfsconvert.runtimes import per_row

    count = len(rows)
    findings, notes = second_opinion(per_row(expected, count), {e: per_row(a, count) for e, a in answers.items()},
                                     rows.to_dict("records"), atol, rtol, "model.pmml")
    assert [f.code for f in findings] == ["pmml-evaluators-disagree"], findings
    assert findings[0].message.startswith("jpmml and pypmml disagree on ") and "row " in findings[0].message
    assert notes[0].startswith("pypmml vs the source: max abs") and notes[0].endswith("(outside the tolerances)")


def assert_fields(name: str, fields: set[str]) -> None:
    """Regressors answer `prediction`; classifiers their label and probabilities (a boosted-tree PMML used to
    answer the label only)."""
    regressor = name.endswith("regression") or name == "lgbm_booster_txt"
    assert fields == {"prediction"} if regressor else "label" in fields and len(fields) >= 3, fields


@pytest.mark.parametrize("name, fmt", list(_case_list(served=True)))
def test_validate_replays_its_golden_file(name, fmt, artifacts):
    base = artifacts(name, fmt)
    version = assert_serves(base, records=len(golden.read_golden(base / "1" / "assets.extra" / "golden.jsonl")))
    assert_fields(name, {d["alias"] for r in version["golden"] for d in r["outputs"]})


@pytest.mark.parametrize("name, fmt", CASES)
def test_golden_file_replays_through_the_servables(name, fmt, artifacts):
    """Every golden request through the embedded server's own servable (each PMML engine): the answer matches
    the recorded one within the record's tolerances; no sockets (SERVED covers those)."""
    from google.protobuf.json_format import MessageToDict

    from tfsconvert.server import backends
    from tfsconvert.validate.replay import signatures_from_metadata

    version = artifacts(name, fmt) / "1"
    records = golden.read_golden(version / "assets.extra" / "golden.jsonl")
    assert len(records) >= 8  # the first rows and the worst ones
    for engine in pmml_runtime.ENGINES if fmt == "pmml" else ("jpmml",):
        servable = backends.load(version, ("serve",), pmml_evaluator=engine)
        defs = {k: MessageToDict(v, preserving_proto_field_name=True) for k, v in servable.signatures.items()}
        (signature,) = signatures_from_metadata({"metadata": {"signature_def": {"signature_def": defs}}}).values()
        assert_fields(name, set(signature.outputs))
        for record in records:
            actual = servable.run(record.signature_name, request_tensors(record.request, signature.inputs))
            expected = response_tensors(record.response, signature.outputs)
            diffs = compare(expected, actual, record.atol, record.rtol)
            assert all(d.ok for d in diffs), (engine, record.id, [d for d in diffs if not d.ok])
        servable.close()


def test_onnx_keeps_class_values_and_probabilities_as_a_tensor(artifacts):
    import onnx

    model = onnx.load(artifacts("lgbm_multiclass", "onnx") / "1" / "model.onnx")
    outputs = {o.name: o for o in model.graph.output}
    assert sorted(outputs) == ["label", "probabilities"]  # zipmap=False: no sequence of maps
    assert outputs["probabilities"].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert outputs["label"].type.tensor_type.elem_type == onnx.TensorProto.STRING
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["tfsconvert.classes"] == '["bronze", "gold", "silver"]'


@pytest.mark.parametrize("inner, opset_hint", [("Expected an int, got a boolean.", False),
                                                ("Opset 21 is not supported for domain ai.onnx.ml", True)])
def test_converter_errors_name_their_root_cause(fixture_path, inner, opset_hint):
    from tfsconvert.convert import sklearn_onnx, sklearn_source

    source = sklearn_source.load(fixture_path("hgb_binary"), None, False)
    try:
        try:
            raise TypeError(inner)
        except TypeError:
            raise ValueError("Unable to create node 'TreeEnsembleClassifier' with attributes={...")
    except ValueError as error:
        found = sklearn_onnx._conversion_failed(source, error, "1.20.0", 17)
    assert found.code == "onnx-conversion-failed" and found.message.endswith(f"TypeError: {inner}")
    assert "HistGradientBoostingClassifier" in found.message
    assert ("--opset" in found.hint) == opset_hint and ("tfsconvert pmml" in found.hint) != opset_hint


@pytest.mark.parametrize("module, name", [("xgboost.core", "_check_call"), ("xgboost.training", "train"),
                                          ("lightgbm.basic", "_LIB"), ("os", "system")])
def test_boosting_allowlist_still_refuses_other_globals(convert, tmp_path, module, name):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(f"c{module}\n{name}\n(S'touch {tmp_path}/PWNED'\ntR.".encode())
    result = convert("onnx", evil)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "untrusted-pickle" and f"{module}.{name}" in error["message"]
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("package", ["xgboost", "lightgbm"])
def test_missing_boosting_package_is_exit_3_with_the_pip_line(convert, fixture_path, monkeypatch, package):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else real(name, *a))
    result = convert("onnx", fixture_path("xgb_binary" if package == "xgboost" else "lgbm_binary"))
    error = result.json()["error"]
    assert result.exit_code == 3 and error["code"] == "missing-dependency"
    assert f"pip install 'tfsconvert[{package}]'" in error["hint"]


@pytest.mark.parametrize("engine, module", [("jpmml", "jpmml_evaluator"), ("pypmml", "pypmml")])
def test_missing_pmml_evaluator_is_exit_3_with_the_pip_line(convert, fixture_path, monkeypatch, engine, module):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    result = convert("pmml", fixture_path("gbt_binary"), "--pmml-evaluator", engine)
    error = result.json()["error"]
    assert result.exit_code == 3 and error["code"] == "missing-dependency"
    assert error["hint"].startswith("pip install ") and module.split("_")[0] in error["hint"].replace("-", "_")


def test_bad_pmml_evaluator_is_refused(convert, fixture_path):
    result = convert("pmml", fixture_path("gbt_binary"), "--pmml-evaluator", "jpmml4")
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "bad-option" and "jpmml, pypmml, both" in error["message"]


def test_internal_error_with_json_is_an_error_object_on_stdout(convert, fixture_path, monkeypatch):
    from tfsconvert.convert import tabular

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(tabular, "sample_rows", broken)
    result = convert("onnx", fixture_path("gbt_binary"))
    assert result.exit_code == 4
    assert result.json()["error"] == {"code": "internal-error", "message": "ZeroDivisionError: a bug",
                                      "hint": "run with --debug for the traceback"}


@pytest.mark.slow
def test_one_pmml_evaluator_for_parity_and_validate(convert, fixture_path, tmp_path):
    """--pmml-evaluator pypmml: parity through pypmml only; validate and serve with one engine."""
    result = convert("pmml", fixture_path("lgbm_binary"), "--pmml-evaluator", "pypmml")
    data = result.json()
    assert result.exit_code == 0, data
    assert not any("parity also checked" in note for note in data["notes"])
    base = tmp_path / data["base_path"]
    records = golden.read_golden(base / "1" / "assets.extra" / "golden.jsonl")
    version = assert_serves(base, len(records), "--pmml-evaluator", "jpmml")
    assert {r["engine"] for r in version["golden"]} == {"jpmml"}
