"""Comparison of outputs: names, then dtype kind and shape, then values; every output reported."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from tfsconvert.dtypes import bytes_list, dtype_name

@dataclass
class OutputDiff:
    """How one output compared; `problem` says what failed first when `ok` is False."""

    alias: str
    dtype: str
    max_abs: float | None
    max_rel: float | None
    atol: float
    rtol: float
    ok: bool
    problem: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


_KINDS = {"f": "float", "i": "integer", "u": "integer", "b": "bool", "O": "string", "S": "string",
          "U": "string"}


def compare(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray], atol: float,
            rtol: float) -> list[OutputDiff]:
    """Compare every expected output (and flag unexpected ones) within atol + rtol*|expected|."""
    diffs = [_compare_one(alias, np.asarray(value), actual.get(alias), atol, rtol)
             for alias, value in expected.items()]
    diffs += [OutputDiff(alias, dtype_name(np.asarray(value)), None, None, atol, rtol, False, "unexpected output")
              for alias, value in actual.items() if alias not in expected]
    return diffs


def _compare_one(alias: str, expected: np.ndarray, actual: np.ndarray | None, atol: float,
                 rtol: float) -> OutputDiff:
    name = dtype_name(expected)
    problem = "missing output" if actual is None else _structure_problem(expected, np.asarray(actual))
    if problem:
        return OutputDiff(alias, name, None, None, atol, rtol, False, problem)
    actual = np.asarray(actual)
    if _kind(expected) == "float":
        max_abs, max_rel, problem = _float_errors(expected, actual, atol, rtol)
    else:
        (max_abs, problem), max_rel = _exact_errors(expected, actual), None
    return OutputDiff(alias, name, max_abs, max_rel, atol, rtol, problem is None, problem)


def _kind(array: np.ndarray) -> str:
    return _KINDS.get(array.dtype.kind, array.dtype.kind)


def _structure_problem(expected: np.ndarray, actual: np.ndarray) -> str | None:
    """Dtype kind, then shape; float32 against float64 is not a problem (values decide)."""
    if _kind(actual) != _kind(expected):
        return f"dtype {dtype_name(actual)} != expected {dtype_name(expected)}"
    if actual.shape != expected.shape:
        return f"shape {list(actual.shape)} != expected {list(expected.shape)}"
    return None


def _exact_errors(expected: np.ndarray, actual: np.ndarray) -> tuple[float | None, str | None]:
    """(max_abs, problem) for integers, bools and strings, which must match exactly."""
    if _kind(expected) == "string":
        wrong = sum(e != a for e, a in zip(bytes_list(expected), bytes_list(actual)))
        max_abs = None
    else:
        wrong = int(np.count_nonzero(expected != actual))
        gap = np.abs(expected.astype(np.float64) - actual.astype(np.float64))
        max_abs = float(gap.max()) if gap.size else 0.0
    return max_abs, f"{wrong} of {expected.size} values differ" if wrong else None


def _float_errors(expected: np.ndarray, actual: np.ndarray, atol: float,
                  rtol: float) -> tuple[float, float, str | None]:
    """(max_abs, max_rel, problem) over the positions where neither side is NaN."""
    e, a = expected.astype(np.float64), actual.astype(np.float64)
    nan_moved = int(np.count_nonzero(np.isnan(e) != np.isnan(a)))
    both = ~(np.isnan(e) | np.isnan(a))
    e, a = e[both], a[both]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        gap = np.where(a == e, 0.0, np.abs(a - e))  # equal infinities differ by 0, not NaN
        # Relative to |expected|, floored at float32 epsilon so expected zeros give a readable figure.
        scale = np.maximum(np.abs(e), np.finfo(np.float32).eps)
        rel = np.where(gap == 0, 0.0, np.where(np.isinf(gap), np.inf, gap / scale))
        # An infinite gap never passes, even when rtol * |inf| would allow it.
        within = (gap == 0) | (np.isfinite(gap) & (gap <= atol + rtol * np.abs(e)))
    max_abs = float(gap.max()) if gap.size else 0.0
    max_rel = float(rel.max()) if rel.size else 0.0
    outside = int(np.count_nonzero(~within))
    if nan_moved:
        return max_abs, max_rel, f"NaN at {nan_moved} position(s) where the other side has a number"
    if outside:
        return max_abs, max_rel, f"{outside} of {expected.size} values outside atol + rtol*|expected|"
    return max_abs, max_rel, None


def merge(diffs: list[list[OutputDiff]]) -> list[OutputDiff]:
    """One row per output over all samples: largest errors, ok only if every sample was ok."""
    rows: dict[str, OutputDiff] = {}
    for sample in diffs:
        for diff in sample:
            row = rows.get(diff.alias)
            rows[diff.alias] = diff if row is None else replace(
                row, max_abs=_larger(row.max_abs, diff.max_abs), max_rel=_larger(row.max_rel, diff.max_rel),
                ok=row.ok and diff.ok, problem=row.problem or diff.problem)
    return list(rows.values())


def _larger(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return b if a is None else a
    return max(a, b)
