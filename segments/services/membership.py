"""Segments and their memberships: create, refresh (materialise a new version), prune."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.db import statistics_refresh
from customers.models import Customer

from .. import rules
from ..compile import ModelResolver, rule_q
from ..dependencies import rule_segment_refs, segment_order
from ..models import Entrant, Membership, ModelScore, Segment, SegmentRefresh, SegmentRevision
from ..selectors import field_registry, model_rank_cut
from .schedules import segment_schedule_clear, segment_schedule_set
from .specs import SPEC_KEYS, SpecInvalid, segment_spec_clean
from .transitions import family_moves_store

logger = logging.getLogger(__name__)

# Versions of a segment's membership kept after a refresh: the current one and the
# previous ones that the migration view and readers holding an older version still need.
KEEP_VERSIONS = max(2, int(getattr(settings, "SEGMENT_KEEP_VERSIONS", 3)))


# ---------------------------------------------------------------------------- create


@transaction.atomic
def segment_create(spec: Any, *, user=None) -> Segment:
    """A new segment from the REST payload; its first refresh is the caller's choice.

    A top share of a scored model that would end inside a tie is refused in words unless
    the payload says to take all tied ("ties": "include"): ordering equal scores by id
    would silently pick customers 1 to N."""
    clean = segment_spec_clean(spec)
    _top_share_check(clean)
    schedule = clean.pop("schedule", None)
    segment = Segment.objects.create(created_by=user if user and user.is_authenticated else None, **clean)
    if schedule is not None:
        segment_schedule_set(segment, schedule)
    _revision_write(segment, user)
    return segment


def _revision_write(segment: Segment, user) -> SegmentRevision:
    """Keep the definition just saved as the segment's next revision."""
    last = segment.revisions.order_by("-revision").values_list("revision", flat=True).first() or 0
    return SegmentRevision.objects.create(
        segment=segment, revision=last + 1, name=segment.name, description=segment.description, rule=segment.rule,
        params={k: v for k, v in segment.params.items() if k != "edges"},
        changed_by=user if user is not None and getattr(user, "is_authenticated", False) else None,
    )


@transaction.atomic
def segment_duplicate(segment: Segment, *, user=None) -> Segment:
    """A copy of a segment's definition under a free name ("Copy of X", "Copy 2 of X"...),
    not in any family, with no members until it is refreshed."""
    base = f"Copy of {segment.name}"[:200]
    name, n = base, 1
    while Segment.objects.filter(name=name).exists():
        n += 1
        name = f"Copy {n} of {segment.name}"[:200]
    spec = _current_spec(segment)
    spec.update(name=name, family="")
    spec.pop("rank", None)
    return segment_create(spec, user=user)


def _top_share_check(clean: dict[str, Any]) -> None:
    params, model = clean.get("params") or {}, clean.get("model")
    if model is None or "top_fraction" not in params or params.get("after_fraction") or params.get("ties") == "include":
        return
    cut = model_rank_cut(model.pk, params["top_fraction"])
    if cut.splits_a_tie:
        what = "predicted uplift" if model.kind == "uplift" else "score"
        raise SpecInvalid([{"path": "ties", "message": cut.words(params["top_fraction"], what)}])


def _current_spec(segment: Segment) -> dict[str, Any]:
    """The segment's definition in the payload's terms, so an update can be partial."""
    spec: dict[str, Any] = {"name": segment.name, "description": segment.description, "kind": segment.kind,
                            "family": segment.family}
    if segment.kind == Segment.Kind.RULE:
        spec["rule"] = segment.rule
    else:
        spec["model"] = segment.model_id
    spec.update({k: v for k, v in segment.params.items() if k in SPEC_KEYS})
    return spec


_BAND_KEYS = ("label", "threshold", "below", "top_fraction", "after_fraction")


