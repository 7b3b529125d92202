"""Per-partition comparison statistics and their merge: bounded in size whatever the row count.

Per output field: rows compared, rows outside atol + rtol*|expected|, label flips, the largest
absolute and relative errors and a histogram of each row's absolute error in fixed log-spaced
bins. Per partition also the K worst rows (with their inputs), the worst rows still within the
tolerance (golden candidates) and a seeded random sample (smallest random keys), all kept as
JSON-ready records.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np

# Histogram of a row's absolute error: exact, then (1e-13, 1e-12], ..., (1e-1, 1], then > 1, then NaN/inf.
EDGES = [10.0 ** e for e in range(-12, 1)]
BIN_LABELS = ["0", f"<={EDGES[0]:g}"] + [f"<={b:g}" for b in EDGES[1:]] + [f">{EDGES[-1]:g}", "nan/inf"]
_F32_EPS = float(np.finfo(np.float32).eps)


def bin_counts(errors: np.ndarray) -> np.ndarray:
    """Counts of `errors` (>= 0, NaN/inf allowed) in the BIN_LABELS bins."""
    counts = np.zeros(len(BIN_LABELS), dtype=np.int64)
    finite = np.isfinite(errors)
    counts[-1] = int(np.count_nonzero(~finite))
    values = errors[finite]
    counts[0] = int(np.count_nonzero(values == 0))
    positive = values[values > 0]
    counts[1:-1] += np.bincount(np.searchsorted(EDGES, positive, side="left"), minlength=len(EDGES) + 1)
    return counts


@dataclass
class FieldErrors:
    """One batch of one output field compared row by row."""

    abs: np.ndarray  # [n] largest absolute error of each row (0 for an exact match; inf for a label change)
    rel: np.ndarray | None  # [n] largest relative error (float fields)
    over: np.ndarray  # [n] bool: outside the tolerance (or differing, for exact fields)
    flips: np.ndarray | None  # [n] bool: the row's label (or a probability vector's arg max) changed
    problem: str | None = None  # a dtype or shape mismatch: every row counts as over


def compare_field(expected: np.ndarray, actual: np.ndarray, atol: float, rtol: float, label: bool) -> FieldErrors:
    """Row-wise errors of one field; floats within atol + rtol*|expected| (NaN == NaN), others exact."""
    n = len(expected)
    expected, actual = np.asarray(expected), np.asarray(actual)
    problem = _structure(expected, actual)
    if problem:
        return FieldErrors(np.full(n, np.inf), None, np.ones(n, bool), np.ones(n, bool) if label else None, problem)
    if expected.dtype.kind != "f":
        same = _exact_equal(expected, actual).reshape(n, -1).all(axis=1)
        gap = np.where(same, 0.0, np.inf)
        return FieldErrors(gap, None, ~same, ~same if label else None)
    e, a = expected.astype(np.float64).reshape(n, -1), actual.astype(np.float64).reshape(n, -1)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        both_nan = np.isnan(e) & np.isnan(a)
        gap = np.where((a == e) | both_nan, 0.0, np.abs(a - e))
        gap = np.where(np.isnan(gap), np.inf, gap)  # one side NaN
        rel = np.where(gap == 0, 0.0, gap / np.maximum(np.abs(np.nan_to_num(e)), _F32_EPS))
        within = (gap == 0) | (np.isfinite(gap) & (gap <= atol + rtol * np.abs(e)))
    over = ~within.all(axis=1)
    flips = None
    if e.shape[1] > 1:  # a probability / score vector: the class it picks (a tie within tolerance is no flip)
        flips = over & (np.argmax(np.where(np.isnan(e), -np.inf, e), axis=1) != np.argmax(
            np.where(np.isnan(a), -np.inf, a), axis=1))
    return FieldErrors(gap.max(axis=1), rel.max(axis=1), over, flips)


def _structure(expected: np.ndarray, actual: np.ndarray) -> str | None:
    kinds = {"f": "float", "i": "integer", "u": "integer", "b": "bool", "O": "string", "S": "string", "U": "string"}
    ek, ak = kinds.get(expected.dtype.kind, "?"), kinds.get(actual.dtype.kind, "?")
    if ek != ak and not {ek, ak} <= {"integer", "float"}:
        return f"dtype {ak} != expected {ek}"
    if expected.shape != actual.shape:
        return f"shape {list(actual.shape)} != expected {list(expected.shape)}"
    return None


def _exact_equal(expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    if expected.dtype.kind in "OSU":
        def text(v):
            return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        return np.asarray([text(x) == text(y) for x, y in zip(expected.ravel(), actual.ravel())],
                          dtype=bool).reshape(expected.shape)
    return np.asarray(expected == actual)


@dataclass
class FieldStats:
    """One output field over any number of rows (mergeable)."""

    rows: int = 0
    rows_over: int = 0
    flips: int | None = None
    max_abs: float = 0.0
    max_rel: float | None = None
    histogram: list[int] = field(default_factory=lambda: [0] * len(BIN_LABELS))
    problem: str | None = None

    def add(self, errors: FieldErrors) -> None:
        self.rows += len(errors.abs)
        self.rows_over += int(np.count_nonzero(errors.over))
        if errors.flips is not None:
            self.flips = (self.flips or 0) + int(np.count_nonzero(errors.flips))
        if len(errors.abs):
            self.max_abs = _max(self.max_abs, float(errors.abs.max()))
            if errors.rel is not None:
                self.max_rel = _max(self.max_rel, float(errors.rel.max()))
        self.histogram = (np.asarray(self.histogram) + bin_counts(errors.abs)).tolist()
        self.problem = self.problem or errors.problem

    def merge(self, other: "FieldStats") -> None:
        self.rows += other.rows
        self.rows_over += other.rows_over
        if other.flips is not None:
            self.flips = (self.flips or 0) + other.flips
        self.max_abs = _max(self.max_abs, other.max_abs)
        self.max_rel = _max(self.max_rel, other.max_rel)
        self.histogram = [a + b for a, b in zip(self.histogram, other.histogram)]
        self.problem = self.problem or other.problem

    def to_json(self) -> dict:
        return {"rows": self.rows, "rows_over": self.rows_over, "flips": self.flips, "max_abs": _finite(self.max_abs),
                "max_rel": _finite(self.max_rel), "histogram": self.histogram, "problem": self.problem}

    @classmethod
    def from_json(cls, data: dict) -> "FieldStats":
        return cls(data["rows"], data["rows_over"], data["flips"], _number(data["max_abs"]),
                   _number(data["max_rel"]), data["histogram"], data["problem"])


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _finite(value: float | None):
    """JSON has no infinity: "inf" stands for it."""
    return "inf" if value is not None and math.isinf(value) else value


def _number(value) -> float | None:
    return math.inf if value == "inf" else value


class TopK:
    """The k records with the largest keys (ties: the earlier seen wins); mergeable."""

    def __init__(self, k: int) -> None:
        self.k, self._heap, self._count = k, [], 0

    def offer(self, key: tuple, record) -> None:
        if self.k <= 0:
            return
        self._count += 1
        item = (key, -self._count, record)
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, item)
        elif item[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, item)

    def would_take(self, key: tuple) -> bool:
        return self.k > 0 and (len(self._heap) < self.k or key > self._heap[0][0])

    def items(self) -> list[tuple[tuple, object]]:
        """(key, record), largest key first."""
        return [(key, record) for key, _, record in sorted(self._heap, key=lambda i: i[:2], reverse=True)]


@dataclass
class PartitionStats:
    """Everything one partition (or the merge of all of them) brings back to the driver."""

    rows: int = 0
    fields: dict[str, FieldStats] = field(default_factory=dict)
    worst: list = field(default_factory=list)  # [(key, record)], largest key first
    golden: list = field(default_factory=list)  # worst rows within the tolerance, same form
    sample: list = field(default_factory=list)  # [(random key, record)], smallest key first

    def to_json(self) -> dict:
        return {"rows": self.rows, "fields": {n: f.to_json() for n, f in self.fields.items()},
                "worst": [[list(k), r] for k, r in self.worst], "golden": [[list(k), r] for k, r in self.golden],
                "sample": [[k, r] for k, r in self.sample]}

    @classmethod
    def from_json(cls, data: dict) -> "PartitionStats":
        return cls(data["rows"], {n: FieldStats.from_json(f) for n, f in data["fields"].items()},
                   [(tuple(k), r) for k, r in data["worst"]], [(tuple(k), r) for k, r in data["golden"]],
                   [(k, r) for k, r in data["sample"]])


def merge(parts: list[PartitionStats], worst: int, golden: int, sample: int) -> PartitionStats:
    """All partitions' statistics as one, the kept rows cut back to their sizes."""
    total = PartitionStats()
    best, gold = TopK(worst), TopK(golden)
    samples: list = []
    for part in parts:
        total.rows += part.rows
        for name, stats in part.fields.items():
            total.fields.setdefault(name, FieldStats(flips=None)).merge(stats)
        for key, record in part.worst:
            best.offer(key, record)
        for key, record in part.golden:
            gold.offer(key, record)
        samples.extend(part.sample)
    total.worst, total.golden = best.items(), gold.items()
    total.sample = sorted(samples, key=lambda item: item[0])[:sample]
    return total
