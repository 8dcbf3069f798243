"""Unsubscribe: the write behind the one-click link in every message."""

from __future__ import annotations

from campaigns.models import LedgerEntry
from customers.models import Suppression
from customers.services.suppression import customer_suppress


def unsubscribe_apply(row: LedgerEntry, *, source: str = "link") -> Suppression:
    """Suppress exactly the customer this message went to; running it twice changes nothing."""
    return customer_suppress(
        row.customer, Suppression.Reason.UNSUBSCRIBED, detail=f"campaign {row.campaign.name}",
        source=f"unsubscribe:{source}",
    )
