"""An automation's report: an always-running experiment, read in sequential mode (the
always-valid confidence sequence of experiments.stats), so it is valid whenever it is read.

Exposures are entries (held out or treated, decided once per entry by a hash). Outcomes over
the attribution window after entry, censored at now for entries whose window is still open
(both arms alike: the holdout is a hash, so the same censoring falls on both):
- conversion: an order in the window (two proportions),
- revenue per entry and orders per entry: every entry counts, zero when it bought nothing
  (Welch on the per-entry means, as the experiments app does for a continuous metric).

Variants: where a step of the current version has more than one variant, each variant is
compared with the other variants of that step pooled, among the entries the step was sent
to, on what they did in the window after that send. Not against the holdout: the holdout
gets no step, and who reaches step N is filtered by exits and `unless` among the treated
only, so that comparison would not be randomized. Within a step, the variant comparisons'
p-values are Holm-adjusted when there are more than two variants.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.utils import timezone

from core.db import is_postgres

from customers.models import Order
from experiments.stats.means import Moments, compare_means
from experiments.stats.multiple import adjust_pvalues
from experiments.stats.proportions import compare_proportions
from experiments.stats.sequential import DEFAULT_SEQUENTIAL_TUNING_N

from ..models import Automation, AutomationEntry, AutomationSend, AutomationStep, AutomationVariant

ALPHA = 0.05
# The report's status on SQLite, where automations do not run.
NEEDS_POSTGRES = "needs PostgreSQL"
ENTRY = AutomationEntry._meta.db_table
SEND = AutomationSend._meta.db_table
VARIANT = AutomationVariant._meta.db_table
STEP = AutomationStep._meta.db_table
ORDER = Order._meta.db_table
S = AutomationSend.Status
# A send the provider took: whatever the webhooks said of it since.
SENT = (S.SENT, S.DELIVERED, S.OPENED, S.CLICKED, S.BOUNCED, S.COMPLAINED)
# Per unit (an entry, or a step send): converted, revenue and orders in the window. Each
# unit counts; `o.amount` is NULL where it bought nothing, counted as 0.
UNIT_AGGREGATES = """count(*), count(*) FILTER (WHERE o.n > 0),
    COALESCE(sum(o.amount), 0), avg(COALESCE(o.amount, 0)), var_samp(COALESCE(o.amount, 0)),
    COALESCE(sum(o.n), 0), avg(o.n), var_samp(o.n)"""


def _arm(row) -> dict:
    n, converted, revenue, revenue_mean, revenue_var, orders, orders_mean, orders_var = row
    return {
        "entries": n, "converted": converted, "revenue": float(revenue),
        "revenue_mean": float(revenue_mean) if revenue_mean is not None else None,
        "revenue_var": float(revenue_var) if revenue_var is not None else None,
        "orders": int(orders), "orders_mean": float(orders_mean) if orders_mean is not None else None,
        "orders_var": float(orders_var) if orders_var is not None else None,
    }


def _empty_arm() -> dict:
    return _arm((0, 0, 0, None, None, 0, None, None))


def automation_outcomes(automation: Automation, *, now: datetime | None = None) -> dict:
    """Per arm (treatment, holdout): entries, converters, revenue (sum, per-entry mean and
    sample variance), orders (sum, per-entry mean and variance) over the window after entry."""
    now = now or timezone.now()
    sql = f"""
        SELECT e.held_out, {UNIT_AGGREGATES}
        FROM {ENTRY} e
        LEFT JOIN LATERAL (
            SELECT count(*) AS n, sum(amount) AS amount FROM {ORDER} o
            WHERE o.customer_id = e.customer_id AND o.ordered_at >= e.entered_at
              AND o.ordered_at < LEAST(e.entered_at + make_interval(days => %s), %s)
        ) o ON true
        WHERE e.automation_id = %s
        GROUP BY e.held_out
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [automation.attribution_days, now, automation.id])
        rows = cursor.fetchall()
    arms = {"treatment": _empty_arm(), "holdout": _empty_arm()}
    for held, *rest in rows:
        arms["holdout" if held else "treatment"] = _arm(rest)
    return arms


