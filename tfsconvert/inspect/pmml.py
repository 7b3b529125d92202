"""Reader for PMML documents: stdlib XML only (no Java, no pypmml), so `inspect` stays fast."""

from __future__ import annotations

from pathlib import Path

from tfsconvert.findings import finding
from tfsconvert.model import ModelDescription, Signature
from tfsconvert.naming import DEFAULT_SIGNATURE, is_generic
from tfsconvert.pmml_document import MODEL_TAGS, child, children, local_name, output_type, read, spec


def describe(path: Path) -> ModelDescription:
    """Describe a PMML document: data dictionary, mining schema, outputs and a serving signature."""
    path = Path(path)
    document = read(path)
    root, model, data_types, targets = document.root, document.model, document.data_types, document.targets

    output_fields = children(child(model, "Output"), "OutputField")
    outputs_detail = []
    for field in output_fields:
        entry = {"name": field.get("name"), "feature": field.get("feature", "predictedValue"),
                 "dataType": output_type(field, data_types, targets)}
        if field.get("value") is not None:
            entry["value"] = field.get("value")
        outputs_detail.append(entry)

    inputs = document.inputs
    if outputs_detail:
        outputs = {o["name"]: spec(o["name"], o["dataType"]) for o in outputs_detail}
    else:
        outputs = {name: spec(name, data_types.get(name)) for name in targets}

    nested = {}
    for element in model.iter():
        if element is not model and local_name(element.tag) in MODEL_TAGS:
            nested[local_name(element.tag)] = nested.get(local_name(element.tag), 0) + 1
    application = child(child(root, "Header"), "Application")

    details = {"pmml_version": root.get("version")}
    if application is not None:
        details["producer"] = " ".join(filter(None, [application.get("name"), application.get("version")]))
    details.update({
        "model_type": local_name(model.tag),
        "function_name": model.get("functionName"),
        "algorithm": model.get("algorithmName"),
        "model_name": model.get("modelName"),
    })
    if len(document.models) > 1:
        details["other_models"] = [local_name(m.tag) for m in document.models[1:]]
    if nested:
        details["nested_models"] = nested
    details.update({
        "data_dictionary": document.dictionary,
        "active_fields": document.active,
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
