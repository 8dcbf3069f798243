"""Helpers for the automation tests: a rule segment to enter, specs, a tick-and-send loop."""

from __future__ import annotations

from django.utils import timezone

from campaigns.automations.sending import automation_send
from campaigns.providers.outbox import OutboxProvider
from campaigns.services.automations.tick import automation_tick
from customers.models import Customer
from segments.services import membership

US = {"all": [{"field": "country", "op": "eq", "value": "US"}]}
TEXT = "Hi {{ customer.first_name }}, step text {{ unsubscribe_url }}"


def us_segment(name: str = "us"):
    segment = membership.segment_create({"name": name, "rule": US})
    membership.segment_refresh(segment)
    return segment


def make_people(n: int, prefix: str = "p", country: str = "GB") -> list[int]:
    now = timezone.now()
    Customer.objects.bulk_create([
        Customer(external_id=f"{prefix}{i}", email=f"{prefix}{i}@example.com", name=f"Name {prefix}{i}",
                 country=country, created_at=now, updated_at=now)
        for i in range(n)
    ])
    return list(Customer.objects.filter(external_id__startswith=prefix).order_by("id").values_list("id", flat=True))


def step(wait_hours: float = 0, unless: str = "", name: str = "a", subject: str = "Step") -> dict:
    out = {"wait_hours": wait_hours, "variants": [{"name": name, "subject": subject, "text": TEXT}]}
    if unless:
        out["unless"] = unless
    return out


def auto_spec(name: str = "Win-back", trigger: dict | None = None, steps: list | None = None, **extra) -> dict:
    return {"name": name, "trigger": trigger or {"segment": "us"}, "holdout": 0.1, "reentry_days": None,
            "exit": ["ordered"], "steps": steps or [step(0)]} | extra


def run_all(rounds: int = 10) -> None:
    """Tick and send in this process until nothing more is due."""
    provider = OutboxProvider()
    for _ in range(rounds):
        automation_tick(wake=False)
        stats = automation_send(provider=provider, budget_seconds=30)
        if not stats.claimed:
            automation_tick(wake=False)
            if not automation_send(provider=provider, budget_seconds=30).claimed:
                return
