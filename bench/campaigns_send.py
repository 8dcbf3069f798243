"""Benchmark: send a campaign to N recipients through the fake Postmark on 127.0.0.1.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/offerlab_bench \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/6 SECRET_KEY=bench \
    .venv/bin/python bench/campaigns_send.py --recipients 100000

What it does, in one run:
1. starts the fake provider in its own process (tests/campaigns/fakeprovider.py);
2. loads N customers and a segment holding them (COPY), a campaign with two variants and
   no holdout (so N messages go out);
3. a bare loop: the same number of messages, rendered the same way, posted from this
   process in the same /email/batch calls of 500: the ceiling of one HTTP client;
4. the launch's raw baseline: a hand-written INSERT ... SELECT of the same rows (the segment's
   members, their arms from the same SHA-256 bounds, ledger keys of the same form) into the
   ledger, and one of their exposures, foreign-key checks included (SET CONSTRAINTS ALL
   IMMEDIATE), then rolled back and vacuumed away;
5. starts a real `celery -A config worker` with two processes on the broker, launches the
   campaign (timed alone: the launch beside its baseline) and measures from launch until the
   fake provider has accepted all N.
The database named by DATABASE_URL is emptied of campaigns, cap slots and bench customers first
(`--reuse` keeps customers and segment of an earlier run of the same size).
`--no-send` stops after the launch (no bare loop, no worker): the launch numbers alone.
`--repeat K` runs steps 3-5 K times, a new campaign each round and one worker throughout (with
`--no-send`, step 4 and the launch), and prints each round's ratios and their medians: this
machine's speed drifts from one minute to the next, so a ratio is read within its round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    import faulthandler

    faulthandler.dump_traceback_later(float(os.environ.get("BENCH_DUMP_AFTER", "0")) or 10**9, exit=True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--batch", type=int, default=500, help="rows per claim")
    parser.add_argument("--rate", type=float, default=50_000, help="rate limit (msgs/s), 0 for none")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--no-send", action="store_true", help="measure the launch only")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the customers and segment of an earlier run of the same size (campaigns are redone)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of bare loop then campaign, each a new campaign to the same segment")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database (it is emptied of campaigns, cap slots and bench customers)")
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis"):
        sys.exit("set CELERY_BROKER_URL to a Redis database")
    os.environ.setdefault("SECRET_KEY", "bench-only")
    queue = f"offerlab-bench-{uuid.uuid4().hex[:6]}"
    os.environ["CELERY_QUEUE"] = queue

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    fake_proc = subprocess.Popen(
        [sys.executable, "-m", "tests.campaigns.fakeprovider", "--port", "0", "--no-bodies"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    port = int(fake_proc.stdout.readline())
    fake_url = f"http://127.0.0.1:{port}"
    try:
        result = run(args, fake_url, queue)
    finally:
        fake_proc.terminate()
    if args.json:
        print(json.dumps(result))


def _fake(url: str, path: str, body: dict | None = None) -> dict:
    import requests

    if body is None:
        return requests.get(url + path, timeout=30).json()
    return requests.post(url + path, json=body, timeout=30).json()


def setup_data(n: int, reuse: bool = False) -> tuple[int, float]:
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign, CapSlot, LedgerEntry, Offer
    from customers.models import Customer
    from core.bulk import bulk_copy
    from segments.models import Membership, Segment

    from experiments.models import Experiment
    from experiments.services.definitions import experiment_delete

    started = time.monotonic()
    for experiment in Experiment.objects.filter(campaigns__isnull=False).distinct():
        experiment_delete(experiment)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {LedgerEntry._meta.db_table}")
        # And the earlier runs' cap slots, which nothing else deletes within their 7 days: a
        # run beside five million of them is not the run beside none.
        cursor.execute(f"DELETE FROM {CapSlot._meta.db_table}")
    Campaign.objects.all().delete()
    Offer.objects.filter(name="bench-offer").delete()
    kept = Segment.objects.filter(name="bench-everyone", size=n).first() if reuse else None
    if kept is not None and Customer.objects.filter(external_id__startswith="bench-").count() == n:
        _vacuum()
        return kept.id, time.monotonic() - started
    Segment.objects.filter(name="bench-everyone").delete()
    Customer.objects.filter(external_id__startswith="bench-").delete()
    now = timezone.now()
    bulk_copy(
        Customer._meta.db_table,
        ["external_id", "email", "name", "country", "time_zone", "attributes", "created_at", "updated_at"],
        ((f"bench-{i}", f"bench-{i}@example.com", f"Pat Bench{i}", "US", "UTC", "{}", now, now) for i in range(n)),
    )
    segment = Segment.objects.create(name="bench-everyone", current_version=1, size=n)
    ids = list(Customer.objects.filter(external_id__startswith="bench-").values_list("id", flat=True))
    bulk_copy(Membership._meta.db_table, ["segment_id", "customer_id", "version"], ((segment.id, i, 1) for i in ids))
    with connection.cursor() as cursor:
        for model in (Customer, Membership):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    _vacuum()
    return segment.id, time.monotonic() - started


def _vacuum() -> None:
    """The ledger, exposures and cap slots without the dead rows of earlier runs (and of the
    baseline), so that the launch writes into what a fresh install has."""
    from django.db import connection

    from campaigns.models import CapSlot, LedgerEntry
    from experiments.models import Exposure

    with connection.cursor() as cursor:
        for model in (LedgerEntry, Exposure, CapSlot):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


class _Rollback(Exception):
    pass


def launch_baseline(campaign) -> tuple[float, int]:
    """A hand-written INSERT ... SELECT of the rows the launch writes, ledger then exposures,
    with their foreign-key checks, rolled back: (seconds, rows)."""
    from django.db import connection, transaction

    from campaigns.models import LedgerEntry
    from experiments.assignment import key_bound_bytes, key_bounds
    from experiments.models import Exposure
    from experiments.services.definitions import experiment_create

    ledger, exposure = LedgerEntry._meta.db_table, Exposure._meta.db_table
    variants = list(campaign.variants.order_by("position", "id"))
    try:
        with transaction.atomic():
            experiment = experiment_create("bench-baseline", [(v.name, v.weight, i == 0) for i, v in enumerate(variants)])
            arms = {a.name: a.id for a in experiment.arms.all()}
            _, bounds = key_bounds([(v.name, v.weight) for v in variants])
            assert len(variants) == 2 and len(bounds) == 1
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [ledger])
                sequence = cursor.fetchone()[0]
                started = time.monotonic()
                cursor.execute(
                    f"""
                    INSERT INTO {ledger} (id, campaign_id, customer_id, variant_id, arm, email, status, run, assigned_at,
                        due_at, attempts, retries, batch, key, provider, provider_message_id, offer_code, error, updated_at)
                    SELECT s.lid, %(campaign)s, s.id,
                           CASE WHEN s.h < %(bound)s THEN %(va)s ELSE %(vb)s END,
                           CASE WHEN s.h < %(bound)s THEN %(a)s ELSE %(b)s END,
                           s.email, 'pending', 1, now(), now(), 0, 0, '',
                           lpad(to_hex(s.lid), 16, '0') || left(replace(gen_random_uuid()::text, '-', ''), 16),
                           '', '', '', '', now()
                    FROM (SELECT nextval(%(sequence)s::regclass) AS lid, c.id, c.email,
                                 sha256(convert_to(%(salt)s || ':' || c.id::text, 'UTF8')) AS h
                          FROM segments_membership m JOIN customers_customer c ON c.id = m.customer_id
                          WHERE m.segment_id = %(segment)s AND m.version = %(version)s OFFSET 0) s
                    """,
                    {"campaign": campaign.id, "bound": key_bound_bytes(bounds[0]), "va": variants[0].id,
                     "vb": variants[1].id, "a": variants[0].name, "b": variants[1].name, "sequence": sequence,
                     "salt": experiment.salt, "segment": campaign.segment_id, "version": campaign.segment.current_version},
                )
                rows = cursor.rowcount
                cursor.execute(
                    f"""
                    INSERT INTO {exposure} (experiment_id, arm_id, unit, customer_id, exposed_at, attributes, outcomes)
                    SELECT %(experiment)s, CASE WHEN l.arm = %(a)s THEN %(arm_a)s ELSE %(arm_b)s END,
                           l.customer_id::text, l.customer_id, l.assigned_at, '{{}}'::jsonb, '{{}}'::jsonb
                    FROM {ledger} l WHERE l.campaign_id = %(campaign)s
                    """,
                    {"experiment": experiment.id, "a": variants[0].name, "arm_a": arms[variants[0].name],
                     "arm_b": arms[variants[1].name], "campaign": campaign.id},
                )
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the foreign-key checks a commit would run
                elapsed = time.monotonic() - started
            raise _Rollback
    except _Rollback:
        pass
    _vacuum()
    return elapsed, rows


SPEC = {
    "segment": "bench-everyone",
    "holdout": 0,
    "offer": {"name": "bench-offer", "discount": "20%", "code": "BENCH", "code_mode": "unique",
              "landing_url": "https://shop.example.com/deal"},
    "variants": [
        {"name": "A", "subject": "{{ customer.first_name }}, {{ offer.discount }} off",
         "text": "Hi {{ customer.name }}, your code {{ offer.code }}: {{ offer.landing_url }}",
         "html": "<p>Hi {{ customer.name }}</p><p>Code <b>{{ offer.code }}</b></p><a href=\"{{ offer.landing_url }}\">Shop</a>"},
        {"name": "B", "subject": "A gift for {{ customer.first_name }}",
         "text": "Hello {{ customer.name }}, {{ offer.discount }} off with {{ offer.code }}: {{ offer.landing_url }}"},
    ],
}


def bare_loop(n: int, fake_url: str) -> float:
    """The same messages (rendered by the same code) posted in batches of 500 from one process."""
    import requests
    from django.test.utils import override_settings

    from campaigns.messages import message_compose
    from campaigns.models import Campaign
    from campaigns.providers.postmark import PostmarkProvider

    campaign = Campaign.objects.select_related("offer").get(name="bench-bare")
    variant = campaign.variants.first()
    customer = {"id": 1, "external_id": "x", "email": "x@example.com", "name": "Pat Bench", "country": "US",
                "time_zone": "UTC", "signup_date": None, "attributes": {}}
    with override_settings(ANYMAIL={"POSTMARK_SERVER_TOKEN": "fake-token", "POSTMARK_API_URL": fake_url + "/"}):
        provider = PostmarkProvider()
        session = requests.Session()
        headers = {"Accept": "application/json", "Content-Type": "application/json", "X-Postmark-Server-Token": "fake-token"}
        started = time.monotonic()
        sent = 0
        while sent < n:
            size = min(500, n - sent)
            payloads = []
            for i in range(size):
                message, _ = message_compose(
                    campaign, variant, customer | {"id": sent + i}, key=uuid.uuid4().hex,
                    email=f"bare-{sent + i}@example.com", batch="bare", landing_url="https://shop.example.com/deal",
                )
                payloads.append(provider.postmark_json(message))
            response = session.post(fake_url + "/email/batch", data=json.dumps(payloads), headers=headers, timeout=30)
            assert response.status_code == 200, response.text[:200]
            sent += size
        elapsed = time.monotonic() - started
    return elapsed


def _tasks_imported() -> None:
    """Import every app's tasks now, as a worker does when it starts: the launch runs in a
    worker (campaign_launch_task), and the first enqueue in this process would otherwise
    time Celery's autodiscovery and Django's system checks (2.1 s at load 6) as launch."""
    from core.jobs import registered_tasks

    registered_tasks()


def _launch_print(added: int, launched: float, baseline: float) -> None:
    print(
        f"launch: {added:,} ledger rows and exposures in {launched:.2f}s; hand-written INSERT ... SELECT of the "
        f"same rows {baseline:.2f}s; ratio {launched / baseline:.2f}",
        flush=True,
    )


def launch_only(n: int, repeat: int = 1) -> dict:
    """Rounds of baseline then launch, each a new campaign to the same segment (a later round
    writes beside the earlier rounds' rows, as a busy ledger has them)."""
    from celery import current_app

    from campaigns.services.drafts import campaign_create
    from campaigns.services.launch import campaign_launch
    from campaigns.services.offers import offer_create

    offer_create(SPEC["offer"])
    _tasks_imported()
    rounds = []
    for number in range(1, repeat + 1):
        campaign = campaign_create(SPEC | {"name": f"bench-{number}", "offer": "bench-offer"})
        baseline, rows = launch_baseline(campaign)
        started = time.monotonic()
        # Published on commit, the send tasks go to this run's own queue, which no worker reads.
        result = campaign_launch(campaign)
        launched = time.monotonic() - started
        current_app.control.purge()  # the send tasks nobody will run (this run's queues only)
        assert result.added == rows == n, (result.added, rows)
        _launch_print(result.added, launched, baseline)
        rounds.append({"recipients": n, "launch_seconds": round(launched, 2),
                       "launch_baseline_seconds": round(baseline, 2), "launch_ratio": round(launched / baseline, 2)})
    return _rounds_summary(rounds, ("launch s", "launch_seconds"), ("launch ratio", "launch_ratio"))


def _rounds_summary(rounds: list[dict], *columns: tuple[str, str]) -> dict:
    """Print each (label, key) over the rounds, sorted, with its median; what to return."""
    if len(rounds) == 1:
        return rounds[0]
    parts = []
    for label, key in columns:
        values = sorted(r[key] for r in rounds)
        parts.append(f"{label} {', '.join(f'{v:.2f}' for v in values)} (median {statistics.median(values):.2f})")
    print(f"over {len(rounds)} rounds: " + "; ".join(parts), flush=True)
    return {"rounds": rounds}


def run(args, fake_url: str, queue: str) -> dict:
    from config.queues import queue_names

    from campaigns.services.drafts import campaign_create
    from campaigns.services.offers import offer_create

    n = args.recipients
    _, load_seconds = setup_data(n, reuse=args.reuse)
    print(f"loaded {n:,} customers and the segment in {load_seconds:.1f}s", flush=True)
    if args.no_send:
        return launch_only(n, args.repeat)

    # The bare loop's campaign is only a template holder: never launched.
    offer_create(SPEC["offer"])
    campaign_create(SPEC | {"name": "bench-bare", "offer": "bench-offer"})

    env = dict(os.environ)
    env.update(
        CELERY_QUEUE=queue, EMAIL_PROVIDER="postmark", POSTMARK_SERVER_TOKEN="fake-token",
        POSTMARK_API_URL=fake_url + "/", CAMPAIGN_BATCH_SIZE=str(args.batch), CAMPAIGN_RATE_LIMIT=str(args.rate),
        CAMPAIGN_SEND_PARALLELISM=str(args.concurrency), CAMPAIGN_TASK_SECONDS="30", LOG_LEVEL="WARNING",
    )
    log = open(Path("/tmp") / f"{queue}.log", "wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(queue_names(queue)),
         f"--concurrency={args.concurrency}",
         "--pool=prefork", "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    rounds = []
    try:
        time.sleep(4)  # let the pool start: the clock starts at launch
        # Bare loop and campaign alternate, round after round: this 2-core machine's speed
        # drifts by a fifth from one minute to the next, so a ratio is only read within a round.
        for number in range(1, args.repeat + 1):
            if args.repeat > 1:
                print(f"round {number} of {args.repeat}", flush=True)
            bare = bare_round(n, fake_url)
            rounds.append(campaign_round(args, fake_url, number) | {
                "bare_loop_seconds": round(bare, 2), "bare_loop_messages_per_second": round(n / bare)})
            rounds[-1]["send_ratio"] = round(
                rounds[-1]["send_phase_messages_per_second"] / rounds[-1]["bare_loop_messages_per_second"], 2)
            print(f"send phase against the bare loop: {rounds[-1]['send_ratio']:.2f}x the throughput", flush=True)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    return _rounds_summary(rounds, ("send ratio", "send_ratio"), ("launch s", "launch_seconds"))


def bare_round(n: int, fake_url: str) -> float:
    _fake(fake_url, "/_fake/reset", {})
    bare = bare_loop(n, fake_url)
    accepted = _fake(fake_url, "/_fake/summary")["received"]
    assert accepted == n, accepted
    print(f"bare loop: {n:,} messages in {bare:.2f}s = {n / bare:,.0f} msg/s (one process, batches of 500)", flush=True)
    _fake(fake_url, "/_fake/reset", {})
    return bare


def campaign_round(args, fake_url: str, number: int) -> dict:
    """Launch one new campaign to the segment and time it until the fake provider has
    accepted every recipient."""
    from campaigns.models import Campaign, LedgerEntry
    from campaigns.services.drafts import campaign_create
    from campaigns.services.launch import campaign_launch

    n = args.recipients
    campaign = campaign_create(SPEC | {"name": f"bench-{number}", "offer": "bench-offer"})
    baseline, _ = launch_baseline(campaign)
    _tasks_imported()
    started = time.monotonic()
    result = campaign_launch(campaign)
    launched = time.monotonic() - started
    _launch_print(result.added, launched, baseline)
    deadline = started + args.timeout
    # When each tenth of the recipients was accepted: throughput must not fall as the
    # ledger fills with sent rows (it did, from dead index entries the claim walked).
    tenths: list[tuple[int, float]] = [(0, started + launched)]
    while time.monotonic() < deadline:
        accepted = _fake(fake_url, "/_fake/summary")["received"]
        while len(tenths) <= 10 and accepted >= n * len(tenths) // 10:
            tenths.append((accepted, time.monotonic()))
        if accepted >= n:
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    deciles = [round((b - a) / max(tb - ta, 1e-6)) for (a, ta), (b, tb) in zip(tenths, tenths[1:])]
    print(f"send phase msg/s by tenth of the recipients: {', '.join(f'{d:,}' for d in deciles)}", flush=True)
    summary = _fake(fake_url, "/_fake/summary")
    # Let the last batches' results land in the ledger before counting.
    for _ in range(40):
        if Campaign.objects.get(id=campaign.id).state == Campaign.State.COMPLETED:
            break
        time.sleep(0.25)
    counts = {
        s: LedgerEntry.objects.filter(campaign_id=campaign.id, status=s).count()
        for s in ("sent", "pending", "sending", "unknown", "failed")
    }
    per_recipient = _fake(fake_url, "/_fake/per_recipient")
    dupes = sum(1 for c in per_recipient.values() if c > 1)
    out = {
        "recipients": n,
        "accepted": summary["received"],
        "duplicates": dupes,
        "provider_calls": summary["send_requests"],
        "launch_seconds": round(launched, 2),
        "launch_baseline_seconds": round(baseline, 2),
        "launch_ratio": round(launched / baseline, 2),
        "send_seconds": round(elapsed, 2),
        "messages_per_second": round(summary["received"] / elapsed),
        "send_phase_messages_per_second": round(summary["received"] / (elapsed - launched)),
        "workers": args.concurrency,
        "messages_per_second_by_tenth": deciles,
        "ledger": counts,
        "campaign_state": Campaign.objects.get(id=campaign.id).state,
    }
    print(
        f"campaign: {summary['received']:,} accepted in {elapsed:.2f}s (launch included) = "
        f"{out['messages_per_second']:,} msg/s with {args.concurrency} worker processes "
        f"({out['send_phase_messages_per_second']:,} msg/s after the launch); "
        f"{summary['send_requests']} provider calls, {dupes} duplicates; ledger {counts}",
        flush=True,
    )
    return out


if __name__ == "__main__":
    main()
