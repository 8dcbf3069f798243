"""Experiment statistics: pure functions over counts and arrays.

No Django here on purpose: this module is imported by the report services, by management
commands and by the tests alike, and must be checkable on its own against published numbers.

Every public function returns plain dicts of Python floats/ints/strings/lists, ready for
``json.dumps(..., allow_nan=False)``: anything undefined (a rate with no units, a lift over a
zero control, an interval with no variance) is ``None``, never NaN or infinity.

Methods, stated once so the report can quote them:
- SRM: Pearson chi-square of the observed arm sizes against the planned weights.
- Binary: Wilson interval per arm; difference with an unpooled Wald interval; relative lift
  with a delta-method interval on the log of the rate ratio; p-value from the pooled
  two-proportion z-test, or Fisher's exact test when any cell of the 2x2 table is below 5.
- Continuous: Welch's t-test (unequal variances, Welch-Satterthwaite df); relative lift with
  a delta-method interval on the ratio of means; optional pooled upper winsorization and CUPED.
- Several comparisons of a primary metric: Holm.
- Sequential mode: the normal-mixture mSPRT (always-valid p-value and confidence sequence).
- Retention: day-N retention over units observed for N days; Kaplan-Meier with log-log
  intervals; log-rank test; Cox hazard ratio (Efron ties).
- Power: statsmodels NormalIndPower (Cohen's h for proportions) and TTestIndPower.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight, survdiff
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import (
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

Interval = list[float | None]  # [lo, hi]; None where undefined

SRM_FAIL_P = 0.001
SRM_WARNING_P = 0.01
# Below this many successes or failures in any cell the normal approximation behind the
# z-test is poor, so the exact test takes over.
SMALL_COUNT = 5
# Sample size (both arms of a comparison together) at which the sequential interval is
# tightest; any value fixed before the data are seen keeps the guarantee.
DEFAULT_SEQUENTIAL_TUNING_N = 10_000
MAX_CURVE_POINTS = 200


def _num(x: float | None) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _interval(lo: float | None, hi: float | None) -> Interval:
    return [_num(lo), _num(hi)]


def _z(alpha: float) -> float:
    return float(sps.norm.ppf(1 - alpha / 2))


def format_p_value(p: float | None) -> str | None:
    """Display form of a p-value; 0.0 means it underflowed double precision, not that it is 0."""
    if p is None:
        return None
    if p == 0.0:
        return "< 1e-16"
    return f"{p:.3g}"


# --------------------------------------------------------------------------- SRM


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
        "p_value": _num(p),
        "status": status,
        "chi2": _num(chi2),
        "expected": [float(e) for e in expected],
    }


# --------------------------------------------------------------------------- sequential


def msprt_tau2(variance: float, n: float, tuning_n: float, alpha: float = 0.05) -> float:
    """Mixing variance tau^2 that makes the confidence sequence tightest at ``tuning_n`` units.

    ``variance * n`` is the per-unit variance of the estimate, so ``variance * n / tuning_n``
    is the variance expected at the tuning size V*. Minimising the half-width below at V*
    (Howard et al. 2021) gives tau^2 = V* * (2 log(1/alpha) + log(1 + 2 log(1/alpha))).
    The per-unit variance is estimated from the data, so the guarantee is asymptotic, as a
    z-test's is.
    """
    k = 2 * math.log(1 / alpha)
    return variance * n / tuning_n * (k + math.log(1 + k))


def sequential_interval(
    estimate: float, variance: float, *, tau2: float, alpha: float = 0.05
) -> dict:
    """Always-valid p-value and confidence sequence for an asymptotically normal estimate.

    Normal-mixture mSPRT (Johari et al., "Always valid inference"; Howard et al. 2021):
    with estimate d ~ N(theta, V) and a N(theta0, tau^2) mixing prior on theta, the mixture
    likelihood ratio against theta0 is

        Lambda(theta0) = sqrt(V / (V + tau^2)) * exp( tau^2 (d - theta0)^2 / (2 V (V + tau^2)) ).

    Lambda is a nonnegative martingale under theta0, so by Ville's inequality it exceeds
    1/alpha at *any* look with probability at most alpha. Hence
      p-value        p = min(1, 1 / Lambda(0)),
      confidence set {theta0 : Lambda(theta0) < 1/alpha}
                     = d +/- sqrt( V (V + tau^2) / tau^2 * (2 log(1/alpha) + log((V + tau^2) / V)) ).
    A caller tracking several looks may keep the running minimum of p and the running
    intersection of the intervals; both stay valid.
    """
    if variance is None or not math.isfinite(variance) or variance <= 0 or tau2 <= 0:
        return {"ci": [None, None], "p_value": None}
    v = variance
    log_lr = 0.5 * math.log(v / (v + tau2)) + tau2 * estimate**2 / (2 * v * (v + tau2))
    # exp(-log_lr) in log space: Lambda can overflow for decisive data.
    p = math.exp(-max(0.0, log_lr))
    half = math.sqrt(v * (v + tau2) / tau2 * (2 * math.log(1 / alpha) + math.log((v + tau2) / v)))
    return {"ci": _interval(estimate - half, estimate + half), "p_value": _num(p)}


def _sequential_for(estimate: float | None, variance: float | None, n: int, tuning_n: int,
                    alpha: float) -> dict:
    if estimate is None or variance is None or variance <= 0:
        return {"ci": [None, None], "p_value": None}
    tau2 = msprt_tau2(variance, n, tuning_n, alpha)
    return sequential_interval(estimate, variance, tau2=tau2, alpha=alpha)


# --------------------------------------------------------------------------- binary


def proportion_summary(successes: int, n: int, *, alpha: float = 0.05) -> dict:
    """Rate with a Wilson interval (good coverage even near 0 or 1, unlike Wald)."""
    if n <= 0:
        return {"n": int(n), "mean": None, "ci": [None, None]}
    lo, hi = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return {"n": int(n), "mean": successes / n, "ci": _interval(lo, hi)}


def _binary_p_value(x_t: int, n_t: int, x_c: int, n_c: int) -> tuple[float, str]:
    if min(x_t, n_t - x_t, x_c, n_c - x_c) < SMALL_COUNT:
        _, p = sps.fisher_exact([[x_t, n_t - x_t], [x_c, n_c - x_c]])
        return float(p), "fisher_exact"
    _, p = proportions_ztest(np.array([x_t, x_c]), np.array([n_t, n_c]))
    return float(p), "two_proportion_ztest"


def compare_proportions(
    x_t: int,
    n_t: int,
    x_c: int,
    n_c: int,
    *,
    alpha: float = 0.05,
    sequential_tuning_n: int | None = None,
) -> dict:
    """Treatment (x_t of n_t) against control (x_c of n_c).

    With ``sequential_tuning_n`` set, intervals and p-value are the always-valid mSPRT ones.
    """
    if n_t <= 0 or n_c <= 0:
        raise ValueError("both arms need at least one unit")
    p_t, p_c = x_t / n_t, x_c / n_c
    diff = p_t - p_c
    z = _z(alpha)
    notes: list[str] = []

    # Unpooled variance for the interval: under the alternative the arms differ, so the
    # pooled (null) variance would misstate the interval's width.
    var_diff = p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c

    # Relative lift through log(p_t / p_c): the log ratio is closer to normal than the ratio,
    # and exponentiating keeps the lower limit above -100%.
    lift = log_ratio = var_log = None
    if p_c == 0:
        notes.append("control rate is zero: relative lift undefined")
    else:
        lift = p_t / p_c - 1
        if p_t == 0:
            notes.append("treatment rate is zero: lift interval undefined on the log scale")
        else:
            log_ratio = math.log(p_t / p_c)
            var_log = (1 - p_t) / (n_t * p_t) + (1 - p_c) / (n_c * p_c)

    if sequential_tuning_n is None:
        p_value, test = _binary_p_value(x_t, n_t, x_c, n_c)
        diff_ci = [None, None]
        if var_diff > 0:  # both rates 0 or 1: no spread, no interval
            se = math.sqrt(var_diff)
            diff_ci = _interval(diff - z * se, diff + z * se)
        lift_ci = [None, None]
        if log_ratio is not None:
            se_log = math.sqrt(var_log)
            lift_ci = _interval(math.exp(log_ratio - z * se_log) - 1,
                                math.exp(log_ratio + z * se_log) - 1)
    else:
        test = "msprt_normal_mixture"
        n = n_t + n_c
        seq = _sequential_for(diff, var_diff, n, sequential_tuning_n, alpha)
        p_value, diff_ci = seq["p_value"], seq["ci"]
        lift_ci = [None, None]
        if log_ratio is not None:
            lo, hi = _sequential_for(log_ratio, var_log, n, sequential_tuning_n, alpha)["ci"]
            lift_ci = [_num(math.exp(lo) - 1) if lo is not None else None,
                       _num(math.exp(hi) - 1) if hi is not None else None]
        if min(x_t, n_t - x_t, x_c, n_c - x_c) < SMALL_COUNT:
            notes.append("small counts: the normal approximation behind the sequential test is rough")

    return {
        "diff": _num(diff),
        "diff_ci": diff_ci,
        "diff_ci_method": "wald_unpooled" if sequential_tuning_n is None else "msprt_normal_mixture",
        "lift": _num(lift),
        "lift_ci": lift_ci,
        "lift_ci_method": "delta_method_log_ratio",
        "p_value": _num(p_value),
        "test": test,
        "note": "; ".join(notes) or None,
    }


# --------------------------------------------------------------------------- continuous


@dataclass(frozen=True)
class Moments:
    """Sufficient statistics of one arm: count, mean, sample variance (ddof=1)."""

    n: int
    mean: float
    var: float

    @classmethod
    def from_array(cls, values: Sequence[float] | np.ndarray) -> Moments:
        x = np.asarray(values, dtype=float)
        var = float(x.var(ddof=1)) if x.size > 1 else float("nan")
        return cls(int(x.size), float(x.mean()) if x.size else float("nan"), var)

    @classmethod
    def from_sums(cls, n: int, total: float, total_sq: float) -> Moments:
        """From n, sum and sum of squares, as warehouses aggregate them."""
        if n <= 0:
            return cls(0, float("nan"), float("nan"))
        mean = total / n
        # Clamp: cancellation in sum_sq - sum^2/n can leave a tiny negative number.
        var = max(0.0, (total_sq - total * total / n) / (n - 1)) if n > 1 else float("nan")
        return cls(int(n), mean, var)


def mean_summary(m: Moments, *, alpha: float = 0.05) -> dict:
    """Arm mean with a t interval."""
    if m.n < 2:
        return {"n": m.n, "mean": _num(m.mean), "ci": [None, None]}
    half = sps.t.ppf(1 - alpha / 2, m.n - 1) * math.sqrt(m.var / m.n)
    return {"n": m.n, "mean": _num(m.mean), "ci": _interval(m.mean - half, m.mean + half)}


def compare_means(
    treatment: Moments,
    control: Moments,
    *,
    alpha: float = 0.05,
    sequential_tuning_n: int | None = None,
) -> dict:
    """Welch's t-test of treatment minus control, with absolute and relative intervals."""
    t, c = treatment, control
    diff = t.mean - c.mean
    lift = t.mean / c.mean - 1 if c.mean != 0 else None
    note = None if c.mean != 0 else "control mean is zero: relative lift undefined"
    result = {
        "diff": _num(diff), "diff_ci": [None, None], "diff_ci_method": "welch_t",
        "se": None, "df": None,
        "lift": _num(lift), "lift_ci": [None, None], "lift_ci_method": "delta_method_ratio",
        "p_value": None, "test": "welch_t", "note": note,
    }
    if t.n < 2 or c.n < 2:
        result["note"] = "fewer than 2 units in an arm: no variance estimate"
        return result
    vt, vc = t.var / t.n, c.var / c.n
    var_diff = vt + vc
    if var_diff == 0:
        result["note"] = "zero variance in both arms"
        return result
    se = math.sqrt(var_diff)
    # Welch-Satterthwaite degrees of freedom.
    df = var_diff**2 / (vt**2 / (t.n - 1) + vc**2 / (c.n - 1))
    # Delta method for r = mean_t / mean_c with independent arms:
    # Var(r) ~= vt / mean_c^2 + mean_t^2 vc / mean_c^4.
    var_lift = vt / c.mean**2 + t.mean**2 * vc / c.mean**4 if c.mean != 0 else None
    result.update(se=se, df=_num(df))

    if sequential_tuning_n is None:
        _, p = sps.ttest_ind_from_stats(t.mean, math.sqrt(t.var), t.n,
                                        c.mean, math.sqrt(c.var), c.n, equal_var=False)
        q = sps.t.ppf(1 - alpha / 2, df)
        result.update(p_value=_num(p), diff_ci=_interval(diff - q * se, diff + q * se))
        if var_lift is not None:
            z = _z(alpha)
            half = z * math.sqrt(var_lift)
            result["lift_ci"] = _interval(lift - half, lift + half)
    else:
        n = t.n + c.n
        seq = _sequential_for(diff, var_diff, n, sequential_tuning_n, alpha)
        result.update(p_value=seq["p_value"], diff_ci=seq["ci"], test="msprt_normal_mixture",
                      diff_ci_method="msprt_normal_mixture")
        if var_lift is not None:
            result["lift_ci"] = _sequential_for(lift, var_lift, n, sequential_tuning_n, alpha)["ci"]
    return result


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
    return adjusted, {"theta": _num(theta), "variance_reduction": _num(reduction)}