@transaction.atomic
def segment_update(segment: Segment, changes: Any, *, user=None) -> Segment:
    """Change part of a segment's definition; its members change at the next refresh.
    The new definition is kept as the next revision beside the earlier ones."""
    if not isinstance(changes, dict):
        raise SpecInvalid([{"path": "spec", "message": "expected a JSON object"}])
    locked = Segment.objects.select_for_update().get(pk=segment.pk)
    if not locked.revisions.exists():  # made before revisions were kept: keep what it was
        _revision_write(locked, None)
    spec = _current_spec(locked)
    if any(k in changes for k in _BAND_KEYS):
        for key in _BAND_KEYS:  # a new band replaces the old one whole
            spec.pop(key, None)
    spec.update(changes)
    clean = segment_spec_clean(spec, segment=locked)
    schedule = clean.pop("schedule", None)
    edges = {k: v for k, v in locked.params.items() if k == "edges"}
    for key, value in clean.items():
        setattr(locked, key, {**edges, **value} if key == "params" else value)
    locked.save()
    if schedule is not None:
        segment_schedule_set(locked, schedule)
    _revision_write(locked, user)
    return locked


# --------------------------------------------------------------------------- refresh


def segment_refresh(segment: Segment | int, *, now: datetime | None = None,
                    unless_refreshed_within: timedelta | None = None) -> list[SegmentRefresh]:
    """Materialise a new version of the segment (and of its whole family) and switch to it.

    Everything happens in one transaction: the new memberships are written with
    INSERT ... SELECT, then `current_version` moves, so a reader sees the old version or
    the new one, never a half-written one. The segment rows are locked first
    (select_for_update), so two refreshes of one segment run one after the other instead
    of writing the same version. Old versions are pruned after the commit.

    `unless_refreshed_within`: skip (return []) when the segment was refreshed that recently.
    Checked under the lock, so of two scheduled runs of one tick (two beats) the second
    waits for the first, then sees its refresh and does nothing.
    """
    segment_id = segment.pk if isinstance(segment, Segment) else int(segment)
    now = now or timezone.now()
    with transaction.atomic():
        first = Segment.objects.select_for_update().get(pk=segment_id)
        if unless_refreshed_within and first.refreshed_at and first.refreshed_at > now - unless_refreshed_within:
            return []
        if first.family:
            # Lock every family member in id order: two family refreshes cannot deadlock.
            locked = list(Segment.objects.select_for_update().filter(family=first.family).order_by("id"))
        else:
            locked = [first]
        # Members of one family share a version number: "refresh 7 of the RFM tiers" is
        # then one version across the family, which is what the migration view compares.
        version = max(s.current_version for s in locked) + 1
        resolver = ModelResolver()
        refreshes = [_materialise(s, version, now, resolver) for s in locked]
        if first.family and version > 1:
            # Counted here, once, so the migration page reads a row instead of a join.
            family_moves_store(first.family, version - 1, version)
    segment_versions_prune([s.pk for s in locked], keep=KEEP_VERSIONS)
    # A member list, a launch, a rule reading this segment: planned next, on these rows
    # (the first page of a new 250,000-member segment read 1.0 s before, 13 ms after).
    statistics_refresh([Membership, Entrant], sum(r.size for r in refreshes))
    return refreshes


def segment_refresh_all(*, now: datetime | None = None) -> list[SegmentRefresh]:
    """Refresh every segment, each after the segments its rule reads (membership rules)."""
    now = now or timezone.now()
    registry = field_registry()
    done: set[int] = set()
    refreshes: list[SegmentRefresh] = []
    for segment_id in segment_order(registry.segments):
        if segment_id in done:
            continue
        try:
            batch = segment_refresh(segment_id, now=now)
        except Segment.DoesNotExist:
            continue
        done.update(r.segment_id for r in batch)
        refreshes += batch
    return refreshes


def segment_members_sql(segment: Segment, *, now: datetime, resolver: ModelResolver | None = None) -> tuple[str, list, dict]:
    """SQL selecting the ids of the segment's members now, with its parameters, and any
    facts about the result worth keeping (score edges of a band)."""
    extra: dict[str, Any] = {}
    if segment.kind == Segment.Kind.RULE:
        node = rules.rule_validate(segment.rule, field_registry(), self_id=segment.pk)
        query = Customer.objects.filter(rule_q(node, now=now, models=resolver or ModelResolver())).values("id")
    else:
        query, extra = _model_members(segment)
    sql, params = query.query.sql_with_params()
    return sql, list(params), extra


