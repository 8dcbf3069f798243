"""Retention: day-N retention over units observed for N days; Kaplan-Meier with log-log
intervals; log-rank test; Cox hazard ratio (Efron ties).

Every function takes optional frequency ``weights``: row i stands for weights[i] identical
units (whole numbers). The report reads survival data grouped by arm and hour, so a
million units arrive as a few thousand rows; each statistic is computed from counts per
distinct time, which is exactly what it computes unit by unit (the tests check the grouped
result against the same units expanded, through statsmodels)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from core import formatting

from .common import interval, json_float, z_quantile
from .proportions import proportion_summary

MAX_CURVE_POINTS = 200


def _weights(weights: Sequence[float] | None, size: int) -> np.ndarray:
    return np.ones(size) if weights is None else np.asarray(weights, dtype=float)


def day_n_retention(
    durations: Sequence[float],
    events: Sequence[int],
    observed_days: Sequence[float],
    n: float,
    *,
    alpha: float = 0.05,
    weights: Sequence[float] | None = None,
) -> dict:
    """Share of units still active after day ``n`` (churn time > n, as the KM S(n)).

    Only units observed for at least ``n`` days count: recent units could only have churned
    early, so including them biases retention down. Among those, a unit censored before day
    ``n`` (lost to follow-up) has unknown status and is left out too.
    """
    t = np.asarray(durations, dtype=float)
    e = np.asarray(events).astype(bool)
    obs = np.asarray(observed_days, dtype=float)
    w = _weights(weights, t.size)
    churned = e & (t <= n)
    retained = (t > n) | (~e & (t >= n))  # censored at day n: known alive at n, as KM has it
    eligible = (obs >= n) & (churned | retained)
    k, m = int(round(w[retained & eligible].sum())), int(round(w[eligible].sum()))
    summary = proportion_summary(k, m, alpha=alpha)
    return {"day": float(n), "n": m, "retained": k, "rate": summary["mean"], "ci": summary["ci"],
            "excluded": int(round(w.sum())) - m}


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
    weights: Sequence[float] | None = None,
) -> dict:
    """Kaplan-Meier curve at the event times with pointwise log-log intervals.

    Per distinct event time t: n units at risk (time >= t) and d returns at t;
    S(t) = prod (1 - d/n) and Greenwood's variance S(t)^2 sum d / (n (n - d)), as
    statsmodels' SurvfuncRight computes them unit by unit (its own frequency weights switch
    to Tsiatis' variance, so it is not used for grouped rows).

    Log-log (as R's survival conf.type="log-log"): the interval for log(-log S) keeps the
    limits inside [0, 1], which the plain Greenwood interval does not in the tails.
    """
    t = np.asarray(durations, dtype=float)
    w = _weights(weights, t.size)
    died = w * (np.asarray(events, dtype=float) > 0)
    times, index = np.unique(t, return_inverse=True)
    at_risk = np.bincount(index, weights=w, minlength=times.size)[::-1].cumsum()[::-1]
    deaths = np.bincount(index, weights=died, minlength=times.size)
    keep_times = deaths > 0
    times, n, d = times[keep_times], at_risk[keep_times], deaths[keep_times]
    s = np.cumprod(1 - d / n) if n.size else np.array([], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood = np.cumsum(np.where(n > d, d / (n * (n - d)), np.nan))
    se = s * np.sqrt(greenwood)
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
        "time": [float(v) for v in times[keep]],
        "survival": [float(v) for v in s[keep]],
        "lo": [json_float(v) for v in lo[keep]],
        "hi": [json_float(v) for v in hi[keep]],
        "n": int(round(w.sum())),
        "events": int(round(died.sum())),
    }


def logrank_test(durations: Sequence[float], events: Sequence[int], groups: Sequence, *,
                 weights: Sequence[float] | None = None) -> dict:
    """Log-rank test of equal survival curves across the k groups (chi-square, k - 1 df).

    Per distinct time with more than one unit at risk: each group's returns minus the
    expected n_g d / n, and their covariance d (n - d) / (n - 1) r_g (delta_gh - r_h) with
    r = n_g / n; chi2 = (O - E)' V^-1 (O - E) over all groups but the first. The same
    statistic as statsmodels' survdiff; the p-value from the chi-square survival function
    (survdiff's 1 - cdf rounds anything below 1e-16 to 0). LinAlgError when V is singular
    (no variance: every unit returned at one instant)."""
    t = np.asarray(durations, dtype=float)
    w = _weights(weights, t.size)
    died = w * (np.asarray(events, dtype=float) > 0)
    labels, group = np.unique(np.asarray(groups), return_inverse=True)
    times, index = np.unique(t, return_inverse=True)
    k, m = labels.size, times.size
    cell = group * m + index
    units = np.bincount(cell, weights=w, minlength=k * m).reshape(k, m)
    at_risk = units[:, ::-1].cumsum(axis=1)[:, ::-1]
    returned = np.bincount(cell, weights=died, minlength=k * m).reshape(k, m)
    n, d = at_risk.sum(axis=0), returned.sum(axis=0)
    use = n > 1
    at_risk, returned, n, d = at_risk[:, use], returned[:, use], n[use], d[use]
    share = at_risk / n
    observed_minus_expected = (returned - share * d)[1:].sum(axis=1)
    scale = d * (n - d) / (n - 1)
    r = share[1:]
    variance = np.diag((r * scale).sum(axis=1)) - (r * scale) @ r.T
    chi2 = float(observed_minus_expected @ np.linalg.solve(variance, observed_minus_expected))
    p = json_float(sps.chi2.sf(chi2, k - 1))
    return {"chi2": json_float(chi2), "p_value": p, "p_value_display": formatting.p_value(p),
            "test": "logrank"}


def hazard_ratio(
    durations: Sequence[float],
    events: Sequence[int],
    treated: Sequence[int],
    *,
    alpha: float = 0.05,
    weights: Sequence[float] | None = None,
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
    w = _weights(weights, t.size)
    # No events, or only one arm present: the partial likelihood has no finite maximum.
    if not e.any() or x.all() or not x.any():
        return {"hazard_ratio": None, "ci": [None, None], "p_value": None, "ties": "efron"}
    times, index = np.unique(t, return_inverse=True)
    k = times.size
    units0 = np.bincount(index[~x], weights=w[~x], minlength=k)
    units1 = np.bincount(index[x], weights=w[x], minlength=k)
    # At risk at a time: every unit whose time is at or after it.
    risk0, risk1 = units0[::-1].cumsum()[::-1], units1[::-1].cumsum()[::-1]
    d0 = np.bincount(index[e & ~x], weights=w[e & ~x], minlength=k)
    d1 = np.bincount(index[e & x], weights=w[e & x], minlength=k)
    d = np.rint(d0 + d1).astype(np.int64)
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
