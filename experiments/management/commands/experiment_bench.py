"""Time the experiment report at scale on synthetic data (customers 'bench-*'), each stage
beside a hand-written SQL baseline in the same run.

    manage.py experiment_bench --units 1000000 --confirm          # build data, time the report
    manage.py experiment_bench --units 1000000 --confirm --reuse  # time the data already built
    manage.py experiment_bench --cleanup --confirm                # remove the bench data

Writes customers, orders, events and an experiment named 'bench-report' into the
configured database, so it refuses to run without --confirm. Times are wall-clock medians
of --repeat runs, product and baseline alternating so neither gets a warmer cache:

- metrics: outcomes.arm_sums (every metric of the report: conversion, revenue, orders,
  visit, and the two ratio metrics revenue/orders and orders/visit, per arm) against a
  hand-written query that aggregates orders and visits per customer and joins that to the
  exposures. The baseline may do that only because every bench exposure shares one
  instant; the product checks each unit's own window.
- retention: survival.survival_data against a hand-written first-order-per-customer query.
- report: reports.report_build (SQL, every statistic and the Bayesian read of every
  comparison), without and with the retention section, against the baselines' sum. With
  retention the report reads its survival data on a second connection while the metrics
  run, so the baseline runs its two queries on two connections at once too.

The machine's load average is printed beside the numbers: on a shared machine the ratios
are what counts.
"""

import json
import os
import statistics
import time
from datetime import datetime, timedelta, timezone as dt_timezone

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, connection, transaction

from customers.models import Customer, Event, Order
from core.bulk import bulk_copy
from core.db import alongside, is_postgres
from experiments import outcomes, reports, survival
from experiments.services.definitions import experiment_create, experiment_delete
from experiments.services.exposures import exposures_record
from experiments.models import Experiment

NAME = "bench-report"
PREFIX = "bench-"

# The same aggregates as outcomes.arm_sums gives for the bench's metrics, by hand.
RAW_METRICS = """
SELECT e.arm_id, COUNT(*),
  SUM(CASE WHEN o.n > 0 THEN 1 ELSE 0 END),
  AVG(COALESCE(o.revenue, 0)), VAR_SAMP(COALESCE(o.revenue, 0)),
  AVG(COALESCE(o.n, 0)), VAR_SAMP(COALESCE(o.n, 0)),
  SUM(CASE WHEN v.n > 0 THEN 1 ELSE 0 END),
  COVAR_SAMP(COALESCE(o.revenue, 0), COALESCE(o.n, 0)),
  AVG(COALESCE(v.n, 0)), VAR_SAMP(COALESCE(v.n, 0)), COVAR_SAMP(COALESCE(o.n, 0), COALESCE(v.n, 0))
FROM experiments_exposure e
LEFT JOIN (SELECT customer_id, SUM(CAST(amount AS DOUBLE PRECISION)) AS revenue, CAST(COUNT(*) AS DOUBLE PRECISION) AS n
           FROM customers_order WHERE ordered_at >= %(start)s AND ordered_at < %(end)s GROUP BY 1) o
  ON o.customer_id = e.customer_id
LEFT JOIN (SELECT customer_id, CAST(COUNT(*) AS DOUBLE PRECISION) AS n
           FROM customers_event WHERE kind = 'visit' AND occurred_at >= %(start)s AND occurred_at < %(end)s GROUP BY 1) v
  ON v.customer_id = e.customer_id
WHERE e.experiment_id = %(experiment)s GROUP BY 1
"""
# Units by arm and hours to the first order after launch (NULL: none yet), by hand.
RAW_RETENTION = """
SELECT e.arm_id, CEIL(date_part('epoch', f.first_at - e.exposed_at) / 3600.0), COUNT(*)
FROM experiments_exposure e
LEFT JOIN (SELECT customer_id, MIN(ordered_at) AS first_at FROM customers_order
           WHERE ordered_at >= %(start)s AND ordered_at <= %(now)s GROUP BY 1) f ON f.customer_id = e.customer_id
WHERE e.experiment_id = %(experiment)s GROUP BY 1, 2
"""


