"""Campaign pages, mounted under /campaigns/ (the unsubscribe page is in api_urls: /u/)."""

from django.urls import path

from . import views

app_name = "campaigns"
urlpatterns = [
    path("", views.campaign_index, name="index"),
    path("new/", views.campaign_new, name="new"),
    path("compose/variant/", views.composer_variant, name="compose-variant"),
    path("compose/remove/", views.composer_remove, name="compose-remove"),
    path("compose/customers/", views.composer_customers, name="compose-customers"),
    path("compose/preview/", views.composer_preview, name="compose-preview"),
    path("estimate/", views.campaign_estimate, name="estimate"),
    path("outbox/", views.outbox_index, name="outbox"),
    path("outbox/<int:message_id>/", views.outbox_detail, name="outbox-detail"),
    path("<int:campaign_id>/", views.campaign_detail, name="detail"),
    path("<int:campaign_id>/edit/", views.campaign_edit, name="edit"),
    path("<int:campaign_id>/confirm/", views.campaign_confirm, name="confirm"),
    path("<int:campaign_id>/preview/", views.campaign_preview, name="preview"),
    path("<int:campaign_id>/test/", views.campaign_test, name="test"),
    path("<int:campaign_id>/<str:action>/", views.campaign_action, name="action"),
]
