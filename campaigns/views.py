"""One-click unsubscribe pages under /u/ (RFC 8058). No login: the signed token is the key.

GET shows a confirmation page with a button (link scanners and prefetchers GET, they must
not unsubscribe anyone). POST unsubscribes and answers 200 with a page, no redirect: it is
what a mail client's one-click button sends (`List-Unsubscribe=One-Click`).
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .selectors import unsubscribe_find
from .services.unsubscribe import unsubscribe_apply


@csrf_exempt  # mail clients POST without a CSRF token; the signed token is the proof
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    row = unsubscribe_find(token)
    if row is None:
        return render(request, "campaigns/unsubscribe.html", {"state": "invalid"}, status=404)
    if request.method == "POST":
        unsubscribe_apply(row, source="one-click" if "List-Unsubscribe" in request.POST else "link")
        return render(request, "campaigns/unsubscribe.html", {"state": "done", "email": row.email})
    return render(request, "campaigns/unsubscribe.html", {"state": "confirm", "email": row.email, "token": token})
