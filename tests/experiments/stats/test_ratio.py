"""experiments/stats/ratio.py: the delta method over units, against numpy and simulation."""

import numpy as np
import pytest
from scipy import stats as sps

from experiments.stats.ratio import RatioMoments, RatioUnits, analyze_ratios, analyze_ratios_cuped, compare_ratios


def moments(x, y):
    cov = np.cov(x, y, ddof=1)
    return RatioMoments(len(x), x.mean(), y.mean(), cov[0, 0], cov[1, 1], cov[0, 1])


def arm(rng, n, spend_per_visit):
    visits = rng.poisson(3, n) + 1
    spend = rng.gamma(2, spend_per_visit / 2, n) * visits
    return spend, visits.astype(float)


def delta_var(x, y):
    # Written out from the formula: Var(mx/my) ~ (vx/my² - 2 mx cxy/my³ + mx² vy/my⁴) / n.
    mx, my = x.mean(), y.mean()
    c = np.cov(x, y, ddof=1)
    return (c[0, 0] / my**2 - 2 * mx * c[0, 1] / my**3 + mx**2 * c[1, 1] / my**4) / len(x)


def test_ratio_comparison_matches_the_delta_method_by_hand():
    rng = np.random.default_rng(8)
    xt, yt = arm(rng, 3000, 11.0)
    xc, yc = arm(rng, 3000, 10.0)
    result = compare_ratios(moments(xt, yt), moments(xc, yc))
    rt, rc = xt.sum() / yt.sum(), xc.sum() / yc.sum()
    se = np.sqrt(delta_var(xt, yt) + delta_var(xc, yc))
    assert result["diff"] == pytest.approx(rt - rc)
    assert result["p_value"] == pytest.approx(2 * sps.norm.sf(abs(rt - rc) / se), rel=1e-9)
    z = sps.norm.ppf(0.975)
    assert result["diff_ci"] == [pytest.approx(rt - rc - z * se), pytest.approx(rt - rc + z * se)]
    assert 0 <= result["chance_to_win"] <= 1 and result["credible_interval"][0] < result["lift"]


def test_delta_method_variance_matches_simulation():
    # Rerun the same experiment many times: the spread of the ratio is what the delta method says.
    rng = np.random.default_rng(9)
    ratios, predicted = [], []
    for _ in range(400):
        x, y = arm(rng, 500, 10.0)
        ratios.append(x.sum() / y.sum())
        predicted.append(moments(x, y).var_ratio)
    assert np.var(ratios, ddof=1) == pytest.approx(np.mean(predicted), rel=0.15)


def test_zero_filled_ratio_moments_match_numpy():
    rng = np.random.default_rng(10)
    x, y = arm(rng, 300, 5.0)
    full_x, full_y = np.concatenate([x, np.zeros(200)]), np.concatenate([y, np.zeros(200)])
    merged = moments(x, y).with_zeros(500)
    expected = moments(full_x, full_y)
    assert merged.as_tuple() == pytest.approx(expected.as_tuple(), rel=1e-9)


def test_arm_rows_carry_ratio_and_parts():
    rng = np.random.default_rng(11)
    a, b = arm(rng, 100, 10.0), arm(rng, 100, 10.0)
    result = analyze_ratios("spend/visit", {"A": moments(*a), "B": moments(*b)}, "A", primary=True)
    row = result["arms"][0]
    assert row["mean"] == pytest.approx(a[0].sum() / a[1].sum())
    assert row["numerator_mean"] == pytest.approx(a[0].mean()) and row["denominator_mean"] == pytest.approx(a[1].mean())


# --------------------------------------------------------------------------- CUPED


def units_from_sums(n, sums, squares, products):
    """RatioUnits from GrowthBook's published sums (n - 1 denominators, as gbstats computes)."""
    s = np.array(sums)
    cov = np.diag([(q - t**2 / n) / (n - 1) for t, q in zip(s, squares)])
    for (i, j), p in products.items():
        cov[i, j] = cov[j, i] = (p - s[i] * s[j] / n) / (n - 1)
    return RatioUnits(n, s / n, cov)


