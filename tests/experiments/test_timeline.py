import numpy as np
import pytest

from experiments.timeline import cumulative_difference


def test_each_day_counts_only_units_observed_that_long():
    arms = np.array(["c", "c", "c", "c", "t", "t", "t", "t"])
    # days to first conversion (or to now when not converted)
    durations = np.array([1.0, 5.0, 2.0, 2.0, 0.5, 1.5, 3.0, 1.0])
    events = np.array([1, 1, 0, 0, 1, 1, 1, 0])
    observed = np.array([10, 10, 2, 2, 10, 10, 10, 1])
    (series,) = cumulative_difference(arms, durations, events, observed, control="c", days=[1, 2, 7])
    assert series["arm"] == "t" and series["day"] == [1, 2, 7]
    # day 1: all 8 watched; control 1/4, treatment 1/4 (the unit at 1.0 never converted)
    assert series["diff"][0] == pytest.approx(0.0)
    # day 2: the unit observed 1 day drops out: treatment 2/3, control 1/4
    assert series["diff"][1] == pytest.approx(2 / 3 - 1 / 4)
    # day 7: only units observed 7+ days: treatment 3/3, control 2/2
    assert series["diff"][2] == pytest.approx(0.0)
    assert series["lo"][1] < series["diff"][1] < series["hi"][1]


def test_weighted_rows_count_as_that_many_units():
    # Grouped rows as the report passes them: (arm, days, returned, observed) with a count.
    arms = np.array(["c", "c", "t", "t"])
    durations = np.array([1.0, 10.0, 1.0, 10.0])
    events = np.array([1, 0, 1, 0])
    observed = np.array([10, 10, 10, 10])
    weights = np.array([30, 70, 45, 55])
    (series,) = cumulative_difference(arms, durations, events, observed, control="c", days=[1], weights=weights)
    # 45 of 100 against 30 of 100, with the unpooled Wald interval written out.
    diff = 0.45 - 0.30
    se = (0.45 * 0.55 / 100 + 0.30 * 0.70 / 100) ** 0.5
    assert series["diff"][0] == pytest.approx(diff)
    assert series["lo"][0] == pytest.approx(diff - 1.959963984540054 * se, rel=1e-6)
