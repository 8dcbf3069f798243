"""A customer base of N end to end, each stage beside a raw baseline where one exists.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/offerlab_e2e CELERY_BROKER_URL=redis://127.0.0.1:6379/3 \
        .venv/bin/python bench/end_to_end.py --customers 1000000

The database is emptied of customers, segments, models, campaigns and experiments first
(with --reuse-base, a database holding exactly the N demo customers keeps them, their orders
and events, and the load_demo stage is skipped; an earlier run's segments, models, campaigns
and experiments go, and so do the columns its import added).
Stages, in order, on one base:

1. load_demo: N customers with their orders and events, streamed (customers/services/demo.py);
2. import: a CSV of the N customers with two new columns through the importer (every row
   updated); baseline: COPY of the same typed rows into a table indexed like customers;
3. features: every customer's features, range by range as scoring reads them; baseline:
   the same feature SQL for the whole table, fetched by psycopg with no pandas;
4. rule segment: a rule over columns, attributes, orders and events, created and refreshed;
   baseline: the hand-written INSERT ... SELECT of bench/segments_refresh.py;
5. k-means segment: model_train on a sample, every customer scored in ranges by the
   Celery workers, five family segments; no baseline here (bench/segments_refresh.py and
   bench/scoring.py have them);
6. launch: the campaign to the rule segment (ledger and exposures);
7. send: 2 worker processes through the fake Postmark until all are accepted; baseline:
   one bare process posting the same messages in the same batches (bench/campaigns_send.py),
   all of them or `--bare-sample` of them with the time scaled;
8. outcomes: an orders CSV of the conversions through the importer; baseline: COPY of the
   same file into a bare table;
9. report: the campaign's experiment report.

Prints one table: stage, time, rows, rows/s, raw baseline, ratio, peak memory (this
process's peak so far; for the worker stages the workers' largest process).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only")
# The bench's own default queue: a stale message elsewhere on the broker is not ours.
os.environ["CELERY_QUEUE"] = f"offerlab-e2e-{uuid.uuid4().hex[:6]}"

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import requests  # noqa: E402
from celery import current_app  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from campaigns.models import Campaign, CapSlot, LedgerEntry  # noqa: E402
from campaigns.services.drafts import campaign_create  # noqa: E402
from campaigns.services.launch import campaign_launch  # noqa: E402
from campaigns.services.offers import offer_create  # noqa: E402
from core.jobs import registered_tasks  # noqa: E402
from customers.features import customer_features, customer_id_ranges  # noqa: E402
from customers.importers.run import import_file  # noqa: E402
from customers.models import Customer  # noqa: E402
from customers.services.demo import demo_load  # noqa: E402
from experiments.models import Experiment, Exposure  # noqa: E402
from experiments.services.reports import report_refresh  # noqa: E402
from segments.models import Segment, SegmentModel  # noqa: E402
from segments.services import membership, training  # noqa: E402

import campaigns_send  # noqa: E402
import segments_refresh  # noqa: E402

KMEANS_FEATURES = ["recency_days", "frequency", "monetary", "avg_order_value", "tenure_days"]


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, stage: str, seconds: float, rows: int, baseline: float | None, peak_mb: float) -> None:
        self.rows.append((stage, seconds, rows, baseline, peak_mb))
        ratio = f"{seconds / baseline:.2f}x" if baseline else "-"
        print(f"  {stage}: {seconds:.2f} s, {rows:,} rows, baseline {baseline or '-'}, ratio {ratio}, "
              f"peak {peak_mb:.0f} MB", flush=True)

    def print(self) -> None:
        print(f"\n{'stage':<18} {'time s':>9} {'rows':>12} {'rows/s':>10} {'baseline s':>11} {'ratio':>7} {'peak MB':>8}")
        for stage, seconds, rows, baseline, peak in self.rows:
            base = f"{baseline:11.2f}" if baseline else f"{'-':>11}"
            ratio = f"{seconds / baseline:6.2f}x" if baseline else f"{'-':>7}"
            print(f"{stage:<18} {seconds:9.2f} {rows:>12,} {rows / seconds if seconds else 0:>10,.0f} {base} {ratio} "
                  f"{peak:8.0f}")
        total = sum(r[1] for r in self.rows)
        print(f"{'total':<18} {total:9.2f}")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tree_peak_mb(pid: int) -> float:
    """The largest peak RSS (VmHWM) among a process and its children, in MB."""
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    peaks = []
    for each in pids:
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except FileNotFoundError:
            continue
        peaks += [int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")]
    return max(peaks)


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def database_empty(keep_base: bool = False) -> None:
    """Everything a run makes; with `keep_base`, all but the customers and their history."""
    # The ledger, exposures and cap slots are named: they have no database constraint for
    # TRUNCATE ... CASCADE to follow.
    made = (Segment, SegmentModel, Campaign, Experiment, LedgerEntry, Exposure, CapSlot)
    models = made if keep_base else (Customer, *made)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(m._meta.db_table for m in models)}, campaigns_offer CASCADE")


def queues_all() -> list[str]:
    """Every queue the configured routing sends one of our tasks to, the default included."""
    names = {current_app.conf.task_default_queue}
    for name in registered_tasks():
        if not name.startswith("celery."):
            names.add(current_app.amqp.router.route({}, name, (), {})["queue"].name)
    return sorted(names)


def workers_start(fake_url: str, concurrency: int) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        EMAIL_PROVIDER="postmark", POSTMARK_SERVER_TOKEN="fake-token", POSTMARK_API_URL=fake_url + "/",
        CAMPAIGN_RATE_LIMIT="50000", CAMPAIGN_SEND_PARALLELISM=str(concurrency), LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    log = open(Path(tempfile.gettempdir()) / f"e2e-worker-{os.getpid()}.log", "wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(queues_all()),
         f"--concurrency={concurrency}", "--pool=prefork", "--loglevel=WARNING", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "-n", f"e2e-{os.getpid()}@%h"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    time.sleep(6)
    return worker


def fake(url: str, path: str, body: dict | None = None) -> dict:
    if body is None:
        return requests.get(url + path, timeout=30).json()
    return requests.post(url + path, json=body, timeout=30).json()


IMPORTED = ("plan", "visits")  # the columns stage_import adds


def import_undo() -> None:
    """A reused base as load_demo left it: without an earlier run's imported columns, so the
    import updates every row again (untimed)."""
    from customers.models import AttributeDefinition

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Customer._meta.db_table} SET attributes = attributes - %s - %s "
            f"WHERE attributes ?| ARRAY[%s, %s]", [*IMPORTED, *IMPORTED])
    AttributeDefinition.objects.filter(name__in=IMPORTED).delete()


def stage_import(table: Table, tmp: Path, n: int) -> None:
    path = tmp / "customers.csv"
    rng = np.random.default_rng(3)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["external_id", *IMPORTED])
        for start in range(0, n, 100_000):
            size = min(100_000, n - start)
            plans = rng.choice(["free", "pro", "team"], size).tolist()
            visits = rng.integers(0, 300, size).tolist()
            out.writerows(zip((f"demo-{i}" for i in range(start + 1, start + size + 1)), plans, visits))
    seconds, result = timed(lambda: import_file("customers", path, rejects_path=tmp / "rejects.csv"))
    assert (result.imported, result.updated) == (n, n), result.summary()
    # The baseline: the typed rows as they now stand, COPYed into a table indexed like customers.
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_like_customers")
        cursor.execute(f"CREATE TABLE bench_like_customers (LIKE {Customer._meta.db_table} INCLUDING ALL)")
        columns = "id, external_id, email, name, country, time_zone, signup_date, attributes, created_at, updated_at"
        raw = 0.0
        with transaction.atomic(), connection.connection.cursor(name="e2e_rows") as source:
            source.itersize = 50_000
            source.execute(f"SELECT {columns.replace('attributes', 'attributes::text')} FROM {Customer._meta.db_table}")
            while rows := source.fetchmany(50_000):
                started = time.perf_counter()
                with cursor.cursor.copy(f"COPY bench_like_customers ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                raw += time.perf_counter() - started
        cursor.execute("DROP TABLE bench_like_customers")
    table.add("import", seconds, n, raw, peak_mb())


def stage_features(table: Table, now) -> None:
    def chunked() -> int:
        return sum(len(customer_features(now, id_range=r)) for r in customer_id_ranges())

    seconds, rows = timed(chunked)
    # The same SQL for the whole table, rows fetched by psycopg and dropped: no pandas.
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        customer_features(now, id_range=(0, 0))
    # The feature statement itself (the transaction around it is captured too).
    sql = next(q["sql"] for q in reversed(queries.captured_queries) if "c.id >= 0 AND c.id < 0" in q["sql"])
    sql = sql.replace("c.id >= 0 AND c.id < 0", "true")
    sql = sql.replace("AND customer_id >= 0 AND customer_id < 0", "")

    def raw() -> int:
        count = 0
        with transaction.atomic(), connection.connection.cursor(name="e2e_features") as cursor:
            cursor.itersize = 50_000
            cursor.execute(sql)
            while batch := cursor.fetchmany(50_000):
                count += len(batch)
        return count

    raw_seconds, raw_rows = timed(raw)
    assert raw_rows == rows, (raw_rows, rows)
    table.add("features", seconds, rows, raw_seconds, peak_mb())


def stage_rule(table: Table, now) -> Segment:
    def create_and_refresh() -> Segment:
        segment = membership.segment_create({"name": "e2e: rule", "rule": segments_refresh.RULE})
        membership.segment_refresh(segment, now=now)
        segment.refresh_from_db()
        return segment

    seconds, segment = timed(create_and_refresh)
    hand = Segment.objects.create(name="e2e: hand", rule=segments_refresh.RULE)
    raw_seconds, size = timed(lambda: segments_refresh.hand_refresh(hand, segments_refresh.HAND_CORRELATED, now))
    assert size == segment.size, (size, segment.size)
    hand.delete()
    table.add("rule segment", seconds, segment.size, raw_seconds, peak_mb())
    return segment


def stage_kmeans(table: Table, worker: subprocess.Popen, n: int, timeout: float) -> None:
    started = time.perf_counter()
    model = training.model_train("kmeans", name="e2e-kmeans", features=KMEANS_FEATURES, k_range=[5],
                                 split_scoring=True)
    # Done when the last range has scored and materialised the five family segments.
    while time.perf_counter() - started < timeout:
        model.refresh_from_db(fields=["scored_at"])
        sizes = Segment.objects.filter(family=model.name).values_list("size", flat=True)
        if model.scored_at is not None and len(sizes) == 5 and sum(sizes) == n:
            break
        time.sleep(0.2)
    else:
        raise SystemExit("k-means scoring did not finish")
    seconds = time.perf_counter() - started
    table.add("k-means segment", seconds, n, None, max(peak_mb(), tree_peak_mb(worker.pid)))


def stage_launch_send(table: Table, worker: subprocess.Popen, segment: Segment, fake_url: str,
                      timeout: float, bare_sample: int | None) -> Campaign:
    offer_create(campaigns_send.SPEC["offer"])
    spec = {k: v for k, v in campaigns_send.SPEC.items() if k != "offer"} | {"offer": "bench-offer"}
    # The bare loop's campaign only holds the templates; it is never launched.
    campaign_create(spec | {"name": "bench-bare", "segment": segment.name})
    campaign = campaign_create(spec | {"name": "e2e", "segment": segment.name})
    fake(fake_url, "/_fake/reset", {})
    started = time.perf_counter()
    result = campaign_launch(campaign)
    launched = time.perf_counter() - started
    table.add("launch", launched, result.added, None, peak_mb())
    n = result.added
    while time.perf_counter() - started < timeout:
        if fake(fake_url, "/_fake/summary")["received"] >= n:
            break
        time.sleep(0.2)
    else:
        raise SystemExit("the send did not finish")
    send = time.perf_counter() - started - launched
    peak = tree_peak_mb(worker.pid)
    for _ in range(120):  # the last results reach the ledger
        if Campaign.objects.get(pk=campaign.pk).state == Campaign.State.COMPLETED:
            break
        time.sleep(0.5)
    sent = LedgerEntry.objects.filter(campaign_id=campaign.pk, status="sent").count()
    fake(fake_url, "/_fake/reset", {})
    # The bare loop's rate does not depend on how many it posts: a sample of them, scaled,
    # keeps a run at a million from spending as long again on the baseline.
    sample = min(n, bare_sample or n)
    bare = campaigns_send.bare_loop(sample, fake_url) * n / sample
    table.add("send", send, sent, bare, peak)
    return Campaign.objects.get(pk=campaign.pk)


def stage_outcomes(table: Table, tmp: Path, campaign: Campaign) -> Experiment:
    """Conversions after the launch: about 6% of control and 9% of the other arms order."""
    experiment = campaign.experiment
    path = tmp / "orders.csv"
    rng = np.random.default_rng(11)
    rows = 0
    exposures = Exposure.objects.filter(experiment=experiment).values_list("customer__external_id",
                                                                           "arm__is_control", "exposed_at")
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["external_id", "customer", "amount", "ordered_at"])
        for i, (customer, control, exposed) in enumerate(exposures.iterator(chunk_size=20_000)):
            if rng.random() < (0.06 if control else 0.09):
                when = exposed + timedelta(seconds=1 + int(rng.integers(0, 60)))
                out.writerow([f"e2e-o{i}", customer, f"{rng.uniform(10, 200):.2f}", when.isoformat()])
                rows += 1
    seconds, result = timed(lambda: import_file("orders", path, rejects_path=tmp / "order-rejects.csv"))
    assert result.imported == rows, result.summary()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE e2e_raw_orders (external_id text, customer text, amount numeric, "
                       "ordered_at timestamptz)")
        started = time.perf_counter()
        with open(path, "rb") as fh, cursor.cursor.copy(
            "COPY e2e_raw_orders FROM STDIN WITH (FORMAT csv, HEADER true)"
        ) as copy:
            while block := fh.read(1 << 20):
                copy.write(block)
        raw = time.perf_counter() - started
        cursor.execute("DROP TABLE e2e_raw_orders")
    table.add("outcomes", seconds, rows, raw, peak_mb())
    return experiment


def stage_report(table: Table, experiment: Experiment) -> None:
    seconds, report = timed(lambda: report_refresh(experiment, force=True))
    exposures = Exposure.objects.filter(experiment=experiment).count()
    table.add("report", seconds, exposures, None, peak_mb())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--reuse-base", action="store_true",
                        help="a database holding exactly the N demo customers is kept (no load_demo stage)")
    parser.add_argument("--bare-sample", type=int, default=0,
                        help="messages the send baseline posts, its time scaled to all (default: all)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database: it is emptied first")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    n = args.customers
    reuse = args.reuse_base and Customer.objects.count() == n == Customer.objects.filter(
        external_id__startswith="demo-").count()
    database_empty(keep_base=reuse)
    table = Table()
    fake_proc = subprocess.Popen([sys.executable, "-m", "tests.campaigns.fakeprovider", "--port", "0", "--no-bodies"],
                                 cwd=REPO, stdout=subprocess.PIPE, text=True)
    fake_url = f"http://127.0.0.1:{int(fake_proc.stdout.readline())}"
    worker = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            print(f"end to end at {n:,} customers; load {os.getloadavg()[0]:.2f}", flush=True)
            if reuse:
                print("load_demo: the base already holds the N demo customers (--reuse-base)", flush=True)
                import_undo()
            else:
                seconds, loaded = timed(lambda: demo_load(n, args.seed))
                table.add("load_demo", seconds, n + loaded["orders"] + loaded["events"], None, peak_mb())
            stage_import(table, tmp, n)
            now = timezone.now()
            stage_features(table, now)
            segment = stage_rule(table, now)
            worker = workers_start(fake_url, args.concurrency)
            stage_kmeans(table, worker, n, args.timeout)
            campaign = stage_launch_send(table, worker, segment, fake_url, args.timeout, args.bare_sample)
            experiment = stage_outcomes(table, tmp, campaign)
            stage_report(table, experiment)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=60)
        fake_proc.terminate()
    print(f"\nend to end at {n:,} customers, {args.concurrency} worker processes; load average now "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    table.print()


if __name__ == "__main__":
    main()
