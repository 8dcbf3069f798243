"""import_experiment: per-unit results of a test run elsewhere, from CSV.

The same path as the customer importers (customers/importers/): read and type each
record in Python with core/parsing.py, stream the good ones into a temporary staging
table (core.bulk.staging_table: COPY on PostgreSQL), let SQL find duplicate units, then
create the experiment, its arms (one per distinct label of the arm column) and one
exposure per unit in one INSERT ... SELECT. Every rejected record is reported with its line number and reason.

Re-importing a name that exists is refused, saying so, unless ``replace`` is given: then
the old experiment (its exposures, reports and uplift models) is replaced in the same
transaction, so a failed import leaves the old one in place.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import parsing
from core.bulk import Staging, staging_table
from core.db import is_postgres
from core.parsing import FileError, ValueProblem
from core.rejects import RejectWriter

from . import outcomes
from .kinds import KINDS, finite_number, quantile_metric_name
from .models import Arm, Experiment, Exposure, Metric
from .services.definitions import ExperimentError, MetricDefinition, experiment_create, experiment_delete
from .services.reports import report_refresh_enqueue

STAGING = "experiment_import_staging"
STAGING_COLUMNS = [("line", "integer"), ("unit", "text"), ("arm", "text"), ("attributes", "jsonb"),
                   ("outcomes", "jsonb"), ("reject", "text")]
TYPE_SAMPLE_ROWS = 1000
MAX_ARMS = 20
KIND_OPTIONS = "|".join(KINDS)


class ImportFailed(Exception):
    """The import as a whole was refused; nothing was written."""


@dataclass
class ExperimentImportResult:
    experiment: str
    experiment_id: int | None = None
    source: str = ""
    action: str = "created"  # or "replaced"
    rows: int = 0
    imported: int = 0
    rejected: int = 0
    unit: str = ""
    arms: list = field(default_factory=list)  # name, control, n, weight, means per metric
    metrics: list = field(default_factory=list)  # name, kind, primary
    attributes: dict = field(default_factory=dict)  # other columns and their types
    covariate: str = ""
    missing: dict = field(default_factory=dict)  # outcome column -> rows with it blank
    rejects_path: str | None = None
    reject_samples: list = field(default_factory=list)
    encoding: str = ""
    delimiter: str = ""
    seconds: float = 0.0

    def summary(self) -> str:
        arms = ", ".join(f"{a['name']}{' (control)' if a['control'] else ''} {a['n']:,}" for a in self.arms)
        line = (f"experiment {self.experiment!r} {self.action} from {self.source}: {self.rows:,} rows read, "
                f"{self.imported:,} units imported, {self.rejected:,} rejected; arms: {arms}")
        if self.rejects_path:
            line += f" (reasons in {self.rejects_path})"
        if self.missing:
            line += "; blank outcomes, left out of that metric only: " + ", ".join(
                f"{column} {count:,}" for column, count in self.missing.items())
        return line + f" in {self.seconds:.1f}s"

    def as_dict(self) -> dict:
        return asdict(self)


def parse_metric_option(text: str) -> tuple[str, str]:
    """'COL:binary' -> ('COL', 'binary'); the kinds are experiments.kinds.KINDS."""
    column, sep, kind = text.rpartition(":")
    kind = kind.strip().lower()
    if not sep or not column.strip() or kind not in KINDS:
        raise ImportFailed(f"--metric {text!r}: expected COLUMN:KIND, KIND one of {', '.join(KINDS)}")
    column = column.strip()
    if KINDS[kind].units_only and not column.startswith(f"{kind}("):
        column = quantile_metric_name(kind, column)  # spend:median is the metric median(spend)
    try:
        KINDS[kind].columns(column)
    except ValueError as exc:
        raise ImportFailed(f"--metric {text!r}: {exc}") from None
    return column, kind


def experiment_import(
    path: Path | str,
    *,
    name: str,
    arm_column: str,
    control: str,
    metrics: Sequence[tuple[str, str] | str],
    unit_column: str | None = None,
    primary: str | None = None,
    covariate: str | None = None,
    weights: dict[str, float] | None = None,
    replace: bool = False,
    mode: str = Experiment.Mode.FIXED,
    alpha: float = 0.05,
    rejects_path: Path | None = None,
    refuse_missing: bool = False,
    prior: dict | None = None,
) -> ExperimentImportResult:
    """Import a file of units: arm label, outcome columns and any other columns (kept as
    typed unit attributes). Without ``unit_column`` the unit is the row's number in the
    data (1 for the first row after the header). A blank outcome is missing for that metric
    only (counted per column in ``missing``), or rejects the row with ``refuse_missing``."""
    started = time.monotonic()
    path = Path(path)
    metrics = [parse_metric_option(m if isinstance(m, str) else f"{m[0]}:{m[1]}") for m in metrics]
    if not metrics:
        raise ImportFailed(f"name at least one outcome with --metric COLUMN:{KIND_OPTIONS}")
    if primary is not None and primary not in [m[0] for m in metrics]:
        raise ImportFailed(f"--primary {primary!r} is not one of the --metric columns {[m[0] for m in metrics]}")
    try:
        source = parsing.open_csv(path)
    except FileError as exc:
        raise ImportFailed(str(exc)) from None
    if rejects_path is None:
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        rejects_path = settings.VAR_DIR / "rejects" / f"{path.stem}-{stamp}.rejects.csv"
    result = ExperimentImportResult(experiment=name, source=str(path), encoding=source.encoding,
                                    delimiter=source.delimiter, unit=unit_column or "row")
    try:
        header, records = parsing.read_records(source.stream, source.delimiter)
        rejects = RejectWriter(rejects_path, header)
        try:
            _import(header, records, result, rejects, name=name, arm_column=arm_column, control=control,
                    metrics=metrics, unit_column=unit_column, primary=primary, covariate=covariate,
                    weights=weights or {}, replace=replace, mode=mode, alpha=alpha,
                    refuse_missing=refuse_missing, prior=prior)
        finally:
            rejects.close()
    except FileError as exc:
        raise ImportFailed(f"{path}: {exc}") from None
    finally:
        source.raw.close()
    result.rejected = rejects.count
    result.rejects_path = str(rejects.path) if rejects.count else None
    result.reject_samples = rejects.samples
    result.seconds = round(time.monotonic() - started, 3)
    return result


def covariate_columns(covariate: str | None) -> list[str]:
    """CUPED's pre-period columns: one for continuous metrics, or PRE_NUMERATOR/PRE_DENOMINATOR
    for ratio metrics (their numerator and denominator before the test)."""
    if not covariate:
        return []
    columns = [c.strip() for c in covariate.split("/")]
    if len(columns) > 2 or not all(columns):
        raise ImportFailed(f"--covariate is a column, or PRE_NUMERATOR/PRE_DENOMINATOR for ratio metrics; "
                           f"not {covariate!r}")
    return columns


def _check_header(header: list[str], arm_column: str, unit_column: str | None, metrics, covariate) -> None:
    wanted = [("--arm", arm_column)] + [("--metric", c) for m in metrics for c in KINDS[m[1]].columns(m[0])]
    if unit_column:
        wanted.append(("--unit", unit_column))
    for column in covariate_columns(covariate):
        wanted.append(("--covariate", column))
    missing = [f"{option} {column!r}" for option, column in wanted if column not in header]
    if missing:
        found = ", ".join(repr(h) for h in header[:15]) + (" ..." if len(header) > 15 else "")
        raise ImportFailed(f"the header lacks {', '.join(missing)}; found {found}")
    # An outcome column may serve several metrics (spend, and spend/visit) when they read it
    # alike; any other role it plays must be its only one.
    numeric = {c for m in metrics for c in KINDS[m[1]].columns(m[0]) if KINDS[m[1]].parse is finite_number}
    used = [c for option, c in wanted if option != "--metric" or c not in numeric]
    used += sorted(numeric)
    repeated = sorted({c for c in used if used.count(c) > 1})
    if repeated:
        raise ImportFailed(f"column(s) {repeated} given for more than one role")


def _import(header, records, result: ExperimentImportResult, rejects: RejectWriter, *, name, arm_column,
            control, metrics, unit_column, primary, covariate, weights, replace, mode, alpha,
            refuse_missing, prior) -> None:
    _check_header(header, arm_column, unit_column, metrics, covariate)
    roles = {arm_column, unit_column, *covariate_columns(covariate),
             *(c for m in metrics for c in KINDS[m[1]].columns(m[0]))}
    extra = [h for h in header if h not in roles]
    records = iter(records)
    head = [r for r in (next(records, None) for _ in range(TYPE_SAMPLE_ROWS)) if r is not None]
    types = {c: parsing.infer_type(r[1].get(c, "") for r in head if isinstance(r[1], dict)) for c in extra}
    result.attributes = types
    result.covariate = covariate or ""

    with transaction.atomic():
        existing = Experiment.objects.filter(name=name).first()
        if existing is not None:
            if not replace:
                units = Exposure.objects.filter(experiment=existing).count()
                raise ImportFailed(
                    f"an experiment named {name!r} already exists (id {existing.id}, {units:,} units, "
                    f"created {existing.created_at:%Y-%m-%d %H:%M}); refused, nothing was changed. "
                    "Import under another --name, or pass --replace to replace it with this file.")
            experiment_delete(existing)
            result.action = "replaced"
        with staging_table(STAGING, STAGING_COLUMNS, indexes=["unit"]) as staging:
            rows = _rows(itertools.chain(head, records), result, rejects, unit_column=unit_column,
                         arm_column=arm_column, metrics=metrics, covariate=covariate, types=types,
                         refuse_missing=refuse_missing)
            staging.copy_rows(rows, ["line", "unit", "arm", "attributes", "outcomes"])
            _reject_duplicates(staging, rejects, unit_column, arm_column)
            arms = _staged_arms(staging)
            if not arms:
                raise ImportFailed("no valid rows: nothing to import" +
                                   (f" (see {rejects.path})" if rejects.count and rejects.path else ""))
            if len(arms) > MAX_ARMS:
                raise ImportFailed(f"column {arm_column!r} has {len(arms)} distinct values; is it the arm column?")
            if control not in arms:
                raise ImportFailed(f"--control {control!r} is not a value of column {arm_column!r}; "
                                   f"its values are {sorted(arms)}")
            unknown = sorted(set(weights) - set(arms))
            if unknown:
                raise ImportFailed(f"--weight names unknown arm(s) {unknown}; arms are {sorted(arms)}")
            order = [control] + sorted(a for a in arms if a != control)
            primary_name = primary or metrics[0][0]
            ordered = sorted(metrics, key=lambda m: m[0] != primary_name)
            definitions = [MetricDefinition(c, k, Metric.Source.IMPORTED) for c, k in ordered]
            try:
                experiment = experiment_create(
                    name, [(a, float(weights.get(a, 1.0)), a == control) for a in order],
                    primary_metric=definitions[0], secondary_metrics=definitions[1:],
                    source=Experiment.Source.IMPORTED, mode=mode, alpha=alpha, covariate=covariate or "",
                    unit_label=unit_column or "row", retention_event="", retention_days=[], prior=prior,
                    import_info={"file": result.source, "attributes": types, "arm_column": arm_column,
                                 "imported_at": timezone.now().isoformat()},
                )
            except ExperimentError as exc:
                raise ImportFailed(str(exc)) from None
            result.imported = _insert(staging, experiment)
        result.experiment_id = experiment.id
        result.metrics = [{"name": d.name, "kind": d.kind, "primary": i == 0} for i, d in enumerate(definitions)]
        result.arms = _arm_summary(experiment)
    report_refresh_enqueue(experiment)


def _rows(records, result, rejects, *, unit_column, arm_column, metrics, covariate, types,
          refuse_missing=False) -> Iterator[tuple]:
    """Staging tuples for valid records; each invalid one goes to rejects with its reason."""
    for line, record in records:
        result.rows += 1
        if isinstance(record, str):
            rejects.write(line, f"line {line}: row {record}", None)
            continue
        try:
            unit = record[unit_column].strip() if unit_column else str(result.rows)
            if not unit:
                raise ValueProblem(f"column '{unit_column}' (unit) is blank")
            if len(unit) > 128:
                raise ValueProblem(f"column '{unit_column}' (unit) is longer than 128 characters")
            arm = record[arm_column].strip()
            if not arm:
                raise ValueProblem(f"column '{arm_column}' (arm) is blank")
            if len(arm) > 100:
                raise ValueProblem(f"column '{arm_column}' (arm) is longer than 100 characters")
            values, blank = {}, set()
            for name, kind in metrics:
                for column in KINDS[kind].columns(name):
                    if column in values or column in blank:
                        continue  # read once for every metric that uses it
                    text = record[column]
                    if not text.strip():
                        if refuse_missing:
                            raise ValueProblem(f"column '{column}' ({kind} outcome) is blank")
                        result.missing[column] = result.missing.get(column, 0) + 1
                        blank.add(column)
                        continue  # missing for this metric only: the unit stays in the others
                    try:
                        values[column] = KINDS[kind].parse(text)
                    except ValueProblem as exc:
                        raise ValueProblem(f"column '{column}' ({kind} outcome): {exc}") from None
            attributes = {}
            for column in covariate_columns(covariate):
                try:
                    attributes[column] = finite_number(record[column])
                except ValueProblem as exc:
                    raise ValueProblem(f"column '{column}' (covariate): {exc}") from None
            for column, kind in types.items():
                try:
                    value = parsing.parse_attribute(kind, record.get(column) or "")
                except ValueProblem as exc:
                    raise ValueProblem(f"column '{column}' ({kind}): {exc}") from None
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    try:
                        finite_number(str(value))
                    except ValueProblem as exc:
                        raise ValueProblem(f"column '{column}' ({kind}): {exc}") from None
                if value is not None:
                    attributes[column] = value
        except ValueProblem as exc:
            rejects.write(line, f"line {line}: {exc}", record)
            continue
        yield line, unit, arm, json.dumps(attributes), json.dumps(values)


# --------------------------------------------------------------------------- SQL


def _reject_duplicates(staging: Staging, rejects: RejectWriter, unit_column: str | None, arm_column: str) -> None:
    """A unit twice in the file: the first row stands, later ones are reported by line."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {staging.name} SET reject = 'duplicate unit ''' || {staging.name}.unit || ''', first on line ' "
            f"|| f.first_line FROM (SELECT unit, MIN(line) AS first_line FROM {staging.name} GROUP BY unit "
            f"HAVING COUNT(*) > 1) f WHERE f.unit = {staging.name}.unit AND {staging.name}.line <> f.first_line"
        )
        cursor.execute(f"SELECT line, reject, unit, arm FROM {staging.name} WHERE reject IS NOT NULL ORDER BY line")
        for line, reason, unit, arm in cursor.fetchall():
            rejects.write(line, f"line {line}: {reason}", {unit_column or "": unit, arm_column: arm})
        cursor.execute(f"DELETE FROM {staging.name} WHERE reject IS NOT NULL")


