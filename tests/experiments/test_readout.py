"""experiments/readout.py: states, readiness, interval bars and power in words."""

from datetime import datetime, timezone

from experiments import analysis, readout
from experiments.analysis import ArmData, ArmSpec, Design, MetricSpec
from experiments.kinds import BINARY

DESIGN = Design(name="t", arms=[ArmSpec("control", 1, True), ArmSpec("treatment", 5, False)],
                metrics=[MetricSpec("conversion", BINARY.name, True)])


def body(x_c=6, n_c=400, x_t=101, n_t=2000, **kwargs):
    return analysis.analyze(DESIGN, {"control": ArmData(n_c, {"conversion": (n_c, x_c)}),
                                     "treatment": ArmData(n_t, {"conversion": (n_t, x_t)})}, **kwargs)


def test_a_significant_lift_reads_in_points_and_percent_without_contradicting_its_rates():
    b = body()
    row = readout.comparison_rows(b["metrics"][0], b, None)[0]
    assert (row["control_value"], row["arm_value"], row["diff"], row["lift"]) == ("1.50%", "5.05%", "+3.55 points", "+236.7%")
    assert row["state"] == readout.SIGNIFICANT and row["method"] == "two-proportion z-test"
    assert "<svg" in row["bar"] and "+236.7%" in row["bar"]
    assert readout.headline(b)["text"].startswith("treatment raised conversion from 1.50% to 5.05%")


def test_no_difference_is_not_significant_and_no_variance_is_not_testable():
    b = body(x_c=20, x_t=100)
    assert readout.comparison_rows(b["metrics"][0], b, None)[0]["state"] == readout.NOT_SIGNIFICANT
    b = body(x_c=0, x_t=0)
    assert readout.comparison_rows(b["metrics"][0], b, None)[0]["state"] == readout.NOT_TESTABLE


def test_open_windows_are_too_early_until_the_date_then_judged():
    b = body(open_windows=2400, ready_at="2026-12-09T03:30:00+00:00")
    early = readout.readiness(b, datetime(2026, 12, 2, tzinfo=timezone.utc))
    assert early["ready_at"] == datetime(2026, 12, 9, 3, 30, tzinfo=timezone.utc)
    assert readout.comparison_rows(b["metrics"][0], b, early)[0]["state"] == readout.TOO_EARLY
    assert readout.headline(b, datetime(2026, 12, 10, tzinfo=timezone.utc))["state"] == readout.SIGNIFICANT


def test_a_planned_effect_the_arms_are_too_small_for_is_too_early_with_the_sizes_needed():
    design = Design(name="t", arms=DESIGN.arms, metrics=DESIGN.metrics, mde=0.1, mde_relative=True)
    b = analysis.analyze(design, {"control": ArmData(400, {"conversion": (400, 20)}),
                                  "treatment": ArmData(2000, {"conversion": (2000, 105)})})
    early = readout.readiness(b)
    assert early is not None and "the plan needs about" in early["text"]
    n_c, n_t = readout.planned_sizes(b)["treatment"]
    assert n_c > 400 * 10 and abs(n_t - 5 * n_c) <= 5  # a +10% change on 5% needs tens of thousands, split 1:5


def test_power_reads_as_a_chance_in_words():
    sentences = readout.power_sentences(body())
    assert sentences and "this test had little chance (" in sentences[0]
    assert "detects changes of about" in sentences[0]
