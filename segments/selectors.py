"""Reads of segments: members, the field registry as the database knows it, previews, history.

Migration between refreshes (matrices, at-risk lists) is in segments.migration."""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from core.db import is_postgres
from customers.models import AttributeDefinition, Customer, Event

from . import rules
from .dependencies import rule_segment_refs
from .fields import (
    CUSTOMER_FIELDS, FEATURE_FIELDS, MEMBERSHIP_FIELD, MODEL_FIELDS, OPERATOR_HELP, OPS_BY_TYPE, FieldSpec, Registry,
    attribute_field,
)
from .compile import ModelResolver, rule_q
from .ml.guard import RankCut
from .models import Membership, ModelScore, Segment, SegmentModel, SegmentRefresh

# A preview evaluates the rule exactly when that is cheap (columns and attributes, or a
# small base); rules over order / event history on a large base are estimated from a
# sample of customer-id blocks, which keeps a preview well under a second at 1M customers.
PREVIEW_EXACT_MAX = 100_000
PREVIEW_SAMPLE = 50_000
PREVIEW_BLOCK = 2_000
PICKER_MAX_VALUES = 50
# The builder's value suggestions on a large base: a value held by 1 in 10,000 customers
# is among them 86% of the time; reading one attribute of 20,000 customers takes ~15 ms.
SUGGEST_SAMPLE = 20_000


def segment_customers(segment: Segment, ids: tuple[int, int] | None = None) -> QuerySet[Customer]:
    """The customers in the segment's current version; `ids` (lo, hi) keeps those with
    lo <= id < hi, said of the membership rows in the same join so that PostgreSQL reads
    only that range of the (segment, version, customer) index: said of the customers alone,
    it scanned every member of the segment once per range (a ranged launch, 10 ranges)."""
    members = {"segment_memberships__segment": segment, "segment_memberships__version": segment.current_version}
    if ids is not None:
        members |= {"segment_memberships__customer_id__gte": ids[0], "segment_memberships__customer_id__lt": ids[1],
                    "id__gte": ids[0], "id__lt": ids[1]}
    return Customer.objects.filter(**members)


def segment_member_rows(segment: Segment) -> QuerySet[Membership]:
    """The current version's membership rows with their customers, for a page of members
    that is read by keyset on `customer_id`: its bound then sits on the (segment, version,
    customer) index the rows come from, so a deep page costs what the first one does."""
    return Membership.objects.filter(segment=segment, version=segment.current_version).select_related("customer")


def segment_version_at(segment: Segment, when: datetime | None) -> tuple[int, datetime | None, bool]:
    """The membership version that says who was in the segment at ``when``: (version, when
    it was refreshed, True). Refreshes prune old versions, and a segment may be younger than
    ``when``: then the current version, its refresh time and False. Reads only."""
    if when is not None:
        then = SegmentRefresh.objects.filter(segment=segment, refreshed_at__lte=when).order_by("-version").first()
        if then is not None and (then.size == 0 or Membership.objects.filter(
                segment=segment, version=then.version).exists()):
            return then.version, then.refreshed_at, True
    return segment.current_version, segment.refreshed_at, False


# ------------------------------------------------------------------------ registry


def field_registry(*, with_values: bool = False) -> Registry:
    """Every field a rule may test, typed, as the database knows it now.

    `with_values` adds the picker values (countries, few-valued attributes, event kinds),
    which cost a scan each on a small base and a sample on a large one; validation does
    not need them.
    """
    fields: list[FieldSpec] = []
    within = _suggestion_sample() if with_values else None
    for spec in CUSTOMER_FIELDS:
        values = _distinct_column(spec.key, within) if with_values and spec.picker else ()
        fields.append(replace(spec, values=values) if values else spec)
    for name, kind in AttributeDefinition.objects.order_by("name").values_list("name", "type"):
        spec = attribute_field(name, kind)
        if with_values:
            values = ((False, True) if spec.type == "boolean"
                      else _distinct_attribute(name, spec.type, within) if spec.type in ("text", "integer") else ())
            spec = replace(spec, values=values)
        fields.append(spec)
    event_kinds = _event_kinds() if with_values else ()
    fields += [replace(spec, values=event_kinds) if "kind" in spec.args and event_kinds else spec
               for spec in FEATURE_FIELDS]
    scored = tuple(SegmentModel.objects.filter(scored_at__isnull=False).order_by("name")
                   .values_list("name", flat=True).distinct())
    fields += [replace(spec, args={**spec.args, "model": replace(spec.args["model"], choices=scored)})
               for spec in MODEL_FIELDS]
    segments = list(Segment.objects.order_by("name").values_list("id", "name", "kind", "rule"))
    fields.append(replace(MEMBERSHIP_FIELD, values=tuple(sid for sid, *_ in segments) if with_values else ()))
    return Registry(
        fields={f.name: f for f in fields},
        segments={sid: rule_segment_refs(rule) if kind == Segment.Kind.RULE else frozenset()
                  for sid, _, kind, rule in segments},
        segment_names={sid: name for sid, name, *_ in segments},
    )


