"""Model-derived segments: train (segments.ml) on features from the database, score every
customer in chunks, and keep each model's family of segments in step."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from itertools import repeat
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction
from django.db.models import Max, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from customers.features import customer_attributes, customer_features, customer_id_ranges
from customers.models import AttributeDefinition, Event, Order
from core.bulk import bulk_copy

from .. import ml
from ..models import ModelScore, Segment, SegmentModel
from .membership import segment_refresh

logger = logging.getLogger(__name__)

SCORE_CHUNK = 50_000
# Training reads every customer's features into memory; past this many rows a random
# sample trains as well and keeps a re-train to seconds. Scoring always covers everyone.
MAX_TRAINING_ROWS = 250_000
DEFAULT_CHURN_DAYS = 90
KEEP_MODEL_VERSIONS = 2  # the current one and the one before, for "score got worse" lists
KMEANS_FEATURES = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days")
RFM_FEATURES = (ml.RECENCY, ml.FREQUENCY, ml.MONETARY)
# Score bands created for propensity and value models: (name, after_fraction, top_fraction).
BANDS = {
    "risk": (("high risk (top 10%)", 0.0, 0.1), ("medium risk (next 20%)", 0.1, 0.3), ("low risk (the rest)", 0.3, 1.0)),
    "rank": (("top 10%", 0.0, 0.1), ("next 20%", 0.1, 0.3), ("the rest", 0.3, 1.0)),
}
_ATTRIBUTE_FEATURE_TYPES = {"boolean", "integer", "number", "text"}


class TrainingError(ValueError):
    """The model cannot be trained as asked (unknown target, too few outcomes...)."""


# ------------------------------------------------------------------------- frames


def _attribute_types() -> dict[str, str]:
    return dict(AttributeDefinition.objects.values_list("name", "type"))


def _frame(as_of: datetime, id_range: tuple[int, int] | None = None, *, attributes: bool = True) -> pd.DataFrame:
    """Features as of `as_of` and (optionally) the custom attributes, one row per customer."""
    frame = customer_features(as_of, id_range=id_range)
    if attributes:
        attrs = customer_attributes(id_range=id_range)
        # An attribute named like a feature keeps the feature's name free.
        attrs.columns = [f"attribute_{c}" if c in frame.columns else c for c in attrs.columns]
        frame = frame.join(attrs, how="left")
    return frame


def _default_features(kind: str, frame: pd.DataFrame, exclude: Sequence[str]) -> list[str]:
    if kind == "kmeans":
        return [c for c in KMEANS_FEATURES if c in frame.columns]
    if kind == "rfm":
        return list(RFM_FEATURES)
    types = _attribute_types()
    behaviour = [c for c in frame.columns if c in _feature_columns() and c not in exclude]
    attrs = [c for c, t in sorted(types.items()) if t in _ATTRIBUTE_FEATURE_TYPES and c in frame.columns
             and c not in exclude]
    return behaviour + attrs


def _feature_columns() -> frozenset[str]:
    """The columns customers.features computes (asked of an empty id range: no scan)."""
    global _FEATURE_COLUMNS
    if _FEATURE_COLUMNS is None:
        _FEATURE_COLUMNS = frozenset(customer_features(timezone.now(), id_range=(0, 0)).columns)
    return _FEATURE_COLUMNS


_FEATURE_COLUMNS: frozenset[str] | None = None


def _needs_attributes(features: Sequence[str]) -> bool:
    return any(f not in _feature_columns() for f in features)


def _active_between(start: datetime, end: datetime) -> np.ndarray:
    """Ids of customers with an order or an event in [start, end)."""
    orders = Order.objects.filter(ordered_at__gte=start, ordered_at__lt=end).values("customer_id")
    events = Event.objects.filter(occurred_at__gte=start, occurred_at__lt=end).values("customer_id")
    ids = orders.union(events).values_list("customer_id", flat=True)
    return np.fromiter(ids, dtype=np.int64)


def _spend_between(start: datetime, end: datetime) -> pd.Series:
    rows = (Order.objects.filter(ordered_at__gte=start, ordered_at__lt=end).values("customer_id")
            .annotate(total=Sum("amount")).values_list("customer_id", "total"))
    data = dict(rows)
    return pd.Series({k: float(v) for k, v in data.items()}, dtype="float64")


def _sample(frame: pd.DataFrame, max_rows: int | None, random_state: int) -> pd.DataFrame:
    if max_rows and len(frame) > max_rows:
        return frame.sample(n=max_rows, random_state=random_state).sort_index()
    return frame


# ------------------------------------------------------------------------ training


def model_train(
    kind: str,
    *,
    name: str | None = None,
    features: Sequence[str] | None = None,
    target: str | None = None,
    churn_days: int | None = None,
    k_range: Sequence[int] | None = None,
    as_of: datetime | None = None,
    now: datetime | None = None,
    random_state: int = 0,
    max_rows: int | None = MAX_TRAINING_ROWS,
    score: bool = True,
    segments: bool = True,
    split_scoring: bool = False,
) -> SegmentModel:
    """Train and store a new version of a model, then (by default) score every customer
    and materialise its family of segments.

    kmeans / rfm: features as of `as_of` (default now). propensity: `target` names a
    boolean attribute (features as of now), or without one it predicts churn: features as
    of the cutoff now - churn_days, label = no order and no event from the cutoff to now,
    among customers who existed at the cutoff, so nothing after the cutoff leaks in.
    value: spend in the churn_days after the cutoff (or a numeric attribute `target`).
    `split_scoring` queues one Celery task per id range instead of scoring here; the last
    one to finish materialises the segments.
    """
    if kind not in ml.KINDS:
        raise TrainingError(f"unknown model kind {kind!r}; one of {', '.join(ml.KINDS)}")
    started = time.perf_counter()
    now = now or timezone.now()
    params: dict[str, Any] = {"random_state": random_state, "max_rows": max_rows}
    types = _attribute_types()
    y: pd.Series | None = None
    exclude: list[str] = []
    score_as_of: datetime | None = as_of
    if kind in ("kmeans", "rfm"):
        if target or churn_days:
            raise TrainingError(f"a {kind} model takes no target or churn days")
        train_as_of = as_of or now
        frame = _frame(train_as_of, attributes=_needs_attributes(features or ()))
    elif target:
        expected = ("boolean",) if kind == "propensity" else ("integer", "number")
        if types.get(target) not in expected:
            raise TrainingError(f"target must be a {' or '.join(expected)} attribute; "
                                f"{target!r} is {types.get(target, 'not an attribute')}")
        train_as_of = as_of or now
        frame = _frame(train_as_of)
        if target not in frame.columns:
            raise TrainingError(f"no customer has the attribute {target!r} yet")
        y = frame[target]
        if kind == "propensity":
            y = y.map(lambda v: v if isinstance(v, (bool, np.bool_)) else np.nan)
        exclude = [target]
        params["target"] = target
    else:
        days = int(churn_days or DEFAULT_CHURN_DAYS)
        if days < 1:
            raise TrainingError("churn days must be at least 1")
        train_as_of = (as_of or now) - timedelta(days=days)
        frame = _frame(train_as_of)
        # Only customers who were customers at the cutoff can churn or spend after it.
        frame = frame[frame["tenure_days"] >= 0]
        if kind == "propensity":
            active = _active_between(train_as_of, as_of or now)
            y = pd.Series(~frame.index.isin(active), index=frame.index)
            params.update(target="churn", churn_days=days, worse="higher")
        else:
            spend = _spend_between(train_as_of, as_of or now)
            y = spend.reindex(frame.index).fillna(0.0)
            params.update(target="spend", horizon_days=days)
        params["cutoff"] = train_as_of.isoformat()
        score_as_of = as_of  # predict the next `days` from the scoring date on
    if as_of is not None:
        params["as_of"] = as_of.isoformat()

    features = list(features) if features else _default_features(kind, frame, exclude)
    unknown = [f for f in features if f not in frame.columns]
    if unknown:
        raise TrainingError(f"unknown feature(s) {unknown}; known: {', '.join(map(str, frame.columns))}")
    if target and target in features:
        raise TrainingError(f"the target {target!r} cannot also be a feature")
    full = frame
    frame = _sample(frame, max_rows, random_state)
    if len(frame) < 5:
        raise TrainingError(f"only {len(frame)} customers to train on")
    try:
        if kind == "kmeans":
            ks = list(k_range) if k_range else list(range(2, 9))
            params["k_range"] = ks
            model, info = ml.kmeans_train(frame, features, k_range=ks, random_state=random_state)
        elif kind == "rfm":
            model, info = ml.rfm_train(frame)
        elif kind == "propensity":
            model, info = ml.propensity_train(frame, y, features, random_state=random_state)
        else:
            model, info = ml.value_train(frame, y, features, random_state=random_state)
    except ValueError as exc:
        raise TrainingError(str(exc)) from exc

    name = name or _default_name(kind, params)
    with transaction.atomic():
        # Lock the name's versions so two trainings of one name cannot both take version n.
        list(SegmentModel.objects.select_for_update().filter(name=name).values_list("id", flat=True))
        version = (SegmentModel.objects.filter(name=name).aggregate(v=Max("version"))["v"] or 0) + 1
        record = SegmentModel.objects.create(
            name=name, kind=kind, version=version, params={**info.get("params", {}), **params},
            features=info["features"], training_rows=info["training_rows"],
            seconds=round(time.perf_counter() - started, 3), metrics=info["metrics"],
            info={k: v for k, v in info.items() if k not in ("params", "features", "metrics")},
            pipeline=ml.model_dump(model),
        )
    if score and split_scoring:
        model_score_start(record, now=now, segments=segments)
    elif score:
        reuse = full if (score_as_of or now) == train_as_of else None
        model_score(record, now=now, frame=reuse, pipeline=model)
        if segments:
            model_segments_sync(record)
            family_refresh(record.name, now=now)
        model_versions_prune(record.name)
    return record


def _default_name(kind: str, params: dict) -> str:
    if kind == "propensity":
        return "churn" if params.get("target") == "churn" else f"{params['target']} propensity"
    if kind == "value":
        return "value" if params.get("target") == "spend" else f"{params['target']} value"
    return kind


def model_as_of(model: SegmentModel, now: datetime | None = None) -> datetime:
    """When a model's scores describe customers: its pinned `as_of`, else now."""
    pinned = model.params.get("as_of")
    return parse_datetime(pinned) if pinned else (now or timezone.now())