# --------------------------------------------------------------------------- multiple testing


def adjust_pvalues(pvals: Sequence[float | None], method: str = "holm") -> list[float | None]:
    """Family-wise adjustment (Holm by default); None entries stay None and are not counted."""
    idx = [i for i, p in enumerate(pvals) if p is not None]
    out: list[float | None] = [None] * len(pvals)
    if idx:
        adjusted = multipletests([pvals[i] for i in idx], method=method)[1]
        for i, p in zip(idx, adjusted):
            out[i] = _num(p)
    return out


# --------------------------------------------------------------------------- report level


def _metric(name: str, kind: str, primary: bool, arms: list[dict], comparisons: list[dict],
            alpha: float) -> dict:
    # Holm over this metric's comparisons only when it is primary: secondary metrics are
    # read as exploratory and keep their raw p-values.
    adjusted = adjust_pvalues([c["p_value"] for c in comparisons]) if primary else [None] * len(comparisons)
    for comp, p_adj in zip(comparisons, adjusted):
        comp["p_adjusted"] = p_adj
        p = p_adj if primary else comp["p_value"]
        comp["significant"] = bool(p is not None and p < alpha)
    return {"name": name, "kind": kind, "primary": primary, "arms": arms, "comparisons": comparisons}


def _comparison_row(arm: str, control: str, comp: dict) -> dict:
    keys = ("diff", "diff_ci", "lift", "lift_ci", "p_value", "test", "note")
    return {"arm": arm, "control": control, **{k: comp[k] for k in keys}}


