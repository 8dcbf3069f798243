"""The marketer's segment pages: the list with trends, the rule builder with a live count,
a segment's history and members, models (train, read their metrics) and migration.

The rule builder posts plain form fields (one row per condition); `rule_from_form` turns
them into the same JSON rule the API takes, typed by the field registry, so the builder can
never express something the API could not.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.contrib import messages
from django.http import QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from core import charts
from core.jobs import Track, enqueue
from core.pagination import keyset_page
from core.selectors import jobs_for
from core.nul import NUL_MESSAGE, nul_paths
from core.roles import MARKETER, VIEWER, has_role, role_required
from core.schedules import schedule_describe

from . import rules, selectors
from .sentences import error_words, op_name, rule_sentence
from .models import Segment, SegmentRefresh
from .services import membership, schedules, specs

MAX_ROWS = 20
ROW_FIELD = re.compile(r"^c(\d+)_field$")
LIST_OPS = {"in", "not_in"}


# --------------------------------------------------------------------------- the list


@role_required(VIEWER)
def segment_index(request):
    segments = list(selectors.segment_list())
    history: dict[int, list[int]] = {}
    for refresh in SegmentRefresh.objects.filter(segment__in=segments).order_by("version"):
        history.setdefault(refresh.segment_id, []).append(refresh.size)
    rows = [
        {"segment": s, **dict(zip(("spark", "trend"), charts.size_trend(history.get(s.id, [])[-20:],
                                                                        title=f"{s.name}: size at each refresh")))}
        for s in segments
    ]
    return render(request, "segments/pages/index.html", {"rows": rows, "can_edit": has_role(request.user, MARKETER)})


# --------------------------------------------------------------------------- the builder


def _typed(kind: str, text: str) -> Any:
    text = text.strip()
    if kind in ("integer", "segment"):
        try:
            return int(text)
        except ValueError:
            return text  # the validator names the path and the problem
    if kind == "number":
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "boolean":
        return {"true": True, "yes": True, "false": False, "no": False}.get(text.lower(), text)
    return text


def _value(field: dict, op: str, text: str) -> Any:
    if op == "is_null":
        return text.strip().lower() not in ("false", "no", "0")
    if op == "within_last_days":
        return _typed("integer", text)
    if op in LIST_OPS:
        return [_typed(field["type"], part) for part in text.split(",") if part.strip()]
    if op == "between":
        return [_typed(field["type"], part) for part in text.split(",")]
    return _typed(field["type"], text)


def rule_from_form(data: QueryDict, fields: dict[str, dict]) -> dict | None:
    """The JSON rule the form describes; the advanced JSON box wins when filled."""
    raw = data.get("rule_json", "").strip()
    if raw:
        try:
            rule = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise rules.RuleInvalid([rules.RuleError("rule", f"not valid JSON: {exc.msg} at character {exc.pos}")]) from None
        # A \u0000 escape decodes to a NUL byte, which PostgreSQL cannot compare: refuse it here.
        problems = [rules.RuleError(f"rule.{path}" if path != "body" else "rule", NUL_MESSAGE) for path in nul_paths(rule)]
        if problems:
            raise rules.RuleInvalid(problems)
        return rule
    conditions = []
    for i in data.getlist("row"):
        name = data.get(f"c{i}_field", "")
        if not name:
            continue
        field = fields.get(name, {"type": "text", "args": {}})
        op = data.get(f"c{i}_op") or (field.get("operators") or ["eq"])[0]
        condition: dict[str, Any] = {"field": name, "op": op, "value": _value(field, op, data.get(f"c{i}_value", ""))}
        args = {a: _typed(spec["type"], data.get(f"c{i}_arg_{a}", "")) for a, spec in (field.get("args") or {}).items()
                if data.get(f"c{i}_arg_{a}", "").strip()}
        if args:
            condition["args"] = args
        conditions.append({"not": condition} if data.get(f"c{i}_not") else condition)
    if not conditions:
        return None
    return {data.get("combine", "all") if data.get("combine") in ("all", "any") else "all": conditions}


def _registry() -> tuple[dict, dict[str, dict]]:
    described = selectors.field_registry_describe()
    return described, {f["name"]: f for f in described["fields"]}


def _field_types() -> dict[str, dict]:
    """Types, operators and arguments of every field, without the known values a picker
    shows: reading those costs several queries, and a live preview needs only the types."""
    return {name: spec.describe() for name, spec in selectors.field_registry().fields.items()}


def _row_context(index: int, fields: dict[str, dict], chosen: dict | None = None) -> dict:
    """One builder row: the field, its operators by their human names, and value
    suggestions (only the field's known values: never its own description)."""
    chosen = chosen or {}
    field = fields.get(chosen.get("field", ""))
    ops = [(op, op_name(op)) for op in (field or {}).get("operators", [])]
    suggestions = [v for v in (field or {}).get("values", []) if not isinstance(v, (dict, list))]
    return {"index": index, "field": field, "chosen": chosen, "ops": ops, "suggestions": suggestions}


def _rows_from_rule(rule: Any, fields: dict[str, dict]) -> tuple[list[dict], str, bool]:
    """Builder rows for a saved rule: (rows, "all" or "any", whether the rows can show it).
    A flat all/any of conditions (each maybe negated) fits the rows; deeper trees go to
    the JSON box."""
    if isinstance(rule, dict) and ("field" in rule or set(rule) == {"not"}):
        rule = {"all": [rule]}  # one condition (as the API and older saves store it) is one row
    if not isinstance(rule, dict) or len(rule) != 1:
        return [], "all", False
    combine, items = next(iter(rule.items()))
    if combine not in ("all", "any") or not isinstance(items, list):
        return [], "all", False
    rows = []
    for i, item in enumerate(items):
        negated = isinstance(item, dict) and set(item) == {"not"}
        condition = item["not"] if negated else item
        if not isinstance(condition, dict) or "field" not in condition:
            return [], "all", False
        value = condition.get("value")
        text = ", ".join(map(_shown_value, value)) if isinstance(value, list) else _shown_value(value)
        chosen = {"field": condition["field"], "op": condition.get("op"), "value": text, "not": negated,
                  "args": condition.get("args") or {}}
        rows.append(_row_context(i, fields, chosen))
    return rows, combine, True


def _shown_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _labels() -> dict[str, str]:
    return {name: spec.label or name for name, spec in selectors.field_registry().fields.items()}


def _problems(exc: rules.RuleInvalid, rule: Any) -> list[str]:
    """The rule's problems as sentences naming the condition ("Condition 2 (Country): ...")."""
    return error_words(exc.as_list(), rule, _labels())


def _spec_problems(exc: specs.SpecInvalid, rule: Any) -> str:
    rule_errors = [e for e in exc.errors if e["path"].startswith("rule")]
    other = [f"{e['path'].capitalize()}: {e['message']}" for e in exc.errors if not e["path"].startswith("rule")]
    return " ".join(error_words(rule_errors, rule, _labels()) + other)


def _posted_rows(data: QueryDict, fields: dict[str, dict]) -> list[dict]:
    """The rows as posted, so a refused save shows what was typed."""
    rows = []
    for i in data.getlist("row"):
        chosen = {"field": data.get(f"c{i}_field", ""), "op": data.get(f"c{i}_op"), "value": data.get(f"c{i}_value", ""),
                  "not": bool(data.get(f"c{i}_not"))}
        rows.append(_row_context(int(i) if i.isdigit() else 0, fields, chosen))
    return rows or [_row_context(0, fields)]


@role_required(MARKETER)
def segment_new(request):
    described, fields = _registry()
    if request.method == "POST":
        rule = None
        try:
            rule = rule_from_form(request.POST, fields)
            spec = {"name": request.POST.get("name", "").strip(), "kind": "rule", "rule": rule,
                    "description": request.POST.get("description", "")}
            segment = membership.segment_create(spec, user=request.user)
        except rules.RuleInvalid as exc:
            messages.error(request, "The segment was not saved. " + " ".join(_problems(exc, rule)))
        except specs.SpecInvalid as exc:
            messages.error(request, "The segment was not saved. " + _spec_problems(exc, rule))
        else:
            # On a worker, like every other refresh: a rule over a million customers takes
            # longer than a page should wait. The segment's page shows the job.
            enqueue("segments.tasks.segment_refresh", segment.id,
                    track=Track("segment_refresh", f"Count the members of {segment.name}",
                                target=segment_target(segment.id), user=request.user))
            messages.success(request, f"Segment {segment.name} saved; its members are being counted.")
            return redirect("segments:detail", segment_id=segment.id)
        rows = _posted_rows(request.POST, fields)
    else:
        rows = [_row_context(0, fields)]
    return render(request, "segments/pages/new.html",
                  {"described": described, "fields": fields, "rows": rows, "form": request.POST, "combine": "all"})


@role_required(MARKETER)
def segment_edit(request, segment_id: int):
    """Edit a saved rule segment: the same builder, prefilled. Saving keeps the new
    definition as the next revision (the earlier ones stay listed) and refreshes it."""
    segment = get_object_or_404(Segment, pk=segment_id)
    if segment.kind != Segment.Kind.RULE:
        messages.error(request, "Only rule segments are edited here; a model segment follows its model.")
        return redirect("segments:detail", segment_id=segment.id)
    described, fields = _registry()
    if request.method == "POST":
        rule = None
        try:
            rule = rule_from_form(request.POST, fields)
            if rule is None:
                raise rules.RuleInvalid([rules.RuleError("rule", "add at least one condition")])
            changes = {"name": request.POST.get("name", "").strip(), "rule": rule,
                       "description": request.POST.get("description", "")}
            membership.segment_update(segment, changes, user=request.user)
        except rules.RuleInvalid as exc:
            messages.error(request, "Nothing was changed. " + " ".join(_problems(exc, rule)))
        except specs.SpecInvalid as exc:
            messages.error(request, "Nothing was changed. " + _spec_problems(exc, rule))
        else:
            enqueue("segments.tasks.segment_refresh", segment.id,
                    track=Track("segment_refresh", f"Refresh {segment.name} with its new rule",
                                target=segment_target(segment.id), user=request.user))
            messages.success(request, "Saved as a new revision; its members are being refreshed.")
            return redirect("segments:detail", segment_id=segment.id)
        rows, combine, fits = _posted_rows(request.POST, fields), request.POST.get("combine", "all"), True
        form = request.POST
    else:
        rows, combine, fits = _rows_from_rule(segment.rule, fields)
        form = {"name": segment.name, "description": segment.description,
                "rule_json": "" if fits else json.dumps(segment.rule, indent=2)}
        rows = rows or [_row_context(0, fields)]
    context = {"described": described, "fields": fields, "rows": rows, "form": form, "combine": combine,
               "segment": segment, "json_only": not fits}
    return render(request, "segments/pages/new.html", context)


@role_required(MARKETER)
@require_POST
def segment_duplicate(request, segment_id: int):
    segment = get_object_or_404(Segment, pk=segment_id)
    copy = membership.segment_duplicate(segment, user=request.user)
    if copy.kind == Segment.Kind.RULE:
        messages.success(request, f"{copy.name} made: change what you need and save.")
        return redirect("segments:edit", segment_id=copy.id)
    enqueue("segments.tasks.segment_refresh", copy.id,
            track=Track("segment_refresh", f"Refresh {copy.name}", target=segment_target(copy.id), user=request.user))
    return redirect("segments:detail", segment_id=copy.id)


@role_required(VIEWER)
def rule_row(request):
    """htmx: one condition row, rebuilt when its field changes or a row is added."""
    _, fields = _registry()
    if "index" in request.GET:  # a row rebuilt in place
        try:
            index = min(int(request.GET["index"]), MAX_ROWS)
        except ValueError:
            index = 0
    else:  # "Add condition" sends the rows there are (no script: the CSP allows none inline)
        taken = [int(m.group(1)) for key in request.GET if (m := ROW_FIELD.match(key))]
        index = min(max(taken, default=-1) + 1, MAX_ROWS)
    chosen = {"field": request.GET.get(f"c{index}_field", ""), "not": bool(request.GET.get(f"c{index}_not"))}
    return render(request, "segments/pages/_row.html", {"row": _row_context(index, fields, chosen), "fields": fields})


@role_required(VIEWER, read_only=False)
@require_POST
def rule_preview(request):
    """htmx: count and sample members of the rule being built; nothing is saved."""
    fields = _field_types()
    context: dict[str, Any] = {}
    rule = None
    try:
        rule = rule_from_form(request.POST, fields)
        if rule is None:
            context["empty"] = True
        else:
            context["result"] = selectors.segment_preview(rule, sample=10)
    except rules.RuleInvalid as exc:
        context["errors"] = _problems(exc, rule)
    return render(request, "segments/pages/_preview.html", context)


# --------------------------------------------------------------------------- one segment


@role_required(VIEWER)
def segment_detail(request, segment_id: int):
    segment = get_object_or_404(Segment.objects.select_related("model"), pk=segment_id)
    if "page" in request.GET:  # a link from before keyset pages: numbered pages are gone
        return redirect("segments:detail", segment_id=segment.id)
    history = list(selectors.segment_history(segment)[:30])
    chart = ""
    if len(history) > 1:
        ordered = list(reversed(history))
        chart = charts.line_chart(
            [charts.Series("size", [h.version for h in ordered], [h.size for h in ordered])],
            title=f"Size of {segment.name} at each refresh", x_label="refresh", y_label="customers",
        )
    # By keyset, not OFFSET: page 10,000 of a million members read 250,000 rows to skip.
    members = keyset_page(selectors.segment_member_rows(segment), after=request.GET.get("after"),
                          before=request.GET.get("before"), last="last" in request.GET, size=25, key="customer_id")
    context = {
        "segment": segment,
        "history": history,
        "chart": mark_safe(chart),
        "members": members,
        "schedule": schedule_describe(schedules.segment_schedule(segment)),
        "can_edit": has_role(request.user, MARKETER),
        "jobs": jobs_for(segment_target(segment.id)),
        "sentence": rule_sentence(segment.rule, _labels()) if segment.rule else "",
        "revisions": _revisions(segment),
    }
    return render(request, "segments/pages/detail.html", context)


def _revisions(segment: Segment) -> list[dict]:
    labels = _labels() if segment.kind == Segment.Kind.RULE else {}
    return [{"revision": r.revision, "name": r.name, "changed_at": r.changed_at, "by": r.changed_by,
             "sentence": rule_sentence(r.rule, labels) if r.rule else ""}
            for r in segment.revisions.select_related("changed_by")[:20]]


def segment_target(segment_id: int) -> str:
    return f"segments.segment:{segment_id}"




@role_required(MARKETER)
@require_POST
def segment_refresh(request, segment_id: int):
    segment = get_object_or_404(Segment, pk=segment_id)
    # On a worker: a family or a large base takes longer than a page should wait.
    enqueue("segments.tasks.segment_refresh", segment.id,
            track=Track("segment_refresh", f"Refresh {segment.name}", target=segment_target(segment.id), user=request.user))
    return redirect("segments:detail", segment_id=segment.id)


@role_required(MARKETER)
@require_POST
def segment_schedule(request, segment_id: int):
    segment = get_object_or_404(Segment, pk=segment_id)
    every = request.POST.get("every", "")
    try:
        if every == "never":
            schedules.segment_schedule_clear(segment)
        elif every == "hour":
            schedules.segment_schedule_set(segment, {"every_minutes": 60})
        else:
            schedules.segment_schedule_set(segment, {"every": every, "at": request.POST.get("at") or "06:00"})
    except specs.SpecInvalid as exc:
        messages.error(request, f"Schedule not saved: {exc}")
    else:
        messages.success(request, "Schedule saved.")
    return redirect("segments:detail", segment_id=segment.id)
