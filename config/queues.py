"""Celery queues by kind of work, and which tasks go to which (settings' task_routes).

    default   everything else: segment refreshes, imports, housekeeping
    sending   campaigns and automations: launch, send, the pump, recurring runs
    models    model training, retraining and scoring
    reports   experiment report refreshes

Each kind has its own queue so that a worker can be started for some of them
(`celery -A config worker -Q offerlab.sending -n send1@%h`) and sending never waits behind
a model's training. A worker started without -Q consumes every queue in task_queues
(`make run`'s one worker does). Queue names start with CELERY_QUEUE (default "offerlab"):
the default queue is that name itself, the others add ".<kind>", so several deployments or
test runs on one broker keep apart.

No Django here: settings import it, and so do tests and benches that start workers.
"""

from __future__ import annotations

KINDS = ("default", "sending", "models", "reports")

# Task name (glob) -> kind. Unlisted tasks go to the default queue.
TASK_KINDS = {
    # Counting a draft's audience reads like a segment refresh and sends nothing: it does
    # not wait behind a million sends (an exact name wins over the globs).
    "campaigns.tasks.campaign_launch_check_task": "default",
    # Housekeeping, not sending: a send never waits behind it.
    "campaigns.tasks.cap_slots_prune_task": "default",
    "campaigns.tasks.*": "sending",
    "segments.tasks.model_*": "models",
    "experiments.tasks.*": "reports",
}


def queue_name(base: str, kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown kind of work {kind!r}; the kinds are {', '.join(KINDS)}")
    return base if kind == "default" else f"{base}.{kind}"


def queue_names(base: str, kinds: tuple[str, ...] = KINDS) -> list[str]:
    """The queues of these kinds, e.g. for a worker's -Q."""
    return [queue_name(base, kind) for kind in kinds]


def task_routes(base: str) -> dict[str, dict[str, str]]:
    """Celery's task_routes for queues named after `base`."""
    return {pattern: {"queue": queue_name(base, kind)} for pattern, kind in TASK_KINDS.items()}


def task_queues(base: str) -> list:
    """Celery's task_queues: every kind's queue (a worker without -Q consumes them all). Each
    has a direct exchange of its own name, as Celery makes for a queue it was not told of, so
    a publisher that names a queue (a test's, a bench's) and a worker agree on the binding."""
    from kombu import Exchange, Queue

    return [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in queue_names(base)]


if __name__ == "__main__":
    # `python -m config.queues sending,models`: those kinds' queue names for a worker's -Q,
    # named after CELERY_QUEUE (deploy/worker.sh, the systemd units).
    import os
    import sys

    kinds = tuple(k.strip() for k in (sys.argv[1] if len(sys.argv) > 1 else ",".join(KINDS)).split(",") if k.strip())
    print(",".join(queue_names(os.environ.get("CELERY_QUEUE") or "offerlab", kinds)))
