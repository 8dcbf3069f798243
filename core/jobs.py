"""Queueing background work: the one way every app enqueues a Celery task.

Services name the task instead of importing it. A service that imported its app's tasks
module would close a loop (tasks call services), and a task queued by name still goes
through `CELERY_TASK_ROUTES`, so it lands on the queue settings choose for it.
"""

from __future__ import annotations

from celery import current_app
from django.db import transaction


_discovered = False


class UnknownTask(LookupError):
    """A name no worker would run: caught here, at the call, rather than lost on the broker."""


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


def enqueue(task: str, *args, countdown: float | None = None, **kwargs) -> None:
    """Publish `task(*args, **kwargs)` once the current transaction commits.

    Outside a transaction it is published at once. A worker therefore never reads a row
    that the caller has not committed yet, and a rolled-back write queues nothing.
    """
    if task not in registered_tasks():
        raise UnknownTask(f"no Celery task named {task!r}")
    options = {"countdown": countdown} if countdown else {}
    if current_app.conf.task_always_eager:
        # send_task ignores CELERY_TASK_ALWAYS_EAGER; `.delay` honoured it, so run it here.
        transaction.on_commit(lambda: current_app.tasks[task].apply(args=args, kwargs=kwargs))
        return
    transaction.on_commit(lambda: current_app.send_task(task, args=args, kwargs=kwargs, **options))
