"""Reads of automations: status (the `automation_status --json` keys), the step funnel,
entries per day, and the report (report.py): every automation is an always-running
experiment whose exposures are its entries (held out: control), judged with the always-valid
confidence sequence (experiments.stats.sequential), so the report is valid whenever it is read."""

from __future__ import annotations

from datetime import datetime, timezone as dt_timezone

from django.db.models import Count, Q
from django.db.models.functions import TruncDate

from core.lookups import by_name_or_id

from ..models import Automation, AutomationEntry, AutomationSend
from .report import SENT, automation_outcomes, report_from_counts  # noqa: F401  (read here too)
from .report import automation_report as report_automation

S = AutomationSend.Status
E = AutomationEntry.Status
OPEN = (S.PENDING, S.SENDING, S.UNKNOWN)


def automation_get(name_or_id) -> Automation:
    return by_name_or_id(Automation.objects.all(), name_or_id, "automation")


def automation_list():
    return Automation.objects.select_related("trigger_segment", "current_version").order_by("-created_at", "-id")


def _send_counts(automation: Automation) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    rows = AutomationSend.objects.filter(automation=automation).values("step_index", "status").annotate(n=Count("id"))
    for row in rows:
        counts.setdefault(row["step_index"], {})[row["status"]] = row["n"]
    return counts


def automation_steps(automation: Automation) -> list[dict]:
    """Per step (index): sent, pending (waiting, in flight or being reconciled), failed, what
    the webhooks reported (delivered, opened, clicked, bounced, complained), and the rest."""
    counts = _send_counts(automation)
    n_steps = automation.current_version.steps.count() if automation.current_version_id else 0
    out = []
    for index in range(max([n_steps, *[i + 1 for i in counts]])):
        c = counts.get(index, {})
        out.append({
            "index": index,
            "sent": sum(c.get(s, 0) for s in SENT),
            "pending": sum(c.get(s, 0) for s in OPEN),
            "failed": c.get(S.FAILED, 0),
            "suppressed": c.get(S.SUPPRESSED, 0),
            "skipped": c.get(S.SKIPPED, 0),
            "cancelled": c.get(S.CANCELLED, 0),
            # What the provider's webhooks reported since (a send moves forward only: opened
            # implies delivered, clicked implies opened).
            "delivered": sum(c.get(s, 0) for s in (S.DELIVERED, S.OPENED, S.CLICKED)),
            "opened": sum(c.get(s, 0) for s in (S.OPENED, S.CLICKED)),
            "clicked": c.get(S.CLICKED, 0),
            "bounced": c.get(S.BOUNCED, 0),
            "complained": c.get(S.COMPLAINED, 0),
        })
    return out


def automation_exits(automation: Automation) -> dict[str, int]:
    rows = (AutomationEntry.objects.filter(automation=automation, status=E.EXITED)
            .values("exit_reason").annotate(n=Count("id")))
    return {row["exit_reason"]: row["n"] for row in rows}


def automation_counts(automation: Automation) -> dict:
    rows = AutomationEntry.objects.filter(automation=automation).values("held_out").annotate(n=Count("id"))
    by = {row["held_out"]: row["n"] for row in rows}
    return {"entries": by.get(False, 0) + by.get(True, 0), "held_out": by.get(True, 0)}


def entries_per_day(automation: Automation) -> list[dict]:
    rows = (AutomationEntry.objects.filter(automation=automation)
            .annotate(day=TruncDate("entered_at", tzinfo=dt_timezone.utc)).values("day")
            .annotate(n=Count("id"), held=Count("id", filter=Q(held_out=True))).order_by("day"))
    return [{"day": row["day"].isoformat(), "entries": row["n"], "held_out": row["held"]} for row in rows]


def automation_report(automation: Automation, *, now: datetime | None = None) -> dict:
    """The report (report.py: conversion, revenue and orders per entry, step variants), and
    the entries per day."""
    report = report_automation(automation, now=now)
    report["entries_per_day"] = entries_per_day(automation)
    return report


def automation_status(automation: Automation, *, now: datetime | None = None) -> dict:
    """What `automation_status NAME --json` prints (keys are added, never renamed)."""
    counts = automation_counts(automation)
    return {
        "name": automation.name,
        "state": automation.state,
        "entries": counts["entries"],
        "held_out": counts["held_out"],
        "steps": automation_steps(automation),
        "exits": automation_exits(automation),
        "report": automation_report(automation, now=now),
        "trigger": automation.trigger,
        "version": automation.current_version.number if automation.current_version_id else None,
        "last_error": automation.last_error,
    }


def automation_funnel(automation: Automation) -> list[dict]:
    """Entered, then sent at each step, then exited by reason: the funnel chart's bars."""
    counts = automation_counts(automation)
    bars = [{"label": "entered", "count": counts["entries"]},
            {"label": "held out", "count": counts["held_out"]}]
    for step in automation_steps(automation):
        bars.append({"label": f"step {step['index'] + 1} sent", "count": step["sent"]})
    for reason, n in sorted(automation_exits(automation).items()):
        bars.append({"label": f"exited: {reason}", "count": n})
    return bars
