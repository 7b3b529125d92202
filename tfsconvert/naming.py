"""The names tfsconvert and TF Serving agree on (files, signature key, tags, methods), each defined
once, the generic tensor names that make clients send the wrong names (deployment error 3), and a
tabular model's names: its response fields and its input columns."""

from __future__ import annotations

import re
from pathlib import Path

from tfsconvert.errors import InputError

# Files of a version directory (docs/architecture.md "Versioned layout", "Golden requests").
GOLDEN_FILE = Path("assets.extra") / "golden.jsonl"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"

DEFAULT_SIGNATURE = "serving_default"  # the key a request without signature_name asks for
SERVE_TAGS = ("serve",)  # the exact tag set TF Serving loads (--saved_model_tags)
PREDICT_METHOD = "tensorflow/serving/predict"

# TF Serving's status codes (tensorflow.error.Code = the gRPC code numbers), by name.
STATUS_CODES = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
    "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
    "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}

# Default names frameworks hand out when nobody chose one.
_GENERIC = re.compile(
    r"""^(
        (input|inputs|output|outputs|args|arg|x|y|in|out|features?|data|tensor)(_?\d+)?
      | (identity|dense|keras_tensor|input_layer|serving_default_.*|statefulpartitionedcall.*|partitionedcall.*)(_?\d+)?
      | (input|output)_tensor(_?\d+)?
      | x\d+ | field_?\d+ | column_?\d+ | f\d+
    )(:\d+)?$""",
    re.IGNORECASE | re.VERBOSE,
)

# Names that look generic but are what a well-named model is expected to use.
_FINE = {"features", "feature"}


def is_generic(name: str) -> bool:
    """True for default-looking names such as `input_1`, `args_0`, `output_0`, `Identity`, `dense_3`, `x`."""
    return name.lower() not in _FINE and bool(_GENERIC.match(name))


CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
# The keys TF Serving's Classify and Regress APIs look up: required names, never to be renamed.
API_KEYS = {CLASSIFY_METHOD: ({"inputs"}, {"classes", "scores"}), REGRESS_METHOD: ({"inputs"}, {"outputs"})}


def is_api_key(method: str | None, alias: str, output: bool) -> bool:
    """True when `alias` is a key the Classify/Regress API of a signature with `method` requires."""
    keys = API_KEYS.get(method or "")
    return keys is not None and alias in keys[output]


def generic_aliases(signature) -> list[tuple[str, str]]:
    """(`--input`/`--output`, alias) for each generic alias of a Signature, API keys excepted."""
    return [("--input", a) for a in signature.inputs
            if is_generic(a) and not is_api_key(signature.method, a, False)] + \
           [("--output", a) for a in signature.outputs
            if is_generic(a) and not is_api_key(signature.method, a, True)]


# The response fields of a tabular model (docs/tabular.md), JPMML's own names.
LABEL = "label"
PREDICTION = "prediction"


def probability_field(cls) -> str:
    """The response field of one class's probability: `probability(setosa)`."""
    return f"probability({cls})"


def response_fields(task: str, classes: list | None, has_proba: bool) -> dict[str, str]:
    """A classifier's or regressor's response fields -> TF dtype of the source's values, in order."""
    from tfsconvert.dtypes import label_dtype

    if task == "regressor":
        return {PREDICTION: "DT_DOUBLE"}
    fields = {LABEL: label_dtype(classes)}
    if has_proba:
        fields.update({probability_field(c): "DT_DOUBLE" for c in classes})
    return fields


def feature_names(path: Path, model, class_name: str, given: list[str] | None) -> tuple[list[str], bool]:
    """A tabular model's input names and whether it was fitted with them: `feature_names_in_`, else
    `--feature-names` (`given`), else InputError (never x1..xN)."""
    fitted = getattr(model, "feature_names_in_", None)
    count = getattr(model, "n_features_in_", None)
    if fitted is not None:
        names = [str(n) for n in fitted]
        if given is not None and given != names:
            raise InputError("feature-names-mismatch",
                             f"{path} was fitted with named columns {','.join(names)}; --feature-names "
                             f"{','.join(given)} would not match what the model reads",
                             "leave out --feature-names (it is for models fitted on a plain array)")
        return names, True
    if count is None:
        raise not_fitted(path, class_name)
    if given is None:
        raise InputError(
            "missing-feature-names",
            f"{path} was fitted on a plain array, so its {count} inputs have no names; the converted model's "
            f"fields would be called x1..x{count}, which is how clients end up sending the wrong fields",
            f"name them in column order: --feature-names {','.join(f'name{i + 1}' for i in range(min(count, 3)))}"
            f"{',...' if count > 3 else ''} ({count} names), or fit the model on a pandas DataFrame")
    if len(given) != count:
        raise InputError("bad-feature-names",
                         f"--feature-names gives {len(given)} names but {path} takes {count} features",
                         f"give exactly {count} comma-separated names, in the order of the training columns")
    return list(given), False


def not_fitted(path: Path, class_name: str):
    """InputError `not-fitted` for an estimator saved before it was fitted."""
    return InputError("not-fitted", f"{path} holds an unfitted {class_name}",
                      "fit the model before saving it: joblib.dump(model.fit(X, y), 'model.joblib')")
