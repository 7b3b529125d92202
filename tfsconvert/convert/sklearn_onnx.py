"""scikit-learn -> ONNX through skl2onnx, and ONNX Runtime to check it (docs/tabular.md).

Inputs: one per feature column, named after it, shape [N, 1]: numbers as float (FloatTensorType;
skl2onnx's tree converters only exist for float), strings as StringTensorType. A model whose raw
columns go into a ColumnTransformer is converted with those inputs directly; any other model
takes one numeric matrix, so a Concat node in front of it gathers the per-column inputs.
Outputs: `label` [N] and `probabilities` [N, classes] (no ZipMap: a plain tensor, columns in
`classes_` order) for a classifier, `prediction` [N, 1] for a regressor.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from pathlib import Path

import numpy as np

from tfsconvert.convert.sklearn_source import (LABEL, PREDICTION, STRING, SklearnSource, last_step,
                                               probability_field, unsupported_estimator)
from tfsconvert.errors import InputError, missing_dependency, one_line, root_cause
from tfsconvert.runtimes.onnx import PROBABILITIES
from tfsconvert.model import Signature, TensorSpec

_CONCAT_INPUT = "tfsconvert_features"
_ONNX_TYPES = {"DT_FLOAT": "tensor(float)", "DT_STRING": "tensor(string)", "DT_INT64": "tensor(int64)",
               "DT_BOOL": "tensor(bool)", "DT_DOUBLE": "tensor(double)"}


def _skl2onnx():
    try:
        import skl2onnx
    except ImportError:
        raise missing_dependency("skl2onnx", "onnx") from None
    return skl2onnx


def preflight(opset: int) -> None:
    """Before the source loads: skl2onnx and ONNX Runtime are installed and know `opset`."""
    import importlib.util

    skl2onnx = _skl2onnx()
    if importlib.util.find_spec("onnxruntime") is None:
        raise missing_dependency("onnxruntime", "onnx")
    highest = getattr(skl2onnx, "__max_supported_opset__", None)
    if highest is not None and opset > highest:
        raise InputError("unsupported-opset", f"skl2onnx {skl2onnx.__version__} supports ONNX opsets up to "
                         f"{highest}, not {opset}", f"use --opset {highest} or lower")
    if opset < 9:
        raise InputError("unsupported-opset", f"--opset {opset} is too old for skl2onnx's converters",
                         "use --opset 17 (the default)")


def _input_dtype(kind: str) -> str:
    return "DT_STRING" if kind == STRING else "DT_FLOAT"


def served_signature(source: SklearnSource, target_name: str) -> Signature:
    """Fields a client sends and gets (docs/tabular.md), with the ONNX tensor each comes from."""
    del target_name  # ONNX outputs have fixed names
    inputs = {f.name: TensorSpec(_input_dtype(f.kind), [-1], f.name, _ONNX_TYPES[_input_dtype(f.kind)])
              for f in source.features}
    dtypes = source.output_dtypes()
    if source.task == "regressor":
        outputs = {PREDICTION: TensorSpec("DT_FLOAT", [-1], f"{PREDICTION}[:, 0]", "tensor(float)")}
    else:
        outputs = {LABEL: TensorSpec(dtypes[LABEL], [-1], LABEL, _ONNX_TYPES.get(dtypes[LABEL]))}
        if source.has_proba:
            outputs.update({probability_field(c): TensorSpec("DT_FLOAT", [-1], f"{PROBABILITIES}[:, {j}]",
                                                             "tensor(float)") for j, c in enumerate(source.classes)})
    return Signature(None, inputs, outputs)


def _per_column(model) -> bool:
    """Whether the raw columns go straight into a ColumnTransformer (which takes one input per column)."""
    while hasattr(model, "steps") and model.steps:
        model = model.steps[0][1]
    return hasattr(model, "transformers_")


def write_onnx(source: SklearnSource, dest: Path, opset: int, target_name: str) -> list[str]:
    """Write `dest`; InputError `unsupported-estimator` naming what skl2onnx cannot convert. Returns notes."""
    skl2onnx = _skl2onnx()
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from skl2onnx.common.exceptions import MissingConverter, MissingShapeCalculator

    features = source.features
    per_column = _per_column(source.model)
    if per_column:
        initial = [(f.name, StringTensorType([None, 1]) if f.kind == STRING else FloatTensorType([None, 1]))
                   for f in features]
    else:
        strings = [f.name for f in features if f.kind == STRING]
        if strings:
            raise InputError("onnx-conversion-failed",
                             f"{source.path}: string column(s) {', '.join(strings)} do not go through a "
                             "ColumnTransformer, so they cannot be ONNX inputs of their own",
                             "put the encoders in a sklearn.compose.ColumnTransformer as the pipeline's first step")
        initial = [(_CONCAT_INPUT, FloatTensorType([None, len(features)]))]
    # onnxmltools' converters write ai.onnx.ml 3 (TreeEnsemble*); skl2onnx would otherwise pick a newer one
    model, final = _convertible(source.model)
    target_opset = {"": opset, "ai.onnx.ml": 3} if _register_boosting(final) else opset
    options = {id(final): {"zipmap": False}} if source.task == "classifier" else None
    try:
        with warnings.catch_warnings(), _integer_missing_flags():
            warnings.simplefilter("ignore")
            model = skl2onnx.convert_sklearn(model, initial_types=initial, options=options,
                                             target_opset=target_opset)
    except (MissingShapeCalculator, MissingConverter) as error:
        raise _unsupported(source, str(error), skl2onnx.__version__) from None
    except Exception as error:  # noqa: BLE001 - skl2onnx raises many types for what it cannot convert
        raise _conversion_failed(source, error, skl2onnx.__version__, opset) from None
    if not per_column:
        _gather_columns(model, [f.name for f in features])
    _name_outputs(model, source)
    return save_model(model, source, dest)


def _conversion_failed(source: SklearnSource, error: Exception, version: str, opset: int) -> InputError:
    """`onnx-conversion-failed` with the root cause of the converter's exception; --opset is suggested
    only when the opset is what failed."""
    cause = root_cause(error)
    chain = f"{error} {cause}".lower()
    step = source.final_estimator
    hint = (f"try another --opset (this one is {opset}); re-run with --debug for the traceback" if "opset" in chain
            else f"convert it to PMML instead: tfsconvert pmml {source.path}; or replace {type(step).__name__} "
                 "with an estimator skl2onnx converts (re-run with --debug for the traceback)")
    return InputError("onnx-conversion-failed", f"skl2onnx {version} could not convert {source.path} (ending in "
                      f"{type(step).__name__}): {one_line(cause)}", hint)


@contextlib.contextmanager
def _integer_missing_flags():
    """skl2onnx 1.20.0's HistGradientBoosting converter passes a Python bool (`missing = False` for every
    leaf) into the integer attribute `nodes_missing_value_tracks_true`, which protobuf refuses ("Expected
    an int, got a boolean"); during the conversion its `add_node` gets the flag as an int."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node

    def add_node(*args, nodes_missing_value_tracks_true=0, **kwargs):
        return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    tree_ensemble.add_node = add_node
    try:
        yield
    finally:
        tree_ensemble.add_node = original


def _convertible(model):
    """(model, its final estimator) as skl2onnx gets them: an XGBoost booster without feature names, which
    onnxmltools' converter would read as f0, f1, ... (a copy; the source stays untouched)."""
    final = last_step(model)
    if type(final).__module__.startswith("xgboost.") and final.get_booster().feature_names:
        import copy

        model = copy.deepcopy(model)
        final = last_step(model)
        final.get_booster().feature_names = None
    return model, final


def _register_boosting(estimator) -> bool:
    """Register onnxmltools' XGBoost/LightGBM converters with skl2onnx when the model ends in one (True)."""
    package = type(estimator).__module__.split(".")[0]
    if package not in ("xgboost", "lightgbm"):
        return False
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (calculate_linear_classifier_output_shapes,
                                                  calculate_linear_regressor_output_shapes)

    try:
        if package == "xgboost":
            from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost as converter
        else:
            from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm as converter
    except ImportError:
        raise missing_dependency("onnxmltools", "onnx") from None
    classifier = hasattr(estimator, "classes_")
    update_registered_converter(
        type(estimator), f"tfsconvert_{type(estimator).__name__}",
        calculate_linear_classifier_output_shapes if classifier else calculate_linear_regressor_output_shapes,
        converter, options={"nocl": [True, False], "zipmap": [True, False, "columns"]} if classifier else None)
    return True


def save_model(model, source: SklearnSource, dest: Path) -> list[str]:
    """Stamp the tfsconvert.* metadata (task, features, classes), check and write `dest`; returns notes.
    Shared by every tabular source (spark_onnx too)."""
    names = [o.name for o in model.graph.output]
    meta = {"tfsconvert.task": source.task, "tfsconvert.features": json.dumps([f.name for f in source.features])}
    if source.task == "classifier":
        meta["tfsconvert.classes"] = json.dumps(source.classes)
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    import onnx

    onnx.checker.check_model(model)
    dest.write_bytes(model.SerializeToString())
    inputs = ", ".join(f.name for f in source.features)
    return [f"model.onnx: inputs {inputs} (each [N, 1]); outputs {', '.join(names)}"
            + (f"; probabilities columns in class order {', '.join(map(str, source.classes))}"
               if PROBABILITIES in names else "")]


def _unsupported(source: SklearnSource, message: str, version: str) -> InputError:
    match = re.search(r"for type '<class '([\w.]+)'>'", message) or re.search(r"'<class '([\w.]+)'>'", message)
    if match is None:
        first = (message.splitlines() or [""])[0][:200]
        return InputError("unsupported-estimator", f"skl2onnx {version} cannot convert {source.path}: {first}",
                          "replace the step with one skl2onnx supports: https://onnx.ai/sklearn-onnx/supported.html")
    return unsupported_estimator(source, match.group(1), f"skl2onnx {version} has no converter for", "onnx")


def _gather_columns(model, names: list[str]) -> None:
    """Replace the one matrix input by one [N, 1] float input per column, concatenated in order."""
    from onnx import TensorProto, helper

    graph = model.graph
    internal = [vi for vi in graph.input if vi.name == _CONCAT_INPUT]
    for vi in internal:
        graph.input.remove(vi)
    graph.input.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, 1]) for name in names)
    graph.node.insert(0, helper.make_node("Concat", names, [_CONCAT_INPUT], axis=1, name="tfsconvert_gather_columns"))


