"""Automation pages: the list with live counts, an automation's page (its steps as a vertical
flow, the funnel, the always-valid report, controls), and the builder."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core import formatting
from core.roles import MARKETER, VIEWER, has_role, role_required
from segments.models import Segment

from . import selectors
from ..errors import CampaignError
from ..models import Automation
from ..services.automations.create import EXIT_RULES, automation_create
from ..services.automations.lifecycle import automation_archive, automation_pause, automation_resume

STEP_SLOTS = 4


@role_required(VIEWER)
def automation_index(request):
    rows = []
    for automation in selectors.automation_list()[:100]:
        counts = selectors.automation_counts(automation)
        steps = selectors.automation_steps(automation)
        rows.append({"automation": automation, **counts, "sent": sum(s["sent"] for s in steps),
                     "pending": sum(s["pending"] for s in steps)})
    template = "campaigns/automations/_rows.html" if request.htmx else "campaigns/automations/index.html"
    return render(request, template, {"rows": rows, "can_edit": has_role(request.user, MARKETER)})


def _report_view(report: dict) -> dict:
    arms = report["arms"]
    out = {
        "status": report["status"],
        "effect": formatting.points(report["diff"]) if report["diff"] is not None else "",
        "interval": formatting.points_interval(report["diff_ci"]) if report["diff"] is not None else "",
        "p_value": formatting.p_value(report["p_value"]) if report["p_value"] is not None else "",
        "arms": [
            {"label": "Treated entries", **arms["treatment"],
             "rate": formatting.percent(arms["treatment"].get("rate")) if arms["treatment"]["entries"] else "–"},
            {"label": "Held out (control)", **arms["holdout"],
             "rate": formatting.percent(arms["holdout"].get("rate")) if arms["holdout"]["entries"] else "–"},
        ],
        "days": report["entries_per_day"][-30:],
        "attribution_days": report["attribution_days"],
    }
    out["metrics"] = _metric_rows(report)
    out["variants"] = [{"step": block["step"] + 1, "comparison": block["comparison"], "adjustment": block["adjustment"],
                        "rows": [_variant_row(r) for r in block["variants"]]} for block in report.get("variants", [])]
    top = max([d["entries"] for d in out["days"]] or [0])
    for d in out["days"]:
        d["share"] = d["entries"] / top * 100 if top else 0
    return out


VERDICTS = {"significant": "changes it", "running": "no clear effect yet", "too early": "too early",
            "not testable": "not testable (no spread)"}


def _metric_rows(report: dict) -> list[dict]:
    """Conversion, revenue per entry and orders per entry, each with its always-valid interval."""
    arms = report["arms"]
    rows = []
    for key, label in (("conversion", "Conversion"), ("revenue_per_entry", "Revenue per entry"),
                       ("orders_per_entry", "Orders per entry")):
        metric = report.get("metrics", {}).get(key)
        if key == "conversion":
            t, c = arms["treatment"].get("rate"), arms["holdout"].get("rate")
            values = (formatting.percent(t), formatting.percent(c))
        else:
            field = "revenue_mean" if key == "revenue_per_entry" else "orders_mean"
            values = (formatting.number(arms["treatment"].get(field)), formatting.number(arms["holdout"].get(field)))
        row = {"label": label, "treated": values[0], "held_out": values[1], "effect": "", "interval": "",
               "p_value": "", "verdict": VERDICTS["too early"]}
        if metric:
            spell, spell_ci = ((formatting.points, formatting.points_interval) if key == "conversion"
                               else (formatting.signed, formatting.signed_interval))
            row.update(effect=spell(metric["diff"]), interval=spell_ci(metric["diff_ci"]),
                       p_value=formatting.p_value(metric["p_value"]), verdict=VERDICTS.get(metric["status"], ""))
        rows.append(row)
    return rows


def _variant_row(row: dict) -> dict:
    conv = row["conversion"] or {}
    revenue = row["revenue_per_send"] or {}
    return {
        "variant": row["variant"], "sent": formatting.count(row["sent"]), "rate": formatting.percent(row["rate"]),
        "effect": formatting.points(conv.get("diff")), "interval": formatting.points_interval(conv.get("diff_ci", [None, None])),
        "p_value": formatting.p_value(conv.get("p_value_adjusted", conv.get("p_value"))),
        "revenue": formatting.signed(revenue.get("diff")),
        "revenue_interval": formatting.signed_interval(revenue.get("diff_ci", [None, None])),
        "verdict": VERDICTS.get(row["status"], row["status"]),
    }


@role_required(VIEWER)
def automation_detail(request, automation_id: int):
    automation = get_object_or_404(Automation.objects.select_related("trigger_segment", "audience_segment",
                                                                     "current_version", "offer"), pk=automation_id)
    status = selectors.automation_status(automation)
    funnel = selectors.automation_funnel(automation)
    top = max([b["count"] for b in funnel] or [0])
    for bar in funnel:
        bar["share"] = bar["count"] / top * 100 if top else 0
    steps = []
    counts = {s["index"]: s for s in status["steps"]}
    for step in automation.current_version.steps.prefetch_related("variants").order_by("index"):
        steps.append({"step": step, "variants": list(step.variants.all()), "counts": counts.get(step.index, {})})
    context = {
        "automation": automation, "status": status, "funnel": funnel, "steps": steps,
        "report": _report_view(status["report"]), "can_edit": has_role(request.user, MARKETER),
    }
    template = "campaigns/automations/_live.html" if request.htmx else "campaigns/automations/detail.html"
    return render(request, template, context)


ACTIONS = {"pause": automation_pause, "resume": automation_resume, "archive": automation_archive}


@role_required(MARKETER)
@require_POST
def automation_action(request, automation_id: int, action: str):
    automation = get_object_or_404(Automation, pk=automation_id)
    if action not in ACTIONS:
        raise Http404("No such action.")
    try:
        ACTIONS[action](automation.id)
    except CampaignError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Automation {action} done.")
    return redirect("automations:detail", automation_id=automation.id)


def _spec_from_post(post) -> dict:
    kind = post.get("trigger_kind", "")
    if kind == "segment":
        trigger: dict = {"segment": int(post["trigger_segment"]) if post.get("trigger_segment", "").isdigit() else ""}
    elif kind == "event":
        trigger = {"event": post.get("trigger_event", "").strip()}
    elif kind == "date":
        offset = post.get("date_offset_days", "0").strip() or "0"
        if not offset.lstrip("-").isdigit():
            raise CampaignError("days before/after the date: a whole number")
        trigger = {"date": {"attribute": post.get("date_attribute", "").strip(), "offset_days": int(offset)}}
    else:
        raise CampaignError("choose what starts the automation")
    steps = []
    for i in range(STEP_SLOTS):
        subject = post.get(f"s{i}_subject", "").strip()
        if not subject:
            continue
        steps.append({
            "wait_hours": float(post.get(f"s{i}_wait") or 0) * (24 if post.get(f"s{i}_unit") == "days" else 1),
            "unless": post.get(f"s{i}_unless", ""),
            "variants": [{"name": "a", "subject": subject, "text": post.get(f"s{i}_text", ""),
                          "html": post.get(f"s{i}_html", "")}],
        })
    reentry = post.get("reentry_days", "").strip()
    spec = {
        "name": post.get("name", "").strip(), "trigger": trigger, "steps": steps,
        "holdout": float(post.get("holdout") or 0) / 100,
        "reentry_days": int(reentry) if reentry.isdigit() else None,
        "exit": [e for e in post.getlist("exit") if e in EXIT_RULES],
        "include_current": kind == "segment" and post.get("include_current") == "on",
        "attribution_days": post.get("attribution_days") or 7,
    }
    if post.get("audience", "").isdigit():
        spec["audience"] = int(post["audience"])
    if post.get("frequency_cap"):
        spec["frequency_cap"] = post["frequency_cap"]
    if post.get("quiet_start") and post.get("quiet_end"):
        spec["quiet_hours"] = {"start": post["quiet_start"], "end": post["quiet_end"]}
    return spec


@role_required(MARKETER)
def automation_new(request):
    form = request.POST if request.method == "POST" else {}
    status = 200
    if request.method == "POST":
        try:
            automation = automation_create(_spec_from_post(request.POST), user=request.user)
        except (CampaignError, ValueError) as exc:
            messages.error(request, f"The automation was not saved: {exc}")
            status = 400
        else:
            messages.success(request, "Automation started: from now on its trigger brings customers in.")
            return redirect("automations:detail", automation_id=automation.id)
    context = {"form": form, "segments": Segment.objects.order_by("name"), "step_slots": range(STEP_SLOTS),
               "exit_rules": EXIT_RULES}
    return render(request, "campaigns/automations/new.html", context, status=status)
