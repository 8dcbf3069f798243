"""Writing a launch's audience: one ledger row per member and, when the campaign is an
experiment, one exposure per member, arms assigned in SQL.

Set-based: the audience goes in with INSERT ... SELECT, arms from a SHA-256 of the salt and
the customer id compared with integer bounds (experiments.assignment), never row by row.

PostgreSQL runs one INSERT on one core. A first launch to a large audience is therefore
written in ranges of customer ids, each range one statement (ledger rows and their exposures
together) in a transaction of its own, on CAMPAIGN_LAUNCH_CONNECTIONS connections at once.
The launch's own transaction holds the campaign's row lock and makes the campaign `sending`
only after every range has committed; until then no claim takes a row (claims read only
`sending` campaigns), and a launch that fails deletes the rows its ranges wrote before it
re-raises. A launch killed mid-way (SIGKILL, a lost machine) leaves committed ranges of a
campaign still at `runs == 0`: the next attempt deletes them first (`leftovers_delete`),
with the exposures it wrote for an experiment that was never committed.

Smaller audiences and later runs of a recurring campaign are one statement in the launch's
own transaction; SQLite, which has no INSERT inside WITH, one INSERT ... SELECT per table.
"""

from __future__ import annotations

from bisect import bisect_right
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from math import ceil

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min

from campaigns.models import HOLDOUT_ARM, Campaign, LedgerEntry
from campaigns.selectors import campaign_audience
from core.db import db_datetime, is_postgres
from experiments.assignment import key_bound_bytes, key_bounds, key_for
from experiments.models import Experiment
from experiments.services.exposures import (
    exposure_span_widen, exposures_from_rows_sql, exposures_insert_from_sql, exposures_orphans_sql,
)
from segments.models import Membership

S = LedgerEntry.Status
TABLE = LedgerEntry._meta.db_table


def audience_write(campaign: Campaign, arms, salt: str, run: int, now: datetime,
                   experiment: Experiment | None, created: bool) -> int:
    """Write the run's ledger rows and exposures (inside the caller's transaction, which
    holds the campaign locked); returns the number of ledger rows added."""
    if not is_postgres():
        return _write_sqlite(campaign, arms, salt, run, now, experiment, created)
    arm_ids = dict(experiment.arms.values_list("name", "id")) if experiment is not None else {}
    # Ranged only when the experiment is new (or there is none): what a failed launch's
    # ranges wrote is then every exposure the experiment has.
    bounds = _ranges(campaign, run) if experiment is None or created else []
    if not bounds:
        sql, params = _statement(campaign, arms, salt, run, now, campaign_audience(campaign), experiment, arm_ids,
                                 first=created)
        return _exposed(experiment, now, _execute(sql, params))
    leftovers_delete(campaign)
    statements = [
        _statement(campaign, arms, salt, run, now, campaign_audience(campaign, fresh=True, ids=(lo, hi)),
                   experiment, arm_ids, first=True)
        for lo, hi in bounds
    ]
    with ThreadPoolExecutor(max_workers=settings.CAMPAIGN_LAUNCH_CONNECTIONS) as pool:
        futures = [pool.submit(_on_this_connection_then_close, _execute_range, sql, params)
                   for sql, params in statements]
        try:
            return _exposed(experiment, now, sum(f.result() for f in futures))
        except BaseException:
            for f in futures:
                f.cancel()
            pool.shutdown(wait=True)
            _on_own_connection(_ranges_delete, campaign.id, run, experiment.id if experiment else None)
            raise


def _exposed(experiment: Experiment | None, now: datetime, added: int) -> int:
    """Every row written is exposed at `now` (its assigned_at): the experiment's span takes
    it in, in the launch's transaction (the ranges' connections cannot see a new experiment)."""
    if experiment is not None and added:
        exposure_span_widen(experiment.id, now, now)
    return added


def _statement(campaign: Campaign, arms, salt: str, run: int, now: datetime, audience,
               experiment: Experiment | None, arm_ids: dict[str, int], *, first: bool) -> tuple[str, list]:
    """One statement writing `audience` into the ledger and, for an experiment, the rows
    written into its exposures (at assignment time, holdout included: outcomes are orders
    after it); it returns the number of ledger rows. The arms are named by id: a range's
    connection cannot see an experiment made in the launch's own transaction."""
    sql, params = _ledger_sql(campaign, arms, salt, run, now, audience, returning=True)
    if experiment is None:
        return f"WITH written AS ({sql}) SELECT COUNT(*) FROM written", params
    exposures_sql, exposures_params = exposures_from_rows_sql(experiment, arm_ids, "written", first=first)
    return (f"WITH written AS ({sql}), exposed AS ({exposures_sql}) SELECT COUNT(*) FROM written",
            [*params, *exposures_params])


