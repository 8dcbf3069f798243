"""Triggered offers at scale: triggers into due ledger rows, against raw SQL doing the same inserts.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/offerlab_autobench \
        .venv/bin/python bench/automations.py --customers 1000000

Creates N plain customers with one INSERT ... SELECT generate_series when the database does
not hold exactly N of them (migrate the database first), then measures, in the same run:

1. Segment entry: a rule segment of 500,000 members (--members) gains 50,000 in one refresh
   (the refresh itself is segments' cost and not timed); `automation_read_triggers` turns the
   refresh row past the watermark into 50,000 entries (holdout by hash) and the first step's
   due send rows (variant by hash). Raw baseline: the best hand-written SQL for the same rows,
   for a twin automation: one INSERT of the entries from the entered list the refresh kept,
   with the same holdout decision, and one INSERT of the send rows with the same variant
   decision and id-led keys. Goal: <= 2 s.
2. Events: 10,000 events posted to POST /api/events/ (DRF through the whole Django stack,
   in batches of 1,000) and the event automation's read turning them into entries and due
   rows. Raw baseline: the same 10,000 event rows inserted with one INSERT ... SELECT FROM
   unnest, then the same entry and send INSERTs by hand. Goal: >= 2,000 events/s.

Each side runs --rounds times, alternating, on fresh entrants. Prints the timings (`--json`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from campaigns.models import Automation, AutomationEntry, AutomationSend, AutomationStep, CapSlot  # noqa: E402
from campaigns.services.automations.create import automation_create  # noqa: E402
from campaigns.services.automations.triggers import automation_read_triggers  # noqa: E402
from core.db import is_postgres  # noqa: E402
from core.roles import MARKETER  # noqa: E402
from customers.models import Customer, Event  # noqa: E402
from segments.models import Entrant, Segment  # noqa: E402
from segments.services import membership  # noqa: E402

PREFIX = "ab-"
ENTRANTS = 50_000
EVENTS = 10_000
EVENT_BATCH = 1_000
ROUNDS = 2
STEPS = [{"wait_hours": 0, "variants": [{"name": "a", "subject": "Hi {{ customer.first_name }}", "text": "Hello"},
                                        {"name": "b", "subject": "Hello", "text": "Hello"}]},
         {"wait_hours": 48, "unless": "ordered", "variants": [{"name": "a", "subject": "Still?", "text": "Hi"}]}]

# The best hand-written SQL for the same rows: the same holdout and variant decisions (md5 of
# the salt and key, as the product decides them), the key started by the row's id so that
# its unique index grows at the right edge, one INSERT ... SELECT each for entries and sends.
HASH = "(('x' || substr(md5({}), 1, 8))::bit(32)::bigint::float8 / 4294967296.0::float8)"
HAND_ENTRIES = """
    INSERT INTO campaigns_automationentry (automation_id, version_id, customer_id, key, source, held_out, status,
                                           exit_reason, entered_at)
    SELECT %(automation)s, %(version)s, x.customer_id, x.key, %(source)s, x.held,
           CASE WHEN x.held THEN 'held_out' ELSE 'active' END, '', %(now)s
    FROM (SELECT c.customer_id, c.customer_id::text AS key,
                 """ + HASH.format("%(salt)s || ':' || c.customer_id::text") + """ < %(holdout)s AS held
          FROM ({candidates}) c OFFSET 0) x
    ON CONFLICT (automation_id, key) DO NOTHING
"""
HAND_SENDS = """
    INSERT INTO campaigns_automationsend (id, automation_id, step_id, step_index, entry_id, customer_id, variant_id,
                                          email, status, due_at, attempts, retries, batch, key, provider,
                                          provider_message_id, offer_code, error, updated_at)
    SELECT p.sid, %(automation)s, %(step)s, 0, p.id, p.customer_id,
           CASE WHEN p.u < %(edge)s THEN %(variant)s ELSE %(variant_b)s END, c.email, 'pending', %(now)s, 0, 0, '',
           lpad(to_hex(p.sid), 16, '0') || left(replace(gen_random_uuid()::text, '-', ''), 16), '', '', '', '', %(now)s
    FROM (SELECT nextval('{sequence}'::regclass) AS sid, e.id, e.customer_id,
                 """ + HASH.format("%(salt)s || ':' || e.key || ':0'") + """ AS u
          FROM campaigns_automationentry e WHERE e.automation_id = %(automation)s AND NOT e.held_out OFFSET 0) p
    JOIN customers_customer c ON c.id = p.customer_id
    ON CONFLICT DO NOTHING
