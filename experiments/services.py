"""Writes to experiments: definitions, exposures, cached reports, demo data, uplift models.

What campaign launch calls (campaigns import experiments, never the other way round):

    experiment = experiment_create("spring-offer", [("holdout", 1, True), ("offer", 9, False)],
                                   primary_metric="conversion", secondary_metrics=["revenue"],
                                   attribution_days=14, salt=campaign_salt)
    arm = assignment.arm_for(experiment.salt, customer.id, [("holdout", 1), ("offer", 9)])
    exposures_insert_from_sql(experiment, "SELECT customer_id, arm, assigned_at AS exposed_at "
                              "FROM campaigns_ledger WHERE campaign_id = %s", [campaign.id])

Exposures are written once per (experiment, unit): a rerun of a launch adds nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from customers import demo
from customers.features import customer_attributes, customer_features
from customers.models import Customer, Order
from core.bulk import bulk_copy

from . import assignment, outcomes, reports, selectors, uplift
from .models import Arm, Experiment, Exposure, Metric, Report, UpliftModel

EXPOSURE = Exposure._meta.db_table
ARM = Arm._meta.db_table
STAGING = "exposure_staging"


class ExperimentError(ValueError):
    """A request that cannot be carried out; the message says why and what to do."""


@dataclass(frozen=True)
class MetricDefinition:
    """How a metric is measured. ``source`` is a Metric.Source value."""

    name: str
    kind: str
    source: str
    event_kind: str = ""
    order_filter: Mapping[str, object] = field(default_factory=dict)


BUILTIN_METRICS: dict[str, MetricDefinition] = {
    "conversion": MetricDefinition("conversion", "binary", Metric.Source.ORDER_CONVERSION),
    "revenue": MetricDefinition("revenue", "continuous", Metric.Source.ORDER_REVENUE),
    "orders": MetricDefinition("orders", "continuous", Metric.Source.ORDER_COUNT),
    "visit": MetricDefinition("visit", "binary", Metric.Source.EVENT_CONVERSION, event_kind="visit"),
}
ArmInput = tuple[str, float, bool]  # name, weight, is control


# --------------------------------------------------------------------------- definitions


def _metric_definition(metric: str | MetricDefinition) -> MetricDefinition:
    if isinstance(metric, MetricDefinition):
        return metric
    if metric in BUILTIN_METRICS:
        return BUILTIN_METRICS[metric]
    raise ExperimentError(
        f"unknown metric {metric!r}: name a built-in one ({', '.join(BUILTIN_METRICS)}) or pass a MetricDefinition"
    )


def _check_arms(arms: Sequence[ArmInput]) -> None:
    if len(arms) < 2:
        raise ExperimentError("an experiment needs at least two arms, one of them the control")
    names = [str(a[0]).strip() for a in arms]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise ExperimentError(f"arm names must be non-empty and distinct: {names}")
    if any(len(n) > 100 for n in names):
        raise ExperimentError("arm names are at most 100 characters")
    controls = [a[0] for a in arms if a[2]]
    if len(controls) != 1:
        raise ExperimentError(f"exactly one arm must be the control; got {len(controls)}: {controls}")
    bad = [a[0] for a in arms if not float(a[1]) > 0]
    if bad:
        raise ExperimentError(f"arm weights must be positive: {bad}")


def _check_metric(definition: MetricDefinition, source: str) -> None:
    imported = definition.source == Metric.Source.IMPORTED
    if imported != (source == Experiment.Source.IMPORTED):
        raise ExperimentError(
            f"metric {definition.name!r} ({definition.source}) does not fit a {source} experiment")
    if definition.kind not in Metric.Kind.values:
        raise ExperimentError(f"metric {definition.name!r}: kind must be binary or continuous")
    if definition.source not in Metric.Source.values:
        raise ExperimentError(f"metric {definition.name!r}: unknown source {definition.source!r}")
    if definition.source in (Metric.Source.EVENT_CONVERSION, Metric.Source.EVENT_COUNT) and not definition.event_kind:
        raise ExperimentError(f"metric {definition.name!r} counts events: name their kind")


@transaction.atomic
def experiment_create(
    name: str,
    arms: Sequence[ArmInput],
    *,
    primary_metric: str | MetricDefinition = "conversion",
    secondary_metrics: Sequence[str | MetricDefinition] = ("revenue",),
    attribution_days: int = 14,
    alpha: float = 0.05,
    mode: str = Experiment.Mode.FIXED,
    salt: str | None = None,
    source: str = Experiment.Source.CUSTOMERS,
    mde: float | None = None,
    mde_relative: bool = True,
    retention_event: str = "order",
    retention_days: Sequence[int] = reports.DEFAULT_RETENTION_DAYS,
    covariate: str = "",
    sequential_tuning_n: int = 10_000,
    unit_label: str = "customer",
    description: str = "",
    import_info: dict | None = None,
) -> Experiment:
    """A new experiment with its arms ([(name, weight, is_control)], in assignment order)
    and metrics (the primary first). ``salt`` defaults to a random token; campaigns pass
    their own so that arm_for() at send time and the experiment agree."""
    name = (name or "").strip()
    if not name:
        raise ExperimentError("an experiment needs a name")
    existing = Experiment.objects.filter(name=name).first()
    if existing:
        raise ExperimentError(f"an experiment named {name!r} already exists (id {existing.id})")
    _check_arms(arms)
    if mode not in Experiment.Mode.values:
        raise ExperimentError(f"mode must be one of {', '.join(Experiment.Mode.values)}")
    if source not in Experiment.Source.values:
        raise ExperimentError(f"source must be one of {', '.join(Experiment.Source.values)}")
    if not 0 < alpha < 0.5:
        raise ExperimentError("alpha must be between 0 and 0.5")
    if attribution_days < 1:
        raise ExperimentError("the attribution window is at least one day")
    definitions = [_metric_definition(primary_metric)] + [_metric_definition(m) for m in secondary_metrics]
    names = [d.name for d in definitions]
    if len(set(names)) != len(names):
        raise ExperimentError(f"metric names repeat: {names}")
    for definition in definitions:
        _check_metric(definition, source)

    experiment = Experiment.objects.create(
        name=name, description=description, source=source, mode=mode, alpha=alpha,
        attribution_days=attribution_days, salt=salt or secrets.token_hex(8),
        sequential_tuning_n=sequential_tuning_n, mde=mde, mde_relative=mde_relative,
        retention_event=retention_event if source == Experiment.Source.CUSTOMERS else "",
        retention_days=[int(d) for d in retention_days], covariate=covariate, unit_label=unit_label,
        import_info=import_info or {},
    )
    Arm.objects.bulk_create([
        Arm(experiment=experiment, name=str(n).strip(), weight=float(w), is_control=bool(c), position=i)
        for i, (n, w, c) in enumerate(arms)
    ])
    Metric.objects.bulk_create([
        Metric(experiment=experiment, name=d.name, kind=d.kind, source=d.source, is_primary=i == 0,
               position=i, event_kind=d.event_kind, order_filter=dict(d.order_filter))
        for i, d in enumerate(definitions)
    ])
    return experiment


@transaction.atomic
def experiment_delete(experiment: Experiment) -> None:
    # One DELETE for the exposures: the ORM's cascade would load a million rows first.
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {EXPOSURE} WHERE experiment_id = %s", [experiment.id])
    experiment.delete()


# --------------------------------------------------------------------------- exposures


def _require_customers(experiment: Experiment) -> None:
    if experiment.source != Experiment.Source.CUSTOMERS:
        raise ExperimentError(f"experiment {experiment.name!r} is imported: its units come from its file")


def _insert_select(experiment: Experiment, source_sql: str, params: Sequence) -> int:
    """Exposures from a SELECT of (customer_id, arm, exposed_at), validated first, then one
    INSERT ... SELECT that skips units already exposed."""
    arms = ARM
    # An untyped '{}' in a SELECT list is text to PostgreSQL, which will not assign it to jsonb.
    empty = "CAST('{}' AS jsonb)" if connection.vendor == "postgresql" else "'{}'"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT s.arm FROM ({source_sql}) s LEFT JOIN {arms} a "
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
        # "WHERE true" keeps SQLite from reading ON CONFLICT as part of a join.
        cursor.execute(
            f"INSERT INTO {EXPOSURE} (experiment_id, arm_id, unit, customer_id, exposed_at, attributes, outcomes) "
            f"SELECT %s, a.id, CAST(s.customer_id AS TEXT), s.customer_id, s.exposed_at, {empty}, {empty} "
            f"FROM ({source_sql}) s JOIN {arms} a ON a.experiment_id = %s AND a.name = s.arm WHERE true "
            f"ON CONFLICT (experiment_id, unit) DO NOTHING",
            [experiment.id, *params, experiment.id],
        )
        return max(cursor.rowcount, 0)


@transaction.atomic
def exposures_insert_from_sql(experiment: Experiment, sql: str, params: Sequence = ()) -> int:
    """Set-based exposures for campaign launch: ``sql`` is a SELECT whose columns are named
    customer_id, arm (the arm's name) and exposed_at, e.g. over the send ledger, holdout
    rows included. Returns the number of new exposures; units already exposed are skipped."""
    _require_customers(experiment)
    return _insert_select(experiment, sql, params)


@transaction.atomic
def exposures_record(experiment: Experiment, rows: Iterable[tuple[int, str, datetime]]) -> int:
    """Exposures from Python: (customer id, arm name, exposed_at) tuples, streamed through a
    staging table (COPY on PostgreSQL). Returns the number of new exposures."""
    _require_customers(experiment)
    pg = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {STAGING}")
        types = ("bigint", "text", "timestamptz") if pg else ("", "", "")
        cursor.execute(
            f"CREATE TEMP TABLE {STAGING} (customer_id {types[0]}, arm {types[1]}, exposed_at {types[2]})"
            + (" ON COMMIT DROP" if pg else "")
        )
    try:
        bulk_copy(STAGING, ["customer_id", "arm", "exposed_at"], rows)
        inserted = _insert_select(experiment, f"SELECT customer_id, arm, exposed_at FROM {STAGING}", [])
    finally:
        if not pg:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {STAGING}")
    return inserted


def exposures_assign(experiment: Experiment, customer_ids: Iterable[int], exposed_at: datetime) -> int:
    """Assign customers to arms by assignment.arm_for (salt, customer id) and record them."""
    arms = [(a.name, a.weight) for a in experiment.arms.order_by("position", "id")]
    return exposures_record(
        experiment, ((cid, arm, exposed_at) for cid, arm in assignment.arms_for(experiment.salt, customer_ids, arms))
    )


# --------------------------------------------------------------------------- reports


def report_refresh(experiment: Experiment, *, by: str = "", force: bool = False,
                   now: datetime | None = None) -> Report:
    """Compute and store the report unless the stored one still matches the data.

    The fingerprint is taken before computing: rows arriving meanwhile make the stored
    report stale, never a stale report look fresh. Two concurrent runs both store the same
    thing; the unique (experiment, by) row keeps one."""
    cached = selectors.report_cached(experiment, by)
    if not force and selectors.report_is_fresh(experiment, cached, now=now):
        return cached
    fingerprint = selectors.experiment_fingerprint(experiment)
    now = now or timezone.now()
    body = reports.report_build(experiment, by=by or None, now=now)
    report, _ = Report.objects.update_or_create(
        experiment=experiment, by=by or "",
        defaults={"body": body, "fingerprint": fingerprint, "computed_at": now, "seconds": body["seconds"]},
    )
    return report


def report_refresh_enqueue(experiment: Experiment, *, by: str = "", force: bool = True) -> None:
    """Queue a recomputation once the current transaction commits."""
    from .tasks import experiment_report_refresh

    experiment_report_refresh.delay_on_commit(experiment.id, by or "", force)


# --------------------------------------------------------------------------- demo


def demo_campaign_date(today: datetime | None = None) -> datetime:
    """The planted campaign's date: CAMPAIGN_DAYS_AGO days before the day load_demo ran.

    load_demo takes "today" as the UTC midnight of its run and stamps customers with the
    run time, so the earliest demo customer's created_at gives the day back. The campaign
    orders must then all fall in the window after that date, which is checked."""
    if today is None:
        first = Customer.objects.filter(external_id__startswith="demo-").order_by("created_at").first()
        if first is None:
            raise ExperimentError("no demo customers: run load_demo first")
        today = first.created_at
    today = today.astimezone(dt_timezone.utc)
    date = today.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=demo.CAMPAIGN_DAYS_AGO)
    span = Order.objects.filter(customer__external_id__startswith="demo-", properties__campaign="demo-spring").aggregate(
        first=Min("ordered_at"), last=Max("ordered_at"))
    if span["first"] and (span["first"] < date or span["last"] > date + timedelta(days=demo.CAMPAIGN_WINDOW_DAYS)):
        raise ExperimentError(
            f"the demo campaign orders ({span['first']:%Y-%m-%d} to {span['last']:%Y-%m-%d}) do not fall in the "
            f"{demo.CAMPAIGN_WINDOW_DAYS} days after {date:%Y-%m-%d}; pass the day load_demo ran as today")
    return date


@transaction.atomic
def experiment_from_demo(name: str = "demo-spring", *, replace: bool = False,
                         today: datetime | None = None) -> Experiment:
    """The past campaign planted by load_demo as an experiment: customers with attribute
    demo_campaign_arm in {control, treatment}, exposed at the campaign date; primary metric
    is a campaign order (properties.campaign = demo-spring) within the 14-day window."""
    existing = Experiment.objects.filter(name=name).first()
    if existing:
        if not replace:
            raise ExperimentError(f"an experiment named {name!r} already exists (id {existing.id}); "
                                  "nothing was changed (pass replace=True / --replace to rebuild it)")
        experiment_delete(existing)
    exposed_at = demo_campaign_date(today)
    experiment = experiment_create(
        name,
        [("control", 1, True), ("treatment", 1, False)],
        primary_metric=MetricDefinition("campaign_conversion", "binary", Metric.Source.ORDER_CONVERSION,
                                        order_filter={"campaign": "demo-spring"}),
        secondary_metrics=["conversion", "revenue", "visit"],
        attribution_days=demo.CAMPAIGN_WINDOW_DAYS,
        salt=f"demo-{name}",
        description="The randomized e-mail campaign planted by load_demo (+3 points of campaign conversion).",
    )
    arm_key = "demo_campaign_arm"
    if connection.vendor == "postgresql":
        arm_sql = f"(attributes ->> '{arm_key}')"
    else:
        arm_sql = f"json_extract(attributes, '$.{arm_key}')"
    customers = Customer._meta.db_table
    exposures_insert_from_sql(
        experiment,
        f"SELECT id AS customer_id, {arm_sql} AS arm, %s AS exposed_at FROM {customers} "
        f"WHERE {arm_sql} IN ('control', 'treatment')",
        [exposed_at if connection.vendor == "postgresql" else connection.ops.adapt_datetimefield_value(exposed_at)],
    )
    return experiment


# --------------------------------------------------------------------------- uplift


def _unit_features(frame: pd.DataFrame, features: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
    seen: dict[str, None] = {}
    for attrs in frame["attributes"]:
        seen.update(dict.fromkeys(attrs))
    chosen = list(features) if features else list(seen)
    unknown = [f for f in chosen if f not in seen]
    if unknown:
        raise ExperimentError(f"unknown unit attribute(s) {unknown}; the units have {list(seen)}")
    return uplift.frame_from_records(frame["attributes"], chosen), chosen


def _customer_feature_frame(customer_ids: Sequence[int], as_of: datetime,
                            features: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
    """Behaviour before ``as_of`` (recency, frequency, ...) and, if named, attributes."""
    # Only the id range in play: the feature query otherwise covers the whole base.
    id_range = (min(customer_ids), max(customer_ids) + 1)
    behaviour = customer_features(as_of, id_range=id_range)
    attributes = customer_attributes(id_range=id_range)
    wanted = list(features) if features else list(behaviour.columns)
    columns = {}
    for name in wanted:
        if name in behaviour.columns:
            columns[name] = behaviour[name]
        elif name in attributes.columns:
            columns[name] = attributes[name]
        else:
            raise ExperimentError(f"unknown feature {name!r}: neither a behavioural feature nor a customer attribute")
    frame = pd.DataFrame(columns).reindex(list(customer_ids))
    records = frame.to_dict("records")
    return uplift.frame_from_records(records, wanted), wanted


def _uplift_summary(info: dict, treatment: str, control: str, metric: str) -> str:
    deciles = info["deciles"]
    top = deciles[0]
    beats = info["qini_coefficient"] > 0
    gains = [(d["top_fraction"], d["cumulative_gain"], d["random_gain"]) for d in deciles]
    line = (f"Uplift of {treatment} over {control} on {metric}: targeting by predicted uplift "
            f"{'beats' if beats else 'does not beat'} random targeting on held-out units "
            f"(Qini coefficient {info['qini_coefficient']:.5f}). ")
    if top["observed_uplift"] is not None and top["random_uplift"] is not None:
        line += (f"Top decile: observed uplift {top['observed_uplift']:+.4f} vs {top['random_uplift']:+.4f} "
                 f"on average; ")
    line += f"{info['deciles_beating_random']} of 10 deciles are above the average effect."
    if not beats:
        line += " Do not target by this model; treat everyone or no one."
    elif gains[2][1] is not None and gains[2][2]:
        line += (f" Treating the top 30% by predicted uplift yields {gains[2][1]:.1f} incremental "
                 f"outcomes vs {gains[2][2]:.1f} for 30% chosen at random.")
    return line


@transaction.atomic
def uplift_model_train(
    experiment: Experiment,
    treatment: str,
    outcome: str,
    *,
    features: Sequence[str] | None = None,
    learner: str = "gbm",
    folds: int = 5,
    seed: int = 0,
) -> UpliftModel:
    """Train and store a cross-fitted T-learner of ``treatment`` against the control arm.

    Features: for imported experiments, the unit attributes from the file (all, or those
    named); for customer experiments, behaviour computed as of the first exposure (so it
    is pre-treatment by construction) plus any customer attributes named in ``features``."""
    arms = {a.name: a for a in experiment.arms.all()}
    if treatment not in arms:
        raise ExperimentError(f"no arm {treatment!r} in {experiment.name!r}; arms are {list(arms)}")
    control = next(a for a in arms.values() if a.is_control)
    if arms[treatment].is_control:
        raise ExperimentError(f"{treatment!r} is the control arm; name a treatment arm")
    metric = experiment.metrics.filter(name=outcome).first()
    if metric is None:
        raise ExperimentError(f"no metric {outcome!r} in {experiment.name!r}; metrics are "
                              f"{list(experiment.metrics.values_list('name', flat=True))}")
    imported = experiment.source == Experiment.Source.IMPORTED
    units = outcomes.unit_values(experiment, [metric], arm_ids=[arms[treatment].id, control.id], attributes=imported)
    if units.empty:
        raise ExperimentError("no units in these arms")
    if imported:
        frame, chosen = _unit_features(units, features)
        source = "unit_attributes"
        as_of = None
    else:
        as_of = Exposure.objects.filter(experiment=experiment).order_by("exposed_at").values_list(
            "exposed_at", flat=True).first()
        frame, chosen = _customer_feature_frame(units["customer_id"].astype(int).tolist(), as_of, features)
        source = "customer_features"
    treated = (units["arm_id"] == arms[treatment].id).to_numpy().astype(int)
    y = units[metric.name].to_numpy(float)
    try:
        model, info, _ = uplift.uplift_train(frame, treated, y, binary=metric.kind == Metric.Kind.BINARY,
                                             learner=learner, folds=folds, seed=seed, alpha=experiment.alpha)
    except ValueError as exc:
        raise ExperimentError(str(exc)) from None
    # "treated" and "control" in info are unit counts; the arms go under their own keys.
    info.update(experiment=experiment.name, treatment_arm=treatment, control_arm=control.name, outcome=metric.name,
                feature_source=source, features_as_of=as_of.isoformat() if as_of else None)
    info["summary"] = _uplift_summary(info, treatment, control.name, metric.name)
    return UpliftModel.objects.create(
        experiment=experiment, treatment_arm=arms[treatment], control_arm=control, metric=metric,
        feature_source=source, features=chosen, model=uplift.model_dump(model), info=info,
    )


def uplift_scores(model_id: int, *, customer_ids: Iterable[int] | None = None,
                  now: datetime | None = None) -> list[tuple[int, float]]:
    """(customer id, predicted uplift) for every customer (or those given).

    Behavioural features as of ``now`` for models trained on customer experiments,
    customer attributes of the same names for models trained on imported unit attributes."""
    stored = selectors.uplift_model_get(model_id)
    model = uplift.model_load(stored.model)
    ids = list(customer_ids) if customer_ids is not None else list(
        Customer.objects.order_by("id").values_list("id", flat=True))
    if not ids:
        return []
    if stored.feature_source == "customer_features":
        frame, _ = _customer_feature_frame(ids, now or timezone.now(), stored.features)
    else:
        attributes = customer_attributes().reindex(ids)
        records = attributes.reindex(columns=stored.features).to_dict("records")
        frame = uplift.frame_from_records(records, stored.features)
    return [(int(i), float(s)) for i, s in zip(ids, model.predict(frame))]


def uplift_top_customers(model_id: int, fraction: float, *, customer_ids: Iterable[int] | None = None,
                         now: datetime | None = None) -> list[int]:
    """Customer ids in the top ``fraction`` of predicted uplift, best first."""
    if not 0 < fraction <= 1:
        raise ExperimentError("fraction must be in (0, 1]")
    scored = uplift_scores(model_id, customer_ids=customer_ids, now=now)
    if not scored:
        return []
    top = uplift.top_fraction(np.array([s for _, s in scored]), fraction)
    return [scored[i][0] for i in top]


def uplift_segment_create(model_id: int, fraction: float, name: str, *, user=None):
    """Close the loop: the top ``fraction`` by predicted uplift becomes a model segment.

    The scores go to segments as an `uplift` model, so the segment refreshes, shows its
    history and feeds the next campaign like any other model segment."""
    from segments import services as segment_services
    from segments.services.imported_scores import model_scores_import

    if not 0 < fraction <= 1:
        raise ExperimentError("the top share must be above 0% and at most 100%")
    stored = selectors.uplift_model_get(model_id)
    scored = uplift_scores(model_id)
    scores_model = model_scores_import(
        f"uplift-{model_id}", "uplift", scored,
        params={"uplift_model": model_id, "experiment": stored.experiment_id},
        info={"qini_coefficient": stored.info.get("qini_coefficient"), "source": "experiments.UpliftModel"},
        features=list(stored.features),
    )
    segment = segment_services.segment_create(
        {"name": name, "kind": "uplift", "model": scores_model.id, "top_fraction": fraction}, user=user
    )
    segment_services.segment_refresh(segment)
    segment.refresh_from_db()
    return segment


