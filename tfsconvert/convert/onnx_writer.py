"""SavedModel -> ONNX through tf2onnx, and an ONNX Runtime runner to check the result against TensorFlow.

tf2onnx 1.17.0 never raises for an op it cannot convert: `from_graph_def` runs with
`continue_on_error=True`, logs the op at ERROR on the `tf2onnx.tfonnx` logger, leaves the TF node
in the graph under its TF op type (an ONNX model no runtime can load) and still writes
`output_path`. So we collect those log records, turn them into one `unsupported-op` error, and write
`dest` ourselves only when the model is clean.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from tfsconvert.errors import InputError, missing_dependency
from tfsconvert.inspect.savedmodel import read_savedmodel
from tfsconvert.model import Signature
from tfsconvert.quiet import DEBUG_ENV, native_stderr_silenced

_SERVE_TAGS = ["serve"]
# The messages tf2onnx 1.17.0 (tfonnx.tensorflow_onnx_mapping) logs instead of raising.
_NO_HANDLER = "Tensorflow op [%s: %s] is not supported"  # args: node name, TF op type
_HANDLER_FAILED = "Failed to convert node %r (fct=%r)\n%r"  # args: node name, handler, summary
# Findings read_savedmodel reports when tf2onnx could not even load the directory.
_UNLOADABLE = ("not-a-savedmodel", "corrupt-model-file", "missing-serve-tag")

_FUNCTIONAL_CONTROL_FLOW = {"If", "StatelessIf", "While", "StatelessWhile", "Case", "StatelessCase"}

Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def savedmodel_to_onnx(saved_model_dir: Path, signature_name: str, dest: Path, opset: int = 17,
                       renames: dict[str, str] | None = None) -> None:
    """Write signature `signature_name` of the {serve} SavedModel as the ONNX model `dest`.

    ONNX inputs and outputs are named by the signature's aliases, or by `renames` (new name ->
    alias; the outputs are then exactly those named), in sorted name order, with the batch
    dimension left dynamic. Ops tf2onnx cannot convert at `opset` raise InputError("unsupported-op")
    and leave `dest` unwritten.
    """
    signature = _signature(saved_model_dir, signature_name)
    renames = renames or {alias: alias for alias in (*signature.inputs, *signature.outputs)}
    tf2onnx = _import_tf2onnx()
    max_opset = max(tf2onnx.constants.OPSET_TO_IR_VERSION)
    if opset > max_opset:
        raise InputError("unsupported-opset", f"tf2onnx {tf2onnx.__version__} supports ONNX opsets up to "
                         f"{max_opset}, not {opset}", f"use --opset {max_opset} or lower")
    with _tf2onnx_logs(tf2onnx) as errors:
        graph_def, inputs, outputs, aliases = tf2onnx.tf_loader.from_saved_model(
            str(saved_model_dir), None, None, tag=_SERVE_TAGS, signatures=[signature_name],
            return_tensors_to_rename=True)
        new_name = {tensor: new for tensor, alias in aliases.items() for new, old in renames.items() if old == alias}
        outputs = [t for t in outputs if t in new_name]
        _settle_optional_inputs(graph_def, inputs)
        # tf2onnx lists a signature's tensors in its own order; the ONNX graph keeps the order given.
        model, _ = tf2onnx.convert.from_graph_def(
            graph_def, input_names=sorted(inputs, key=lambda t: new_name.get(t, t)),
            output_names=sorted(outputs, key=lambda t: new_name[t]), opset=opset, tensors_to_rename=new_name)
    unconverted = _unconverted_ops(errors, graph_def)
    if unconverted:
        raise _unsupported(tf2onnx, unconverted, opset, max_opset)
    _check_onnx(tf2onnx, model, graph_def, opset)
    names = ([i.name for i in model.graph.input], [o.name for o in model.graph.output])
    wanted = (sorted(new for new, old in renames.items() if old in signature.inputs),
              sorted(new for new, old in renames.items() if old in signature.outputs))
    if names != wanted:
        # tf2onnx renames tensors, not aliases: two aliases of one tensor cannot both survive.
        raise InputError(
            "unsupported-signature",
            f"signature {signature_name!r} of {saved_model_dir} cannot be named in ONNX: its aliases "
            f"{wanted[0]} -> {wanted[1]} became {names[0]} -> {names[1]}",
            "give every signature alias its own tensor (wrap repeated ones in tf.identity) and re-export, "
            "or keep the SavedModel target")
    dest.write_bytes(model.SerializeToString())


def _settle_optional_inputs(graph_def, inputs: list[str]) -> None:
    """PlaceholderWithDefault nodes become what the signature makes of them: a plain Placeholder when
    the signature feeds it, else an Identity of its default.

    tf2onnx would make each one an ONNX input with its default as initializer, which ONNX readers
    (ours and servers) treat as a constant, not an input. Its `--ignore_default` / `--use_default`
    flags do the same as this.
    """
    for node in graph_def.node:
        if node.op != "PlaceholderWithDefault":
            continue
        if f"{node.name}:0" in inputs:
            node.op = "Placeholder"
            del node.input[:]
        else:
            node.op = "Identity"
            node.attr["T"].type = node.attr["dtype"].type
            del node.attr["dtype"]
            del node.attr["shape"]


def onnx_runner(path: Path) -> Runner:
    """`run(feeds)` through tfsconvert.runtimes.onnx (the server's runtime): feeds and results keyed by ONNX
    input/output names."""
    from tfsconvert.runtimes.onnx import OnnxModel

    return OnnxModel(path).run


def _signature(saved_model_dir: Path, signature_name: str) -> Signature:
    """The signature as `inspect` reads it (no TensorFlow), so a wrong name fails before TF loads."""
    info, findings = read_savedmodel(saved_model_dir, None)
    for f in findings:
        if f.code in _UNLOADABLE:
            raise InputError(f.code, f.message, f.hint)
    if signature_name not in info.signatures:
        found = ", ".join(info.signatures) or "none"
        raise InputError("signature-not-found", f"{saved_model_dir} has no signature {signature_name!r} "
                         f"(found: {found})", f"choose one of: {found}")
    return info.signatures[signature_name]


def _import_tf2onnx():
    """tf2onnx (which imports TensorFlow), with TensorFlow's native start-up lines silenced."""
    try:
        with native_stderr_silenced():
            import tf2onnx.constants
            import tf2onnx.convert
            import tf2onnx.handler
            import tf2onnx.tf_loader
            import tf2onnx.utils
    except ImportError as error:
        raise missing_dependency(error.name or "tf2onnx", "tensorflow") from None
    return tf2onnx


@contextlib.contextmanager
def _tf2onnx_logs(tf2onnx) -> Iterator[list[logging.LogRecord]]:
    """Collect tf2onnx's ERROR records; keep its and TensorFlow's logs off the terminal unless debugging."""
    errors: list[logging.LogRecord] = []
    collector = logging.Handler(logging.ERROR)
    collector.emit = errors.append
    package = logging.getLogger("tf2onnx")
    # tf2onnx.utils logs under its file path, outside the package logger; TF logs deprecations.
    others = [tf2onnx.utils.logger, logging.getLogger("tensorflow")]
    saved = [(logger, logger.level, logger.propagate) for logger in [package, *others]]
    package.addHandler(collector)
    if not os.environ.get(DEBUG_ENV):
        package.setLevel(logging.ERROR)
        package.propagate = False
        for logger in others:
            logger.setLevel(logging.CRITICAL)
    try:
        with native_stderr_silenced():
            yield errors
    finally:
        package.removeHandler(collector)
        for logger, level, propagate in saved:
            logger.setLevel(level)
            logger.propagate = propagate


def _unconverted_ops(errors: list[logging.LogRecord], graph_def) -> list[str]:
    """TF op types tf2onnx logged as having no handler, or whose handler failed, sorted."""
    op_of_node = {node.name: node.op for node in graph_def.node}
    ops = set()
    for record in errors:
        if record.msg == _NO_HANDLER:
            ops.add(record.args[1])
        elif record.msg == _HANDLER_FAILED:
            ops.add(op_of_node.get(record.args[0], record.args[0]))
    return sorted(ops)


def _check_onnx(tf2onnx, model, graph_def, opset: int) -> None:
    """ONNX's own checker on what tf2onnx wrote: it can write an invalid graph without logging an error
    (1.17.0 does for some control flow v2 While loops, reusing a tensor name inside the Loop body)."""
    import onnx

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        reason = " ".join(str(error).split())[:300]
        functional = sorted({n.op for n in graph_def.node} & _FUNCTIONAL_CONTROL_FLOW)
        raise InputError(
            "unsupported-op",
            f"tf2onnx {tf2onnx.__version__} could not convert {', '.join(functional) or 'this graph'} at opset "
            f"{opset} into a valid ONNX model (ONNX checker: {reason})",
            "keep the SavedModel target: TF Serving runs every TensorFlow op" + (
                "; or re-export the graph with control flow v1 (tf.compat.v1.disable_control_flow_v2())"
                if functional else "")) from None


def _unsupported(tf2onnx, ops: list[str], opset: int, max_opset: int) -> InputError:
    """The one-line error for `ops`; a higher opset is suggested only if tf2onnx has handlers for them there."""
    handled = {op for op_map in tf2onnx.handler.tf_op.get_opsets()[tf2onnx.constants.ONNX_DOMAIN][:max_opset + 1]
               for op in op_map}
    higher = (f"try --opset {max_opset} (the highest tf2onnx {tf2onnx.__version__} supports), or "
              if opset < max_opset and set(ops) <= handled else "")
    return InputError("unsupported-op",
                      f"tf2onnx {tf2onnx.__version__} cannot convert {', '.join(ops)} at opset {opset}",
                      f"{higher}keep the SavedModel target: TF Serving runs every TensorFlow op")
