"""Suppression: the reasons never to email a customer."""

from __future__ import annotations

from ..models import Customer, Suppression


def customer_suppress(customer: Customer, reason: str, *, detail: str = "", source: str = "") -> Suppression:
    """Record a reason never to email this customer; the first record of a reason stands."""
    suppression, _ = Suppression.objects.get_or_create(
        customer=customer, reason=reason, defaults={"detail": detail[:500], "source": source}
    )
    return suppression
