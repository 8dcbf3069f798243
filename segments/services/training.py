"""Model-derived segments: train (segments.ml) on features from the database, then score
(services.scoring) and keep the model's family of segments in step (services.families)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ..frames import (active_between, attribute_types, feature_columns, feature_frame, needs_attributes, spend_between,
                      training_frame)
from ..ml.common import FREQUENCY, KINDS, MONETARY, RECENCY
from ..ml.guard import model_concerns
from ..ml.kmeans import kmeans_train
from ..ml.propensity import propensity_train
from ..ml.rfm import rfm_train
from ..ml.scoring import model_dump
from ..ml.value import value_train
from ..models import SegmentModel
from .families import family_refresh, model_segments_sync, model_versions_prune
from .scoring import model_score, model_score_start

# Training reads every customer's features into memory; past this many rows a random
# sample trains as well and keeps a re-train to seconds. Scoring always covers everyone.
MAX_TRAINING_ROWS = 250_000
DEFAULT_CHURN_DAYS = 90
KMEANS_FEATURES = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days")
RFM_FEATURES = (RECENCY, FREQUENCY, MONETARY)
_ATTRIBUTE_FEATURE_TYPES = {"boolean", "integer", "number", "text"}


class TrainingError(ValueError):
    """The model cannot be trained as asked (unknown target, too few outcomes...)."""


def _default_features(kind: str, frame: pd.DataFrame, exclude: Sequence[str]) -> list[str]:
    if kind == "kmeans":
        return [c for c in KMEANS_FEATURES if c in frame.columns]
    if kind == "rfm":
        return list(RFM_FEATURES)
    types = attribute_types()
    behaviour = [c for c in frame.columns if c in feature_columns() and c not in exclude]
    attrs = [c for c, t in sorted(types.items()) if t in _ATTRIBUTE_FEATURE_TYPES and c in frame.columns
             and c not in exclude]
    return behaviour + attrs


def _sample(frame: pd.DataFrame, max_rows: int | None, random_state: int) -> pd.DataFrame:
    if max_rows and len(frame) > max_rows:
        return frame.sample(n=max_rows, random_state=random_state).sort_index()
    return frame


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
    if kind not in KINDS:
        raise TrainingError(f"unknown model kind {kind!r}; one of {', '.join(KINDS)}")
    started = time.perf_counter()
    now = now or timezone.now()
    params: dict[str, Any] = {"random_state": random_state, "max_rows": max_rows}
    types = attribute_types()
    y: pd.Series | None = None
    exclude: list[str] = []
    score_as_of: datetime | None = as_of
    if kind in ("kmeans", "rfm"):
        if target or churn_days:
            raise TrainingError(f"a {kind} model takes no target or churn days")
        train_as_of = as_of or now
        frame, whole = training_frame(train_as_of, max_rows, random_state,
                                      attributes=needs_attributes(features or ()))
    elif target:
        expected = ("boolean",) if kind == "propensity" else ("integer", "number")
        if types.get(target) not in expected:
            raise TrainingError(f"target must be a {' or '.join(expected)} attribute; "
                                f"{target!r} is {types.get(target, 'not an attribute')}")
        train_as_of = as_of or now
        # Every customer: an attribute that few customers have must not be missed by a draw.
        frame, whole = feature_frame(train_as_of), True
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
        frame, whole = training_frame(train_as_of, max_rows, random_state)
        # Only customers who were customers at the cutoff can churn or spend after it.
        frame = frame[frame["tenure_days"] >= 0]
        if kind == "propensity":
            active = active_between(train_as_of, as_of or now)
            y = pd.Series(~frame.index.isin(active), index=frame.index)
            params.update(target="churn", churn_days=days, worse="higher")
        else:
            spend = spend_between(train_as_of, as_of or now)
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
    full = frame if whole else None  # what scoring here may reuse: only every customer's
    frame = _sample(frame, max_rows, random_state)  # exactly max_rows of a larger draw
    if len(frame) < 5:
        raise TrainingError(f"only {len(frame)} customers to train on")
    try:
        if kind == "kmeans":
            ks = list(k_range) if k_range else list(range(2, 9))
            params["k_range"] = ks
            model, info = kmeans_train(frame, features, k_range=ks, random_state=random_state)
        elif kind == "rfm":
            model, info = rfm_train(frame)
        elif kind == "propensity":
            model, info = propensity_train(frame, y, features, random_state=random_state)
        else:
            model, info = value_train(frame, y, features, random_state=random_state)
    except ValueError as exc:
        raise TrainingError(str(exc)) from exc

    name = name or _default_name(kind, params)
    # A model with no signal or a likely leak is stored and scored, so its page can show
    # why, but makes no segments until someone overrides that (model_segments_release).
    concerns = [c.as_dict() for c in model_concerns(kind, info["metrics"], info)]
    if concerns:
        info["concerns"] = concerns
        info["segments_held"] = bool(segments)
        segments = False
    with transaction.atomic():
        # Lock the name's versions so two trainings of one name cannot both take version n.
        list(SegmentModel.objects.select_for_update().filter(name=name).values_list("id", flat=True))
        version = (SegmentModel.objects.filter(name=name).aggregate(v=Max("version"))["v"] or 0) + 1
        record = SegmentModel.objects.create(
            name=name, kind=kind, version=version, params={**info.get("params", {}), **params},
            features=info["features"], training_rows=info["training_rows"],
            seconds=round(time.perf_counter() - started, 3), metrics=info["metrics"],
            info={k: v for k, v in info.items() if k not in ("params", "features", "metrics")},
            pipeline=model_dump(model),
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