# ------------------------------------------------------------------------- scoring


def model_score_range(model: SegmentModel, id_range: tuple[int, int], *, as_of: datetime,
                      pipeline: Any = None, frame: pd.DataFrame | None = None) -> int:
    """Score the customers with ids in [low, high) and write their ModelScore rows with
    COPY. The range's earlier rows are deleted first, so running it twice is harmless."""
    low, high = id_range
    pipeline = pipeline if pipeline is not None else ml.model_load(bytes(model.pipeline))
    if frame is None:
        frame = _frame(as_of, id_range, attributes=_needs_attributes(model.features))
    else:
        frame = frame.loc[(frame.index >= low) & (frame.index < high)]
    written = 0
    with transaction.atomic():
        ModelScore.objects.filter(model=model, customer_id__gte=low, customer_id__lt=high).delete()
        for part in ml.score_chunks(pipeline, [frame], model.kind):
            # Columns prepared whole, so COPY gets ready tuples instead of a Python step
            # per row. A score that is not a number would sort first in PostgreSQL.
            scores = np.nan_to_num(part["score"].to_numpy(dtype="float64"), nan=0.0).tolist()
            labels = part["label"].where(part["label"].notna(), "").tolist()
            bulk_copy(ModelScore._meta.db_table, ["model_id", "customer_id", "score", "label"],
                      zip(repeat(model.pk), part.index.tolist(), scores, labels))
            written += len(part)
    return written


