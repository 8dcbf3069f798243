"""Automation pages, mounted under /automations/."""

from django.urls import path

from . import views

app_name = "automations"
urlpatterns = [
    path("", views.automation_index, name="index"),
    path("new/", views.automation_new, name="new"),
    path("new/step/", views.builder_step, name="builder-step"),
    path("new/step/<int:step>/variant/", views.builder_variant, name="builder-variant"),
    path("new/remove/", views.builder_remove, name="builder-remove"),
    path("new/preview/", views.builder_preview, name="builder-preview"),
    path("new/customers/", views.builder_customers, name="builder-customers"),
    path("<int:automation_id>/", views.automation_detail, name="detail"),
    path("<int:automation_id>/<str:action>/", views.automation_action, name="action"),
]
