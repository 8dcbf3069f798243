"""experiments/stats/retention.py: retention and survival, against numbers computed independently of it.

Reference values come from published cases, from the Hillstrom e-mail dataset in
../shared/datasets, from scipy where it is an independent implementation, and from
formulas written out from first principles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.stats import retention

from .reference import json_safe, Z975


def test_day_n_retention_counts_only_units_observed_n_days():
    # unit: churn/censor day, churned?, days observed
    durations = [1, 2, 2, 3, 4, 5]
    events = [1, 1, 0, 1, 0, 1]
    observed = [7, 7, 7, 2, 7, 7]
    # Day 3: units 0,1 churned; 2 censored at day 2 (unknown); 3 observed only 2 days;
    # 4 (censored at 4) and 5 (churned at 5) were active after day 3 -> 2 of 4.
    result = retention.day_n_retention(durations, events, observed, 3)
    assert (result["n"], result["retained"], result["rate"], result["excluded"]) == (4, 2, 0.5, 2)


def test_kaplan_meier_matches_hand_computed_curve_and_log_log_interval():
    durations = [1, 2, 2, 3, 4, 5]
    events = [1, 1, 0, 1, 0, 1]
    # At risk / events: t=1 6/1, t=2 5/1 (the censoring at 2 counts as at risk), t=3 3/1, t=5 1/1.
    s = [5 / 6, 5 / 6 * 4 / 5, 5 / 6 * 4 / 5 * 2 / 3, 0.0]
    greenwood = np.cumsum([1 / (6 * 5), 1 / (5 * 4), 1 / (3 * 2)])

    km = retention.kaplan_meier(durations, events)

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
    km = retention.kaplan_meier(rng.exponential(1, 5000), np.ones(5000), max_points=200)
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

    result = retention.logrank_test(times, events, group)

    assert result["chi2"] == pytest.approx(chi2)
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(chi2 / 2)))


def test_logrank_tiny_p_value_is_displayed_as_below_0_0001():
    early = np.linspace(1, 10, 300)
    late = np.linspace(100, 200, 300)
    result = retention.logrank_test(np.r_[early, late], np.ones(600), np.r_[np.zeros(300), np.ones(300)])
    # The chi-square tail itself (statsmodels' survdiff took 1 - cdf, which rounds it to 0).
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(result["chi2"] / 2)), rel=1e-9)
    assert result["p_value"] < 1e-100
    # DESIGN.md: p-values read "< 0.0001" below that, an underflow to 0 included.
    assert result["p_value_display"] == "< 0.0001"
    from core import formatting
    assert formatting.p_value(0.0) == "< 0.0001"


def test_hazard_ratio_recovers_planted_ratio():
    rng = np.random.default_rng(11)
    n = 2000
    control = rng.exponential(1.0, n)
    treated = rng.exponential(0.5, n)  # twice the hazard
    times = np.round(np.r_[control, treated], 2)  # ties, so Efron matters
    horizon = 2.0
    events = (times < horizon).astype(int)
    times = np.minimum(times, horizon)

    result = retention.hazard_ratio(times, events, np.r_[np.zeros(n), np.ones(n)])

    assert result["hazard_ratio"] == pytest.approx(2.0, rel=0.1)
    assert result["ci"][0] < 2.0 < result["ci"][1]


@pytest.mark.parametrize("seed, decimals", [(3, 2), (4, 0), (5, 1)])
def test_hazard_ratio_matches_statsmodels_phreg_unit_by_unit(seed, decimals):
    from statsmodels.duration.hazard_regression import PHReg

    rng = np.random.default_rng(seed)
    n = 1500
    treated = (rng.random(n) < 0.4).astype(int)
    times = rng.exponential(np.where(treated == 1, 0.7, 1.0)) * 10
    times = np.round(times, decimals)  # heavy ties at 0 decimals: Efron's correction matters
    horizon = 15.0
    events = (times < horizon).astype(int)
    times = np.minimum(times, horizon)

    result = retention.hazard_ratio(times, events, treated)

    fit = PHReg(times, treated.reshape(-1, 1).astype(float), status=events.astype(float), ties="efron").fit()
    assert result["hazard_ratio"] == pytest.approx(np.exp(fit.params[0]), rel=1e-8)
    assert result["p_value"] == pytest.approx(fit.pvalues[0], rel=1e-6)
    assert result["ci"] == pytest.approx(list(np.exp(fit.conf_int()[0])), rel=1e-8)


def test_hazard_ratio_with_every_return_in_one_arm_does_not_converge():
    times = np.r_[np.full(50, 3.0), np.full(50, 10.0)]
    events = np.r_[np.ones(50), np.zeros(50)]
    with pytest.raises(ValueError, match="did not converge"):
        retention.hazard_ratio(times, events, np.r_[np.ones(50), np.zeros(50)])


def _grouped(*columns):
    """Distinct rows of the columns and how many units each stands for: what the report's
    grouped survival query hands the statistics."""
    rows, counts = np.unique(np.column_stack(columns), axis=0, return_counts=True)
    return [rows[:, i] for i in range(rows.shape[1])], counts


def _units(seed, n=4000, arms=2):
    """Hour-rounded times with heavy ties, late censoring and an arm effect."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, arms, n)
    times = np.ceil(rng.exponential(np.where(group == 1, 20.0, 28.0)) * 24) / 24
    horizon = np.floor(rng.uniform(5, 40, n) * 24) / 24  # units exposed at different times
    events = (times <= horizon).astype(int)
    times = np.minimum(times, horizon)
    observed = np.floor(horizon)
    return times, events, group, observed


