"""The dashboard and the customer page: views draw what web.selectors reads."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.safestring import mark_safe

from core import charts
from core.roles import VIEWER, role_required
from customers.models import Customer

from . import selectors


@role_required(VIEWER)
def dashboard(request: HttpRequest) -> HttpResponse:
    context = selectors.dashboard_read()
    context["segments"] = [
        {"segment": s, "spark": mark_safe(charts.sparkline(sizes, title=f"{s.name} size"))}
        for s, sizes in context["segments"]
    ]
    return render(request, "web/dashboard.html", context)


@role_required(VIEWER)
def customer_detail(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = get_object_or_404(Customer, pk=customer_id)
    return render(request, "web/customer.html", selectors.customer_overview(customer))