"""


SEND_SEQUENCE = "campaigns_automationsend_id_seq"


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def customers_ensure(n: int) -> None:
    have = Customer.objects.filter(external_id__startswith=PREFIX).count()
    if have == n:
        return
    print(f"creating {n:,} customers ...", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE customers_customer CASCADE")
        cursor.execute(
            "INSERT INTO customers_customer (external_id, email, name, country, time_zone, attributes, created_at, "
            "updated_at) SELECT %s || g, %s || g || '@example.com', 'Name ' || g, 'GB', 'UTC', '{}'::jsonb, now(), now() "
            "FROM generate_series(1, %s) g", [PREFIX, PREFIX, n])
        cursor.execute("ANALYZE customers_customer")


def reset() -> None:
    AutomationSend.objects.all().delete()
    AutomationEntry.objects.all().delete()
    Automation.objects.all().delete()
    CapSlot.objects.all().delete()
    for segment in Segment.objects.filter(name__startswith="bench-entrants"):
        membership.segment_delete(segment)
    Event.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE customers_customer SET country = 'GB' WHERE country <> 'GB'")
        cursor.execute("VACUUM ANALYZE customers_customer")
        cursor.execute("VACUUM ANALYZE campaigns_automationentry")


def twin(automation: Automation, source: str, now) -> dict:
    """The parameters of the hand-written inserts for an automation (its first step's two
    variants have equal weights: the first takes u < 0.5)."""
    step = AutomationStep.objects.get(version=automation.current_version, index=0)
    first, second = step.variants.order_by("position", "id").values_list("id", flat=True)
    return {"automation": automation.id, "version": automation.current_version_id, "source": source, "now": now,
            "step": step.id, "variant": first, "variant_b": second, "edge": 0.5, "salt": automation.salt,
            "holdout": automation.holdout}


def segment_setup(ids: list[int], members: int) -> Segment:
    """One segment for every round, `members` strong before the first (the last ids, which no
    round touches): each round's entrants join a segment of hundreds of thousands, as a
    marketer's "high churn risk" would be, not an empty one. Its refreshes are segments' cost
    (not timed)."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE customers_customer SET country = 'US' WHERE id = ANY(%s)", [ids[len(ids) - members :]])
    countries = ["US", *(f"Z{r}" for r in range(ROUNDS))]
    segment = membership.segment_create({"name": "bench-entrants",
                                         "rule": {"all": [{"field": "country", "op": "in", "value": countries}]}})
    membership.segment_refresh(segment)
    return segment


def segment_round(round_no: int, ids: list[int], segment: Segment) -> dict:
    spec = {"trigger": {"segment": segment.name}, "holdout": 0.1, "exit": ["ordered"], "steps": STEPS}
    product = automation_create({"name": f"bench segment {round_no}", **spec})
    hand = automation_create({"name": f"bench segment {round_no} (raw)", **spec})
    start, stop = round_no * ENTRANTS, (round_no + 1) * ENTRANTS
    with connection.cursor() as cursor:
        cursor.execute("UPDATE customers_customer SET country = %s WHERE id = ANY(%s)",
                       [f"Z{round_no}", ids[start:stop]])
    refresh = membership.segment_refresh(segment)[0]
    assert refresh.entered == ENTRANTS, refresh.entered
    now = timezone.now()
    product_s, read = timed(lambda: automation_read_triggers(product.id, now=now))
    assert read["entries"] == ENTRANTS, read
    params = twin(hand, "segment", now)
    # the same input the product reads: the entered list the refresh kept
    candidates = (f"SELECT n.customer_id FROM {Entrant._meta.db_table} n WHERE n.segment_id = {segment.id} "
                  f"AND n.version = {refresh.version}")

    def hand_inserts():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(HAND_ENTRIES.format(candidates=candidates), params)
            entries = cursor.rowcount
            cursor.execute(HAND_SENDS.format(sequence=SEND_SEQUENCE), params)
            return entries

    raw_s, raw_entries = timed(hand_inserts)
    assert raw_entries == ENTRANTS
    due = AutomationSend.objects.filter(automation=product, status="pending").count()
    held = AutomationEntry.objects.filter(automation=product, held_out=True).count()
    # the hand side's rows would be read again next round: drop them (not timed)
    AutomationSend.objects.filter(automation=hand).delete()
    AutomationEntry.objects.filter(automation=hand).delete()
    return {"product_s": product_s, "raw_s": raw_s, "due_rows": due, "held_out": held, "segment_size": refresh.size}


