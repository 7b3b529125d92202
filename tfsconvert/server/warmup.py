"""Run `assets.extra/tf_serving_warmup_requests` against a just-loaded version (docs/tf-serving.md §2.6).

Any failure fails the whole load, with TF Serving's status for it.
"""

from __future__ import annotations

import time
from pathlib import Path

from tfsconvert import tfproto
from tfsconvert.naming import WARMUP_FILE
from tfsconvert.server import core, examples, logs
from tfsconvert.server.backends import Servable
from tfsconvert.server.status import ServingError, invalid
from tfsconvert.server.tensors import to_array
from tfsconvert.tfrecord import TFRecordError, read_records
from tfsconvert.warmup import MAX_RECORDS

_WHERE = "servables/tensorflow/saved_model_warmup_util.cc"
_UNSUPPORTED = {"session_run_log": 5, "predict_streamed_log": 7}


def run_warmup(version_dir: Path, servable: Servable, iterations: int) -> None:
    """Execute every record `iterations` times (at least once); ServingError if any fails."""
    path = version_dir / WARMUP_FILE
    if not path.is_file():
        logs.info(_WHERE + ":78", f"No warmup data file found at {path}")
        return
    logs.info(_WHERE + ":101", f"Starting to read warmup data for model at {path} with model-warmup-options ")
    started, count = time.monotonic(), 0
    try:
        for data in read_records(path):
            try:
                log = tfproto.parse_binary("PredictionLog", data)
            except tfproto.DecodeError:
                raise invalid(f"Failed to parse warmup record: {data[:64]!r} from {path}") from None
            for _ in range(max(iterations, 1)):
                _run_record(servable, log)
            count += 1
            # Checked after running the record, so record 1001 runs before the load fails.
            if count > MAX_RECORDS:
                raise invalid(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
    except TFRecordError as error:
        raise ServingError("DATA_LOSS", f"{error}. Please verify your warmup data is in TFRecord format.") from None
    micros = int((time.monotonic() - started) * 1e6)
    logs.info(_WHERE + ":160", f"Finished reading warmup data for model at {path}. Number of warmup records read: "
              f"{count}. Elapsed time (microseconds): {micros}.")


def _run_record(servable: Servable, log) -> None:
    kind = log.WhichOneof("log_type")
    if kind is None:
        return  # silently skipped, as TF Serving does
    if kind in _UNSUPPORTED:
        raise ServingError("UNIMPLEMENTED", f"Unsupported log_type for warmup: {_UNSUPPORTED[kind]}")
    request = getattr(log, kind).request
    if kind == "predict_log":
        inputs = {alias: to_array(proto, alias) for alias, proto in request.inputs.items()}
        core.predict(servable, request.model_spec.signature_name, inputs, tuple(request.output_filter))
    elif kind == "classify_log":
        core.classify(servable, request.model_spec.signature_name, examples.from_input(request.input))
    elif kind == "regress_log":
        core.regress(servable, request.model_spec.signature_name, examples.from_input(request.input))
    else:
        raise ServingError("UNIMPLEMENTED", "multi_inference_log warmup records are not supported by tfsconvert's "
                           "server yet")

