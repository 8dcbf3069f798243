"""API routes of segments and their models, under /api/ (config/urls.py includes them)."""

from rest_framework.routers import SimpleRouter

from .api import SegmentModelViewSet, SegmentViewSet

router = SimpleRouter()
router.register("segments", SegmentViewSet, basename="segment")
router.register("segment-models", SegmentModelViewSet, basename="segment-model")

urlpatterns = router.urls
