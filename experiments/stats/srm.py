"""Sample ratio mismatch: Pearson chi-square of the observed arm sizes against the planned weights."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from .common import json_float

SRM_FAIL_P = 0.001
SRM_WARNING_P = 0.01


def srm_check(
    observed: Sequence[int],
    weights: Sequence[float],
    *,
    fail_below: float = SRM_FAIL_P,
    warn_below: float = SRM_WARNING_P,
) -> dict:
    """Sample ratio mismatch: do the arm sizes fit the planned split?"""
    obs = np.asarray(observed, dtype=float)
    w = np.asarray(weights, dtype=float)
    if obs.shape != w.shape or obs.size < 2:
        raise ValueError("observed and weights need the same length, at least 2 arms")
    if np.any(w <= 0):
        raise ValueError("weights must be positive")
    total = obs.sum()
    expected = w / w.sum() * total
    if total == 0:
        return {"p_value": None, "status": "ok", "chi2": None, "expected": expected.tolist()}
    chi2, p = sps.chisquare(obs, f_exp=expected)
    if p < fail_below:
        status = "fail"
    elif p < warn_below:
        status = "warning"
    else:
        status = "ok"
    return {
        "p_value": json_float(p),
        "status": status,
        "chi2": json_float(chi2),
        "expected": [float(e) for e in expected],
    }
