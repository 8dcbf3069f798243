"""Reads of what core stores: the jobs a page shows."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from .models import Job

# A page shows a finished job for a while (so the person sees it end), a failed one for a
# day (so the failure is not missed), and only the latest of each kind for its object.
DONE_SHOWN_FOR = timedelta(minutes=15)
FAILED_SHOWN_FOR = timedelta(days=1)


def jobs_for(target: str, *, kinds: tuple[str, ...] | None = None, limit: int = 5) -> list[Job]:
    """The jobs the page of `target` shows: the latest of each kind, newest first, unless it
    finished well before now."""
    now = timezone.now()
    rows = Job.objects.filter(target=target, created_at__gte=now - FAILED_SHOWN_FOR)
    if kinds:
        rows = rows.filter(kind__in=kinds)
    latest: dict[str, Job] = {}
    for job in rows.order_by("-created_at", "-id")[:50]:
        latest.setdefault(job.kind, job)
    shown = [j for j in latest.values()
             if not (j.state == Job.State.DONE and j.finished_at and j.finished_at < now - DONE_SHOWN_FOR)]
    return shown[:limit]


def job_get(job_id: int) -> Job:
    return Job.objects.get(pk=job_id)
