"""experiments/presentation.py: the text report and the CSV of its tables."""

import csv
import io

from experiments import analysis, presentation
from experiments.analysis import ArmData, ArmSpec, Design, MetricSpec
from experiments.stats.means import Moments
from experiments.kinds import BINARY, CONTINUOUS

DESIGN = Design(name="t", arms=[ArmSpec("control", 1, True), ArmSpec("treatment", 1, False)],
                metrics=[MetricSpec("conversion", BINARY.name, True), MetricSpec("revenue", CONTINUOUS.name, False)])


def body(n_control=10_000, n_treatment=10_000):
    # The kinds' aggregates: binary (units, converters), continuous (units, mean, sample variance).
    control, treatment = Moments.from_sums(n_control, 5000, 90_000), Moments.from_sums(n_treatment, 6000, 110_000)
    arms = {"control": ArmData(n_control, {"conversion": (n_control, 500),
                                           "revenue": (control.n, control.mean, control.var)}),
            "treatment": ArmData(n_treatment, {"conversion": (n_treatment, 650),
                                               "revenue": (treatment.n, treatment.mean, treatment.var)})}
    return analysis.analyze(DESIGN, arms)


def test_a_failed_srm_check_opens_the_text_report_with_a_banner():
    text = presentation.report_text(body(5000, 5400))
    first_lines = text.splitlines()[:3]
    assert first_lines[0] == presentation.BANNER
    assert first_lines[1].startswith("!!! SRM CHECK FAILED")


def test_a_passed_srm_check_is_the_first_line_then_the_verdict():
    lines = presentation.report_text(body()).splitlines()
    assert lines[0].startswith("SRM ok")
    assert any(line.startswith("Verdict: treatment raised conversion") for line in lines)


def test_csv_has_one_row_per_metric_and_arm_with_the_comparison():
    buffer = io.StringIO()
    count = presentation.report_csv_write(body(), buffer)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert count == len(rows) == 4
    treated = next(r for r in rows if r["metric"] == "conversion" and r["arm"] == "treatment")
    assert treated["control_arm"] == "control" and float(treated["diff"]) == 0.015
    assert treated["significant"] == "True"
    assert list(rows[0]) == presentation.CSV_COLUMNS


def test_csv_cells_a_spreadsheet_would_run_are_escaped_arm_names_and_by_values_included():
    design = Design(name="t", arms=[ArmSpec("control", 1, True), ArmSpec("=cmd|' /C calc'!A0", 1, False)],
                    metrics=[MetricSpec("conversion", BINARY.name, True)])
    arms = {"control": ArmData(1000, {"conversion": (1000, 50)}),
            "=cmd|' /C calc'!A0": ArmData(1000, {"conversion": (1000, 60)})}
    report = analysis.analyze(design, arms)
    report["breakdown"] = {"by": "channel", "segments": [{"value": "@SUM(1+1)", "metrics": report["metrics"]}]}
    buffer = io.StringIO()
    presentation.report_csv_write(report, buffer)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert {r["arm"] for r in rows} == {"control", "'=cmd|' /C calc'!A0"}
    assert {r["segment"] for r in rows} == {"", "'@SUM(1+1)"}
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row.values())


def test_csv_keeps_its_columns_and_adds_the_bayesian_and_missing_ones_at_the_end():
    from experiments.presentation import CSV_COLUMNS

    assert CSV_COLUMNS[:23] == [
        "section", "segment", "metric", "kind", "primary", "arm", "control_arm", "is_control", "n", "mean",
        "ci_lo", "ci_hi", "diff", "diff_ci_lo", "diff_ci_hi", "lift", "lift_ci_lo", "lift_ci_hi",
        "p_value", "p_adjusted", "p_adjusted_across_segments", "test", "significant"]
    assert CSV_COLUMNS[23:] == ["missing", "testable", "chance_to_win", "expected_loss", "credible_lo", "credible_hi"]
    arms = {"control": ArmData(1000, {"conversion": (1000, 50)}), "treatment": ArmData(1000, {"conversion": (1000, 70)})}
    design = Design("t", [ArmSpec("control", 1, True), ArmSpec("treatment", 1, False)],
                    [MetricSpec("conversion", "binary", True)])
    body = analysis.analyze(design, arms)
    row = [r for r in presentation.report_csv_rows(body) if r["arm"] == "treatment"][0]
    assert 0 < row["chance_to_win"] < 1 and row["credible_lo"] < row["credible_hi"]
    assert "chance to beat control" in presentation.report_text(body)


def test_the_text_report_names_tests_plainly_and_states_each_comparison():
    text = presentation.report_text(body())
    assert "[two-proportion z-test]" in text and "two_proportion_ztest" not in text
    assert "[Welch's t-test]" in text
    assert "  SIGNIFICANT" in text
    assert "Power in words:" in text and "this test had" in text


def test_the_text_report_and_the_verdict_say_too_early_while_windows_are_open():
    from datetime import datetime, timezone

    arms = {"control": ArmData(100, {"conversion": (100, 0), "revenue": (100, 0.0, 0.0)}),
            "treatment": ArmData(100, {"conversion": (100, 0), "revenue": (100, 0.0, 0.0)})}
    early = analysis.analyze(DESIGN, arms, open_windows=200, ready_at="2026-12-09T03:30:00+00:00")
    assert early["verdict"].startswith("Too early to call: 200 of 200 units' attribution windows")
    assert "ready on 9 Dec 2026, 03:30 UTC" in early["verdict"]
    assert "no significant difference" not in early["verdict"]
    text = presentation.report_text(early, now=datetime(2026, 12, 2, tzinfo=timezone.utc))
    assert "  TOO EARLY" in text and "NOT TESTABLE" not in text
    later = presentation.report_text(early, now=datetime(2026, 12, 10, tzinfo=timezone.utc))
    assert "  NOT TESTABLE" in later  # 0% in both arms once the windows closed: nothing to test
