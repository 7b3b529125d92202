"""What `tfsconvert bench` sends: golden requests (or synthesized ones), encoded once per protocol.

REST payloads are whole HTTP requests with the golden `:predict` body; gRPC payloads are
serialized `PredictRequest`s built from tfsconvert.tfproto's declarations (tensors as
`tensor_content`, as `tf.make_tensor_proto` writes numeric arrays), so no TensorFlow import.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tfsconvert import golden, tfproto
from tfsconvert.errors import InputError
from tfsconvert.golden import GoldenRecord
from tfsconvert.model import Signature
from tfsconvert.naming import DEFAULT_SIGNATURE
from tfsconvert.rest_codec import rest_request, sent_tensors
from tfsconvert.samples import synthesize
from tfsconvert.serving.loadgen import http_request
from tfsconvert.tensor_codec import to_proto
from tfsconvert.validate.client import model_path
from tfsconvert.validate.replay import rest_body

SYNTHESIZED = 8  # distinct made-up requests, sent in turn


def records(signatures: dict[str, Signature], golden_file: Path | None) -> tuple[list[GoldenRecord], str]:
    """(the requests, where they come from): the golden file if there is one, else SYNTHESIZED made-up
    requests of one row each for serving_default (or the first signature with inputs)."""
    if golden_file is not None and Path(golden_file).is_file():
        found = [r for r in golden.read_golden(Path(golden_file)) if r.signature_name in signatures]
        if not found:
            raise InputError("signature-not-found", f"{golden_file}: no request for a signature of the model "
                             f"({', '.join(signatures)})", "pass a golden file recorded for this model")
        return found, str(golden_file)
    name = DEFAULT_SIGNATURE if DEFAULT_SIGNATURE in signatures else next(
        (key for key, sig in signatures.items() if sig.inputs and not key.startswith("__")), None)
    if name is None:
        raise InputError("signature-not-found", "the model has no signature with inputs to send requests to",
                         "export the model with a serving_default signature")
    inputs = signatures[name].inputs
    feeds = synthesize(inputs, SYNTHESIZED)
    return [GoldenRecord(f"synthesized-{i}", name, rest_request(f, inputs, name), {})
            for i, f in enumerate(feeds)], "synthesized"


def tensors(record: GoldenRecord, signatures: dict[str, Signature]) -> dict[str, np.ndarray]:
    """The input arrays of a record, with the signature's dtypes."""
    return sent_tensors(record.request, signatures[record.signature_name].inputs)


def rows(record: GoldenRecord, signatures: dict[str, Signature]) -> int:
    """Rows one request carries (its 0th dimension): what a batch counts."""
    first = next(iter(tensors(record, signatures).values()))
    return int(first.shape[0]) if first.ndim else 1


def rest_payloads(batch: list[GoldenRecord], host: str, port: int, model: str, version: int | None) -> list[bytes]:
    """One whole HTTP `:predict` request per record."""
    path = f"{model_path(model, version)}:predict"
    out = []
    for record in batch:
        out.append(http_request(host, port, path, json.dumps(rest_body(record)).encode()))
    return out


def grpc_payloads(batch: list[GoldenRecord], signatures: dict[str, Signature], model: str) -> list[bytes]:
    """One serialized PredictRequest per record, for the model's latest version."""
    out = []
    for record in batch:
        request = tfproto.message_class("PredictRequest")()
        request.model_spec.name = model
        request.model_spec.signature_name = record.signature_name
        for alias, array in tensors(record, signatures).items():
            request.inputs[alias].CopyFrom(to_proto(array, signatures[record.signature_name].inputs[alias].dtype))
        out.append(request.SerializeToString())
    return out
