"""The report as a manager reads it: each comparison's state, its numbers in words and an
interval bar; the report's readiness ("too early" until its attribution windows close or its
planned sample is reached); power in words. Pure: no Django, numbers through core.formatting,
so the page, the dashboard, the text report and the exports say the same thing.

States, one per comparison (GrowthBook's and Statsig's results tables keep them apart too):
- too early: outcomes are still coming in (attribution windows open) or, for a fixed-horizon
  test with a planned effect, the arms are smaller than the plan; judged later, with the date.
- significant: the interval excludes zero at the report's alpha (Holm-adjusted for several arms).
- not significant: judged, and no difference could be told from chance.
- not testable: a metric with no variance (every unit the same value): nothing to test.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from html import escape

from core import formatting

from .kinds import kind_get

TOO_EARLY, SIGNIFICANT, NOT_SIGNIFICANT, NOT_TESTABLE = "too-early", "significant", "not-significant", "not-testable"
LABELS = {TOO_EARLY: "Too early", SIGNIFICANT: "Significant", NOT_SIGNIFICANT: "Not significant",
          NOT_TESTABLE: "Not testable"}


# --------------------------------------------------------------------------- readiness


def _moment(value) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def when_text(moment: datetime | None) -> str:
    """A report's dates are stored in UTC and read so everywhere (the text report, the verdict)."""
    return formatting.moment(moment.astimezone(timezone.utc), "UTC") if moment else formatting.NA


def planned_sizes(body: dict) -> dict[str, tuple[int, int]]:
    """Per compared arm, the (control, arm) sizes the planned effect needs at 80% power, when
    the experiment planned an effect and the arms are short of it.

    Detectable effect shrinks with the square root of the sample, so the sizes that detect the
    planned effect are today's sizes times (detectable today / planned)^2, whatever the metric."""
    power = body.get("power") or {}
    effect = power.get("effect_of_interest") or {}
    if effect.get("source") != "planned" or not effect.get("value"):
        return {}
    means = {}
    primary = next((m for m in body.get("metrics", []) if m["primary"]), None)
    if primary:
        means = {r["arm"]: r["mean"] for r in primary["arms"]}
    sizes = {}
    for row in power.get("comparisons", []):
        mde = row.get("mde_absolute")
        if not row.get("underpowered") or not mde:
            continue
        planned = abs(effect["value"] * (means.get(row["control"]) or 0) if effect.get("relative") else effect["value"])
        if not planned:
            continue
        factor = (mde / planned) ** 2
        sizes[row["arm"]] = (math.ceil(row["n_control"] * factor), math.ceil(row["n_treatment"] * factor))
    return sizes


def readiness(body: dict, now: datetime | None = None) -> dict | None:
    """None when the report can be read; else why it is too early and when it will be ready.

    ``ready_at`` is when the last attribution window closes (the report stores it); a stored
    report read after that moment is no longer too early on that count."""
    now = now or datetime.now(timezone.utc)
    if not body.get("units"):
        return {"reason": "no units have been exposed yet", "ready_at": None, "text": "No data yet: nothing was sent or exposed."}
    ready_at = _moment(body.get("ready_at"))
    open_windows = body.get("open_windows") or 0
    if open_windows and (ready_at is None or ready_at > now):
        reason = (f"{formatting.count(open_windows)} of {formatting.count(body['units'])} units' attribution "
                  f"windows ({body.get('attribution_days', '?')} days) are still open, so conversions are still coming in")
        when = f"ready on {when_text(ready_at)}" if ready_at else "ready once the windows close"
        return {"reason": reason, "ready_at": ready_at, "text": f"Too early to call: {reason}; {when}."}
    if body.get("mode") != "sequential":
        short = planned_sizes(body)
        if short and not any(c["significant"] for m in body["metrics"] if m["primary"] for c in m["comparisons"]):
            arm, (n_c, n_t) = next(iter(short.items()))
            effect = body["power"]["effect_of_interest"]["text"]
            reason = (f"the plan needs about {formatting.count(n_c)} units in control and {formatting.count(n_t)} "
                      f"in {arm} to detect a {effect}")
            return {"reason": reason, "ready_at": None,
                    "text": f"Too early to call: {reason}; it has {formatting.count(body['units'])} units so far."}
    return None


# --------------------------------------------------------------------------- comparisons


def no_variance_in(kind_name: str, control_mean, arm_mean) -> bool:
    """A rate of 0% (or 100%) in both arms: every unit the same value, nothing to test, though
    Fisher's test would answer p = 1."""
    return kind_get(kind_name).share and control_mean == arm_mean and control_mean in (0, 1)


def comparison_state(comp: dict, body: dict, early: dict | None, *, no_variance: bool = False) -> str:
    if early is not None and not (body.get("mode") == "sequential" and comp.get("significant")):
        # A fixed-horizon test is judged once, when ready; a sequential one may stop early
        # on a significant result (its intervals are always valid). Before then even "no
        # variance" means nothing: minutes after launch nobody has converted yet.
        return TOO_EARLY
    if not comp.get("testable", True) or no_variance:
        return NOT_TESTABLE
    return SIGNIFICANT if comp.get("significant") else NOT_SIGNIFICANT


