"""`assets.extra/tf_serving_warmup_requests`: PredictionLog records in a TFRecord file (docs/tf-serving.md §2.6).

TF Serving runs these while loading a version, so the first real request does not pay for
lazy initialisation. Uses the official `tensorflow_serving.apis` protos, imported on use.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterable

import numpy as np

from tfsconvert.dtypes import dtype_name
from tfsconvert.naming import CLASSIFY_METHOD, REGRESS_METHOD
from tfsconvert.quiet import native_stderr_silenced
from tfsconvert.tensor_codec import to_proto
from tfsconvert.tfrecord import write_records

# TF Serving fails the whole load past this many records (docs/tf-serving.md §2.6).
MAX_RECORDS = 1000


def write_logs(path: Path, records: Iterable[bytes]) -> int:
    """Write serialized PredictionLogs (at most MAX_RECORDS); returns the count."""
    return write_records(path, itertools.islice(records, MAX_RECORDS))


def warmup_records(samples: list[dict[str, np.ndarray]], model_name: str, signature_name: str,
                   method: str | None = None) -> list[bytes]:
    """One serialized PredictionLog per sample: `classify_log`/`regress_log` (the serialized
    tf.Examples of input `inputs`) for those methods, else `predict_log`."""
    with native_stderr_silenced():
        from tensorflow.core.framework import tensor_pb2
        from tensorflow_serving.apis import (classification_pb2, input_pb2, model_pb2, predict_pb2,
                                             prediction_log_pb2, regression_pb2)

    spec = model_pb2.ModelSpec(name=model_name, signature_name=signature_name)

    def examples(feeds: dict[str, np.ndarray]):
        items = input_pb2.ExampleList()
        for data in feeds["inputs"].ravel():
            items.examples.add().ParseFromString(data)
        return input_pb2.Input(example_list=items)

    def record(feeds: dict[str, np.ndarray]) -> prediction_log_pb2.PredictionLog:
        if method == CLASSIFY_METHOD:
            request = classification_pb2.ClassificationRequest(model_spec=spec, input=examples(feeds))
            return prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(request=request))
        if method == REGRESS_METHOD:
            request = regression_pb2.RegressionRequest(model_spec=spec, input=examples(feeds))
            return prediction_log_pb2.PredictionLog(regress_log=prediction_log_pb2.RegressLog(request=request))
        request = predict_pb2.PredictRequest(model_spec=spec)
        for alias, array in feeds.items():
            request.inputs[alias].CopyFrom(to_proto(array, dtype_name(array), message=tensor_pb2.TensorProto))
        return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))

    return [record(feeds).SerializeToString() for feeds in samples[:MAX_RECORDS]]
