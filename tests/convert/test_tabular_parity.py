"""Parity of scikit-learn conversions on rows that look like real data: threshold-aware synthesized
rows, --sample-data with blanks, label flips and --allow-flips, the worst rows in golden.jsonl.
The references are computed here from the fitted estimators themselves."""

from __future__ import annotations

import joblib
import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest

from conftest import assert_serves
from fixtures.classic_models import _stock_pickle
from tfsconvert import golden
from tfsconvert.convert import sklearn_onnx, sklearn_source, tabular


def _thresholds(estimator, column: int) -> list[float]:
    trees = [estimator] if hasattr(estimator, "tree_") else list(np.ravel(estimator.estimators_))
    return [float(t) for tree in trees for f, t in zip(tree.tree_.feature, tree.tree_.threshold) if f == column]


def _columns(rows: list[dict], name: str) -> set:
    return {row[name] for row in rows}


def test_rows_sit_on_each_split_threshold_and_its_neighbours(fixture_path):
    model = joblib.load(fixture_path("sklearn_tree_ensemble"))
    source = sklearn_source.load(fixture_path("sklearn_tree_ensemble"), None)
    rows = tabular.synthesize(source.features)
    assert len(rows) >= 1024
    for index, name in enumerate(model.feature_names_in_):
        values = _columns(rows, name)
        thresholds = _thresholds(model, index)
        assert thresholds
        for t in thresholds:
            t32 = np.float32(t)
            assert {t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf), float(t32),
                    float(np.nextafter(t32, np.float32(-np.inf))), float(np.nextafter(t32, np.float32(np.inf)))
                    } <= values, (name, t)
            assert round(t, 2) in values  # the decimal grid: 2.4500000477 -> 2.45


def test_thresholds_behind_a_scaler_are_mapped_back_and_categories_include_an_unseen_one(fixture_path):
    model = joblib.load(fixture_path("sklearn_missing"))
    preprocess, forest = model.named_steps["preprocess"], model.named_steps["forest"]
    scaler = preprocess.named_transformers_["num"].named_steps["scale"]
    source = sklearn_source.load(fixture_path("sklearn_missing"), None)
    rows = tabular.synthesize(source.features)
    for index, name in enumerate(["sepal_length", "sepal_width", "petal_length"]):
        values = _columns(rows, name)
        inputs = {t * scaler.scale_[index] + scaler.mean_[index] for t in _thresholds(forest, index)}
        assert inputs and inputs <= values, name
        assert None in values  # a blank: the median imputer fills it
    colors = _columns(rows, "color")
    assert colors == {"red", "green", "blue", tabular.UNSEEN}  # handle_unknown="ignore" takes an unseen one
    # The source answers every synthesized row (blanks and the unseen colour included).
    assert len(source.predict(rows)) == len(rows)


# ---------------------------------------------------------------------------------------------
# A model whose ONNX disagrees on one threshold


@pytest.fixture
def stump(tmp_path):
    """A one-split tree on 'x' (threshold 4.5): left 'low', right 'high'."""
    from sklearn.tree import DecisionTreeClassifier

    frame = pd.DataFrame({"x": np.arange(10, dtype=float)})
    labels = np.where(frame["x"] > 4.5, "high", "low")
    path = tmp_path / "stump.joblib"
    with _stock_pickle():
        joblib.dump(DecisionTreeClassifier(max_depth=1).fit(frame, labels), path)
    return path


