from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from campaigns import pages as campaign_pages
from campaigns import urls as campaign_urls
from core.api import TokenObtain, TokenRotate

from .health import healthz

urlpatterns = [
    path("", campaign_pages.dashboard, name="dashboard"),
    # A customer's page reads every app, so the top app draws it.
    path("customers/<int:customer_id>/", campaign_pages.customer_detail, name="customer-page"),
    path("customers/", include("customers.urls")),
    path("experiments/", include("experiments.urls")),
    path("campaigns/", include("campaigns.page_urls")),
    path("segments/", include("segments.page_urls")),
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/experiments/", include("experiments.api_urls")),
    path("api/", include("customers.api_urls")),
    path("api/", include("segments.api")),
    path("api/", include(campaign_urls.api_urlpatterns)),
    path("webhooks/", include((campaign_urls.webhook_urlpatterns, "anymail"))),
    path("u/", include(campaign_urls.unsubscribe_urlpatterns)),
    path("api/token/", TokenObtain.as_view(), name="api-token"),
    path("api/token/rotate/", TokenRotate.as_view(), name="api-token-rotate"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]