def _check_control(arms: Mapping, control: str) -> None:
    if control not in arms:
        raise ValueError(f"control arm {control!r} not among arms {list(arms)}")


def analyze_binary(
    name: str,
    arms: Mapping[str, tuple[int, int]],
    control: str,
    *,
    primary: bool = False,
    alpha: float = 0.05,
    sequential: bool = False,
    sequential_tuning_n: int = DEFAULT_SEQUENTIAL_TUNING_N,
) -> dict:
    """A conversion metric: ``arms`` maps arm name -> (successes, units)."""
    _check_control(arms, control)
    x_c, n_c = arms[control]
    rows = [{"arm": arm, **proportion_summary(x, n, alpha=alpha)} for arm, (x, n) in arms.items()]
    comparisons = [
        _comparison_row(arm, control, compare_proportions(
            x, n, x_c, n_c, alpha=alpha,
            sequential_tuning_n=sequential_tuning_n if sequential else None))
        for arm, (x, n) in arms.items() if arm != control
    ]
    return _metric(name, "binary", primary, rows, comparisons, alpha)


def analyze_continuous(
    name: str,
    arms: Mapping[str, np.ndarray | Sequence[float] | Moments],
    control: str,
    *,
    primary: bool = False,
    alpha: float = 0.05,
    sequential: bool = False,
    sequential_tuning_n: int = DEFAULT_SEQUENTIAL_TUNING_N,
    covariates: Mapping[str, np.ndarray | Sequence[float]] | None = None,
    winsorize_percentile: float | None = None,
) -> dict:
    """A continuous metric: ``arms`` maps arm name -> per-unit values or ``Moments``.

    Winsorization and CUPED need per-unit values; winsorization is applied first (to the
    metric only), then CUPED with ``covariates`` (arm -> pre-period values, same order).
    """
    _check_control(arms, control)
    names = list(arms)
    extra: dict = {}
    if winsorize_percentile is not None or covariates is not None:
        if any(isinstance(arms[a], Moments) for a in names):
            raise ValueError("winsorization and CUPED need per-unit values, not Moments")
        values = [np.asarray(arms[a], dtype=float) for a in names]
        if winsorize_percentile is not None:
            values, cap = winsorize_upper(values, winsorize_percentile)
            extra["winsorize"] = {"percentile": float(winsorize_percentile), "cap": cap}
        if covariates is not None:
            values, extra["cuped"] = cuped_adjust(values, [covariates[a] for a in names])
        moments = dict(zip(names, (Moments.from_array(v) for v in values)))
    else:
        moments = {a: v if isinstance(v, Moments) else Moments.from_array(v) for a, v in arms.items()}

    rows = [{"arm": a, **mean_summary(moments[a], alpha=alpha)} for a in names]
    comparisons = [
        _comparison_row(a, control, compare_means(
            moments[a], moments[control], alpha=alpha,
            sequential_tuning_n=sequential_tuning_n if sequential else None))
        for a in names if a != control
    ]
    return {**_metric(name, "continuous", primary, rows, comparisons, alpha), **extra}


