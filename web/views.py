"""The dashboard and the customer page: views draw what web.selectors reads."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from core import charts
from core.roles import VIEWER, role_required
from customers.models import Customer
from experiments import readout

from . import selectors


@role_required(VIEWER)
def dashboard(request: HttpRequest) -> HttpResponse:
    context = selectors.dashboard_read()
    context["segments"] = [
        # One refresh, or the same size each time, is said in words, not drawn as an empty box.
        {"segment": s, **dict(zip(("spark", "trend"), charts.size_trend(sizes, title=f"{s.name}: size at each refresh")))}
        for s, sizes in context["segments"]
    ]
    now = timezone.now()
    # The state is read now, not when the report was stored: a report stored as "too early"
    # stops being so once its windows close, and one stored minutes after launch never says
    # "no significant difference".
    context["reports"] = [{"report": r, **readout.headline(r.body, now)} for r in context["reports"]]
    return render(request, "web/dashboard.html", context)


@role_required(VIEWER)
def customer_detail(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    return render(request, "web/customer.html", selectors.customer_overview(customer))


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    """404 inside the layout, with the navigation, so a dead link is not a dead end."""
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """500 inside the layout. Django's default renders it with no context (no user, no nav);
    this one keeps the request so the navigation shows. If the layout itself is what fails,
    a plain page still answers."""
    try:
        return render(request, "500.html", status=500)
    except Exception:  # noqa: BLE001 - an error page must never raise
        return HttpResponse(
            "<!doctype html><title>Server error</title><h1>Something went wrong on our side</h1>"
            '<p><a href="/">Go to the dashboard</a></p>', status=500)