def _scale(metrics_comparisons: list[dict], relative: bool) -> float:
    """Half-width of a shared axis centred on zero, so bars in one table compare at a glance."""
    ends = []
    for c in metrics_comparisons:
        ci = (c.get("lift_ci") if relative else c.get("diff_ci")) or [None, None]
        ends += [abs(v) for v in ci if v is not None]
        point = c.get("lift") if relative else c.get("diff")
        if point is not None:
            ends.append(abs(point))
    top = max(ends, default=0.0)
    return top * 1.1 if top > 0 else 1.0


BAR_W, BAR_H, PAD = 220, 26, 6
FILL = {SIGNIFICANT: "#16a34a", "worse": "#dc2626", NOT_SIGNIFICANT: "#6b7280", TOO_EARLY: "#60a5fa",
        NOT_TESTABLE: "#d1d5db"}


def interval_bar(point: float | None, ci, half: float, state: str, label: str) -> str:
    """An SVG interval on a shared axis centred on zero (no script, no inline style: the CSP
    allows it). Green when significant and up, red when significant and down."""
    lo, hi = (ci or [None, None])[:2]
    if point is None or lo is None or hi is None:
        return f'<svg class="ci-bar" viewBox="0 0 {BAR_W} {BAR_H}" role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>' \
               f'<line x1="{BAR_W / 2}" y1="3" x2="{BAR_W / 2}" y2="{BAR_H - 3}" stroke="#9ca3af" stroke-width="1"/></svg>'
    span = BAR_W - 2 * PAD

    def x(v: float) -> float:
        return PAD + (max(-half, min(half, v)) + half) / (2 * half) * span

    colour = FILL["worse"] if state == SIGNIFICANT and point < 0 else FILL[state]
    x_lo, x_hi, x_pt, mid = x(lo), x(hi), x(point), x(0.0)
    return (
        f'<svg class="ci-bar" viewBox="0 0 {BAR_W} {BAR_H}" role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>'
        f'<rect x="{PAD}" y="{BAR_H / 2 - 1}" width="{span}" height="2" fill="#e5e7eb"/>'
        f'<rect x="{x_lo:.1f}" y="{BAR_H / 2 - 5}" width="{max(x_hi - x_lo, 2):.1f}" height="10" rx="5" fill="{colour}" fill-opacity="0.35"/>'
        f'<line x1="{mid:.1f}" y1="2" x2="{mid:.1f}" y2="{BAR_H - 2}" stroke="#374151" stroke-width="1" stroke-dasharray="2 2"/>'
        f'<circle cx="{x_pt:.1f}" cy="{BAR_H / 2}" r="4.5" fill="{colour}"/></svg>'
    )


def comparison_rows(metric: dict, body: dict, early: dict | None) -> list[dict]:
    """One row per comparison of ``metric``, every number spelled as people read it."""
    kind = kind_get(metric["kind"])
    means = {r["arm"]: r["mean"] for r in metric["arms"]}
    relative = any(c.get("lift_ci") and None not in c["lift_ci"] for c in metric["comparisons"])
    half = _scale(metric["comparisons"], relative)
    rows = []
    for c in metric["comparisons"]:
        control_mean, arm_mean = means.get(c["control"]), means.get(c["arm"])
        state = comparison_state(c, body, early, no_variance=no_variance_in(metric["kind"], control_mean, arm_mean))
        if kind.share:
            control_text, arm_text = formatting.percent_pair(control_mean, arm_mean)
        else:
            control_text, arm_text = kind.value_text(control_mean), kind.value_text(arm_mean)
        point, ci = (c.get("lift"), c.get("lift_ci")) if relative else (c.get("diff"), c.get("diff_ci"))
        one = formatting.lift if relative else kind.diff_text
        bar_label = (f"{c['arm']} vs {c['control']}: {'relative change' if relative else 'difference'} {one(point)}, "
                     f"interval {formatting.lift_interval(ci) if relative else kind.interval_text(ci)}")
        direction = "" if c.get("diff") in (None, 0) else ("up" if c["diff"] > 0 else "down")
        rows.append({
            "arm": c["arm"], "control": c["control"], "state": state, "label": LABELS[state],
            "worse": state == SIGNIFICANT and direction == "down",
            "control_value": control_text, "arm_value": arm_text, "direction": direction,
            "diff": kind.diff_text(c.get("diff")), "diff_ci": kind.interval_text(c.get("diff_ci") or [None, None]),
            "lift": formatting.lift(c.get("lift")), "lift_ci": formatting.lift_interval(c.get("lift_ci") or [None, None]),
            "p": formatting.p_value(c.get("p_value")),
            "p_adjusted": formatting.p_value(c["p_adjusted"]) if c.get("p_adjusted") is not None else "",
            "method": formatting.method_name(c.get("test")),
            "note": c.get("note") or ("no variance: every unit has the same value" if state == NOT_TESTABLE else ""),
            "bar": interval_bar(point, ci, half, state, bar_label),
            "chance_to_win": formatting.percent(c.get("chance_to_win"), 1) if c.get("chance_to_win") is not None else formatting.NA,
            "expected_loss": formatting.percent(c.get("expected_loss")) if c.get("expected_loss") is not None else formatting.NA,
            "relative_effect": formatting.lift(c.get("posterior_mean")),
            "credible_interval": formatting.lift_interval(c.get("credible_interval") or [None, None]),
        })
    return rows


