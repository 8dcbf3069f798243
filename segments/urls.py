"""Page routes of segments, under /segments/ (config/urls.py includes them)."""

from django.urls import path

from . import migration_views, model_views, views

app_name = "segments"
urlpatterns = [
    path("", views.segment_index, name="index"),
    path("new/", views.segment_new, name="new"),
    path("builder/row/", views.rule_row, name="row"),
    path("builder/preview/", views.rule_preview, name="preview"),
    path("models/", model_views.model_index, name="models"),
    path("models/train/", model_views.model_train, name="train"),
    path("models/<int:model_id>/", model_views.model_detail, name="model"),
    path("models/<int:model_id>/segments/", model_views.model_segments_release, name="model-release"),
    path("migration/", migration_views.migration, name="migration"),
    path("<int:segment_id>/", views.segment_detail, name="detail"),
    path("<int:segment_id>/refresh/", views.segment_refresh, name="refresh"),
    path("<int:segment_id>/edit/", views.segment_edit, name="edit"),
    path("<int:segment_id>/duplicate/", views.segment_duplicate, name="duplicate"),
    path("<int:segment_id>/schedule/", views.segment_schedule, name="schedule"),
]
