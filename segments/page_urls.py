from django.urls import path

from . import pages

app_name = "segments"
urlpatterns = [
    path("", pages.segment_index, name="index"),
    path("new/", pages.segment_new, name="new"),
    path("builder/row/", pages.rule_row, name="row"),
    path("builder/preview/", pages.rule_preview, name="preview"),
    path("models/", pages.model_index, name="models"),
    path("models/train/", pages.model_train, name="train"),
    path("models/<int:model_id>/", pages.model_detail, name="model"),
    path("migration/", pages.migration, name="migration"),
    path("<int:segment_id>/", pages.segment_detail, name="detail"),
    path("<int:segment_id>/refresh/", pages.segment_refresh, name="refresh"),
    path("<int:segment_id>/schedule/", pages.segment_schedule, name="schedule"),
]
