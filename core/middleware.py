"""Response headers every page carries."""

from django.conf import settings
from django.http import HttpResponseBadRequest, JsonResponse
from django.utils.html import escape

from .nul import nul_errors

FORM = "application/x-www-form-urlencoded"


class ContentSecurityPolicyMiddleware:
    """One Content-Security-Policy header on every response.

    A header, not a library: the policy is one string from settings (no nonces needed, the
    pages load no inline script), and a response that set its own policy keeps it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.CONTENT_SECURITY_POLICY:
            response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class NulByteMiddleware:
    """A NUL byte in the query string (search, filters) or in a page's form field answers 400
    naming the parameter.

    PostgreSQL refuses NUL in text, so such a value would
    otherwise end as a 500 wherever it reaches a query. API bodies are checked where they are
    parsed (core.nul's parsers).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        errors = nul_errors(request.GET)
        if not errors and request.content_type == FORM and not request.path.startswith("/api/"):
            errors = nul_errors(request.POST)  # a page's form (a file upload is multipart: not read here)
        if errors:
            if request.path.startswith("/api/"):
                return JsonResponse(errors, status=400)
            lines = "".join(f"<li>{escape(name)}: {escape(message)}</li>" for name, message in errors.items())
            return HttpResponseBadRequest(f"<!doctype html><title>Bad request</title><ul>{lines}</ul>")
        return self.get_response(request)
