"""API routes of the customer base, under /api/ (config/urls.py includes them)."""

from rest_framework.routers import DefaultRouter

from .api import CustomerViewSet, EventViewSet

# DefaultRouter, not SimpleRouter: its browsable root stays at /api/ ("api-root").
router = DefaultRouter()
router.register("customers", CustomerViewSet, basename="customer")
router.register("events", EventViewSet, basename="event")

urlpatterns = router.urls
