"""Ratio metrics (revenue per order, orders per visitor, revenue per visit): the ratio of two
per-unit sums, mean(X) / mean(Y) over the units of an arm, with the delta-method variance
over units (the unit, not the order or visit, is what was randomised), as GrowthBook does.

Var(mean_x / mean_y) ~= (var_x / my² - 2 mx cov_xy / my³ + mx² var_y / my⁴) / n.
The comparison is a z-test on the difference of the arms' ratios; the lift gets the same
delta method over the two independent arms; the Bayesian read comes from stats.bayes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from .bayes import GaussianPrior, bayes_compare
from .common import interval, json_float, z_quantile
from .metrics import check_control, comparison_row, metric_result
from .sequential import DEFAULT_SEQUENTIAL_TUNING_N, sequential_update


@dataclass(frozen=True)
class RatioMoments:
    """n units; means of numerator and denominator; their sample variances and covariance."""

    n: int
    mean_x: float
    mean_y: float
    var_x: float
    var_y: float
    cov: float

    @classmethod
    def from_aggregates(cls, n, mean_x, mean_y, var_x, var_y, cov) -> RatioMoments:
        n = int(n or 0)
        nan = float("nan")
        if n <= 0:
            return cls(0, nan, nan, nan, nan, nan)
        f = (lambda v: float(v) if v is not None and n > 1 else nan)
        return cls(n, float(mean_x), float(mean_y), f(var_x), f(var_y), f(cov))

    def with_zeros(self, n: int) -> RatioMoments:
        """Merged with n - self.n units whose numerator and denominator are 0 (Chan's update)."""
        zeros = n - self.n
        if zeros <= 0:
            return self
        if self.n == 0:
            return RatioMoments(n, 0.0, 0.0, 0.0, 0.0, 0.0)
        k = self.n * zeros / n
        keep = self.n - 1 if self.n > 1 else 0

        def co(c: float, a: float, b: float) -> float:
            return ((c * keep if keep else 0.0) + a * b * k) / (n - 1)

        return RatioMoments(n, self.mean_x * self.n / n, self.mean_y * self.n / n,
                            co(self.var_x, self.mean_x, self.mean_x), co(self.var_y, self.mean_y, self.mean_y),
                            co(self.cov, self.mean_x, self.mean_y))

    def as_tuple(self) -> tuple[float, ...]:
        return (self.n, self.mean_x, self.mean_y, self.var_x, self.var_y, self.cov)

    @property
    def ratio(self) -> float:
        return self.mean_x / self.mean_y if self.n and self.mean_y != 0 else float("nan")

    @property
    def var_ratio(self) -> float:
        """Delta-method variance of the ratio of means."""
        if self.n < 2 or self.mean_y == 0:
            return float("nan")
        mx, my = self.mean_x, self.mean_y
        v = self.var_x / my**2 - 2 * mx * self.cov / my**3 + mx**2 * self.var_y / my**4
        return max(v, 0.0) / self.n

    @property
    def unit_sd(self) -> float:
        """The standard deviation of one unit's linearised contribution: sd for power."""
        return math.sqrt(self.var_ratio * self.n) if self.n > 1 else float("nan")


def ratio_summary(m: RatioMoments, *, alpha: float = 0.05) -> dict:
    r, v = m.ratio, m.var_ratio
    row = {"n": m.n, "mean": json_float(r), "ci": [None, None],
           "numerator_mean": json_float(m.mean_x), "denominator_mean": json_float(m.mean_y)}
    if math.isfinite(v):
        half = z_quantile(alpha) * math.sqrt(v)
        row["ci"] = interval(r - half, r + half)
    return row


def compare_ratios(t: RatioMoments, c: RatioMoments, *, alpha: float = 0.05,
                   sequential_tuning_n: int | None = None, prior: GaussianPrior = GaussianPrior()) -> dict:
    rt, rc, vt, vc = t.ratio, c.ratio, t.var_ratio, c.var_ratio
    diff = rt - rc
    result = {
        "diff": json_float(diff), "diff_ci": [None, None], "diff_ci_method": "delta_method",
        "lift": json_float(rt / rc - 1) if math.isfinite(rc) and rc != 0 else None,
        "lift_ci": [None, None], "lift_ci_method": "delta_method_ratio",
        "p_value": None, "test": "delta_method_z", "note": None, "testable": True,
        **bayes_compare(rt, vt, rc, vc, prior=prior, alpha=alpha),
    }
    if not (math.isfinite(vt) and math.isfinite(vc)):
        result.update(note="a denominator mean is zero or an arm has fewer than 2 units", testable=False)
        return result
    var_diff = vt + vc
    if var_diff == 0:
        result.update(note="cannot be tested: no variance", testable=False)
        return result
    z = z_quantile(alpha)
    var_lift = vt / rc**2 + rt**2 * vc / rc**4 if rc != 0 else None
    if vt == 0 or vc == 0:
        var_lift = None  # one constant arm: no honest interval for the ratio of ratios
    if sequential_tuning_n is None:
        se = math.sqrt(var_diff)
        result.update(p_value=json_float(2 * sps.norm.sf(abs(diff) / se)),
                      diff_ci=interval(diff - z * se, diff + z * se))
        if var_lift is not None:
            half = z * math.sqrt(var_lift)
            result["lift_ci"] = interval(result["lift"] - half, result["lift"] + half)
    else:
        sequential_update(result, diff, var_diff, result["lift"], var_lift, t.n + c.n, sequential_tuning_n, alpha)
    return result


def analyze_ratios(name: str, arms: Mapping[str, RatioMoments], control: str, *, primary: bool = False,
                   alpha: float = 0.05, sequential: bool = False,
                   sequential_tuning_n: int = DEFAULT_SEQUENTIAL_TUNING_N,
                   prior: GaussianPrior = GaussianPrior()) -> dict:
    check_control(arms, control)
    rows = [{"arm": a, **ratio_summary(m, alpha=alpha)} for a, m in arms.items()]
    comparisons = [
        comparison_row(a, control, compare_ratios(m, arms[control], alpha=alpha, prior=prior,
                                                  sequential_tuning_n=sequential_tuning_n if sequential else None))
        for a, m in arms.items() if a != control
    ]
    return metric_result(name, primary, rows, comparisons, alpha)


# --------------------------------------------------------------------------- CUPED


@dataclass(frozen=True)
class RatioUnits:
    """One arm's per-unit numerator and denominator after exposure and before it (the
    pre-period covariates): GrowthBook's RegressionAdjustedRatioStatistic, from moments."""

    n: int
    means: np.ndarray  # [m_post, d_post, m_pre, d_pre]
    cov: np.ndarray  # their 4 x 4 sample covariance (ddof=1)

    @classmethod
    def from_arrays(cls, m_post, d_post, m_pre, d_pre) -> RatioUnits:
        x = np.column_stack([np.asarray(a, dtype=float) for a in (m_post, d_post, m_pre, d_pre)])
        n = x.shape[0]
        cov = np.cov(x, rowvar=False, ddof=1) if n > 1 else np.full((4, 4), np.nan)
        return cls(n, x.mean(axis=0) if n else np.full(4, np.nan), cov)

    @property
    def post(self) -> float:
        return self.means[0] / self.means[1] if self.means[1] != 0 else math.nan

    @property
    def pre(self) -> float:
        return self.means[2] / self.means[3] if self.means[3] != 0 else math.nan

    def gradient(self, theta: float) -> np.ndarray:
        """d(post - theta pre) / d(means): the linearisation of the adjusted ratio."""
        mp, dp, mq, dq = self.means
        return np.array([1 / dp, -mp / dp**2, -theta / dq, theta * mq / dq**2])

    def unit_var(self, theta: float) -> float:
        """Variance of one unit's linearised contribution to post - theta pre."""
        g = self.gradient(theta)
        return float(g @ self.cov @ g)

    def as_moments(self) -> RatioMoments:
        c = self.cov
        return RatioMoments(self.n, float(self.means[0]), float(self.means[1]), float(c[0, 0]), float(c[1, 1]),
                            float(c[0, 1]))


def ratio_cuped_theta(arms: list[RatioUnits]) -> float:
    """GrowthBook's theta (compute_theta_regression_adjusted_ratio): minus the summed
    covariance of the post and pre linearisations over their summed pre variance. Summed
    over every arm (GrowthBook sums the two arms of a comparison): one theta for all arms,
    as for continuous CUPED, so a treatment effect cannot leak in through one arm."""
    cov = var_pre = 0.0
    for a in arms:
        g = a.gradient(1.0)
        cov += float(g[2:] @ a.cov[2:, :2] @ g[:2])
        var_pre += float(g[2:] @ a.cov[2:, 2:] @ g[2:])
    return -cov / var_pre if var_pre > 0 else 0.0


def _lift_var_cuped(t: RatioUnits, c: RatioUnits, theta: float, diff: float) -> float:
    """Variance of diff / control's unadjusted ratio (GrowthBook's
    frequentist_variance_relative_cuped_ratio): the control's post means appear in both the
    difference and the baseline."""
    base = abs(c.post)
    g_abs = diff * math.copysign(1.0, c.post)
    mp, dp = c.means[0], c.means[1]
    gc = c.gradient(theta)
    grad_c = np.array([-(base + g_abs) / dp / base**2, (mp * base / dp**2 + mp * g_abs / dp**2) / base**2,
                       -gc[2] / base, -gc[3] / base])
    grad_t = t.gradient(theta) / base
    return float(grad_c @ c.cov @ grad_c / c.n + grad_t @ t.cov @ grad_t / t.n)


def analyze_ratios_cuped(name: str, arms: Mapping[str, RatioUnits], control: str, *, primary: bool = False,
                         alpha: float = 0.05, sequential: bool = False,
                         sequential_tuning_n: int = DEFAULT_SEQUENTIAL_TUNING_N,
                         prior: GaussianPrior = GaussianPrior()) -> dict:
    """A ratio metric with CUPED: each arm's post-period ratio minus theta times its
    pre-period ratio (GrowthBook's regression adjustment for ratio metrics), the variance by
    the delta method over the four per-unit means. Arm means are shifted by theta times the
    pooled pre-period ratio so that they keep the metric's scale (differences are unchanged);
    the lift is the difference over the control's unadjusted ratio, as GrowthBook's."""
    check_control(arms, control)
    units = list(arms.values())
    usable = all(a.n > 1 and a.means[1] != 0 and a.means[3] != 0 and np.isfinite(a.cov).all() for a in units)
    theta = ratio_cuped_theta(units) if usable else 0.0
    if not usable or abs(theta) < 1e-8:
        # GrowthBook reverts to the unadjusted ratio when theta vanishes (no pre-period signal).
        result = analyze_ratios(name, {a: u.as_moments() for a, u in arms.items()}, control, primary=primary,
                                alpha=alpha, sequential=sequential, sequential_tuning_n=sequential_tuning_n,
                                prior=prior)
        result["cuped"] = {"theta": 0.0, "variance_reduction": 0.0, "control_sd": None,
                           "note": "no pre-period signal (or a zero denominator): not adjusted"}
        return result
    total = sum(units[k].means[2] * units[k].n for k in range(len(units)))
    total_d = sum(units[k].means[3] * units[k].n for k in range(len(units)))
    pooled_pre = total / total_d
    z = z_quantile(alpha)
    adjusted = {a: u.post - theta * (u.pre - pooled_pre) for a, u in arms.items()}
    var_mean = {a: u.unit_var(theta) / u.n for a, u in arms.items()}
    rows = []
    for a, u in arms.items():
        half = z * math.sqrt(var_mean[a])
        rows.append({"arm": a, "n": u.n, "mean": json_float(adjusted[a]),
                     "ci": interval(adjusted[a] - half, adjusted[a] + half),
                     "numerator_mean": json_float(u.means[0]), "denominator_mean": json_float(u.means[1]),
                     "unadjusted_mean": json_float(u.post)})
    comparisons = []
    c = arms[control]
    for a, t in arms.items():
        if a == control:
            continue
        diff = adjusted[a] - adjusted[control]
        var_diff = var_mean[a] + var_mean[control]
        lift = diff / c.post if c.post != 0 else None
        var_lift = _lift_var_cuped(t, c, theta, diff) if lift is not None else None
        comp = {
            "diff": json_float(diff), "diff_ci": [None, None], "diff_ci_method": "delta_method_cuped",
            "lift": json_float(lift), "lift_ci": [None, None], "lift_ci_method": "delta_method_cuped",
            "p_value": None, "test": "delta_method_z_cuped", "note": None, "testable": True,
            **bayes_compare(adjusted[a], var_mean[a], adjusted[control], var_mean[control], prior=prior, alpha=alpha),
        }
        if not var_diff > 0:
            comp.update(note="cannot be tested: no variance", testable=False)
        elif not sequential:
            se = math.sqrt(var_diff)
            comp.update(p_value=json_float(2 * sps.norm.sf(abs(diff) / se)),
                        diff_ci=interval(diff - z * se, diff + z * se))
            if var_lift is not None and var_lift > 0:
                half = z * math.sqrt(var_lift)
                comp["lift_ci"] = interval(lift - half, lift + half)
        else:
            sequential_update(comp, diff, var_diff, lift, var_lift, t.n + c.n, sequential_tuning_n, alpha)
        comparisons.append(comparison_row(a, control, comp))
    before = sum((u.n - 1) * u.unit_var(0.0) for u in units)
    after = sum((u.n - 1) * u.unit_var(theta) for u in units)
    result = metric_result(name, primary, rows, comparisons, alpha)
    result["cuped"] = {"theta": json_float(theta),
                       "variance_reduction": json_float(1 - after / before) if before > 0 else None,
                       "control_sd": json_float(math.sqrt(c.unit_var(theta))),
                       "method": "GrowthBook's regression adjustment for ratio metrics: post ratio minus theta "
                                 "times the pre-period ratio, delta method over the four per-unit means"}
    return result
