"""Quantile metrics (the median, p90 of a skewed value such as revenue): each arm's sample
quantile with a distribution-free interval from order statistics, the Price-Bonett (2002)
construction generalised from the median to any quantile (as GrowthBook's quantile metrics
do): the ranks n q -/+ z sqrt(n q (1 - q)) bound the interval, and half its width over z is
the quantile's standard error. The difference of two arms' quantiles is then read with a
normal test on those standard errors; the lift with the delta method; the Bayesian read
from stats.bayes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats as sps

from .bayes import GaussianPrior, bayes_compare
from .common import interval, json_float, z_quantile
from .metrics import check_control, comparison_row, metric_result
from .sequential import DEFAULT_SEQUENTIAL_TUNING_N, sequential_for


def quantile_estimate(values: np.ndarray, q: float, *, alpha: float = 0.05) -> tuple[float, float, list]:
    """(sample quantile, its standard error, [lo, hi] order-statistic interval)."""
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    if n < 2:
        return (float(x[0]) if n else math.nan), math.nan, [None, None]
    z = z_quantile(alpha)
    estimate = float(np.quantile(x, q))
    half = z * math.sqrt(n * q * (1 - q))
    lo_rank = max(int(math.floor(n * q - half)), 1)
    hi_rank = min(int(math.ceil(n * q + half)), n)
    lo, hi = float(x[lo_rank - 1]), float(x[hi_rank - 1])
    return estimate, (hi - lo) / (2 * z), interval(lo, hi)


def compare_quantiles(t: tuple[float, float], c: tuple[float, float], n: int, *, alpha: float = 0.05,
                      sequential_tuning_n: int | None = None, prior: GaussianPrior = GaussianPrior()) -> dict:
    (qt, se_t), (qc, se_c) = t, c
    diff = qt - qc
    result = {
        "diff": json_float(diff), "diff_ci": [None, None], "diff_ci_method": "price_bonett_order_statistics",
        "lift": json_float(qt / qc - 1) if qc else None, "lift_ci": [None, None], "lift_ci_method": "delta_method_ratio",
        "p_value": None, "test": "quantile_z", "note": None, "testable": True,
        **bayes_compare(qt, se_t**2, qc, se_c**2, prior=prior, alpha=alpha),
    }
    var = se_t**2 + se_c**2
    if not math.isfinite(var) or var == 0:
        result.update(note="cannot be tested: no spread around the quantile", testable=False)
        return result
    z = z_quantile(alpha)
    if sequential_tuning_n is None:
        se = math.sqrt(var)
        result.update(p_value=json_float(2 * sps.norm.sf(abs(diff) / se)), diff_ci=interval(diff - z * se, diff + z * se))
    else:
        seq = sequential_for(diff, var, n, sequential_tuning_n, alpha)
        result.update(p_value=seq["p_value"], diff_ci=seq["ci"], test="msprt_normal_mixture")
    if qc and se_t > 0 and se_c > 0:
        half = z * math.sqrt(se_t**2 / qc**2 + qt**2 * se_c**2 / qc**4)
        result["lift_ci"] = interval(result["lift"] - half, result["lift"] + half)
    return result


def analyze_quantiles(name: str, arms: Mapping[str, Sequence[float] | np.ndarray], control: str, *, q: float,
                      primary: bool = False, alpha: float = 0.05, sequential: bool = False,
                      sequential_tuning_n: int = DEFAULT_SEQUENTIAL_TUNING_N,
                      prior: GaussianPrior = GaussianPrior(), **_: object) -> dict:
    """A quantile metric from per-unit values, ``arms`` arm -> values."""
    check_control(arms, control)
    estimates = {a: quantile_estimate(np.asarray(v, dtype=float), q, alpha=alpha) for a, v in arms.items()}
    rows = [{"arm": a, "n": int(len(arms[a])), "mean": json_float(e[0]), "ci": e[2], "quantile": q}
            for a, e in estimates.items()]
    comparisons = [
        comparison_row(a, control, compare_quantiles(
            estimates[a][:2], estimates[control][:2], len(arms[a]) + len(arms[control]), alpha=alpha, prior=prior,
            sequential_tuning_n=sequential_tuning_n if sequential else None))
        for a in arms if a != control
    ]
    return metric_result(name, primary, rows, comparisons, alpha)
