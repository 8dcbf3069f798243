"""experiments/stats/sequential.py: the always-valid sequential test,
against numbers computed independently of it.

Reference values come from published cases, from the Hillstrom e-mail dataset in
../shared/datasets, from scipy where it is an independent implementation, and from
formulas written out from first principles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.stats import proportions, sequential

from .reference import Z975


def test_sequential_interval_matches_howard_closed_form():
    # Howard et al. (2021) normal mixture with rho tuned for N units, sd 1:
    # half-width = sqrt(2 (N rho^2 + 1) / (N^2 rho^2) * log(sqrt(N rho^2 + 1) / alpha)).
    alpha, n = 0.05, 1000
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / n
    half = math.sqrt(2 * (n * rho2 + 1) / (n**2 * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha))

    variance = 1 / n
    result = sequential.sequential_interval(0.05, variance, tau2=sequential.msprt_tau2(variance, n, n, alpha))

    assert result["ci"] == pytest.approx([0.05 - half, 0.05 + half])
    assert half > Z975 * math.sqrt(variance)  # wider than the fixed-horizon interval


@pytest.mark.parametrize("estimate", [0.0, 0.05, 0.09, 0.11, 0.2, -0.15])
def test_sequential_p_value_below_alpha_exactly_when_interval_excludes_zero(estimate):
    result = sequential.sequential_interval(estimate, 0.001, tau2=0.01)
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
            p = proportions.compare_proportions(x_t, n, x_c, n)["p_value"]
            naive_hit |= p < alpha
            if d == days - 1:
                once += p < alpha
            ps = proportions.compare_proportions(x_t, n, x_c, n, sequential_tuning_n=2 * final_n)["p_value"]
            seq_hit |= ps < alpha
        naive += naive_hit
        sequential += seq_hit

    # Then: one look holds alpha, daily naive looks inflate it, daily sequential looks do not.
    assert 0.025 <= once / n_exp <= 0.08
    assert naive / n_exp > 0.10
    assert sequential / n_exp <= alpha
