"""TF Serving's JSON for responses (util/json_tensor.cc, docs/tf-serving.md §4.6): output tensors in
row (`predictions`) or columnar (`outputs`) form, classify and regress results. Numbers, bools and strings
are written in C (_rest_json.c) when the module has it; the Python writers here give the same text."""

from __future__ import annotations

import json
import math

import numpy as np

from tfsconvert import accel
from tfsconvert.dtypes import numpy_dtype
from tfsconvert.rest_codec import encode_tensor
from tfsconvert.server.core import type_name
from tfsconvert.server.rest_json import JSON_DTYPES
from tfsconvert.server.status import invalid

_rest_json = accel.load("tfsconvert.server", "_rest_json")  # or its pure-Python twin, which has neither:
# texts (the JSON of each slice along dimension 0) and predictions (a row answer's list, whole)


def decimal_text(value: float, single: bool) -> str:
    """A float as TF Serving's WriteDecimal writes it: `%g` if that reads back as the same float32
    (`single`) or double, else 9 or 17 significant digits; `.0` added to whole numbers not in
    exponent form. `9e+06`, `1.43577434e+09`, `0.2`, `100000.0`, `NaN`, `-Infinity`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = "%g" % value
    back = float(text)
    if (float(np.float32(back)) if single else back) != value:
        text = "%.*g" % (9 if single else 17, value)
    return text if "." in text or "e" in text else text + ".0"


def classify_response(results: list[list[tuple[str, float]]]) -> bytes:
    """`{"results": [[[label, score], ...], ...]}`, scores at float precision (ClassificationResult's)."""
    texts = ("[" + ", ".join(f"[{json.dumps(label, ensure_ascii=False)}, {_float32_text(score)}]"
                             for label, score in labels) + "]" for labels in results)
    return f'{{"results": [{", ".join(texts)}]}}'.encode()


def regress_response(values: list[float]) -> bytes:
    """`{"results": [value, ...]}` at float precision (RegressionResult's)."""
    return f'{{"results": [{", ".join(map(_float32_text, values))}]}}'.encode()


def _float32_text(value: float) -> str:
    with np.errstate(over="ignore"):
        return decimal_text(float(np.float32(value)), True)


def _tensor_json(array, dtype: str, alias: str) -> str:
    """A tensor's JSON text: floats as decimal_text writes them (in C), other values as json.dumps
    writes encode_tensor's."""
    if dtype in ("DT_FLOAT", "DT_DOUBLE"):
        return _rest_json.decimals(np.asarray(array, dtype=numpy_dtype(dtype), order="C"))
    if dtype not in JSON_DTYPES:
        raise invalid(f"Failed to write JSON value for tensor type: {type_name(dtype)}")
    if np.ndim(array) and _in_c(dtype):
        return "[" + ", ".join(_c_texts(array, dtype, alias)) + "]"
    return json.dumps(encode_tensor(np.asarray(array), dtype, alias), allow_nan=True)


def _in_c(dtype: str) -> bool:
    return hasattr(_rest_json, "texts") and dtype in JSON_DTYPES


def _b64(dtype: str, alias: str) -> bool:
    """Strings of an alias ending in `_bytes` are written as base64 (rest_codec.encode_tensor)."""
    return dtype == "DT_STRING" and alias.endswith("_bytes")


def _c_texts(array, dtype: str, alias: str) -> list[str]:
    return _rest_json.texts(np.asarray(array, dtype=numpy_dtype(dtype), order="C"), _b64(dtype, alias))


def _row_texts(array: np.ndarray, dtype: str, alias: str) -> list[str]:
    """The JSON text of each slice along dimension 0."""
    if _in_c(dtype):
        return _c_texts(array, dtype, alias)
    return [_tensor_json(array[i], dtype, alias) for i in range(array.shape[0])]


def _object(texts: dict[str, str]) -> str:
    return "{" + ", ".join(f"{json.dumps(alias)}: {text}" for alias, text in texts.items()) + "}"


def columnar_response(arrays: dict[str, np.ndarray], dtypes: dict[str, str]) -> bytes:
    """`{"outputs": tensor}` for one output, else `{"outputs": {alias: tensor}}`."""
    texts = {alias: _tensor_json(array, dtypes[alias], alias) for alias, array in arrays.items()}
    return f'{{"outputs": {next(iter(texts.values())) if len(texts) == 1 else _object(texts)}}}'.encode()


def row_response(arrays: dict[str, np.ndarray], dtypes: dict[str, str]) -> bytes:
    """`{"predictions": [row, ...]}`: slices along dim 0, objects by alias for several outputs."""
    batch = None
    for alias, array in arrays.items():
        array = np.asarray(array)
        if array.ndim == 0:
            raise invalid(f"Tensor name: {alias} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise invalid(f"Tensor name: {alias} has inconsistent batch size: {array.shape[0]} expecting: {batch}")
        batch = array.shape[0]
    if hasattr(_rest_json, "predictions") and arrays and all(_in_c(dtypes[alias]) for alias in arrays):
        keys = [""] if len(arrays) == 1 else [f"{json.dumps(alias)}: " for alias in arrays]
        listed = _rest_json.predictions([np.asarray(array, dtype=numpy_dtype(dtypes[alias]), order="C")
                                         for alias, array in arrays.items()], keys,
                                        [_b64(dtypes[alias], alias) for alias in arrays])
        return f'{{"predictions": {listed}}}'.encode()
    columns = [_row_texts(np.asarray(array), dtypes[alias], alias) for alias, array in arrays.items()]
    if len(arrays) == 1:
        texts = columns[0]
    else:
        keys = [f"{json.dumps(alias)}: " for alias in arrays]
        texts = ["{" + ", ".join(key + text for key, text in zip(keys, row)) + "}" for row in zip(*columns)]
    return f'{{"predictions": [{", ".join(texts)}]}}'.encode()
