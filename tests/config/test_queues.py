"""config/queues.py: queues by kind of work, routed in settings; a deployment of web, beat
and two workers bound to different queues, where a send does not wait for a training."""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from celery import current_app

from campaigns.models import Campaign
from campaigns.services.drafts import campaign_create
from config import queues
from core.jobs import registered_tasks
from customers.models import Customer
from customers.services.demo import demo_load
from segments.models import SegmentModel
from tests.campaigns.conftest import make_segment, spec
from tests.conftest import REPO, TEST_QUEUE, child_env, wait_for, worker_start
from tests.factories import UserFactory
from tests.test_api_schema import _free_port, _wait_up

EXPECTED = {
    "campaigns.tasks.campaign_send_task": "sending",
    "campaigns.tasks.campaign_launch_task": "sending",
    "campaigns.tasks.campaign_pump_task": "sending",
    "campaigns.tasks.campaign_launch_check_task": "default",  # reads, sends nothing
    "campaigns.tasks.cap_slots_prune_task": "default",  # housekeeping: no send waits behind it
    "segments.tasks.model_train": "models",
    "segments.tasks.model_score_range": "models",
    "experiments.tasks.experiment_report_refresh": "reports",
    "segments.tasks.segment_refresh": "default",
    "customers.tasks.import_job_run": "default",
}


def _queue_of(task: str) -> str:
    return current_app.amqp.router.route({}, task, (), {})["queue"].name


@pytest.mark.parametrize("task, kind", sorted(EXPECTED.items()))
def test_each_kind_of_work_is_routed_to_its_queue(task, kind):
    assert task in registered_tasks()
    assert _queue_of(task) == queues.queue_name(TEST_QUEUE, kind)


def test_every_task_lands_on_a_queue_a_worker_without_q_consumes():
    consumed = {q.name for q in current_app.conf.task_queues}
    assert consumed == set(queues.queue_names(TEST_QUEUE))
    assert all(_queue_of(t) in consumed for t in registered_tasks() if not t.startswith("celery."))


def test_queue_names_for_a_subset_and_an_unknown_kind():
    assert queues.queue_names("acme", ("sending", "default")) == ["acme.sending", "acme"]
    with pytest.raises(ValueError, match="sending, models"):
        queues.queue_name("acme", "email")


def _start(cmd: list[str], log: Path, **env) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=REPO, env=child_env(**env), stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def _stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _tasks(log: Path, event: str) -> list[str]:
    """Task names in a worker's own log lines 'Task NAME[id] received|succeeded'."""
    return re.findall(rf"Task ([\w.]+)\[[\w-]+\] {event}", log.read_text(errors="replace"))


@pytest.mark.worker
@pytest.mark.timeout(1200)
def test_a_send_finishes_on_its_own_worker_while_a_model_trains_on_another(transactional_db, tmp_path):
    # Given customers with history to train on, and a campaign to 300 of them
    demo_load(customers=6000)
    make_segment("everyone", list(Customer.objects.order_by("id")[:300]))
    campaign = campaign_create(spec(name="queued-spring"))
    marketer = UserFactory(role="Marketer")
    # ... and web, beat and two workers: one for sending, one for the rest, each named
    logs = {name: tmp_path / f"{name}.log" for name in ("web", "beat", "sending", "models")}
    port = _free_port()
    web = _start([str(Path(sys.executable).with_name("gunicorn")), "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1",
                  "--timeout", "300"],  # a slow boot on a busy machine is not what this tests
                 logs["web"], ALLOWED_HOSTS="127.0.0.1")
    beat = _start([sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO", "--pidfile=",
                   f"--schedule={tmp_path / 'beat-schedule'}"], logs["beat"])
    sending = worker_start(logs["sending"], concurrency=1, kinds=("sending",), name="sending-test@%h")
    models = worker_start(logs["models"], concurrency=1, kinds=("models", "default", "reports"), name="models-test@%h")
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_up(f"{url}/healthz", web)
        token = requests.post(f"{url}/api/token/", data={"username": marketer.username, "password": "pw-for-tests-only"},
                              timeout=60).json()["token"]
        api = requests.Session()
        api.headers["Authorization"] = f"Token {token}"

        # When a k-means model with 19 values of k starts training ...
        answer = api.post(f"{url}/api/segment-models/train/", json={"kind": "kmeans", "name": "busy", "k_range": list(range(2, 21))},
                          timeout=60)
        assert answer.status_code == 202, answer.text
        wait_for(lambda: "segments.tasks.model_train" in _tasks(logs["models"], "received"), timeout=180,
                 what="the models worker to start training")
        # ... and the campaign is launched while it trains
        answer = api.post(f"{url}/api/campaigns/{campaign.id}/launch/", timeout=60)
        assert answer.status_code in (200, 202), answer.text
        wait_for(lambda: Campaign.objects.get(id=campaign.id).state == Campaign.State.COMPLETED, timeout=300,
                 interval=0.5, what="the campaign to finish sending")

        # Then the send finished while the training was still running
        assert "segments.tasks.model_train" not in _tasks(logs["models"], "succeeded")
        assert not SegmentModel.objects.filter(name="busy").exists()
        wait_for(lambda: SegmentModel.objects.filter(name="busy").exists(), timeout=600, interval=1.0,
                 what="the training to finish")
        wait_for(lambda: "segments.tasks.model_train" in _tasks(logs["models"], "succeeded"), timeout=60,
                 what="the models worker to log the training's end")
    finally:
        _stop(web, beat, sending, models)

    # ... and each task ran on a worker of its queue, named as started
    sending_log, models_log = logs["sending"].read_text(), logs["models"].read_text()
    assert "sending-test@" in sending_log and f"{TEST_QUEUE}.sending" in sending_log
    assert "models-test@" in models_log and f"{TEST_QUEUE}.models" in models_log
    sent_here = set(_tasks(logs["sending"], "succeeded"))
    assert {"campaigns.tasks.campaign_launch_task", "campaigns.tasks.campaign_send_task"} <= sent_here
    assert all(_queue_of(t) == f"{TEST_QUEUE}.sending" for t in _tasks(logs["sending"], "received"))
    assert all(_queue_of(t) != f"{TEST_QUEUE}.sending" for t in _tasks(logs["models"], "received"))
    assert "segments.tasks.model_train" in _tasks(logs["models"], "received")
