"""Segment refresh and k-means segments against hand-written equivalents, in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/offerlab_segbench \
        .venv/bin/python bench/segments_refresh.py --customers 1000000

Loads the demo base (`load_demo`) when the database does not hold exactly N demo
customers, then measures, alternating the two sides so neither gets a warmer cache:

1. Rule refresh: `segments.services.membership.segment_refresh` of a rule over columns, attributes
   and order / event history (one ORM-compiled INSERT ... SELECT, entered / left, the
   version switch, pruning) against hand-written SQL doing the same work: the same
   INSERT ... SELECT written by hand (correlated subqueries, and a variant joining
   pre-aggregated orders; the faster counts), the same diff, update and prune.
   Goal: within 1.3x.
2. K-means segments: `model_train("kmeans")` as the product runs it (features SQL, fit on
   its default training sample of at most 250,000 customers, silhouette and cluster
   profiles, every customer scored in chunks with COPY into ModelScore, five family
   segments materialised with INSERT ... SELECT) against bare scikit-learn on the same
   feature SQL (log1p + scale + the same MiniBatchKMeans fitted on every customer) with
   one COPY of the labels into ModelScore. Goal: within 1.5x. `--max-rows 0` makes
   model_train fit on every customer too.

Prints the timings and ratios (`--json` for machine-readable output).
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

import numpy as np  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from sklearn.cluster import MiniBatchKMeans  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # noqa: E402

from customers.features import customer_features  # noqa: E402
from customers.models import Customer  # noqa: E402
from core.bulk import bulk_copy  # noqa: E402
from core.db import is_postgres  # noqa: E402
from customers.services.demo import demo_load  # noqa: E402
from segments.services import membership, training  # noqa: E402
from segments.models import Membership, ModelScore, Segment, SegmentModel, SegmentRefresh  # noqa: E402

RULE = {"all": [
    {"field": "country", "op": "in", "value": ["US", "GB", "DE", "FR"]},
    {"any": [{"field": "attributes.discount_user", "op": "eq", "value": True},
             {"field": "monetary", "op": "gte", "value": 500}]},
    {"field": "orders_in_last_days", "args": {"days": 365}, "op": "gte", "value": 2},
    {"not": {"field": "events_in_last_days", "args": {"kind": "support_ticket", "days": 90}, "op": "gte",
             "value": 1}},
]}
KMEANS_FEATURES = ["recency_days", "frequency", "monetary", "avg_order_value", "tenure_days"]

# The same rule, by hand. {orders} / {events} / {members} are table names; %(...)s are bound.
HAND_CORRELATED = """
    INSERT INTO {members} (segment_id, version, customer_id)
    SELECT %(segment)s, %(version)s, c.id FROM {customers} c
    WHERE c.country IN ('US', 'GB', 'DE', 'FR')
      AND ((c.attributes -> 'discount_user') = 'true'::jsonb
           OR (SELECT SUM(o.amount) FROM {orders} o WHERE o.customer_id = c.id AND o.ordered_at < %(now)s) >= 500)
      AND (SELECT COUNT(*) FROM {orders} o
           WHERE o.customer_id = c.id AND o.ordered_at >= %(year_ago)s AND o.ordered_at < %(now)s) >= 2
      AND NOT EXISTS (SELECT 1 FROM {events} e WHERE e.customer_id = c.id AND e.kind = 'support_ticket'
                      AND e.occurred_at >= %(quarter_ago)s AND e.occurred_at < %(now)s)
"""
HAND_JOINED = """
    INSERT INTO {members} (segment_id, version, customer_id)
    SELECT %(segment)s, %(version)s, c.id
    FROM {customers} c
    JOIN (SELECT customer_id,
                 SUM(amount) AS monetary,
                 COUNT(*) FILTER (WHERE ordered_at >= %(year_ago)s) AS orders_year
          FROM {orders} WHERE ordered_at < %(now)s GROUP BY customer_id) o ON o.customer_id = c.id
    WHERE c.country IN ('US', 'GB', 'DE', 'FR')
      AND ((c.attributes -> 'discount_user') = 'true'::jsonb OR o.monetary >= 500)
      AND o.orders_year >= 2
      AND NOT EXISTS (SELECT 1 FROM {events} e WHERE e.customer_id = c.id AND e.kind = 'support_ticket'
                      AND e.occurred_at >= %(quarter_ago)s AND e.occurred_at < %(now)s)
