"""Time from exposure to the first return, per unit, for the retention section. Reads only.

Survival data come back already grouped by arm and hour, so a million units are a few
thousand rows, and stay so: each row carries how many units it stands for, and the
statistics (stats.retention, timeline) take those counts as frequency weights.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from core.db import db_datetime, is_postgres

from . import unitarrays
from .models import Experiment, Exposure
from .outcomes import exposure_span
from .unitsql import EVENT, EXPOSURE, ORDER, fetch


@dataclass
class SurvivalData:
    """One row per distinct (arm, days to the first return or to now when censored,
    whether it happened, hours observed since exposure), and ``counts``: how many units
    each row stands for. ``observed_days`` are the whole days observed, capped at the
    ``max_day`` asked for."""

    arm_ids: np.ndarray
    durations: np.ndarray
    events: np.ndarray
    observed_days: np.ndarray
    counts: np.ndarray
    observed_hours: np.ndarray | None = None

    @property
    def units(self) -> int:
        return int(self.counts.sum())

    def capped(self, max_day: int) -> SurvivalData:
        """The same units with whole days observed capped at ``max_day`` instead: no new query."""
        hours = self.observed_hours if self.observed_hours is not None else self.observed_days * 24
        return replace(self, observed_days=np.minimum(np.floor(hours / 24), float(max_day)))


def survival_data(experiment: Experiment, now: datetime, *, max_day: int,
                  exposed: unitarrays.ExposedRead | None = None) -> SurvivalData:
    """Time from exposure to the first order (or first event of ``retention_event``) after it.

    Two grouped queries instead of one row per unit: every exposure by (arm, hours to now),
    and the units that returned by (arm, hours to the return, hours to now); the censored
    units are the first minus the second. Hours are rounded up for returns and down for
    censoring: "returned within N days" and "observed N days" then compare exactly for
    whole-day N, which is what day-N retention asks; curves move by under an hour. Whole
    days observed are the whole hours // 24 (the same as the days rounded down), computed
    here rather than grouped on in SQL: one expression less per exposure.

    The returners come from arrays where they fit (unitarrays.first_returns: the orders or
    events after the first exposure read by customer, each unit's first return found in
    numpy), and so does the census of every exposure (unitarrays.everyone_counted), else
    both from SQL; ``exposed`` is a read of the exposures to share with the metrics.
    """
    first, last = exposed.span if exposed is not None else exposure_span(experiment)
    if first is None:
        empty = np.array([], dtype=float)
        return SurvivalData(np.array([], dtype=np.int64), empty, empty, empty, np.array([], dtype=np.int64), empty)
    now_p = db_datetime(now)
    if is_postgres():
        # date_part, not EXTRACT: since PostgreSQL 14 EXTRACT is numeric, several times slower per row.
        span = "(date_part('epoch', {a} - {b}) / 3600.0)"
        ceil, floor = "CEIL({})", "FLOOR({})"
    else:
        span = "((julianday({a}) - julianday({b})) * 24.0)"
        # SQLite may be built without CEIL/FLOOR; these are exact for non-negative values.
        ceil = "(CAST({0} AS INTEGER) + ({0} > CAST({0} AS INTEGER)))"
        floor = "CAST({} AS INTEGER)"
    censor_hours = floor.format(span.format(a="%s", b="{t}.exposed_at"))

    if experiment.retention_event == "order":
        table, at, kind_sql, kind_params = ORDER, "ordered_at", "", []
    else:
        table, at, kind_sql, kind_params = EVENT, "occurred_at", " AND f.kind = %s", [experiment.retention_event]
    bound = db_datetime(first)
    returners = (
        f"SELECT u.arm_id, {ceil.format(span.format(a='u.first_at', b='u.exposed_at'))}, "
        f"{censor_hours.format(t='u')}, COUNT(*) FROM ("
        f"SELECT e.id, e.arm_id, e.exposed_at, MIN(f.{at}) AS first_at FROM {EXPOSURE} e "
        f"JOIN {table} f ON f.customer_id = e.customer_id AND f.{at} >= %s AND f.{at} <= %s "
        f"AND f.{at} >= e.exposed_at{kind_sql} "
        f"WHERE e.experiment_id = %s AND e.exposed_at IS NOT NULL AND e.exposed_at <= %s "
        f"GROUP BY e.id, e.arm_id, e.exposed_at) u GROUP BY 1, 2, 3"
    )
    exposed = exposed or unitarrays.ExposedRead(experiment, (first, last))
    returned = unitarrays.first_returns(experiment, (first, last), now, table, at, kind_sql, kind_params, exposed)
    if returned is None:
        returned = fetch(returners, [now_p, bound, now_p, *kind_params, experiment.id, now_p])
    arrays = exposed()  # read by now: first_returns waited for it
    if arrays is not None:
        # The census from the same arrays: no second scan of the exposures.
        all_rows = unitarrays.everyone_counted(arrays, first, now)
    elif first == last and first <= now and not Exposure.objects.filter(
            experiment=experiment, exposed_at__isnull=True).exists():
        # Every unit exposed at one instant (a campaign's launch): the units per arm, and one
        # constant time to now.
        one_instant = censor_hours.replace("{t}.exposed_at", "%s")
        everyone = f"SELECT e.arm_id, {one_instant}, COUNT(*) FROM {EXPOSURE} e WHERE e.experiment_id = %s GROUP BY 1"
        all_rows = fetch(everyone, [now_p, db_datetime(first), experiment.id])
    else:
        everyone = (
            f"SELECT e.arm_id, {censor_hours.format(t='e')}, COUNT(*) "
            f"FROM {EXPOSURE} e WHERE e.experiment_id = %s AND e.exposed_at IS NOT NULL AND e.exposed_at <= %s "
            f"GROUP BY 1, 2"
        )
        all_rows = fetch(everyone, [now_p, experiment.id, now_p])

    censored = defaultdict(int)
    for arm_id, hours, count in all_rows:
        censored[(arm_id, float(hours))] += count
    arms, durations, events, observed_hours, counts = [], [], [], [], []
    for arm_id, return_hours, hours, count in returned:
        censored[(arm_id, float(hours))] -= count
        arms.append(arm_id), durations.append(max(float(return_hours), 0.0) / 24.0)
        events.append(1), observed_hours.append(float(hours)), counts.append(count)
    for (arm_id, hours), count in censored.items():
        if count > 0:
            arms.append(arm_id), durations.append(max(hours, 0.0) / 24.0)
            events.append(0), observed_hours.append(hours), counts.append(count)
    hours = np.maximum(np.array(observed_hours, dtype=float), 0.0)
    return SurvivalData(
        arm_ids=np.array(arms, dtype=np.int64),
        durations=np.array(durations, dtype=float),
        events=np.array(events, dtype=int),
        observed_days=np.minimum(np.floor(hours / 24), float(max_day)),
        counts=np.array(counts, dtype=np.int64),
        observed_hours=hours,
    )