def _moments(arm: dict, metric: str) -> Moments:
    return Moments.from_aggregates(arm["entries"], arm[f"{metric}_mean"], arm[f"{metric}_var"])


def _continuous(t: dict, c: dict, metric: str, *, alpha: float, tuning_n: int) -> dict:
    result = compare_means(_moments(t, metric), _moments(c, metric), alpha=alpha, sequential_tuning_n=tuning_n)
    out = {k: result.get(k) for k in ("diff", "diff_ci", "lift", "lift_ci", "p_value", "test", "note")}
    out["treatment_mean"], out["control_mean"] = t[f"{metric}_mean"], c[f"{metric}_mean"]
    if not result.get("testable", True):
        out["test"] = "msprt_normal_mixture"
    return out


def _verdict(metric: dict) -> str:
    low, high = metric.get("diff_ci") or [None, None]
    if low is None:
        return "not testable" if metric.get("diff") is not None else "too early"
    return "significant" if low > 0 or high < 0 else "running"


def report_from_counts(arms: dict, *, alpha: float = ALPHA, tuning_n: int = DEFAULT_SEQUENTIAL_TUNING_N) -> dict:
    """The treatment effect with its always-valid interval: conversion at the top level (the
    report's first keys), and every metric under `metrics` (conversion, revenue per entry,
    orders per entry; None until both arms have entries)."""
    t, c = arms["treatment"], arms["holdout"]
    report = {"metric": "conversion", "mode": "sequential", "alpha": alpha, "arms": arms,
              "diff": None, "diff_ci": [None, None], "lift": None, "lift_ci": [None, None], "p_value": None,
              "test": "msprt_normal_mixture", "status": "too early", "metrics": {}}
    if t["entries"] and c["entries"]:
        result = compare_proportions(t["converted"], t["entries"], c["converted"], c["entries"], alpha=alpha,
                                     sequential_tuning_n=tuning_n)
        report.update({k: result[k] for k in ("diff", "diff_ci", "lift", "lift_ci", "p_value", "test", "note")})
        low, high = report["diff_ci"]
        if low is not None and (low > 0 or high < 0):
            report["status"] = "significant"
        else:
            report["status"] = "running"
        report["metrics"]["conversion"] = {k: report[k] for k in
                                           ("diff", "diff_ci", "lift", "lift_ci", "p_value", "test", "status")}
        for metric, name in (("revenue", "revenue_per_entry"), ("orders", "orders_per_entry")):
            if f"{metric}_mean" in t and f"{metric}_mean" in c:  # counts from the database carry them
                found = _continuous(t, c, metric, alpha=alpha, tuning_n=tuning_n)
                found["status"] = _verdict(found)
                report["metrics"][name] = found
    for arm in (t, c):
        if arm["entries"]:
            arm["rate"] = arm["converted"] / arm["entries"]
    return report


def pool(arms: list[dict]) -> dict:
    """Several arms' counts as one (for "the other variants"): sums, and the pooled mean and
    sample variance of each per-unit metric (the within and between parts of the spread)."""
    n = sum(a["entries"] for a in arms)
    out = {"entries": n, "converted": sum(a["converted"] for a in arms), "revenue": sum(a["revenue"] for a in arms),
           "orders": sum(a["orders"] for a in arms)}
    for metric in ("revenue", "orders"):
        parts = [a for a in arms if a["entries"] and a[f"{metric}_mean"] is not None]
        if not n or not parts:
            out[f"{metric}_mean"] = out[f"{metric}_var"] = None
            continue
        mean = sum(a["entries"] * a[f"{metric}_mean"] for a in parts) / n
        m2 = sum((a["entries"] - 1) * (a[f"{metric}_var"] or 0.0) + a["entries"] * (a[f"{metric}_mean"] - mean) ** 2
                 for a in parts)
        out[f"{metric}_mean"] = mean
        out[f"{metric}_var"] = m2 / (n - 1) if n > 1 else None
    return out


