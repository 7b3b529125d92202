"""User-facing failures. The library raises these; only the CLI renders them."""

from __future__ import annotations


class TfsConvertError(Exception):
    """A failure the user can act on: a stable `code`, a one-line `message` and a `hint`."""

    exit_code = 2

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint

    def to_json(self) -> dict:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class CheckFailed(TfsConvertError):
    """A parity or validation check found the artifact wrong (exit 1)."""

    exit_code = 1


class InputError(TfsConvertError):
    """Usage error, or input that cannot be read or is not a supported format (exit 2)."""

    exit_code = 2


class EnvironmentProblem(TfsConvertError):
    """Missing dependency, Java missing or too old, library version skew (exit 3)."""

    exit_code = 3


class InfrastructureError(TfsConvertError):
    """The sandbox or server failed for reasons not caused by the model (exit 4)."""

    exit_code = 4


def missing_dependency(module: str, extra: str) -> EnvironmentProblem:
    """The error for an optional dependency that is not installed."""
    return EnvironmentProblem(
        "missing-dependency",
        f"this needs the Python package '{module}', which is not installed",
        f"pip install 'tfsconvert[{extra}]'  (or run `make demo`, which installs everything)",
    )


def unreadable(path, error: OSError) -> InputError:
    """The error for a model file the OS will not let us read."""
    return InputError("corrupt-model-file", f"{path} cannot be read: {error.strerror or error}",
                      "check the path and its permissions")