def _model_members(segment: Segment) -> tuple[QuerySet, dict]:
    params = segment.params
    scores = ModelScore.objects.filter(model_id=segment.model_id)
    if "label" in params:
        return scores.filter(label=params["label"]).values("customer_id"), {}
    if "top_fraction" in params:
        # Score descending, ties to the lower id: the same customers on every refresh.
        # segment_create refuses a top share ending inside a tie unless told to take all
        # tied; only family bands (fixed shares of a model's own scores) rank within one.
        scored = scores.count()
        start = math.ceil(params.get("after_fraction", 0) * scored)
        end = math.ceil(params["top_fraction"] * scored)
        ranked = scores.order_by("-score", "customer_id")
        if params.get("ties") == "include" and 0 < end <= scored and not start:
            cut = ranked.values_list("score", flat=True)[end - 1]
            return scores.filter(score__gte=cut).values("customer_id"), {"edges": [cut, None]}
        high = ranked.values_list("score", flat=True)[start - 1] if 0 < start <= scored else None
        low = ranked.values_list("score", flat=True)[end] if end < scored else None
        return ranked.values("customer_id")[start:end], {"edges": [low, high]}
    band = scores
    if "threshold" in params:
        band = band.filter(score__gte=params["threshold"])
    if "below" in params:
        band = band.filter(score__lt=params["below"])
    return band.values("customer_id"), {"edges": [params.get("threshold"), params.get("below")]}


def _materialise(segment: Segment, version: int, now: datetime, resolver: ModelResolver) -> SegmentRefresh:
    started = time.perf_counter()
    select_sql, params, extra = segment_members_sql(segment, now=now, resolver=resolver)
    table = Membership._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (segment_id, version, customer_id) SELECT %s, %s, q.id FROM ({select_sql}) q"
            if segment.kind == Segment.Kind.RULE else
            f"INSERT INTO {table} (segment_id, version, customer_id) SELECT %s, %s, q.customer_id FROM ({select_sql}) q",
            [segment.pk, version, *params],
        )
        size = cursor.rowcount
    old_version, old_size = segment.current_version, segment.size
    if old_version:
        # The entered list, kept (Entrant), and counted: the new version's members EXCEPT the
        # old version's. A set difference is linear whatever the planner's statistics say; a
        # semi join on rows this transaction has just written (statistics: "a few rows") could
        # be planned as a nested loop that rescans the old version for every member.
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Entrant._meta.db_table} (segment_id, version, customer_id) "
                f"SELECT %s, %s, d.customer_id FROM ("
                f"SELECT customer_id FROM {table} WHERE segment_id = %s AND version = %s "
                f"EXCEPT SELECT customer_id FROM {table} WHERE segment_id = %s AND version = %s) d",
                [segment.pk, version, segment.pk, version, segment.pk, old_version],
            )
            entered = cursor.rowcount
    else:
        entered = size
    both = size - entered
    segment.current_version, segment.size, segment.refreshed_at = version, size, now
    if extra:
        segment.params = {**segment.params, **extra}
    segment.save(update_fields=["current_version", "size", "refreshed_at", "params"])
    return SegmentRefresh.objects.create(
        segment=segment, version=version, size=size, entered=entered, left=old_size - both,
        seconds=round(time.perf_counter() - started, 3),
    )


def segment_versions_prune(segment_ids: Iterable[int], *, keep: int = KEEP_VERSIONS) -> int:
    """Delete memberships older than the last `keep` versions of each segment."""
    deleted = 0
    for segment in Segment.objects.filter(pk__in=list(segment_ids)).only("id", "current_version"):
        cutoff = segment.current_version - keep
        if cutoff > 0:
            with transaction.atomic():
                deleted += Membership.objects.filter(segment_id=segment.pk, version__lte=cutoff).delete()[0]
                Entrant.objects.filter(segment_id=segment.pk, version__lte=cutoff).delete()
    return deleted


@transaction.atomic
def segment_delete(segment: Segment) -> None:
    """Delete a segment, its memberships, history and schedule.

    Refused (SpecInvalid) while another segment's rule reads its membership: that rule
    would stop validating at its next refresh.
    """
    users = [s.name for s in Segment.objects.filter(kind=Segment.Kind.RULE).exclude(pk=segment.pk)
             if segment.pk in rule_segment_refs(s.rule)]
    if users:
        raise SpecInvalid([{"path": "segment", "message": f"used by the rule of {', '.join(sorted(users))}"}])
    segment_schedule_clear(segment)
    segment.delete()