def variant_outcomes(automation: Automation, *, now: datetime | None = None) -> dict[int, dict[str, dict]]:
    """Step index -> variant name -> counts (as an arm), over the current version's sends that
    went out, on the window after each send."""
    now = now or timezone.now()
    if not automation.current_version_id:
        return {}
    sql = f"""
        SELECT s.step_index, v.name, {UNIT_AGGREGATES}
        FROM {SEND} s
        JOIN {STEP} st ON st.id = s.step_id AND st.version_id = %s
        JOIN {VARIANT} v ON v.id = s.variant_id
        LEFT JOIN LATERAL (
            SELECT count(*) AS n, sum(amount) AS amount FROM {ORDER} o
            WHERE o.customer_id = s.customer_id AND o.ordered_at >= s.sent_at
              AND o.ordered_at < LEAST(s.sent_at + make_interval(days => %s), %s)
        ) o ON true
        WHERE s.automation_id = %s AND s.status = ANY(%s) AND s.sent_at IS NOT NULL
        GROUP BY s.step_index, v.name
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [automation.current_version_id, automation.attribution_days, now, automation.id,
                             list(SENT)])
        rows = cursor.fetchall()
    out: dict[int, dict[str, dict]] = {}
    for index, name, *rest in rows:
        out.setdefault(index, {})[name] = _arm(rest)
    return out


def variants_report(steps: list[tuple[int, list[str]]], outcomes: dict[int, dict[str, dict]], *,
                    alpha: float = ALPHA, tuning_n: int = DEFAULT_SEQUENTIAL_TUNING_N) -> list[dict]:
    """Per step with more than one variant: each variant against the others of its step."""
    out = []
    for index, names in steps:
        if len(names) < 2:
            continue
        counts = outcomes.get(index, {})
        rows = []
        for name in names:
            mine = counts.get(name, _empty_arm())
            others = pool([counts[o] for o in names if o != name and o in counts])
            row = {"variant": name, "against": "the other variants of this step", "sent": mine["entries"],
                   "converted": mine["converted"], "revenue": mine["revenue"], "orders": mine["orders"],
                   "rate": mine["converted"] / mine["entries"] if mine["entries"] else None,
                   "revenue_mean": mine["revenue_mean"], "conversion": None, "revenue_per_send": None,
                   "orders_per_send": None, "status": "too early"}
            if mine["entries"] and others["entries"]:
                conv = compare_proportions(mine["converted"], mine["entries"], others["converted"], others["entries"],
                                           alpha=alpha, sequential_tuning_n=tuning_n)
                row["conversion"] = {k: conv[k] for k in ("diff", "diff_ci", "lift", "lift_ci", "p_value", "test")}
                row["revenue_per_send"] = _continuous(mine, others, "revenue", alpha=alpha, tuning_n=tuning_n)
                row["orders_per_send"] = _continuous(mine, others, "orders", alpha=alpha, tuning_n=tuning_n)
                row["status"] = _verdict(row["conversion"])
            rows.append(row)
        # Several variants make several comparisons on one step: Holm keeps the family's error.
        adjusted = adjust_pvalues([r["conversion"]["p_value"] if r["conversion"] else None for r in rows])
        for row, p in zip(rows, adjusted):
            if row["conversion"] is not None:
                row["conversion"]["p_value_adjusted"] = p if len(names) > 2 else row["conversion"]["p_value"]
        out.append({"step": index, "comparison": "each variant vs the other variants of the step, "
                    "among the entries the step was sent to, on the window after the send",
                    "adjustment": "holm" if len(names) > 2 else None, "variants": rows})
    return out


def automation_report(automation: Automation, *, now: datetime | None = None) -> dict:
    if not is_postgres():
        # Automations run on PostgreSQL only (on SQLite the tick says so and skips) and this
        # SQL is PostgreSQL's: the report says why it is empty instead of failing the page.
        report = report_from_counts({"treatment": _empty_arm(), "holdout": _empty_arm()})
        report.update(status=NEEDS_POSTGRES, attribution_days=automation.attribution_days, variants=[])
        return report
    report = report_from_counts(automation_outcomes(automation, now=now))
    report["attribution_days"] = automation.attribution_days
    steps = []
    if automation.current_version_id:
        for step in automation.current_version.steps.prefetch_related("variants").order_by("index"):
            steps.append((step.index, [v.name for v in step.variants.all()]))
    multi = [s for s in steps if len(s[1]) > 1]
    report["variants"] = variants_report(multi, variant_outcomes(automation, now=now)) if multi else []
    return report