def model_score(model: SegmentModel, *, now: datetime | None = None, chunk: int = SCORE_CHUNK,
                frame: pd.DataFrame | None = None, pipeline: Any = None) -> int:
    """Score every customer in this process, chunk by chunk, so memory stays flat."""
    as_of = model_as_of(model, now)
    pipeline = pipeline if pipeline is not None else ml.model_load(bytes(model.pipeline))
    total = 0
    for id_range in customer_id_ranges(chunk):
        total += model_score_range(model, id_range, as_of=as_of, pipeline=pipeline, frame=frame)
    # Customers deleted since are gone by cascade; ones beyond the last range never existed.
    SegmentModel.objects.filter(pk=model.pk).update(scored_at=now or timezone.now(), scoring={})
    model.scored_at = now or timezone.now()
    return total


def model_score_start(model: SegmentModel, *, chunk: int = SCORE_CHUNK, now: datetime | None = None,
                      segments: bool = True) -> list[tuple[int, int]]:
    """Split scoring across Celery workers: one task per id range, enqueued on commit."""
    from ..tasks import model_score_range as score_task

    as_of = model_as_of(model, now)
    ranges = [list(r) for r in customer_id_ranges(chunk)]
    with transaction.atomic():
        SegmentModel.objects.filter(pk=model.pk).update(
            scoring={"as_of": as_of.isoformat(), "ranges": ranges, "done": [], "segments": segments}, scored_at=None)
        for low, high in ranges:
            score_task.delay_on_commit(model.pk, low, high)
    return [tuple(r) for r in ranges]


