"""Time the experiment report at scale on synthetic data (customers 'bench-*').

    manage.py experiment_bench --units 1000000 --confirm     # build data, time the report
    manage.py experiment_bench --cleanup --confirm           # remove the bench data

Writes customers, orders, events and an experiment named 'bench-report' into the
configured database, so it refuses to run without --confirm. Times are wall-clock for
reports.report_build (the whole analysis, SQL included, with two ratio metrics and the
Bayesian read of every comparison), best and median of --repeat runs.
"""

import json
import statistics
import time
from datetime import datetime, timedelta, timezone as dt_timezone

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from customers.models import Customer, Event, Order
from core.bulk import bulk_copy
from core.db import is_postgres
from experiments import reports
from experiments.services.definitions import experiment_create, experiment_delete
from experiments.services.exposures import exposures_record
from experiments.models import Experiment

NAME = "bench-report"
PREFIX = "bench-"


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
        else:
            built = {}
        experiment = Experiment.objects.get(name=NAME)
        results = {}
        for label, kwargs in (("core", {"retention_event": ""}), ("with_retention", {"retention_event": "order"})):
            Experiment.objects.filter(id=experiment.id).update(**kwargs)
            experiment.refresh_from_db()
            times = []
            for _ in range(options["repeat"]):
                started = time.perf_counter()
                body = reports.report_build(experiment)
                times.append(time.perf_counter() - started)
            results[label] = {"best": round(min(times), 3), "median": round(statistics.median(times), 3),
                              "units": body["units"]}
        summary = {"database": connection.vendor, **built, "report_seconds": results}
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(
                f"{connection.vendor}, {results['core']['units']:,} exposures: report {results['core']['median']}s "
                f"(best {results['core']['best']}s) without retention, {results['with_retention']['median']}s "
                f"(best {results['with_retention']['best']}s) with retention; median of {options['repeat']}")

    def _cleanup(self):
        existing = Experiment.objects.filter(name=NAME).first()
        if existing:
            experiment_delete(existing)
        with connection.cursor() as cursor:
            ids = f"SELECT id FROM {Customer._meta.db_table} WHERE external_id LIKE 'bench-%%'"
            cursor.execute(f"DELETE FROM {Event._meta.db_table} WHERE customer_id IN ({ids})")
            cursor.execute(f"DELETE FROM {Order._meta.db_table} WHERE customer_id IN ({ids})")
            cursor.execute(f"DELETE FROM {Customer._meta.db_table} WHERE external_id LIKE 'bench-%%'")

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
