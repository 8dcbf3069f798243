"""Continuous metrics: Welch's t-test (unequal variances, Welch-Satterthwaite df); relative
lift with a delta-method interval on the ratio of means; optional pooled upper winsorization
and CUPED (cuped.py) on per-unit values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from .bayes import GaussianPrior, bayes_compare
from .common import interval, json_float, z_quantile
from .cuped import cuped_adjust, winsorize_upper
from .metrics import check_control, comparison_row, metric_result
from .sequential import DEFAULT_SEQUENTIAL_TUNING_N, sequential_update


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
    def from_aggregates(cls, n: float | None, mean: float | None, var: float | None) -> Moments:
        """From a count, mean and sample variance as SQL's COUNT, AVG and VAR_SAMP give them:
        VAR_SAMP is computed stably (PostgreSQL's Youngs-Cramer), unlike sum and sum of squares."""
        n = int(n or 0)
        if n <= 0:
            return cls(0, float("nan"), float("nan"))
        return cls(n, float(mean), float(var) if n > 1 and var is not None else float("nan"))

    def with_zeros(self, n: int) -> Moments:
        """These moments merged with ``n - self.n`` units whose value is 0 (customer units with
        no order or event in the window), by Chan's pairwise update: no sums of squares."""
        zeros = n - self.n
        if zeros <= 0 or self.n == 0:
            return self if zeros <= 0 else Moments(n, 0.0, 0.0 if n > 1 else float("nan"))
        m2 = (self.var * (self.n - 1) if self.n > 1 else 0.0) + self.mean**2 * self.n * zeros / n
        return Moments(n, self.mean * self.n / n, m2 / (n - 1) if n > 1 else float("nan"))

    @classmethod
    def from_sums(cls, n: int, total: float, total_sq: float) -> Moments:
        """From n, sum and sum of squares, as published fixtures give them. Cancels
        catastrophically when the mean is large against the spread: reports use from_aggregates."""
        if n <= 0:
            return cls(0, float("nan"), float("nan"))
        mean = total / n
        # Clamp: cancellation in sum_sq - sum^2/n can leave a tiny negative number.
        var = max(0.0, (total_sq - total * total / n) / (n - 1)) if n > 1 else float("nan")
        return cls(int(n), mean, var)


def mean_summary(m: Moments, *, alpha: float = 0.05) -> dict:
    """Arm mean with a t interval."""
    if m.n < 2:
        return {"n": m.n, "mean": json_float(m.mean), "ci": [None, None]}
    half = sps.t.ppf(1 - alpha / 2, m.n - 1) * math.sqrt(m.var / m.n)
    return {"n": m.n, "mean": json_float(m.mean), "ci": interval(m.mean - half, m.mean + half)}


def compare_means(
    treatment: Moments,
    control: Moments,
    *,
    alpha: float = 0.05,
    sequential_tuning_n: int | None = None,
    prior: GaussianPrior = GaussianPrior(),
) -> dict:
    """Welch's t-test of treatment minus control, with absolute and relative intervals, and
    the Bayesian read (stats.bayes) beside it."""
    t, c = treatment, control
    diff = t.mean - c.mean
    lift = t.mean / c.mean - 1 if c.mean != 0 else None
    note = None if c.mean != 0 else "control mean is zero: no relative lift to compute"
    result = {
        "diff": json_float(diff), "diff_ci": [None, None], "diff_ci_method": "welch_t",
        "se": None, "df": None,
        "lift": json_float(lift), "lift_ci": [None, None], "lift_ci_method": "delta_method_ratio",
        "p_value": None, "test": "welch_t", "note": note, "testable": True,
        **bayes_compare(math.nan, math.nan, math.nan, math.nan),
    }
    if t.n < 2 or c.n < 2:
        result.update(note="fewer than 2 units in an arm: no variance estimate", testable=False)
        return result
    vt, vc = t.var / t.n, c.var / c.n
    var_diff = vt + vc
    if var_diff == 0:
        result.update(note="cannot be tested: no variance (every unit has the same value in both arms)",
                      testable=False)
        return result
    se = math.sqrt(var_diff)
    result.update(bayes_compare(t.mean, vt, c.mean, vc, prior=prior, alpha=alpha))
    # Welch-Satterthwaite degrees of freedom.
    df = var_diff**2 / (vt**2 / (t.n - 1) + vc**2 / (c.n - 1))
    # Delta method for r = mean_t / mean_c with independent arms:
    # Var(r) ~= vt / mean_c^2 + mean_t^2 vc / mean_c^4.
    var_lift = vt / c.mean**2 + t.mean**2 * vc / c.mean**4 if c.mean != 0 else None
    if var_lift is not None and (t.var == 0 or c.var == 0):
        # One arm constant (all zeros, say): the delta method would give a zero-width or
        # one-sided interval for the ratio, a certainty the data cannot give.
        var_lift = None
        result["note"] = "; ".join(filter(None, [note, "an arm has no spread: no lift interval"]))
    result.update(se=se, df=json_float(df))

    if sequential_tuning_n is None:
        _, p = sps.ttest_ind_from_stats(t.mean, math.sqrt(t.var), t.n,
                                        c.mean, math.sqrt(c.var), c.n, equal_var=False)
        q = sps.t.ppf(1 - alpha / 2, df)
        result.update(p_value=json_float(p), diff_ci=interval(diff - q * se, diff + q * se))
        if var_lift is not None:
            z = z_quantile(alpha)
            half = z * math.sqrt(var_lift)
            result["lift_ci"] = interval(lift - half, lift + half)
    else:
        sequential_update(result, diff, var_diff, lift, var_lift, t.n + c.n, sequential_tuning_n, alpha)
    return result


def analyze_means(
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
    prior: GaussianPrior = GaussianPrior(),
) -> dict:
    """A continuous metric: ``arms`` maps arm name -> per-unit values or ``Moments``.

    Winsorization and CUPED need per-unit values; winsorization is applied first (to the
    metric only), then CUPED with ``covariates`` (arm -> pre-period values, same order).
    """
    check_control(arms, control)
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
        if "cuped" in extra:
            # What power and planning should use: the spread left after the adjustment.
            extra["cuped"]["control_sd"] = json_float(math.sqrt(moments[control].var))
    else:
        moments = {a: v if isinstance(v, Moments) else Moments.from_array(v) for a, v in arms.items()}

    rows = [{"arm": a, **mean_summary(moments[a], alpha=alpha)} for a in names]
    comparisons = [
        comparison_row(a, control, compare_means(
            moments[a], moments[control], alpha=alpha,
            sequential_tuning_n=sequential_tuning_n if sequential else None, prior=prior))
        for a in names if a != control
    ]
    return {**metric_result(name, primary, rows, comparisons, alpha), **extra}
