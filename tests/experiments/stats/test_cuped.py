"""experiments/stats/cuped.py: CUPED and winsorization, against numbers computed independently of it.

Reference values come from published cases, from the Hillstrom e-mail dataset in
../shared/datasets, from scipy where it is an independent implementation, and from
formulas written out from first principles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.stats import means


def test_cuped_recovers_planted_theta_and_variance_reduction():
    # Given y = x + noise with var(x) = var(noise) = 1: theta = 1, corr^2 = 0.5.
    rng = np.random.default_rng(7)
    n = 5000
    x = {arm: rng.normal(10, 1, n) for arm in ("control", "treatment")}
    y = {arm: x[arm] + rng.normal(0, 1, n) for arm in x}
    y["treatment"] = y["treatment"] + 0.1

    plain = means.analyze_means("m", y, "control")
    cuped = means.analyze_means("m", y, "control", covariates=x)

    assert cuped["cuped"]["theta"] == pytest.approx(1.0, abs=0.05)
    assert cuped["cuped"]["variance_reduction"] == pytest.approx(0.5, abs=0.03)
    width = lambda m: m["comparisons"][0]["diff_ci"][1] - m["comparisons"][0]["diff_ci"][0]
    # Interval width scales with sqrt(1 - reduction) ~ 0.71.
    assert width(cuped) / width(plain) == pytest.approx(math.sqrt(0.5), abs=0.05)
    lo, hi = cuped["comparisons"][0]["diff_ci"]
    assert lo < 0.1 < hi


def test_winsorization_caps_all_arms_at_one_pooled_percentile():
    control = np.arange(1.0, 101.0)
    treatment = np.r_[np.arange(1.0, 101.0), 10_000.0]
    cap = float(np.percentile(np.r_[control, treatment], 99))

    result = means.analyze_means("rev", {"c": control, "t": treatment}, "c",
                                      winsorize_percentile=99)

    assert result["winsorize"]["cap"] == pytest.approx(cap)
    expected_t_mean = np.minimum(treatment, cap).mean()
    assert result["arms"][1]["mean"] == pytest.approx(expected_t_mean)
