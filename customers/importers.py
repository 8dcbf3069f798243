"""CSV (and JSON batch) imports of customers, orders and events.

One path for every kind: parse and validate each record in Python (streaming, so memory
stays flat), load the good ones into a temporary staging table (COPY on PostgreSQL,
batched inserts on SQLite), then let SQL do the set-based work: duplicate ids inside the
file, unknown customers, and one INSERT ... ON CONFLICT upsert that leaves unchanged rows
alone, so importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from zoneinfo import available_timezones

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import parsing
from core.bulk import staging_table
from core.db import is_postgres
from core.parsing import FileError, ValueProblem

from .models import AttributeDefinition, Customer, Event, Order

TYPE_SAMPLE_ROWS = 1000
STAGING = "import_staging"
TIME_ZONES = available_timezones()


class ImportFailed(Exception):
    """The import as a whole was refused; nothing was written."""


@dataclass
class ImportResult:
    kind: str
    source: str
    rows: int = 0
    imported: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects_path: str | None = None
    encoding: str = ""
    delimiter: str = ""
    attributes: dict = field(default_factory=dict)
    seconds: float = 0.0
    reject_samples: list = field(default_factory=list)  # the first 100: line and reason

    def summary(self) -> str:
        line = (
            f"{self.kind} from {self.source}: {self.rows:,} rows read, {self.imported:,} imported "
            f"({self.created:,} new, {self.updated:,} updated, {self.unchanged:,} unchanged), "
            f"{self.rejected:,} rejected"
        )
        if self.rejects_path:
            line += f" (reasons in {self.rejects_path})"
        return line + f" in {self.seconds:.1f}s"

    def as_dict(self) -> dict:
        return asdict(self)


class RejectWriter:
    """Writes rejected rows with line number and reason; the file only exists if needed."""

    def __init__(self, path: Path | None, columns: list[str]):
        self.path = path
        self.columns = columns
        self.count = 0
        self.samples: list[dict] = []  # the first few, for API answers and the UI
        self._fh = None
        self._writer = None

    def write(self, line: int, reason: str, record: dict | None) -> None:
        self.count += 1
        if len(self.samples) < 100:
            self.samples.append({"line": line, "reason": reason})
        if self.path is None:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._fh)
            self._writer.writerow(["line", "reason", *self.columns])
        values = [] if record is None else ["" if record.get(c) is None else record.get(c) for c in self.columns]
        self._writer.writerow([line, reason, *values])

    def close(self) -> None:
        if self._fh:
            self._fh.close()


# --- What each kind of file holds ------------------------------------------------------


@dataclass
class Column:
    name: str  # our field name, and the default source column
    parse: Callable[[str], object]
    required: bool = False
    sql_type: str = "text"
    default: object = ""


@dataclass
class Spec:
    kind: str
    model: type
    key: list[str]  # the conflict target in the real table
    columns: list[Column]
    extra_column: str  # where unmapped columns go: attributes or properties
    customer_ref: bool  # rows name a customer by external id


def _time_zone(text: str) -> str:
    value = text.strip()
    if value not in TIME_ZONES:
        raise ValueProblem(f"{text!r} is not an IANA time zone (e.g. Europe/Paris)")
    return value


def _amount(text: str):
    value = parsing.parse_decimal(text)
    if value < 0:
        raise ValueProblem(f"{text!r} is negative; refunds belong in their own column or file")
    if abs(value) >= 10**10:
        raise ValueProblem(f"{text!r} is too large for an order amount")
    return value


def _currency(text: str) -> str:
    value = text.strip().upper()
    if len(value) != 3 or not value.isalpha():
        raise ValueProblem(f"{text!r} is not a 3-letter currency code")
    return value


def _bounded(limit: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        if len(value) > limit:
            raise ValueProblem(f"is {len(value)} characters long, at most {limit} allowed")
        return value

    return parse


SPECS = {
    "customers": Spec(
        kind="customers",
        model=Customer,
        key=["external_id"],
        columns=[
            Column("external_id", _bounded(128), required=True),
            Column("email", lambda t: parsing.parse_email(t) if t.strip() else ""),
            Column("name", _bounded(200)),
            Column("country", _bounded(64)),
            Column("time_zone", lambda t: _time_zone(t) if t.strip() else "UTC", default="UTC"),
            Column("signup_date", parsing.parse_date, sql_type="date", default=None),
        ],
        extra_column="attributes",
        customer_ref=False,
    ),
    "orders": Spec(
        kind="orders",
        model=Order,
        key=["external_id"],
        columns=[
            Column("external_id", _bounded(128), required=True),
            Column("customer", _bounded(128), required=True),
            Column("amount", _amount, required=True, sql_type="numeric(12,2)"),
            Column("currency", _currency, default="USD"),
            Column("ordered_at", parsing.parse_datetime, required=True, sql_type="timestamptz"),
        ],
        extra_column="properties",
        customer_ref=True,
    ),
    "events": Spec(
        kind="events",
        model=Event,
        key=["customer_id", "kind", "occurred_at"],
        columns=[
            Column("customer", _bounded(128), required=True),
            Column("kind", _bounded(64), required=True),
            Column("occurred_at", parsing.parse_datetime, required=True, sql_type="timestamptz"),
        ],
        extra_column="properties",
        customer_ref=True,
    ),
}


# --- Entry points ----------------------------------------------------------------------


def import_file(
    kind: str,
    path: Path | str,
    *,
    mapping: dict[str, str] | None = None,
    types: dict[str, str] | None = None,
    id_from_row: bool = False,
    id_prefix: str = "",
    currency: str | None = None,
    rejects_path: Path | None = None,
    progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import a CSV file of customers, orders or events; see the module docstring.

    `progress` draws a bar on the terminal; `on_progress(bytes_read, total_bytes)` is
    called every few thousand rows, for a web page watching an import job.
    """
    path = Path(path)
    try:
        source = parsing.open_csv(path)
    except FileError as exc:
        raise ImportFailed(str(exc)) from None
    if rejects_path is not None:
        rejects_path = Path(rejects_path)
    else:
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        rejects_path = settings.VAR_DIR / "rejects" / f"{path.stem}-{stamp}.rejects.csv"
    bar = _progress_bar(source.size, path.name) if progress else None
    try:
        header, records = parsing.read_records(source.stream, source.delimiter)
        if bar is not None or on_progress is not None:
            records = _with_progress(records, source.raw, source.size, bar, on_progress)
        result = import_records(
            kind,
            header,
            records,
            source_name=str(path),
            mapping=mapping,
            types=types,
            id_from_row=id_from_row,
            id_prefix=id_prefix,
            currency=currency,
            rejects_path=rejects_path,
        )
    except FileError as exc:
        raise ImportFailed(f"{path}: {exc}") from None
    finally:
        source.raw.close()
        if bar is not None:
            bar.close()
    result.encoding = source.encoding
    result.delimiter = source.delimiter
    return result


