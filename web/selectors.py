"""The cross-app reads behind the site pages, each through the app that owns the data."""

from __future__ import annotations

from django.db import connection
from django.db.models import F

from campaigns.models import Campaign, LedgerEntry
from campaigns.selectors import campaign_progress
from core.db import is_postgres
from customers.models import Customer
from experiments.models import Report
from segments.models import Membership, ModelScore, Segment, SegmentRefresh

TREND_POINTS = 20
EXACT_BELOW = 200_000  # above this the dashboard shows the planner's estimate of the customer count


def customer_total() -> tuple[int, bool]:
    """(count, exact). COUNT(*) over a million customers costs a third of a second on a busy
    machine, more than the rest of the dashboard; past EXACT_BELOW rows PostgreSQL's own
    estimate (pg_class.reltuples, kept by autovacuum's ANALYZE) is shown, marked as about."""
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [Customer._meta.db_table])
            row = cursor.fetchone()
        if row and row[0] >= EXACT_BELOW:
            return int(row[0]), False
    return Customer.objects.count(), True


def dashboard_read() -> dict:
    """Campaigns sending now (with progress), scheduled ones, recent verdicts, the largest
    segments with their size history."""
    sending = Campaign.objects.filter(state__in=[Campaign.State.SENDING, Campaign.State.PAUSED]).select_related("segment")
    scheduled = Campaign.objects.filter(state=Campaign.State.SCHEDULED).select_related("segment").order_by("send_at")[:10]
    # Empty segments are no one's largest: listed only when every segment is empty.
    segments = list(Segment.objects.filter(size__gt=0).order_by("-size")[:10]) or list(
        Segment.objects.order_by("-size")[:10])
    sizes: dict[int, list[int]] = {}
    for refresh in SegmentRefresh.objects.filter(segment__in=segments).order_by("version"):
        sizes.setdefault(refresh.segment_id, []).append(refresh.size)
    return {
        "sending": [{"campaign": c, **campaign_progress(c)} for c in sending],
        "scheduled": scheduled,
        "reports": Report.objects.filter(by="").select_related("experiment").order_by("-computed_at")[:8],
        "segments": [(s, sizes.get(s.id, [])[-TREND_POINTS:]) for s in segments],
        **dict(zip(("customers", "customers_exact"), customer_total())),
        "segment_count": Segment.objects.count(),
        "campaign_count": Campaign.objects.count(),
    }


def customer_overview(customer: Customer) -> dict:
    """One customer across every app: orders, events, consent, segments, model scores and
    the messages received (or held out of)."""
    memberships = (
        Membership.objects.filter(customer=customer, version=F("segment__current_version"))
        .select_related("segment").order_by("segment__name")
    )
    return {
        "customer": customer,
        "orders": customer.orders.order_by("-ordered_at")[:50],
        "events": customer.events.order_by("-occurred_at")[:50],
        "suppressions": customer.suppressions.all(),
        "consent": getattr(customer, "consent", None),
        "segments": [m.segment for m in memberships],
        "scores": ModelScore.objects.filter(customer=customer).select_related("model").order_by("-model__trained_at")[:20],
        "sent_messages": LedgerEntry.objects.filter(customer=customer).select_related("campaign", "variant")
        .order_by("-assigned_at")[:50],
    }