@pytest.mark.parametrize("seed", [1, 2])
def test_grouped_kaplan_meier_matches_statsmodels_unit_by_unit(seed):
    from statsmodels.duration.survfunc import SurvfuncRight

    times, events, group, _ = _units(seed)
    (t, e), w = _grouped(times, events)
    assert w.max() > 1 and w.size < times.size / 2  # really grouped

    km = retention.kaplan_meier(t, e, weights=w, max_points=10_000)

    sf = SurvfuncRight(times, events)
    assert km["time"] == pytest.approx(list(sf.surv_times), rel=1e-12)
    assert km["survival"] == pytest.approx(list(sf.surv_prob), rel=1e-9)
    inside = (sf.surv_prob > 0) & (sf.surv_prob < 1)
    s, se = sf.surv_prob[inside], sf.surv_prob_se[inside]
    sd = se / (s * np.abs(np.log(s)))
    assert np.array(km["lo"])[inside] == pytest.approx(s ** np.exp(Z975 * sd), rel=1e-7)
    assert np.array(km["hi"])[inside] == pytest.approx(s ** np.exp(-Z975 * sd), rel=1e-7)
    assert (km["n"], km["events"]) == (times.size, int(events.sum()))


@pytest.mark.parametrize("arms", [2, 3])
def test_grouped_logrank_matches_statsmodels_survdiff_unit_by_unit(arms):
    from scipy import stats as sps
    from statsmodels.duration.survfunc import survdiff

    times, events, group, _ = _units(7, arms=arms)
    (t, e, g), w = _grouped(times, events, group)

    result = retention.logrank_test(t, e, g, weights=w)

    chi2, _ = survdiff(times, events, group)
    assert result["chi2"] == pytest.approx(chi2, rel=1e-9)
    assert result["p_value"] == pytest.approx(sps.chi2.sf(chi2, arms - 1), rel=1e-9)


def test_grouped_hazard_ratio_matches_statsmodels_phreg_unit_by_unit():
    from statsmodels.duration.hazard_regression import PHReg

    times, events, group, _ = _units(9)
    days = np.where(events == 1, np.ceil(times), np.floor(times))  # whole days, as the report fits
    (t, e, g), w = _grouped(days, events, group)

    result = retention.hazard_ratio(t, e, g, weights=w)

    fit = PHReg(days, group.reshape(-1, 1).astype(float), status=events.astype(float), ties="efron").fit()
    assert result["hazard_ratio"] == pytest.approx(np.exp(fit.params[0]), rel=1e-8)
    assert result["p_value"] == pytest.approx(fit.pvalues[0], rel=1e-6)
    assert result["ci"] == pytest.approx(list(np.exp(fit.conf_int()[0])), rel=1e-8)


def test_grouped_day_n_retention_counts_units_as_by_hand():
    times, events, group, observed = _units(5)
    (t, e, o), w = _grouped(times, events, observed)
    for day in (7, 14, 30):
        result = retention.day_n_retention(t, e, o, day, weights=w)
        # By hand over the units: observed for `day` days, and known to have returned by then or not.
        seen = observed >= day
        returned = seen & (events == 1) & (times <= day)
        retained = seen & ((times > day) | ((events == 0) & (times >= day)))
        assert (result["n"], result["retained"]) == (int((returned | retained).sum()), int(retained.sum()))
        assert result["excluded"] == times.size - result["n"]