def import_records(
    kind: str,
    header: list[str],
    records: Iterable[tuple[int, dict | str]],
    *,
    source_name: str,
    mapping: dict[str, str] | None = None,
    types: dict[str, str] | None = None,
    id_from_row: bool = False,
    id_prefix: str = "",
    currency: str | None = None,
    rejects_path: Path | None = None,
) -> ImportResult:
    """Import already-split records: (line number, {column: text}) pairs.

    The REST batch endpoint calls this with JSON objects, the CSV path with file rows.
    """
    spec = SPECS[kind]
    started = time.monotonic()
    result = ImportResult(kind=kind, source=source_name)
    sources = _resolve_columns(spec, header, mapping or {}, id_from_row)
    extra = [h for h in header if h not in sources.values()]
    rejects = RejectWriter(rejects_path, header)
    records = iter(records)
    head = [next(records, None) for _ in range(TYPE_SAMPLE_ROWS)]
    head = [r for r in head if r is not None]
    try:
        with transaction.atomic():
            extra_types = _extra_types(spec, extra, head, types or {})
            result.attributes = extra_types
            defaults = {"currency": currency.upper()} if currency else {}
            rows = _parse_rows(spec, sources, extra_types, itertools.chain(head, records), rejects, result, id_prefix, defaults)
            columns = _staging_columns(spec)
            with staging_table(STAGING, columns) as stage:
                stage.copy_rows(rows, [name for name, _ in columns if name not in ("customer_id", "reject")])
                _reject_in_sql(spec, sources, rejects)
                result.created, changed = _upsert(spec, sources)
                result.imported = stage.count()
            result.updated = changed - result.created
            result.unchanged = result.imported - changed
    finally:
        rejects.close()
    result.rejected = rejects.count
    result.rejects_path = str(rejects.path) if rejects.count and rejects.path else None
    result.seconds = round(time.monotonic() - started, 3)
    result.reject_samples = rejects.samples
    return result


# --- Steps -----------------------------------------------------------------------------


