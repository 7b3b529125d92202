"""Spark ML -> ONNX through onnxmltools' Spark converter (docs/tabular.md).

The served stages are converted: label-only stages (a StringIndexer building the label column)
and everything after the classifier/regressor (an IndexToString, whose onnxmltools 1.16.0
converter writes a LabelEncoder ONNX Runtime rejects) are left out; the class labels are put back
with a Gather over the class names. Inputs and outputs are those of the scikit-learn ONNX models
(sklearn_onnx): one [N, 1] input per column (numbers as float, as onnxmltools wants them),
`label` [N] and `probabilities` [N, classes], or `prediction`.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from tfsconvert.convert.sklearn_onnx import LABEL, PREDICTION, PROBABILITIES, rename_tensors, save_model
from tfsconvert.convert.spark_session import quiet
from tfsconvert.convert.spark_source import SparkPlan, SparkSource, java_message
from tfsconvert.errors import InputError, missing_dependency

_CLASS_NAMES = "tfsconvert_class_names"
_ONE_HOT = "org.apache.spark.ml.feature.OneHotEncoderModel"
_ONE_HOT_CONVERTED = {("keep", True), ("error", False)}  # (handleInvalid, dropLast) onnxmltools 1.16 accepts
_SUPPORTED_LIST = "https://github.com/onnx/onnxmltools/tree/main/onnxmltools/convert/sparkml/operator_converters"


def _onnxmltools():
    try:
        with quiet():
            import onnxmltools
            from onnxmltools.convert.common.onnx_ex import get_maximum_opset_supported
    except ImportError as error:
        raise missing_dependency(error.name or "onnxmltools", "onnx") from None
    return onnxmltools, get_maximum_opset_supported()


def preflight(opset: int | None) -> int:
    """The opset to convert at: `opset`, default the newest onnxmltools supports; InputError beyond it."""
    onnxmltools, highest = _onnxmltools()
    if opset is None:
        return highest
    if opset > highest:
        raise InputError("unsupported-opset", f"onnxmltools {onnxmltools.__version__} converts Spark models up to "
                         f"ONNX opset {highest}, not {opset}", f"use --opset {highest} or lower (or leave it out)")
    if opset < 9:
        raise InputError("unsupported-opset", f"--opset {opset} is too old for onnxmltools' Spark converters",
                         f"use --opset {highest} (the default for Spark sources)")
    return opset


def check_stages(plan: SparkPlan) -> None:
    """Before Spark starts, from the pipeline's metadata: InputError `unsupported-stage` for a served stage
    onnxmltools has no converter for, or a OneHotEncoder whose settings its converter refuses."""
    onnxmltools, _ = _onnxmltools()
    from onnxmltools.convert.sparkml.ops_names import sparkml_operator_name_map

    converted = {cls.__name__ for cls in sparkml_operator_name_map}
    served = [m for m in plan.stages[:plan.predictor + 1] if m.serving]
    missing = [m.describe() for m in served if m.cls.rsplit(".", 1)[-1] not in converted]
    if missing:
        raise InputError("unsupported-stage", f"onnxmltools {onnxmltools.__version__} has no Spark converter for "
                         f"{', '.join(missing)} in {plan.path}",
                         f"replace the stage with one onnxmltools converts ({_SUPPORTED_LIST}), or try the other "
                         f"format: tfsconvert pmml {plan.path}")
    for meta in served:
        if meta.cls != _ONE_HOT:
            continue
        settings = (meta.params.get("handleInvalid", "error"), bool(meta.params.get("dropLast", True)))
        if settings not in _ONE_HOT_CONVERTED:
            raise InputError("unsupported-stage", f"{meta.describe()} in {plan.path} has handleInvalid "
                             f"'{settings[0]}' with dropLast={settings[1]}; onnxmltools {onnxmltools.__version__} "
                             "converts a OneHotEncoder only with ('keep', dropLast=True) or ('error', dropLast=False), "
                             "which match ONNX's OneHotEncoder",
                             "refit with OneHotEncoder(dropLast=False) (or handleInvalid='keep' with dropLast=True), "
                             f"or try the other format: tfsconvert pmml {plan.path}")


def served_stages(source: SparkSource) -> list:
    """The stages a request goes through, up to the predictor (label-only stages left out)."""
    plan = source.plan
    return [stage for meta, stage in zip(plan.stages[:plan.predictor + 1], source.flat) if meta.serving]


def write_onnx(source: SparkSource, dest: Path, opset: int) -> list[str]:
    """Write `dest`; InputError `unsupported-stage` naming every stage onnxmltools cannot convert."""
    onnxmltools, _ = _onnxmltools()
    from onnxmltools.convert.common.data_types import FloatTensorType, StringTensorType
    from pyspark.ml import PipelineModel

    stages = served_stages(source)  # check_stages has vetted them
    initial = [(f.name, StringTensorType([None, 1]) if f.kind == "string" else FloatTensorType([None, 1]))
               for f in source.features]
    chatter = io.StringIO()  # its linear classifier converter pprints its attributes on stdout
    try:
        with quiet(), contextlib.redirect_stdout(chatter):
            model = onnxmltools.convert_sparkml(PipelineModel(stages), source.path.name, initial,
                                                target_opset=opset, spark_session=source.session)
    except Exception as error:  # noqa: BLE001 - the converters raise many types
        raise InputError("onnx-conversion-failed", f"onnxmltools {onnxmltools.__version__} could not convert "
                         f"{source.path}: {type(error).__name__}: {java_message(error)}",
                         "re-run with --debug for the details; a different --opset can help") from None
    _one_default_domain(model)
    _binary_splits_by_value(model, _binary_slots(source))
    _name_outputs(model, source)
    notes = save_model(model, source, dest)
    dropped = [m.describe() for position, m in enumerate(source.plan.stages)
               if not m.serving or position > source.plan.predictor]
    if dropped:
        notes.append(f"not in model.onnx (not needed to serve the fields): {', '.join(dropped)}")
    return notes


def _one_default_domain(model) -> None:
    """onnxmltools 1.16.0 imports the default domain twice ("" at 8, "ai.onnx" at 13) and tags some nodes
    "ai.onnx", which onnx.checker rejects; keep one "" import at the higher version."""
    default = [entry for entry in model.opset_import if entry.domain in ("", "ai.onnx")]
    if len(default) < 2:
        return
    version = max(entry.version for entry in default)
    for entry in default:
        model.opset_import.remove(entry)
    model.opset_import.add(domain="", version=version)
    for node in model.graph.node:
        if node.domain == "ai.onnx":
            node.domain = ""


def _binary_slots(source: SparkSource) -> set[int]:
    """The predictor's feature slots Spark treats as categorical with two values (one-hot slots)."""
    with quiet():
        empty = source.session.createDataFrame([], source.struct())
        field = source.model.transform(empty).schema[source.predictor.getFeaturesCol()]
    attrs = field.metadata.get("ml_attr", {}).get("attrs", {})
    return {a["idx"] for a in attrs.get("binary", [])} | {
        a["idx"] for a in attrs.get("nominal", []) if len(a.get("vals", [])) == 2}


