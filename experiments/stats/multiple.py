"""Several comparisons of a primary metric: Holm."""

from __future__ import annotations

from collections.abc import Sequence

from statsmodels.stats.multitest import multipletests

from .common import json_float


def adjust_pvalues(pvals: Sequence[float | None], method: str = "holm") -> list[float | None]:
    """Family-wise adjustment (Holm by default); None entries stay None and are not counted."""
    idx = [i for i, p in enumerate(pvals) if p is not None]
    out: list[float | None] = [None] * len(pvals)
    if idx:
        adjusted = multipletests([pvals[i] for i in idx], method=method)[1]
        for i, p in zip(idx, adjusted):
            out[i] = json_float(p)
    return out
