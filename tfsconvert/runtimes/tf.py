"""TensorFlow, imported once and quietly, and SavedModels loaded the way TF Serving loads them."""

from __future__ import annotations

import ctypes
import gc
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from tfsconvert.errors import EnvironmentProblem, missing_dependency
from tfsconvert.naming import SERVE_TAGS
from tfsconvert.quiet import native_stderr_silenced


def import_tf():
    """The `tensorflow` module (a missing install is an environment problem, exit 3)."""
    try:
        with native_stderr_silenced():
            import tensorflow as tf
    except ModuleNotFoundError:
        raise missing_dependency("tensorflow", "tensorflow") from None
    except ImportError as error:  # installed but broken, or out of memory mapping its libraries
        raise EnvironmentProblem("tensorflow-import-failed", f"TensorFlow is installed but failed to import: {error}",
                                 "reinstall it (make setup), or give the process more memory") from None
    tf.get_logger().setLevel(logging.ERROR)  # TF1-API deprecation warnings are ours to avoid, not the user's
    return tf


def release_memory() -> None:
    """Collect dropped TensorFlow objects and hand the freed heap back to the OS (glibc's malloc_trim),
    so a big graph freed between phases is not counted again by the next one."""
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except AttributeError:  # not glibc
        pass


@contextmanager
def quiet_tf() -> Iterator[object]:
    """TensorFlow with its deprecation notices and native log lines silenced for the block."""
    tf = import_tf()
    from tensorflow.python.util import deprecation

    with deprecation.silence(), native_stderr_silenced():
        yield tf


class ServingSession:
    """A SavedModel loaded like TF Serving's SavedModelBundle (docs/tf-serving.md §2.1): the TF1 session
    loader with an exact tag-set, signatures resolved by key, tensors fed and fetched by name."""

    def __init__(self, export_dir: Path, tags: tuple[str, ...] = SERVE_TAGS, threads: tuple[int, int] = (0, 0)) -> None:
        """`threads`: TensorFlow's (intra-op, inter-op) thread pool sizes, 0 for TF's choice."""
        with quiet_tf() as tf:
            self.graph = tf.Graph()
            config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads[0],
                                              inter_op_parallelism_threads=threads[1])
            self.session = tf.compat.v1.Session(graph=self.graph, config=config)
            with self.graph.as_default():
                meta_graph = tf.compat.v1.saved_model.loader.load(self.session, list(tags), str(export_dir))
        # Copies: a reference into the parsed MetaGraphDef would keep its whole graph in memory.
        self.signatures = {key: type(sig).FromString(sig.SerializeToString())
                           for key, sig in meta_graph.signature_def.items()}

    def run(self, signature_name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Feed inputs by alias, fetch every output of the signature, keyed by alias."""
        signature = self.signatures[signature_name]
        aliases = list(signature.outputs)
        feed_dict = {signature.inputs[alias].name: value for alias, value in feeds.items()}
        values = self.session.run([signature.outputs[a].name for a in aliases], feed_dict)
        return dict(zip(aliases, values))

    def make_callable(self, signature_name: str) -> tuple[list[str], list[str], Callable]:
        """(input aliases, output aliases, run(*inputs in that order)) for a signature.

        Session.run refuses a feed whose shape disagrees with the placeholder; TF Serving has no
        such check and reports the op that chokes (docs/tf-serving.md §3.2), and so does a callable.
        """
        from tensorflow.core.protobuf import config_pb2

        signature = self.signatures[signature_name]
        inputs, outputs = sorted(signature.inputs), list(signature.outputs)
        options = config_pb2.CallableOptions(feed=[signature.inputs[a].name for a in inputs],
                                             fetch=[signature.outputs[a].name for a in outputs])
        return inputs, outputs, self.session._make_callable_from_options(options)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "ServingSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
