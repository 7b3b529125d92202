"""Reader for PMML documents: stdlib XML only (no Java, no pypmml), so `inspect` stays fast."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tfsconvert.errors import InputError, unreadable
from tfsconvert.findings import finding
from tfsconvert.model import ModelDescription, Signature, TensorSpec
from tfsconvert.naming import DEFAULT_SIGNATURE, is_generic

# PMML dataType -> TF dtype; dates/times travel as strings in REST requests.
_DTYPES = {
    "double": "DT_DOUBLE", "float": "DT_FLOAT", "integer": "DT_INT64", "string": "DT_STRING",
    "boolean": "DT_BOOL",
}
_MODEL_TAGS = {
    "AnomalyDetectionModel", "AssociationModel", "BayesianNetworkModel", "BaselineModel",
    "ClusteringModel", "GaussianProcessModel", "GeneralRegressionModel", "MiningModel",
    "NaiveBayesModel", "NearestNeighborModel", "NeuralNetwork", "RegressionModel", "RuleSetModel",
    "Scorecard", "SequenceModel", "SupportVectorMachineModel", "TextModel", "TimeSeriesModel",
    "TreeModel",
}
# OutputField features whose value is a number, or a string, when dataType is not given.
_NUMERIC_FEATURES = {"probability", "residual", "standardError", "standardDeviation", "affinity",
                     "entityAffinity", "clusterAffinity", "confidence", "support", "lift", "leverage"}
_STRING_FEATURES = {"predictedDisplayValue", "entityId", "clusterId", "reasonCode", "ruleValue",
                    "warning", "antecedent", "consequent", "rule", "ruleId"}


def _local(tag) -> str:
    """`{http://www.dmg.org/PMML-4_4}DataField` -> `DataField` (any PMML namespace, or none)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element, name: str) -> list:
    # `element is None`, not truthiness: an Element without children is falsy.
    return [] if element is None else [child for child in element if _local(child.tag) == name]


def _child(element, name: str):
    found = _children(element, name)
    return found[0] if found else None


def _parse(path: Path):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        line, column = error.position
        raise InputError(
            "corrupt-model-file",
            f"{path} is not a PMML document: XML parse failed at line {line}, column {column} ({_reason(error)})",
            "export the model again as PMML (sklearn2pmml / pyspark2pmml / your tool's PMML export)",
        ) from None
    except OSError as error:
        raise unreadable(path, error) from None
    if _local(root.tag) != "PMML":
        raise InputError(
            "unsupported-format",
            f"{path} is XML but not PMML: its root element is <{_local(root.tag)}>, expected <PMML>",
            "pass a PMML document (root element <PMML xmlns=\"http://www.dmg.org/PMML-4_4\">)",
        )
    return root


def _reason(error: ET.ParseError) -> str:
    return str(error).split(":", 1)[0]  # "syntax error: line 1, column 0" -> "syntax error"


def _spec(name: str, data_type: str | None) -> TensorSpec:
    dtype = _DTYPES.get(data_type, "DT_STRING") if data_type else "DT_STRING"
    return TensorSpec(dtype, [-1], name, data_type or "unknown")


def _output_type(field, data_types: dict, targets: list[str]) -> str | None:
    if field.get("dataType"):
        return field.get("dataType")
    feature = field.get("feature", "predictedValue")
    if feature in _NUMERIC_FEATURES:
        return "double"
    if feature in _STRING_FEATURES:
        return "string"
    target = field.get("targetField") or (targets[0] if targets else None)
    return data_types.get(target)  # predictedValue/transformedValue: the target's type


def describe(path: Path) -> ModelDescription:
    """Describe a PMML document: data dictionary, mining schema, outputs and a serving signature."""
    path = Path(path)
    root = _parse(path)

    dictionary = []
    data_types = {}
    for field in _children(_child(root, "DataDictionary"), "DataField"):
        entry = {"name": field.get("name"), "optype": field.get("optype"), "dataType": field.get("dataType")}
        values = [v.get("value") for v in _children(field, "Value") if v.get("property", "valid") == "valid"]
        if values:
            entry["values"] = values
        dictionary.append(entry)
        data_types[field.get("name")] = field.get("dataType")

    models = [child for child in root if _local(child.tag) in _MODEL_TAGS]
    if not models:
        raise InputError(
            "unsupported-format", f"{path} is a PMML document without a model element",
            "export a fitted model; the PMML needs e.g. a <RegressionModel> or <TreeModel> element",
        )
    model = models[0]
    mining = _children(_child(model, "MiningSchema"), "MiningField")
    active = [f.get("name") for f in mining if f.get("usageType", "active") in ("active", "absent")]
    targets = [f.get("name") for f in mining if f.get("usageType") in ("target", "predicted")]

    output_fields = _children(_child(model, "Output"), "OutputField")
    outputs_detail = []
    for field in output_fields:
        entry = {"name": field.get("name"), "feature": field.get("feature", "predictedValue"),
                 "dataType": _output_type(field, data_types, targets)}
        if field.get("value") is not None:
            entry["value"] = field.get("value")
        outputs_detail.append(entry)

    inputs = {name: _spec(name, data_types.get(name)) for name in active}
    if outputs_detail:
        outputs = {o["name"]: _spec(o["name"], o["dataType"]) for o in outputs_detail}
    else:
        outputs = {name: _spec(name, data_types.get(name)) for name in targets}

    nested = {}
    for element in model.iter():
        if element is not model and _local(element.tag) in _MODEL_TAGS:
            nested[_local(element.tag)] = nested.get(_local(element.tag), 0) + 1
    application = _child(_child(root, "Header"), "Application")

    details = {"pmml_version": root.get("version")}
    if application is not None:
        details["producer"] = " ".join(filter(None, [application.get("name"), application.get("version")]))
    details.update({
        "model_type": _local(model.tag),
        "function_name": model.get("functionName"),
        "algorithm": model.get("algorithmName"),
        "model_name": model.get("modelName"),
    })
    if len(models) > 1:
        details["other_models"] = [_local(m.tag) for m in models[1:]]
    if nested:
        details["nested_models"] = nested
    details.update({
        "data_dictionary": dictionary,
        "active_fields": active,
        "target_fields": targets,
        "output_fields": outputs_detail,
    })
    details = {k: v for k, v in details.items() if v is not None}

    diagnostics = []
    generic = [name for name in [*inputs, *outputs] if is_generic(name)]
    if generic:
        diagnostics.append(finding(
            "unnamed-signature-io",
            f"PMML fields have generic names ({', '.join(generic[:5])}{', ...' if len(generic) > 5 else ''}); "
            "clients will have to send these names",
            "fit the source model on a pandas DataFrame with named columns (and a named target Series), "
            "or pass --feature-names a,b,c to `tfsconvert pmml`",
            path,
        ))
    signature = Signature(method=None, inputs=inputs, outputs=outputs)
    return ModelDescription.single(path, "pmml", signatures={DEFAULT_SIGNATURE: signature},
                                   details=details, diagnostics=diagnostics)
