"""Scoring every customer with a stored model, in id-range chunks: in this process, or
split across Celery workers where the last range to finish refreshes the model's family."""

from __future__ import annotations

from datetime import datetime
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.bulk import bulk_copy
from core.jobs import enqueue
from customers.features import customer_id_ranges

from ..frames import feature_frame, needs_attributes
from ..ml.scoring import model_load, score_chunks
from ..models import ModelScore, SegmentModel
from .families import family_refresh, model_segments_sync, model_versions_prune

SCORE_CHUNK = 50_000


def model_as_of(model: SegmentModel, now: datetime | None = None) -> datetime:
    """When a model's scores describe customers: its pinned `as_of`, else now."""
    pinned = model.params.get("as_of")
    return parse_datetime(pinned) if pinned else (now or timezone.now())


def model_score_range(model: SegmentModel, id_range: tuple[int, int], *, as_of: datetime,
                      pipeline: Any = None, frame: pd.DataFrame | None = None) -> int:
    """Score the customers with ids in [low, high) and write their ModelScore rows with
    COPY. The range's earlier rows are deleted first, so running it twice is harmless."""
    low, high = id_range
    pipeline = pipeline if pipeline is not None else model_load(bytes(model.pipeline))
    if frame is None:
        frame = feature_frame(as_of, id_range, attributes=needs_attributes(model.features))
    else:
        frame = frame.loc[(frame.index >= low) & (frame.index < high)]
    written = 0
    with transaction.atomic():
        ModelScore.objects.filter(model=model, customer_id__gte=low, customer_id__lt=high).delete()
        for part in score_chunks(pipeline, [frame], model.kind):
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
    pipeline = pipeline if pipeline is not None else model_load(bytes(model.pipeline))
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
    as_of = model_as_of(model, now)
    ranges = [list(r) for r in customer_id_ranges(chunk)]
    with transaction.atomic():
        SegmentModel.objects.filter(pk=model.pk).update(
            scoring={"as_of": as_of.isoformat(), "ranges": ranges, "done": [], "segments": segments}, scored_at=None)
        for low, high in ranges:
            enqueue("segments.tasks.model_score_range", model.pk, low, high)
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
