"""Issue 12's six edges, end to end (import, SQL, analysis), each against a value computed
here with numpy, scipy or statsmodels, never pasted from the report."""

import csv
import math

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from scipy import stats as sps
from statsmodels.stats.power import TTestIndPower
from statsmodels.stats.proportion import confint_proportions_2indep

from experiments import reports
from experiments.importers import experiment_import
from experiments.models import Experiment
from experiments.stats import means, proportions

from .report_schema import assert_report_schema

pytestmark = pytest.mark.django_db


def write_units(tmp_path, columns: dict[str, list], name="units.csv"):
    path = tmp_path / name
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values()))
    return path


def imported_report(tmp_path, columns, metrics, **kwargs):
    path = write_units(tmp_path, columns)
    result = experiment_import(path, name="edge", arm_column="arm", control="A", metrics=metrics,
                               rejects_path=tmp_path / "rejects.csv", **kwargs)
    body = reports.report_build(Experiment.objects.get(name="edge"))
    assert_report_schema(body)
    return result, body


def test_large_mean_small_spread_matches_welch(tmp_path):
    # 1. Sums of squares near 1e21 cancel to nothing; the report must still find the 0.2 shift.
    rng = np.random.default_rng(12)
    a = 1e9 + rng.normal(0, 1, 1000)
    b = 1e9 + 0.2 + rng.normal(0, 1, 1000)
    _, body = imported_report(tmp_path, {"arm": ["A"] * 1000 + ["B"] * 1000,
                                         "v": [repr(float(x)) for x in np.concatenate([a, b])]}, ["v:continuous"])
    ref = sps.ttest_ind(b, a, equal_var=False)
    lo, hi = ref.confidence_interval(0.95)
    comp = body["metrics"][0]["comparisons"][0]
    assert comp["p_value"] == pytest.approx(ref.pvalue, rel=1e-3)
    assert comp["diff"] == pytest.approx(b.mean() - a.mean(), abs=1e-5)
    assert comp["diff_ci"] == [pytest.approx(lo, abs=1e-5), pytest.approx(hi, abs=1e-5)]
    assert comp["significant"] and comp["p_value"] < 1e-4


def test_zero_filled_moments_match_numpy():
    # Customer metrics aggregate only units with an order and add the rest as zeros.
    rng = np.random.default_rng(3)
    active = 1e8 + rng.normal(0, 1, 400)
    full = np.concatenate([active, np.zeros(600)])
    merged = means.Moments.from_array(active).with_zeros(1000)
    assert merged.mean == pytest.approx(full.mean(), rel=1e-12)
    assert merged.var == pytest.approx(full.var(ddof=1), rel=1e-9)


def test_non_finite_and_huge_values_are_rejected_rows_with_reasons(tmp_path):
    # 2. 1e309 is infinity, a 400-digit integer overflows float, 1e200 squared overflows.
    values = ["1", "2", "1e309", "9" * 400, "1e200", "-inf", "nan", "3", "4", "5"]
    arms = ["A", "B"] * 5
    result, body = imported_report(tmp_path, {"arm": arms, "v": values, "w": values}, ["v:continuous"])
    assert result.rejected == 5 and result.imported == 5
    with open(result.rejects_path, newline="", encoding="utf-8") as fh:
        reasons = [row["reason"] for row in csv.DictReader(fh)]
    assert all("'v'" in r and ("finite" in r or "not a number" in r) for r in reasons), reasons
    kept = np.array([1, 2, 3, 4, 5.0])
    by_arm = {r["arm"]: r["mean"] for r in body["metrics"][0]["arms"]}
    assert by_arm["A"] == pytest.approx(kept[[0, 3]].mean())  # rows 1 and 9 (3 and 5 in B...)


def test_small_counts_interval_agrees_with_fisher():
    # 3. 1 of 5 against 4 of 5: Fisher p ~ 0.2, so the interval must contain 0 and stay in [-1, 1].
    result = proportions.compare_proportions(1, 5, 4, 5)
    fisher = sps.fisher_exact([[1, 4], [4, 1]]).pvalue
    lo, hi = confint_proportions_2indep(1, 5, 4, 5, method="agresti-caffo", compare="diff")
    assert result["test"] == "fisher_exact" and result["p_value"] == pytest.approx(fisher)
    assert result["diff_ci_method"] == "agresti_caffo"
    assert result["diff_ci"] == [pytest.approx(max(lo, -1)), pytest.approx(min(hi, 1))]
    assert result["diff_ci"][0] < 0 < result["diff_ci"][1] and -1 <= result["diff_ci"][0] and result["diff_ci"][1] <= 1


def test_every_small_table_interval_stays_in_bounds():
    for x_t in range(6):
        for x_c in range(6):
            lo, hi = proportions.compare_proportions(x_t, 5, x_c, 5)["diff_ci"]
            assert -1 <= lo <= hi <= 1


