"""campaigns/automations/report.py: revenue and orders per entry, and step variants, in
sequential mode, against numbers computed here independently (plain Python over the planted
orders, and the normal-mixture confidence sequence written out from its formula)."""

from __future__ import annotations

import math
import statistics
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from campaigns.automations.report import pool
from campaigns.automations.selectors import automation_report
from campaigns.models import AutomationEntry, AutomationSend
from campaigns.services.automations.create import automation_create
from campaigns.services.automations.tick import automation_tick
from core.db import is_postgres
from customers.models import Customer, Order
from segments.services import membership
from tests.campaigns.automations import TEXT, auto_spec, make_people, run_all, step, us_segment

postgres_only = pytest.mark.skipif(not is_postgres(), reason="automations need PostgreSQL")
pytestmark = postgres_only

ALPHA = 0.05
TUNING_N = 10_000  # experiments.stats.sequential.DEFAULT_SEQUENTIAL_TUNING_N, fixed before the data


def msprt(estimate: float, variance: float, n: int) -> tuple[float, float, float]:
    """(low, high, p): the normal-mixture confidence sequence (Howard et al. 2021), written out."""
    k = 2 * math.log(1 / ALPHA)
    tau2 = variance * n / TUNING_N * (k + math.log(1 + k))
    half = math.sqrt(variance * (variance + tau2) / tau2 * (2 * math.log(1 / ALPHA) + math.log((variance + tau2) / variance)))
    log_lr = 0.5 * math.log(variance / (variance + tau2)) + tau2 * estimate**2 / (2 * variance * (variance + tau2))
    return estimate - half, estimate + half, math.exp(-max(0.0, log_lr))


def welch(t: list[float], c: list[float]) -> tuple[float, float, float, float]:
    """(diff, low, high, p) of mean(t) - mean(c), sequential."""
    diff = statistics.fmean(t) - statistics.fmean(c)
    v = statistics.variance(t) / len(t) + statistics.variance(c) / len(c)
    return (diff, *msprt(diff, v, len(t) + len(c)))


def enter(automation_spec: dict, n: int, prefix: str):
    ids = make_people(n, prefix=prefix)
    segment = us_segment()
    automation = automation_create(automation_spec)
    Customer.objects.filter(id__in=ids).update(country="US")
    membership.segment_refresh(segment)
    return automation


@pytest.mark.django_db
def test_revenue_and_orders_per_entry_match_an_independent_computation_and_cover_the_planted_effect():
    # Given 3,000 entrants, half held out; 30% of each arm buy, treated spend more per order
    automation = enter(auto_spec(name="revenue", holdout=0.5, steps=[step(0)], attribution_days=7), 3000, "r")
    automation_tick(wake=False)
    entries = list(AutomationEntry.objects.filter(automation=automation).values("customer_id", "held_out", "entered_at"))
    assert len(entries) == 3000
    rng = np.random.default_rng(5)
    revenue = {True: [], False: []}
    orders_per = {True: [], False: []}
    orders = []
    for e in entries:
        mean_amount = 50.0 if e["held_out"] else 60.0
        total, count = 0.0, 0
        if rng.random() < 0.3:
            for j in range(int(rng.integers(1, 4))):
                amount = round(float(rng.exponential(mean_amount)), 2)
                total += amount
                count += 1
                orders.append(Order(external_id=f"o{e['customer_id']}-{j}", customer_id=e["customer_id"],
                                    amount=Decimal(str(amount)), ordered_at=e["entered_at"] + timedelta(days=1 + j)))
        revenue[e["held_out"]].append(total)
        orders_per[e["held_out"]].append(count)
    # orders outside the window count for nobody: the day before entry, and on day 8
    for e in entries[:100]:
        orders.append(Order(external_id=f"x{e['customer_id']}", customer_id=e["customer_id"], amount=Decimal("999"),
                            ordered_at=e["entered_at"] - timedelta(days=1)))
        orders.append(Order(external_id=f"y{e['customer_id']}", customer_id=e["customer_id"], amount=Decimal("999"),
                            ordered_at=e["entered_at"] + timedelta(days=8)))
    Order.objects.bulk_create(orders)

    # When the report is read ten days on
    report = automation_report(automation, now=timezone.now() + timedelta(days=10))

    # Then the arms' sums are the planted ones
    arms = report["arms"]
    assert arms["treatment"]["revenue"] == pytest.approx(sum(revenue[False]), abs=0.005)
    assert arms["holdout"]["revenue"] == pytest.approx(sum(revenue[True]), abs=0.005)
    assert arms["treatment"]["orders"] == sum(orders_per[False]) and arms["holdout"]["orders"] == sum(orders_per[True])
    # and the sequential comparison is the one computed here
    for name, data in (("revenue_per_entry", revenue), ("orders_per_entry", orders_per)):
        got = report["metrics"][name]
        diff, low, high, p = welch(data[False], data[True])
        assert got["diff"] == pytest.approx(diff, rel=1e-9)
        assert got["diff_ci"][0] == pytest.approx(low, rel=1e-6) and got["diff_ci"][1] == pytest.approx(high, rel=1e-6)
        assert got["p_value"] == pytest.approx(p, rel=1e-6, abs=1e-12)
        assert got["test"] == "msprt_normal_mixture"
    # the planted effect: 0.3 * E[orders | buys] * (60 - 50) = 0.3 * 2 * 10 = +6 per entry
    low, high = report["metrics"]["revenue_per_entry"]["diff_ci"]
    assert low < 6.0 < high
    # conversion stays where it was, at the top level and under metrics alike
    assert report["metrics"]["conversion"]["diff"] == report["diff"]