def _resolve_columns(spec: Spec, header: list[str], mapping: dict[str, str], id_from_row: bool) -> dict[str, str]:
    """Our field name -> the file's column, for the fields the file has."""
    known = {c.name for c in spec.columns}
    unknown_targets = sorted(set(mapping) - known)
    if unknown_targets:
        raise ImportFailed(
            f"--map names unknown field(s) {', '.join(unknown_targets)}; "
            f"{spec.kind} fields are: {', '.join(sorted(known))}"
        )
    by_lower = {h.lower(): h for h in header}
    sources: dict[str, str] = {}
    for column in spec.columns:
        wanted = mapping.get(column.name, column.name)
        if wanted in header:
            sources[column.name] = wanted
        elif wanted.lower() in by_lower:
            sources[column.name] = by_lower[wanted.lower()]
    if id_from_row:
        sources.pop("external_id", None)
    missing = [
        c.name
        for c in spec.columns
        if c.required and c.name not in sources and not (id_from_row and c.name == "external_id")
    ]
    if missing:
        found = ", ".join(repr(h) for h in header[:12]) + (" ..." if len(header) > 12 else "")
        hint = ""
        if len(header) == 1 and re.search(r"[^\w\s]", header[0]):
            hint = " The header was read as a single column: is the delimiter one of , ; | or tab?"
        described = ", ".join(
            f"'{name}'" + (f" (mapped from '{mapping[name]}')" if name in mapping else "") for name in missing
        )
        extra = " or use --id-from-row" if "external_id" in missing else ""
        raise ImportFailed(
            f"the header lacks the required column {described}; found {found}.{hint} "
            f"Rename the column, map it with --map FIELD=COLUMN{extra}."
        )
    return sources


def _extra_types(spec: Spec, extra: list[str], head: list, overrides: dict[str, str]) -> dict[str, str]:
    """The type of every extra column: stored definitions win, then overrides, then inference."""
    bad = {k: v for k, v in overrides.items() if v not in parsing.ATTRIBUTE_PARSERS}
    if bad:
        raise ImportFailed(
            f"unknown type(s) {bad}; use one of {', '.join(parsing.ATTRIBUTE_PARSERS)}"
        )
    stored = {}
    if spec.kind == "customers":
        stored = dict(AttributeDefinition.objects.filter(name__in=extra).values_list("name", "type"))
    types = {}
    for column in extra:
        if column in stored:
            types[column] = stored[column]
        elif column in overrides:
            types[column] = overrides[column]
        else:
            types[column] = parsing.infer_type(r[1].get(column, "") for r in head if isinstance(r[1], dict))
    if spec.kind == "customers":
        AttributeDefinition.objects.bulk_create(
            [AttributeDefinition(name=c, type=t) for c, t in types.items() if c not in stored],
            ignore_conflicts=True,
        )
    return types



def _parse_rows(
    spec: Spec,
    sources: dict[str, str],
    extra_types: dict[str, str],
    records: Iterable[tuple[int, dict | str]],
    rejects: RejectWriter,
    result: ImportResult,
    id_prefix: str,
    defaults: dict,
) -> Iterator[tuple]:
    """Staging tuples for the valid records; every other record goes to rejects."""
    # The per-column decisions are made once here, not once per row: this loop is the
    # importer's hot path (a million rows means eight million values).
    plan = []
    for column in spec.columns:
        source = sources.get(column.name)
        generated = column.name == "external_id" and source is None
        default = defaults.get(column.name, column.default)
        plan.append((source, column.parse, column.required, default, generated))
    extra_plan = [(name, parsing.ATTRIBUTE_PARSERS[kind], kind) for name, kind in extra_types.items()]
    dumps = json.dumps
    for line, record in records:
        result.rows += 1
        if isinstance(record, str):
            rejects.write(line, f"line {line}: row {record}", None)
            continue
        values: list = [line]
        try:
            for source, parse, required, default, generated in plan:
                if generated:
                    values.append(f"{id_prefix}{line}")
                    continue
                text = record.get(source) if source else None
                if not text or text.isspace():
                    if required:
                        raise ValueProblem(f"column '{source}' is blank")
                    values.append(default)
                    continue
                try:
                    values.append(parse(text))
                except ValueProblem as exc:
                    raise ValueProblem(f"column '{source}': {exc}") from None
            extras = {}
            for name, parse, kind in extra_plan:
                text = record.get(name)
                if text and not text.isspace():
                    try:
                        extras[name] = parse(text)
                    except ValueProblem as exc:
                        raise ValueProblem(f"column '{name}' ({kind}): {exc}") from None
        except ValueProblem as exc:
            rejects.write(line, f"line {line}: {exc}", record)
            continue
        values.append(dumps(extras))
        yield tuple(values)


# --- SQL -------------------------------------------------------------------------------


def _staging_columns(spec: Spec) -> list[tuple[str, str]]:
    columns = [("line", "integer")]
    for column in spec.columns:
        name = "customer_ext" if column.name == "customer" else column.name
        columns.append((name, column.sql_type))
    columns.append(("extra", "jsonb"))
    if spec.customer_ref:
        columns.append(("customer_id", "bigint"))
    columns.append(("reject", "text"))
    return columns


