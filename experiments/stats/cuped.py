"""Variance reduction on per-unit values: pooled upper winsorization and CUPED."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .common import json_float


def winsorize_upper(arrays: Sequence[np.ndarray], percentile: float) -> tuple[list[np.ndarray], float]:
    """Cap every arm at one upper percentile of the pooled data.

    Pooled so that all arms share one cap: a per-arm cap would itself differ by arm and
    bias the comparison.
    """
    pooled = np.concatenate([np.asarray(a, dtype=float) for a in arrays])
    cap = float(np.percentile(pooled, percentile))
    return [np.minimum(np.asarray(a, dtype=float), cap) for a in arrays], cap


def cuped_adjust(
    values: Sequence[np.ndarray], covariates: Sequence[np.ndarray]
) -> tuple[list[np.ndarray], dict]:
    """CUPED (Deng et al. 2013): y - theta (x - mean(x)) with one theta for all arms.

    theta comes from within-arm (pooled) covariance so a treatment effect on y cannot leak
    into it; x is centred at its grand mean so arm means keep their original scale.
    Returns the adjusted arrays and {"theta", "variance_reduction"} where the reduction is
    1 - pooled within-arm variance after / before (about the squared correlation).
    """
    ys = [np.asarray(y, dtype=float) for y in values]
    xs = [np.asarray(x, dtype=float) for x in covariates]
    if any(len(y) != len(x) for y, x in zip(ys, xs)):
        raise ValueError("each arm needs one covariate value per unit")
    cxy = sum(float(np.sum((x - x.mean()) * (y - y.mean()))) for y, x in zip(ys, xs))
    cxx = sum(float(np.sum((x - x.mean()) ** 2)) for x in xs)
    theta = cxy / cxx if cxx > 0 else 0.0
    x_bar = float(np.concatenate(xs).mean())
    adjusted = [y - theta * (x - x_bar) for y, x in zip(ys, xs)]

    def within_ss(arrs: list[np.ndarray]) -> float:
        return sum(float(np.sum((a - a.mean()) ** 2)) for a in arrs)

    before = within_ss(ys)
    reduction = 1 - within_ss(adjusted) / before if before > 0 else None
    return adjusted, {"theta": json_float(theta), "variance_reduction": json_float(reduction)}
