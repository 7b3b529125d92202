"""Errors raised in a Python worker, carried to the driver as one marked line inside Spark's own
exception text, and rebuilt there as the TfsConvertError the user sees (no Spark stack trace)."""

from __future__ import annotations

import json
import re

from tfsconvert.errors import (CheckFailed, EnvironmentProblem, InfrastructureError, InputError, TfsConvertError,
                               one_line, root_cause)

_MARK = "@@tfsconvert-error@@"
_FOUND = re.compile(re.escape(_MARK) + r"(.*?)" + re.escape(_MARK), re.S)
_BY_EXIT = {1: CheckFailed, 2: InputError, 3: EnvironmentProblem, 4: InfrastructureError}


def wrap(error: BaseException) -> RuntimeError:
    """The exception a worker raises: a TfsConvertError as it is, anything else as exit 4 `executor-failed`."""
    if not isinstance(error, TfsConvertError):
        error = InfrastructureError("executor-failed", f"a Spark task failed: {one_line(root_cause(error))}",
                                    "re-run with --debug to see Spark's log and the Python traceback")
    payload = json.dumps({**error.to_json(), "exit": error.exit_code})
    return RuntimeError(f"{_MARK}{payload}{_MARK}")


def unwrap(error: BaseException) -> TfsConvertError | None:
    """The worker's error found in a Spark job failure, or None."""
    found = _FOUND.search(str(error))
    if found is None:
        return None
    data = json.loads(found.group(1))
    return _BY_EXIT.get(data["exit"], InfrastructureError)(data["code"], data["message"], data["hint"])