def _staged_arms(staging: Staging) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT arm, COUNT(*) FROM {staging.name} GROUP BY arm")
        return dict(cursor.fetchall())


def _insert(staging: Staging, experiment: Experiment) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Exposure._meta.db_table} (experiment_id, arm_id, unit, customer_id, exposed_at, "
            f"attributes, outcomes) SELECT %s, a.id, s.unit, NULL, NULL, s.attributes, s.outcomes "
            f"FROM {staging.name} s JOIN {Arm._meta.db_table} a ON a.experiment_id = %s AND a.name = s.arm "
            f"ORDER BY s.line",
            [experiment.id, experiment.id],
        )
        inserted = cursor.rowcount
        if is_postgres():
            cursor.execute(f"ANALYZE {Exposure._meta.db_table}")
    return inserted


def _mean(metric: Metric, sums: outcomes.Sums | None) -> float | None:
    aggregates = sums.metrics.get(metric.name) if sums else None
    if not aggregates or not aggregates[0]:
        return None
    kind = KINDS[metric.kind]
    return kind.unit_mean(aggregates)


def _arm_summary(experiment: Experiment) -> list[dict]:
    """Units and the mean of each outcome per arm, from the rows just written."""
    metrics = list(experiment.metrics.order_by("position"))
    sums = outcomes.arm_sums(experiment, metrics)
    by_arm = {arm_id: s for (_, arm_id), s in sums.items()}
    rows = []
    for arm in experiment.arms.order_by("position"):
        s = by_arm.get(arm.id)
        n = s.n if s else 0
        rows.append({
            "name": arm.name, "control": arm.is_control, "n": n, "weight": arm.weight,
            "means": {m.name: _mean(m, s) for m in metrics if not KINDS[m.kind].units_only},
        })
    return rows