def test_constant_arms_cannot_be_tested(tmp_path):
    # 4. Constant 5 against constant 6 is not "no significant difference": nothing can be tested.
    _, body = imported_report(tmp_path, {"arm": ["A"] * 20 + ["B"] * 20, "v": ["5"] * 20 + ["6"] * 20},
                              ["v:continuous"])
    comp = body["metrics"][0]["comparisons"][0]
    assert comp["testable"] is False and comp["p_value"] is None and not comp["significant"]
    assert "cannot be tested (no variance)" in body["verdict"]
    assert "no significant difference" not in body["verdict"]


def test_all_zero_treatment_gives_no_certain_lift_interval():
    rng = np.random.default_rng(4)
    control = rng.exponential(10, 200)
    result = means.compare_means(means.Moments.from_array(np.zeros(200)), means.Moments.from_array(control))
    ref = sps.ttest_ind(np.zeros(200), control, equal_var=False)
    assert result["p_value"] == pytest.approx(ref.pvalue, rel=1e-6)
    assert result["lift"] == -1 and result["lift_ci"] == [None, None]


def test_missing_outcomes_count_per_arm_and_metric(tmp_path):
    # 5. A blank spend leaves that unit out of spend only: bought and the SRM count keep it.
    rng = np.random.default_rng(5)
    n = 400
    arms = np.where(rng.random(n) < 0.5, "A", "B")
    spend = rng.exponential(20, n)
    blank = (arms == "B") & (rng.random(n) < 0.4)
    bought = (rng.random(n) < 0.3).astype(int)
    result, body = imported_report(
        tmp_path, {"arm": list(arms), "bought": list(bought),
                   "spend": ["" if m else repr(float(v)) for v, m in zip(spend, blank)]},
        ["bought:binary", "spend:continuous"])
    assert result.imported == n and result.missing == {"spend": int(blank.sum())}
    assert {a["name"]: a["n"] for a in body["arms"]} == {"A": int((arms == "A").sum()), "B": int((arms == "B").sum())}
    spend_metric = {m["name"]: m for m in body["metrics"]}["spend"]
    rows = {r["arm"]: r for r in spend_metric["arms"]}
    assert rows["B"]["missing"] == int(blank.sum()) and rows["A"]["missing"] == 0
    assert spend_metric["missing"] == int(blank.sum())
    keep_b = (arms == "B") & ~blank
    assert rows["B"]["n"] == int(keep_b.sum()) and rows["B"]["mean"] == pytest.approx(spend[keep_b].mean())
    ref = sps.ttest_ind(spend[keep_b], spend[arms == "A"], equal_var=False)
    assert spend_metric["comparisons"][0]["p_value"] == pytest.approx(ref.pvalue, rel=1e-6)


def test_missing_outcomes_refused_on_request(tmp_path):
    result, body = imported_report(tmp_path, {"arm": ["A", "B", "A", "B", "B"], "v": ["1", "", "2", "3", "4"]},
                                   ["v:continuous"], refuse_missing=True)
    assert result.rejected == 1 and body["units"] == 4


def test_unknown_breakdown_attribute_is_an_error(tmp_path):
    imported_report(tmp_path, {"arm": ["A", "B"] * 3, "v": ["1", "2", "3", "4", "5", "6"],
                               "tier": ["x", "y"] * 3}, ["v:continuous"])
    with pytest.raises(CommandError, match="tierr"):
        call_command("experiment_report", "edge", "--by", "tierr")
    call_command("experiment_report", "edge", "--by", "tier")


