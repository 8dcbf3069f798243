"""Fixtures shared by every app's tests: role logins, a real Celery worker process, and the
ANALYZE tasks a large write queues."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from config import queues as celery_queues
from config.celery import app as celery_app
from core import db as core_db
from core.roles import ADMIN, MARKETER, VIEWER

from .factories import UserFactory

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
HILLSTROM = SHARED / "datasets" / "hillstrom.csv"

# A queue of this run's own, so a developer's running worker never eats test tasks and
# a killed earlier run leaves nothing behind for this one.
TEST_QUEUE = f"offerlab-test-{uuid.uuid4().hex[:8]}"
celery_app.conf.task_default_queue = TEST_QUEUE
# ... and its queues by kind of work (config/queues.py), routed as settings route them.
celery_app.conf.task_queues = celery_queues.task_queues(TEST_QUEUE)
celery_app.conf.task_routes = celery_queues.task_routes(TEST_QUEUE)


@pytest.fixture
def statistics_queued(monkeypatch) -> list:
    """What core.db.statistics_refresh_queue publishes, as (task, args), kept here instead of
    sent to the broker; a test runs the task itself, as the worker would."""
    queued = []
    monkeypatch.setattr(core_db, "enqueue", lambda task, *args, **kw: queued.append((task, args)))
    return queued


@pytest.fixture
def viewer(db):
    return UserFactory(role=VIEWER)


@pytest.fixture
def marketer(db):
    return UserFactory(role=MARKETER)


@pytest.fixture
def admin_user(db):
    return UserFactory(role=ADMIN)


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def viewer_api(viewer):
    return _api(viewer)


@pytest.fixture
def marketer_api(marketer):
    return _api(marketer)


def database_url_for_subprocess() -> str:
    """The test database as a DATABASE_URL, so a child process sees what the test wrote."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        port = db.get("PORT") or 5432
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{port}/{db['NAME']}"
    return f"sqlite:///{Path(db['NAME']).resolve()}"


def child_env(**extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_subprocess(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CELERY_QUEUE=TEST_QUEUE,
        SECRET_KEY=settings.SECRET_KEY,
        DEBUG="true" if settings.DEBUG else "false",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def worker_start(
    log: Path, concurrency: int = 1, *, kinds: tuple[str, ...] = celery_queues.KINDS, name: str = "", **env: str
) -> subprocess.Popen:
    """A worker for this run's queues of these kinds of work (all of them unless told)."""
    cmd = [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        "-Q", ",".join(celery_queues.queue_names(TEST_QUEUE, kinds)),
        f"--concurrency={concurrency}", "--pool=prefork", "--loglevel=INFO",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ] + (["-n", name] if name else [])
    return subprocess.Popen(cmd, cwd=REPO, env=child_env(**env), stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def wait_for(predicate, timeout: float = 60, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """A real `celery -A config worker` on the configured broker, stopped after the test."""
    log = tmp_path / "worker.log"
    proc = worker_start(log)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    if os.environ.get("SHOW_WORKER_LOG"):
        print(log.read_text())
