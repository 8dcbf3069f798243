"""experiments/stats/ratio.py: the delta method over units, against numpy and simulation."""

import numpy as np
import pytest
from scipy import stats as sps

from experiments.stats.ratio import RatioMoments, analyze_ratios, compare_ratios


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
