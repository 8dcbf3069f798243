"""A/A simulation: 2,000 experiments with no effect. The frequentist test's "p < alpha" and the
Bayesian "chance to win >= 95%" rule must each fire at their stated rate (5%) within sampling
error. Data are drawn and summarised with numpy in one go; the report's own functions then
read each experiment's sufficient statistics."""

import math

import numpy as np
import pytest

from experiments.stats import means, proportions
from experiments.stats.bayes import CHANCE_TO_WIN_BAR

EXPERIMENTS = 2_000
UNITS = 400  # per arm
STATED = 0.05
# Three binomial standard errors of a 5% rate over 2,000 runs: about +-1.5 points.
TOLERANCE = 3 * math.sqrt(STATED * (1 - STATED) / EXPERIMENTS)


def rates(comparisons):
    significant = np.mean([c["p_value"] < STATED for c in comparisons])
    wins = np.mean([c["chance_to_win"] >= CHANCE_TO_WIN_BAR for c in comparisons])
    return significant, wins


def test_aa_continuous_keeps_both_false_positive_rates():
    rng = np.random.default_rng(20)
    data = rng.lognormal(3, 1, size=(EXPERIMENTS, 2, UNITS))  # skewed, like revenue
    mean, var = data.mean(axis=2), data.var(axis=2, ddof=1)
    comparisons = [
        means.compare_means(means.Moments(UNITS, mean[i, 1], var[i, 1]), means.Moments(UNITS, mean[i, 0], var[i, 0]))
        for i in range(EXPERIMENTS)
    ]
    significant, wins = rates(comparisons)
    assert significant == pytest.approx(STATED, abs=TOLERANCE)
    assert wins == pytest.approx(STATED, abs=TOLERANCE)


def test_aa_binary_keeps_both_false_positive_rates():
    rng = np.random.default_rng(21)
    converted = rng.binomial(UNITS * 5, 0.1, size=(EXPERIMENTS, 2))
    comparisons = [proportions.compare_proportions(int(t), UNITS * 5, int(c), UNITS * 5) for c, t in converted]
    significant, wins = rates(comparisons)
    assert significant == pytest.approx(STATED, abs=TOLERANCE)
    assert wins == pytest.approx(STATED, abs=TOLERANCE)