def field_registry_describe() -> dict[str, Any]:
    """The registry for the rule builder: fields, operators, limits, models and segments."""
    registry = field_registry(with_values=True)
    fields = []
    for spec in registry.fields.values():
        described = spec.describe()
        if spec.source == "segment":
            described.pop("values", None)
        fields.append(described)
    models = []
    latest: dict[str, SegmentModel] = {}
    for model in SegmentModel.objects.filter(scored_at__isnull=False).defer("pipeline").order_by("name", "version"):
        latest[model.name] = model
    for model in latest.values():
        models.append({"name": model.name, "kind": model.kind, "version": model.version, "id": model.id,
                       "labels": _model_labels(model)})
    return {
        "fields": fields,
        "operators": OPERATOR_HELP,
        "types": {kind: list(ops) for kind, ops in OPS_BY_TYPE.items()},
        "limits": {"depth": rules.MAX_DEPTH, "conditions": rules.MAX_CONDITIONS, "list": rules.MAX_LIST,
                   "text": rules.MAX_TEXT},
        "models": models,
        "segments": [{"id": sid, "name": name} for sid, name in sorted(registry.segment_names.items())],
    }


def _model_labels(model: SegmentModel) -> list[str]:
    if model.kind == SegmentModel.Kind.KMEANS:
        return [str(c["label"]) for c in model.info.get("clusters", [])]
    if model.kind == SegmentModel.Kind.RFM:
        return list(model.info.get("metrics", {}).get("tier_counts", {}))
    return []


def _suggestion_sample() -> Q | None:
    """Which customers the picker's values are read from: everyone on a small base; on a
    large one random id blocks like the preview's (~SUGGEST_SAMPLE customers, the order of
    rows ANALYZE reads for pg_stats). Reading every customer's country, time zone and each
    attribute took 1 s at 1M customers on a quiet machine and 5 s on a busy one, on every
    builder page and every field change. pg_stats would be free for the columns but knows
    nothing inside the attributes JSON; one sample serves both. A value that few customers
    hold may be missing from the list: it lists suggestions, and any value can be typed."""
    if _approximate_customers() <= PREVIEW_EXACT_MAX:
        return None
    blocks, _ = _sample_blocks(SUGGEST_SAMPLE)
    return _blocks_q(blocks)


def _distinct_column(column: str, within: Q | None = None) -> tuple:
    customers = Customer.objects.filter(within) if within is not None else Customer.objects.all()
    values = list(customers.exclude(**{column: ""}).order_by().values_list(column, flat=True)
                  .distinct()[: PICKER_MAX_VALUES + 1])
    return tuple(sorted(values)) if len(values) <= PICKER_MAX_VALUES else ()


def _distinct_attribute(name: str, kind: str, within: Q | None = None) -> tuple:
    # Known values "where few": more than the picker shows means free text, no list.
    customers = Customer.objects.filter(within) if within is not None else Customer.objects.all()
    values = list(customers.annotate(_v=KeyTextTransform(name, "attributes")).filter(_v__isnull=False)
                  .order_by().values_list("_v", flat=True).distinct()[: PICKER_MAX_VALUES + 1])
    if len(values) > PICKER_MAX_VALUES:
        return ()
    if kind == "integer":
        values = [int(v) for v in values if str(v).lstrip("-").isdigit()]
    return tuple(sorted(values))


