"""Campaign routes outside the marketer's pages: the REST API (mounted under /api/),
provider webhooks (/webhooks/) and the public unsubscribe page (/u/)."""

from anymail import urls as anymail_urls
from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views
from .api import CampaignViewSet, OfferViewSet
from .automations.api import AutomationViewSet
from .webhooks import webhook_guard

router = SimpleRouter()
router.register("offers", OfferViewSet, basename="offer")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("automations", AutomationViewSet, basename="automation")
api_urlpatterns = router.urls

# anymail's tracking webhook views (/webhooks/postmark/tracking/, /webhooks/mailgun/tracking/,
# /webhooks/amazon_ses/tracking/, ...); only EMAIL_PROVIDER's answers (webhook_guard), and
# no inbound mail route at all: nothing here receives mail.
webhook_urlpatterns = []
for pattern in anymail_urls.urlpatterns:
    if pattern.name and pattern.name.endswith("_tracking_webhook"):
        pattern.callback = webhook_guard(pattern.callback, pattern.name.removesuffix("_tracking_webhook"))
        webhook_urlpatterns.append(pattern)

unsubscribe_urlpatterns = [
    path("<str:token>/", views.unsubscribe, name="campaign-unsubscribe"),
]
