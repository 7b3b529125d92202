"""Parity of a tabular artifact with its source, row by row: per output the largest errors and the
rows outside the tolerance, for a classifier the label flips, and the rows that differ most (they
become golden requests when they are still within the tolerance).

A row where the artifact takes another branch of a tree than the source flips its label or moves
its probabilities (a regressor's prediction): any such row fails the check unless `--allow-flips
RATE` accepts up to RATE of the rows per output.
"""

from __future__ import annotations

from dataclasses import dataclass

from tfsconvert.compare import OutputDiff, compare, merge
from tfsconvert.convert.result import refuse_differences
from tfsconvert.convert.sklearn_source import LABEL
from tfsconvert.errors import InputError

WORST = 8  # rows with the largest differences that become golden requests


@dataclass
class TabularDiff(OutputDiff):
    """OutputDiff over all rows, with the rows outside the tolerance and (label) the flips."""

    rows: int = 0
    rows_over: int = 0  # rows whose value is outside atol + rtol*|expected| (label: differs)
    flips: int | None = None  # label only: rows whose label differs
    flip_rate: float | None = None


@dataclass
class Parity:
    outputs: list[TabularDiff]
    worst: list[int]  # rows within tolerance, largest difference first (exact matches left out)
    differing: set[int]  # rows with an output outside the tolerance (accepted by --allow-flips)


def check_allow_flips(rate: float | None) -> float | None:
    if rate is not None and not 0.0 <= rate <= 1.0:
        raise InputError("bad-option", f"--allow-flips {rate:g}: a rate is between 0 and 1",
                         "e.g. --allow-flips 0.001 accepts one flipped label per 1,000 rows")
    return rate


def compare_rows(expected: list[dict], actual: list[dict], atol: float, rtol: float,
                 allow_flips: float | None = None) -> Parity:
    """Compare every row; nothing is raised (see `check`). An output is ok when no row has a missing
    output or a wrong dtype/shape and at most `allow_flips` (default 0) of the rows differ."""
    per_row = [{d.alias: d for d in compare(e, a, atol, rtol)} for e, a in zip(expected, actual)]
    count = len(per_row)
    allowed = (allow_flips or 0.0) * count
    flipped = {i for i, row in enumerate(per_row) if LABEL in row and _differs(row[LABEL])}
    outputs = []
    for merged in merge([list(row.values()) for row in per_row]):
        alias = merged.alias
        over = [i for i, row in enumerate(per_row) if alias in row and not row[alias].ok]
        broken = any(alias in row and _structural(row[alias]) for row in per_row)
        flips = len(flipped) if alias == LABEL else None
        outputs.append(TabularDiff(**{**merged.__dict__, "ok": not broken and len(over) <= allowed}, rows=count,
                                   rows_over=len(over), flips=flips,
                                   flip_rate=None if flips is None else flips / count))
    # Golden candidates: rows the artifact reproduces (an accepted flip would fail `validate`).
    differing = {i for i, row in enumerate(per_row) if not all(d.ok for d in row.values())}
    scores = {i: _score(row) for i, row in enumerate(per_row) if i not in differing}
    worst = sorted((i for i, s in scores.items() if s > 0), key=lambda i: (-scores[i], i))[:WORST]
    return Parity(outputs, worst, differing)


def _differs(diff: OutputDiff) -> bool:
    return not diff.ok and not _structural(diff)


def _structural(diff: OutputDiff) -> bool:
    """A missing or unexpected output, or a wrong dtype/shape (not a value that differs)."""
    problem = diff.problem or ""
    return problem.endswith(" output") or problem.startswith(("dtype ", "shape "))


def _score(row: dict) -> float:
    return max((d.max_abs for d in row.values() if d.max_abs is not None and d.alias != LABEL), default=0.0)


def check(expected: list[dict], actual: list[dict], atol: float, rtol: float, allow_flips: float | None, *,
          what: str, hint: str) -> Parity:
    """`compare_rows`; CheckFailed (exit 1) naming every output that differs."""
    parity = compare_rows(expected, actual, atol, rtol, allow_flips)
    refuse_differences([describe(d) for d in parity.outputs if not d.ok], f"{len(expected)} rows", what=what,
                       hint=hint)
    return parity


def describe(diff: TabularDiff) -> str:
    """`label: 3 of 1024 rows flipped (0.29%)` / `probability(a): 5 of 1024 rows outside ..., max abs ...`."""
    if diff.flips is not None and diff.flips:
        return f"{diff.alias}: {diff.flips} of {diff.rows} rows flipped ({diff.flip_rate:.2%})"
    if diff.max_abs is None and diff.problem:
        return f"{diff.alias}: {diff.problem}"
    figures = f"max abs {diff.max_abs:.3g}" + ("" if diff.max_rel is None else f", max rel {diff.max_rel:.3g}")
    return (f"{diff.alias}: {diff.rows_over} of {diff.rows} rows outside atol {diff.atol:g} + rtol {diff.rtol:g}"
            f"*|expected|, {figures}")