def _reject_in_sql(spec: Spec, sources: dict[str, str], rejects: RejectWriter) -> None:
    """Duplicates inside the file and unknown customers, found set-based."""
    with connection.cursor() as cursor:
        if spec.customer_ref:
            customers = Customer._meta.db_table
            cursor.execute(
                f"UPDATE {STAGING} SET customer_id = c.id FROM {customers} c "
                f"WHERE c.external_id = {STAGING}.customer_ext"
            )
            cursor.execute(
                f"UPDATE {STAGING} SET reject = 'unknown customer ''' || customer_ext || '''' "
                "WHERE customer_id IS NULL"
            )
        key = [k if k != "customer_id" else "customer_ext" for k in spec.key]
        keys = ", ".join(key)
        joined = " AND ".join(f"f.{k} = {STAGING}.{k}" for k in key)
        what = "external_id" if key == ["external_id"] else "event (same customer, kind and time)"
        cursor.execute(
            f"UPDATE {STAGING} SET reject = 'duplicate {what} in the file, first on line ' || f.first_line "
            f"FROM (SELECT {keys}, MIN(line) AS first_line FROM {STAGING} WHERE reject IS NULL "
            f"GROUP BY {keys} HAVING COUNT(*) > 1) f "
            f"WHERE {joined} AND {STAGING}.line <> f.first_line AND {STAGING}.reject IS NULL"
        )
        shown = [c.name if c.name != "customer" else "customer_ext" for c in spec.columns]
        cursor.execute(
            f"SELECT line, reject, {', '.join(shown)} FROM {STAGING} WHERE reject IS NOT NULL ORDER BY line"
        )
        # Written under the file's own column names, like the rows rejected while parsing.
        labels = [sources.get(c.name, c.name) for c in spec.columns]
        while batch := cursor.fetchmany(2000):
            for line, reason, *values in batch:
                rejects.write(line, f"line {line}: {reason}", dict(zip(labels, values)))
        cursor.execute(f"DELETE FROM {STAGING} WHERE reject IS NOT NULL")


def _upsert(spec: Spec, sources: dict[str, str]) -> tuple[int, int]:
    """One INSERT ... ON CONFLICT for the whole file: (rows created, rows created or changed)."""
    table = spec.model._meta.db_table
    pg = is_postgres()
    now = timezone.now()
    fields = [c.name for c in spec.columns if c.name != "customer"]
    if spec.customer_ref:
        fields.append("customer_id")
    # Only the columns the file has are overwritten; a file without emails keeps them.
    updated = [f for f in fields if f in sources and f not in spec.key]
    extra = spec.extra_column
    if pg:
        merged = f"{table}.{extra} || EXCLUDED.{extra}"
        extra_changed = f"NOT ({table}.{extra} @> EXCLUDED.{extra})"
    else:
        merged = f"json_patch({table}.{extra}, EXCLUDED.{extra})"
        extra_changed = f"json_patch({table}.{extra}, EXCLUDED.{extra}) <> json({table}.{extra})"
    set_clauses = [f"{f} = EXCLUDED.{f}" for f in updated] + [f"{extra} = {merged}"]
    changed = [f"{table}.{f} IS DISTINCT FROM EXCLUDED.{f}" for f in updated] + [extra_changed]
    insert_cols = fields + [extra]
    select_cols = fields + ["extra"]
    timestamps = spec.model is Customer
    if timestamps:
        set_clauses.append("updated_at = EXCLUDED.updated_at")
        insert_cols += ["created_at", "updated_at"]
        select_cols += ["%s", "%s"]
    params = [now, now] if timestamps else []
    conflict = ", ".join(spec.key)
    key_match = " AND ".join(f"t.{k} = s.{k}" for k in spec.key)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {STAGING} s WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {key_match})")
        created = cursor.fetchone()[0]
        # "WHERE true" keeps SQLite from reading ON CONFLICT as a join constraint.
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(insert_cols)}) "
            f"SELECT {', '.join(select_cols)} FROM {STAGING} WHERE true "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(set_clauses)} "
            f"WHERE {' OR '.join(changed)}",
            params,
        )
        return created, cursor.rowcount


# --- Progress --------------------------------------------------------------------------


def _progress_bar(total: int, name: str):
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=name, leave=False)


def _with_progress(records: Iterator, raw, total: int, bar, on_progress) -> Iterator:
    def report() -> None:
        done = raw.tell()
        if bar is not None:
            bar.update(done - bar.n)
        if on_progress is not None:
            on_progress(done, total)

    for count, record in enumerate(records, 1):
        if count % 5000 == 0:
            report()
        yield record
    report()
