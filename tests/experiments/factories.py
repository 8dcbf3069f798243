"""Experiment fixtures built through the services, as campaign launch builds them."""

from datetime import datetime, timedelta

from django.utils import timezone

from experiments.services.definitions import experiment_create
from experiments.services.exposures import exposures_record
from tests.factories import CustomerFactory, EventFactory, OrderFactory

EXPOSED_AT = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.get_fixed_timezone(0))


def campaign_experiment(name="spring", arms=(("holdout", 1, True), ("offer", 1, False)), **kwargs):
    kwargs.setdefault("secondary_metrics", ["revenue", "visit"])
    kwargs.setdefault("attribution_days", 7)
    kwargs.setdefault("salt", f"salt-{name}")
    return experiment_create(name, list(arms), **kwargs)


def expose(experiment, arm, *, at=EXPOSED_AT, **customer_fields):
    """A new customer exposed to ``arm`` at ``at``."""
    customer = CustomerFactory(**customer_fields)
    exposures_record(experiment, [(customer.id, arm, at)])
    return customer


def order(customer, *, days_after, amount=50, at=EXPOSED_AT, **fields):
    return OrderFactory(customer=customer, amount=amount, ordered_at=at + timedelta(days=days_after), **fields)


def event(customer, *, days_after, kind="visit", at=EXPOSED_AT):
    return EventFactory(customer=customer, kind=kind, occurred_at=at + timedelta(days=days_after))