def _event_kinds() -> tuple[str, ...]:
    table = Event._meta.db_table
    if is_postgres():
        # A loose index scan over (kind, occurred_at): one probe per kind, not a scan of
        # every event.
        sql = f"""
            WITH RECURSIVE k AS (
                (SELECT kind FROM {table} ORDER BY kind LIMIT 1)
                UNION ALL
                SELECT (SELECT e.kind FROM {table} e WHERE e.kind > k.kind ORDER BY e.kind LIMIT 1)
                FROM k WHERE k.kind IS NOT NULL
            )
            SELECT kind FROM k WHERE kind IS NOT NULL LIMIT %s"""
    else:
        sql = f"SELECT DISTINCT kind FROM {table} ORDER BY kind LIMIT %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [PICKER_MAX_VALUES])
        return tuple(row[0] for row in cursor.fetchall())


# ------------------------------------------------------------------------- preview


def segment_preview(rule: Any, *, sample: int = 20, now: datetime | None = None,
                    exact_max: int | None = None, segment_id: int | None = None) -> dict[str, Any]:
    """How many customers a rule selects, and a few of them, without saving anything.

    Exact on a small base (up to `exact_max`, PREVIEW_EXACT_MAX, customers), and on a large one when PostgreSQL's
    planner expects the count to read no more than a count of `exact_max` customers would
    (an indexed rule: external ids, one email); otherwise estimated from ~PREVIEW_SAMPLE
    customers in random id blocks, with a 95% margin. Counting a million customers exactly
    took 0.3 s on a quiet machine and 1.7 s on a busy one, on every keystroke of the
    builder. `estimated` says the count is an estimate, `total_estimated` the total.
    Raises rules.RuleInvalid for a bad rule.
    """
    started = time.perf_counter()
    exact_max = PREVIEW_EXACT_MAX if exact_max is None else exact_max
    node = rules.rule_validate(rule, field_registry(), self_id=segment_id)
    q = rule_q(node, now=now or timezone.now(), models=ModelResolver())
    heavy = any(c.field.source == "feature" for c in rules.rule_conditions(node))
    with transaction.atomic():
        if is_postgres():
            # Correlated subplans inflate the cost estimate past PostgreSQL's JIT threshold;
            # compiling the query then costs more than running it on a preview's sample.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        approximate = _approximate_customers()
        matched = Customer.objects.filter(q)
        if approximate <= exact_max:
            total = Customer.objects.count()
            result: dict[str, Any] = {"total": total, "count": matched.count(), "estimated": False, "margin": 0,
                                      "sampled": total, "total_estimated": False}
            members = _sample_members(matched, sample)
        elif _count_is_cheap(matched, heavy, exact_max, approximate):
            blocks, span = _sample_blocks()
            total = _total_from_blocks(blocks, span)
            result = {"total": total, "count": matched.count(), "estimated": False, "margin": 0, "sampled": total,
                      "total_estimated": True}
            members = _sample_members(matched, sample)
        else:
            blocks, span = _sample_blocks()
            in_blocks = _blocks_q(blocks)
            counts = Customer.objects.filter(in_blocks).aggregate(n=Count("pk"), hits=Count("pk", filter=q))
            n, hits = counts["n"] or 0, counts["hits"] or 0
            # The base is as dense in ids as the sampled blocks: no full count needed.
            total = round(n * span / (len(blocks) * PREVIEW_BLOCK)) if blocks else 0
            share = hits / n if n else 0.0
            low, high = _wilson(hits, n)
            # Wilson's interval, not the normal one: a rule no sampled customer matches is
            # "0 +- 77" at 1M, not "0 +- 0". Blocks of consecutive ids make it a little
            # optimistic when ids correlate with behaviour, which many small blocks limit.
            margin = max(share - low, high - share) * total if n else float(total)
            result = {"total": total, "count": round(share * total), "estimated": True, "margin": round(margin),
                      "sampled": n, "total_estimated": True}
            members = _sample_members(Customer.objects.filter(in_blocks).filter(q), sample)
    result["sample"] = members
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def _wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if not n:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _count_is_cheap(matched: QuerySet[Customer], heavy: bool, exact_max: int, approximate: int) -> bool:
    """Whether counting `matched` exactly reads no more than counting `exact_max` customers:
    PostgreSQL's planner says, from the cost of the count against the cost of reading the
    whole table (one EXPLAIN each, a millisecond). Elsewhere: unless it reads history."""
    if not is_postgres():
        return not heavy
    table = Customer._meta.db_table
    sql, params = matched.values("pk").query.sql_with_params()
    whole = _plan_cost(f"SELECT 1 FROM {table}", [])
    cost = _plan_cost(f"SELECT COUNT(*) FROM ({sql}) q", list(params))
    return cost <= whole * exact_max / max(approximate, 1)


