"""A PMML document's fields, read with the standard library's XML parser (no Java): what `inspect`
describes and what tfsconvert.runtimes.pmml needs to serve the document (active fields and their
dtypes, the target, the function)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tfsconvert.errors import InputError, unreadable
from tfsconvert.model import TensorSpec

# PMML dataType -> TF dtype; dates/times travel as strings in REST requests.
_DTYPES = {
    "double": "DT_DOUBLE", "float": "DT_FLOAT", "integer": "DT_INT64", "string": "DT_STRING",
    "boolean": "DT_BOOL",
}
MODEL_TAGS = {
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


def local_name(tag) -> str:
    """`{http://www.dmg.org/PMML-4_4}DataField` -> `DataField` (any PMML namespace, or none)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def children(element, name: str) -> list:
    """The children of `element` named `name` (none for a missing element)."""
    # `element is None`, not truthiness: an Element without children is falsy.
    return [] if element is None else [item for item in element if local_name(item.tag) == name]


def child(element, name: str):
    """The first child of `element` named `name`, or None."""
    found = children(element, name)
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
    if local_name(root.tag) != "PMML":
        raise InputError(
            "unsupported-format",
            f"{path} is XML but not PMML: its root element is <{local_name(root.tag)}>, expected <PMML>",
            "pass a PMML document (root element <PMML xmlns=\"http://www.dmg.org/PMML-4_4\">)",
        )
    return root


def _reason(error: ET.ParseError) -> str:
    return str(error).split(":", 1)[0]  # "syntax error: line 1, column 0" -> "syntax error"


def spec(name: str, data_type: str | None) -> TensorSpec:
    """The [N] tensor of a field with a PMML dataType."""
    dtype = _DTYPES.get(data_type, "DT_STRING") if data_type else "DT_STRING"
    return TensorSpec(dtype, [-1], name, data_type or "unknown")


def output_type(field, data_types: dict, targets: list[str]) -> str | None:
    """An OutputField's PMML dataType: declared, implied by its feature, or its target's."""
    if field.get("dataType"):
        return field.get("dataType")
    feature = field.get("feature", "predictedValue")
    if feature in _NUMERIC_FEATURES:
        return "double"
    if feature in _STRING_FEATURES:
        return "string"
    target = field.get("targetField") or (targets[0] if targets else None)
    return data_types.get(target)  # predictedValue/transformedValue: the target's type



@dataclass
class PmmlDocument:
    """The parts of a PMML document every reader needs; `model` is its first model element."""

    root: ET.Element
    models: list
    dictionary: list[dict]  # DataFields: name, optype, dataType, valid values
    data_types: dict[str, str | None]  # DataField name -> PMML dataType
    active: list[str]  # the MiningSchema's active (and absent) fields, in order
    targets: list[str]

    @property
    def model(self) -> ET.Element:
        return self.models[0]

    @property
    def inputs(self) -> dict[str, TensorSpec]:
        """One [N] input per active field."""
        return {name: spec(name, self.data_types.get(name)) for name in self.active}


def read(path: Path) -> PmmlDocument:
    """Parse a PMML document; InputError for what is not XML, not PMML, or holds no model."""
    path = Path(path)
    root = _parse(path)
    dictionary = []
    data_types = {}
    for field in children(child(root, "DataDictionary"), "DataField"):
        entry = {"name": field.get("name"), "optype": field.get("optype"), "dataType": field.get("dataType")}
        values = [v.get("value") for v in children(field, "Value") if v.get("property", "valid") == "valid"]
        if values:
            entry["values"] = values
        dictionary.append(entry)
        data_types[field.get("name")] = field.get("dataType")
    models = [element for element in root if local_name(element.tag) in MODEL_TAGS]
    if not models:
        raise InputError(
            "unsupported-format", f"{path} is a PMML document without a model element",
            "export a fitted model; the PMML needs e.g. a <RegressionModel> or <TreeModel> element",
        )
    mining = children(child(models[0], "MiningSchema"), "MiningField")
    active = [f.get("name") for f in mining if f.get("usageType", "active") in ("active", "absent")]
    targets = [f.get("name") for f in mining if f.get("usageType") in ("target", "predicted")]
    return PmmlDocument(root, models, dictionary, data_types, active, targets)
