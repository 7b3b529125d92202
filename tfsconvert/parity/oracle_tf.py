"""TensorFlow sources on parity's reference side, each loaded by TensorFlow from the original file: Keras'
`load_model` and a call, a frozen GraphDef parsed by TensorFlow's own message and imported into a TF1 session, a
TF1 checkpoint's `.meta` graph with its variables restored, a SavedModel's signature function. Nothing of
tfsconvert's converters or readers is used (tfsconvert.parity.oracle).

The artifact's input and output aliases are found in the source by the rule the conversion derives them with
(a Keras model's dict keys or layer names; a graph tensor's name with `/` as `_` and `:0` dropped; a SavedModel's
own aliases): a source that does not have them is a `signature-mismatch`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from tfsconvert.errors import InputError
from tfsconvert.naming import DEFAULT_SIGNATURE, SERVE_TAGS
from tfsconvert.runtimes.tf import quiet_tf

Runner = Callable[[dict], dict]  # feeds by alias -> outputs by alias
_PLACEHOLDERS = {"Placeholder", "PlaceholderV2"}  # inputs a run must feed (PlaceholderWithDefault need not be)


def load(path: Path, kind: str, inputs: list[str], outputs: list[str]) -> Runner:
    """The source of kind `kind` (frozen-graph, tf1-checkpoint, keras, savedmodel) as a function of the
    artifact's `inputs` that answers its `outputs`."""
    loaders = {"keras": _keras, "frozen-graph": _frozen_graph, "tf1-checkpoint": _checkpoint,
               "savedmodel": _savedmodel}
    return loaders[kind](path, inputs, outputs)


def mismatch(source_inputs, source_outputs, inputs: list[str], outputs: list[str]) -> InputError:
    return InputError("signature-mismatch", f"the source's inputs/outputs ({', '.join(source_inputs)} -> "
                      f"{', '.join(source_outputs)}) are not the artifact's ({', '.join(sorted(inputs))} -> "
                      f"{', '.join(outputs)})", "compare the artifact with the source it was converted from "
                      "(renamed aliases are not mapped back)")


def _check(source_inputs: list[str], source_outputs: list[str], inputs: list[str], outputs: list[str]) -> None:
    if set(source_inputs) != set(inputs) or not set(outputs) <= set(source_outputs):
        raise mismatch(source_inputs, source_outputs, inputs, outputs)


# ---------------------------------------------------------------------------------------------
# Keras


def _keras(path: Path, inputs: list[str], outputs: list[str]) -> Runner:
    with quiet_tf():
        import keras

        model = keras.saving.load_model(str(path), compile=False)
    taken, given = _structure(model, "input"), _structure(model, "output")
    flat_in = keras.tree.flatten_with_path(taken)
    input_names = _names([(keys, tensor.name) for keys, tensor in flat_in])
    layers = getattr(model, "output_names", None) or [model.layers[-1].name]  # a Sequential: its last layer
    output_names = _names([(keys, layers[i]) for i, (keys, _) in enumerate(keras.tree.flatten_with_path(given))])
    _check(input_names, output_names, inputs, outputs)

    def run(feeds: dict) -> dict:
        args = keras.tree.pack_sequence_as(taken, [feeds[name] for name in input_names])
        values = dict(zip(output_names, keras.tree.flatten(model(args, training=False))))
        return {alias: np.asarray(values[alias]) for alias in outputs}

    return run


def _structure(model, side: str):
    """What the model takes or returns (a dict, a list or one tensor); a Sequential has no `input` of its own."""
    try:
        return getattr(model, side)
    except AttributeError:
        return getattr(model, side + "s")[0]


def _names(entries: list[tuple[tuple, str]]) -> list[str]:
    """The alias of each flat entry: its dict keys joined by `_`, else its layer's name; a repeat gets `_<i>`."""
    names: list[str] = []
    for path, layer in entries:
        keys = [key for key in path if isinstance(key, str)]
        name = base = "_".join(keys) if keys else layer
        while name in names:
            name = f"{base}_{len(names)}"
        names.append(name)
    return names


# ---------------------------------------------------------------------------------------------
# TF1 graphs: a frozen GraphDef or a checkpoint