def _plan_cost(sql: str, params: list) -> float:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Total Cost"])


def _blocks_q(blocks: list[tuple[int, int]], field: str = "pk") -> Q:
    in_blocks = Q()
    for low, high in blocks:
        in_blocks |= Q(**{f"{field}__gte": low, f"{field}__lt": high})
    return in_blocks


def customer_sample_q(size: int = PREVIEW_SAMPLE, *, field: str = "pk") -> Q:
    """Customers in random blocks of consecutive ids, about `size` in all (a fixed seed: the
    same blocks on every call), for estimates over a large base; `field` names the customer
    id in the filtered model ("customer_id" for memberships)."""
    blocks, _ = _sample_blocks(size)
    return _blocks_q(blocks, field)


def _total_from_blocks(blocks: list[tuple[int, int]], span: int) -> int:
    """The customers there are, from how densely the sampled id blocks are filled."""
    if not blocks:
        return 0
    n = Customer.objects.filter(_blocks_q(blocks)).count()
    return round(n * span / (len(blocks) * PREVIEW_BLOCK))


def _approximate_customers() -> int:
    """The planner's row count on PostgreSQL (free); an exact count elsewhere."""
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Customer._meta.db_table])
            row = cursor.fetchone()
        if row and row[0] is not None and row[0] >= 0:
            return int(row[0])
    return Customer.objects.count()


def _sample_blocks(size: int | None = None) -> tuple[list[tuple[int, int]], int]:
    """Random blocks of consecutive ids, about `size` (PREVIEW_SAMPLE) ids in all, and the
    span of ids they were drawn from."""
    low, high = _id_bounds()
    span = high - low + 1
    slots = max(1, span // PREVIEW_BLOCK)
    wanted = min(slots, max(1, math.ceil((size or PREVIEW_SAMPLE) / PREVIEW_BLOCK)))
    # A fixed seed: the same rule previews to the same estimate while a marketer edits.
    chosen = sorted(random.Random(0).sample(range(slots), wanted))
    return [(low + s * PREVIEW_BLOCK, low + (s + 1) * PREVIEW_BLOCK) for s in chosen], span


def _id_bounds() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(id), MAX(id) FROM {Customer._meta.db_table}")
        low, high = cursor.fetchone()
    return (low or 0, high or 0)


def _sample_members(customers: QuerySet[Customer], limit: int) -> list[dict[str, Any]]:
    return list(customers.order_by("pk").values("id", "external_id", "email", "name", "country")[:limit])


# ----------------------------------------------------------------- history, reads


def segment_history(segment: Segment) -> QuerySet[SegmentRefresh]:
    return segment.refreshes.order_by("-version")


def segment_list() -> QuerySet[Segment]:
    return Segment.objects.select_related("model").order_by("name")


def model_rank_cut(model_id: int, fraction: float) -> RankCut:
    """Where the top `fraction` of a model's scores ends, and how many customers tie there:
    three indexed reads (modelscore_unique leads with the model), no scores in memory."""
    scores = ModelScore.objects.filter(model_id=model_id)
    total = scores.count()
    size = math.ceil(fraction * total)
    if not size:
        return RankCut(total, 0, None, 0, 0)
    cut = scores.order_by("-score").values_list("score", flat=True)[size - 1]
    above = scores.filter(score__gt=cut).count()
    tied = scores.filter(score=cut).count()
    return RankCut(total, size, cut, above, tied)
