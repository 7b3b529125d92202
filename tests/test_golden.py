"""Golden requests: TF Serving's JSON value encoding (docs/tf-serving.md §4.8), REST bodies (§4.5, §4.6),
sample inputs, golden.jsonl, and output comparison."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from tfsconvert import golden
from tfsconvert.compare import OutputDiff, compare, merge
from tfsconvert.dtypes import NUMPY_DTYPES
from tfsconvert.errors import InputError
from tfsconvert.golden import GoldenRecord
from tfsconvert.model import TensorSpec
from tfsconvert.rest_codec import (decode_tensor, encode_tensor, request_tensors, response_tensors, rest_request,
                                   rest_response)
from tfsconvert.samples import load_samples, synthesize

F32 = np.float32


def dumps(array, dtype: str, alias: str = "") -> str:
    return json.dumps(encode_tensor(np.asarray(array), dtype, alias))


def strings(*values: bytes) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


# --- §4.8 value encoding ------------------------------------------------------------------


@pytest.mark.parametrize("value, text", [
    (3.0, "3.0"),                                   # whole numbers get ".0"
    (1e-05, "1e-05"),
    (0.1, "0.1"),                                   # not 0.10000000149011612
    (1234567.0, "1234567.0"),                       # %g gives 1.23457e+06, which does not round-trip
    (np.nextafter(F32(0.1), F32(1)), "0.100000009"),  # needs 9 significant digits
    (-0.0, "-0.0"),
    (np.nan, "NaN"), (np.inf, "Infinity"), (-np.inf, "-Infinity"),
])
def test_spec_4_8_float32(value, text):
    assert dumps(np.array([value], F32), "DT_FLOAT") == f"[{text}]"


def test_spec_4_8_double_uses_17_digits_when_needed():
    assert dumps(np.array([0.1 + 0.2, 0.5]), "DT_DOUBLE") == "[0.30000000000000004, 0.5]"


def test_spec_4_8_float32_input_given_as_float64_is_narrowed_first():
    assert dumps(np.array([0.1]), "DT_FLOAT") == "[0.1]"


def test_spec_4_8_integers_bools_and_scalars():
    assert dumps(np.array([[2**40, -3]], np.int64), "DT_INT64") == "[[1099511627776, -3]]"
    assert dumps(np.array([1, 255], np.uint8), "DT_UINT8") == "[1, 255]"
    assert dumps(np.array([True, False]), "DT_BOOL") == "[true, false]"
    assert dumps(np.array(7, np.int32), "DT_INT32") == "7"          # rank 0: a bare value
    assert dumps(np.array(2.5, F32), "DT_FLOAT") == "2.5"


def test_spec_4_8_strings():
    assert dumps(strings("caf\u00e9".encode()), "DT_STRING") == '["caf\\u00e9"]'
    assert encode_tensor(strings(b"\xff\x00"), "DT_STRING") == [{"b64": "/wA="}]
    assert encode_tensor(strings(b"abc"), "DT_STRING", "image_bytes") == [{"b64": "YWJj"}]
    assert encode_tensor(strings(b"abc"), "DT_STRING", "bytes_in") == ["abc"]
    assert encode_tensor(np.array([b"abc"]), "DT_STRING") == ["abc"]     # numpy S dtype


@pytest.mark.parametrize("dtype", ["DT_HALF", "DT_UINT16", "DT_COMPLEX64"])
def test_spec_4_8_dtypes_tf_serving_rest_cannot_write(dtype):
    with pytest.raises(InputError) as caught:
        encode_tensor(np.zeros(1), dtype, "x")
    assert caught.value.code == "unsupported-dtype" and dtype in caught.value.message


def test_empty_dimensions_keep_their_shape():
    assert encode_tensor(np.zeros((2, 0), F32), "DT_FLOAT") == [[], []]
    assert decode_tensor([[], []], "DT_FLOAT").shape == (2, 0)


@pytest.mark.parametrize("array, dtype, alias", [
    (np.array([[0.1, -2.5e-8], [np.nan, np.inf]], F32), "DT_FLOAT", ""),
    (np.array([0.1 + 0.2, -1e300]), "DT_DOUBLE", ""),
    (np.array([[-(2**63), 2**63 - 1]], np.int64), "DT_INT64", ""),
    (np.array([2**64 - 1], np.uint64), "DT_UINT64", ""),
    (np.array([-128, 127], np.int8), "DT_INT8", ""),
    (np.array([[True], [False]]), "DT_BOOL", ""),
    (strings(b"plain", b"\xff\xfe", b""), "DT_STRING", ""),
    (strings(b"plain"), "DT_STRING", "img_bytes"),
    (np.array(4.0, F32), "DT_FLOAT", ""),
])
def test_encode_decode_round_trip(array, dtype, alias):
    text = json.dumps(encode_tensor(array, dtype, alias))
    back = decode_tensor(json.loads(text), dtype)
    assert back.dtype == NUMPY_DTYPES[dtype] and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("value, dtype, fragment", [
    ([1.0], "DT_INT64", "1.0 is not of type DT_INT64"),   # TF Serving rejects 1.0 for integers
    ([True], "DT_INT32", "true is not of type DT_INT32"),
    ([1], "DT_BOOL", "1 is not of type DT_BOOL"),
    (["1"], "DT_FLOAT", '"1" is not of type DT_FLOAT'),
    ([300], "DT_UINT8", "out of range for DT_UINT8"),
    ([[1, 2], [3]], "DT_INT64", "ragged list"),
    ([{"b64": "not base64!"}], "DT_STRING", "not valid base64"),
    ([5], "DT_STRING", "not a string"),
])
def test_decode_rejects_values_of_the_wrong_type(value, dtype, fragment):
    with pytest.raises(ValueError, match=fragment):
        decode_tensor(value, dtype)


# --- §4.5 / §4.6 REST bodies ----------------------------------------------------------------

ONE_OUT = {"probs": TensorSpec("DT_FLOAT", [-1, 2])}
TWO_OUT = {"probs": TensorSpec("DT_FLOAT", [-1, 2]), "label": TensorSpec("DT_INT64", [-1])}


def test_rest_request_is_columnar_object_form_even_for_one_input():
    inputs = {"x": TensorSpec("DT_FLOAT", [-1, 2])}
    body = rest_request({"x": np.array([[1, 0.5]], F32)}, inputs, "serving_default")
    assert body == {"signature_name": "serving_default", "inputs": {"x": [[1.0, 0.5]]}}


def test_spec_4_6_one_output_omits_its_name():
    body = rest_response({"probs": np.array([[0.25, 0.75]], F32)}, ONE_OUT)
    assert json.dumps(body) == '{"outputs": [[0.25, 0.75]]}'


def test_spec_4_6_several_outputs_are_keyed_by_alias():
    outputs = {"probs": np.array([[0.25, 0.75]], F32), "label": np.array([1], np.int64)}
    body = rest_response(outputs, TWO_OUT)
    assert body == {"outputs": {"probs": [[0.25, 0.75]], "label": [1]}}


def test_response_tensors_inverts_rest_response():
    outputs = {"probs": np.array([[0.25, 0.75]], F32), "label": np.array([1], np.int64)}
    for specs in (ONE_OUT, TWO_OUT):
        back = response_tensors(rest_response(outputs, specs), specs)
        assert sorted(back) == sorted(specs)
        for alias in specs:
            np.testing.assert_array_equal(back[alias], outputs[alias])
            assert back[alias].dtype == outputs[alias].dtype


def test_response_tensors_reads_row_format_predictions():
    body = {"predictions": [{"probs": [0.5, 0.5], "label": 0}, {"probs": [0.0, 1.0], "label": 1}]}
    back = response_tensors(body, TWO_OUT)
    assert back["probs"].shape == (2, 2) and back["label"].tolist() == [0, 1]
    assert response_tensors({"predictions": [[0.5, 0.5]]}, ONE_OUT)["probs"].shape == (1, 2)


def test_response_output_missing_from_the_signature_is_still_reported():
    # A golden response recorded with two outputs, checked against a signature with one.
    expected = response_tensors({"outputs": {"probs": [[1.0, 0.0]], "label": [0]}}, ONE_OUT)
    assert expected["label"].dtype == np.int64
    actual = {"probs": np.array([[1.0, 0.0]], F32)}
    diffs = {d.alias: d for d in compare(expected, actual, atol=1e-6, rtol=0)}
    assert diffs["probs"].ok and (diffs["label"].ok, diffs["label"].problem) == (False, "missing output")


def test_response_single_tensor_for_a_multi_output_signature_is_an_error():
    with pytest.raises(ValueError, match="single tensor but the signature has 2"):
        response_tensors({"outputs": [[1.0, 0.0]]}, TWO_OUT)


TWO_IN = {"x": TensorSpec("DT_FLOAT", [-1, 2]), "tag": TensorSpec("DT_STRING", [-1])}


@pytest.mark.parametrize("body", [
    {"inputs": {"x": [[1.0, 2.0], [3.0, 4.0]], "tag": ["a", {"b64": "Yg=="}], "extra": 1}},
    {"instances": [{"x": [1.0, 2.0], "tag": "a"}, {"x": [3.0, 4.0], "tag": {"b64": "Yg=="}}]},
])
def test_request_tensors_reads_columnar_and_row_forms(body):
    back = request_tensors(body, TWO_IN)
    assert sorted(back) == ["tag", "x"]
    assert back["x"].dtype == F32 and back["x"].tolist() == [[1, 2], [3, 4]]
    assert back["tag"].tolist() == [b"a", b"b"]


def test_request_tensors_plain_forms_for_one_input():
    inputs = {"x": TensorSpec("DT_FLOAT", [-1, 2])}
    assert request_tensors({"instances": [[1, 2]]}, inputs)["x"].shape == (1, 2)
    assert request_tensors({"inputs": [[1, 2]]}, inputs)["x"].shape == (1, 2)


def test_request_tensors_missing_input():
    with pytest.raises(ValueError, match="no value for input.s. tag"):
        request_tensors({"inputs": {"x": [[1.0, 2.0]]}}, TWO_IN)
    with pytest.raises(ValueError, match="neither 'inputs' nor 'instances'"):
        request_tensors({"signature_name": "serving_default"}, TWO_IN)


# --- synthesize -----------------------------------------------------------------------------

SYNTH = {"x": TensorSpec("DT_FLOAT", [-1, 4]), "ids": TensorSpec("DT_INT64", [-1]),
         "words": TensorSpec("DT_STRING", [-1]), "grid": TensorSpec("DT_UINT8", [-1, -1, 2]),
         "flag": TensorSpec("DT_BOOL", []), "fixed": TensorSpec("DT_DOUBLE", [2, 3])}


def test_synthesize_shapes_and_dtypes():
    samples = synthesize(SYNTH, 3)
    assert len(samples) == 3
    for i, sample in enumerate(samples):
        assert sorted(sample) == sorted(SYNTH)
        shapes = {alias: array.shape for alias, array in sample.items()}
        assert shapes == {"x": (1, 4), "ids": (1,), "words": (1,), "grid": (1, 3, 2), "flag": (),
                          "fixed": (2, 3)}
        for alias, spec in SYNTH.items():
            assert sample[alias].dtype == NUMPY_DTYPES[spec.dtype]
        assert sample["words"].tolist() == [f"words-{i}".encode()]
        assert 0 <= sample["ids"].min() and sample["ids"].max() < 10


def test_synthesize_value_ranges():
    samples = synthesize({"i": TensorSpec("DT_INT32", [-1, 50]), "u": TensorSpec("DT_UINT8", [-1, 500]),
                                 "f": TensorSpec("DT_FLOAT", [-1, 500])}, 2)
    ints = np.concatenate([s["i"] for s in samples])
    assert ints.min() == 0 and ints.max() == 9
    assert np.concatenate([s["u"] for s in samples]).max() > 200
    floats = np.concatenate([s["f"] for s in samples])
    assert floats.min() < 0 < floats.max() and abs(floats.mean()) < 0.2


def test_synthesize_is_deterministic_per_seed_and_input_order():
    first = synthesize(SYNTH, 2, seed=3)
    again = synthesize(dict(reversed(list(SYNTH.items()))), 2, seed=3)
    other = synthesize(SYNTH, 2, seed=4)
    for a, b in zip(first, again):
        assert all(np.array_equal(a[k], b[k]) for k in SYNTH)
    assert not np.array_equal(first[0]["x"], other[0]["x"])


def test_synthesize_unknown_rank_asks_for_sample_inputs():
    with pytest.raises(InputError) as caught:
        synthesize({"ok": TensorSpec("DT_FLOAT", [-1]), "blob": TensorSpec("DT_FLOAT", None)}, 1)
    error = caught.value
    assert error.code == "unknown-input-shape" and "'blob'" in error.message
    assert error.hint == "pass --sample-inputs FILE (JSON or .npz)"


def test_synthesize_unsupported_dtype():
    with pytest.raises(InputError) as caught:
        synthesize({"c": TensorSpec("DT_COMPLEX64", [-1])}, 1)
    assert caught.value.code == "unsupported-dtype"


# --- load_samples -----------------------------------------------------------------------------

SAMPLE_IN = {"x": TensorSpec("DT_FLOAT", [-1, 2]), "ids": TensorSpec("DT_INT64", [-1]),
             "text": TensorSpec("DT_STRING", [-1])}
X = [[1.0, 2.0], [3.0, 4.5]]
IDS = [7, 8]
TEXT = ["a", "b\u00e9"]
ROWS = [{"x": x, "ids": i, "text": t} for x, i, t in zip(X, IDS, TEXT)]


def write_json(tmp_path, doc) -> object:
    path = tmp_path / "samples.json"
    path.write_text(json.dumps(doc))
    return path


def assert_two_samples(samples):
    assert len(samples) == 2
    for i, sample in enumerate(samples):
        assert sorted(sample) == ["ids", "text", "x"]
        assert sample["x"].dtype == F32 and sample["x"].tolist() == [X[i]]
        assert sample["ids"].dtype == np.int64 and sample["ids"].tolist() == [IDS[i]]
        assert sample["text"].dtype == object and sample["text"].tolist() == [TEXT[i].encode()]


@pytest.mark.parametrize("doc", [
    {"x": X, "ids": IDS, "text": TEXT},
    ROWS,
    {"signature_name": "serving_default", "inputs": {"x": X, "ids": IDS, "text": TEXT}},
    {"instances": ROWS},
], ids=["columnar", "rows", "rest-inputs", "rest-instances"])
def test_load_samples_json_forms(tmp_path, doc):
    assert_two_samples(load_samples(write_json(tmp_path, doc), SAMPLE_IN))


def test_load_samples_npz(tmp_path):
    path = tmp_path / "samples.npz"
    np.savez(path, x=np.array(X), ids=np.array(IDS, np.int32), text=np.array(TEXT))
    assert_two_samples(load_samples(path, SAMPLE_IN))


def test_load_samples_single_input_plain_rows(tmp_path):
    samples = load_samples(write_json(tmp_path, {"instances": [[1, 2], [3, 4]]}),
                                  {"x": TensorSpec("DT_FLOAT", [-1, 2])})
    assert [s["x"].tolist() for s in samples] == [[[1, 2]], [[3, 4]]]


def load_error(path, inputs=SAMPLE_IN) -> InputError:
    with pytest.raises(InputError) as caught:
        load_samples(path, inputs)
    assert str(path) in caught.value.message and "\n" not in caught.value.message
    return caught.value


def test_load_samples_missing_alias(tmp_path):
    error = load_error(write_json(tmp_path, {"x": X, "ids": IDS}))
    assert error.code == "missing-input"
    assert "text" in error.message and "expected aliases: x, ids, text" in error.message


def test_load_samples_unknown_alias(tmp_path):
    error = load_error(write_json(tmp_path, [{**row, "idz": 1} for row in ROWS]))
    assert error.code == "input-alias-not-found"
    assert "idz" in error.message and "expected aliases: x, ids, text" in error.message


def test_load_samples_unknown_alias_in_npz(tmp_path):
    path = tmp_path / "samples.npz"
    np.savez(path, x=np.array(X), ids=np.array(IDS), text=np.array(TEXT), input_1=np.zeros(2))
    assert load_error(path).code == "input-alias-not-found"


def test_load_samples_bad_json(tmp_path):
    path = tmp_path / "samples.json"
    path.write_text('{"x": [[1.0, 2.0]],\n "ids": [1,]}')
    error = load_error(path)
    assert error.code == "bad-sample-inputs" and "not valid JSON" in error.message
    assert "line 2 column" in error.message


@pytest.mark.parametrize("doc, fragment", [
    ({"x": X, "ids": [7], "text": TEXT}, "different sample counts: x=2, ids=1, text=2"),
    ({"x": X, "ids": [7.5, 8], "text": TEXT}, "input 'ids': JSON value 7.5 is not of type DT_INT64"),
    ({"x": X, "ids": 7, "text": TEXT}, "input 'ids': a scalar"),
    ({"x": [[1.0, 2.0, 3.0]] * 2, "ids": IDS, "text": TEXT},
     "input 'x': a sample has shape [1, 3], the signature takes [-1, 2]"),
    ({"x": X, "ids": [[7], [8]], "text": TEXT}, "input 'ids': a sample has shape [1, 1], the signature takes [-1]"),
    ([ROWS[0], {"x": [1.0, 2.0]}], "item 1 of the list must be an object with the keys of item 0"),
    ({"x": [], "ids": [], "text": []}, "no samples"),
    ("just a string", "expected a JSON object or list"),
])
def test_load_samples_bad_values(tmp_path, doc, fragment):
    error = load_error(write_json(tmp_path, doc))
    assert error.code == "bad-sample-inputs" and fragment in error.message


def test_load_samples_npz_values_that_do_not_fit(tmp_path):
    path = tmp_path / "samples.npz"
    np.savez(path, x=np.array(X), ids=np.array([1.5, 2.0]), text=np.array(TEXT))
    assert "cannot be converted to DT_INT64" in load_error(path).message
    as_uint8 = {**SAMPLE_IN, "ids": TensorSpec("DT_UINT8", [-1])}
    np.savez(path, x=np.array(X), ids=np.array([7, 300]), text=np.array(TEXT))
    assert "out of range for DT_UINT8" in load_error(path, as_uint8).message
    np.savez(path, x=np.array(X), ids=np.array(IDS), text=np.array(TEXT))   # int64 ids that fit
    assert [s["ids"].dtype for s in load_samples(path, as_uint8)] == [np.uint8, np.uint8]
    np.savez(path, x=np.array(X), ids=np.array(IDS), text=np.array([1, 2]))
    assert "not a string type" in load_error(path).message


def test_load_samples_missing_file_and_wrong_suffix(tmp_path):
    assert load_error(tmp_path / "nope.json").code == "path-not-found"
    (tmp_path / "samples.csv").write_text("x\n1\n")
    assert load_error(tmp_path / "samples.csv").code == "bad-sample-inputs"
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    assert load_error(tmp_path / "broken.npz").code == "bad-sample-inputs"


# --- compare / merge ----------------------------------------------------------------------------

def by_alias(diffs) -> dict[str, OutputDiff]:
    return {d.alias: d for d in diffs}


def test_compare_identical_is_ok():
    outputs = {"p": np.array([[0.5, np.nan]], F32), "n": np.array([3], np.int64), "s": strings(b"a")}
    diffs = compare(outputs, {k: v.copy() for k, v in outputs.items()}, atol=1e-6, rtol=1e-5)
    assert [(d.alias, d.ok, d.problem) for d in diffs] == [("p", True, None), ("n", True, None), ("s", True, None)]
    assert by_alias(diffs)["p"].max_abs == 0.0 and by_alias(diffs)["s"].max_abs is None


def test_compare_float_beyond_tolerance():
    expected = {"p": np.array([[1.0, 2.0, 0.1]])}
    actual = {"p": np.array([[1.0, 2.5, 0.1 + 1e-7]])}
    diff = compare(expected, actual, atol=1e-6, rtol=1e-3)[0]
    assert (diff.ok, diff.dtype, diff.atol, diff.rtol) == (False, "DT_DOUBLE", 1e-6, 1e-3)
    assert diff.max_abs == pytest.approx(0.5)
    assert diff.max_rel == pytest.approx(0.25)  # 0.5 / |2.0|; the last entry is within atol
    assert diff.problem == "1 of 3 values outside atol + rtol*|expected|"


def test_compare_relative_error_against_zero_is_floored_at_float32_epsilon():
    diff = compare({"p": np.zeros(1)}, {"p": np.array([1e-7])}, atol=1e-6, rtol=0)[0]
    assert diff.ok and diff.max_rel == pytest.approx(1e-7 / np.finfo(np.float32).eps)


def test_compare_float_within_rtol_passes():
    diff = compare({"p": np.array([1000.0], F32)}, {"p": np.array([1000.5], F32)}, atol=0, rtol=1e-3)[0]
    assert diff.ok and diff.max_abs == pytest.approx(0.5) and diff.max_rel == pytest.approx(5e-4)


def test_compare_nan_and_infinity():
    same = compare({"p": np.array([np.nan, np.inf])}, {"p": np.array([np.nan, np.inf])}, atol=0, rtol=0)[0]
    assert same.ok and same.max_abs == 0.0
    moved = compare({"p": np.array([np.nan, 1.0])}, {"p": np.array([1.0, np.nan])}, atol=1, rtol=1)[0]
    assert not moved.ok and "NaN" in moved.problem
    inf = compare({"p": np.array([np.inf])}, {"p": np.array([1e30])}, atol=0, rtol=1.0)[0]
    assert not inf.ok and inf.max_abs == np.inf


def test_compare_integer_mismatch_is_exact():
    diff = compare({"n": np.array([1, 5, 3])}, {"n": np.array([1, 2, 3])}, atol=10, rtol=10)[0]
    assert (diff.ok, diff.max_abs, diff.max_rel, diff.problem) == (False, 3.0, None, "1 of 3 values differ")


def test_compare_string_mismatch():
    diff = compare({"s": strings(b"a", b"b")}, {"s": np.array(["a", "c"])}, atol=0, rtol=0)[0]
    assert (diff.ok, diff.max_abs, diff.problem) == (False, None, "1 of 2 values differ")


def test_compare_reports_names_then_dtypes_and_shapes_for_every_output():
    expected = {"a": np.zeros((1, 4), F32), "b": np.zeros(1, np.int64), "c": np.zeros(1, F32),
                "d": np.zeros(1, F32)}
    actual = {"a": np.zeros((1, 3), F32), "b": np.zeros(1, F32), "d": np.zeros(1, np.float64),
              "extra": np.zeros(1, F32)}
    diffs = by_alias(compare(expected, actual, atol=1e-6, rtol=1e-5))
    assert diffs["a"].problem == "shape [1, 3] != expected [1, 4]"
    assert diffs["b"].problem == "dtype DT_FLOAT != expected DT_INT64"
    assert diffs["c"].problem == "missing output"
    assert diffs["extra"].problem == "unexpected output"
    assert diffs["d"].ok  # float32 vs float64 is the same kind
    assert [d.ok for d in diffs.values()].count(False) == 4


def test_output_diff_to_json():
    diff = OutputDiff("p", "DT_FLOAT", 0.5, 0.25, 1e-6, 1e-5, False, "1 of 3 values differ")
    assert diff.to_json() == {"alias": "p", "dtype": "DT_FLOAT", "max_abs": 0.5, "max_rel": 0.25, "atol": 1e-6,
                              "rtol": 1e-5, "ok": False, "problem": "1 of 3 values differ"}
    assert json.loads(json.dumps(diff.to_json())) == diff.to_json()


def test_merge_combines_samples_per_output():
    first = [OutputDiff("p", "DT_FLOAT", 0.1, 0.01, 1, 1, True),
             OutputDiff("n", "DT_INT64", 0.0, None, 1, 1, True)]
    second = [OutputDiff("p", "DT_FLOAT", 0.05, 0.2, 1, 1, False, "late"),
              OutputDiff("n", "DT_INT64", 2.0, None, 1, 1, False, "1 of 1 values differ")]
    third = [OutputDiff("p", "DT_FLOAT", None, None, 1, 1, False, "missing output"),
             OutputDiff("n", "DT_INT64", 0.0, None, 1, 1, True)]
    merged = merge([first, second, third])
    assert [(d.alias, d.max_abs, d.max_rel, d.ok, d.problem) for d in merged] == [
        ("p", 0.1, 0.2, False, "late"), ("n", 2.0, None, False, "1 of 1 values differ")]
    assert first[0].ok and first[0].max_rel == 0.01  # inputs are not modified
    assert merge([]) == []


# --- golden.jsonl -------------------------------------------------------------------------------

RECORD = GoldenRecord("sample-0", "serving_default",
                      {"signature_name": "serving_default", "inputs": {"x": [[1.0, 2.0]]}},
                      {"outputs": [[0.1, float("nan")]]}, rtol=1e-5, atol=1e-6)


def test_record_json_matches_design_4_4():
    assert RECORD.to_json() == {"id": "sample-0", "model_spec": {"signature_name": "serving_default"},
                                "request": RECORD.request, "response": RECORD.response,
                                "rtol": 1e-5, "atol": 1e-6}
    bare = GoldenRecord("a", "s", {}, {})
    assert "rtol" not in bare.to_json() and "atol" not in bare.to_json()


def test_write_read_golden_round_trip(tmp_path):
    path = tmp_path / "golden.jsonl"
    second = GoldenRecord("sample-1", "other", {"instances": ["caf\u00e9"]}, {"predictions": ["x"]})
    golden.write_golden(path, [RECORD, second])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and ": " not in lines[0]                # one compact object per line
    assert "NaN" in lines[0] and "caf\u00e9" in lines[1]           # as TF Serving writes them
    back = golden.read_golden(path)
    assert back[1] == second and back[0].id == "sample-0" and (back[0].rtol, back[0].atol) == (1e-5, 1e-6)
    assert np.isnan(back[0].response["outputs"][0][1])


@pytest.mark.parametrize("line, fragment", [
    ('{"id": "b", "model_spec": {"signature_name": "s"}, "request": {}', "not valid JSON"),
    ("[1, 2]", "a line must be a JSON object"),
    ('{"model_spec": {"signature_name": "s"}, "request": {}, "response": {}}', "'id' must be a JSON string"),
    ('{"id": "b", "model_spec": {}, "request": {}, "response": {}}', "'model_spec.signature_name'"),
    ('{"id": "b", "model_spec": {"signature_name": "s"}, "request": {}}', "'response' must be a JSON object"),
    ('{"id": "b", "model_spec": {"signature_name": "s"}, "request": {}, "response": {}, "atol": "1"}',
     "'atol' must be a non-negative number"),
])
def test_read_golden_bad_line_names_path_and_line(tmp_path, line, fragment):
    path = tmp_path / "golden.jsonl"
    good = json.dumps(RECORD.to_json())
    path.write_text(f"{good}\n\n{line}\n{good}\n")
    with pytest.raises(InputError) as caught:
        golden.read_golden(path)
    assert caught.value.code == "bad-golden-file"
    assert caught.value.message.startswith(f"{path}:3: ") and fragment in caught.value.message


def test_read_golden_missing_file(tmp_path):
    with pytest.raises(InputError) as caught:
        golden.read_golden(tmp_path / "golden.jsonl")
    assert caught.value.code == "path-not-found"


def test_golden_and_tfrecord_do_not_import_tensorflow():
    # Static validation reads golden and warmup files on machines without TensorFlow.
    probe = "import sys, tfsconvert.golden, tfsconvert.tfrecord; print('tensorflow' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr
