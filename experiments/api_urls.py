"""Routes under /api/experiments/ (included from config/urls.py)."""

from rest_framework.routers import SimpleRouter

from .api import ExperimentViewSet, PlanViewSet

router = SimpleRouter()
# The plan first: its path would otherwise read as an experiment id.
router.register("plan", PlanViewSet, basename="experiment-plan")
router.register("", ExperimentViewSet, basename="experiment")

urlpatterns = router.urls
