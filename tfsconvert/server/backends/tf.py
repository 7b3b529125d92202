"""TensorFlow SavedModels, loaded as TF Serving's SavedModelBundleFactory loads them (docs/tf-serving.md §2.1).

The checks TF Serving makes before TensorFlow's loader runs are made here first, so a broken
version fails with TF Serving's own status; errors from TensorFlow keep its code and message.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from tfsconvert.server.status import CODE_NAMES, ServingError


def tf_error(error) -> ServingError:
    """A TensorFlow OpError as a ServingError with the same code and message."""
    code = CODE_NAMES.get(error.error_code, "UNKNOWN")
    # Python's restore reports a missing variables.data file as UNKNOWN; TF Serving's C++ file
    # system says NOT_FOUND (docs/tf-serving.md §7 case 14).
    if code == "UNKNOWN" and "No such file or directory" in error.message:
        code = "NOT_FOUND"
    return ServingError(code, error.message)


def check_bundle(export_dir: Path, tags: tuple[str, ...]) -> None:
    """docs/tf-serving.md §2.1 steps 3-5: session bundle, missing saved_model.pb, unparsable proto, tag set."""
    if (export_dir / "export.meta").exists():
        raise ServingError("UNIMPLEMENTED", "Session Bundle is deprecated and removed.")
    binary, text = export_dir / "saved_model.pb", export_dir / "saved_model.pbtxt"
    if not (binary.is_file() or text.is_file()):
        raise ServingError("NOT_FOUND", "Specified file path does not appear to contain a SavedModel bundle "
                           f"(should have a file called `saved_model.pb`)\nSpecified file path: {export_dir}")
    from google.protobuf import message, text_format

    from tfsconvert.runtimes.tf import import_tf

    import_tf()  # quietly, before TensorFlow's protos import it noisily
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    path = binary if binary.is_file() else text  # .pb wins when both exist
    try:
        if path is binary:
            saved_model.ParseFromString(path.read_bytes())
        else:
            text_format.Parse(path.read_text(encoding="utf-8"), saved_model)
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError):
        kind = "binary" if path is binary else "text"
        raise ServingError("DATA_LOSS", f"Can't parse {path} as {kind} proto") from None
    # Exact set equality, not subset (loader.cc); a frozen GraphDef parses as a SavedModel with no
    # meta graphs and ends here too (docs/tf-serving.md §2.3).
    if not any(set(graph.meta_info_def.tags) == set(tags) for graph in saved_model.meta_graphs):
        raise ServingError("NOT_FOUND", f"Could not find meta graph def matching supplied tags: "
                           f"{{ {' '.join(tags)} }}. To inspect available tag-sets in the SavedModel, please "
                           "use the SavedModel CLI: `saved_model_cli`")


class TfServable:
    """A SavedModel in a TF1 session (tfsconvert.runtimes.tf.ServingSession), one callable per signature."""

    batchable = True

    def __init__(self, export_dir: Path, tags: tuple[str, ...], threads: tuple[int, int] = (0, 0)) -> None:
        check_bundle(export_dir, tags)
        from tfsconvert.runtimes.tf import ServingSession, import_tf

        tf = import_tf()
        try:
            self._session = ServingSession(export_dir, tags, threads)
        except tf.errors.OpError as error:
            raise tf_error(error) from None
        self._errors = tf.errors.OpError
        self.signatures = self._session.signatures
        self._callables: dict = {}
        self._lock = threading.Lock()

    def _callable(self, name: str):
        """(input aliases, output aliases, run) for a signature, made on first use (ServingSession.make_callable)."""
        with self._lock:
            if name not in self._callables:
                self._callables[name] = self._session.make_callable(name)
            return self._callables[name]

    def run(self, signature_name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            inputs, outputs, run = self._callable(signature_name)
            return dict(zip(outputs, run(*[feeds[alias] for alias in inputs])))
        except self._errors as error:
            raise tf_error(error) from None

    def close(self) -> None:
        self._session.close()
