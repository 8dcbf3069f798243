"""Writes for segments: each service owns its transaction (DESIGN.md, house style).

membership: create / update segments, refresh (materialise a version), prune.
training: train, score and re-train models; keep each model's family of segments.
schedules: recurring refreshes and re-trains through django-celery-beat.
"""

from .membership import (
    KEEP_VERSIONS,
    SpecInvalid,
    segment_create,
    segment_delete,
    segment_members_sql,
    segment_refresh,
    segment_refresh_all,
    segment_spec_clean,
    segment_update,
    segment_versions_prune,
)
from .schedules import (
    model_schedule_clear,
    model_schedule_set,
    schedule_clean,
    schedule_describe,
    segment_schedule,
    segment_schedule_clear,
    segment_schedule_set,
)
from .training import (
    TrainingError,
    family_refresh,
    model_retrain,
    model_score,
    model_score_range,
    model_score_range_run,
    model_score_start,
    model_segments_sync,
    model_train,
    model_versions_prune,
)

__all__ = [
    "KEEP_VERSIONS", "SpecInvalid", "TrainingError", "family_refresh", "model_retrain", "model_schedule_clear",
    "model_schedule_set", "model_score", "model_score_range", "model_score_range_run", "model_score_start",
    "model_segments_sync", "model_train", "model_versions_prune", "schedule_clean", "schedule_describe",
    "segment_create", "segment_delete", "segment_members_sql", "segment_refresh", "segment_refresh_all",
    "segment_schedule", "segment_schedule_clear", "segment_schedule_set", "segment_spec_clean", "segment_update",
    "segment_versions_prune",
]
