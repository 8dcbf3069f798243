"""experiments/stats/quantile.py: median and p90 with order-statistic standard errors,
against a bootstrap computed here and against the distribution-free interval's coverage."""

import numpy as np
import pytest

from experiments.stats.quantile import analyze_quantiles, quantile_estimate


@pytest.mark.parametrize("q", [0.5, 0.9])
def test_standard_error_matches_a_bootstrap(q):
    rng = np.random.default_rng(30)
    x = rng.lognormal(3, 1, 2000)  # skewed, like revenue
    estimate, se, _ = quantile_estimate(x, q)
    boot = np.quantile(rng.choice(x, (1000, x.size)), q, axis=1)
    assert estimate == pytest.approx(np.quantile(x, q))
    assert se == pytest.approx(boot.std(ddof=1), rel=0.15)


def test_interval_covers_the_true_median_about_95_percent():
    rng = np.random.default_rng(31)
    true = np.exp(3.0)  # the lognormal(3, 1) median
    samples = rng.lognormal(3, 1, (1000, 301))
    covered = [lo <= true <= hi for lo, hi in (quantile_estimate(s, 0.5)[2] for s in samples)]
    assert np.mean(covered) == pytest.approx(0.95, abs=0.025)


def test_aa_median_difference_keeps_its_false_positive_rate():
    rng = np.random.default_rng(32)
    data = rng.lognormal(3, 1, (1000, 2, 300))
    p = [analyze_quantiles("m", {"A": d[0], "B": d[1]}, "A", q=0.5)["comparisons"][0]["p_value"] for d in data]
    assert np.mean(np.array(p) < 0.05) == pytest.approx(0.05, abs=3 * np.sqrt(0.05 * 0.95 / 1000))
