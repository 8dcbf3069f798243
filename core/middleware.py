"""Response headers every page carries."""

from django.conf import settings


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
