"""Keras 3 models as people write them for CTR ranking: dict inputs of mixed dtypes, preprocessing
layers with vocabularies, and dict or list heads. The reference is always the original `.keras`
file loaded by `keras.models.load_model` here, never anything tfsconvert wrote."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from conftest import converted, run_cli
from fixtures.keras_field_models import COUNTRIES, LABELS, QUERY_WORDS, USER_IDS, WIDE_BUCKETS, WIDE_IDS
from tfsconvert.compare import compare
from tfsconvert.runtimes.tf import ServingSession
from tfsconvert.samples import synthesize

FIXTURES = ["keras_wide_deep_ctr", "keras_wide_deep_list"]
INPUTS = {"user_id": "DT_INT64", "country": "DT_STRING", "query": "DT_STRING", "item_category": "DT_STRING",
          "price": "DT_FLOAT", "wide_ids": "DT_INT64"}
OUTPUTS = ["ctr", "cvr"]
ATOL = RTOL = 1e-6  # the SavedModel runs the same TensorFlow kernels as Keras
ROWS = 300
UNSEEN_USER, UNSEEN_COUNTRY, UNSEEN_WORD = 999_999, "ZZ", "zeppelin"


@pytest.fixture(scope="module", params=FIXTURES)
def conversion(request, fixture_path, tmp_path_factory) -> tuple[str, dict, Path]:
    """(fixture, JSON result, base path) of `tfsconvert saved-model FIXTURE --version 1`."""
    result, base = converted(fixture_path, tmp_path_factory, "saved-model", request.param, "--version", "1")
    return request.param, result, base


def _rows(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """ROWS rows in which every vocabulary value and one out-of-vocabulary value of each lookup appear."""

    def cycled(pool: list) -> np.ndarray:
        return rng.permutation(np.resize(np.array(pool, dtype=object), ROWS))

    words = [*QUERY_WORDS, UNSEEN_WORD]
    queries = [" ".join(rng.choice(words, rng.integers(0, 8))) for _ in range(ROWS)]
    queries[:len(words)] = words  # each word alone once; length 0 gives "", 7 words are cut to 5
    return {
        "user_id": cycled([*USER_IDS, UNSEEN_USER]).astype(np.int64).reshape(-1, 1),
        "country": cycled([c.encode() for c in [*COUNTRIES, UNSEEN_COUNTRY]]).reshape(-1, 1),
        "query": np.array([q.encode() for q in queries], dtype=object).reshape(-1, 1),
        "item_category": np.array([f"category-{i % 37}".encode() for i in range(ROWS)], dtype=object).reshape(-1, 1),
        "price": rng.lognormal(3.0, 1.5, (ROWS, 1)).astype(np.float32),
        "wide_ids": rng.integers(0, WIDE_BUCKETS, (ROWS, WIDE_IDS)).astype(np.int64),
    }


def _keras_answers(path: Path, rows: dict[str, np.ndarray], list_outputs: bool) -> dict[str, np.ndarray]:
    import keras

    model = keras.models.load_model(path, compile=False)
    answers = model(rows, training=False)
    if list_outputs:
        answers = dict(zip(OUTPUTS, answers))
    return {name: np.asarray(value) for name, value in answers.items()}


def test_signature_is_named_by_the_input_and_output_names(conversion):
    _, result, _ = conversion
    signature = result["signature"]
    assert {alias: spec["dtype"] for alias, spec in signature["inputs"].items()} == INPUTS
    assert signature["inputs"]["wide_ids"]["shape"] == [-1, WIDE_IDS]
    assert sorted(signature["outputs"]) == OUTPUTS
    assert all(spec["dtype"] == "DT_FLOAT" and spec["shape"] == [-1, 1] for spec in signature["outputs"].values())
    assert result["parity"]["samples"] == 256 and result["parity"]["ok"]
    assert result["findings"] == []


def test_a_moved_copy_answers_like_keras_on_vocabulary_and_unseen_values(conversion, fixture_path, tmp_path):
    """Tables are initialized by the SavedModel's own init op, with nothing outside the version dir."""
    fixture, _, base = conversion
    moved = tmp_path / "elsewhere" / "7"
    shutil.copytree(base / "1", moved)
    for file in (f for f in moved.rglob("*") if f.is_file()):  # no path to the build or Keras' unzip dir
        assert str(base).encode() not in file.read_bytes() and tempfile.gettempdir().encode() not in file.read_bytes()
    rows = _rows(np.random.default_rng(1))
    expected = _keras_answers(fixture_path(fixture), rows, list_outputs=fixture.endswith("list"))
    with ServingSession(moved) as served:
        actual = served.run("serving_default", rows)
    diffs = compare(expected, actual, ATOL, RTOL)
    assert [(d.alias, d.ok) for d in diffs] == [("ctr", True), ("cvr", True)], diffs
    # The lookups matter: unseen users and countries score differently from known ones.
    unseen = rows["user_id"][:, 0] == UNSEEN_USER
    assert 0 < unseen.sum() < ROWS and len(np.unique(expected["ctr"].round(6))) > ROWS // 2


def test_golden_requests_use_the_vocabularies(conversion):
    _, _, base = conversion
    lines = [json.loads(line) for line in (base / "1" / "assets.extra" / "golden.jsonl").read_text().splitlines()]
    inputs = [line["request"]["inputs"] for line in lines]
    countries = {row["country"][0][0] for row in inputs}
    users = {row["user_id"][0][0] for row in inputs}
    words = {word for row in inputs for word in row["query"][0][0].split()}
    assert countries <= {*COUNTRIES, "unseen"} and countries & set(COUNTRIES)
    assert users <= {*USER_IDS, max(USER_IDS) + 1} and users & set(USER_IDS)
    assert words <= {*QUERY_WORDS, "unseen"} and words & set(QUERY_WORDS)
    assert all(0 <= i < WIDE_BUCKETS for row in inputs for i in row["wide_ids"][0])