def test_ratio_cuped_reproduces_growthbooks_published_case():
    # packages/stats/tests/frequentist/test_tests.py, test_two_sided_ttest_test_runs_ratio_ra
    # (growthbook/growthbook): relative effect -0.0007, sd 0.00391, CI (-0.00841, 0.00700),
    # p 0.85771 from a Welch t with the adjusted per-arm variances. Order of the sums:
    # m_post, d_post, m_pre, d_pre.
    a = units_from_sums(100, [485.112236689623, 679.9093275844917, 192.59138069991536, 290.1398399750233],
                        [2715.484666118136, 4939.424001640236, 460.076026390857, 920.9461385038898],
                        {(0, 2): 1113.6215759318352, (1, 3): 2130.9404074446747, (2, 3): 634.239482353647,
                         (0, 1): 3602.146836776702, (0, 3): 1559.2878434944676, (1, 2): 1460.3181079276983})
    b = units_from_sums(100, [514.7757826608777, 705.4090874383759, 206.94157227402536, 302.54389139107326],
                        [2994.897482705013, 5291.36604146392, 514.2903702246757, 994.4506208125663],
                        {(0, 2): 1237.0953021125997, (1, 3): 2292.081739775257, (2, 3): 698.4173425817908,
                         (0, 1): 3918.1561431600717, (0, 3): 1701.0287270040265, (1, 2): 1604.0759503266522})

    result = analyze_ratios_cuped("m", {"A": a, "B": b}, "A")

    comp = result["comparisons"][0]
    se = (comp["lift_ci"][1] - comp["lift_ci"][0]) / 2 / sps.norm.ppf(0.975)
    assert round(comp["lift"], 5) == -0.0007
    assert round(se, 5) == 0.00391
    # GrowthBook's interval and p-value use a Welch t on the same estimate and standard error.
    theta = result["cuped"]["theta"]
    va, vb = a.unit_var(theta), b.unit_var(theta)
    df = (va / 100 + vb / 100) ** 2 / ((va / 100) ** 2 / 99 + (vb / 100) ** 2 / 99)
    half = sps.t.ppf(0.975, df) * se
    assert (round(comp["lift"] - half, 5), round(comp["lift"] + half, 5)) == (-0.00841, 0.00700)
    assert round(2 * sps.t.sf(abs(comp["lift"]) / se, df), 5) == 0.85771


def ratio_units(rng, n, effect=0.0):
    """Visits and spend after the test, each tied to the same unit's before it."""
    habit = rng.gamma(2.0, 2.0, n)
    d_pre = rng.poisson(habit) + 1.0
    m_pre = d_pre * rng.gamma(5.0, 2.0, n)
    d_post = rng.poisson(habit) + 1.0
    m_post = d_post * (m_pre / d_pre) * rng.lognormal(effect, 0.1, n)
    return m_post, d_post, m_pre, d_pre


def test_ratio_cuped_matches_ols_on_the_linearised_unit_values():
    import statsmodels.formula.api as smf
    import pandas as pd

    rng = np.random.default_rng(21)
    data = {"control": ratio_units(rng, 4000), "treatment": ratio_units(rng, 4000, effect=0.05)}
    arms = {a: RatioUnits.from_arrays(*v) for a, v in data.items()}

    result = analyze_ratios_cuped("spend/visit", arms, "control")

    # Independently: each unit's linearised post and pre ratio (the delta method's influence
    # values), then OLS of post on pre with an arm effect. With equal arms, its slope is
    # GrowthBook's theta and the arm effect's residual variance the adjusted variance.
    frames = []
    for a, (mp, dp, mq, dq) in data.items():
        lin_post = (mp - mp.mean() / dp.mean() * dp) / dp.mean()
        lin_pre = (mq - mq.mean() / dq.mean() * dq) / dq.mean()
        frames.append(pd.DataFrame({"post": lin_post, "pre": lin_pre, "treated": int(a == "treatment")}))
    fit = smf.ols("post ~ treated + pre", data=pd.concat(frames)).fit()
    theta = fit.params["pre"]
    assert result["cuped"]["theta"] == pytest.approx(theta, rel=1e-9)
    ratio = {a: v[0].mean() / v[1].mean() for a, v in data.items()}
    pre = {a: v[2].mean() / v[3].mean() for a, v in data.items()}
    diff = (ratio["treatment"] - theta * pre["treatment"]) - (ratio["control"] - theta * pre["control"])
    se = np.sqrt(sum(np.var(f["post"] - theta * f["pre"], ddof=1) / len(f) for f in frames))
    comp = result["comparisons"][0]
    assert comp["diff"] == pytest.approx(diff, rel=1e-9)
    assert comp["p_value"] == pytest.approx(2 * sps.norm.sf(abs(diff) / se), rel=1e-6)
    assert comp["diff_ci"][1] - comp["diff_ci"][0] == pytest.approx(2 * sps.norm.ppf(0.975) * se, rel=1e-9)
    # The adjustment pays: the unadjusted delta-method standard error is larger.
    plain = compare_ratios(arms["treatment"].as_moments(), arms["control"].as_moments())
    assert plain["diff_ci"][1] - plain["diff_ci"][0] > 1.5 * (comp["diff_ci"][1] - comp["diff_ci"][0])
    assert result["cuped"]["variance_reduction"] > 0.5
    assert result["cuped"]["control_sd"] == pytest.approx(np.std(frames[0]["post"] - theta * frames[0]["pre"], ddof=1))


def test_ratio_cuped_without_a_pre_period_signal_is_the_plain_ratio():
    rng = np.random.default_rng(5)
    n = 500
    arms = {}
    for a in ("control", "treatment"):
        m, d, _, _ = ratio_units(rng, n)
        arms[a] = RatioUnits.from_arrays(m, d, np.zeros(n), np.ones(n))  # a constant pre-period ratio

    result = analyze_ratios_cuped("r", arms, "control")

    plain = analyze_ratios("r", {a: u.as_moments() for a, u in arms.items()}, "control")
    assert result["cuped"]["theta"] == 0.0 and "not adjusted" in result["cuped"]["note"]
    assert result["comparisons"][0]["p_value"] == pytest.approx(plain["comparisons"][0]["p_value"])
