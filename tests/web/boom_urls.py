"""The site's URLs plus one that fails, to see the 500 page as a user would."""

from django.urls import path

from config.urls import handler404, handler500, urlpatterns as site  # noqa: F401


def boom(request):
    raise RuntimeError("a bug, on purpose")


urlpatterns = [path("boom/", boom), *site]
