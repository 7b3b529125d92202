"""TF Serving statuses: error-code names, their text form and HTTP/gRPC mappings (docs/tf-serving.md §4.9, §5.3).

Light on purpose (no TensorFlow, no gRPC at import): the validator maps the statuses the server
prints onto finding codes with `finding_code`.
"""

from __future__ import annotations

from tfsconvert.naming import STATUS_CODES as CODES

CODE_NAMES = {number: name for name, number in CODES.items()}

# docs/tf-serving.md §4.9: model_servers/http_server.cc ToHTTPStatusCode.
HTTP_STATUS = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500,
    "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}

# gRPC details are cut here (docs/tf-serving.md §5.3, grpc_status_util.cc).
_GRPC_DETAILS_MAX = 1024


class ServingError(Exception):
    """A TF Serving status that is not OK: `code` is the tensorflow.error.Code name."""

    def __init__(self, code: str, message: str) -> None:
        if code not in CODES or code == "OK":
            raise ValueError(f"bad status code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def from_text(cls, text: str) -> "ServingError":
        """The status printed as `CODE: message` (the inverse of `str()`)."""
        code, _, message = text.partition(": ")
        return cls(code, message)

    def __str__(self) -> str:
        """absl `Status::ToString()`: `NOT_FOUND: message` (spec, status-code spelling)."""
        return f"{self.code}: {self.message}"

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    @property
    def grpc_details(self) -> str:
        if len(self.message) <= _GRPC_DETAILS_MAX:
            return self.message
        return self.message[:_GRPC_DETAILS_MAX] + "...TRUNCATED"


def invalid(message: str) -> ServingError:
    """INVALID_ARGUMENT, the code of nearly every request error."""
    return ServingError("INVALID_ARGUMENT", message)


# Substrings of TF Serving load statuses (docs/tf-serving.md §2, §7) -> docs/architecture.md "Finding codes" finding codes; first match wins.
_FINDINGS = (
    ("Could not find meta graph def matching supplied tags", "missing-serve-tag"),
    ("does not appear to contain a SavedModel bundle", "not-a-savedmodel"),
    ("Session Bundle is deprecated", "not-a-savedmodel"),
    ("as binary proto", "corrupt-model-file"),
    ("Op type not registered", "unknown-op"),
    ("warmup", "bad-warmup-file"),
    ("variables", "missing-variables"),
    ("Serving signature key", "signature-not-found"),
)


def finding_code(status_text: str) -> str:
    """The finding code for a load-failure status (e.g. from `Failed to start server. Error: ...`);
    `load-failed` when nothing more specific applies."""
    for needle, code in _FINDINGS:
        if needle in status_text:
            return code
    return "load-failed"
