"""The report for people: a text rendering and a CSV of the same tables. No Django here.

Both take the report body (analysis.analyze plus optional breakdown and retention) so the
command line, the API export and the stored report always say the same thing.
"""

from __future__ import annotations

from datetime import datetime
from typing import IO

from core import formatting
from core.csvout import SafeDictWriter
from core.formatting import p_clause

from . import readout
from .kinds import kind_get

CSV_COLUMNS = [
    "section", "segment", "metric", "kind", "primary", "arm", "control_arm", "is_control", "n", "mean",
    "ci_lo", "ci_hi", "diff", "diff_ci_lo", "diff_ci_hi", "lift", "lift_ci_lo", "lift_ci_hi",
    "p_value", "p_adjusted", "p_adjusted_across_segments", "test", "significant",
    # Added with issue 12, at the end so existing readers keep their columns.
    "missing", "testable", "chance_to_win", "expected_loss", "credible_lo", "credible_hi",
]
BANNER = "!" * 78


def _srm_lines(srm: dict) -> list[str]:
    if srm["status"] == "fail":
        return [BANNER, f"!!! SRM CHECK FAILED - {srm['message']}", "!!! Do not act on the results below.",
                BANNER]
    if srm["status"] == "warning":
        return [f"SRM WARNING - {srm['message']}"]
    return [f"SRM ok - {srm['message']} ({p_clause(srm['p_value'])})"]


def _metric_lines(metric: dict, body: dict, early: dict | None, indent: str = "") -> list[str]:
    kind = kind_get(metric["kind"])
    value_text, diff_text = kind.value_text, kind.diff_text
    title = f"{metric['name']} ({kind.name}{', primary' if metric['primary'] else ''})"
    if metric.get("description"):
        title += f": {metric['description']}"
    lines = [indent + title]
    width = max([len(r["arm"]) for r in metric["arms"]] + [4])
    for row in metric["arms"]:
        lo, hi = row["ci"]
        ci = "n/a" if lo is None else f"[{value_text(lo)}, {value_text(hi)}]"
        missing = f"  ({row['missing']:,} missing)" if row.get("missing") else ""
        lines.append(f"{indent}  {row['arm']:<{width}}  n={row['n']:>10,}  mean {value_text(row['mean']):>10}  {ci}{missing}")
    means = {r["arm"]: r["mean"] for r in metric["arms"]}
    for c in metric["comparisons"]:
        state = readout.comparison_state(c, body, early, no_variance=readout.no_variance_in(
            metric["kind"], means.get(c["control"]), means.get(c["arm"])))
        adjusted = f", Holm {p_clause(c['p_adjusted'])}" if c.get("p_adjusted") is not None else ""
        across = c.get("p_adjusted_across_segments")
        across_text = f", across segments {p_clause(across)}" if across is not None else ""
        lines.append(
            f"{indent}  {c['arm']} vs {c['control']}: {diff_text(c['diff'])} "
            f"(CI {kind.interval_text(c['diff_ci'])}), lift {formatting.lift(c['lift'])} (CI {formatting.lift_interval(c['lift_ci'])}), "
            f"{p_clause(c['p_value'])}{adjusted}{across_text} [{formatting.method_name(c['test'])}]"
            f"  {readout.LABELS[state].upper()}")
        if c.get("chance_to_win") is not None:
            ci = c["credible_interval"]
            lines.append(f"{indent}    Bayesian: {c['chance_to_win'] * 100:.1f}% chance to beat {c['control']}, "
                         f"expected loss {c['expected_loss'] * 100:.2f}%, relative effect "
                         f"{formatting.lift(c['posterior_mean'])} (credible interval {formatting.lift_interval(ci)})")
        if c.get("note"):
            lines.append(f"{indent}    note: {c['note']}")
    if metric.get("cuped"):
        cu = metric["cuped"]
        reduction = cu.get("variance_reduction")
        lines.append(f"{indent}  CUPED on {cu.get('covariate')}: variance reduced by "
                     f"{formatting.percent(reduction, 1)}")
    if metric.get("note"):
        lines.append(f"{indent}  note: {metric['note']}")
    return lines


