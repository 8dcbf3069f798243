"""The stored report of an experiment: compute it now, or queue that."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from core.jobs import Track, enqueue

from .. import reports, selectors
from ..breakdowns import breakdown_check
from ..models import Experiment, Report


def report_refresh(experiment: Experiment, *, by: str = "", force: bool = False,
                   now: datetime | None = None) -> Report:
    """Compute and store the report unless the stored one still matches the data.

    The fingerprint is taken before computing: rows arriving meanwhile make the stored
    report stale, never a stale report look fresh. Two concurrent runs both store the same
    thing; the unique (experiment, by) row keeps one."""
    breakdown_check(experiment, by)  # an unknown attribute or segment is an error naming it
    cached = selectors.report_cached(experiment, by)
    if not force and selectors.report_is_fresh(experiment, cached, now=now):
        return cached
    fingerprint = selectors.experiment_fingerprint(experiment)
    now = now or timezone.now()
    body = reports.report_build(experiment, by=by or None, now=now)
    report, _ = Report.objects.update_or_create(
        experiment=experiment, by=by or "",
        defaults={"body": body, "fingerprint": fingerprint, "computed_at": now, "seconds": body["seconds"]},
    )
    return report


def report_refresh_enqueue(experiment: Experiment, *, by: str = "", force: bool = True, user=None,
                           tracked: bool = False):
    """Queue a recomputation once the current transaction commits; `tracked`: as a Job
    the experiment's page shows (queued, running, done or failed with a retry)."""
    track = Track("report_refresh", "Recompute the report", target=experiment_target(experiment.id),
                  user=user) if tracked else None
    return enqueue("experiments.tasks.experiment_report_refresh", experiment.id, by or "", force, track=track)


def experiment_target(experiment_id: int) -> str:
    """The Job target of an experiment's page."""
    return f"experiments.experiment:{experiment_id}"
