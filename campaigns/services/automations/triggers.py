"""Trigger readers: what moved below us since the watermark, turned into entries.

DESIGN.md: a lower app's event reaches a higher one by the higher app reading the lower
app's records past a watermark, from a task of its own. Segments and customers never call
up: here we read segments' refresh rows (with the entered list each refresh keeps) and
customers' events.

Each reader runs under a transaction-scoped advisory lock on the automation, so two ticks
(two beats, or a tick and a manual run) read one after the other, never the same rows at
once; and the entries' unique key makes any reread harmless anyway.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from campaigns.models import Automation
from customers.models import Customer, Event
from segments.models import Entrant, Membership, SegmentRefresh

from .entries import entries_insert

logger = logging.getLogger(__name__)
LOCK_NAMESPACE = 71301  # pg_advisory_xact_lock(namespace, automation id): one reader at a time
MEMBERSHIP = Membership._meta.db_table
ENTRANT = Entrant._meta.db_table
EVENT = Event._meta.db_table
CUSTOMER = Customer._meta.db_table
# A transaction may take event ids before another and commit after it: each read goes back
# this many ids before the watermark, so such late commits are still seen (the entry key
# makes the rereads harmless).
EVENT_OVERLAP_IDS = int(getattr(settings, "AUTOMATION_EVENT_OVERLAP_IDS", 20000))
# Events that happened this long before the automation started still trigger it (a product
# posting with a small delay); older ones (a backfill of last year's events) do not.
EVENT_GRACE = timedelta(hours=1)
DATE_CHECK_EVERY = timedelta(minutes=10)


def _lock(automation_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, automation_id])


def automation_read_triggers(automation_id: int, *, now: datetime) -> dict:
    """Read one automation's trigger past its watermark: {"entries": n, "held_out": n}."""
    with transaction.atomic():
        _lock(automation_id)
        automation = Automation.objects.select_related("current_version").get(id=automation_id)
        if automation.state == Automation.State.ARCHIVED:
            return {"entries": 0, "held_out": 0}
        if automation.trigger == Automation.Trigger.SEGMENT:
            return _segment_entries(automation, now)
        if automation.trigger == Automation.Trigger.EVENT:
            return _event_entries(automation, now)
        return _date_entries(automation, now)


def automation_enter_current(automation: Automation, *, now: datetime) -> dict:
    """`include_current`: the segment's members now enter, as if they had just entered it."""
    with transaction.atomic():
        _lock(automation.id)
        sql = (f"SELECT m.customer_id, 'current' AS ref FROM {MEMBERSHIP} m WHERE m.segment_id = %s "
               f"AND m.version = (SELECT current_version FROM segments_segment WHERE id = %s)")
        written, held = entries_insert(
            automation, sql, [automation.trigger_segment_id, automation.trigger_segment_id], source="current", now=now
        )
    return {"entries": written, "held_out": held}


def _segment_entries(automation: Automation, now: datetime) -> dict:
    total = {"entries": 0, "held_out": 0}
    segment_id = automation.trigger_segment_id
    refreshes = list(
        SegmentRefresh.objects.filter(segment_id=segment_id, id__gt=automation.refresh_watermark)
        .order_by("id").values("id", "version", "entered")
    )
    for refresh in refreshes:
        sql = _entered_sql(automation, refresh)
        if sql is None:
            continue
        written, held = entries_insert(automation, sql, [refresh["id"], segment_id, refresh["version"]],
                                       source="segment", now=now)
        total["entries"] += written
        total["held_out"] += held
    if refreshes:
        Automation.objects.filter(id=automation.id).update(refresh_watermark=refreshes[-1]["id"])
    return total