def _one_ulp_lower(monkeypatch) -> list[float]:
    """Make skl2onnx's tree threshold one float32 ulp lower; returns [new threshold]."""
    write = sklearn_onnx.write_onnx
    moved: list[float] = []

    def write_moved(source, dest, opset, target_name):
        notes = write(source, dest, opset, target_name)
        model = onnx.load(dest)
        (tree,) = [n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier"]
        values = next(a for a in tree.attribute if a.name == "nodes_values")
        values.floats[0] = float(np.nextafter(np.float32(values.floats[0]), np.float32(-np.inf)))
        moved.append(values.floats[0])
        onnx.save(model, dest)
        return notes

    monkeypatch.setattr(sklearn_onnx, "write_onnx", write_moved)
    return moved


def _expected_flips(stump, threshold: float) -> tuple[int, int]:
    """(rows whose label the moved threshold changes, rows), from the fitted tree on the synthesized rows."""
    model = joblib.load(stump)
    rows = tabular.synthesize(sklearn_source.load(stump, None).features)
    x = np.array([row["x"] for row in rows], dtype=np.float32)
    source_left = model.predict(pd.DataFrame({"x": x.astype(np.float64)})) == "low"
    return int(np.count_nonzero(source_left != (x <= np.float32(threshold)))), len(rows)


def test_a_threshold_moved_by_one_ulp_flips_labels_and_fails(convert, stump, monkeypatch, tmp_path):
    moved = _one_ulp_lower(monkeypatch)
    result = convert("onnx", stump)
    flips, rows = _expected_flips(stump, moved[0])
    assert flips > 0
    error = result.json()["error"]
    assert result.exit_code == 1 and error["code"] == "parity-failed", error
    assert f"label: {flips} of {rows} rows flipped ({flips / rows:.2%})" in error["message"]
    assert "--allow-flips" in error["hint"] and not (tmp_path / "models").exists()


def test_allow_flips_accepts_them_and_golden_keeps_only_reproduced_rows(convert, stump, monkeypatch, tmp_path):
    moved = _one_ulp_lower(monkeypatch)
    result = convert("onnx", stump, "--allow-flips", "0.01")
    assert result.exit_code == 0, result.stdout
    flips, rows = _expected_flips(stump, moved[0])
    label = result.json()["parity"]["outputs"][0]
    assert (label["alias"], label["flips"], label["rows"], label["ok"]) == ("label", flips, rows, True)
    assert label["flip_rate"] == flips / rows
    for alias in ("probability(high)", "probability(low)"):
        (row,) = [o for o in result.json()["parity"]["outputs"] if o["alias"] == alias]
        assert row["rows_over"] == flips and row["max_abs"] == 1.0
    base = tmp_path / "models" / "stump"
    records = golden.read_golden(base / "1" / "assets.extra" / "golden.jsonl")
    assert_serves(base, len(records))  # no flipped row in golden: validate passes


def test_allow_flips_below_the_flip_rate_still_fails(convert, stump, monkeypatch):
    _one_ulp_lower(monkeypatch)
    result = convert("onnx", stump, "--allow-flips", "0.0001")
    assert result.exit_code == 1 and "rows flipped" in result.json()["error"]["message"]


@pytest.mark.parametrize("rate", ["-0.1", "1.5"])
def test_allow_flips_outside_zero_to_one_is_refused(convert, stump, rate):
    result = convert("onnx", stump, "--allow-flips", rate)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "bad-option" and "--allow-flips" in error["message"]


# ---------------------------------------------------------------------------------------------
# Worst rows in golden.jsonl; --sample-data with blanks


def test_golden_holds_the_first_rows_and_the_worst_ones(convert, fixture_path, tmp_path):
    src = fixture_path("sklearn_pipeline")
    result = convert("onnx", src)
    assert result.exit_code == 0, result.stdout
    artifact = tmp_path / "models" / "pipeline" / "1"
    records = golden.read_golden(artifact / "assets.extra" / "golden.jsonl")
    ids = [int(r.id.split("-")[1]) for r in records]
    assert ids[:8] == list(range(8))
    # The largest probability differences, computed here: scikit-learn against ONNX Runtime.
    source = sklearn_source.load(src, None)
    rows = tabular.synthesize(source.features)
    expected = joblib.load(src).predict_proba(source.frame(rows))
    session = onnxruntime.InferenceSession(str(artifact / "model.onnx"), providers=["CPUExecutionProvider"])
    types = {"tensor(string)": object, "tensor(float)": np.float32, "tensor(double)": np.float64}
    feeds = {i.name: np.array([[row[i.name]] for row in rows], dtype=types[i.type]) for i in session.get_inputs()}
    _, actual = session.run(None, feeds)
    gaps = np.abs(expected - actual.astype(np.float64)).max(axis=1)
    worst = sorted(range(len(rows)), key=lambda i: (-gaps[i], i))[:8]
    assert set(worst) <= set(ids) and ids[8:] == [i for i in worst if i >= 8]
    assert result.json()["parity"]["rows"] == "synthesized"
    assert any("--sample-data" in note for note in result.json()["notes"])


@pytest.mark.parametrize("name", ["missing.csv", "missing.parquet"])
@pytest.mark.parametrize("target", ["onnx", "pmml"])
def test_sample_data_with_blanks_goes_through_the_imputer(convert, fixture_path, tmp_path, name, target):
    src = fixture_path("sklearn_missing")
    data = src.parent / name
    result = convert(target, src, "--sample-data", data)
    assert result.exit_code == 0, result.stdout
    parity = result.json()["parity"]
    assert parity["ok"] and parity["samples"] == 40 and parity["rows"] == "sample-data"
    assert not any("--sample-data" in note for note in result.json()["notes"][1:])
    frame = pd.read_csv(src.parent / "missing.csv")
    blank = frame[["sepal_length", "sepal_width", "petal_length"]].isna().any(axis=1)
    assert 5 < blank.sum() < 40
    records = golden.read_golden(tmp_path / "models" / "missing" / "1" / "assets.extra" / "golden.jsonl")
    ids = [int(r.id.split("-")[1]) for r in records]
    assert ids and not blank.iloc[ids].any()  # a REST instance has no missing value
    labels = joblib.load(src).predict(frame.drop(columns="species").iloc[ids])
    assert [r.response["predictions"][0]["label"] for r in records] == list(labels)
    assert_serves(tmp_path / "models" / "missing", len(records))


def test_a_text_value_in_a_numeric_column_is_named(convert, fixture_path, tmp_path):
    src = fixture_path("sklearn_missing")
    frame = pd.read_csv(src.parent / "missing.csv")
    frame["petal_length"] = ["" if pd.isna(v) else str(v) for v in frame["petal_length"]]  # text, blanks ""
    frame.loc[3, "petal_length"] = "n/a"
    data = tmp_path / "typed.parquet"
    frame.to_parquet(data)
    error = convert("pmml", src, "--sample-data", data).json()["error"]
    assert error["code"] == "bad-sample-data"
    assert f"--sample-data {data}: row 4, column 'petal_length' is 'n/a', not a number" in error["message"]
    assert "'petal_length'" in error["hint"]


def test_a_blank_the_model_cannot_take_is_named(convert, fixture_path, tmp_path):
    data = tmp_path / "rows.csv"
    data.write_text("sepal_length,sepal_width,petal_length,color\n5.1,3.5,1.4,red\n6.7,,5.6,blue\n")
    result = convert("onnx", fixture_path("sklearn_pipeline"), "--sample-data", data)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "bad-sample-data"
    assert error["message"].startswith(f"--sample-data {data}: row 2, column 'sepal_width' is blank")


def _booster_thresholds(model, column: int) -> list[float]:
    """The split thresholds on `column`, read from the library's own dump (XGBoost's text dump, float32
    values; LightGBM's JSON dump), independently of tfsconvert's reading of the tree table."""
    import re

    if hasattr(model, "get_booster"):
        dump = "".join(model.get_booster().get_dump())
        return [float(np.float32(t)) for t in re.findall(rf"\[f{column}<([^\]]+)\]", dump)]
    found, stack = [], [t["tree_structure"] for t in model.booster_.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            if node["split_feature"] == column and node["decision_type"] == "<=":
                found.append(float(node["threshold"]))
            stack += [node["left_child"], node["right_child"]]
    return found


@pytest.mark.parametrize("name", ["xgb_binary", "lgbm_multiclass"])
def test_rows_sit_on_xgboost_and_lightgbm_thresholds_and_their_neighbours(fixture_path, name):
    """The boosters' splits on the imputed numeric columns (the ColumnTransformer's first three outputs) are
    read from the booster and become synthesized rows: each threshold, one ulp either side, its decimal."""
    from fixtures import boosted_models

    model = joblib.load(fixture_path(name))
    booster = model.steps[-1][1]
    rows = tabular.synthesize(sklearn_source.load(fixture_path(name), None).features)
    for index, column in enumerate(boosted_models.NUMERIC):
        values, thresholds = _columns(rows, column), _booster_thresholds(booster, index)
        assert thresholds, column
        for t in thresholds:
            assert {t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)} <= values, (column, t)
