"""Reads of the customer base."""

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from .models import Customer


def customer_list(
    *,
    search: str = "",
    country: str = "",
    email: str = "",
    external_id: str = "",
    signed_up_after=None,
    signed_up_before=None,
) -> QuerySet[Customer]:
    # LOWER(email) matches the customer_email_lower index; iexact would not use it.
    customers = Customer.objects.alias(email_lower=Lower("email"))
    if search:
        customers = customers.filter(
            Q(external_id=search) | Q(email_lower=search.lower()) | Q(name__icontains=search)
        )
    if country:
        customers = customers.filter(country__iexact=country)
    if email:
        customers = customers.filter(email_lower=email.lower())
    if external_id:
        customers = customers.filter(external_id=external_id)
    if signed_up_after:
        customers = customers.filter(signup_date__gte=signed_up_after)
    if signed_up_before:
        customers = customers.filter(signup_date__lte=signed_up_before)
    return customers.order_by("id")
