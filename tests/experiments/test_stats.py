"""experiments/stats.py against numbers computed independently of it.

Reference values come from published cases (GrowthBook's Welch fixture), from the Hillstrom
e-mail dataset in ../shared/datasets, from scipy where it is an independent implementation,
and from formulas written out here from first principles with the math module.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
from scipy import stats as sps

from experiments import stats

HILLSTROM = Path(__file__).resolve().parents[3] / "shared/datasets/hillstrom.csv"
Z975 = NormalDist().inv_cdf(0.975)


def json_safe(obj) -> str:
    # Raises ValueError on NaN or infinity anywhere in the structure.
    return json.dumps(obj, allow_nan=False)


def two_sided_normal_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def holm_by_hand(pvals: list[float]) -> list[float]:
    m = len(pvals)
    order = sorted(range(m), key=lambda i: pvals[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvals[i]))
        out[i] = running
    return out


@pytest.fixture(scope="module")
def hillstrom():
    if not HILLSTROM.exists():
        pytest.skip(f"shared dataset not found at {HILLSTROM}")
    import pandas as pd

    df = pd.read_csv(HILLSTROM, usecols=["segment", "conversion", "spend"])
    return {seg: g for seg, g in df.groupby("segment")}


# --------------------------------------------------------------------------- SRM


def test_srm_fails_on_5000_vs_5400_for_a_50_50_plan():
    result = stats.srm_check([5000, 5400], [0.5, 0.5])
    # By hand: expected 5200 each, chi2 = 2 * 200^2 / 5200; 1-df chi-square tail = erfc(sqrt(chi2/2)).
    chi2 = 2 * 200**2 / 5200
    assert result["chi2"] == pytest.approx(chi2)
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(chi2 / 2)))
    assert result["status"] == "fail"
    assert result["expected"] == [5200.0, 5200.0]


def test_srm_ok_on_5000_vs_5030():
    assert stats.srm_check([5000, 5030], [1, 1])["status"] == "ok"


def test_srm_warns_between_the_thresholds():
    # chi2 = 4 * 150^2 / 10000 = 9.0 -> p ~ 0.0027
    result = stats.srm_check([4850, 5150], [1, 1])
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(9.0 / 2)))
    assert result["status"] == "warning"


# --------------------------------------------------------------------------- continuous


def test_welch_matches_growthbook_published_fixture():
    # GrowthBook's fixture, as (n, sum, sum of squares); means 0.70 and 0.41.
    treatment = stats.Moments.from_sums(3461, 2422.7, 134698.29)
    control = stats.Moments.from_sums(3407, 1396.87, 52377.9767)
    assert treatment.mean == pytest.approx(0.70, abs=1e-9)
    assert control.mean == pytest.approx(0.41, abs=1e-9)

    result = stats.compare_means(treatment, control)

    # Published values are absolute differences of means, Welch t with its df.
    assert result["test"] == "welch_t"
    assert result["diff"] == pytest.approx(0.29, rel=1e-4)
    assert result["se"] == pytest.approx(0.12478, rel=1e-4)
    assert result["p_value"] == pytest.approx(0.02016, rel=2e-4)
    assert result["diff_ci"][0] == pytest.approx(0.04538, rel=2e-4)
    assert result["diff_ci"][1] == pytest.approx(0.53462, rel=1e-4)


def test_welch_on_hillstrom_spend_matches_scipy(hillstrom):
    t = hillstrom["Mens E-Mail"]["spend"].to_numpy(float)
    c = hillstrom["No E-Mail"]["spend"].to_numpy(float)
    ref = sps.ttest_ind(t, c, equal_var=False)
    ref_ci = ref.confidence_interval(0.95)

    from_arrays = stats.compare_means(stats.Moments.from_array(t), stats.Moments.from_array(c))
    from_sums = stats.compare_means(
        stats.Moments.from_sums(t.size, t.sum(), (t**2).sum()),
        stats.Moments.from_sums(c.size, c.sum(), (c**2).sum()),
    )

    for result in (from_arrays, from_sums):
        assert result["diff"] == pytest.approx(t.mean() - c.mean(), rel=1e-9)
        assert result["p_value"] == pytest.approx(ref.pvalue, rel=1e-6)
        assert result["df"] == pytest.approx(ref.df, rel=1e-6)
        assert result["diff_ci"] == pytest.approx([ref_ci.low, ref_ci.high], rel=1e-6)


def test_analyze_continuous_same_from_sufficient_statistics_as_from_arrays(hillstrom):
    arrays = {seg: g["spend"].to_numpy(float) for seg, g in hillstrom.items()}
    sums = {seg: stats.Moments.from_sums(a.size, a.sum(), (a**2).sum()) for seg, a in arrays.items()}

    a = stats.analyze_continuous("spend", arrays, "No E-Mail", primary=True)
    b = stats.analyze_continuous("spend", sums, "No E-Mail", primary=True)

    for ca, cb in zip(a["comparisons"], b["comparisons"]):
        assert ca["p_value"] == pytest.approx(cb["p_value"], rel=1e-6)
        assert ca["diff_ci"] == pytest.approx(cb["diff_ci"], rel=1e-6)
    json_safe(a)


def test_cuped_recovers_planted_theta_and_variance_reduction():
    # Given y = x + noise with var(x) = var(noise) = 1: theta = 1, corr^2 = 0.5.
    rng = np.random.default_rng(7)
    n = 5000
    x = {arm: rng.normal(10, 1, n) for arm in ("control", "treatment")}
    y = {arm: x[arm] + rng.normal(0, 1, n) for arm in x}
    y["treatment"] = y["treatment"] + 0.1

    plain = stats.analyze_continuous("m", y, "control")
    cuped = stats.analyze_continuous("m", y, "control", covariates=x)

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

    result = stats.analyze_continuous("rev", {"c": control, "t": treatment}, "c",
                                      winsorize_percentile=99)

    assert result["winsorize"]["cap"] == pytest.approx(cap)
    expected_t_mean = np.minimum(treatment, cap).mean()
    assert result["arms"][1]["mean"] == pytest.approx(expected_t_mean)


# --------------------------------------------------------------------------- binary


def test_hillstrom_arm_sizes_and_conversion_rates(hillstrom):
    arms = {seg: (int(g["conversion"].sum()), len(g)) for seg, g in hillstrom.items()}
    result = stats.analyze_binary("conversion", arms, "No E-Mail", primary=True)
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

    comp = stats.compare_proportions(x_t, n_t, x_c, n_c)
    arm = stats.proportion_summary(x_t, n_t)

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

    comp = stats.compare_proportions(x_t, n_t, x_c, n_c)

    assert comp["test"] == "fisher_exact"
    assert comp["p_value"] == pytest.approx(p_hand, rel=1e-9)
    json_safe(comp)


def test_zero_control_conversions_give_no_lift_and_a_note():
    result = stats.analyze_binary("c", {"control": (0, 1000), "offer": (10, 1000)}, "control")
    comp = result["comparisons"][0]

    assert comp["diff"] == pytest.approx(0.01)
    assert comp["lift"] is None and comp["lift_ci"] == [None, None]
    assert "zero" in comp["note"]
    assert comp["test"] == "fisher_exact"
    json_safe(result)


def test_no_conversions_anywhere_stays_json_safe():
    result = stats.analyze_binary("c", {"a": (0, 50), "b": (0, 50)}, "a", sequential=True)
    json_safe(result)
    assert result["comparisons"][0]["significant"] is False


def test_holm_matches_hand_computed_example():
    # Sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06.
    assert stats.adjust_pvalues([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.adjust_pvalues([0.01, None, 0.04]) == pytest.approx([0.02, None, 0.04])


# --------------------------------------------------------------------------- retention


def test_day_n_retention_counts_only_units_observed_n_days():
    # unit: churn/censor day, churned?, days observed
    durations = [1, 2, 2, 3, 4, 5]
    events = [1, 1, 0, 1, 0, 1]
    observed = [7, 7, 7, 2, 7, 7]
    # Day 3: units 0,1 churned; 2 censored at day 2 (unknown); 3 observed only 2 days;
    # 4 (censored at 4) and 5 (churned at 5) were active after day 3 -> 2 of 4.
    result = stats.day_n_retention(durations, events, observed, 3)
    assert (result["n"], result["retained"], result["rate"], result["excluded"]) == (4, 2, 0.5, 2)


def test_kaplan_meier_matches_hand_computed_curve_and_log_log_interval():
    durations = [1, 2, 2, 3, 4, 5]
    events = [1, 1, 0, 1, 0, 1]
    # At risk / events: t=1 6/1, t=2 5/1 (the censoring at 2 counts as at risk), t=3 3/1, t=5 1/1.
    s = [5 / 6, 5 / 6 * 4 / 5, 5 / 6 * 4 / 5 * 2 / 3, 0.0]
    greenwood = np.cumsum([1 / (6 * 5), 1 / (5 * 4), 1 / (3 * 2)])

    km = stats.kaplan_meier(durations, events)

    assert km["time"] == [1.0, 2.0, 3.0, 5.0]
    assert km["survival"] == pytest.approx(s)
    for i in range(3):
        sd = math.sqrt(greenwood[i]) / abs(math.log(s[i]))  # se of log(-log S)
        assert km["lo"][i] == pytest.approx(s[i] ** math.exp(Z975 * sd))
        assert km["hi"][i] == pytest.approx(s[i] ** math.exp(-Z975 * sd))
    assert km["lo"][3] is None
    json_safe(km)


def test_kaplan_meier_downsamples_long_curves():
    rng = np.random.default_rng(3)
    km = stats.kaplan_meier(rng.exponential(1, 5000), np.ones(5000), max_points=200)
    assert len(km["time"]) <= 200
    assert km["survival"][-1] == 0.0


def test_logrank_matches_hand_computation():
    a_t, a_e = [1, 3, 4, 6, 8], [1, 1, 0, 1, 1]
    b_t, b_e = [2, 5, 7, 9, 10, 11], [1, 0, 1, 1, 0, 1]
    times = a_t + b_t
    events = a_e + b_e
    group = [0] * len(a_t) + [1] * len(b_t)
    o_minus_e = var = 0.0
    for t in sorted({ti for ti, ei in zip(times, events) if ei}):
        at_risk = [g for ti, g in zip(times, group) if ti >= t]
        n, n1 = len(at_risk), at_risk.count(0)
        d = sum(1 for ti, ei in zip(times, events) if ti == t and ei)
        d1 = sum(1 for ti, ei, g in zip(times, events, group) if ti == t and ei and g == 0)
        o_minus_e += d1 - d * n1 / n
        var += d * (n1 / n) * (1 - n1 / n) * (n - d) / max(n - 1, 1)
    chi2 = o_minus_e**2 / var

    result = stats.logrank_test(times, events, group)

    assert result["chi2"] == pytest.approx(chi2)
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(chi2 / 2)))


def test_logrank_tiny_p_value_is_displayed_as_below_1e_16():
    early = np.linspace(1, 10, 300)
    late = np.linspace(100, 200, 300)
    result = stats.logrank_test(np.r_[early, late], np.ones(600), np.r_[np.zeros(300), np.ones(300)])
    assert result["p_value"] == 0.0
    assert result["p_value_display"] == "< 1e-16"


def test_hazard_ratio_recovers_planted_ratio():
    rng = np.random.default_rng(11)
    n = 2000
    control = rng.exponential(1.0, n)
    treated = rng.exponential(0.5, n)  # twice the hazard
    times = np.round(np.r_[control, treated], 2)  # ties, so Efron matters
    horizon = 2.0
    events = (times < horizon).astype(int)
    times = np.minimum(times, horizon)

    result = stats.hazard_ratio(times, events, np.r_[np.zeros(n), np.ones(n)])

    assert result["hazard_ratio"] == pytest.approx(2.0, rel=0.1)
    assert result["ci"][0] < 2.0 < result["ci"][1]


# --------------------------------------------------------------------------- power


def test_binary_sample_size_matches_closed_form():
    z = Z975 + NormalDist().inv_cdf(0.8)
    for baseline, mde, relative in [(0.10, 0.02, False), (0.05, 0.10, True)]:
        p2 = baseline * (1 + mde) if relative else baseline + mde
        closed = z**2 * (baseline * (1 - baseline) + p2 * (1 - p2)) / (p2 - baseline) ** 2
        plan = stats.sample_size_binary(baseline, mde, relative=relative)
        assert plan["n_control"] == pytest.approx(closed, rel=0.01)


def test_continuous_sample_size_and_detectable_effect_match_closed_form():
    z = Z975 + NormalDist().inv_cdf(0.8)
    closed_n = 2 * z**2 * 3.0**2 / 0.25**2
    plan = stats.sample_size_continuous(3.0, 0.25)
    # The t-test needs a couple of units more than the normal approximation.
    assert closed_n <= plan["n_control"] <= closed_n + 3

    mde = stats.detectable_effect_continuous(3.0, 2000)["absolute"]
    assert mde == pytest.approx(z * 3.0 * math.sqrt(2 / 2000), rel=0.005)


def test_achieved_power_matches_closed_form():
    p1, p2, n = 0.10, 0.12, 3000
    se = math.sqrt(p1 * (1 - p1) / n + p2 * (1 - p2) / n)
    nd = NormalDist()
    closed = nd.cdf((p2 - p1) / se - Z975) + nd.cdf(-(p2 - p1) / se - Z975)
    result = stats.achieved_power_binary(p1, 0.02, n, n)
    assert result["power"] == pytest.approx(closed, abs=0.005)
    assert result["underpowered"] is True


# --------------------------------------------------------------------------- sequential


def test_sequential_interval_matches_howard_closed_form():
    # Howard et al. (2021) normal mixture with rho tuned for N units, sd 1:
    # half-width = sqrt(2 (N rho^2 + 1) / (N^2 rho^2) * log(sqrt(N rho^2 + 1) / alpha)).
    alpha, n = 0.05, 1000
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / n
    half = math.sqrt(2 * (n * rho2 + 1) / (n**2 * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha))

    variance = 1 / n
    result = stats.sequential_interval(0.05, variance, tau2=stats.msprt_tau2(variance, n, n, alpha))

    assert result["ci"] == pytest.approx([0.05 - half, 0.05 + half])
    assert half > Z975 * math.sqrt(variance)  # wider than the fixed-horizon interval


@pytest.mark.parametrize("estimate", [0.0, 0.05, 0.09, 0.11, 0.2, -0.15])
def test_sequential_p_value_below_alpha_exactly_when_interval_excludes_zero(estimate):
    result = stats.sequential_interval(estimate, 0.001, tau2=0.01)
    lo, hi = result["ci"]
    assert (result["p_value"] < 0.05) == (lo > 0 or hi < 0)


def test_aa_simulation_peeking_inflates_errors_and_sequential_does_not():
    # Given 400 A/A tests, 14 days of 200 users per arm per day, conversion 10% everywhere.
    rng = np.random.default_rng(20240601)
    n_exp, days, per_day, rate, alpha = 400, 14, 200, 0.10, 0.05
    daily = rng.binomial(per_day, rate, size=(n_exp, days, 2))
    cum = daily.cumsum(axis=1)
    final_n = days * per_day

    once = naive = sequential = 0
    for e in range(n_exp):
        naive_hit = seq_hit = False
        for d in range(days):
            n = (d + 1) * per_day
            x_t, x_c = int(cum[e, d, 0]), int(cum[e, d, 1])
            p = stats.compare_proportions(x_t, n, x_c, n)["p_value"]
            naive_hit |= p < alpha
            if d == days - 1:
                once += p < alpha
            ps = stats.compare_proportions(x_t, n, x_c, n, sequential_tuning_n=2 * final_n)["p_value"]
            seq_hit |= ps < alpha
        naive += naive_hit
        sequential += seq_hit

    # Then: one look holds alpha, daily naive looks inflate it, daily sequential looks do not.
    assert 0.025 <= once / n_exp <= 0.08
    assert naive / n_exp > 0.10
    assert sequential / n_exp <= alpha
