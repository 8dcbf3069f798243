"""experiments/stats/planning.py: sample size, detectable effect and achieved power,
against numbers computed independently of it.

Reference values come from published cases, from the Hillstrom e-mail dataset in
../shared/datasets, from scipy where it is an independent implementation, and from
formulas written out from first principles."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from experiments.stats import planning

from .reference import Z975


def test_binary_sample_size_matches_closed_form():
    z = Z975 + NormalDist().inv_cdf(0.8)
    for baseline, mde, relative in [(0.10, 0.02, False), (0.05, 0.10, True)]:
        p2 = baseline * (1 + mde) if relative else baseline + mde
        closed = z**2 * (baseline * (1 - baseline) + p2 * (1 - p2)) / (p2 - baseline) ** 2
        plan = planning.sample_size_binary(baseline, mde, relative=relative)
        assert plan["n_control"] == pytest.approx(closed, rel=0.01)


def test_continuous_sample_size_and_detectable_effect_match_closed_form():
    z = Z975 + NormalDist().inv_cdf(0.8)
    closed_n = 2 * z**2 * 3.0**2 / 0.25**2
    plan = planning.sample_size_continuous(3.0, 0.25)
    # The t-test needs a couple of units more than the normal approximation.
    assert closed_n <= plan["n_control"] <= closed_n + 3

    mde = planning.detectable_effect_continuous(3.0, 2000)["absolute"]
    assert mde == pytest.approx(z * 3.0 * math.sqrt(2 / 2000), rel=0.005)


def test_achieved_power_matches_closed_form():
    p1, p2, n = 0.10, 0.12, 3000
    se = math.sqrt(p1 * (1 - p1) / n + p2 * (1 - p2) / n)
    nd = NormalDist()
    closed = nd.cdf((p2 - p1) / se - Z975) + nd.cdf(-(p2 - p1) / se - Z975)
    result = planning.achieved_power_binary(p1, 0.02, n, n)
    assert result["power"] == pytest.approx(closed, abs=0.005)
    assert result["underpowered"] is True


def test_the_one_plan_path_gives_both_arms_the_sample_size_of_each_metric_type():
    rate = planning.sample_size_plan(0.1, baseline=0.05, relative=True)
    mean = planning.sample_size_plan(0.25, sd=3.0)

    assert rate["n_control"] == planning.sample_size_binary(0.05, 0.1, relative=True)["n_control"]
    assert mean["n_control"] == planning.sample_size_continuous(3.0, 0.25)["n_control"]
    assert rate["total"] == 2 * rate["n_per_arm"] and "Cohen's h" in rate["method"]
    with pytest.raises(ValueError):
        planning.sample_size_plan(0.1)


def test_power_close_to_one_is_a_number_not_nan():
    # statsmodels' TTestIndPower gives NaN here: the report must stay JSON-safe.
    result = planning.achieved_power_continuous(3.0, 1.0, 4000, 4000)
    assert result["power"] == pytest.approx(1.0) and result["underpowered"] is False