def test_cuped_power_uses_the_adjusted_sd(tmp_path):
    # 6. The power section must use the spread CUPED leaves, and say so.
    rng = np.random.default_rng(6)
    n = 600
    pre = rng.normal(50, 10, n)
    arms = np.array(["A", "B"] * (n // 2))
    y = pre + rng.normal(0, 3, n) + np.where(arms == "B", 0.5, 0)
    _, body = imported_report(tmp_path, {"arm": list(arms), "y": [repr(float(v)) for v in y], "pre": [repr(float(v)) for v in pre]},
                              ["y:continuous"], covariate="pre")
    # CUPED by hand: one theta from pooled within-arm covariance, x centred at its grand mean.
    cxy = sum(np.sum((pre[arms == a] - pre[arms == a].mean()) * (y[arms == a] - y[arms == a].mean())) for a in "AB")
    cxx = sum(np.sum((pre[arms == a] - pre[arms == a].mean()) ** 2) for a in "AB")
    adjusted = y - cxy / cxx * (pre - pre.mean())
    sd = adjusted[arms == "A"].std(ddof=1)
    power = body["power"]
    assert power["sd"]["source"] == "cuped_adjusted" and power["sd"]["value"] == pytest.approx(sd, rel=1e-9)
    effect = 0.10 * y[arms == "A"].mean()  # the default effect of interest: +10% of the control mean
    expected = TTestIndPower().power(effect / sd, nobs1=n // 2, ratio=1.0, alpha=0.05)
    assert power["comparisons"][0]["power"] == pytest.approx(expected, rel=1e-3)
    assert math.isclose(sd, y[arms == "A"].std(ddof=1), rel_tol=0.5) is False  # far below the raw sd


def test_ratio_metric_imported_end_to_end(tmp_path):
    # --metric spend/visit:ratio: named spend/visit, kind ratio, beside spend itself.
    rng = np.random.default_rng(13)
    n = 600
    arms = np.array(["A", "B"] * (n // 2))
    visit = rng.poisson(3, n) + 1
    spend = rng.gamma(2, 5, n) * visit * np.where(arms == "B", 1.1, 1.0)
    spend_text = [repr(float(v)) for v in spend]
    spend_text[1] = ""  # one unit in B without a spend: missing for both spend metrics
    _, body = imported_report(tmp_path, {"arm": list(arms), "spend": spend_text, "visit": list(visit)},
                              ["spend/visit:ratio", "spend:continuous"])
    metric = body["metrics"][0]
    assert (metric["name"], metric["kind"], metric["primary"]) == ("spend/visit", "ratio", True)
    keep = np.ones(n, bool)
    keep[1] = False
    t, c = (arms == "B") & keep, arms == "A"
    rt, rc = spend[t].sum() / visit[t].sum(), spend[c].sum() / visit[c].sum()

    def var(mask):
        x, y = spend[mask], visit[mask].astype(float)
        cv = np.cov(x, y, ddof=1)
        return (cv[0, 0] / y.mean()**2 - 2 * x.mean() * cv[0, 1] / y.mean()**3
                + x.mean()**2 * cv[1, 1] / y.mean()**4) / mask.sum()

    comp = metric["comparisons"][0]
    assert comp["diff"] == pytest.approx(rt - rc, rel=1e-9)
    assert comp["p_value"] == pytest.approx(2 * sps.norm.sf(abs(rt - rc) / np.sqrt(var(t) + var(c))), rel=1e-6)
    assert {r["arm"]: r["missing"] for r in metric["arms"]} == {"A": 0, "B": 1}
    assert 0 <= comp["chance_to_win"] <= 1
    assert body["power"]["kind"] == "ratio" and body["power"]["comparisons"][0]["power"] is not None
    from experiments.presentation import report_csv_rows, report_text

    assert any(r["metric"] == "spend/visit" and r["kind"] == "ratio" for r in report_csv_rows(body))
    assert "spend/visit" in report_text(body)


def test_median_and_p90_metrics_imported_end_to_end(tmp_path):
    rng = np.random.default_rng(15)
    n = 800
    arms = np.array(["A", "B"] * (n // 2))
    spend = rng.lognormal(3, 1, n) * np.where(arms == "B", 1.3, 1.0)
    _, body = imported_report(tmp_path, {"arm": list(arms), "spend": [repr(float(v)) for v in spend]},
                              ["spend:median", "spend:p90", "spend:continuous"])
    metrics = {m["name"]: m for m in body["metrics"]}
    assert set(metrics) == {"median(spend)", "p90(spend)", "spend"}
    for name, q in (("median(spend)", 0.5), ("p90(spend)", 0.9)):
        rows = {r["arm"]: r for r in metrics[name]["arms"]}
        assert rows["B"]["mean"] == pytest.approx(np.quantile(spend[arms == "B"], q))
        comp = metrics[name]["comparisons"][0]
        assert comp["diff"] == pytest.approx(np.quantile(spend[arms == "B"], q) - np.quantile(spend[arms == "A"], q))
        assert comp["p_value"] is not None and 0 <= comp["chance_to_win"] <= 1


def test_import_prior_option_sets_the_bayesian_prior(tmp_path):
    path = write_units(tmp_path, {"arm": ["A", "B"] * 10, "v": [str(i % 7) for i in range(20)]})
    call_command("import_experiment", str(path), "--name", "pri", "--arm", "arm", "--control", "A",
                 "--metric", "v:continuous", "--prior", "0,0.1", "--rejects", str(tmp_path / "r.csv"))
    assert Experiment.objects.get(name="pri").prior == {"mean": 0.0, "variance": pytest.approx(0.01), "proper": True}
    with pytest.raises(CommandError, match="--prior"):
        call_command("import_experiment", str(path), "--name", "pri2", "--arm", "arm", "--control", "A",
                     "--metric", "v:continuous", "--prior", "0,-1")