def _entered_sql(automation: Automation, refresh: dict) -> str | None:
    """SELECT of the refresh's entered list as (customer_id, ref), taking (refresh id, segment,
    version); None when there is nothing to read."""
    segment_id = automation.trigger_segment_id
    ref = "'r' || %s::text AS ref"
    if not refresh["entered"]:
        return None
    before = (
        SegmentRefresh.objects.filter(segment_id=segment_id, version__lt=refresh["version"])
        .order_by("-version").values_list("version", "size").first()
    )
    if before is None:  # the segment's first refresh: every member entered
        return f"SELECT m.customer_id, {ref} FROM {MEMBERSHIP} m WHERE m.segment_id = %s AND m.version = %s"
    # The list the refresh kept: its rows, not a diff of two versions (segments.models.Entrant).
    if Entrant.objects.filter(segment_id=segment_id, version=refresh["version"]).exists():
        return f"SELECT n.customer_id, {ref} FROM {ENTRANT} n WHERE n.segment_id = %s AND n.version = %s"
    # A refresh from before entrants were kept: the diff, while both versions are still there.
    if not Membership.objects.filter(segment_id=segment_id, version=refresh["version"]).exists() or (
        before[1] and not Membership.objects.filter(segment_id=segment_id, version=before[0]).exists()
    ):
        # Pruned before we read it: the entered list cannot be told from the members.
        # Skip the refresh (entering everyone would be worse) and say so.
        Automation.objects.filter(id=automation.id).update(
            last_error=f"refresh {refresh['id']} was pruned before it was read; its entrants were skipped"
        )
        return None
    # EXCEPT, not NOT EXISTS: a refresh has just written these rows, so the planner's
    # statistics say "one row" and it can pick a nested loop that rescans the previous
    # version per member; a set difference is linear whatever the statistics say.
    return (f"SELECT d.customer_id, {ref} FROM ("
            f"SELECT m.customer_id FROM {MEMBERSHIP} m WHERE m.segment_id = %s AND m.version = %s "
            f"EXCEPT SELECT p.customer_id FROM {MEMBERSHIP} p WHERE p.segment_id = {int(segment_id)} "
            f"AND p.version = {int(before[0])}) d")


def _event_entries(automation: Automation, now: datetime) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT max(id) FROM {EVENT}")
        top = cursor.fetchone()[0] or 0
    if top <= automation.event_watermark - EVENT_OVERLAP_IDS:
        return {"entries": 0, "held_out": 0}
    sql = (f"SELECT e.customer_id, 'e' || e.id::text AS ref FROM {EVENT} e "
           f"WHERE e.kind = %s AND e.id > %s AND e.id <= %s AND e.occurred_at >= %s")
    since = max(automation.event_floor, automation.event_watermark - EVENT_OVERLAP_IDS)
    written, held = entries_insert(
        automation, sql, [automation.trigger_event, since, top, automation.started_at - EVENT_GRACE],
        source="event", now=now,
    )
    Automation.objects.filter(id=automation.id).update(event_watermark=max(top, automation.event_watermark))
    return {"entries": written, "held_out": held}


def _date_entries(automation: Automation, now: datetime) -> dict:
    """Customers whose date attribute plus the offset is today in their own time zone."""
    if automation.date_checked_at and automation.date_checked_at > now - DATE_CHECK_EVERY:
        return {"entries": 0, "held_out": 0}
    offset = automation.date_offset_days
    local_today = "(%s::timestamptz AT TIME ZONE COALESCE(z.name, 'UTC'))::date"
    if automation.date_attribute == "signup_date":
        date_sql = "c.signup_date"
        # Local dates are at most a day either side of UTC's: the index narrows to 3 days.
        utc_today = now.date()
        narrow = "AND c.signup_date BETWEEN %s AND %s"
        narrow_params = [utc_today - timedelta(days=offset + 1), utc_today - timedelta(days=offset - 1)]
        attr_params: list = []
    else:
        date_sql = ("(CASE WHEN c.attributes->>%s ~ '^\\d{4}-\\d{2}-\\d{2}' "
                    "THEN substr(c.attributes->>%s, 1, 10)::date END)")
        attr_params = [automation.date_attribute, automation.date_attribute]
        narrow, narrow_params = "", []
    sql = (f"SELECT c.id AS customer_id, 'd' || ({date_sql})::text AS ref FROM {CUSTOMER} c "
           f"LEFT JOIN pg_timezone_names z ON z.name = c.time_zone "
           f"WHERE {date_sql} + %s = {local_today} {narrow}")
    params = [*attr_params, *attr_params, offset, now, *narrow_params]
    written, held = entries_insert(automation, sql, params, source="date", now=now)
    Automation.objects.filter(id=automation.id).update(date_checked_at=now)
    return {"entries": written, "held_out": held}
