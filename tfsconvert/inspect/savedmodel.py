"""SavedModel reader: tag-sets, signatures and what TF Serving will do with it (docs/tf-serving.md §2).

Parses `saved_model.pb` with tfsconvert.tfproto, so TensorFlow is never imported.
"""

from __future__ import annotations

import re
from pathlib import Path

from google.protobuf.message import Message

from tfsconvert import graph, tfproto
from tfsconvert.errors import InputError
from tfsconvert.findings import finding
from tfsconvert.inspect import lean_graphdef
from tfsconvert.layout import is_canonical_version, parse_version
from tfsconvert.model import Finding, ModelDescription, Signature, TensorSpec, VersionInfo
from tfsconvert.naming import DEFAULT_SIGNATURE, SERVE_TAGS, generic_aliases

# TF2's `__saved_model_init_op` (and train op) are graph plumbing, not signatures a client calls.
INTERNAL_SIGNATURE_PREFIX = "__saved_model_"
NO_BUNDLE = ("NOT_FOUND: Specified file path does not appear to contain a SavedModel bundle "
             "(should have a file called `saved_model.pb`) Specified file path: {dir}")
# The WARNING TF Serving logs on every poll of a base path without a numeric child (docs/tf-serving.md §1.2).
NO_VERSIONS = ("No versions of servable {name} found under base path {base}. Did you forget to name your leaf "
               "directory as a number (eg. '/1/')?")
_NO_TAGS = ("NOT_FOUND: Could not find meta graph def matching supplied tags: { serve }. To inspect available "
            "tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`")
_SHARD = re.compile(r"^variables\.data-(\d+)-of-(\d+)$")


def describe(path: Path) -> ModelDescription:
    """Inspect a SavedModel directory (or its `saved_model.pb`) given directly as PATH."""
    model_dir = path.parent if path.is_file() else path
    version = parse_version(model_dir.name)
    info, findings = read_savedmodel(model_dir, version if is_canonical_version(model_dir.name) else None)
    for f in findings:  # PATH itself cannot be read: a usage error, not a diagnostic
        if f.code in ("corrupt-model-file", "not-a-savedmodel"):
            raise InputError(f.code, f.message, f.hint)
    if info.version is None:
        findings.insert(0, not_in_version_dir(model_dir))
    return ModelDescription(path=str(path), format="savedmodel", versions=[info], diagnostics=findings)


def suggested_base(model_dir: Path) -> Path:
    """The base path a fix should publish to: the parent of a version dir, else models/<name>
    (or `<dir>-serving` when that is the model itself: sources are never written into)."""
    if is_canonical_version(model_dir.name):
        return model_dir.parent
    base = Path("models") / model_dir.name
    return base if base.resolve() != model_dir.resolve() else model_dir.with_name(model_dir.name + "-serving")


def not_in_version_dir(model_dir: Path, name: str | None = None) -> Finding:
    """`no-version-directory` for a SavedModel given as a base path (served as `name`, default its dir name)."""
    return finding(
        "no-version-directory",
        f"{model_dir} is a SavedModel but not inside a numbered version directory; TF Serving given it as "
        f"--model_base_path logs `No versions of servable found under base path {model_dir}. Did you forget to "
        f"name your leaf directory as a number (eg. '/1/')?` and never becomes ready",
        f"tfsconvert saved-model {model_dir} --base-path {suggested_base(model_dir)} --version 1  "
        f"(or: mkdir NEW_BASE/1 and move saved_model.pb, variables/, assets/ into it)",
        model_dir, tf_serving=NO_VERSIONS.format(name=name or model_dir.name, base=model_dir),
    )


