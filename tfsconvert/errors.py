"""User-facing failures. The library raises these; only the CLI renders them."""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Iterator


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


# The extra (pyproject.toml) that installs each optional top-level module.
_EXTRAS = {
    "tensorflow": "tensorflow", "tf2onnx": "tensorflow", "tensorflow_serving": "tensorflow",
    "onnxruntime": "onnx", "skl2onnx": "onnx", "onnxmltools": "onnx",
    "pypmml": "pmml", "jpmml_evaluator": "pmml", "jpype": "pmml",
    "sklearn": "sklearn", "sklearn2pmml": "sklearn", "joblib": "sklearn", "pandas": "sklearn", "pyarrow": "sklearn",
    "pyspark": "spark", "pyspark2pmml": "spark", "xgboost": "xgboost", "lightgbm": "lightgbm",
}


def for_missing_module(error: ModuleNotFoundError) -> EnvironmentProblem | None:
    """`missing-dependency` naming the extra when `error` is an optional package that is not installed."""
    extra = _EXTRAS.get((error.name or "").partition(".")[0])
    return missing_dependency(error.name, extra) if extra else None


@contextlib.contextmanager
def optional_packages_named() -> Iterator[None]:
    """Turn an optional package a code path imports without checking first into `missing-dependency`
    (exit 3, the `pip install 'tfsconvert[...]'` line); any other ModuleNotFoundError passes through."""
    try:
        yield
    except ModuleNotFoundError as error:
        problem = for_missing_module(error)
        if problem is None:
            raise
        raise problem from error


def unreadable(path, error: OSError) -> InputError:
    """The error for a model file the OS will not let us read."""
    return InputError("corrupt-model-file", f"{path} cannot be read: {error.strerror or error}",
                      "check the path and its permissions")


def special_kind(mode: int) -> str:
    """What a file that is neither a regular file nor a directory is, in words."""
    kinds = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
             (stat.S_ISSOCK, "socket"))
    return next((name for test, name in kinds if test(mode)), "special file")


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception of a chain (`raise ... from`, or one raised while handling another):
    converters wrap the real reason ("Expected an int, got a boolean") in their own messages."""
    seen = {id(error)}
    while (inner := error.__cause__ or error.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        error = inner
    return error


def one_line(error: BaseException, limit: int = 300) -> str:
    """`Type: first line of the message`, cut at `limit` characters."""
    first = (str(error).strip().splitlines() or [""])[0][:limit]
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
