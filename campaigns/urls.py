from django.urls import path

from . import pages

app_name = "campaigns"
urlpatterns = [
    path("", pages.campaign_index, name="index"),
    path("new/", pages.campaign_new, name="new"),
    path("estimate/", pages.campaign_estimate, name="estimate"),
    path("outbox/", pages.outbox_index, name="outbox"),
    path("outbox/<int:message_id>/", pages.outbox_detail, name="outbox-detail"),
    path("<int:campaign_id>/", pages.campaign_detail, name="detail"),
    path("<int:campaign_id>/preview/", pages.campaign_preview, name="preview"),
    path("<int:campaign_id>/<str:action>/", pages.campaign_action, name="action"),
]