def read_savedmodel(model_dir: Path, version: int | None) -> tuple[VersionInfo, list[Finding]]:
    """Describe one SavedModel directory; problems TF Serving would hit become findings."""
    info = VersionInfo(version=version, path=str(model_dir))
    pb, pbtxt = model_dir / "saved_model.pb", model_dir / "saved_model.pbtxt"
    if not pb.is_file() and not pbtxt.is_file():
        return info, [_missing_bundle(model_dir)]
    try:
        saved_model = (tfproto.parse_binary("SavedModel", lean_graphdef.read(pb, lean_graphdef.SAVED_MODEL))
                       if pb.is_file() else tfproto.parse_text("SavedModel", pbtxt.read_text()))
    except (tfproto.DecodeError, UnicodeDecodeError, tfproto.ParseError):
        source = pb if pb.is_file() else pbtxt
        return info, [finding(
            "corrupt-model-file",
            f"{source} is corrupt or truncated; TF Serving fails the load with "
            f"`DATA_LOSS: Can't parse {source} as binary proto`",
            "re-export or re-copy the SavedModel; publish versions by writing to a temp dir and renaming "
            "(tfsconvert does this)", source, tf_serving=f"DATA_LOSS: Can't parse {source} as binary proto")]
    if not saved_model.meta_graphs:
        return info, [_not_a_savedmodel_pb(pb)]

    info.tags = [list(mg.meta_info_def.tags) for mg in saved_model.meta_graphs]
    serving = next((mg for mg in saved_model.meta_graphs if sorted(mg.meta_info_def.tags) == list(SERVE_TAGS)), None)
    findings: list[Finding] = []
    if serving is None:
        findings.append(_missing_serve_tag(model_dir, info.tags))
    meta_graph = serving or saved_model.meta_graphs[0]
    info.signatures = {key: _signature(sig) for key, sig in sorted(meta_graph.signature_def.items())
                       if not key.startswith(INTERNAL_SIGNATURE_PREFIX)}
    findings += _signature_findings(model_dir, info.signatures)
    findings += _variable_findings(model_dir, graph.has_variables(meta_graph.graph_def))
    info.details = _details(model_dir, meta_graph)
    return info, findings


def _missing_bundle(model_dir: Path) -> Finding:
    others = sorted(p.name for p in model_dir.iterdir()) if model_dir.is_dir() else []
    frozen = [n for n in others if n.endswith((".pb", ".pbtxt"))]
    if (model_dir / "export.meta").is_file():
        what, tf_error = "a TF1 SessionBundle (export.meta)", "UNIMPLEMENTED: Session Bundle is deprecated and removed."
    else:
        what = f"a frozen graph ({', '.join(frozen)})" if frozen else ("empty" if not others else
                                                                        f"only {', '.join(others[:5])}")
        tf_error = NO_BUNDLE.format(dir=model_dir)
    source = model_dir / frozen[0] if frozen else "SOURCE_MODEL"
    return finding(
        "not-a-savedmodel",
        f"{model_dir} holds {what}, not a SavedModel (saved_model.pb + variables/); TF Serving: `{tf_error}`",
        f"move the source out of the version dir, then: tfsconvert saved-model {source} "
        f"--base-path {model_dir.parent} --version {model_dir.name}",
        model_dir, tf_serving=tf_error,
    )


def _not_a_savedmodel_pb(pb: Path) -> Finding:
    try:
        nodes = len(tfproto.parse_binary("GraphDef", lean_graphdef.read(pb)).node)
    except tfproto.DecodeError:
        nodes = 0
    what = f"a frozen GraphDef ({nodes} nodes) renamed to saved_model.pb" if nodes else "no meta graph"
    return finding(
        "not-a-savedmodel",
        f"{pb} is {what}, not a SavedModel; TF Serving: `{_NO_TAGS}`",
        f"mv {pb} ./frozen.pb && tfsconvert saved-model ./frozen.pb --base-path {pb.parent.parent} "
        f"--version {pb.parent.name} --force",
        pb, tf_serving=_NO_TAGS,
    )


def _missing_serve_tag(model_dir: Path, tags: list[list[str]]) -> Finding:
    shown = "; ".join("{" + ", ".join(t) + "}" for t in tags)
    with_serve = next((t for t in tags if "serve" in t), None)
    flag = f"; or start TF Serving with --saved_model_tags={','.join(with_serve)}" if with_serve else ""
    return finding(
        "missing-serve-tag",
        f"{model_dir} has no meta graph tagged exactly {{serve}} (found: {shown}); TF Serving: `{_NO_TAGS}`",
        f"re-export with tags [\"serve\"] (tf.saved_model.save does this), or: tfsconvert saved-model {model_dir} "
        f"--base-path {suggested_base(model_dir)}{flag}",
        model_dir, tf_serving=_NO_TAGS,
    )