"""


def demo_count() -> int:
    return Customer.objects.filter(external_id__startswith="demo-").count()


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def hand_refresh(segment: Segment, sql: str, now) -> int:
    """Everything segment_refresh does, by hand: insert, diff, switch, history, prune."""
    tables = {"members": Membership._meta.db_table, "customers": Customer._meta.db_table,
              "orders": "customers_order", "events": "customers_event"}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT current_version, size FROM {Segment._meta.db_table} WHERE id = %s FOR UPDATE",
                       [segment.pk])
        old_version, old_size = cursor.fetchone()
        version = old_version + 1
        cursor.execute(sql.format(**tables), {
            "segment": segment.pk, "version": version, "now": now,
            "year_ago": now - timedelta(days=365), "quarter_ago": now - timedelta(days=90)})
        size = cursor.rowcount
        cursor.execute(f"""SELECT COUNT(*) FROM {tables['members']} n JOIN {tables['members']} o
                           ON o.segment_id = n.segment_id AND o.customer_id = n.customer_id AND o.version = %s
                           WHERE n.segment_id = %s AND n.version = %s""", [old_version, segment.pk, version])
        both = cursor.fetchone()[0]
        cursor.execute(f"UPDATE {Segment._meta.db_table} SET current_version = %s, size = %s, refreshed_at = %s "
                       f"WHERE id = %s", [version, size, now, segment.pk])
        cursor.execute(f"INSERT INTO {SegmentRefresh._meta.db_table} (segment_id, version, size, entered, \"left\", "
                       f"seconds, refreshed_at) VALUES (%s, %s, %s, %s, %s, 0, %s)",
                       [segment.pk, version, size, size - both, old_size - both, now])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {tables['members']} WHERE segment_id = %s AND version <= %s",
                       [segment.pk, version - membership.KEEP_VERSIONS])
    return size


def bench_rule(rounds: int) -> dict:
    now = timezone.now()
    Segment.objects.filter(name__startswith="bench: ").delete()
    orm = membership.segment_create({"name": "bench: orm rule", "rule": RULE})
    hand = {name: Segment.objects.create(name=f"bench: hand {name}", rule=RULE)
            for name in ("correlated", "joined")}
    times: dict[str, list[float]] = {"orm": [], "correlated": [], "joined": []}
    sizes: dict[str, int] = {}
    for _ in range(rounds):
        for name, sql in (("correlated", HAND_CORRELATED), ("joined", HAND_JOINED)):
            seconds, sizes[name] = timed(lambda: hand_refresh(hand[name], sql, now))
            times[name].append(seconds)
        seconds, refreshes = timed(lambda: membership.segment_refresh(orm, now=now))
        times["orm"].append(seconds)
        sizes["orm"] = refreshes[0].size
    if len(set(sizes.values())) != 1:
        raise SystemExit(f"the hand-written SQL does not select the same customers: {sizes}")
    median = {k: statistics.median(v) for k, v in times.items()}
    best_hand = min(median["correlated"], median["joined"])
    return {"members": sizes["orm"], "rounds": rounds, "orm_seconds": round(median["orm"], 3),
            "hand_correlated_seconds": round(median["correlated"], 3), "hand_joined_seconds": round(median["joined"], 3),
            "ratio": round(median["orm"] / best_hand, 3), "goal": 1.3}


def bare_kmeans(now, k: int) -> float:
    """Features, fit, predict, COPY: what one would write with scikit-learn alone."""
    started = time.perf_counter()
    frame = customer_features(now)
    X = frame[KMEANS_FEATURES]
    heavy = ["recency_days", "frequency", "monetary", "avg_order_value", "tenure_days"]
    model = make_pipeline(
        SimpleImputer(strategy="median"),
        FunctionTransformer(lambda a: np.log1p(np.clip(a, 0, None))),  # same log1p as segments.ml.kmeans on these
        StandardScaler(),
        MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096, random_state=0),
    )
    values = X[heavy].to_numpy()
    labels = model.fit_predict(values)
    dist = model.transform(values).min(axis=1)  # distance to the nearest centre, as segments.ml.scoring scores
    record = SegmentModel.objects.create(name="bench: bare kmeans", kind="kmeans", pipeline=b"")
    with transaction.atomic():
        bulk_copy(ModelScore._meta.db_table, ["model_id", "customer_id", "score", "label"],
                  zip([record.pk] * len(frame), frame.index.tolist(), dist.tolist(), map(str, labels.tolist())))
    return time.perf_counter() - started


def ours_kmeans(now, k: int, max_rows: int | None) -> float:
    started = time.perf_counter()
    training.model_train("kmeans", name="bench: kmeans", k_range=[k], features=KMEANS_FEATURES, now=now,
                         max_rows=max_rows)
    return time.perf_counter() - started


def cleanup_models() -> None:
    Segment.objects.filter(family="bench: kmeans").delete()
    for model in SegmentModel.objects.filter(name__startswith="bench: "):
        ModelScore.objects.filter(model=model).delete()
        model.delete()


def bench_kmeans(rounds: int, k: int, max_rows: int | None) -> dict:
    now = timezone.now()
    times: dict[str, list[float]] = {"ours": [], "bare": []}
    for _ in range(rounds):
        cleanup_models()
        times["bare"].append(bare_kmeans(now, k))
        times["ours"].append(ours_kmeans(now, k, max_rows))
    model = SegmentModel.objects.filter(name="bench: kmeans").order_by("-version").first()
    sizes = list(Segment.objects.filter(family="bench: kmeans").values_list("size", flat=True))
    median = {key: statistics.median(v) for key, v in times.items()}
    return {"rounds": rounds, "k": k, "training_rows": model.training_rows, "segment_sizes": sorted(sizes),
            "ours_seconds": round(median["ours"], 3), "bare_seconds": round(median["bare"], 3),
            "ratio": round(median["ours"] / median["bare"], 3), "goal": 1.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-rows", type=int, default=training.MAX_TRAINING_ROWS,
                        help="model_train's training sample, as in production (0: train on every customer; "
                             "bare scikit-learn always fits on every customer)")
    parser.add_argument("--skip-rule", action="store_true")
    parser.add_argument("--skip-kmeans", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not is_postgres():
        sys.exit("set DATABASE_URL to a PostgreSQL database: the benchmark is about PostgreSQL")
    result: dict = {"customers": args.customers}
    if demo_count() != args.customers or Customer.objects.count() != args.customers:
        print(f"loading {args.customers:,} demo customers...", file=sys.stderr)
        result["load"] = demo_load(args.customers, args.seed)
    if not args.skip_rule:
        result["rule_refresh"] = bench_rule(args.rounds)
        r = result["rule_refresh"]
        if not args.json:
            print(f"rule refresh, {r['members']:,} of {args.customers:,} customers (median of {r['rounds']}): "
                  f"segment_refresh {r['orm_seconds']:.2f}s, hand-written {r['hand_correlated_seconds']:.2f}s "
                  f"(correlated) / {r['hand_joined_seconds']:.2f}s (joined aggregate): "
                  f"ratio {r['ratio']:.2f} vs the faster (goal <= {r['goal']})")
    if not args.skip_kmeans:
        result["kmeans"] = bench_kmeans(args.rounds, args.k, args.max_rows or None)
        r = result["kmeans"]
        if not args.json:
            print(f"k-means train + score + materialise, {r['training_rows']:,} training rows, k={r['k']} "
                  f"(median of {r['rounds']}): model_train {r['ours_seconds']:.2f}s, bare scikit-learn + COPY "
                  f"{r['bare_seconds']:.2f}s: ratio {r['ratio']:.2f} (goal <= {r['goal']})")
        cleanup_models()
    Segment.objects.filter(name__startswith="bench: ").delete()
    if args.json:
        print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
