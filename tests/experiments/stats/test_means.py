"""experiments/stats/means.py: Welch's t-test and the continuous metric,
against numbers computed independently of it.

Reference values come from published cases, from the Hillstrom e-mail dataset in
../shared/datasets, from scipy where it is an independent implementation, and from
formulas written out from first principles."""

from __future__ import annotations

import pytest
from scipy import stats as sps

from experiments.stats import means

from .reference import json_safe


def test_welch_matches_growthbook_published_fixture():
    # GrowthBook's fixture, as (n, sum, sum of squares); means 0.70 and 0.41.
    treatment = means.Moments.from_sums(3461, 2422.7, 134698.29)
    control = means.Moments.from_sums(3407, 1396.87, 52377.9767)
    assert treatment.mean == pytest.approx(0.70, abs=1e-9)
    assert control.mean == pytest.approx(0.41, abs=1e-9)

    result = means.compare_means(treatment, control)

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

    from_arrays = means.compare_means(means.Moments.from_array(t), means.Moments.from_array(c))
    from_sums = means.compare_means(
        means.Moments.from_sums(t.size, t.sum(), (t**2).sum()),
        means.Moments.from_sums(c.size, c.sum(), (c**2).sum()),
    )

    for result in (from_arrays, from_sums):
        assert result["diff"] == pytest.approx(t.mean() - c.mean(), rel=1e-9)
        assert result["p_value"] == pytest.approx(ref.pvalue, rel=1e-6)
        assert result["df"] == pytest.approx(ref.df, rel=1e-6)
        assert result["diff_ci"] == pytest.approx([ref_ci.low, ref_ci.high], rel=1e-6)


def test_analyze_continuous_same_from_sufficient_statistics_as_from_arrays(hillstrom):
    arrays = {seg: g["spend"].to_numpy(float) for seg, g in hillstrom.items()}
    sums = {seg: means.Moments.from_sums(a.size, a.sum(), (a**2).sum()) for seg, a in arrays.items()}

    a = means.analyze_means("spend", arrays, "No E-Mail", primary=True)
    b = means.analyze_means("spend", sums, "No E-Mail", primary=True)

    for ca, cb in zip(a["comparisons"], b["comparisons"]):
        assert ca["p_value"] == pytest.approx(cb["p_value"], rel=1e-6)
        assert ca["diff_ci"] == pytest.approx(cb["diff_ci"], rel=1e-6)
    json_safe(a)