def _signature(sig: Message) -> Signature:
    def tensors(infos) -> dict[str, TensorSpec]:
        return {
            alias: TensorSpec(
                dtype=tfproto.dtype_name(ti.dtype),
                shape=tfproto.shape_list(ti.tensor_shape) if ti.HasField("tensor_shape") else None,
                name=ti.name or ti.coo_sparse.values_tensor_name or None,
            )
            for alias, ti in sorted(infos.items())
        }

    return Signature(method=sig.method_name or None, inputs=tensors(sig.inputs), outputs=tensors(sig.outputs))


def _signature_findings(model_dir: Path, signatures: dict[str, Signature]) -> list[Finding]:
    findings = []
    if DEFAULT_SIGNATURE not in signatures:
        names = ", ".join(signatures) or "none"
        findings.append(finding(
            "missing-default-signature",
            f"{model_dir} has no '{DEFAULT_SIGNATURE}' signature (found: {names}); requests without "
            f"signature_name fail with `Serving signature name: \"{DEFAULT_SIGNATURE}\" not found in signature def`",
            f"re-export with signatures={{'{DEFAULT_SIGNATURE}': ...}}, or have every client send "
            f"\"signature_name\": \"{next(iter(signatures), 'NAME')}\"",
            model_dir, tf_serving=f'Serving signature name: "{DEFAULT_SIGNATURE}" not found in signature def'))
    for key, sig in signatures.items():
        generic = generic_aliases(sig)
        if generic:
            flags = " ".join(f"{flag} NAME={alias}" for flag, alias in generic)
            findings.append(finding(
                "unnamed-signature-io",
                f"signature '{key}' of {model_dir} uses generic names ({', '.join(a for _, a in generic)}); "
                f"clients will guess the wrong tensor names",
                f"tfsconvert saved-model {model_dir} --base-path {suggested_base(model_dir)} {flags}  "
                f"(NAME: what the tensor means, e.g. probabilities)",
                model_dir))
    return findings


def _variable_findings(model_dir: Path, graph_has_variables: bool) -> list[Finding]:
    variables_dir = model_dir / "variables"
    index = variables_dir / "variables.index"
    hint = ("copy the complete variables/ directory of the export (variables.index and every "
            "variables.data-*-of-* shard), or re-export the model")
    if index.is_file():
        shards = [m for p in variables_dir.iterdir() if (m := _SHARD.match(p.name))]
        expected = int(shards[0].group(2)) if shards else 1
        missing = sorted({f"variables.data-{i:05d}-of-{expected:05d}" for i in range(expected)}
                         - {m.group(0) for m in shards})
        if missing:
            return [finding(
                "missing-variables",
                f"{variables_dir} has variables.index but not {', '.join(missing)}; TF Serving's restore op "
                f"fails the load (NOT_FOUND/DATA_LOSS)", hint, variables_dir,
                tf_serving="the load fails in the variables restore op with NOT_FOUND or DATA_LOSS")]
    elif graph_has_variables:
        return [finding(
            "missing-variables",
            f"{model_dir} has a graph with variables but no variables/variables.index; TF Serving loads it "
            f"(`The specified SavedModel has no variables; no checkpoints were restored`) and then every "
            f"predict fails on uninitialized variables", hint, model_dir,
            tf_serving=f"The specified SavedModel has no variables; no checkpoints were restored. File does not "
                       f"exist: {index}")]
    return []


def _details(model_dir: Path, meta_graph: Message) -> dict:
    details = {"tensorflow_version": meta_graph.meta_info_def.tensorflow_version or None,
               "internal_signatures": sorted(k for k in meta_graph.signature_def
                                             if k.startswith(INTERNAL_SIGNATURE_PREFIX))}
    details.update(graph.summary(meta_graph.graph_def))
    extra = model_dir / "assets.extra"
    details["assets_extra"] = sorted(p.name for p in extra.iterdir()) if extra.is_dir() else []
    return details
