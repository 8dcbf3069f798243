"""Experiment pages: the list, the report with its charts, exports, the sample-size planner."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from core import charts, formatting
from core.jobs import Track, enqueue
from core.selectors import jobs_for
from core.roles import MARKETER, VIEWER, has_role, role_required

from . import presentation, readout, selectors
from .verdicts import ENGINES, report_for_engine
from .kinds import kind_get
from .breakdowns import breakdown_choices
from .models import Experiment
from .services.reports import experiment_target, report_refresh, report_refresh_enqueue
from .services.uplift import uplift_model_concerns
from .stats import planning



def _experiment(experiment_id: int) -> Experiment:
    try:
        return selectors.experiment_get(experiment_id)
    except Experiment.DoesNotExist:
        raise Http404("No such experiment.") from None


def _report_body(experiment: Experiment) -> tuple[dict, bool]:
    """The cached report, computing it on the spot the first time; and whether it is fresh."""
    report = selectors.report_cached(experiment)
    if report is None:
        report = report_refresh(experiment)
    return report.body, selectors.report_is_fresh(experiment, report)


@role_required(VIEWER)
def experiment_index(request):
    rows = []
    now = timezone.now()
    for experiment in selectors.experiment_list()[:200]:
        report = selectors.report_cached(experiment)
        rows.append({"experiment": experiment, "report": report.body if report else None,
                     "headline": readout.headline(report.body, now) if report else None})
    return render(request, "experiments/index.html", {"rows": rows})


def _metric_chart(metric: dict) -> str:
    percent = kind_get(metric["kind"]).share
    rows = [(a["arm"], a["mean"], *(a["ci"] or [None, None])) for a in metric["arms"]]
    label = "share of units" if percent else "mean per unit"
    return charts.interval_chart(rows, title=f"{metric['name']} by arm", value_label=label, percent=percent)


def _retention_chart(retention: dict) -> str | None:
    curves = retention.get("kaplan_meier") or []
    if not curves:
        return None
    # Each curve starts at day 0 with nobody back and runs flat to the last day looked at: a
    # curve whose returns all fell on one day is otherwise a single point, which draws nothing.
    horizon = max([d["day"] for d in retention.get("day_n", [])] + [t for c in curves for t in c["time"]], default=0)

    def framed(values: list) -> list:
        return [0.0, *values, values[-1] if values else 0.0]

    series = [
        charts.Series(c["arm"], [0, *c["time"], horizon],
                      framed([1 - s for s in c["survival"]]),
                      lo=framed([None if h is None else 1 - h for h in c["hi"]]),
                      hi=framed([None if lo is None else 1 - lo for lo in c["lo"]]), step=True)
        for c in curves
    ]
    return charts.line_chart(series, title="Share of units who came back, by days since exposure (Kaplan-Meier)",
                             x_label="days since exposure", y_label="returned", y_percent=True)


def _cumulative_chart(experiment: Experiment, body: dict) -> str | None:
    """The over-time curve the worker stored with the report (reports._cumulative).

    Only customer experiments have it: their conversions have times; imported ones do not.
    A report stored before the curve was part of it is recomputed by the worker (its
    fingerprint names the report's format); until then the page shows it without the curve."""
    cumulative = body.get("cumulative")
    if experiment.source != Experiment.Source.CUSTOMERS or not cumulative or not cumulative.get("series"):
        return None
    control = cumulative["control"]
    event = cumulative.get("event") or "order"
    did = "ordered" if event == "order" else f"had a '{event}' event"
    return charts.line_chart(
        [charts.Series(s["arm"], s["day"], s["diff"], lo=s["lo"], hi=s["hi"]) for s in cumulative["series"]],
        title=f"Difference from {control} in the share who {did}, by days since exposure",
        x_label="days since exposure", y_label="difference vs control", y_percent=True, zero_line=True,
    )


@role_required(VIEWER)
def experiment_detail(request, experiment_id: int):
    experiment = _experiment(experiment_id)
    body, fresh = _report_body(experiment)
    engine = request.GET.get("engine", "frequentist")
    body = report_for_engine(body, engine if engine in ENGINES else "frequentist")
    by, by_error, breakdown = request.GET.get("by", "").strip()[:100], "", None
    if by:
        try:
            breakdown = report_refresh(experiment, by=by).body.get("breakdown")
        except ValueError as exc:
            by_error = str(exc)
    now = timezone.now()
    early = readout.readiness(body, now)
    headline = readout.headline(body, now)
    metrics = [
        {"data": m, "chart": mark_safe(_metric_chart(m)), "rows": readout.comparison_rows(m, body, early),
         "axis": readout.axis_text(m) if m["comparisons"] else "", "share": kind_get(m["kind"]).share}
        for m in body["metrics"]
    ]
    total_weight = sum(a["weight"] for a in body["arms"]) or 1
    arms = [{**a, "share": formatting.percent(a["weight"] / total_weight, 1)} for a in body["arms"]]
    retention = body.get("retention")
    context = {
        "experiment": experiment,
        "body": body,
        "fresh": fresh,
        "metrics": metrics,
        "retention": retention,
        "retention_chart": mark_safe(_retention_chart(retention) or "") if retention else "",
        "cumulative_chart": mark_safe(_cumulative_chart(experiment, body) or ""),
        "can_edit": has_role(request.user, MARKETER),
        "uplift_models": experiment.uplift_models.order_by("-id")[:5],
        "by": by, "by_error": by_error, "breakdown": breakdown,
        "by_choices": breakdown_choices(experiment),
        "breakdown_rows": readout.breakdown_rows(breakdown) if breakdown else [],
        "early": early,
        "headline": headline,
        # The verdict adds the interval and p to the headline; where it would only repeat it
        # (too early, not testable), it is left out.
        "verdict_repeats": (body.get("verdict") or "").startswith(headline["text"].rstrip(". ")),
        "power_sentences": readout.power_sentences(body),
        "confidence": f"{(1 - body['alpha']) * 100:g}",
        "arms": arms,
        "jobs": jobs_for(experiment_target(experiment.id)),
    }
    return render(request, "experiments/detail.html", context)


@role_required(MARKETER)
@require_POST
def experiment_refresh(request, experiment_id: int):
    experiment = _experiment(experiment_id)
    # On a worker: a large experiment takes longer than a page should wait; the page
    # shows the job until it is done (or failed, with the reason and a retry).
    report_refresh_enqueue(experiment, force=True, user=request.user, tracked=True)
    return redirect("experiments:detail", experiment_id=experiment.id)


@role_required(VIEWER)
def experiment_export_csv(request, experiment_id: int):
    experiment = _experiment(experiment_id)
    body, _ = _report_body(experiment)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="experiment-{experiment.id}.csv"'
    presentation.report_csv_write(body, response)
    return response


@role_required(VIEWER)
def experiment_export_json(request, experiment_id: int):
    body, _ = _report_body(_experiment(experiment_id))
    response = JsonResponse(body, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="experiment-{experiment_id}.json"'
    return response


def _float(request, name: str, default: float, lo: float, hi: float, errors: list[str], label: str) -> float:
    raw = request.GET.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        errors.append(f"{label}: {raw!r} is not a number.")
        return default
    if not lo < value < hi:
        errors.append(f"{label} must be between {lo:g} and {hi:g}.")
        return default
    return value


@role_required(VIEWER)
def experiment_plan(request):
    """How many customers per arm to detect a lift, before launching."""
    errors: list[str] = []
    baseline = _float(request, "baseline", 2.0, 0, 100, errors, "Baseline conversion (%)") / 100
    lift = _float(request, "lift", 10.0, 0, 1000, errors, "Relative lift to detect (%)") / 100
    alpha = _float(request, "alpha", 0.05, 0, 0.5, errors, "Alpha")
    power = _float(request, "power", 0.8, 0, 1, errors, "Power")
    result = None
    if not errors and baseline * (1 + lift) < 1:
        result = planning.sample_size_plan(lift, baseline=baseline, relative=True, alpha=alpha, power=power)
    elif not errors:
        errors.append("Baseline times (1 + lift) must stay below 100%.")
    context = {
        "baseline": baseline * 100, "lift": lift * 100, "alpha": alpha, "power": power,
        "result": result, "errors": errors,
    }
    if result:
        # Enough digits that the two rates never read the same ("from 2% to 2%").
        context["rates"] = formatting.percent_pair(baseline, result["treatment_rate"])
        context["power_text"] = formatting.percent(power, 0)
        context["points"] = formatting.points(result["treatment_rate"] - baseline)
    if request.htmx:
        return render(request, "experiments/_plan_result.html", context)
    return render(request, "experiments/plan.html", context)


@role_required(VIEWER)
def uplift_detail(request, model_id: int):
    """Who gains most from the treatment: the Qini curve against random targeting, the
    deciles, and (for a Marketer) a segment of the top X% for the next campaign."""
    try:
        model = selectors.uplift_model_get(model_id)
    except Exception:
        raise Http404("No such uplift model.") from None
    info = model.info or {}
    qini = info.get("qini") or {}
    chart = ""
    if qini.get("fraction"):
        chart = charts.line_chart(
            [charts.Series("targeting by predicted uplift", qini["fraction"], qini["model"]),
             charts.Series("random targeting", qini["fraction"], qini["random"], dashed=True)],
            title="Qini curve on held-out units: extra conversions per unit of population",
            x_label="share of customers targeted", y_label="incremental outcome per unit", x_percent=True,
        )
    context = {
        "model": model,
        "info": info,
        "chart": mark_safe(chart),
        "can_edit": has_role(request.user, MARKETER),
        "concerns": uplift_model_concerns(model.id),
        "jobs": jobs_for(uplift_target(model.id)),
    }
    return render(request, "experiments/uplift.html", context)


def uplift_target(model_id: int) -> str:
    return f"experiments.uplift:{model_id}"


@role_required(MARKETER)
@require_POST
def uplift_segment(request, model_id: int):
    """Close the loop: the top X% by predicted uplift becomes a segment for the next campaign.

    Scoring every customer takes a while: it runs as a job this page shows. A model with no
    signal or a likely leak is refused here unless the override box is ticked."""
    try:
        model = selectors.uplift_model_get(model_id)
    except Exception:
        raise Http404("No such uplift model.") from None
    try:
        fraction = float(request.POST.get("top", "")) / 100
    except ValueError:
        fraction = -1
    if not 0 < fraction <= 1:
        messages.error(request, "No segment was made: the top share must be a number above 0 and at most 100 (%).")
        return redirect("experiments:uplift", model_id=model_id)
    override = request.POST.get("override") == "yes"
    concerns = uplift_model_concerns(model.id)
    if concerns and not override:
        messages.error(request, "No segment was made: read the warning above and tick the box to make one anyway.")
        return redirect("experiments:uplift", model_id=model_id)
    ties = "include" if request.POST.get("ties") == "include" else ""
    name = request.POST.get("name", "").strip() or f"uplift-{model_id}-top"
    enqueue("experiments.tasks.uplift_segment_create", model.id, fraction, name, ties, override, request.user.id,
            track=Track("uplift_segment", f"Make segment {name} (top {fraction * 100:g}% by predicted uplift)",
                        target=uplift_target(model.id), user=request.user))
    return redirect("experiments:uplift", model_id=model_id)
