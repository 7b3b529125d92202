"""Request handling shared by REST and gRPC: signature lookup, input validation, runs (docs/tf-serving.md §3).

Every check raises a ServingError with TF Serving's code and message, so both front ends say the
same thing. Functions take a loaded servable; model/version resolution is the manager's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from tfsconvert.dtypes import dtype_name as array_dtype
from tfsconvert.naming import CLASSIFY_METHOD, DEFAULT_SIGNATURE, REGRESS_METHOD
from tfsconvert.server.backends import Servable
from tfsconvert.server.signatures import dtype_name
from tfsconvert.server.status import ServingError, invalid

# TF's DataTypeString names, used in TF's and TF Serving's messages.
TYPE_NAMES = {
    "DT_FLOAT": "float", "DT_DOUBLE": "double", "DT_INT32": "int32", "DT_INT64": "int64", "DT_INT16": "int16",
    "DT_INT8": "int8", "DT_UINT8": "uint8", "DT_UINT16": "uint16", "DT_UINT32": "uint32", "DT_UINT64": "uint64",
    "DT_STRING": "string", "DT_BOOL": "bool", "DT_HALF": "half", "DT_BFLOAT16": "bfloat16",
    "DT_COMPLEX64": "complex64", "DT_COMPLEX128": "complex128",
}
CLASSIFY_INPUT = "inputs"  # the one input of classify/regress signatures (docs/tf-serving.md §3.1)


def type_name(dtype: str) -> str:
    return TYPE_NAMES.get(dtype, dtype.removeprefix("DT_").lower())


def _set(names) -> str:
    return "{" + ",".join(sorted(names)) + "}"


@dataclass
class Outputs:
    """A predict result: the resolved signature name and each output with its signature dtype."""

    signature_name: str
    arrays: dict[str, np.ndarray]
    dtypes: dict[str, str]


@dataclass(frozen=True)
class Run:
    """A checked request: the one servable run it needs, and what turns the outputs into its result.

    Calling it runs it in this thread (gRPC, warmup); the REST front end starts the run itself
    and calls `result` when the outputs are in, so its event loop never waits on a model."""

    servable: Servable
    signature_name: str
    feeds: dict[str, np.ndarray]
    result: Callable[[dict[str, np.ndarray]], Any]

    def then(self, after: Callable[[Any], Any]) -> Run:
        """The same run, with `after` applied to its result."""
        return Run(self.servable, self.signature_name, self.feeds, lambda outputs: after(self.result(outputs)))

    def __call__(self):
        return self.result(self.servable.run(self.signature_name, self.feeds))


def find_signature(servable: Servable, name: str):
    """(resolved name, SignatureDef) for Predict; an empty name means `serving_default` (docs/tf-serving.md §3.1)."""
    name = name or DEFAULT_SIGNATURE
    if name not in servable.signatures:
        raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{name}" not found.')
    return name, servable.signatures[name]


def predict(servable: Servable, signature_name: str, inputs: dict[str, np.ndarray],
            output_filter: tuple[str, ...] = ()) -> Outputs:
    """Validate a Predict request as predict_util.cc does (docs/tf-serving.md §3.2), then run it."""
    return predict_run(servable, signature_name, inputs, output_filter)()


def predict_run(servable: Servable, signature_name: str, inputs: dict[str, np.ndarray],
                output_filter: tuple[str, ...] = ()) -> Run:
    """The checked Predict run, whose result is its Outputs."""
    name, signature = find_signature(servable, signature_name)
    _check_inputs(signature, inputs)
    wanted = _check_output_filter(signature, output_filter)
    dtypes = {alias: dtype_name(signature.outputs[alias]) for alias in wanted}
    return Run(servable, name, inputs, lambda arrays: Outputs(name, {alias: arrays[alias] for alias in wanted}, dtypes))


def _check_inputs(signature, inputs: dict[str, np.ndarray]) -> None:
    expected, sent = set(signature.inputs), set(inputs)
    if len(sent) != len(expected):
        raise invalid(f"input size does not match signature: {len(sent)}!={len(expected)} len({_set(sent)}) != "
                      f"len({_set(expected)}). Sent extra: {_set(sent - expected)}. Missing but required: "
                      f"{_set(expected - sent)}.")
    missing = sorted(expected - sent)  # same count, different names
    if missing:
        alias = missing[0]
        raise invalid(f"Signature input alias: {alias}(feed name: {signature.inputs[alias].name}) not found in "
                      f"request and no default value provided. Inputs expected to be in the request "
                      f"{_set(sent)}, or default input alias set: ")
    for index, alias in enumerate(sorted(expected)):
        want, got = dtype_name(signature.inputs[alias]), array_dtype(inputs[alias])
        if want != got:
            raise invalid(f"Expects arg[{index}] to be {type_name(want)} but {type_name(got)} is provided")


def _check_output_filter(signature, output_filter: tuple[str, ...]) -> list[str]:
    if not output_filter:
        return list(signature.outputs)
    seen = set()
    for alias in output_filter:
        if alias not in signature.outputs:
            raise invalid(f"output tensor alias not found in signature: {alias} Outputs expected to be in the "
                          f"set {_set(signature.outputs)}.")
        if alias in seen:
            raise invalid(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return list(output_filter)


# ---------------------------------------------------------------------------------------------
# Classify and Regress: serialized tf.Examples into the signature's `inputs` (docs/tf-serving.md §3.1)


def _example_signature(servable: Servable, signature_name: str, method: str, kind: str):
    name = signature_name or DEFAULT_SIGNATURE
    signature = servable.signatures.get(name)
    if signature is None:
        raise invalid(f"No signature was found with the name: {name}")
    if signature.method_name != method:
        raise invalid(f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}")
    if list(signature.inputs) != [CLASSIFY_INPUT]:
        raise invalid(f"Expected one input Tensor named '{CLASSIFY_INPUT}', found {_set(signature.inputs)}")
    return name, signature


def _examples_feeds(examples: list[bytes]) -> dict[str, np.ndarray]:
    if not examples:
        raise invalid("Input is empty.")
    batch = np.empty(len(examples), dtype=object)
    batch[:] = examples
    return {CLASSIFY_INPUT: batch}


def classify(servable: Servable, signature_name: str, examples: list[bytes]) -> tuple[str, list[list[tuple]]]:
    """(signature name, per example a list of (label, score)); label "" without `classes`, score 0.0
    without `scores` (docs/tf-serving.md §4.7)."""
    return classify_run(servable, signature_name, examples)()


def classify_run(servable: Servable, signature_name: str, examples: list[bytes]) -> Run:
    """The checked Classify run, whose result is classify()'s."""
    name, signature = _example_signature(servable, signature_name, CLASSIFY_METHOD, "classification")
    present = [key for key in ("classes", "scores") if key in signature.outputs]
    if not present or len(signature.outputs) != len(present):
        raise invalid(f"Expected classification signature outputs to be classes and/or scores, found "
                      f"{_set(signature.outputs)}")
    return Run(servable, name, _examples_feeds(examples), lambda outputs: (name, _classes(outputs, len(examples))))


