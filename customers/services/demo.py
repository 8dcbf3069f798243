"""Loading the synthetic demo base: customers, orders and events with planted ground truth."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone as dt_timezone

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from core.bulk import bulk_copy
from core.db import is_postgres

from ..demo import COUNTRIES, ZONES, demo_generate
from ..models import AttributeDefinition, Customer, Event, Order


def _stamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), tz=dt_timezone.utc)


@transaction.atomic
def demo_load(customers: int = 20_000, seed: int = 7, today: datetime | None = None) -> dict:
    """Replace any earlier demo customers with a fresh synthetic base (see customers/demo.py)."""
    started = time.monotonic()
    today = (today or timezone.now()).replace(hour=0, minute=0, second=0, microsecond=0)
    data = demo_generate(customers, seed, today)
    Customer.objects.filter(external_id__startswith="demo-").delete()
    for name, kind in (("planted_cluster", "integer"), ("discount_user", "boolean"), ("demo_campaign_arm", "text")):
        AttributeDefinition.objects.get_or_create(name=name, defaults={"type": kind})

    c = data.customers
    now = timezone.now()
    names = np.array(["Alex", "Sam", "Robin", "Kim", "Jo", "Lee", "Max", "Ari", "Noa", "Pat"])
    bulk_copy(
        Customer._meta.db_table,
        ["external_id", "email", "name", "country", "time_zone", "signup_date", "attributes", "created_at", "updated_at"],
        (
            (
                c["external_id"][i],
                f"{c['external_id'][i]}@example.com",
                f"{names[i % names.size]} {c['ids'][i]}",
                COUNTRIES[c["country_index"][i]],
                ZONES[c["country_index"][i]],
                _stamp(c["signup"][i]).date(),
                json.dumps(
                    {"planted_cluster": int(c["cluster"][i]), "discount_user": bool(c["discount_user"][i])}
                    | ({"demo_campaign_arm": str(c["arm"][i])} if c["arm"][i] else {})
                ),
                now,
                now,
            )
            for i in range(customers)
        ),
    )
    # Map the generator's 0-based customer index to database ids, in one query.
    ids = dict(Customer.objects.filter(external_id__startswith="demo-").values_list("external_id", "id"))
    db_id = np.array([ids[e] for e in c["external_id"]], dtype=np.int64)

    o = data.orders
    bulk_copy(
        Order._meta.db_table,
        ["external_id", "customer_id", "amount", "currency", "ordered_at", "properties"],
        (
            (
                o["external_id"][i],
                int(db_id[o["customer"][i]]),
                f"{o['amount'][i]:.2f}",
                "USD",
                _stamp(o["ordered_at"][i]),
                json.dumps(
                    ({"discount_code": "SAVE10"} if o["discounted"][i] else {})
                    | ({"campaign": "demo-spring"} if o["campaign"][i] else {})
                ),
            )
            for i in range(o["customer"].size)
        ),
    )
    e = data.events
    bulk_copy(
        Event._meta.db_table,
        ["customer_id", "kind", "occurred_at", "properties"],
        ((int(db_id[e["customer"][i]]), str(e["kind"][i]), _stamp(e["occurred_at"][i]), "{}") for i in range(e["customer"].size)),
    )
    if is_postgres():
        with connection.cursor() as cursor:
            for model in (Customer, Order, Event):
                cursor.execute(f"ANALYZE {model._meta.db_table}")
    return {
        "customers": customers,
        "orders": int(o["customer"].size),
        "events": int(e["customer"].size),
        "seed": seed,
        "today": today.date().isoformat(),
        "seconds": round(time.monotonic() - started, 2),
    }
