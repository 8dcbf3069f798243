"""A model's family of segments: one per cluster, tier or score band, pointed at the
model's newest version, refreshed together; old model versions pruned."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..ml.rfm import RFM_TIERS
from ..models import ModelScore, Segment, SegmentModel
from .membership import segment_refresh

KEEP_MODEL_VERSIONS = 2  # the current one and the one before, for "score got worse" lists
# Score bands created for propensity and value models: (name, after_fraction, top_fraction).
BANDS = {
    "risk": (("high risk (top 10%)", 0.0, 0.1), ("medium risk (next 20%)", 0.1, 0.3), ("low risk (the rest)", 0.3, 1.0)),
    "rank": (("top 10%", 0.0, 0.1), ("next 20%", 0.1, 0.3), ("the rest", 0.3, 1.0)),
}


def _band_specs(model: SegmentModel) -> list[dict[str, Any]]:
    if model.kind == "kmeans":
        return [{"label": str(c["label"]), "rank": int(c["label"]), "title": c["name"], "description": c["description"]}
                for c in model.info.get("clusters", [])]
    if model.kind == "rfm":
        return [{"label": tier, "rank": i, "title": tier, "description": f"RFM tier {tier}"}
                for i, tier in enumerate(RFM_TIERS)]
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


def model_segments_release(model_id: int, *, user=None, now: datetime | None = None) -> list:
    """Override the guard rail: make the segments of a model held back for no signal or a
    likely leak, and record who chose to and when."""
    with transaction.atomic():
        model = SegmentModel.objects.select_for_update().defer("pipeline").get(pk=model_id)
        info = dict(model.info or {})
        info["segments_held"] = False
        info["override"] = {"by": getattr(user, "username", None), "at": (now or timezone.now()).isoformat()}
        model.info = info
        model.save(update_fields=["info"])
        model_segments_sync(model)
    return family_refresh(model.name, now=now)