@pytest.mark.django_db
def test_a_step_with_three_variants_compares_each_with_the_others_after_its_send():
    # Given 900 entrants, no holdout, a first step with three variants, and a one-variant second step
    three = {"wait_hours": 0, "variants": [{"name": n, "subject": f"Offer {n}", "text": TEXT} for n in "abc"]}
    automation = enter(auto_spec(name="variants", holdout=0, steps=[three, step(48, name="z")], attribution_days=7),
                       900, "v")
    run_all()
    sends = list(AutomationSend.objects.filter(automation=automation, step_index=0).select_related("variant")
                 .order_by("id"))
    assert len(sends) == 900 and all(s.sent_at for s in sends)
    # orders: variant b converts more; an order before the send (but after entry) is not the variant's.
    # Exactly 10% / 25% / 10% of each variant's sends buy (which ones drawn at random): drawn
    # per send, b's planted lift was sometimes too small for the always-valid interval at
    # these sizes (the variants' sizes vary with the automation's random salt).
    rng = np.random.default_rng(3)
    rates = {"a": 0.10, "b": 0.25, "c": 0.10}
    buyers = set()
    for name, rate in rates.items():
        mine = [s.id for s in sends if s.variant.name == name]
        buyers |= set(rng.choice(mine, size=round(rate * len(mine)), replace=False).tolist())
    bought = {"a": [], "b": [], "c": []}
    orders = []
    for s in sends:
        converts = s.id in buyers
        bought[s.variant.name].append(1 if converts else 0)
        if converts:
            orders.append(Order(external_id=f"b{s.id}", customer_id=s.customer_id, amount=Decimal("30"),
                                ordered_at=s.sent_at + timedelta(hours=5)))
    Order.objects.bulk_create(orders)

    # When the report is read two days on
    report = automation_report(automation, now=timezone.now() + timedelta(days=2))

    # Then step 1 (only) is analysed, each variant against the two others pooled
    assert [v["step"] for v in report["variants"]] == [0]
    block = report["variants"][0]
    assert block["adjustment"] == "holm" and "other variants" in block["comparison"]
    rows = {r["variant"]: r for r in block["variants"]}
    raw = {}
    for name in "abc":
        mine = bought[name]
        rest = [x for other in "abc" if other != name for x in bought[other]]
        p_t, p_c = statistics.fmean(mine), statistics.fmean(rest)
        v = p_t * (1 - p_t) / len(mine) + p_c * (1 - p_c) / len(rest)
        low, high, p = msprt(p_t - p_c, v, len(mine) + len(rest))
        got = rows[name]
        assert got["sent"] == len(mine) and got["converted"] == sum(mine)
        assert got["conversion"]["diff"] == pytest.approx(p_t - p_c, abs=1e-12)
        assert got["conversion"]["diff_ci"] == pytest.approx([low, high], rel=1e-6)
        assert got["conversion"]["p_value"] == pytest.approx(p, rel=1e-6, abs=1e-12)
        raw[name] = p
    # Holm over the three, by hand: sorted p times (m - rank), running maximum, at most 1
    order = sorted(raw, key=raw.get)
    running = 0.0
    for rank, name in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * raw[name]))
        assert rows[name]["conversion"]["p_value_adjusted"] == pytest.approx(running, rel=1e-9)
    assert rows["b"]["status"] == "significant" and rows["b"]["conversion"]["diff"] > 0
    # revenue per send: 30 per buyer, the same independent Welch
    diff, low, high, _ = welch([30.0 * x for x in bought["b"]], [30.0 * x for o in "ac" for x in bought[o]])
    assert rows["b"]["revenue_per_send"]["diff"] == pytest.approx(diff, rel=1e-9)
    assert rows["b"]["revenue_per_send"]["diff_ci"] == pytest.approx([low, high], rel=1e-6)


def test_pooling_arms_gives_the_mean_and_variance_of_their_units_together():
    rng = np.random.default_rng(1)
    groups = [rng.exponential(20, size=n).round(2) for n in (5, 17, 40)]
    arms = [{"entries": len(g), "converted": int((g > 10).sum()), "revenue": float(g.sum()), "orders": len(g),
             "revenue_mean": float(g.mean()), "revenue_var": float(g.var(ddof=1)),
             "orders_mean": 1.0, "orders_var": 0.0} for g in groups]
    pooled = pool(arms)
    everything = np.concatenate(groups)
    assert pooled["entries"] == everything.size
    assert pooled["revenue_mean"] == pytest.approx(everything.mean(), rel=1e-12)
    assert pooled["revenue_var"] == pytest.approx(everything.var(ddof=1), rel=1e-9)
    assert pooled["orders_var"] == pytest.approx(0.0, abs=1e-12)
