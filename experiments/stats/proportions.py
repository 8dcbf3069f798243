"""Binary metrics: Wilson interval per arm; difference with an unpooled Wald interval
(Agresti-Caffo's, one success and one failure added to each arm, when a cell is small: the
Wald interval then strays outside [-100, 100] points and disagrees with the exact test);
relative lift with a delta-method interval on the log of the rate ratio; p-value from the
pooled two-proportion z-test, or Fisher's exact test when any cell of the 2x2 table is below 5.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from .bayes import GaussianPrior, bayes_compare
from .common import interval, json_float, z_quantile
from .metrics import check_control, comparison_row, metric_result
from .sequential import DEFAULT_SEQUENTIAL_TUNING_N, sequential_for

# Below this many successes or failures in any cell the normal approximation behind the
# z-test is poor, so the exact test takes over.
SMALL_COUNT = 5


def proportion_summary(successes: int, n: int, *, alpha: float = 0.05) -> dict:
    """Rate with a Wilson interval (good coverage even near 0 or 1, unlike Wald)."""
    if n <= 0:
        return {"n": int(n), "mean": None, "ci": [None, None]}
    lo, hi = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return {"n": int(n), "mean": successes / n, "ci": interval(lo, hi)}


def _binary_p_value(x_t: int, n_t: int, x_c: int, n_c: int) -> tuple[float, str]:
    if min(x_t, n_t - x_t, x_c, n_c - x_c) < SMALL_COUNT:
        _, p = sps.fisher_exact([[x_t, n_t - x_t], [x_c, n_c - x_c]])
        return float(p), "fisher_exact"
    _, p = proportions_ztest(np.array([x_t, x_c]), np.array([n_t, n_c]))
    return float(p), "two_proportion_ztest"


def agresti_caffo_interval(x_t: int, n_t: int, x_c: int, n_c: int, z: float) -> list:
    """Agresti and Caffo (2000): the Wald interval after adding one success and one failure
    to each arm; near nominal coverage down to a handful of units, and clipped to [-1, 1]."""
    pt, pc = (x_t + 1) / (n_t + 2), (x_c + 1) / (n_c + 2)
    se = math.sqrt(pt * (1 - pt) / (n_t + 2) + pc * (1 - pc) / (n_c + 2))
    centre = pt - pc
    return interval(max(-1.0, centre - z * se), min(1.0, centre + z * se))


def compare_proportions(
    x_t: int,
    n_t: int,
    x_c: int,
    n_c: int,
    *,
    alpha: float = 0.05,
    sequential_tuning_n: int | None = None,
    prior: GaussianPrior = GaussianPrior(),
) -> dict:
    """Treatment (x_t of n_t) against control (x_c of n_c), and the Bayesian read beside it.

    With ``sequential_tuning_n`` set, intervals and p-value are the always-valid mSPRT ones.
    """
    if n_t <= 0 or n_c <= 0:
        raise ValueError("both arms need at least one unit")
    p_t, p_c = x_t / n_t, x_c / n_c
    diff = p_t - p_c
    z = z_quantile(alpha)
    notes: list[str] = []

    # Unpooled variance for the interval: under the alternative the arms differ, so the
    # pooled (null) variance would misstate the interval's width.
    var_diff = p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c

    # Relative lift through log(p_t / p_c): the log ratio is closer to normal than the ratio,
    # and exponentiating keeps the lower limit above -100%.
    lift = log_ratio = var_log = None
    if p_c == 0:
        notes.append("control rate is zero: no relative lift to compute")
    else:
        lift = p_t / p_c - 1
        if p_t == 0:
            notes.append("treatment rate is zero: no lift interval on the log scale")
        else:
            log_ratio = math.log(p_t / p_c)
            var_log = (1 - p_t) / (n_t * p_t) + (1 - p_c) / (n_c * p_c)

    if sequential_tuning_n is None:
        p_value, test = _binary_p_value(x_t, n_t, x_c, n_c)
        diff_ci = [None, None]
        small = test == "fisher_exact"
        if small:
            diff_ci = agresti_caffo_interval(x_t, n_t, x_c, n_c, z)
        elif var_diff > 0:  # both rates 0 or 1: no spread, no interval
            se = math.sqrt(var_diff)
            diff_ci = interval(diff - z * se, diff + z * se)
        lift_ci = [None, None]
        if log_ratio is not None:
            se_log = math.sqrt(var_log)
            lift_ci = interval(math.exp(log_ratio - z * se_log) - 1,
                                math.exp(log_ratio + z * se_log) - 1)
    else:
        test = "msprt_normal_mixture"
        n = n_t + n_c
        seq = sequential_for(diff, var_diff, n, sequential_tuning_n, alpha)
        p_value, diff_ci = seq["p_value"], seq["ci"]
        lift_ci = [None, None]
        if log_ratio is not None:
            lo, hi = sequential_for(log_ratio, var_log, n, sequential_tuning_n, alpha)["ci"]
            lift_ci = [json_float(math.exp(lo) - 1) if lo is not None else None,
                       json_float(math.exp(hi) - 1) if hi is not None else None]
        if min(x_t, n_t - x_t, x_c, n_c - x_c) < SMALL_COUNT:
            notes.append("small counts: the normal approximation behind the sequential test is rough")

    return {
        **bayes_compare(p_t, p_t * (1 - p_t) / n_t, p_c, p_c * (1 - p_c) / n_c, prior=prior, alpha=alpha),
        "diff": json_float(diff),
        "diff_ci": diff_ci,
        "diff_ci_method": ("msprt_normal_mixture" if sequential_tuning_n is not None
                           else "agresti_caffo" if test == "fisher_exact" else "wald_unpooled"),
        "lift": json_float(lift),
        "lift_ci": lift_ci,
        "lift_ci_method": "delta_method_log_ratio",
        "p_value": json_float(p_value),
        "test": test,
        "note": "; ".join(notes) or None,
    }


def analyze_proportions(
    name: str,
    arms: Mapping[str, tuple[int, int]],
    control: str,
    *,
    primary: bool = False,
    alpha: float = 0.05,
    sequential: bool = False,
    sequential_tuning_n: int = DEFAULT_SEQUENTIAL_TUNING_N,
    prior: GaussianPrior = GaussianPrior(),
) -> dict:
    """A conversion metric: ``arms`` maps arm name -> (successes, units)."""
    check_control(arms, control)
    x_c, n_c = arms[control]
    rows = [{"arm": arm, **proportion_summary(x, n, alpha=alpha)} for arm, (x, n) in arms.items()]
    comparisons = [
        comparison_row(arm, control, compare_proportions(
            x, n, x_c, n_c, alpha=alpha,
            sequential_tuning_n=sequential_tuning_n if sequential else None, prior=prior))
        for arm, (x, n) in arms.items() if arm != control
    ]
    return metric_result(name, primary, rows, comparisons, alpha)
