from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic.base import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from campaigns import api_urls as campaign_api_urls
from core.api import TokenObtain, TokenRotate

from .health import healthz

urlpatterns = [
    path("", include("web.urls")),  # the dashboard and the customer page (before customers/)
    path("customers/", include("customers.urls")),
    path("experiments/", include("experiments.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("automations/", include("campaigns.automations.urls")),
    path("segments/", include("segments.urls")),
    path("jobs/", include("core.urls")),
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages that link no icon (admin, API docs): no 404 there either.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/experiments/", include("experiments.api_urls")),
    path("api/", include("customers.api_urls")),
    path("api/", include("segments.api_urls")),
    path("api/", include(campaign_api_urls.api_urlpatterns)),
    path("webhooks/", include((campaign_api_urls.webhook_urlpatterns, "anymail"))),
    path("u/", include(campaign_api_urls.unsubscribe_urlpatterns)),
    path("api/token/", TokenObtain.as_view(), name="api-token"),
    path("api/token/rotate/", TokenRotate.as_view(), name="api-token-rotate"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
]

# Error pages inside the layout, with the navigation (web.views).
handler404 = "web.views.page_not_found"
handler500 = "web.views.server_error"