def _execute(sql: str, params: list) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _execute_range(sql: str, params: list) -> int:
    """A range's statement without parallel workers: the ranges are the parallelism, and a
    range reads only its slice of the indexes."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        return _execute(sql, params)


def _write_sqlite(campaign: Campaign, arms, salt: str, run: int, now: datetime,
                  experiment: Experiment | None, created: bool) -> int:
    """SQLite has no INSERT inside WITH: the ledger, then its rows read back as exposures."""
    sql, params = _ledger_sql(campaign, arms, salt, run, now, campaign_audience(campaign))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        added = max(cursor.rowcount, 0)
    if experiment is not None and added:
        exposures_insert_from_sql(
            experiment,
            f"SELECT customer_id, arm, assigned_at AS exposed_at FROM {TABLE} WHERE campaign_id = %s AND run = %s",
            [campaign.id, run],
            checked=True,  # the rows above: existing customers, the experiment's own arms
            first=created,  # made just above, in this transaction: it has no exposure yet
        )
    return added


def leftovers_delete(campaign: Campaign) -> int:
    """Rows of a launch that never committed (its ranges did, then it was killed): ledger rows
    of runs the campaign has not counted, and their exposures in an experiment that does
    not exist. Committed on a connection of its own: the ranges about to be written must not
    wait on this transaction's deletes."""
    if not is_postgres():
        return 0

    def delete() -> int:
        with connection.cursor() as cursor:
            orphans_sql, orphans_params = exposures_orphans_sql(
                f"SELECT customer_id FROM {TABLE} WHERE campaign_id = %s AND run > %s", [campaign.id, campaign.runs])
            cursor.execute(orphans_sql, orphans_params)
            cursor.execute(f"DELETE FROM {TABLE} WHERE campaign_id = %s AND run > %s", [campaign.id, campaign.runs])
            return cursor.rowcount

    return _on_own_connection(delete)


def _ranges(campaign: Campaign, run: int) -> list[tuple[int, int]]:
    """Customer id ranges [lo, hi) for a ranged write, or [] for one statement. Ranges are
    even spans of the segment members' ids, several per connection so that a span denser
    than the others does not leave one connection working alone."""
    connections_ = settings.CAMPAIGN_LAUNCH_CONNECTIONS
    size = campaign.segment.size or 0
    if not is_postgres() or run != 1 or connections_ < 2 or size < settings.CAMPAIGN_LAUNCH_RANGED_FROM:
        return []
    ids = Membership.objects.filter(segment_id=campaign.segment_id, version=campaign.segment.current_version).aggregate(
        lo=Min("customer_id"), hi=Max("customer_id"))
    if ids["lo"] is None:
        return []
    count = max(4 * connections_, ceil(size / settings.CAMPAIGN_LAUNCH_RANGE_ROWS))
    span = ceil((ids["hi"] + 1 - ids["lo"]) / count)
    return [(lo, lo + span) for lo in range(ids["lo"], ids["hi"] + 1, span)]


def _ranges_delete(campaign_id: int, run: int, experiment_id: int | None) -> None:
    """What the ranges of a failed launch committed."""
    from experiments.models import Exposure

    with connection.cursor() as cursor:
        if experiment_id is not None:
            cursor.execute(f"DELETE FROM {Exposure._meta.db_table} WHERE experiment_id = %s", [experiment_id])
        cursor.execute(f"DELETE FROM {TABLE} WHERE campaign_id = %s AND run = %s", [campaign_id, run])


def _on_this_connection_then_close(function, *args):
    """In a pool's thread: Django gives each thread a connection of its own, which nothing
    closes when the thread ends."""
    try:
        return function(*args)
    finally:
        connection.close()


def _on_own_connection(function, *args):
    """Run `function` on a database connection of its own (a thread's), committed when it
    returns: outside the launch's transaction."""
    with ThreadPoolExecutor(max_workers=1) as one:
        return one.submit(_on_this_connection_then_close, function, *args).result()


