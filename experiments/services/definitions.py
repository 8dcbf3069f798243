"""Experiments and their arms and metrics: create, delete."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.db import connection, transaction

from ..kinds import BINARY, CONTINUOUS, KINDS, RATIO
from ..models import MAX_ATTRIBUTION_DAYS, MIN_ATTRIBUTION_DAYS, Arm, Experiment, Exposure, Metric
from ..stats.bayes import GaussianPrior
from ..reports import DEFAULT_RETENTION_DAYS

EXPOSURE = Exposure._meta.db_table


class ExperimentError(ValueError):
    """A request that cannot be carried out; the message says why and what to do."""


@dataclass(frozen=True)
class MetricDefinition:
    """How a metric is measured. ``kind`` is a name in experiments.kinds.KINDS, ``source`` a
    Metric.Source value."""

    name: str
    kind: str
    source: str
    event_kind: str = ""
    order_filter: Mapping[str, object] = field(default_factory=dict)
    denominator_source: str = ""  # a ratio metric of a customer experiment: the denominator's source
    denominator_event_kind: str = ""


BUILTIN_METRICS: dict[str, MetricDefinition] = {
    "conversion": MetricDefinition("conversion", BINARY.name, Metric.Source.ORDER_CONVERSION),
    "revenue": MetricDefinition("revenue", CONTINUOUS.name, Metric.Source.ORDER_REVENUE),
    "orders": MetricDefinition("orders", CONTINUOUS.name, Metric.Source.ORDER_COUNT),
    "visit": MetricDefinition("visit", BINARY.name, Metric.Source.EVENT_CONVERSION, event_kind="visit"),
    "revenue/orders": MetricDefinition("revenue/orders", RATIO.name, Metric.Source.ORDER_REVENUE,
                                       denominator_source=Metric.Source.ORDER_COUNT),
    "orders/visit": MetricDefinition("orders/visit", RATIO.name, Metric.Source.ORDER_COUNT,
                                     denominator_source=Metric.Source.EVENT_COUNT, denominator_event_kind="visit"),
    "revenue/visit": MetricDefinition("revenue/visit", RATIO.name, Metric.Source.ORDER_REVENUE,
                                      denominator_source=Metric.Source.EVENT_COUNT, denominator_event_kind="visit"),
}
ArmInput = tuple[str, float, bool]  # name, weight, is control


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
    if definition.kind not in KINDS:
        raise ExperimentError(f"metric {definition.name!r}: kind must be one of {', '.join(KINDS)}")
    if definition.source not in Metric.Source.values:
        raise ExperimentError(f"metric {definition.name!r}: unknown source {definition.source!r}")
    if definition.source in (Metric.Source.EVENT_CONVERSION, Metric.Source.EVENT_COUNT) and not definition.event_kind:
        raise ExperimentError(f"metric {definition.name!r} counts events: name their kind")
    ratio = definition.kind == RATIO.name and not imported
    if ratio != bool(definition.denominator_source):
        raise ExperimentError(f"metric {definition.name!r}: a ratio metric of a customer experiment, and only "
                              "it, names a denominator source")
    if ratio and (definition.denominator_source not in Metric.Source.values
                  or definition.denominator_source == Metric.Source.IMPORTED):
        raise ExperimentError(f"metric {definition.name!r}: unknown denominator source {definition.denominator_source!r}")
    if ratio and definition.denominator_source in (Metric.Source.EVENT_CONVERSION, Metric.Source.EVENT_COUNT) \
            and not definition.denominator_event_kind:
        raise ExperimentError(f"metric {definition.name!r}: the denominator counts events: name their kind")


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
    retention_days: Sequence[int] = DEFAULT_RETENTION_DAYS,
    covariate: str = "",
    sequential_tuning_n: int = 10_000,
    unit_label: str = "customer",
    description: str = "",
    import_info: dict | None = None,
    prior: dict | None = None,
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
    if not isinstance(attribution_days, int) or not MIN_ATTRIBUTION_DAYS <= attribution_days <= MAX_ATTRIBUTION_DAYS:
        raise ExperimentError(f"attribution_days must be a whole number of days from {MIN_ATTRIBUTION_DAYS} "
                              f"to {MAX_ATTRIBUTION_DAYS}")
    try:
        GaussianPrior.from_dict(prior)
    except (TypeError, ValueError) as exc:
        raise ExperimentError(f"prior: {exc}") from None
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
        import_info=import_info or {}, prior=prior or {},
    )
    Arm.objects.bulk_create([
        Arm(experiment=experiment, name=str(n).strip(), weight=float(w), is_control=bool(c), position=i)
        for i, (n, w, c) in enumerate(arms)
    ])
    Metric.objects.bulk_create([
        Metric(experiment=experiment, name=d.name, kind=d.kind, source=d.source, is_primary=i == 0,
               position=i, event_kind=d.event_kind, order_filter=dict(d.order_filter),
               denominator_source=d.denominator_source, denominator_event_kind=d.denominator_event_kind)
        for i, d in enumerate(definitions)
    ])
    return experiment


@transaction.atomic
def experiment_delete(experiment: Experiment) -> None:
    # One DELETE for the exposures: the ORM's cascade would load a million rows first.
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {EXPOSURE} WHERE experiment_id = %s", [experiment.id])
    experiment.delete()
