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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holm_matches_statsmodels_multipletests(seed):
    # Written out in numpy (statsmodels' Holm runs gc.collect() per call); statsmodels is the reference.
    import numpy as np
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(seed)
    pvals = np.r_[rng.random(12) ** 3, [0.2, 0.2, 1.0, 0.0]]  # ties, a 1 and a 0 included
    expected = multipletests(pvals, method="holm")[1]
    assert multiple.adjust_pvalues(list(pvals)) == pytest.approx(list(expected), rel=1e-12, abs=0)
