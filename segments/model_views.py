"""The Models pages: train a model (as a tracked job), read its metrics in words, and make the
segments of a model the guard rail held back only on an explicit override."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from core import charts
from core.jobs import Track, enqueue
from core.roles import MARKETER, VIEWER, has_role, role_required
from core.selectors import jobs_for

from .forms import KIND_LABELS, ModelTrainForm, attribute_choices, form_error_words
from .ml.explain import key_metric, metric_rows
from .models import SegmentModel

MODELS_TARGET = "segments.models"


@role_required(VIEWER)
def model_index(request):
    models = list(SegmentModel.objects.defer("pipeline").order_by("name", "-version"))
    for m in models:
        m.key_metric = key_metric(m.metrics or {})
        m.concerns = (m.info or {}).get("concerns") or []
    context = {
        "models": models,
        "can_edit": has_role(request.user, MARKETER),
        "kinds": KIND_LABELS,
        "attributes": attribute_choices(),
        "jobs": jobs_for(MODELS_TARGET, limit=8),
    }
    return render(request, "segments/pages/models.html", context)


@role_required(MARKETER)
@require_POST
def model_train(request):
    form = ModelTrainForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Nothing was trained. " + form_error_words(form))
        return redirect("segments:models")
    kind = form.cleaned_data["kind"]
    # Queued with a Job: the Models page shows it queued, running, done (with a link to the
    # model) or failed with the reason and a retry, instead of promising it will appear.
    enqueue("segments.tasks.model_train", kind, track=Track("model_train", form.describe(), target=MODELS_TARGET,
                                                            user=request.user), **form.options())
    return redirect("segments:models")


def _against_diagonal(xs: list, ys: list, diagonal: str, **labels: str):
    """A model's curve on the unit square next to the dashed diagonal it should beat or match."""
    series = [charts.Series("model", xs, ys), charts.Series(diagonal, [0, 1], [0, 1], dashed=True)]
    return charts.line_chart(series, y_range=(0, 1), **labels)


def _curve(points: list, x: str, y: str) -> tuple[list, list]:
    return [p[x] for p in points], [p[y] for p in points]


@role_required(VIEWER)
def model_detail(request, model_id: int):
    model = get_object_or_404(SegmentModel.objects.defer("pipeline"), pk=model_id)
    info = model.info or {}
    figures = []
    if info.get("silhouette_by_k"):
        ks, scores = _curve(info["silhouette_by_k"], "k", "silhouette")
        figures.append(charts.line_chart([charts.Series("silhouette", ks, scores)],
                                         title="Silhouette by number of clusters (higher is better)",
                                         x_label="k", y_label="silhouette"))
    if info.get("roc_curve"):
        roc = info["roc_curve"]
        figures.append(_against_diagonal(roc["fpr"], roc["tpr"], "random", title="ROC curve on held-out customers",
                                         x_label="false positive rate", y_label="true positive rate"))
    if info.get("calibration"):
        cal = info["calibration"]
        figures.append(_against_diagonal(cal["prob_pred"], cal["prob_true"], "perfect",
                                         title="Calibration: predicted against observed churn",
                                         x_label="predicted", y_label="observed"))
    importance = info.get("feature_importance") or []
    context = {
        "model": model,
        "figures": [mark_safe(f) for f in figures],
        "clusters": info.get("clusters") or [],
        "importance": importance[:15],
        "segments": model.segments.order_by("id"),
        "metrics": metric_rows(model.metrics or {}),
        "concerns": info.get("concerns") or [],
        "segments_held": bool(info.get("segments_held")),
        "override": info.get("override"),
        "can_edit": has_role(request.user, MARKETER),
        "jobs": jobs_for(model_target(model.id)),
    }
    return render(request, "segments/pages/model_detail.html", context)


def model_target(model_id: int) -> str:
    return f"segments.model:{model_id}"


@role_required(MARKETER)
@require_POST
def model_segments_release(request, model_id: int):
    """The explicit override: make the segments of a model held back by the guard rail."""
    model = get_object_or_404(SegmentModel.objects.defer("pipeline"), pk=model_id)
    if not (model.info or {}).get("segments_held"):
        messages.error(request, "This model's segments are not held back.")
    elif request.POST.get("confirm") != "yes":
        messages.error(request, "Nothing was made: tick the box saying you read the warning and want its segments anyway.")
    else:
        enqueue("segments.tasks.model_segments_release", model.id, request.user.id,
                track=Track("model_segments", f"Make the segments of {model.name} v{model.version} anyway",
                            target=model_target(model.id), user=request.user))
    return redirect("segments:model", model_id=model.id)