def _classes(outputs: dict[str, np.ndarray], count: int) -> list[list[tuple]]:
    classes, scores = outputs.get("classes"), outputs.get("scores")
    width = (classes if classes is not None else scores).reshape(count, -1).shape[1]
    results = []
    for i in range(count):
        labels = ([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                   for v in classes.reshape(count, -1)[i]] if classes is not None else [""] * width)
        values = (scores.reshape(count, -1)[i].tolist() if scores is not None else [0.0] * width)
        results.append(list(zip(labels, values)))
    return results


def regress(servable: Servable, signature_name: str, examples: list[bytes]) -> tuple[str, list[float]]:
    """(signature name, one value per example) from the signature's `outputs` tensor."""
    return regress_run(servable, signature_name, examples)()


def regress_run(servable: Servable, signature_name: str, examples: list[bytes]) -> Run:
    """The checked Regress run, whose result is regress()'s."""
    name, signature = _example_signature(servable, signature_name, REGRESS_METHOD, "regression")
    if list(signature.outputs) != ["outputs"]:
        raise invalid(f"Expected one output Tensor named 'outputs', found {_set(signature.outputs)}")
    return Run(servable, name, _examples_feeds(examples), lambda outputs: (name, _values(outputs, len(examples))))


def _values(outputs: dict[str, np.ndarray], count: int) -> list[float]:
    values = outputs["outputs"]
    if values.size != count:
        raise invalid(f"Expected output Tensor shape to be [{count}] or [{count},1], got {list(values.shape)}")
    return [float(v) for v in values.reshape(-1)]
