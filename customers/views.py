from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from .models import Customer, Event, Order
from .roles import VIEWER, role_required
from .selectors import customer_list


@role_required(VIEWER)
def dashboard(request):
    counts = {
        # Estimates would do at a million rows; exact counts are fine at this scale and honest.
        "customers": Customer.objects.count(),
        "orders": Order.objects.count(),
        "events": Event.objects.count(),
    }
    return render(request, "dashboard.html", {"counts": counts})


@role_required(VIEWER)
def customer_index(request):
    search = request.GET.get("q", "").strip()
    country = request.GET.get("country", "").strip()
    page = Paginator(customer_list(search=search, country=country), 50).get_page(request.GET.get("page"))
    return render(request, "customers/index.html", {"page": page, "q": search, "country": country})


@role_required(VIEWER)
def customer_detail(request, customer_id: int):
    customer = get_object_or_404(Customer, pk=customer_id)
    return render(
        request,
        "customers/detail.html",
        {
            "customer": customer,
            "orders": customer.orders.order_by("-ordered_at")[:50],
            "events": customer.events.order_by("-occurred_at")[:50],
            "suppressions": customer.suppressions.all(),
        },
    )
