"""Queueing background work: the one way every app enqueues a Celery task, and the record
of the jobs a page started so that page can show queued / running / done / failed.

Services name the task instead of importing it. A service that imported its app's tasks
module would close a loop (tasks call services), and a task queued by name still goes
through `CELERY_TASK_ROUTES`, so it lands on the queue settings choose for it.

Tracking, in three parts:
- caller: `enqueue(task, *args, track=Track(kind, label, target=..., user=...), **kwargs)`
  writes a `core.models.Job` in the caller's transaction and publishes the task under the
  Celery id `job-<pk>`, so the worker knows which row is its own;
- worker: the Celery signal handlers below mark it running (with a heartbeat while it
  runs), done, or failed with the error in words; a task may add a line and a link for
  the page with `job_note(...)`. No task has to remember any of it;
- page: `core.selectors.jobs_for(target)` and the include `core/_jobs.html`, which polls
  `core:job` with htmx while a job is unfinished and offers a retry when it failed.
  `jobs_expire_lost` turns jobs whose worker vanished into failures, so no page waits
  forever (the page's own read and a periodic sweep both call it).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import current_app, current_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import task_failure, task_postrun, task_prerun, task_retry
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

_discovered = False
TASK_ID_PREFIX = "job-"
# A running job's worker touches its row this often; a row untouched for LOST_AFTER
# means the worker died (killed, out of memory, restarted) without saying so.
HEARTBEAT_SECONDS = 15
LOST_AFTER = timedelta(seconds=90)
# Queued this long with no worker starting it: most likely no worker is running.
QUEUED_LOST_AFTER = timedelta(minutes=15)
# Errors raised by our own apps are written for people (TrainingError, SpecInvalid...);
# anything else is a bug, shown as such rather than as a riddle.
OWN_PACKAGES = {"core", "customers", "segments", "experiments", "campaigns", "web", "config"}


class UnknownTask(LookupError):
    """A name no worker would run: caught here, at the call, rather than lost on the broker."""


@dataclass(frozen=True)
class Track:
    """Ask `enqueue` to record the task as a Job a page can watch.

    kind: what it does ("model_train"); label: what a person reads ("Train RFM tiers");
    target: the object whose page shows it ("segments.segment:12"); user: who started it.
    """

    kind: str
    label: str
    target: str = ""
    user: Any = None
    retry_of: Any = None


@dataclass
class JobView:
    """What the include core/_job.html reads, for work tracked by a model of its own (an
    ImportJob): the same states and words as a core Job, through the same include."""

    id: str
    state: str  # queued, running, done or failed
    label: str
    error: str = ""
    result: dict = field(default_factory=dict)
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    poll_url: str = ""
    retry_url: str = ""
    retry_link: str = ""  # a page to start it again where a retry cannot requeue it
    retry_link_text: str = ""

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")


def registered_tasks():
    """The app's tasks, with every app's tasks module imported.

    A worker imports them when it starts; a web process or a command only when asked, so
    the first call here asks (autodiscovery runs on this signal).
    """
    global _discovered
    if not _discovered:
        current_app.loader.import_default_modules()
        _discovered = True
    return current_app.tasks


def enqueue(task: str, *args, countdown: float | None = None, track: Track | None = None, **kwargs):
    """Publish `task(*args, **kwargs)` once the current transaction commits.

    Outside a transaction it is published at once. A worker therefore never reads a row
    that the caller has not committed yet, and a rolled-back write queues nothing (its
    Job row, written in the same transaction, goes with it). Returns the Job when tracked.
    """
    if task not in registered_tasks():
        raise UnknownTask(f"no Celery task named {task!r}")
    job = None
    options: dict[str, Any] = {"countdown": countdown} if countdown else {}
    if track is not None:
        from .models import Job

        user = track.user if getattr(track.user, "is_authenticated", False) else None
        job = Job.objects.create(task=task, args=list(args), kwargs=kwargs, kind=track.kind, label=track.label,
                                 target=track.target, created_by=user, retry_of=track.retry_of)
        options["task_id"] = f"{TASK_ID_PREFIX}{job.pk}"
    if current_app.conf.task_always_eager:
        # send_task ignores CELERY_TASK_ALWAYS_EAGER; `.delay` honoured it, so run it here.
        eager = {"task_id": options["task_id"]} if "task_id" in options else {}
        transaction.on_commit(lambda: current_app.tasks[task].apply(args=args, kwargs=kwargs, **eager))
        return job
    transaction.on_commit(lambda: current_app.send_task(task, args=args, kwargs=kwargs, **options))
    return job


# --------------------------------------------------------------------------- the caller's side


def job_retry(job, *, user=None):
    """Queue a failed job's task again, as a new Job (the failed one stays, with its error).

    A second click on the same retry finds the first retry still unfinished and returns it.
    """
    from .models import Job

    if job.state != Job.State.FAILED:
        return job
    pending = job.retries.filter(state__in=[Job.State.QUEUED, Job.State.RUNNING]).order_by("-id").first()
    if pending is not None:
        return pending
    track = Track(job.kind, job.label, target=job.target, user=user, retry_of=job)
    return enqueue(job.task, *job.args, track=track, **job.kwargs)


def jobs_expire_lost(now: datetime | None = None, *, ids=None) -> int:
    """Fail the jobs whose worker is gone (no heartbeat for LOST_AFTER) or that no worker
    took up within QUEUED_LOST_AFTER; `ids` limits it to the jobs a page is showing.

    A conditional update: a worker that comes back and finishes still wins, since its own
    update to done follows this one.
    """
    from .models import Job

    now = now or timezone.now()
    rows = Job.objects.filter(id__in=ids) if ids is not None else Job.objects.all()
    lost = rows.filter(state=Job.State.RUNNING, heartbeat_at__lt=now - LOST_AFTER).update(
        state=Job.State.FAILED, finished_at=now,
        error="The worker running it stopped answering (it was restarted, killed or ran out of memory) "
              "before it finished. Retry runs it again.",
    )
    minutes = int(QUEUED_LOST_AFTER.total_seconds() // 60)
    unstarted = rows.filter(state=Job.State.QUEUED, created_at__lt=now - QUEUED_LOST_AFTER).update(
        state=Job.State.FAILED, finished_at=now,
        error=f"No worker started it within {minutes} minutes: the background worker may not be running, "
              "or is busy with long jobs. Retry queues it again.",
    )
    return lost + unstarted


# --------------------------------------------------------------------------- the worker's side


def _job_id(task_id: str | None) -> int | None:
    if task_id and task_id.startswith(TASK_ID_PREFIX):
        try:
            return int(task_id[len(TASK_ID_PREFIX):])
        except ValueError:
            return None
    return None


def failure_words(exc: BaseException) -> str:
    """The reason a person reads under "Failed"."""
    if isinstance(exc, (SoftTimeLimitExceeded, TimeLimitExceeded)):
        minutes = settings.CELERY_TASK_SOFT_TIME_LIMIT / 60
        return f"It ran longer than the {minutes:g}-minute limit for background work and was stopped."
    text = str(exc).strip()
    if type(exc).__module__.split(".")[0] in OWN_PACKAGES and text:
        text = text[0].upper() + text[1:]
        return text if text.endswith((".", "!", "?")) else text + "."
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"An unexpected error stopped it ({detail[:500]}). The worker's log has the details."


def job_note(message: str, url: str = "", link_text: str = "") -> None:
    """From inside a tracked task: a line (and a link) the page shows once it is done."""
    job_id = _job_id(getattr(current_task.request, "id", None)) if current_task else None
    if job_id is None:
        return
    from .models import Job

    result = {"message": message, "url": url}
    if link_text:
        result["link_text"] = link_text
    Job.objects.filter(pk=job_id).update(result=result)


class _Heartbeat(threading.Thread):
    """Touches a running job's row from a thread of its own, so a worker that dies takes
    the heartbeat with it and jobs_expire_lost can tell the page."""

    def __init__(self, job_id: int):
        super().__init__(daemon=True, name=f"job-heartbeat-{job_id}")
        self.job_id = job_id
        self.stopped = threading.Event()

    def run(self) -> None:
        from .models import Job

        try:
            while not self.stopped.wait(HEARTBEAT_SECONDS):
                Job.objects.filter(pk=self.job_id, state=Job.State.RUNNING).update(heartbeat_at=timezone.now())
        except Exception:  # a missed beat is not worth failing the task for
            logger.exception("heartbeat of job %s", self.job_id)
        finally:
            connections.close_all()  # this thread's own connection


_heartbeats: dict[str, _Heartbeat] = {}


def _on_prerun(sender=None, task_id=None, task=None, **kwargs) -> None:
    job_id = _job_id(task_id)
    if job_id is None:
        return
    from django.db.models import F

    from .models import Job

    now = timezone.now()
    # A redelivered message (acks_late) or a worker back after being declared lost
    # starts it again: running it is, whatever the row said.
    Job.objects.filter(pk=job_id).update(state=Job.State.RUNNING, started_at=now, heartbeat_at=now,
                                         finished_at=None, error="", attempts=F("attempts") + 1)
    if task is not None and not getattr(task.request, "is_eager", False):
        beat = _Heartbeat(job_id)
        _heartbeats[task_id] = beat
        beat.start()


def _heartbeat_stop(task_id: str) -> None:
    beat = _heartbeats.pop(task_id, None)
    if beat is not None:
        beat.stopped.set()
        beat.join(timeout=5)


def _on_postrun(sender=None, task_id=None, state=None, **kwargs) -> None:
    job_id = _job_id(task_id)
    if job_id is None:
        return
    _heartbeat_stop(task_id)
    if state != "SUCCESS":
        return  # failure and retry have their own signals
    from .models import Job

    Job.objects.filter(pk=job_id).update(state=Job.State.DONE, finished_at=timezone.now(), error="")


def _on_failure(sender=None, task_id=None, exception=None, **kwargs) -> None:
    job_id = _job_id(task_id)
    if job_id is None:
        return
    _heartbeat_stop(task_id)
    from .models import Job

    Job.objects.filter(pk=job_id).update(state=Job.State.FAILED, finished_at=timezone.now(),
                                         error=failure_words(exception) if exception else "It failed.")


def _on_retry(sender=None, request=None, reason=None, **kwargs) -> None:
    task_id = getattr(request, "id", None)
    job_id = _job_id(task_id)
    if job_id is None:
        return
    _heartbeat_stop(task_id)
    from .models import Job

    Job.objects.filter(pk=job_id).update(state=Job.State.QUEUED, error=f"Retrying: {reason}"[:1000])


def signals_connect() -> None:
    """Called from CoreConfig.ready: every process that runs tasks (a worker, or a web
    process with CELERY_TASK_ALWAYS_EAGER) keeps its jobs' rows up to date."""
    task_prerun.connect(_on_prerun, dispatch_uid="offerlab-job-prerun", weak=False)
    task_postrun.connect(_on_postrun, dispatch_uid="offerlab-job-postrun", weak=False)
    task_failure.connect(_on_failure, dispatch_uid="offerlab-job-failure", weak=False)
    task_retry.connect(_on_retry, dispatch_uid="offerlab-job-retry", weak=False)