def report_text(body: dict, now: datetime | None = None) -> str:
    mode = "sequential (always-valid)" if body["mode"] == "sequential" else "fixed horizon"
    early = readout.readiness(body, now)
    lines = _srm_lines(body["srm"])
    lines += [
        "",
        f"Experiment {body['experiment']!r}: {body['units']:,} units, {mode}, alpha {body['alpha']:g}"
        + (f", attribution window {body['attribution_days']} days" if body.get("attribution_days") else ""),
        "",
        "Verdict: " + body["verdict"],
        *([early["text"]] if early and early["text"] not in body["verdict"] else []),
        "",
        "Arms:",
    ]
    for arm in body["arms"]:
        lines.append(f"  {arm['name']}{' (control)' if arm['control'] else ''}: {arm['n']:,} units "
                     f"(planned weight {arm['weight']:g})")
    for metric in body["metrics"]:
        lines += [""] + _metric_lines(metric, body, early)
    power = body.get("power") or {}
    if power.get("comparisons"):
        lines += ["", "Power in words:"] + [f"  {sentence}" for sentence in readout.power_sentences(body)]
    if power:
        lines += ["", f"Power ({power['metric']}, effect of interest {power['effect_of_interest']['text']}, "
                      f"{power['effect_of_interest']['source']}):"]
        for row in power["comparisons"]:
            if row["power"] is None:
                lines.append(f"  {row['arm']}: {row.get('note', 'n/a')}")
                continue
            mde = kind_get(power["kind"]).diff_text(row["mde_absolute"])
            lines.append(
                f"  {row['arm']}: power {row['power'] * 100:.0f}% for that effect"
                f"{' - UNDERPOWERED for it' if row['underpowered'] else ''}; "
                f"smallest detectable change at 80% power {mde} ({formatting.lift(row['mde_relative'])})")
        if power.get("note"):
            lines.append(f"  note: {power['note']}")
    retention = body.get("retention")
    if retention:
        lines += ["", f"Retention ({retention['definition']}):"]
        for day in retention["day_n"]:
            cells = ", ".join(
                f"{r['arm']} {formatting.percent(r['rate'])} of {formatting.count(r['n'])}" for r in day["arms"])
            lines.append(f"  returned within {day['day']} days: {cells}")
        if retention.get("logrank"):
            lines.append(f"  log-rank test of the curves: {p_clause(retention['logrank']['p_value'])}")
        for hr in retention["hazard_ratios"]:
            value = "n/a" if hr["hazard_ratio"] is None else f"{hr['hazard_ratio']:.3f}"
            lo, hi = hr["ci"]
            ci = "n/a" if lo is None else f"{lo:.3f} to {hi:.3f}"
            lines.append(f"  hazard ratio {hr['arm']} / {hr['control']}: {value} (CI {ci}), {p_clause(hr['p_value'])}"
                         f" ({hr['meaning']})")
        lines.append(f"  note: {retention['note']}")
    breakdown = body.get("breakdown")
    if breakdown:
        lines += ["", f"Breakdown by {breakdown['by']} - CAVEAT: {breakdown['caveat']}"]
        for segment in breakdown["segments"]:
            lines += ["", f"  {breakdown['by']} = {segment['value']} ({segment['units']:,} units)"]
            for metric in segment["metrics"]:
                lines += _metric_lines(metric, body, early, indent="    ")
    if body.get("notes"):
        lines += ["", "Notes:"] + [f"  - {n}" for n in body["notes"]]
    computed = readout.when_text(readout._moment(body.get("computed_at")))
    lines += ["", f"Computed {computed} in {body.get('seconds', 0):.2f}s."]
    return "\n".join(lines)


def _metric_rows(metric: dict, section: str, segment: str) -> list[dict]:
    comparisons = {c["arm"]: c for c in metric["comparisons"]}
    controls = {c["control"] for c in metric["comparisons"]}
    rows = []
    for arm in metric["arms"]:
        c = comparisons.get(arm["arm"], {})
        diff_ci, lift_ci = c.get("diff_ci", [None, None]), c.get("lift_ci", [None, None])
        rows.append({
            "section": section, "segment": segment, "metric": metric["name"], "kind": metric["kind"],
            "primary": metric["primary"], "arm": arm["arm"], "control_arm": c.get("control", ""),
            "is_control": arm["arm"] in controls, "n": arm["n"], "mean": arm["mean"],
            "ci_lo": arm["ci"][0], "ci_hi": arm["ci"][1],
            "diff": c.get("diff"), "diff_ci_lo": diff_ci[0], "diff_ci_hi": diff_ci[1],
            "lift": c.get("lift"), "lift_ci_lo": lift_ci[0], "lift_ci_hi": lift_ci[1],
            "p_value": c.get("p_value"), "p_adjusted": c.get("p_adjusted"),
            "p_adjusted_across_segments": c.get("p_adjusted_across_segments"),
            "test": c.get("test", ""), "significant": c.get("significant", ""),
            "missing": arm.get("missing", 0), "testable": c.get("testable", ""),
            "chance_to_win": c.get("chance_to_win"), "expected_loss": c.get("expected_loss"),
            "credible_lo": (c.get("credible_interval") or [None, None])[0],
            "credible_hi": (c.get("credible_interval") or [None, None])[1],
        })
    return rows


def report_csv_rows(body: dict) -> list[dict]:
    """One row per (segment, metric, arm): the arm's mean and its comparison with control."""
    rows = []
    for metric in body["metrics"]:
        rows += _metric_rows(metric, "overall", "")
    breakdown = body.get("breakdown")
    if breakdown:
        for segment in breakdown["segments"]:
            for metric in segment["metrics"]:
                rows += _metric_rows(metric, f"by {breakdown['by']}", segment["value"])
    return rows


def report_csv_write(body: dict, fh: IO[str]) -> int:
    # Arm names, metric names and --by attribute values come from users' data: escaped.
    writer = SafeDictWriter(fh, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    rows = report_csv_rows(body)
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return len(rows)
