"""experiments/analysis.py: the report from hand-made sums (no database)."""

import numpy as np
import pytest

from experiments import analysis
from experiments.kinds import BINARY, CONTINUOUS
from experiments.retention import retention_section
from experiments.stats.means import Moments
from experiments.analysis import ArmData, ArmSpec, Design, MetricSpec

from .report_schema import assert_report_schema

ARMS = [ArmSpec("control", 1, True), ArmSpec("treatment", 1, False)]
METRICS = [MetricSpec("conversion", BINARY.name, True), MetricSpec("revenue", CONTINUOUS.name, False)]


def arm(n, conversions, revenue=0.0, revenue_sq=0.0):
    # The kinds' aggregates: binary (units, converters), continuous (units, mean, sample variance).
    m = Moments.from_sums(n, revenue, revenue_sq)
    return ArmData(n, {"conversion": (n, conversions), "revenue": (m.n, m.mean, m.var)})


def design(**kwargs):
    return Design(name="test", arms=kwargs.pop("arms", ARMS), metrics=kwargs.pop("metrics", METRICS), **kwargs)


def test_report_has_every_key_of_the_contract():
    body = analysis.analyze(design(), {"control": arm(10_000, 500, 5000, 90_000),
                                       "treatment": arm(10_000, 600, 6000, 110_000)})
    assert_report_schema(body)
    assert body["units"] == 20_000 and body["mode"] == "fixed"


def test_significant_result_is_stated_with_rates_points_and_interval():
    body = analysis.analyze(design(), {"control": arm(10_000, 500), "treatment": arm(10_000, 700)})
    assert body["verdict"].startswith("treatment raised conversion from 5.00% to 7.00% (+2.00 points, 95% CI +")
    assert "significant" in body["verdict"]


def test_several_arms_mention_holm_in_the_verdict():
    arms = ARMS + [ArmSpec("other", 1, False)]
    body = analysis.analyze(design(arms=arms), {"control": arm(10_000, 500), "treatment": arm(10_000, 700),
                                                "other": arm(10_000, 690)})
    assert body["verdict"].count("significant after Holm correction") == 2
    assert all(c["p_adjusted"] is not None for c in body["metrics"][0]["comparisons"])


def test_failed_srm_makes_the_verdict_say_results_are_not_trustworthy():
    body = analysis.analyze(design(), {"control": arm(5000, 250), "treatment": arm(5400, 400)})
    assert body["srm"]["status"] == "fail"
    assert body["verdict"].startswith("Results are not trustworthy: SAMPLE RATIO MISMATCH")


def test_a_small_test_is_called_underpowered_not_a_null_result():
    body = analysis.analyze(design(), {"control": arm(300, 15), "treatment": arm(300, 17)})
    assert body["power"]["underpowered"] is True
    assert "not enough data: underpowered to detect a +10% relative change in conversion" in body["verdict"]
    row = body["power"]["comparisons"][0]
    assert 0 < row["power"] < 0.8 and row["mde_absolute"] > 0


def test_a_planned_absolute_effect_drives_the_power_section():
    body = analysis.analyze(design(mde=0.02, mde_relative=False),
                            {"control": arm(10_000, 500), "treatment": arm(10_000, 510)})
    assert body["power"]["effect_of_interest"] == {"value": 0.02, "relative": False, "source": "planned",
                                                   "text": "+2.00 points"}
    assert body["power"]["underpowered"] is False
    assert "made no significant difference" in body["verdict"]


def test_sequential_mode_uses_always_valid_intervals_and_says_so():
    arms = {"control": arm(10_000, 500), "treatment": arm(10_000, 700)}
    fixed = analysis.analyze(design(), arms)
    sequential = analysis.analyze(design(mode="sequential"), arms)
    comp_f, comp_s = fixed["metrics"][0]["comparisons"][0], sequential["metrics"][0]["comparisons"][0]
    assert sequential["mode"] == "sequential" and comp_s["test"] == "msprt_normal_mixture"
    assert comp_s["diff_ci"][1] - comp_s["diff_ci"][0] > comp_f["diff_ci"][1] - comp_f["diff_ci"][0]
    assert "always-valid" in sequential["verdict"] and "always-valid" in sequential["methods"][BINARY.name]


def test_an_arm_without_units_gives_no_comparison_and_stays_json_safe():
    body = analysis.analyze(design(), {"control": arm(100, 5)})
    assert_report_schema(body)
    assert body["metrics"][0]["comparisons"] == []
    assert "No comparison possible yet" in body["verdict"]


def test_breakdown_states_the_multiple_comparison_caveat_and_adjusts_across_segments():
    groups = {"web": {"control": arm(5000, 250), "treatment": arm(5000, 350)},
              "phone": {"control": arm(5000, 250), "treatment": arm(5000, 260)}}
    section = analysis.breakdown(design(), "channel", groups)
    assert section["comparisons"] == 2
    assert "by chance" in section["caveat"] and "exploratory" in section["caveat"]
    comps = [s["metrics"][0]["comparisons"][0] for s in section["segments"]]
    assert all(c["p_adjusted_across_segments"] >= c["p_value"] for c in comps)


def test_breakdown_by_an_attribute_with_too_many_values_is_refused():
    groups = {str(i): {"control": arm(10, 1), "treatment": arm(10, 1)} for i in range(analysis.MAX_SEGMENTS + 1)}
    with pytest.raises(ValueError, match="categorical"):
        analysis.breakdown(design(), "history", groups)


def test_retention_reports_the_share_that_returned_among_units_observed_n_days():
    arm_index = np.array([0] * 4 + [1] * 4)  # positions in design().arms
    durations = np.array([1.0, 3.0, 9.0, 2.0, 1.0, 2.0, 5.0, 9.0])
    events = np.array([1, 1, 0, 0, 1, 1, 1, 0])
    observed = np.array([9.0, 9.0, 9.0, 2.0, 9.0, 9.0, 9.0, 9.0])  # one control unit seen only 2 days

    section = retention_section(design(), arm_index, durations, events, observed, days=[7], event="order")

    day7 = {r["arm"]: r for r in section["day_n"][0]["arms"]}
    assert (day7["control"]["n"], day7["control"]["returned"], day7["control"]["excluded"]) == (3, 2, 1)
    assert day7["treatment"]["rate"] == pytest.approx(0.75)
    assert section["logrank"]["p_value"] is not None
    assert section["hazard_ratios"][0]["arm"] == "treatment"
