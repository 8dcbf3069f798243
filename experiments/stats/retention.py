"""Retention: day-N retention over units observed for N days; Kaplan-Meier with log-log
intervals; log-rank test; Cox hazard ratio (Efron ties)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from core import formatting

from .common import interval, json_float, z_quantile
from .proportions import proportion_summary

MAX_CURVE_POINTS = 200


def day_n_retention(
    durations: Sequence[float],
    events: Sequence[int],
    observed_days: Sequence[float],
    n: float,
    *,
    alpha: float = 0.05,
) -> dict:
    """Share of units still active after day ``n`` (churn time > n, as the KM S(n)).

    Only units observed for at least ``n`` days count: recent units could only have churned
    early, so including them biases retention down. Among those, a unit censored before day
    ``n`` (lost to follow-up) has unknown status and is left out too.
    """
    t = np.asarray(durations, dtype=float)
    e = np.asarray(events).astype(bool)
    obs = np.asarray(observed_days, dtype=float)
    churned = e & (t <= n)
    retained = (t > n) | (~e & (t >= n))  # censored at day n: known alive at n, as KM has it
    eligible = (obs >= n) & (churned | retained)
    k, m = int(np.sum(retained & eligible)), int(np.sum(eligible))
    summary = proportion_summary(k, m, alpha=alpha)
    return {"day": float(n), "n": m, "retained": k, "rate": summary["mean"], "ci": summary["ci"],
            "excluded": int(t.size - m)}


def _downsample(size: int, max_points: int) -> np.ndarray:
    if size <= max_points:
        return np.arange(size)
    return np.unique(np.linspace(0, size - 1, max_points).round().astype(int))


def kaplan_meier(
    durations: Sequence[float],
    events: Sequence[int],
    *,
    alpha: float = 0.05,
    max_points: int = MAX_CURVE_POINTS,
) -> dict:
    """Kaplan-Meier curve at the event times with pointwise log-log intervals.

    Log-log (as R's survival conf.type="log-log"): the interval for log(-log S) keeps the
    limits inside [0, 1], which the plain Greenwood interval does not in the tails.
    """
    sf = SurvfuncRight(np.asarray(durations, dtype=float), np.asarray(events, dtype=float))
    s, se = sf.surv_prob, sf.surv_prob_se
    z = z_quantile(alpha)
    lo = np.full(s.shape, np.nan)
    hi = np.full(s.shape, np.nan)
    inside = (s > 0) & (s < 1)
    # se of log(-log S) by the delta method from Greenwood's se of S.
    sd = se[inside] / (s[inside] * np.abs(np.log(s[inside])))
    lo[inside] = s[inside] ** np.exp(z * sd)
    hi[inside] = s[inside] ** np.exp(-z * sd)
    lo[s == 1], hi[s == 1] = 1.0, 1.0
    keep = _downsample(s.size, max_points)
    return {
        "time": [float(v) for v in sf.surv_times[keep]],
        "survival": [float(v) for v in s[keep]],
        "lo": [json_float(v) for v in lo[keep]],
        "hi": [json_float(v) for v in hi[keep]],
        "n": int(len(durations)),
        "events": int(np.sum(events)),
    }


def logrank_test(durations: Sequence[float], events: Sequence[int], groups: Sequence) -> dict:
    """Log-rank test of equal survival curves across the groups."""
    chi2, p = survdiff(np.asarray(durations, dtype=float), np.asarray(events, dtype=float),
                       np.asarray(groups))
    p = json_float(p)
    return {"chi2": json_float(chi2), "p_value": p, "p_value_display": formatting.p_value(p),
            "test": "logrank"}


def hazard_ratio(
    durations: Sequence[float],
    events: Sequence[int],
    treated: Sequence[int],
    *,
    alpha: float = 0.05,
) -> dict:
    """Cox model with a treatment indicator: hazard ratio treated / control (Efron ties)."""
    e = np.asarray(events, dtype=float)
    x = np.asarray(treated, dtype=float)
    # No events, or only one arm present: the partial likelihood has no finite maximum.
    if e.sum() == 0 or np.unique(x).size < 2:
        return {"hazard_ratio": None, "ci": [None, None], "p_value": None, "ties": "efron"}
    exog = x.reshape(-1, 1)
    res = PHReg(np.asarray(durations, dtype=float), exog, status=e, ties="efron").fit()
    lo, hi = np.exp(res.conf_int(alpha=alpha)[0])
    return {"hazard_ratio": json_float(math.exp(res.params[0])), "ci": interval(lo, hi),
            "p_value": json_float(res.pvalues[0]), "ties": "efron"}
