from django.urls import path

from . import views

app_name = "experiments"
urlpatterns = [
    path("", views.experiment_index, name="index"),
    path("plan/", views.experiment_plan, name="plan"),
    path("<int:experiment_id>/", views.experiment_detail, name="detail"),
    path("<int:experiment_id>/refresh/", views.experiment_refresh, name="refresh"),
    path("<int:experiment_id>/export.csv", views.experiment_export_csv, name="export-csv"),
    path("<int:experiment_id>/export.json", views.experiment_export_json, name="export-json"),
    path("uplift/<int:model_id>/", views.uplift_detail, name="uplift"),
    path("uplift/<int:model_id>/segment/", views.uplift_segment, name="uplift-segment"),
]
