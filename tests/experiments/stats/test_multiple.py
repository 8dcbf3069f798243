"""experiments/stats/multiple.py: Holm, against numbers computed independently of it.

Reference values come from published cases, from the Hillstrom e-mail dataset in
../shared/datasets, from scipy where it is an independent implementation, and from
formulas written out from first principles."""

from __future__ import annotations

import pytest

from experiments.stats import multiple


def test_holm_matches_hand_computed_example():
    # Sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06.
    assert multiple.adjust_pvalues([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert multiple.adjust_pvalues([0.01, None, 0.04]) == pytest.approx([0.02, None, 0.04])
