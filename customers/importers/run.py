"""The entry points: a CSV file (`import_file`) or already-split records (`import_records`)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypedDict, Unpack

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import parsing
from core.bulk import staging_table
from core.db import statistics_refresh_queue
from core.parsing import FileError
from core.rejects import RejectWriter

from .columns import columns_resolve, extra_columns, extra_types
from .direct import direct_fits, direct_load
from .indexes import first_load_plan, indexes_deferred, load_plan
from .result import ImportFailed, ImportResult
from .rows import rows_parse
from .specs import SPECS, Spec
from .staging import STAGING, KeyWatch, rejects_find, staged_upsert, staging_analyze, staging_columns

TYPE_SAMPLE_ROWS = 1000


class ImportOptions(TypedDict, total=False):
    """How to read a file, beyond its own header (see `import_records`)."""

    mapping: dict[str, str]  # our field -> the file's column
    types: dict[str, str]  # extra column -> attribute type, instead of inferring it
    id_from_row: bool  # no id column: a row's id is its line number
    id_prefix: str
    currency: str | None  # for order rows without one
    defer_indexes: bool | None  # rebuild the secondary indexes after the load (None: decide)


def import_file(
    kind: str,
    path: Path | str,
    *,
    rejects_path: Path | None = None,
    progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    **options: Unpack[ImportOptions],
) -> ImportResult:
    """Import a CSV file of customers, orders or events; `options` as `import_records` takes them.

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
            rejects_path=rejects_path,
            **options,
        )
    except FileError as exc:
        raise ImportFailed(str(exc)) from None
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
    defer_indexes: bool | None = None,
) -> ImportResult:
    """Import already-split records: (line number, {column: text}) pairs.

    The REST batch endpoint calls this with JSON objects, the CSV path with file rows.
    `defer_indexes` forces the choice `indexes.load_plan` makes by default: whether the
    table's secondary indexes are rebuilt after the upsert instead of kept.
    """
    spec = SPECS[kind]
    started = time.monotonic()
    result = ImportResult(kind=kind, source=source_name)
    sources = columns_resolve(spec, header, mapping or {}, id_from_row)
    extra, result.columns_ignored = extra_columns(spec, header, sources)
    rejects = RejectWriter(rejects_path, header)
    records = iter(records)
    head = [next(records, None) for _ in range(TYPE_SAMPLE_ROWS)]
    head = [r for r in head if r is not None]
    try:
        with transaction.atomic():
            typed, new = extra_types(spec, extra, head, types or {})
            result.attributes = typed
            result.new_attributes = {c: typed[c] for c in new}
            defaults = {"currency": currency.upper()} if currency else {}
            rows = rows_parse(spec, sources, typed, itertools.chain(head, records), rejects, result, id_prefix, defaults)
            table = spec.model._meta.db_table
            first = first_load_plan(table, defer_indexes) if direct_fits(spec, len(head)) else None
            if first is not None:
                with indexes_deferred(table, first):
                    result.imported = result.created = direct_load(spec, sources, rows, rejects)
            else:
                result.imported, result.created, changed = _staged_load(spec, sources, rows, rejects, defer_indexes)
                result.updated = changed - result.created
                result.unchanged = result.imported - changed
    finally:
        rejects.close()
    # A report or a feature refresh planned next must see the new rows; analyzed by a worker.
    statistics_refresh_queue([spec.model], result.created + result.updated)
    result.rejected = rejects.count
    result.rejects_path = str(rejects.path) if rejects.count and rejects.path else None
    result.seconds = round(time.monotonic() - started, 3)
    result.reject_samples = rejects.samples
    return result


def _staged_load(
    spec: Spec, sources: dict[str, str], rows: Iterator[tuple], rejects: RejectWriter, defer_indexes: bool | None,
) -> tuple[int, int, int]:
    """Through the staging table: (rows imported, created, created or changed)."""
    columns = staging_columns(spec)
    keys = KeyWatch(spec)
    with staging_table(STAGING, columns) as stage:
        stage.copy_rows(
            keys.watch(rows), [name for name, _ in columns if name not in ("customer_id", "reject")],
            analyze=False,
        )
        if keys.repeated or spec.customer_ref:
            staging_analyze(spec)  # for the joins rejects_find makes
        imported = keys.rows - rejects_find(spec, sources, rejects, repeated_keys=keys.repeated)
        table = spec.model._meta.db_table
        plan = load_plan(table, imported, defer_indexes)
        with indexes_deferred(table, plan):
            created, changed = staged_upsert(spec, sources, into_empty=plan.empty)
    return imported, created, changed


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
