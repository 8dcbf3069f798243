"""Campaign pages, mounted under /campaigns/ (the unsubscribe page is in api_urls: /u/)."""

from django.urls import path

from . import views

app_name = "campaigns"
urlpatterns = [
    path("", views.campaign_index, name="index"),
    path("new/", views.campaign_new, name="new"),
    path("estimate/", views.campaign_estimate, name="estimate"),
    path("outbox/", views.outbox_index, name="outbox"),
    path("outbox/<int:message_id>/", views.outbox_detail, name="outbox-detail"),
    path("<int:campaign_id>/", views.campaign_detail, name="detail"),
    path("<int:campaign_id>/preview/", views.campaign_preview, name="preview"),
    path("<int:campaign_id>/<str:action>/", views.campaign_action, name="action"),
]