def _raw(sql: str, params: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.fetchall()


def _raw_both(params: dict) -> None:
    """Both baselines on two connections at once, as the report reads its metrics and its
    survival data (core.db.alongside): the product gets no head start the SQL does not."""
    retention = alongside(lambda: _raw(RAW_RETENTION, params))
    _raw(RAW_METRICS, params)
    retention()


def _load() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def _stamp(seconds: np.ndarray):
    return (datetime.fromtimestamp(float(s), tz=dt_timezone.utc) for s in seconds)


class Command(BaseCommand):
    help = "Build synthetic exposures, orders and events and time the experiment report."

    def add_arguments(self, parser):
        parser.add_argument("--units", type=int, default=1_000_000)
        parser.add_argument("--repeat", type=int, default=3)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--reuse", action="store_true", help="time the existing bench data, build nothing")
        parser.add_argument("--cleanup", action="store_true", help="delete the bench data and stop")
        parser.add_argument("--confirm", action="store_true", help="yes, write bench-* rows to this database")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if not options["confirm"]:
            raise CommandError("this writes bench-* customers and an experiment to the database: pass --confirm")
        if options["cleanup"] or not options["reuse"]:
            self._cleanup()
            if options["cleanup"]:
                self.stdout.write("bench data removed")
                return
            built = self._build(options["units"], options["seed"])
            if is_postgres():
                # As autovacuum leaves an insert-only table: analyzed, its visibility map set.
                # Not in a transaction.
                with connection.cursor() as cursor:
                    cursor.execute("VACUUM ANALYZE experiments_exposure")
        else:
            built = {}
        experiment = Experiment.objects.get(name=NAME)
        # The retention stage reads the experiment's own retention event, and the report stages
        # leave it as the last one set: without this, a run after "report without retention"
        # (or any other edit) timed survival over events of kind '' against the orders baseline.
        Experiment.objects.filter(id=experiment.id).update(retention_event="order")
        experiment.refresh_from_db()
        if not is_postgres():
            raise CommandError("the baselines are PostgreSQL SQL: set DATABASE_URL to a PostgreSQL database")
        load_before = _load()
        now = datetime.now(dt_timezone.utc)
        start = experiment.first_exposed_at
        params = {"experiment": experiment.id, "start": start, "now": now,
                  "end": start + timedelta(days=experiment.attribution_days)}
        metrics = list(experiment.metrics.order_by("position", "id"))
        max_day = max(reports.DEFAULT_RETENTION_DAYS)
        stages = {
            "metrics (SQL)": (lambda: outcomes.arm_sums(experiment, metrics), lambda: _raw(RAW_METRICS, params)),
            "retention (SQL)": (lambda: survival.survival_data(experiment, now, max_day=max_day),
                                lambda: _raw(RAW_RETENTION, params)),
            "report without retention": (lambda: self._report(experiment, "", now), lambda: _raw(RAW_METRICS, params)),
            "report with retention": (lambda: self._report(experiment, "order", now),
                                      lambda: _raw_both(params)),
        }
        results = {}
        for label, (product, raw) in stages.items():
            times = {"product": [], "raw": []}
            for _ in range(options["repeat"]):
                for side, fn in (("product", product), ("raw", raw)):
                    started = time.perf_counter()
                    fn()
                    times[side].append(time.perf_counter() - started)
            p, r = statistics.median(times["product"]), statistics.median(times["raw"])
            results[label] = {"product": round(p, 3), "raw": round(r, 3), "ratio": round(p / r, 2),
                              "product_best": round(min(times["product"]), 3)}
        units = experiment.exposures.count()
        summary = {"database": connection.vendor, "units": units, **built, "repeat": options["repeat"],
                   "load_before": load_before, "load_after": _load(), "stages": results}
        if options["json"]:
            self.stdout.write(json.dumps(summary))
            return
        self.stdout.write(f"{connection.vendor}, {units:,} exposures, median of {options['repeat']} "
                          f"({load_before} before, {summary['load_after']} after)")
        self.stdout.write(f"{'stage':<28}{'offerlab s':>12}{'raw SQL s':>12}{'ratio':>8}")
        for label, r in results.items():
            self.stdout.write(f"{label:<28}{r['product']:>12.3f}{r['raw']:>12.3f}{r['ratio']:>8.2f}")

    def _report(self, experiment: Experiment, retention_event: str, now) -> dict:
        Experiment.objects.filter(id=experiment.id).update(retention_event=retention_event)
        experiment.refresh_from_db()
        return reports.report_build(experiment, now=now)

    def _cleanup(self):
        existing = Experiment.objects.filter(name=NAME).first()
        if existing:
            experiment_delete(existing)
        with connection.cursor() as cursor:
            ids = f"SELECT id FROM {Customer._meta.db_table} WHERE external_id LIKE 'bench-%%'"
            cursor.execute(f"DELETE FROM {Event._meta.db_table} WHERE customer_id IN ({ids})")
            cursor.execute(f"DELETE FROM {Order._meta.db_table} WHERE customer_id IN ({ids})")
            try:
                with transaction.atomic():
                    cursor.execute(f"DELETE FROM {Customer._meta.db_table} WHERE external_id LIKE 'bench-%%'")
            except IntegrityError as exc:
                # bench/campaigns_send.py writes bench-* customers too, with a segment and a ledger.
                raise CommandError(f"the bench-* customers here are still used elsewhere ({exc.__cause__}); "
                                   "run this bench in a database of its own") from exc

    @transaction.atomic
    def _build(self, n: int, seed: int) -> dict:
        started = time.perf_counter()
        rng = np.random.default_rng(seed)
        now = datetime.now(dt_timezone.utc)
        launch = now - timedelta(days=60)
        t0 = launch.timestamp()
        day = 86400.0
        stamp = now
        bulk_copy(
            Customer._meta.db_table,
            ["external_id", "email", "name", "country", "time_zone", "attributes", "created_at", "updated_at"],
            ((f"{PREFIX}{i}", "", "", "US", "UTC", '{"tier": "%s"}' % ("gold" if i % 5 == 0 else "std"), stamp, stamp)
             for i in range(n)),
        )
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {Customer._meta.db_table} WHERE external_id LIKE 'bench-%%' ORDER BY id")
            ids = np.array([r[0] for r in cursor.fetchall()], dtype=np.int64)
        treated = rng.random(n) < 0.5
        # Orders: a year of history plus, after launch, a 5% vs 6% chance of an order in 14 days.
        hist = rng.poisson(2.0, n)
        owner = np.repeat(np.arange(n), hist)
        when = t0 - rng.uniform(0, 365 * day, owner.size)
        buys = rng.random(n) < np.where(treated, 0.06, 0.05)
        post_owner = np.flatnonzero(buys)
        post_when = t0 + rng.uniform(0, 14 * day, post_owner.size)
        later_owner = np.flatnonzero(rng.random(n) < 0.3)
        later_when = t0 + rng.uniform(14 * day, 59 * day, later_owner.size)
        all_owner = np.concatenate([owner, post_owner, later_owner])
        all_when = np.concatenate([when, post_when, later_when])
        amounts = np.round(rng.lognormal(3.5, 0.6, all_owner.size), 2)
        bulk_copy(
            Order._meta.db_table, ["external_id", "customer_id", "amount", "currency", "ordered_at", "properties"],
            ((f"{PREFIX}o{i}", int(ids[o]), f"{a:.2f}", "USD", w, "{}")
             for i, (o, a, w) in enumerate(zip(all_owner, amounts, _stamp(all_when)))),
        )
        visits = rng.poisson(3.0, n)
        v_owner = np.repeat(np.arange(n), visits)
        v_when = np.floor(t0 + rng.uniform(-30 * day, 30 * day, v_owner.size)) + (np.arange(v_owner.size) % 1_000_000) / 1e6
        bulk_copy(
            Event._meta.db_table, ["customer_id", "kind", "occurred_at", "properties"],
            ((int(ids[o]), "visit", w, "{}") for o, w in zip(v_owner, _stamp(v_when))),
        )
        experiment = experiment_create(
            NAME, [("control", 1, True), ("treatment", 1, False)], primary_metric="conversion",
            # Two ratio metrics: one within orders, one across orders and events (the costlier kind).
            secondary_metrics=["revenue", "orders", "visit", "revenue/orders", "orders/visit"], attribution_days=14,
            salt="bench")
        exposures_record(
            experiment, ((int(ids[i]), "treatment" if treated[i] else "control", launch) for i in range(n)))
        if is_postgres():
            with connection.cursor() as cursor:
                for table in (Customer, Order, Event):
                    cursor.execute(f"ANALYZE {table._meta.db_table}")
                cursor.execute("ANALYZE experiments_exposure")
        return {"customers": n, "orders": int(all_owner.size), "events": int(v_owner.size),
                "build_seconds": round(time.perf_counter() - started, 1)}
