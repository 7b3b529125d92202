"""`assets.extra/tf_serving_warmup_requests`: PredictionLog records in a TFRecord file (spec §2.6).

TF Serving runs these while loading a version, so the first real request does not pay for
lazy initialisation. Uses the official `tensorflow_serving.apis` protos, imported on use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfsconvert.quiet import native_stderr_silenced
from tfsconvert.tfrecord import read_records, write_records

# TF Serving fails the whole load past this many records (spec §2.6).
MAX_RECORDS = 1000


def write_warmup(path: Path, samples: list[dict[str, np.ndarray]], model_name: str, signature_name: str) -> int:
    """Write one predict PredictionLog per sample (at most MAX_RECORDS); returns the count."""
    with native_stderr_silenced():
        import tensorflow as tf
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    def record(feeds: dict[str, np.ndarray]) -> bytes:
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name))
        for alias, array in feeds.items():
            request.inputs[alias].CopyFrom(tf.make_tensor_proto(array))
        log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        return log.SerializeToString()

    return write_records(path, (record(feeds) for feeds in samples[:MAX_RECORDS]))


def read_warmup(path: Path) -> list:
    """The PredictionLog messages of a warmup file.

    TFRecordError if the framing is bad; protobuf's DecodeError if a record is not a
    PredictionLog (TF Serving: `Failed to parse warmup record`).
    """
    with native_stderr_silenced():
        from tensorflow_serving.apis import prediction_log_pb2

    return [prediction_log_pb2.PredictionLog.FromString(data) for data in read_records(path)]
