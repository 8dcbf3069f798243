"""experiments/stats/bayes.py against GrowthBook's own published cases
(growthbook/growthbook packages/stats/tests/bayesian/test_tests.py: TestBinom, TestNorm,
their expected numbers rounded to 5 decimals there) and against a Monte Carlo computation."""

import numpy as np
import pytest

from experiments.stats import means, proportions
from experiments.stats.bayes import GaussianPrior, bayes_compare, risk

ROUND = 5e-5  # GrowthBook's fixtures are rounded to five decimals


def gb_mean(total, total_sq, n):
    # GrowthBook's SampleMeanStatistic: mean, and the variance of the mean (ddof=1).
    m = means.Moments.from_sums(n, total, total_sq)
    return m.mean, m.var / n


def test_growthbook_binomial_case():
    # TestBinom.test_bayesian_binomial_ab_test: 49/100 (a, control) against 51/100 (b).
    result = proportions.compare_proportions(51, 100, 49, 100)
    assert result["posterior_mean"] == pytest.approx(0.04082, abs=ROUND)
    assert result["posterior_sd"] == pytest.approx(0.14725, abs=ROUND)
    assert result["credible_interval"] == [pytest.approx(-0.24779, abs=ROUND), pytest.approx(0.32943, abs=ROUND)]
    assert result["chance_to_win"] == pytest.approx(0.60918, abs=ROUND)
    assert result["expected_loss_control"] == pytest.approx(0.0814, abs=ROUND)
    assert result["expected_loss"] == pytest.approx(0.04058, abs=ROUND)


def test_growthbook_gaussian_case_flat_prior():
    # TestNorm.test_bayesian_gaussian_ab_test: a = (100, 1002.25, 10), b = (105, 1111.5, 10).
    result = bayes_compare(*gb_mean(105, 1111.5, 10), *gb_mean(100, 1002.25, 10))
    assert result["posterior_mean"] == pytest.approx(0.05, abs=ROUND)
    assert result["posterior_sd"] == pytest.approx(0.03572, abs=ROUND)
    assert result["credible_interval"] == [pytest.approx(-0.02, abs=ROUND), pytest.approx(0.12, abs=ROUND)]
    assert result["chance_to_win"] == pytest.approx(0.91923, abs=ROUND)
    assert [result["expected_loss_control"], result["expected_loss"]] == [
        pytest.approx(0.05131, abs=ROUND), pytest.approx(0.00131, abs=ROUND)]


def test_growthbook_gaussian_case_informative_prior():
    # TestNorm.test_bayesian_gaussian_ab_test_informative: prior N(0.1, 0.1) on the relative effect.
    prior = GaussianPrior(mean=0.1, variance=0.1, proper=True)
    result = bayes_compare(*gb_mean(105, 1111.5, 10), *gb_mean(100, 1002.25, 10), prior=prior)
    assert result["posterior_mean"] == pytest.approx(0.05063, abs=ROUND)
    assert result["posterior_sd"] == pytest.approx(0.03549, abs=ROUND)
    assert result["credible_interval"] == [pytest.approx(-0.01893, abs=ROUND), pytest.approx(0.12019, abs=ROUND)]
    assert result["chance_to_win"] == pytest.approx(0.92315, abs=ROUND)
    assert [result["expected_loss_control"], result["expected_loss"]] == [
        pytest.approx(0.05186, abs=ROUND), pytest.approx(0.00123, abs=ROUND)]


def test_growthbook_missing_data_case_has_no_read():
    result = bayes_compare(0.0, 0.0, 0.0, 0.0)
    assert result["chance_to_win"] is None and result["credible_interval"] == [None, None]


def test_chance_to_win_and_loss_match_monte_carlo():
    # Draw the effect from its posterior and count: P(effect > 0), E[max(-effect, 0)].
    rng = np.random.default_rng(7)
    mean_t, var_t, mean_c, var_c = 10.4, 0.09, 10.0, 0.08
    result = bayes_compare(mean_t, var_t, mean_c, var_c)
    draws = rng.normal(result["posterior_mean"], result["posterior_sd"], 2_000_000)
    assert result["chance_to_win"] == pytest.approx((draws > 0).mean(), abs=2e-3)
    assert result["expected_loss"] == pytest.approx(np.maximum(-draws, 0).mean(), rel=2e-2)
    assert result["expected_loss_control"] == pytest.approx(np.maximum(draws, 0).mean(), rel=1e-2)
    lo, hi = np.quantile(draws, [0.025, 0.975])
    assert result["credible_interval"] == [pytest.approx(lo, abs=2e-3), pytest.approx(hi, abs=2e-3)]
    # The relative effect's posterior itself against simulated arm means (flat prior: the
    # delta method's normal approximation of mean_t / mean_c - 1).
    ratio = rng.normal(mean_t, np.sqrt(var_t), 2_000_000) / rng.normal(mean_c, np.sqrt(var_c), 2_000_000) - 1
    assert result["chance_to_win"] == pytest.approx((ratio > 0).mean(), abs=5e-3)


def test_risk_far_in_the_tail_is_the_mean():
    assert risk(5.0, 0.01) == (5.0, 0.0)