def _name_outputs(model, source: SklearnSource) -> list[str]:
    """Rename the outputs to label/probabilities or prediction (dropping scores of a classifier without
    predict_proba); returns the names."""
    graph = model.graph
    wanted = [PREDICTION] if source.task == "regressor" else [LABEL, PROBABILITIES]
    current = [o.name for o in graph.output]
    if len(current) < len(wanted) or (source.task == "regressor" and len(current) != 1):
        raise InputError("onnx-conversion-failed", f"skl2onnx produced outputs {', '.join(current)} for "
                         f"{source.path}; expected {', '.join(wanted)}", "re-run with --debug")
    rename_tensors(graph, dict(zip(current, wanted)))
    if source.task == "classifier" and not source.has_proba:
        for output in [o for o in graph.output if o.name == PROBABILITIES]:
            graph.output.remove(output)
    return [o.name for o in graph.output]


def rename_tensors(graph, renames: dict[str, str]) -> None:
    """Rename tensors everywhere they are produced, consumed or listed as graph outputs."""
    for node in graph.node:
        node.output[:] = [renames.get(name, name) for name in node.output]
        node.input[:] = [renames.get(name, name) for name in node.input]
    for output in graph.output:
        output.name = renames.get(output.name, output.name)


def onnx_outputs(source, path: Path, rows: list[dict]) -> list[dict[str, np.ndarray]]:
    """The ONNX model's answer for every row (tfsconvert.runtimes.onnx, as the server runs it), as the source's
    response fields. `source`: a SklearnSource or SparkSource."""
    from tfsconvert.runtimes import per_row
    from tfsconvert.runtimes.onnx import OnnxModel

    columns = {f.name: [row[f.name] for row in rows] for f in source.features}
    return per_row(OnnxModel(path).predict(columns), len(rows))