def axis_text(metric: dict) -> str:
    relative = any(c.get("lift_ci") and None not in c["lift_ci"] for c in metric["comparisons"])
    half = _scale(metric["comparisons"], relative)
    if relative:
        return f"relative change, axis from {formatting.lift(-half)} to {formatting.lift(half)}; dashed line: no change"
    return f"difference, axis from {kind_get(metric['kind']).diff_text(-half)} to {kind_get(metric['kind']).diff_text(half)}; dashed line: no change"


# --------------------------------------------------------------------------- headline and power


def headline(body: dict, now: datetime | None = None) -> dict:
    """The report's state in one badge and one sentence: what a dashboard shows."""
    early = readiness(body, now)
    if early is not None:
        return {"state": TOO_EARLY, "label": LABELS[TOO_EARLY], "text": early["text"], "ready_at": early["ready_at"]}
    primary = next((m for m in body.get("metrics", []) if m["primary"]), None)
    if primary is None or not primary["comparisons"]:
        return {"state": NOT_TESTABLE, "label": "No comparison", "text": "No comparison possible yet: an arm has no units.",
                "ready_at": None}
    rows = comparison_rows(primary, body, None)
    best = next((r for r in rows if r["state"] == SIGNIFICANT), rows[0])
    if best["state"] == SIGNIFICANT:
        verb = "lowered" if best["worse"] else "raised"
        text = (f"{best['arm']} {verb} {primary['name']} from {best['control_value']} to {best['arm_value']} "
                f"({best['diff']}, {best['lift']}); significant.")
    elif best["state"] == NOT_TESTABLE:
        text = f"{primary['name']} cannot be tested: every unit has the same value ({best['arm_value']})."
    else:
        text = (f"No significant difference in {primary['name']}: {best['arm']} {best['arm_value']} vs "
                f"{best['control']} {best['control_value']} ({best['diff']}, interval {best['diff_ci']}).")
    state = best["state"]
    return {"state": state, "label": "Significant: worse" if best["worse"] else LABELS[state], "text": text,
            "ready_at": None}


def power_sentences(body: dict) -> list[str]:
    """Power in words: the chance this test had to see the effect that matters, and the
    smallest change it could reliably see."""
    power = body.get("power") or {}
    if not power.get("comparisons"):
        return []
    kind = kind_get(power["kind"])
    effect = power["effect_of_interest"]
    source = "the planned effect" if effect.get("source") == "planned" else "a default effect (no effect was planned)"
    out = []
    for row in power["comparisons"]:
        if row.get("power") is None:
            out.append(f"{row['arm']}: power could not be computed ({row.get('note') or 'no spread in the control arm'}).")
            continue
        chance = row["power"] * 100
        strength = "a good chance" if chance >= 80 else "a fair chance" if chance >= 50 else "little chance"
        mde = kind.diff_text(row["mde_absolute"]) if row.get("mde_absolute") is not None else formatting.NA
        rel = f" ({formatting.lift(row['mde_relative'])} relative)" if row.get("mde_relative") is not None else ""
        out.append(
            f"With {formatting.count(row['n_control'])} units in {row['control']} and {formatting.count(row['n_treatment'])} "
            f"in {row['arm']}, this test had {strength} ({chance:.0f}%) of detecting a {effect['text']}, {source}. "
            f"It reliably (80% of the time) detects changes of about {mde.lstrip('+')}{rel} or larger"
            + ("; smaller true effects would likely be missed." if row.get("underpowered") else "."))
    return out


def breakdown_rows(breakdown: dict) -> list[dict]:
    """The primary metric's comparisons per segment of a breakdown, spelled like the main table."""
    rows = []
    for segment in breakdown.get("segments", []):
        for metric in segment["metrics"]:
            if not metric["primary"]:
                continue
            kind = kind_get(metric["kind"])
            for c in metric["comparisons"]:
                across = c.get("p_adjusted_across_segments")
                rows.append({"value": segment["value"], "units": segment["units"], "arm": c["arm"], "control": c["control"],
                             "diff": kind.diff_text(c.get("diff")), "diff_ci": kind.interval_text(c.get("diff_ci") or [None, None]),
                             "p": formatting.p_value(c.get("p_value")),
                             "p_across": formatting.p_value(across) if across is not None else formatting.NA})
    return rows
