"""Campaign routes outside the marketer's pages: the REST API (mounted under /api/),
provider webhooks (/webhooks/) and the public unsubscribe page (/u/)."""

from anymail import urls as anymail_urls
from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views
from .api import CampaignViewSet, OfferViewSet
from .webhooks import require_webhook_secret

router = SimpleRouter()
router.register("offers", OfferViewSet, basename="offer")
router.register("campaigns", CampaignViewSet, basename="campaign")
api_urlpatterns = router.urls

# anymail's own webhook views (/webhooks/postmark/tracking/, /webhooks/mailgun/tracking/,
# /webhooks/amazon_ses/tracking/, ...), refused outright while no WEBHOOK_SECRET is set.
webhook_urlpatterns = []
for pattern in anymail_urls.urlpatterns:
    pattern.callback = require_webhook_secret(pattern.callback)
    webhook_urlpatterns.append(pattern)

unsubscribe_urlpatterns = [
    path("<str:token>/", views.unsubscribe, name="campaign-unsubscribe"),
]