def events_round(api: APIClient, product: Automation, hand: Automation, round_no: int, ids: list[int]) -> dict:
    base = ROUNDS * ENTRANTS + round_no * EVENTS  # customers no segment round touched
    chosen = ids[base : base + EVENTS]
    externals = dict(Customer.objects.filter(id__in=chosen).values_list("id", "external_id"))
    at = timezone.now().replace(microsecond=0)
    items = [{"customer": externals[cid], "kind": "browse", "occurred_at": (at + timedelta(seconds=i % 50)).isoformat(),
              "properties": {"sku": f"S{i % 97}"}} for i, cid in enumerate(chosen)]

    def post_all():
        for i in range(0, len(items), EVENT_BATCH):
            answer = api.post("/api/events/", {"events": items[i : i + EVENT_BATCH]}, format="json")
            assert answer.status_code == 200 and answer.json()["created"] == EVENT_BATCH, answer.content[:300]

    post_s, _ = timed(post_all)
    now = timezone.now()
    read_s, read = timed(lambda: automation_read_triggers(product.id, now=now))
    assert read["entries"] == EVENTS, read

    # Raw: the same events again (other instants, so they are new rows), then the same inserts.
    params = twin(hand, "event", now)
    later = at + timedelta(days=1)

    def hand_inserts():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO customers_event (customer_id, kind, occurred_at, properties) "
                "SELECT c, 'browse', t, p::jsonb FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[]) AS u(c, t, p) "
                "ON CONFLICT DO NOTHING RETURNING id",
                [chosen, [later + timedelta(seconds=i % 50) for i in range(len(chosen))],
                 [json.dumps(item["properties"]) for item in items]])
            first_id = min(row[0] for row in cursor.fetchall())
            candidates = (f"SELECT e.customer_id FROM customers_event e WHERE e.kind = 'browse' "
                          f"AND e.id >= {first_id}")
            cursor.execute(HAND_ENTRIES.format(candidates=candidates), params)
            entries = cursor.rowcount
            cursor.execute(HAND_SENDS.format(sequence=SEND_SEQUENCE), params)
            return entries

    raw_s, raw_entries = timed(hand_inserts)
    assert raw_entries == EVENTS, raw_entries
    due = AutomationSend.objects.filter(automation=product, status="pending").count()
    AutomationSend.objects.filter(automation=hand).delete()
    AutomationEntry.objects.filter(automation=hand).delete()
    total = post_s + read_s
    return {"post_s": post_s, "read_s": read_s, "events_per_s": EVENTS / total, "raw_s": raw_s,
            "raw_events_per_s": EVENTS / raw_s, "due_rows_total": due}


def main() -> None:
    global ENTRANTS, EVENTS, ROUNDS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--entrants", type=int, default=ENTRANTS)
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--members", type=int, default=500_000, help="the segment's members before the rounds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not is_postgres():
        sys.exit("automations need PostgreSQL: set DATABASE_URL")
    ENTRANTS, EVENTS, ROUNDS = args.entrants, args.events, args.rounds
    if args.customers < args.rounds * (ENTRANTS + EVENTS) + args.members:
        sys.exit("--customers too small for the rounds")
    customers_ensure(args.customers)
    reset()
    ids = list(Customer.objects.filter(external_id__startswith=PREFIX).order_by("id").values_list("id", flat=True))
    user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_user("bench")
    user.groups.add(Group.objects.get_or_create(name=MARKETER)[0])
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the in-process client's host
    api = APIClient()
    api.force_authenticate(user)
    # A server imports its URLconf (scipy, statsmodels...) once at start-up: not per request.
    api.get("/api/")
    event_spec = {"trigger": {"event": "browse"}, "holdout": 0.1, "exit": ["ordered"], "steps": STEPS}
    event_product = automation_create({"name": "bench events", **event_spec})
    event_hand = automation_create({"name": "bench events (raw)", **event_spec})
    # the segment's automations must not see the event rounds' customers, nor the reverse
    segment = segment_setup(ids, args.members)
    seg_rounds, event_rounds = [], []
    for r in range(args.rounds):
        seg_rounds.append(segment_round(r, ids, segment))
        event_rounds.append(events_round(api, event_product, event_hand, r, ids))
    result = {
        "customers": args.customers,
        "segment": {"entrants": ENTRANTS, "rounds": seg_rounds,
                    "product_s_median": statistics.median(r["product_s"] for r in seg_rounds),
                    "raw_s_median": statistics.median(r["raw_s"] for r in seg_rounds)},
        "events": {"events": EVENTS, "rounds": event_rounds,
                   "events_per_s_median": statistics.median(r["events_per_s"] for r in event_rounds),
                   "raw_events_per_s_median": statistics.median(r["raw_events_per_s"] for r in event_rounds)},
        "load": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    s, e = result["segment"], result["events"]
    print(f"customers: {args.customers:,}   load average: {', '.join(f'{x:.2f}' for x in result['load'])}")
    for i, r in enumerate(seg_rounds):
        print(f"segment round {i + 1}: {ENTRANTS:,} entrants (segment now {r['segment_size']:,}) -> due rows in {r['product_s']:.2f} s "
              f"(raw SQL {r['raw_s']:.2f} s, ratio {r['product_s'] / r['raw_s']:.2f}); "
              f"{r['held_out']:,} held out so far, {r['due_rows']:,} due rows so far")
    print(f"segment entry: median {s['product_s_median']:.2f} s vs raw {s['raw_s_median']:.2f} s "
          f"(goal <= 2 s: {'met' if s['product_s_median'] <= 2 else 'NOT met'})")
    for i, r in enumerate(event_rounds):
        print(f"events round {i + 1}: {EVENTS:,} posted in {r['post_s']:.2f} s + read in {r['read_s']:.2f} s = "
              f"{r['events_per_s']:,.0f} events/s (raw SQL {r['raw_s']:.2f} s = {r['raw_events_per_s']:,.0f} events/s)")
    print(f"events: median {e['events_per_s_median']:,.0f} events/s vs raw {e['raw_events_per_s_median']:,.0f} "
          f"(goal >= 2,000: {'met' if e['events_per_s_median'] >= 2000 else 'NOT met'})")


if __name__ == "__main__":
    main()
