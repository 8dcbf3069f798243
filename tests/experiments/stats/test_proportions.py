"""experiments/stats/proportions.py: binary metrics, against numbers computed independently of it.

Reference values come from published cases, from the Hillstrom e-mail dataset in
../shared/datasets, from scipy where it is an independent implementation, and from
formulas written out from first principles."""

from __future__ import annotations

import math

import pytest

from experiments.stats import proportions

from .reference import json_safe, two_sided_normal_p, holm_by_hand, Z975


def test_hillstrom_arm_sizes_and_conversion_rates(hillstrom):
    arms = {seg: (int(g["conversion"].sum()), len(g)) for seg, g in hillstrom.items()}
    result = proportions.analyze_proportions("conversion", arms, "No E-Mail", primary=True)
    by_arm = {a["arm"]: a for a in result["arms"]}

    assert {k: v["n"] for k, v in by_arm.items()} == {
        "No E-Mail": 21306, "Mens E-Mail": 21307, "Womens E-Mail": 21387}
    assert round(100 * by_arm["No E-Mail"]["mean"], 3) == 0.573
    assert round(100 * by_arm["Mens E-Mail"]["mean"], 3) == 1.253
    assert round(100 * by_arm["Womens E-Mail"]["mean"], 3) == 0.884

    raw = [c["p_value"] for c in result["comparisons"]]
    assert [c["p_adjusted"] for c in result["comparisons"]] == pytest.approx(holm_by_hand(raw))
    assert all(c["test"] == "two_proportion_ztest" for c in result["comparisons"])
    json_safe(result)


def test_hillstrom_ztest_wilson_and_lift_match_first_principles(hillstrom):
    x_t, n_t = int(hillstrom["Mens E-Mail"]["conversion"].sum()), len(hillstrom["Mens E-Mail"])
    x_c, n_c = int(hillstrom["No E-Mail"]["conversion"].sum()), len(hillstrom["No E-Mail"])
    p_t, p_c = x_t / n_t, x_c / n_c

    # Pooled two-proportion z-test.
    pooled = (x_t + x_c) / (n_t + n_c)
    z = (p_t - p_c) / math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    # Wilson score interval for the treatment rate.
    centre = (p_t + Z975**2 / (2 * n_t)) / (1 + Z975**2 / n_t)
    half = Z975 * math.sqrt(p_t * (1 - p_t) / n_t + Z975**2 / (4 * n_t**2)) / (1 + Z975**2 / n_t)
    # Unpooled Wald interval for the difference; delta method on the log ratio for the lift.
    se_d = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    se_log = math.sqrt((1 - p_t) / (n_t * p_t) + (1 - p_c) / (n_c * p_c))
    ratio = p_t / p_c

    comp = proportions.compare_proportions(x_t, n_t, x_c, n_c)
    arm = proportions.proportion_summary(x_t, n_t)

    assert comp["test"] == "two_proportion_ztest"
    assert comp["p_value"] == pytest.approx(two_sided_normal_p(z), rel=1e-6)
    assert arm["ci"] == pytest.approx([centre - half, centre + half], rel=1e-9)
    assert comp["diff_ci"] == pytest.approx([p_t - p_c - Z975 * se_d, p_t - p_c + Z975 * se_d])
    assert comp["lift_ci"] == pytest.approx(
        [ratio * math.exp(-Z975 * se_log) - 1, ratio * math.exp(Z975 * se_log) - 1])


def test_small_counts_use_fisher_exact_and_no_nan():
    x_t, n_t, x_c, n_c = 3, 40, 1, 38
    # Fisher two-sided by hand: sum the hypergeometric tables no likelier than the observed one.
    k, n1, n2 = x_t + x_c, n_t, n_c
    pmf = lambda a: math.comb(n1, a) * math.comb(n2, k - a) / math.comb(n1 + n2, k)
    observed = pmf(x_t)
    p_hand = sum(pmf(a) for a in range(0, k + 1) if pmf(a) <= observed * (1 + 1e-7))

    comp = proportions.compare_proportions(x_t, n_t, x_c, n_c)

    assert comp["test"] == "fisher_exact"
    assert comp["p_value"] == pytest.approx(p_hand, rel=1e-9)
    json_safe(comp)


def test_zero_control_conversions_give_no_lift_and_a_note():
    result = proportions.analyze_proportions("c", {"control": (0, 1000), "offer": (10, 1000)}, "control")
    comp = result["comparisons"][0]

    assert comp["diff"] == pytest.approx(0.01)
    assert comp["lift"] is None and comp["lift_ci"] == [None, None]
    assert "zero" in comp["note"]
    assert comp["test"] == "fisher_exact"
    json_safe(result)


def test_no_conversions_anywhere_stays_json_safe():
    result = proportions.analyze_proportions("c", {"a": (0, 50), "b": (0, 50)}, "a", sequential=True)
    json_safe(result)
    assert result["comparisons"][0]["significant"] is False
