"""campaigns/automations/selectors.py: the automation's report is an always-running experiment.

A planted effect (+4 points of conversion among treated entries) is covered by the report's
sequential interval, read from the database the way the page and the command read it; and
over simulated daily looks the A/A version crosses zero less often than alpha, where a
fixed-horizon test read daily does not (the simulation is what makes the claim checkable).
"""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from campaigns.automations.selectors import automation_funnel, automation_report, automation_status, report_from_counts
from campaigns.models import AutomationEntry
from campaigns.services.automations.create import automation_create
from campaigns.services.automations.tick import automation_tick
from core.db import is_postgres
from customers.models import Customer, Order
from segments.services import membership
from tests.campaigns.automations import auto_spec, make_people, step, us_segment

# Automations claim and cap with PostgreSQL's row and advisory locks; on SQLite their tick says so and skips.
postgres_only = pytest.mark.skipif(not is_postgres(), reason="automations and caps need PostgreSQL")
pytestmark = postgres_only


ALPHA = 0.05


@pytest.mark.django_db
def test_a_planted_effect_of_4_points_is_covered_by_the_report_read_from_the_database():
    # Given 8,000 entrants, half held out, and orders planted: 14% of treated, 10% of held out
    ids = make_people(8000, prefix="s")
    segment = us_segment()
    automation = automation_create(auto_spec(name="planted", holdout=0.5, steps=[step(0)], attribution_days=7))
    Customer.objects.filter(id__in=ids).update(country="US")
    membership.segment_refresh(segment)
    automation_tick(wake=False)
    entries = list(AutomationEntry.objects.filter(automation=automation).values("customer_id", "held_out", "entered_at"))
    assert len(entries) == 8000
    rng = np.random.default_rng(13)
    orders, truth = [], {True: [0, 0], False: [0, 0]}
    for e in entries:
        converts = rng.random() < (0.10 if e["held_out"] else 0.14)
        truth[e["held_out"]][0] += 1
        if converts:
            truth[e["held_out"]][1] += 1
            orders.append(Order(external_id=f"so{e['customer_id']}", customer_id=e["customer_id"],
                                amount=Decimal("20"), ordered_at=e["entered_at"] + timedelta(days=2)))
    # ... and orders that must not count: before entry, and after the 7-day window
    late = entries[:50]
    orders += [Order(external_id=f"late{e['customer_id']}", customer_id=e["customer_id"], amount=Decimal("5"),
                     ordered_at=e["entered_at"] + timedelta(days=8)) for e in late]
    orders += [Order(external_id=f"early{e['customer_id']}", customer_id=e["customer_id"], amount=Decimal("5"),
                     ordered_at=e["entered_at"] - timedelta(days=1)) for e in late]
    Order.objects.bulk_create(orders)

    # When the report is read ten days on
    report = automation_report(automation, now=timezone.now() + timedelta(days=10))

    # Then its counts are the planted ones and its always-valid interval covers +4 points
    (n_c, x_c), (n_t, x_t) = truth[True], truth[False]
    assert report["arms"]["treatment"]["entries"] == n_t and report["arms"]["treatment"]["converted"] == x_t
    assert report["arms"]["holdout"]["entries"] == n_c and report["arms"]["holdout"]["converted"] == x_c
    assert report["diff"] == pytest.approx(x_t / n_t - x_c / n_c, abs=1e-12)
    low, high = report["diff_ci"]
    assert low < 0.04 < high
    assert low > 0, "4 points on 8,000 entries is detected"
    # the sequential interval is wider than the fixed-horizon one: that is its price
    se = math.sqrt((x_t / n_t) * (1 - x_t / n_t) / n_t + (x_c / n_c) * (1 - x_c / n_c) / n_c)
    assert high - low > 2 * 1.96 * se
    assert report["test"] == "msprt_normal_mixture" and report["status"] == "significant"
    assert sum(d["entries"] for d in report["entries_per_day"]) == 8000
    status = automation_status(automation, now=timezone.now() + timedelta(days=10))
    assert status["report"]["diff"] == report["diff"]
    bars = {b["label"]: b["count"] for b in automation_funnel(automation)}
    assert bars["entered"] == 8000 and bars["held out"] == n_c


def _simulate(effect: float, reps: int, days: int = 30, per_day: int = 400, base: float = 0.10, seed: int = 7):
    """Daily looks at a growing experiment: per replication, whether any look's interval
    missed `truth`, by the report's sequential interval and by a fixed-horizon z interval."""
    rng = np.random.default_rng(seed)
    seq_miss = naive_miss = 0
    for _ in range(reps):
        n_t = n_c = x_t = x_c = 0
        missed_seq = missed_naive = False
        for _day in range(days):
            t = rng.binomial(per_day, 0.5)
            c = per_day - t
            n_t += t
            n_c += c
            x_t += rng.binomial(t, base + effect)
            x_c += rng.binomial(c, base)
            arms = {"treatment": {"entries": n_t, "converted": x_t}, "holdout": {"entries": n_c, "converted": x_c}}
            low, high = report_from_counts(arms)["diff_ci"]
            missed_seq |= not (low < effect < high)
            p_t, p_c = x_t / n_t, x_c / n_c
            se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
            missed_naive |= not (p_t - p_c - 1.96 * se < effect < p_t - p_c + 1.96 * se)
        seq_miss += missed_seq
        naive_miss += missed_naive
    return seq_miss / reps, naive_miss / reps


def test_an_aa_automation_read_every_day_for_30_days_stays_under_alpha():
    seq, naive = _simulate(effect=0.0, reps=300)
    assert seq < ALPHA, f"the report's false alarms over 30 daily looks: {seq:.3f}"
    assert naive > 2 * ALPHA, f"peeking at a fixed-horizon test would cry wolf: {naive:.3f}"


def test_a_planted_effect_is_covered_at_every_daily_look():
    seq, _ = _simulate(effect=0.04, reps=200, seed=11)
    assert seq < ALPHA, f"the truth fell outside the interval at some look in {seq:.1%} of runs"
