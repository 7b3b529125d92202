"""TF1 checkpoint reader: the graph in `<prefix>.meta`, and whether the variable files are complete."""

from __future__ import annotations

import re
from pathlib import Path

from google.protobuf.message import Message

from tfsconvert import graph, tfproto
from tfsconvert.errors import InputError
from tfsconvert.findings import finding
from tfsconvert.inspect import lean_graphdef
from tfsconvert.inspect.graphdef import graph_findings, graph_io_details
from tfsconvert.model import Finding, ModelDescription, VersionInfo

_STATE = re.compile(r'^model_checkpoint_path:\s*"(.*)"\s*$', re.MULTILINE)
_SHARD = re.compile(r"\.data-(\d+)-of-(\d+)$")
# The last 8 bytes of a TensorBundle index (an SSTable): its table magic number, little-endian.
_TABLE_MAGIC = bytes.fromhex("57fb808b247547db")


def checkpoint_prefix(path: Path) -> Path:
    """The checkpoint prefix for a prefix, `.meta`/`.index`/`.data-*` file, or checkpoint directory."""
    if path.is_dir():
        state = path / "checkpoint"
        match = _STATE.search(state.read_text()) if state.is_file() else None
        if match:
            return path / match.group(1)
        metas = sorted(path.glob("*.meta"))
        if len(metas) == 1:
            return metas[0].with_suffix("")
        raise InputError("unsupported-format", f"{path} has no `checkpoint` state file and "
                         f"{len(metas)} .meta files", "pass the checkpoint prefix, e.g. DIR/model.ckpt")
    if path.suffix in (".meta", ".index"):
        return path.with_suffix("")
    return path.with_name(_SHARD.sub("", path.name))


def read_meta_graph(prefix: Path) -> Message:
    """The checkpoint's `.meta` graph; InputError when it is missing or not a MetaGraphDef."""
    meta = prefix.with_name(prefix.name + ".meta")
    if not meta.is_file():
        raise InputError(
            "checkpoint-without-meta",
            f"{prefix} is a checkpoint without its graph ({meta.name} is missing); variables alone cannot be served",
            "re-save it with tf.compat.v1.train.Saver().save(sess, PREFIX) (writes the .meta), "
            "or export a SavedModel from the code that builds the graph")
    try:
        return tfproto.parse_binary("MetaGraphDef", lean_graphdef.read(meta, lean_graphdef.META_GRAPH))
    except tfproto.DecodeError:
        raise InputError("corrupt-model-file", f"{meta} is not a MetaGraphDef (corrupt or truncated protobuf)",
                         "re-save the checkpoint with tf.compat.v1.train.Saver") from None


def describe(path: Path) -> ModelDescription:
    prefix = checkpoint_prefix(path)
    meta_graph = read_meta_graph(prefix)
    details = graph_io_details(meta_graph.graph_def)
    details["variables"] = {k: v.to_json() for k, v in graph.variables(meta_graph.graph_def).items()}
    details["tensorflow_version"] = meta_graph.meta_info_def.tensorflow_version or None
    findings = graph_findings(prefix, details, "TF1 checkpoint") + file_findings(prefix)
    return ModelDescription(
        path=str(path), format="tf1-checkpoint",
        versions=[VersionInfo(version=None, path=str(prefix), tags=[list(meta_graph.meta_info_def.tags)]
                              if meta_graph.meta_info_def.tags else [],
                              details=details)],
        diagnostics=findings)


def file_findings(prefix: Path) -> list[Finding]:
    """The `.index` must be a table and every `.data-i-of-N` shard must exist."""
    index = prefix.with_name(prefix.name + ".index")
    hint = "copy every file of the checkpoint: PREFIX.meta, PREFIX.index and all PREFIX.data-*-of-* shards"
    if not index.is_file():
        return [finding("missing-variables", f"{index} is missing; the variables cannot be restored", hint, index)]
    if index.read_bytes()[-8:] != _TABLE_MAGIC:
        return [finding("corrupt-model-file", f"{index} is not a checkpoint index (bad table magic)", hint, index)]
    shards = [m for p in prefix.parent.glob(prefix.name + ".data-*") if (m := _SHARD.search(p.name))]
    total = int(shards[0].group(2)) if shards else 1
    missing = sorted(set(range(total)) - {int(m.group(1)) for m in shards})
    if missing:
        names = ", ".join(f"{prefix.name}.data-{i:05d}-of-{total:05d}" for i in missing)
        return [finding("missing-variables", f"checkpoint {prefix} is missing {names}", hint, prefix)]
    return []
