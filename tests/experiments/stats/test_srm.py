"""experiments/stats/srm.py: sample ratio mismatch, against numbers computed independently of it.

Reference values come from published cases, from the Hillstrom e-mail dataset in
../shared/datasets, from scipy where it is an independent implementation, and from
formulas written out from first principles."""

from __future__ import annotations

import math

import pytest

from experiments.stats import srm


def test_srm_fails_on_5000_vs_5400_for_a_50_50_plan():
    result = srm.srm_check([5000, 5400], [0.5, 0.5])
    # By hand: expected 5200 each, chi2 = 2 * 200^2 / 5200; 1-df chi-square tail = erfc(sqrt(chi2/2)).
    chi2 = 2 * 200**2 / 5200
    assert result["chi2"] == pytest.approx(chi2)
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(chi2 / 2)))
    assert result["status"] == "fail"
    assert result["expected"] == [5200.0, 5200.0]


def test_srm_ok_on_5000_vs_5030():
    assert srm.srm_check([5000, 5030], [1, 1])["status"] == "ok"


def test_srm_warns_between_the_thresholds():
    # chi2 = 4 * 150^2 / 10000 = 9.0 -> p ~ 0.0027
    result = srm.srm_check([4850, 5150], [1, 1])
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(9.0 / 2)))
    assert result["status"] == "warning"