def _binary_splits_by_value(model, slots: set[int]) -> None:
    """onnxmltools 1.16 writes a categorical split `feature in {c}` as `feature <= c`, wrong for c = 1 on a
    one-hot slot (every value goes left); on a two-valued slot the split is `feature == c`."""
    for node in model.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        attrs = {a.name: a for a in node.attribute}
        features, modes = attrs["nodes_featureids"].ints, attrs["nodes_modes"].strings
        for i, feature in enumerate(features):
            if feature in slots and modes[i] == b"BRANCH_LEQ":
                modes[i] = b"BRANCH_EQ"


def _name_outputs(model, source: SparkSource) -> None:
    """Outputs `label` (+ `probabilities`) or `prediction`, nothing else."""
    from onnx import TensorProto, helper

    predictor = source.predictor
    graph = model.graph
    prediction = predictor.getPredictionCol()
    produced = {o.name for o in graph.output}
    if prediction not in produced:
        raise InputError("onnx-conversion-failed", f"onnxmltools produced outputs {', '.join(sorted(produced))} "
                         f"for {source.path}, not the prediction column {prediction}", "re-run with --debug")
    renames, wanted = {}, []
    if source.task == "regressor":
        renames[prediction], wanted = PREDICTION, [PREDICTION]
    else:
        index = prediction
        kind = {o.name: o.type.tensor_type.elem_type for o in graph.output}[prediction]
        if kind != TensorProto.INT64:
            graph.node.append(helper.make_node("Cast", [prediction], [prediction + "_int64"], to=TensorProto.INT64))
            index = prediction + "_int64"
        if source.label_dtype() == "DT_STRING":
            names = helper.make_tensor(_CLASS_NAMES, TensorProto.STRING, [len(source.classes)],
                                       [str(c).encode() for c in source.classes])
            graph.initializer.append(names)
            graph.node.append(helper.make_node("Gather", [_CLASS_NAMES, index], [LABEL], axis=0,
                                               name="tfsconvert_class_labels"))
            graph.output.append(helper.make_tensor_value_info(LABEL, TensorProto.STRING, [None]))
        elif index != prediction:
            rename_tensors(graph, {index: LABEL})
            graph.output.append(helper.make_tensor_value_info(LABEL, TensorProto.INT64, [None]))
        else:
            renames[prediction] = LABEL  # classes are the indices 0..k-1
        wanted = [LABEL]
        if source.has_proba:
            renames[predictor.getProbabilityCol()] = PROBABILITIES
            wanted.append(PROBABILITIES)
    rename_tensors(graph, renames)
    outputs = {o.name: o for o in graph.output}
    kept = []
    for name in wanted:
        kept.append(type(outputs[name])())
        kept[-1].CopyFrom(outputs[name])
    del graph.output[:]
    graph.output.extend(kept)
