"""Frozen GraphDef reader (`.pb` binary or `.pbtxt` text): candidate inputs/outputs and ops."""

from __future__ import annotations

from pathlib import Path

from google.protobuf.message import Message

from tfsconvert import graph, tfproto
from tfsconvert.errors import InputError
from tfsconvert.findings import finding
from tfsconvert.inspect import lean_graphdef
from tfsconvert.model import Finding, ModelDescription
from tfsconvert.naming import is_generic


def read_graphdef(path: Path) -> Message:
    """Parse a GraphDef file; InputError when it is not one.

    Tensor values over lean_graphdef.LIMIT bytes are left out of a binary file's parse (dtype and
    shape stay): nothing static reads them, and a big frozen graph is then never held in memory.
    """
    try:
        if path.suffix == ".pbtxt":
            parsed = tfproto.parse_text("GraphDef", path.read_text())
        else:
            parsed = tfproto.parse_binary("GraphDef", lean_graphdef.read(path))
    except (tfproto.DecodeError, tfproto.ParseError, UnicodeDecodeError) as error:
        reason = "corrupt or truncated protobuf" if isinstance(error, tfproto.DecodeError) else _first_line(error)
        raise InputError("corrupt-model-file", f"{path} is not a TensorFlow GraphDef ({reason})",
                         "pass a frozen graph written with tf.io.write_graph / SerializeToString, "
                         "or a SavedModel directory") from None
    if not parsed.node or not all(n.name and n.op for n in parsed.node):
        raise InputError("corrupt-model-file", f"{path} parsed as a GraphDef but holds no valid nodes",
                         "pass a frozen graph written with tf.io.write_graph / SerializeToString")
    return parsed


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def graph_io_details(graph_def: Message) -> dict:
    """Candidate inputs/outputs (as TensorSpec JSON) and a summary of the graph.

    `optional_inputs` are the PlaceholderWithDefault inputs, each with the `default` it falls back to.
    """
    return {
        "inputs": {k: v.to_json() for k, v in graph.placeholders(graph_def).items()},
        "optional_inputs": graph.optional_inputs(graph_def),
        "outputs": {k: v.to_json() for k, v in graph.sinks(graph_def).items()},
        **graph.summary(graph_def),
    }


def graph_findings(path: Path, details: dict, kind: str) -> list[Finding]:
    """What a deployer must know about a graph source: it is not servable as is; generic names."""
    findings = [finding(
        "not-a-savedmodel",
        f"{path} is a {kind}; TF Serving only loads SavedModel directories (<base>/<N>/saved_model.pb)",
        f"tfsconvert saved-model {path} --version 1", path, severity="info")]
    generic = [n for n in (*details["inputs"], *details["outputs"]) if is_generic(n)]
    if generic:
        findings.append(finding(
            "unnamed-signature-io",
            f"{path} has generic tensor names ({', '.join(generic)}); derived signature aliases would be generic",
            "name them when converting: " + " ".join(
                f"--{'input' if n in details['inputs'] else 'output'} NAME={n}:0" for n in generic), path))
    if len(details["outputs"]) > 1:
        findings.append(finding(
            "unnamed-signature-io",
            f"{path} has several candidate outputs ({', '.join(details['outputs'])})",
            "choose the served outputs when converting: " + " ".join(
                f"--output {n.replace('/', '_')}={n}:0" for n in details["outputs"]), path, severity="info"))
    return findings


def describe(path: Path) -> ModelDescription:
    details = graph_io_details(read_graphdef(path))
    return ModelDescription.single(path, "frozen-graph", details=details,
                                   diagnostics=graph_findings(path, details, "frozen GraphDef"))
