"""Model scoring fanned out over Celery: one worker process against two, in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/offerlab_bench CELERY_BROKER_URL=redis://127.0.0.1:6379/3 \
        .venv/bin/python bench/scoring.py --customers 1000000

Loads the demo base (`load_demo`) unless the database holds exactly N demo customers,
trains a k-means model on a sample without scoring it, then scores every customer with
that model three ways, each writing the same ModelScore rows:

1. in this process, range after range (`scoring.model_score`): the baseline;
2. split into id ranges (`scoring.model_score_start`), one Celery task per range, on a
   real `celery -A config worker` with --concurrency=1;
3. the same with --concurrency=2.

The worker listens on the queue the settings route `segments.tasks.model_score_range` to,
so the bench follows whatever routing is configured. The clock runs from queueing the
ranges to the model's `scored_at` being set by the last range. Goal: 2 processes in at
most 0.65x the time of 1. Prints times, customers/s, ratios and each side's peak memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench")

import django  # noqa: E402

django.setup()

from celery import current_app  # noqa: E402

from customers.models import Customer  # noqa: E402
from customers.services.demo import demo_load  # noqa: E402
from segments.models import ModelScore, SegmentModel  # noqa: E402
from segments.services import scoring, training  # noqa: E402

TASK = "segments.tasks.model_score_range"
FEATURES = ["recency_days", "frequency", "monetary", "avg_order_value", "tenure_days"]


def task_queue(name: str) -> str:
    """The queue the configured routing sends `name` to."""
    route = current_app.amqp.router.route({}, name, (), {})
    return route["queue"].name


def base_ensure(customers: int, seed: int) -> None:
    demo = Customer.objects.filter(external_id__startswith="demo-")
    if demo.count() != customers or Customer.objects.count() != customers:
        Customer.objects.exclude(external_id__startswith="demo-").delete()
        print(f"loading {customers:,} demo customers ...", flush=True)
        print(demo_load(customers, seed), flush=True)


def peak_mb_of_tree(pid: int) -> float:
    """The largest peak RSS (VmHWM) of a process and its children, in MB."""
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    peaks = []
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def run_split(model: SegmentModel, concurrency: int, queue: str, timeout: float, chunk: int) -> tuple[float, float]:
    """Seconds from queueing the ranges to the last one done, and the largest peak RSS (MB)
    of the worker's processes."""
    ModelScore.objects.filter(model=model).delete()
    log = open(Path("/tmp") / f"bench-scoring-{os.getpid()}-{concurrency}.log", "wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker",
         "-Q", queue, f"--concurrency={concurrency}", "--pool=prefork", "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"bench-scoring-{concurrency}@%h"],
        cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(6)  # the pool is up before the clock starts
        started = time.monotonic()
        ranges = scoring.model_score_start(model, chunk=chunk, segments=False)
        last = -1
        while time.monotonic() - started < timeout:
            model.refresh_from_db(fields=["scoring", "scored_at"])
            if model.scored_at is not None:
                break
            done = len(model.scoring.get("done", []))
            if done != last:
                print(f"  {concurrency} process(es): {done}/{len(ranges)} ranges done", flush=True)
                last = done
            time.sleep(0.2)
        else:
            raise SystemExit(f"scoring with {concurrency} worker process(es) did not finish in {timeout}s")
        seconds = time.monotonic() - started
        peak = peak_mb_of_tree(worker.pid)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log.close()
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=scoring.SCORE_CHUNK)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    base_ensure(args.customers, args.seed)
    n = Customer.objects.count()
    queue = task_queue(TASK)
    model = training.model_train("kmeans", name="bench-scoring", features=FEATURES, k_range=[5], score=False)
    print(f"model {model.name} v{model.version} trained on {model.training_rows:,} customers; "
          f"{TASK} routes to queue {queue!r}", flush=True)

    ModelScore.objects.filter(model=model).delete()
    started = time.monotonic()
    written = scoring.model_score(model, chunk=args.chunk)
    local = time.monotonic() - started
    local_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert written == n, (written, n)

    one, one_peak = run_split(model, 1, queue, args.timeout, args.chunk)
    assert ModelScore.objects.filter(model=model).count() == n
    two, two_peak = run_split(model, 2, queue, args.timeout, args.chunk)
    assert ModelScore.objects.filter(model=model).count() == n

    def line(label: str, seconds: float, peak: float, base: float) -> str:
        return f"{label:<46} {seconds:8.2f} s {n / seconds:>10,.0f} customers/s {seconds / base:6.2f}x  {peak:6.0f} MB"

    print(f"\n{n:,} customers, ranges of {args.chunk:,}; ratios against 1 worker process")
    print(line("in this process, range after range", local, local_peak, one))
    print(line("Celery, 1 worker process", one, one_peak, one))
    print(line("Celery, 2 worker processes", two, two_peak, one))
    print(f"2 processes / 1 process: {two / one:.2f}x (goal <= 0.65x)")
    SegmentModel.objects.filter(pk=model.pk).delete()


if __name__ == "__main__":
    main()
