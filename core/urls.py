"""Routes of core's own pages, under /jobs/ (config/urls.py includes them)."""

from django.urls import path

from . import views

app_name = "core"
urlpatterns = [
    path("<int:job_id>/", views.job_status, name="job"),
    path("<int:job_id>/retry/", views.job_retry_view, name="job-retry"),
]
