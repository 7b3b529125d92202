"""`bad-warmup-file`: replay `assets.extra/tf_serving_warmup_requests` as TF Serving reads it (docs/tf-serving.md §2.6).

TF Serving reads the records in order inside the load: parse the record as a PredictionLog,
check its log type, run its request, then count it; the first failure fails the whole load
(§7 cases 16–19). We do the same without running anything: the request is checked against the
version's signatures instead (signature name and input aliases, predict logs only).
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf.message import Message

from tfsconvert import tfproto
from tfsconvert.findings import finding
from tfsconvert.model import Finding, VersionInfo
from tfsconvert.naming import DEFAULT_SIGNATURE, WARMUP_FILE
from tfsconvert.tfrecord import TFRecordError, read_records
from tfsconvert.warmup import MAX_RECORDS

# PredictionLog log_type fields TF Serving refuses for warmup, with the number it prints.
_UNSUPPORTED = {"session_run_log": 5, "predict_streamed_log": 7}
_LOG_TYPES = ("classify_log", "regress_log", "multi_inference_log", "predict_log", *_UNSUPPORTED)


def check_warmup(info: VersionInfo) -> list[Finding]:
    """The finding for the first record TF Serving would fail on, if any (one at most, as the load stops)."""
    path = Path(info.path) / WARMUP_FILE
    if not path.is_file():
        return []  # TF Serving logs `No warmup data file found` and loads
    try:
        for number, data in enumerate(read_records(path), start=1):
            problem = _record_problem(data, info)
            if problem is not None:
                what, tf_serving, fix = problem
                return [_bad(path, f"record {number} {what}", tf_serving, fix)]
            if number > MAX_RECORDS:  # counted after the record ran, so record 1001 is checked first
                return [_bad(path, f"has more than {MAX_RECORDS} records", f"INVALID_ARGUMENT: Number of warmup "
                             f"records exceeds the maximum ({MAX_RECORDS}) at {path}",
                             f"keep at most {MAX_RECORDS} records (TF Serving runs each one while loading)")]
    except TFRecordError as error:
        return [_bad(path, f"is not a TFRecord file ({error})",
                     f"DATA_LOSS: {error}. Please verify your warmup data is in TFRecord format.",
                     "write it with a TFRecord writer, one serialized PredictionLog per record")]
    return []


def _record_problem(data: bytes, info: VersionInfo) -> tuple[str, str, str] | None:
    """(what is wrong, TF Serving's error, the fix) for one record, or None if TF Serving accepts it."""
    try:
        log = tfproto.parse_binary("PredictionLog", data)
    except tfproto.DecodeError:
        return ("is not a serialized PredictionLog", f"INVALID_ARGUMENT: Failed to parse warmup record: "
                f"{data[:16]!r}… from {Path(info.path) / WARMUP_FILE}",
                "write PredictionLog.SerializeToString() into each record")
    log_type = next((name for name in _LOG_TYPES if log.HasField(name)), None)
    if log_type in _UNSUPPORTED:
        return (f"uses {log_type}, which warmup does not replay",
                f"UNIMPLEMENTED: Unsupported log_type for warmup: {_UNSUPPORTED[log_type]}",
                "use predict_log, classify_log, regress_log or multi_inference_log records")
    if log_type == "predict_log":
        return _predict_problem(log.predict_log.request, info)
    return None  # a record without log_type is skipped by TF Serving


def _predict_problem(request: Message, info: VersionInfo) -> tuple[str, str, str] | None:
    key = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = info.signatures.get(key)
    if signature is None:
        return (f"asks for signature '{key}', which version {info.version} does not have",
                f'FAILED_PRECONDITION: Serving signature key "{key}" not found.',
                f"set model_spec.signature_name to one of: {', '.join(info.signatures) or '(none)'}")
    sent, expected = set(request.inputs), set(signature.inputs)
    if sent == expected:
        return None
    fix = f"send exactly the inputs of signature '{key}': {', '.join(sorted(expected))}"
    if len(sent) != len(expected):
        return (f"sends inputs {sorted(sent)}, signature '{key}' takes {sorted(expected)}",
                f"INVALID_ARGUMENT: input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({_set(sent)}) != len({_set(expected)}). Sent extra: {_set(sent - expected)}. "
                f"Missing but required: {_set(expected - sent)}.", fix)
    alias = min(expected - sent)
    return (f"lacks input '{alias}' of signature '{key}'",
            f"INVALID_ARGUMENT: Signature input alias: {alias}(feed name: {signature.inputs[alias].name}) not found "
            f"in request and no default value provided. Inputs expected to be in the request {_set(sent)}, "
            f"or default input alias set: ", fix)


def _set(names: set[str]) -> str:
    return "{" + ",".join(sorted(names)) + "}"


def _bad(path: Path, what: str, tf_serving: str, hint: str) -> Finding:
    return finding("bad-warmup-file", f"{path} {what}; TF Serving fails the load of this version: `{tf_serving}`",
                   f"{hint}, or delete it (warmup is optional): rm {path}", path, tf_serving=tf_serving)
