"""Source: a frozen GraphDef (`.pb` binary or `.pbtxt` text)."""

from __future__ import annotations

from pathlib import Path

from tfsconvert.convert.graph_source import GraphSource
from tfsconvert.errors import InputError
from tfsconvert.inspect.graphdef import read_graphdef
from tfsconvert.runtimes.tf import quiet_tf


def load(path: Path) -> GraphSource:
    """Check the file without TensorFlow (fast errors), then import the original bytes into a session.

    The graph TensorFlow runs is parsed by TensorFlow's own GraphDef message from the untouched
    file, never re-serialized through our declarations, so every attr (0, false and "" included)
    reaches the session as written.
    """
    read_graphdef(path)  # read without its weights, and not kept: TensorFlow's parse holds them once
    with quiet_tf() as tf:
        graph_def = _tensorflow_graphdef(tf, path)
        graph = tf.Graph()
        try:
            with graph.as_default():
                tf.graph_util.import_graph_def(graph_def, name="")
        except (ValueError, tf.errors.OpError) as error:
            first = str(error).strip().splitlines()[0]
            raise InputError("load-failed", f"{path} cannot be imported by TensorFlow {tf.__version__}: {first}",
                             "re-export the graph with this TensorFlow version, or register its custom ops "
                             "(TF Serving cannot load unregistered ops either)") from None
        del graph_def
        session = tf.compat.v1.Session(graph=graph)
    return GraphSource(path, "frozen-graph", graph, session)


def _tensorflow_graphdef(tf, path: Path):
    """The file parsed by TensorFlow's GraphDef message (text for `.pbtxt`, as read_graphdef does)."""
    if path.suffix == ".pbtxt":
        from google.protobuf import text_format

        return text_format.Parse(path.read_text(), tf.compat.v1.GraphDef())
    return tf.compat.v1.GraphDef.FromString(path.read_bytes())
