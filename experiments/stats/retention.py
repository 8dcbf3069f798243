"""Retention: day-N retention over units observed for N days; Kaplan-Meier with log-log
intervals; log-rank test; Cox hazard ratio (Efron ties)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps
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
    """Cox model with a treatment indicator: hazard ratio treated / control (Efron ties).

    With one binary covariate the partial likelihood depends only on, per distinct event
    time, how many units of each arm are at risk and how many return then: the fit runs on
    those counts (Newton's method on Efron's log-likelihood), so a million units cost what
    their few hundred distinct times cost. The same estimate, standard error and Wald test
    as statsmodels' PHReg(ties="efron") fitted unit by unit. ValueError when the estimate
    runs off to infinity (e.g. every return in one arm)."""
    t = np.asarray(durations, dtype=float)
    e = np.asarray(events, dtype=float) > 0
    x = np.asarray(treated, dtype=float) > 0
    # No events, or only one arm present: the partial likelihood has no finite maximum.
    if not e.any() or x.all() or not x.any():
        return {"hazard_ratio": None, "ci": [None, None], "p_value": None, "ties": "efron"}
    times, index = np.unique(t, return_inverse=True)
    k = times.size
    units0 = np.bincount(index[~x], minlength=k)
    units1 = np.bincount(index[x], minlength=k)
    # At risk at a time: every unit whose time is at or after it.
    risk0, risk1 = units0[::-1].cumsum()[::-1], units1[::-1].cumsum()[::-1]
    d0 = np.bincount(index[e & ~x], minlength=k)
    d1 = np.bincount(index[e & x], minlength=k)
    d = d0 + d1
    at = np.flatnonzero(d)
    # Efron's sum runs over l = 0 .. d-1 at each event time: one entry per event.
    rep = np.repeat(at, d[at])
    frac = (np.arange(rep.size) - np.repeat(np.cumsum(d[at]) - d[at], d[at])) / d[rep]
    r0, r1, e0, e1 = risk0[rep], risk1[rep], d0[rep], d1[rep]
    events1 = float(d1.sum())

    def terms(beta: float) -> tuple[float, float, float]:
        w = math.exp(beta)
        a = (r1 - frac * e1) * w  # treated share of the (Efron-reduced) risk set
        b = (r0 - frac * e0) + a
        p = a / b
        return beta * events1 - float(np.log(b).sum()), events1 - float(p.sum()), float((p * (1 - p)).sum())

    beta = 0.0
    loglik, score, info = terms(beta)
    for _ in range(100):
        if info <= 0:
            break
        step = score / info
        new = terms(beta + step)
        while new[0] < loglik - 1e-12 and abs(step) > 1e-12:  # halve a step that overshoots
            step /= 2
            new = terms(beta + step)
        beta += step
        loglik, score, info = new
        if abs(step) < 1e-10:
            break
    if not (abs(beta) < 30 and info > 0 and abs(score) < 1e-6 * max(1.0, events1)):
        raise ValueError("the Cox fit did not converge, usually too few returns")
    se = 1 / math.sqrt(info)
    z = z_quantile(alpha)
    return {"hazard_ratio": json_float(math.exp(beta)),
            "ci": interval(math.exp(beta - z * se), math.exp(beta + z * se)),
            "p_value": json_float(2 * sps.norm.sf(abs(beta) / se)), "ties": "efron"}