def _arm_sql(salt: str, bounds: list[int]) -> tuple[str, list, str]:
    """(per-row SQL for the inner SELECT over audience member a, its parameters, SQL for the
    1-based number of the member's arm from that value as s.h). The same arm as
    experiments.assignment.arm_for: key_bounds gives integer bounds on the hash's first 8
    bytes, so no floating point is involved."""
    if is_postgres():
        # The digest is compared as bytes: memcmp order is the key's unsigned order.
        whens = [f"WHEN s.h < '\\x{key_bound_bytes(b).hex()}'::bytea THEN {n}" for n, b in enumerate(bounds, start=1)]
        number = f"(CASE {' '.join(whens)} ELSE {len(bounds) + 1} END)" if whens else "1"
        return "sha256(convert_to(%s || ':' || a.id::text, 'UTF8'))", [salt], number
    # SQLite has no SHA-256: the same Python function, registered on the connection.
    connection.ensure_connection()
    connection.connection.create_function(
        "offerlab_arm", 3,
        lambda salt_, uid, text: bisect_right([int(b) for b in text.split(",") if b], key_for(salt_, uid)) + 1,
        deterministic=True,
    )
    return "offerlab_arm(%s, a.id, %s)", [salt, ",".join(str(b) for b in bounds)], "s.h"


def _case(column: str, values: list) -> tuple[str, list]:
    """CASE <column> WHEN 1 THEN <values[0]> ... END, the values as parameters."""
    if len(values) == 1:
        return "%s", list(values)
    whens = " ".join(f"WHEN {n} THEN %s" for n in range(1, len(values) + 1))
    return f"CASE {column} {whens} END", list(values)


_sequence: dict[str, str] = {}


def _ledger_id_sql() -> str:
    """The ledger's next id, taken in the SELECT so that the key can start with it."""
    if connection.alias not in _sequence:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
            _sequence[connection.alias] = cursor.fetchone()[0]
    return f"nextval('{_sequence[connection.alias]}'::regclass)"


def _ledger_sql(campaign: Campaign, arms, salt: str, run: int, now: datetime, audience, *,
                returning: bool = False) -> tuple[str, list]:
    """One INSERT ... SELECT of `audience` into the ledger, each row with its arm, variant
    and status; members already in the ledger stay as they are. `returning`: the statement
    returns (customer_id, arm, exposed_at) of the rows written, for their exposures."""
    audience_sql, audience_params = audience.values("id", "email").query.sql_with_params()
    names, bounds = key_bounds([(a[0], a[1]) for a in arms])
    hash_sql, hash_params, number = _arm_sql(salt, bounds)
    arm_case, arm_case_params = _case(number, names)
    variant_case, variant_params = _case(number, [a[3].id if a[3] is not None else None for a in arms])
    status_case, status_params = _case(number, [S.HELD_OUT if a[0] == HOLDOUT_ARM else S.PENDING for a in arms])
    if is_postgres():
        # The key starts with the row's id, so the unique index on it grows at its right
        # edge like the primary key's (a random key lands anywhere in an index as large as
        # the whole ledger); its second half is random, so keys stay unguessable.
        id_sql, id_column = f"{_ledger_id_sql()} AS lid,", "id, "
        key = "lpad(to_hex(s.lid), 16, '0') || left(replace(gen_random_uuid()::text, '-', ''), 16)"
        id_value = "s.lid, "
        fence = "OFFSET 0"  # one digest per row, not one per CASE above
    else:
        id_sql = id_column = id_value = fence = ""
        key = "lower(hex(randomblob(16)))"
    # A first run writes into a ledger holding none of the campaign's rows (its row is locked
    # and was a draft): a plain INSERT, not ON CONFLICT's check of the unique index before
    # each row. Later runs of a recurring campaign skip the members already in it.
    skip_present = "ON CONFLICT (campaign_id, customer_id) DO NOTHING" if run > 1 else ""
    sql = f"""
        INSERT INTO {TABLE} ({id_column}campaign_id, customer_id, variant_id, arm, email, status, run, assigned_at,
                             due_at, attempts, retries, batch, key, provider, provider_message_id, offer_code, error,
                             updated_at)
        SELECT {id_value}%s, s.id, {variant_case}, {arm_case}, s.email, {status_case}, %s, %s, %s,
               0, 0, '', {key}, '', '', '', '', %s
        FROM (SELECT {id_sql} a.id, a.email, {hash_sql} AS h FROM ({audience_sql}) a {fence}) s
        WHERE true
        {skip_present}
        {"RETURNING customer_id, arm, assigned_at AS exposed_at" if returning else ""}
    """
    due = db_datetime(max(now, campaign.send_at or now))
    params = [campaign.id, *variant_params, *arm_case_params, *status_params, run, db_datetime(now), due,
              db_datetime(now), *hash_params, *audience_params]
    return sql, params
