"""Source: a TF1 checkpoint (prefix, `.meta`, `.index` or directory) with its `.meta` graph."""

from __future__ import annotations

from pathlib import Path

from tfsconvert.convert.graph_source import GraphSource
from tfsconvert.errors import InputError
from tfsconvert.inspect.checkpoint import checkpoint_prefix, file_findings, read_meta_graph
from tfsconvert.runtimes.tf import quiet_tf


def load(path: Path) -> GraphSource:
    """Import the `.meta` graph and restore the variables, as the training code would."""
    prefix = checkpoint_prefix(path)
    read_meta_graph(prefix)  # a missing or corrupt .meta fails here, before TensorFlow loads
    for problem in file_findings(prefix):
        raise InputError(problem.code, problem.message, problem.hint)
    with quiet_tf() as tf:
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph)
        with graph.as_default():
            try:
                saver = tf.compat.v1.train.import_meta_graph(str(prefix) + ".meta", clear_devices=True)
                saver.restore(session, str(prefix))
            except (ValueError, tf.errors.OpError) as error:
                first = str(error).strip().splitlines()[0]
                raise InputError("load-failed", f"checkpoint {prefix} cannot be restored: {first}",
                                 "re-save the checkpoint with tf.compat.v1.train.Saver from the training code") \
                    from None
    return GraphSource(prefix, "tf1-checkpoint", graph, session)
