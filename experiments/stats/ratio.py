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
