"""Reads of the customer base."""

from django.db.models import Q, QuerySet

from .models import Customer


def customer_list(
    *,
    search: str = "",
    country: str = "",
    email: str = "",
    external_id: str = "",
    signed_up_after=None,
    signed_up_before=None,
    suppressed: bool | None = None,
) -> QuerySet[Customer]:
    customers = Customer.objects.all()
    if search:
        customers = customers.filter(
            Q(external_id=search) | Q(email__iexact=search) | Q(name__icontains=search)
        )
    if country:
        customers = customers.filter(country__iexact=country)
    if email:
        customers = customers.filter(email__iexact=email)
    if external_id:
        customers = customers.filter(external_id=external_id)
    if signed_up_after:
        customers = customers.filter(signup_date__gte=signed_up_after)
    if signed_up_before:
        customers = customers.filter(signup_date__lte=signed_up_before)
    if suppressed is not None:
        customers = customers.filter(suppressions__isnull=not suppressed).distinct()
    return customers.order_by("id")
