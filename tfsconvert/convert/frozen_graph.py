"""Source: a frozen GraphDef (`.pb` binary or `.pbtxt` text)."""

from __future__ import annotations

from pathlib import Path

from tfsconvert.convert.graph_source import GraphSource
from tfsconvert.errors import InputError
from tfsconvert.inspect.graphdef import read_graphdef
from tfsconvert.tf_runtime import quiet_tf


def load(path: Path) -> GraphSource:
    """Parse the graph (without TensorFlow, for fast errors), then import it into a session."""
    parsed = read_graphdef(path)
    with quiet_tf() as tf:
        graph_def = tf.compat.v1.GraphDef.FromString(parsed.SerializeToString())
        graph = tf.Graph()
        try:
            with graph.as_default():
                tf.graph_util.import_graph_def(graph_def, name="")
        except (ValueError, tf.errors.OpError) as error:
            first = str(error).strip().splitlines()[0]
            raise InputError("load-failed", f"{path} cannot be imported by TensorFlow {tf.__version__}: {first}",
                             "re-export the graph with this TensorFlow version, or register its custom ops "
                             "(TF Serving cannot load unregistered ops either)") from None
        session = tf.compat.v1.Session(graph=graph)
    return GraphSource(path, "frozen-graph", graph, session)
