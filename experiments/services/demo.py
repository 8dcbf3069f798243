"""The past campaign load_demo plants, as an experiment to read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

from django.db import transaction
from django.db.models import Max, Min

from core.db import db_datetime, is_postgres
from customers import demo
from customers.models import Customer, Order

from ..kinds import BINARY
from ..models import Experiment, Metric
from .definitions import ExperimentError, MetricDefinition, experiment_create, experiment_delete
from .exposures import exposures_insert_from_sql


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
        primary_metric=MetricDefinition("campaign_conversion", BINARY.name, Metric.Source.ORDER_CONVERSION,
                                        order_filter={"campaign": "demo-spring"}),
        secondary_metrics=["conversion", "revenue", "visit"],
        attribution_days=demo.CAMPAIGN_WINDOW_DAYS,
        salt=f"demo-{name}",
        description="The randomized e-mail campaign planted by load_demo (+3 points of campaign conversion).",
    )
    arm_key = "demo_campaign_arm"
    if is_postgres():
        arm_sql = f"(attributes ->> '{arm_key}')"
    else:
        arm_sql = f"json_extract(attributes, '$.{arm_key}')"
    customers = Customer._meta.db_table
    exposures_insert_from_sql(
        experiment,
        f"SELECT id AS customer_id, {arm_sql} AS arm, %s AS exposed_at FROM {customers} "
        f"WHERE {arm_sql} IN ('control', 'treatment')",
        [db_datetime(exposed_at)],
    )
    return experiment
