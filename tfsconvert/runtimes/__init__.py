"""One evaluator per artifact format, shared by the conversion parity check and the embedded server."""

from __future__ import annotations

import numpy as np


def per_row(fields: dict[str, np.ndarray], count: int) -> list[dict[str, np.ndarray]]:
    """A batch answer (field -> [N] array) as one dict of one-element arrays per row (compare.compare's unit)."""
    return [{name: np.asarray(values)[i:i + 1] for name, values in fields.items()} for i in range(count)]