# --------------------------------------------------------------------------- retention


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
    z = _z(alpha)
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
        "lo": [_num(v) for v in lo[keep]],
        "hi": [_num(v) for v in hi[keep]],
        "n": int(len(durations)),
        "events": int(np.sum(events)),
    }


def logrank_test(durations: Sequence[float], events: Sequence[int], groups: Sequence) -> dict:
    """Log-rank test of equal survival curves across the groups."""
    chi2, p = survdiff(np.asarray(durations, dtype=float), np.asarray(events, dtype=float),
                       np.asarray(groups))
    p = _num(p)
    return {"chi2": _num(chi2), "p_value": p, "p_value_display": format_p_value(p),
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
    return {"hazard_ratio": _num(math.exp(res.params[0])), "ci": _interval(lo, hi),
            "p_value": _num(res.pvalues[0]), "ties": "efron"}


# --------------------------------------------------------------------------- power


def _treatment_rate(baseline: float, mde: float, relative: bool) -> float:
    p2 = baseline * (1 + mde) if relative else baseline + mde
    if not 0 < baseline < 1 or not 0 < p2 < 1 or p2 == baseline:
        raise ValueError("baseline and baseline + effect must be distinct rates inside (0, 1)")
    return p2


def sample_size_binary(
    baseline: float,
    mde: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> dict:
    """Units per arm to detect ``mde`` (absolute, or relative to ``baseline``), two-sided.

    Uses Cohen's h (arcsine transform), which closely matches the textbook unpooled formula
    n = (z_{1-a/2} + z_{power})^2 (p1 q1 + p2 q2) / d^2.
    """
    p2 = _treatment_rate(baseline, mde, relative)
    h = abs(float(proportion_effectsize(p2, baseline)))
    n_c = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio)
    return {"n_control": math.ceil(n_c), "n_treatment": math.ceil(n_c * ratio),
            "treatment_rate": p2, "effect_size": h}


def sample_size_continuous(
    sd: float, mde: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> dict:
    """Units per arm to detect an absolute difference ``mde`` in means with a t-test."""
    d = abs(mde) / sd
    n_c = TTestIndPower().solve_power(effect_size=d, alpha=alpha, power=power, ratio=ratio)
    return {"n_control": math.ceil(n_c), "n_treatment": math.ceil(n_c * ratio), "effect_size": d}


def detectable_effect_binary(
    baseline: float, n_control: int, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> dict:
    """Smallest upward change of the rate detectable with ``n_control`` (and ratio) units."""
    h = NormalIndPower().solve_power(nobs1=n_control, alpha=alpha, power=power, ratio=ratio)
    # Invert h = 2 asin(sqrt(p2)) - 2 asin(sqrt(p1)).
    angle = math.asin(math.sqrt(baseline)) + h / 2
    if angle >= math.pi / 2:
        return {"absolute": None, "relative": None, "effect_size": float(h),
                "note": "no rate below 1 is detectable at this size"}
    p2 = math.sin(angle) ** 2
    return {"absolute": p2 - baseline, "relative": p2 / baseline - 1, "effect_size": float(h)}


def detectable_effect_continuous(
    sd: float, n_control: int, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> dict:
    """Smallest absolute difference in means detectable with ``n_control`` (and ratio) units."""
    d = TTestIndPower().solve_power(nobs1=n_control, alpha=alpha, power=power, ratio=ratio)
    return {"absolute": float(d) * sd, "effect_size": float(d)}


def achieved_power_binary(
    baseline: float,
    mde: float,
    n_control: int,
    n_treatment: int,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    target: float = 0.8,
) -> dict:
    """Power the observed arm sizes had for an effect of ``mde``; flags underpowered tests."""
    h = abs(float(proportion_effectsize(_treatment_rate(baseline, mde, relative), baseline)))
    pw = float(NormalIndPower().power(h, n_control, alpha, ratio=n_treatment / n_control))
    return {"power": pw, "underpowered": pw < target}


def achieved_power_continuous(
    sd: float, mde: float, n_control: int, n_treatment: int, *, alpha: float = 0.05,
    target: float = 0.8,
) -> dict:
    """Power the observed arm sizes had for a difference in means of ``mde``."""
    pw = float(TTestIndPower().power(abs(mde) / sd, n_control, alpha, ratio=n_treatment / n_control))
    return {"power": pw, "underpowered": pw < target}
