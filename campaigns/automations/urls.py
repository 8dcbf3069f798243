"""Automation pages, mounted under /automations/."""

from django.urls import path

from . import views

app_name = "automations"
urlpatterns = [
    path("", views.automation_index, name="index"),
    path("new/", views.automation_new, name="new"),
    path("<int:automation_id>/", views.automation_detail, name="detail"),
    path("<int:automation_id>/<str:action>/", views.automation_action, name="action"),
]
