"""Automation pages: the list with live counts, an automation's page (its steps as a vertical
flow, the funnel, the always-valid report, controls), and the builder."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from core import formatting
from core.db import is_postgres
from core.roles import MARKETER, VIEWER, has_role, role_required
from customers.models import Customer
from segments.models import Segment
from segments.selectors import segment_customers

from . import builder, selectors
from ..errors import CampaignError
from ..models import Automation
from ..services.automations.create import EXIT_RULES, automation_create
from ..services.automations.lifecycle import automation_archive, automation_pause, automation_resume
from ..services.automations.preview import variant_preview


@role_required(VIEWER)
def automation_index(request):
    rows = []
    for automation in selectors.automation_list()[:100]:
        counts = selectors.automation_counts(automation)
        steps = selectors.automation_steps(automation)
        rows.append({"automation": automation, **counts, "sent": sum(s["sent"] for s in steps),
                     "pending": sum(s["pending"] for s in steps)})
    template = "campaigns/automations/_rows.html" if request.htmx else "campaigns/automations/index.html"
    return render(request, template, {"rows": rows, "can_edit": has_role(request.user, MARKETER),
                                      "needs_postgres": not is_postgres()})


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
        "needs_postgres": not is_postgres(),
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


def _segment_names() -> dict[str, str]:
    return {str(pk): name for pk, name in Segment.objects.values_list("id", "name")}


def _preview_customers(post) -> list[Customer]:
    """Real customers to preview for: the trigger segment's first members with an email
    (anyone's, for an event or date trigger)."""
    segment_id = post.get("trigger_segment", "") if post.get("trigger_kind", "segment") == "segment" else ""
    segment = Segment.objects.filter(pk=segment_id).first() if segment_id.isdigit() else None
    people = segment_customers(segment) if segment is not None else Customer.objects.all()
    return list(people.exclude(email="").order_by("id")[:25])


def _builder_context(post, **extra) -> dict:
    blocks = builder.step_blocks(post) if post else [builder.new_step(0)]
    chosen = post.get("preview_variant", "") if post else ""
    keys = [v["key"] for step in blocks for v in step["variants"]]
    for step in blocks:
        for variant in step["variants"]:
            variant["checked"] = variant["key"] == (chosen if chosen in keys else keys[0])
    return {"form": post or {}, "blocks": blocks, "segments": Segment.objects.order_by("name"),
            "exit_rules": [(rule, builder.EXIT_WORDS[rule]) for rule in EXIT_RULES],
            "exits_checked": post.getlist("exit") if post else ["ordered"],
            "sentences": builder.sentences(post, _segment_names()) if post else [],
            "customers": _preview_customers(post or {}), "max_steps": builder.MAX_STEPS,
            "max_variants": builder.MAX_VARIANTS, "error": None, "needs_postgres": not is_postgres()} | extra


@role_required(MARKETER)
def automation_new(request):
    """The builder: steps and variants added and removed in place, a live preview of any
    variant for a real customer, the rules read back as sentences. A spec error re-renders
    the form as it was, with the step, variant and field named and marked."""
    if request.method != "POST":
        return render(request, "campaigns/automations/new.html", _builder_context(None))
    blocks = builder.step_blocks(request.POST)
    try:
        automation = automation_create(builder.spec_from_post(request.POST, EXIT_RULES), user=request.user)
    except CampaignError as exc:
        error = builder.error_place(str(exc), blocks)  # shown above the form and beside its field
        context = _builder_context(request.POST, error=error)
        return render(request, "campaigns/automations/new.html", context, status=400)
    messages.success(request, "Automation started: from now on its trigger brings customers in.")
    return redirect("automations:detail", automation_id=automation.id)


def _next_index(values) -> int:
    return max([int(v) for v in values if str(v).isdigit()], default=-1) + 1


@role_required(MARKETER)
@require_GET
def builder_step(request):
    """htmx: one more step, numbered after the steps the form has (numbers are never reused)."""
    if len([v for v in request.GET.getlist("step") if v.isdigit()]) >= builder.MAX_STEPS:
        return HttpResponseBadRequest(f"At most {builder.MAX_STEPS} steps.")
    step = builder.new_step(_next_index(request.GET.getlist("step")))
    response = render(request, "campaigns/automations/_step.html", {"step": step, "error": None})
    response["HX-Trigger-After-Swap"] = "builder-changed"  # the sentences read the new step
    return response


@role_required(MARKETER)
@require_GET
def builder_variant(request, step: int):
    """htmx: one more variant for step `step`, named after the next free letter."""
    existing = request.GET.getlist(f"s{step}_variant")
    if len(existing) >= builder.MAX_VARIANTS:
        return HttpResponseBadRequest(f"At most {builder.MAX_VARIANTS} variants in a step.")
    j = _next_index(existing)
    taken = {request.GET.get(f"s{step}v{k}_name", "").strip() for k in existing}
    name = next(chr(c) for c in range(ord("a"), ord("z") + 1) if chr(c) not in taken)
    context = {"step": {"i": step}, "variant": builder.new_variant(step, j, name), "removable": True, "error": None}
    response = render(request, "campaigns/automations/_builder_variant.html", context)
    response["HX-Trigger-After-Swap"] = "builder-changed"
    return response


@role_required(MARKETER)
@require_GET
def builder_remove(request):
    """htmx: the removed block's place, now empty; the event tells the preview and the
    sentences to read the form again."""
    return HttpResponse("", headers={"HX-Trigger-After-Swap": "builder-changed"})


@role_required(MARKETER)
@require_GET
def builder_customers(request):
    """htmx: the preview's customer choices for the trigger segment just chosen."""
    response = render(request, "campaigns/pages/_customer_options.html", {"customers": _preview_customers(request.GET)})
    response["HX-Trigger-After-Swap"] = "builder-changed"  # the preview renders again, for one of them
    return response


@role_required(MARKETER)
@require_POST
def builder_preview(request):
    """htmx: the chosen variant rendered for the chosen real customer (same sandbox and
    budget as a send; nothing saved), and the rules as sentences (out of band)."""
    post = request.POST
    blocks = builder.step_blocks(post)
    chosen = post.get("preview_variant", "")
    found = None
    for n, step in enumerate(blocks):
        for j, variant in enumerate(step["variants"]):
            if variant["key"] == chosen or (found is None and not chosen):
                found = (n, j, variant)
    customer = Customer.objects.filter(pk=post.get("preview_customer") or 0).first()
    context: dict = {"customer": customer, "message": None, "error": "", "where": "",
                     "sentences": builder.sentences(post, _segment_names())}
    if found is None:
        context["error"] = "Add a step with a variant to see its preview."
    else:
        n, j, variant = found
        context["where"] = f"Step {n + 1}, variant {variant['name'] or chr(ord('a') + j % 26)}"
        if customer is None:
            context["error"] = "No customer to preview for: import customers, or choose a segment with members."
        elif not variant["subject"].strip() or not (variant["text"].strip() or variant["html"].strip()):
            context["error"] = f"{context['where']}: write a subject and a text or HTML body to see the preview."
        else:
            try:
                context["message"] = variant_preview(builder.variant_spec(variant, j), customer,
                                                     where=f"{context['where']}: ")
            except CampaignError as exc:
                context["error"] = str(exc)
    return render(request, "campaigns/automations/_builder_preview.html", context)
