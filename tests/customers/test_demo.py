from datetime import datetime, timezone

import numpy as np
import pytest
from django.core.management import call_command
from django.db.models import Count

from customers import demo
from customers.models import Customer, Event, Order
from customers.services.demo import demo_load

pytestmark = pytest.mark.django_db


def test_load_demo_creates_the_requested_customers_with_planted_truth(capsys):
    call_command("load_demo", "--customers", "1500", "--seed", "3")
    assert "1,500 customers" in capsys.readouterr().out
    assert Customer.objects.count() == 1500
    clusters = {c.attributes["planted_cluster"] for c in Customer.objects.all()}
    assert clusters == {0, 1, 2, 3, 4}
    assert Order.objects.filter(properties__campaign="demo-spring").exists()


def test_load_demo_twice_replaces_rather_than_doubles():
    call_command("load_demo", "--customers", "300")
    call_command("load_demo", "--customers", "300")
    assert Customer.objects.count() == 300


def test_load_demo_if_empty_leaves_an_existing_base_alone(capsys):
    call_command("load_demo", "--customers", "50")
    call_command("load_demo", "--customers", "80", "--if-empty")
    assert "skipped" in capsys.readouterr().out
    assert Customer.objects.count() == 50


def test_a_base_in_several_chunks_numbers_everyone_once_and_ties_orders_to_their_customers():
    demo_load(2500, seed=5, chunk=1000)
    ids = sorted(int(e.removeprefix("demo-")) for e in Customer.objects.values_list("external_id", flat=True))
    assert ids == list(range(1, 2501))
    numbers = sorted(int(e.removeprefix("demo-o")) for e in Order.objects.values_list("external_id", flat=True))
    assert numbers == list(range(1, len(numbers) + 1))
    # Every customer has the orders and events its chunk drew for it (each at least one
    # order before the cutoff), under the id the row was written with.
    with_orders = Customer.objects.annotate(n=Count("orders")).filter(n=0)
    assert not with_orders.exists()
    assert Event.objects.values("customer").distinct().count() == 2500
    customer = Customer.objects.get(external_id="demo-1777")
    assert customer.email == "demo-1777@example.com" and customer.name.endswith(" 1777")


def test_a_base_of_one_chunk_is_the_base_drawn_whole():
    today = datetime(2026, 1, 1, tzinfo=timezone.utc)
    whole = demo.demo_generate(3000, 9, today)
    (chunked,) = demo.demo_chunks(3000, 9, today, chunk=5000)
    for part in ("customers", "orders", "events"):
        mine, theirs = getattr(whole, part), getattr(chunked, part)
        assert mine.keys() == theirs.keys()
        for key in mine:
            assert np.array_equal(mine[key], theirs[key]), (part, key)


def test_a_chunked_base_plants_the_same_campaign_effect_and_churn_drivers():
    today = datetime(2026, 1, 1, tzinfo=timezone.utc)
    parts = list(demo.demo_chunks(60_000, 7, today, chunk=10_000))
    assert len(parts) == 6
    arm = np.concatenate([p.customers["arm"] for p in parts])
    converted = np.zeros(arm.size, bool)
    offset = 0
    for p in parts:
        campaign = p.orders["customer"][p.orders["campaign"]]
        converted[offset + campaign] = True
        offset += p.customers["ids"].size
    rates = {a: converted[arm == a].mean() for a in ("control", "treatment")}
    # 6% and 9% planted; at about 30,000 customers an arm the standard error is 0.15 points.
    assert rates["control"] == pytest.approx(0.06, abs=0.006)
    assert rates["treatment"] == pytest.approx(0.09, abs=0.006)
    clusters = np.concatenate([p.customers["cluster"] for p in parts])
    shares = np.bincount(clusters, minlength=len(demo.CLUSTERS)) / clusters.size
    assert shares == pytest.approx([c.share for c in demo.CLUSTERS], abs=0.01)
