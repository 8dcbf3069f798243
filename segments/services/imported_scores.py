"""Scores computed elsewhere become a model segments can select from.

An uplift model is trained and stored by the experiments app (which may import segments,
not the other way round). To target "the top 20% by predicted uplift" the experiments app
hands its per-customer scores here; they are stored as a SegmentModel of kind `uplift`
with its ModelScore rows, so the segment refreshes and migrates like any other model
segment.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from core.bulk import bulk_copy

from ..models import ModelScore, SegmentModel


@transaction.atomic
def model_scores_import(
    name: str, kind: str, scores: Iterable[tuple[int, float]], *, params: dict, info: dict, features: list[str]
) -> SegmentModel:
    """A new version of model `name` holding the given (customer id, score) pairs."""
    version = (SegmentModel.objects.filter(name=name).aggregate(v=Max("version"))["v"] or 0) + 1
    model = SegmentModel.objects.create(
        name=name, kind=kind, version=version, params=params, features=features, info=info,
        metrics={k: info[k] for k in ("qini_coefficient", "qini_p_value") if info.get(k) is not None},
        pipeline=b"",  # the fitted model stays where it was trained; see params
    )
    count = 0

    def rows():
        nonlocal count
        for customer_id, score in scores:
            count += 1
            yield (model.id, int(customer_id), float(score), "")

    bulk_copy(ModelScore._meta.db_table, ["model_id", "customer_id", "score", "label"], rows())
    model.training_rows = count
    model.scored_at = timezone.now()
    model.save(update_fields=["training_rows", "scored_at"])
    return model