def _frozen_graph(path: Path, inputs: list[str], outputs: list[str]) -> Runner:
    with quiet_tf() as tf:
        if path.suffix == ".pbtxt":
            from google.protobuf import text_format

            graph_def = text_format.Parse(path.read_text(), tf.compat.v1.GraphDef())
        else:
            graph_def = tf.compat.v1.GraphDef.FromString(path.read_bytes())
        graph = tf.Graph()
        with graph.as_default():
            tf.graph_util.import_graph_def(graph_def, name="")
        del graph_def
        return _graph_runner(graph, tf.compat.v1.Session(graph=graph), inputs, outputs)


def _checkpoint(path: Path, inputs: list[str], outputs: list[str]) -> Runner:
    with quiet_tf() as tf:
        prefix = _prefix(tf, path)
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph)
        with graph.as_default():
            saver = tf.compat.v1.train.import_meta_graph(prefix + ".meta", clear_devices=True)
            saver.restore(session, prefix)
        return _graph_runner(graph, session, inputs, outputs)


def _prefix(tf, path: Path) -> str:
    """The checkpoint prefix of a prefix, a `.meta`/`.index`/`.data-*` file or a directory."""
    if path.is_dir():
        latest = tf.train.latest_checkpoint(str(path))
        metas = sorted(path.glob("*.meta"))
        if latest is None and len(metas) != 1:
            raise InputError("unsupported-format", f"{path} has no `checkpoint` state file and {len(metas)} .meta "
                             "files", "pass the checkpoint prefix, e.g. DIR/model.ckpt")
        return latest or str(metas[0].with_suffix(""))
    if path.suffix in (".meta", ".index"):
        return str(path.with_suffix(""))
    return str(path).split(".data-")[0]


def _alias(tensor_name: str) -> str:
    """`dense/Softmax:0` -> `dense_Softmax`, as the conversion derives aliases."""
    base = tensor_name[:-2] if tensor_name.endswith(":0") else tensor_name
    return base.replace("/", "_").replace(":", "_")


def _graph_runner(graph, session, inputs: list[str], outputs: list[str]) -> Runner:
    tensors: dict[str, object] = {}
    for op in graph.get_operations():
        for tensor in op.outputs:
            tensors.setdefault(_alias(tensor.name), tensor)
    fed = {alias: tensors[alias] for alias in inputs if alias in tensors}
    fetched = {alias: tensors[alias] for alias in outputs if alias in tensors}
    needed = _needed(list(fetched.values()), {t.name for t in fed.values()})
    _check(sorted({*fed, *needed}), list(fetched), inputs, outputs)

    def run(feeds: dict) -> dict:
        values = session.run(list(fetched.values()), {fed[alias]: feeds[alias] for alias in inputs})
        return dict(zip(fetched, values))

    return run


def _needed(fetches: list, fed: set[str]) -> list[str]:
    """Aliases of the placeholders the fetches depend on that are not fed."""
    needed, seen, stack = [], set(), [t.op for t in fetches]
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        if op.type in _PLACEHOLDERS:
            needed.append(_alias(op.outputs[0].name))
        stack.extend(t.op for t in op.inputs if t.name not in fed)
    return needed


# ---------------------------------------------------------------------------------------------
# SavedModel


def _savedmodel(path: Path, inputs: list[str], outputs: list[str]) -> Runner:
    directory = path if path.is_dir() else path.parent
    with quiet_tf() as tf:
        loaded = tf.saved_model.load(str(directory), tags=_tags(directory))
    signatures = dict(loaded.signatures)
    key = DEFAULT_SIGNATURE if DEFAULT_SIGNATURE in signatures else next(iter(signatures), None)
    if key is None or (key != DEFAULT_SIGNATURE and len(signatures) > 1):
        raise mismatch([], [], inputs, outputs)
    specs = signatures[key].structured_input_signature[1]
    _check(sorted(specs), list(signatures[key].structured_outputs), inputs, outputs)

    def run(feeds: dict) -> dict:
        function = loaded.signatures[key]  # through `loaded`, which owns the variables the function reads
        values = function(**{alias: tf.constant(feeds[alias], dtype=specs[alias].dtype) for alias in inputs})
        return {alias: values[alias].numpy() for alias in outputs}

    return run


def _tags(directory: Path) -> list[str] | None:
    """None for a SavedModel of one meta graph (TensorFlow takes it); of several, the served one's tags, as the
    conversion and TF Serving choose."""
    from tensorflow.core.protobuf import saved_model_pb2

    file = directory / "saved_model.pb"
    if not file.is_file() or len(saved_model_pb2.SavedModel.FromString(file.read_bytes()).meta_graphs) < 2:
        return None
    return list(SERVE_TAGS)