@pytest.mark.parametrize("fixture", FIXTURES)  # the list variant's lookups sit in a nested model
def test_samples_cover_each_vocabulary_and_one_unseen_value(fixture, fixture_path):
    from tfsconvert.convert import keras as keras_source

    source = keras_source.load(fixture_path(fixture))
    samples = synthesize(source.resolve({}, {}).inputs, 256, makers=source.value_makers())
    drawn = {alias: {v for s in samples for v in s[alias].ravel().tolist()} for alias in INPUTS}
    assert drawn["country"] == {c.encode() for c in COUNTRIES} | {b"unseen"}
    assert drawn["user_id"] == {*USER_IDS, max(USER_IDS) + 1}
    assert {w for q in drawn["query"] for w in q.split()} == {w.encode() for w in QUERY_WORDS} | {b"unseen"}
    assert max(len(q.split()) for q in drawn["query"]) == 5  # up to TextVectorization's sequence length
    assert drawn["wide_ids"] == set(range(WIDE_BUCKETS))
    assert all(s["wide_ids"].dtype == np.int64 and s["wide_ids"].shape == (1, WIDE_IDS) for s in samples)
    assert b"item_category-0" in drawn["item_category"]  # Hashing takes any string: default samples


def test_a_layer_giving_two_outputs_and_an_inverted_lookup(convert, fixture_path, tmp_path):
    """Two outputs of one layer get distinct names; the inverted lookup's strings are typed as strings
    (Keras' symbolic spec says int64) and answer like Keras for every index and one past the end."""
    import keras

    source = fixture_path("keras_shared_heads")
    result = convert("saved-model", source)
    assert result.exit_code == 0, result.stdout
    outputs = result.json()["signature"]["outputs"]
    assert {alias: spec["dtype"] for alias, spec in outputs.items()} == {
        "tower": "DT_FLOAT", "tower_1": "DT_FLOAT", "label_name": "DT_STRING"}
    rng = np.random.default_rng(2)
    rows = {"left": rng.standard_normal((ROWS, 3)).astype(np.float32),
            "right": rng.standard_normal((ROWS, 3)).astype(np.float32),
            "label_id": np.resize(np.arange(len(LABELS) + 2, dtype=np.int64), (ROWS, 1))}
    answers = keras.models.load_model(source, compile=False)([rows["left"], rows["right"], rows["label_id"]])
    expected = {alias: np.asarray(value) for alias, value in zip(["tower", "tower_1", "label_name"], answers)}
    with ServingSession(tmp_path / "models" / "shared_heads" / "1") as served:
        diffs = compare(expected, served.run("serving_default", rows), ATOL, RTOL)
    assert all(d.ok for d in diffs) and len(diffs) == 3, diffs
    assert set(expected["label_name"].ravel().tolist()) == {b"[UNK]", *(label.encode() for label in LABELS)}


@pytest.mark.parametrize("fixture", FIXTURES)
def test_onnx_names_the_lookup_ops_tf2onnx_cannot_convert(fixture, convert, fixture_path, tmp_path):
    result = convert("onnx", fixture_path(fixture))
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "unsupported-op"
    assert error["message"].startswith("tf2onnx ") and "LookupTableFindV2" in error["message"]
    assert error["message"].endswith("at opset 17")
    assert not (tmp_path / "models").exists()


def test_an_unknown_output_name_lists_the_dict_keys(convert, fixture_path, tmp_path):
    result = convert("saved-model", fixture_path("keras_wide_deep_ctr"), "--output", "click=clicks")
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "tensor-not-found"
    assert "'clicks'" in error["message"] and "ctr" in error["message"] and error["hint"] == "--output ALIAS=ctr"


def test_renamed_outputs_keep_the_inputs(convert, fixture_path, tmp_path):
    result = convert("saved-model", fixture_path("keras_wide_deep_list"), "--output", "click=ctr", "--samples", "16")
    assert result.exit_code == 0, result.stdout
    signature = result.json()["signature"]
    assert sorted(signature["inputs"]) == sorted(INPUTS) and list(signature["outputs"]) == ["click"]


@pytest.mark.parametrize("fixture", FIXTURES)
def test_inspect_shows_every_named_input_with_its_dtype(fixture, fixture_path):
    result = run_cli("inspect", fixture_path(fixture), "--json")
    assert result.exit_code == 0, result.stdout
    details = result.json()["versions"][0]["details"]
    assert {name: spec["dtype"] for name, spec in details["inputs"].items()} == INPUTS
    assert sorted(details["outputs"]) == OUTPUTS


@pytest.mark.slow  # starts the sandboxed server (TensorFlow) in its own process
def test_validate_replays_the_golden_requests_over_rest_and_grpc(conversion):
    _, _, base = conversion
    result = run_cli("validate", base, "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report
    (version,) = report["versions"]
    assert version["served"] and version["golden_failed"] == 0 and version["golden_passed"] == 16
    assert sorted({r["protocol"] for r in version["golden"]}) == ["grpc", "rest"]


def test_a_model_saved_before_it_was_built_is_refused_clearly(convert, tmp_path):
    import warnings

    import keras

    path = tmp_path / "unbuilt.keras"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns that the model is not built: the point here
        keras.Sequential([keras.layers.Dense(2)]).save(path)
    result = convert("saved-model", path)
    error = result.json()["error"]
    assert result.exit_code == 2 and error["code"] == "unknown-input-shape"
    assert str(path) in error["message"] and "re-save" in error["hint"]
