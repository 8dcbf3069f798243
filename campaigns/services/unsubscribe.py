"""Unsubscribe: the write behind the one-click link in every message."""

from __future__ import annotations

from campaigns.models import AutomationSend, LedgerEntry
from customers.models import Suppression
from customers.services.suppression import customer_suppress


def unsubscribe_apply(row: LedgerEntry | AutomationSend, *, source: str = "link") -> Suppression:
    """Suppress exactly the customer this message went to; running it twice changes nothing."""
    sender = f"automation {row.automation.name}" if isinstance(row, AutomationSend) else f"campaign {row.campaign.name}"
    return customer_suppress(
        row.customer, Suppression.Reason.UNSUBSCRIBED, detail=sender,
        source=f"unsubscribe:{source}",
    )
