"""Reads of experiments: lookups, the cached report, and what the data look like now."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Max, Prefetch, QuerySet
from django.utils import timezone

from core.lookups import by_name_or_id
from customers.models import Event, Order

from .models import Arm, Experiment, Exposure, Metric, Report, UpliftModel

# A customer experiment's report also depends on the clock (attribution windows close,
# retention censoring moves), so past this age it is stale even if no row changed.
REPORT_MAX_AGE = timedelta(hours=6)
# What a stored report holds; raised when the report gains a section (2: the over-time
# curve), so reports stored before read as stale and the worker recomputes them.
REPORT_FORMAT = 2


def experiment_list() -> QuerySet[Experiment]:
    return Experiment.objects.prefetch_related(
        Prefetch("arms", queryset=Arm.objects.order_by("position", "id")),
        Prefetch("metrics", queryset=Metric.objects.order_by("position", "id")),
    ).order_by("-created_at", "-id")


def experiment_get(name_or_id: str | int) -> Experiment:
    return by_name_or_id(experiment_list(), name_or_id, "experiment")


def experiment_fingerprint(experiment: Experiment) -> str:
    """Cheap summary of every input to the report: it changes when exposures, outcomes or
    the definition change. Index-only MAX(id) lookups, so it costs milliseconds at any size.
    (An order updated in place keeps its id; the age limit catches that.)"""
    exposures = Exposure.objects.filter(experiment=experiment).aggregate(last=Max("id"))["last"]
    parts = [f"fmt:{REPORT_FORMAT}", f"def:{experiment.updated_at.isoformat()}", f"exp:{exposures or 0}"]
    if experiment.source == Experiment.Source.CUSTOMERS:
        parts.append(f"ord:{Order.objects.aggregate(last=Max('id'))['last'] or 0}")
        parts.append(f"evt:{Event.objects.aggregate(last=Max('id'))['last'] or 0}")
    return ";".join(parts)


def report_cached(experiment: Experiment, by: str = "") -> Report | None:
    return Report.objects.filter(experiment=experiment, by=by or "").first()


def report_is_fresh(experiment: Experiment, report: Report | None, *, now: datetime | None = None) -> bool:
    if report is None or report.fingerprint != experiment_fingerprint(experiment):
        return False
    if experiment.source == Experiment.Source.CUSTOMERS:
        return report.computed_at >= (now or timezone.now()) - REPORT_MAX_AGE
    return True


def reports_stale(now: datetime | None = None) -> list[tuple[int, str]]:
    """(experiment id, by) of every cached report that no longer matches its data."""
    stale = []
    for report in Report.objects.select_related("experiment").order_by("id"):
        if not report_is_fresh(report.experiment, report, now=now):
            stale.append((report.experiment_id, report.by))
    return stale


def uplift_model_get(model_id: int) -> UpliftModel:
    return UpliftModel.objects.select_related("experiment", "treatment_arm", "control_arm", "metric").get(id=model_id)


def exposure_span(experiment: Experiment) -> tuple[datetime | None, datetime | None]:
    """First and last exposure time, as the writers of exposures keep them on the experiment
    (read again: a launch may have widened them since `experiment` was loaded)."""
    span = Experiment.objects.filter(id=experiment.id).values_list("first_exposed_at", "last_exposed_at").first()
    return span or (None, None)
