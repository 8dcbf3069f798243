"""Exposures: who saw which arm and when, written once per (experiment, unit)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Max, Min, Value
from django.db.models.functions import Coalesce, Greatest, Least

from core.bulk import staging_table
from core.db import is_postgres
from customers.models import Customer

from ..models import Arm, Experiment, Exposure
from .definitions import ExperimentError

EXPOSURE = Exposure._meta.db_table
ARM = Arm._meta.db_table
STAGING = "exposure_staging"


def _require_customers(experiment: Experiment) -> None:
    if experiment.source != Experiment.Source.CUSTOMERS:
        raise ExperimentError(f"experiment {experiment.name!r} is imported: its units come from its file")


def _insert_select(experiment: Experiment, source_sql: str, params: Sequence, *, checked: bool = False,
                   first: bool = False) -> int:
    """Exposures from a SELECT of (customer_id, arm, exposed_at), validated first (unless the
    caller has `checked` it), then one INSERT ... SELECT that skips units already exposed
    (`first`: the experiment has none yet, so a plain INSERT)."""
    arms = ARM
    # An untyped '{}' in a SELECT list is text to PostgreSQL, which will not assign it to jsonb.
    empty = "CAST('{}' AS jsonb)" if is_postgres() else "'{}'"
    # "WHERE true" keeps SQLite from reading ON CONFLICT as part of a join.
    insert = (
        f"INSERT INTO {EXPOSURE} (experiment_id, arm_id, unit, customer_id, exposed_at, attributes, outcomes) "
        f"SELECT %s, a.id, CAST(s.customer_id AS TEXT), s.customer_id, s.exposed_at, {empty}, {empty} "
        f"FROM ({source_sql}) s JOIN {arms} a ON a.experiment_id = %s AND a.name = s.arm WHERE true "
        + ("" if first else "ON CONFLICT (experiment_id, unit) DO NOTHING")
    )
    insert_params = [experiment.id, *params, experiment.id]
    with connection.cursor() as cursor:
        if not checked:
            _source_check(cursor, experiment, source_sql, params)
        if is_postgres():
            # The span of the rows written comes back with them: no second read.
            cursor.execute(f"WITH written AS ({insert} RETURNING exposed_at) "
                           f"SELECT COUNT(*), MIN(exposed_at), MAX(exposed_at) FROM written", insert_params)
            added, first_at, last_at = cursor.fetchone()
        else:  # no INSERT inside WITH: the experiment's whole span, read again
            cursor.execute(insert, insert_params)
            added = max(cursor.rowcount, 0)
            span = Exposure.objects.filter(experiment=experiment).aggregate(first=Min("exposed_at"),
                                                                            last=Max("exposed_at"))
            first_at, last_at = span["first"], span["last"]
    exposure_span_widen(experiment.id, first_at, last_at)
    return added


def exposure_span_widen(experiment_id: int, first: datetime | None, last: datetime | None) -> None:
    """Take exposure times from `first` to `last` into the experiment's stored span
    (Experiment.first_exposed_at / last_exposed_at). Every writer of exposures calls it, in
    the transaction that writes them; None (no time) leaves it as it is."""
    if first is None or last is None:
        return
    Experiment.objects.filter(id=experiment_id).update(
        first_exposed_at=Least(Coalesce("first_exposed_at", Value(first)), Value(first)),
        last_exposed_at=Greatest(Coalesce("last_exposed_at", Value(last)), Value(last)),
    )


def exposures_from_rows_sql(experiment: Experiment, arm_ids: dict[str, int], rows: str, *,
                            first: bool) -> tuple[str, list]:
    """(SQL, parameters) of an INSERT of exposures from `rows`, the name of a WITH query giving
    customer_id, arm (the arm's name) and exposed_at. Arms by the ids given, not joined: for a
    writer on another connection than the transaction that made the experiment (a launch's
    ranges, campaigns/services/launch_write.py), which cannot see its arms yet. The caller
    vouches for the rows as exposures_insert_from_sql's `checked` says; `first` as there,
    and widens the experiment's span (exposure_span_widen) by the times of the rows written."""
    _require_customers(experiment)
    arm_case = "CASE w.arm " + " ".join("WHEN %s THEN %s" for _ in arm_ids) + " END"
    params = [value for name, arm_id in arm_ids.items() for value in (name, arm_id)]
    return (
        f"INSERT INTO {EXPOSURE} (experiment_id, arm_id, unit, customer_id, exposed_at, attributes, outcomes) "
        f"SELECT %s, {arm_case}, CAST(w.customer_id AS TEXT), w.customer_id, w.exposed_at, "
        f"CAST('{{}}' AS jsonb), CAST('{{}}' AS jsonb) FROM {rows} w"
        + ("" if first else " ON CONFLICT (experiment_id, unit) DO NOTHING"),
        [experiment.id, *params],
    )


def exposures_orphans_sql(customers_sql: str, params: Sequence) -> tuple[str, list]:
    """(SQL, parameters) deleting the exposures of the customers `customers_sql` selects
    (one customer_id column) in experiments that do not exist: written by a launch's ranges
    for an experiment whose own transaction never committed."""
    return (
        f"DELETE FROM {EXPOSURE} e USING ({customers_sql}) c WHERE e.customer_id = c.customer_id "
        f"AND NOT EXISTS (SELECT 1 FROM {Experiment._meta.db_table} x WHERE x.id = e.experiment_id)",
        list(params),
    )


def _source_check(cursor, experiment: Experiment, source_sql: str, params: Sequence) -> None:
    """Every arm named is the experiment's, every row names a customer and a time."""
    cursor.execute(
        f"SELECT DISTINCT s.arm FROM ({source_sql}) s LEFT JOIN {ARM} a "
        f"ON a.experiment_id = %s AND a.name = s.arm WHERE a.id IS NULL",
        [*params, experiment.id],
    )
    unknown = [r[0] for r in cursor.fetchmany(6)]
    if unknown:
        known = list(experiment.arms.values_list("name", flat=True))
        raise ExperimentError(f"unknown arm(s) {unknown[:5]} for {experiment.name!r}; its arms are {known}")
    cursor.execute(
        f"SELECT COUNT(*) FROM ({source_sql}) s LEFT JOIN {Customer._meta.db_table} c "
        f"ON c.id = s.customer_id WHERE c.id IS NULL OR s.exposed_at IS NULL",
        list(params),
    )
    missing = cursor.fetchone()[0]
    if missing:
        raise ExperimentError(f"{missing:,} exposure row(s) name no existing customer or have no exposure time")


@transaction.atomic
def exposures_insert_from_sql(experiment: Experiment, sql: str, params: Sequence = (), *, checked: bool = False,
                              first: bool = False) -> int:
    """Set-based exposures for campaign launch: ``sql`` is a SELECT whose columns are named
    customer_id, arm (the arm's name) and exposed_at, e.g. over the send ledger, holdout
    rows included. Returns the number of new exposures; units already exposed are skipped.

    ``checked``: the caller vouches that every row names an existing customer, a time and
    one of the experiment's arms (launch, which has just written them so): the two scans
    that would check it are skipped (at a million rows they cost as much as the insert).
    ``first``: the experiment was created in this transaction and holds no exposure, so
    the rows go in with a plain INSERT (no ON CONFLICT check of the unique index per row)."""
    _require_customers(experiment)
    return _insert_select(experiment, sql, params, checked=checked, first=first)


@transaction.atomic
def exposures_record(experiment: Experiment, rows: Iterable[tuple[int, str, datetime]]) -> int:
    """Exposures from Python: (customer id, arm name, exposed_at) tuples, streamed through a
    staging table (COPY on PostgreSQL). Returns the number of new exposures."""
    _require_customers(experiment)
    columns = [("customer_id", "bigint"), ("arm", "text"), ("exposed_at", "timestamptz")]
    with staging_table(STAGING, columns) as staging:
        staging.copy_rows(rows)
        return _insert_select(experiment, f"SELECT customer_id, arm, exposed_at FROM {staging.name}", [])