def model_score_range_run(model_id: int, low: int, high: int) -> bool:
    """A worker's share of a split scoring; the last range to finish materialises the
    family. Returns True when this call finished the whole model."""
    model = SegmentModel.objects.get(pk=model_id)
    scoring = model.scoring or {}
    if [low, high] not in scoring.get("ranges", []):
        return False  # a stale message from an earlier scoring of this model
    model_score_range(model, (low, high), as_of=parse_datetime(scoring["as_of"]))
    with transaction.atomic():
        locked = SegmentModel.objects.select_for_update().get(pk=model_id)
        progress = dict(locked.scoring or {})
        done = set(progress.get("done", [])) | {low}
        progress["done"] = sorted(done)
        finished = len(done) >= len(progress.get("ranges", [])) and locked.scored_at is None
        locked.scoring = progress
        if finished:
            locked.scored_at = timezone.now()
        locked.save(update_fields=["scoring", "scored_at"])
    if finished:
        if progress.get("segments", True):
            model_segments_sync(locked)
            family_refresh(locked.name)
        model_versions_prune(locked.name)
    return finished


# ------------------------------------------------------------------------ segments


def _band_specs(model: SegmentModel) -> list[dict[str, Any]]:
    if model.kind == "kmeans":
        return [{"label": str(c["label"]), "rank": int(c["label"]), "title": c["name"], "description": c["description"]}
                for c in model.info.get("clusters", [])]
    if model.kind == "rfm":
        return [{"label": tier, "rank": i, "title": tier, "description": f"RFM tier {tier}"}
                for i, tier in enumerate(ml.RFM_TIERS)]
    worse_higher = model.params.get("worse") == "higher"
    bands = BANDS["risk" if worse_higher else "rank"]
    out = []
    for i, (title, after, top) in enumerate(bands):
        # rank 0 is the best band: the lowest risk, or the highest value.
        rank = len(bands) - 1 - i if worse_higher else i
        spec = {"top_fraction": top, "rank": rank, "title": title, "worse": "higher" if worse_higher else "lower",
                "description": f"{title} by {model.name} score"}
        if after:
            spec["after_fraction"] = after
        out.append(spec)
    return out


@transaction.atomic
def model_segments_sync(model: SegmentModel) -> list[Segment]:
    """Point the model's family (segments named after it) at this version, creating the
    segments for clusters / tiers / bands it does not have yet."""
    family = model.name
    existing = list(Segment.objects.select_for_update().filter(family=family, model__name=model.name))
    by_key = {_segment_key(s.params): s for s in existing}
    synced = []
    for spec in _band_specs(model):
        title, description = spec.pop("title"), spec.pop("description")
        key = _segment_key(spec)
        segment = by_key.get(key)
        if segment is None:
            name = f"{model.name}: {title}"
            if Segment.objects.filter(name=name).exists():
                name = f"{name} ({model.kind} {key})"
            segment = Segment(name=name[:200], family=family, kind=model.kind)
        segment.model = model
        segment.description = description
        segment.params = {**{k: v for k, v in segment.params.items() if k == "edges"}, **spec}
        segment.save()
        synced.append(segment)
    # A cluster that no longer exists keeps its segment, now empty, pointed at this model.
    for segment in existing:
        if segment not in synced:
            segment.model = model
            segment.save(update_fields=["model"])
    return synced


def _segment_key(params: dict) -> str:
    if "label" in params:
        return f"label={params['label']}"
    return f"band={params.get('after_fraction', 0)}-{params.get('top_fraction')}"


def family_refresh(family: str, *, now: datetime | None = None) -> list:
    first = Segment.objects.filter(family=family).order_by("id").first()
    return segment_refresh(first, now=now) if first else []


def model_retrain(model_id: int, *, now: datetime | None = None) -> SegmentModel:
    """Train a new version of the model's name with the same settings, score it and
    refresh its family of segments."""
    base = SegmentModel.objects.defer("pipeline").get(pk=model_id)
    latest = SegmentModel.objects.defer("pipeline").filter(name=base.name).order_by("-version").first() or base
    p = latest.params
    target = p.get("target") if p.get("target") not in ("churn", "spend") else None
    return model_train(
        latest.kind, name=latest.name, features=latest.features if latest.kind != "rfm" else None,
        target=target, churn_days=p.get("churn_days") or p.get("horizon_days"), k_range=p.get("k_range"),
        now=now, random_state=p.get("random_state", 0), max_rows=p.get("max_rows", MAX_TRAINING_ROWS),
    )


def model_versions_prune(name: str, *, keep: int = KEEP_MODEL_VERSIONS) -> int:
    """Delete old versions of a model (and their scores) that no segment points at."""
    versions = list(SegmentModel.objects.filter(name=name).order_by("-version").values_list("id", flat=True))
    stale = SegmentModel.objects.filter(pk__in=versions[keep:], segments__isnull=True)
    deleted = 0
    for model_id in stale.values_list("id", flat=True):
        with transaction.atomic():
            ModelScore.objects.filter(model_id=model_id).delete()
            deleted += SegmentModel.objects.filter(pk=model_id).delete()[0]
    return deleted
