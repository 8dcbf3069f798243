"""Time from exposure to the first return, per unit, for the retention section. Reads only.

Survival data come back already grouped by arm and hour, so a million units are a few
thousand rows, and stay so: each row carries how many units it stands for, and the
statistics (stats.retention, timeline) take those counts as frequency weights.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from core.db import db_datetime, is_postgres

from .models import Experiment
from .outcomes import exposure_span
from .unitsql import EVENT, EXPOSURE, ORDER, fetch


@dataclass
class SurvivalData:
    """One row per distinct (arm, days to the first return or to now when censored,
    whether it happened, whole days observed since exposure), and ``counts``: how many
    units each row stands for."""

    arm_ids: np.ndarray
    durations: np.ndarray
    events: np.ndarray
    observed_days: np.ndarray
    counts: np.ndarray

    @property
    def units(self) -> int:
        return int(self.counts.sum())


def survival_data(experiment: Experiment, now: datetime, *, max_day: int) -> SurvivalData:
    """Time from exposure to the first order (or first event of ``retention_event``) after it.

    Two grouped queries instead of one row per unit: every exposure by (arm, hours to now,
    whole days observed capped at ``max_day``), and the units that returned by (arm, hours
    to the return, hours to now, days observed); the censored units are the first minus the
    second. Hours are rounded up for returns and down for censoring: "returned within N
    days" and "observed N days" then compare exactly for whole-day N, which is what day-N
    retention asks; curves move by under an hour.
    """
    first, last = exposure_span(experiment)
    if first is None:
        empty = np.array([], dtype=float)
        return SurvivalData(np.array([], dtype=np.int64), empty, empty, empty, np.array([], dtype=np.int64))
    now_p = db_datetime(now)
    if is_postgres():
        # date_part, not EXTRACT: since PostgreSQL 14 EXTRACT is numeric, several times slower per row.
        span = "(date_part('epoch', {a} - {b}) / 3600.0)"
        ceil, floor, least = "CEIL({})", "FLOOR({})", "LEAST({}, %s)"
    else:
        span = "((julianday({a}) - julianday({b})) * 24.0)"
        # SQLite may be built without CEIL/FLOOR; these are exact for non-negative values.
        ceil = "(CAST({0} AS INTEGER) + ({0} > CAST({0} AS INTEGER)))"
        floor, least = "CAST({} AS INTEGER)", "MIN({}, %s)"
    to_now = span.format(a="%s", b="{t}.exposed_at")
    censor_hours = floor.format(to_now)
    observed = least.format(floor.format(f"({to_now} / 24.0)"))

    everyone = (
        f"SELECT e.arm_id, {censor_hours.format(t='e')}, {observed.format(t='e')}, COUNT(*) "
        f"FROM {EXPOSURE} e WHERE e.experiment_id = %s AND e.exposed_at IS NOT NULL AND e.exposed_at <= %s "
        f"GROUP BY 1, 2, 3"
    )
    all_rows = fetch(everyone, [now_p, now_p, max_day, experiment.id, now_p])

    if experiment.retention_event == "order":
        table, at, kind_sql, kind_params = ORDER, "ordered_at", "", []
    else:
        table, at, kind_sql, kind_params = EVENT, "occurred_at", " AND f.kind = %s", [experiment.retention_event]
    bound = db_datetime(first)
    returners = (
        f"SELECT u.arm_id, {ceil.format(span.format(a='u.first_at', b='u.exposed_at'))}, "
        f"{censor_hours.format(t='u')}, {observed.format(t='u')}, COUNT(*) FROM ("
        f"SELECT e.id, e.arm_id, e.exposed_at, MIN(f.{at}) AS first_at FROM {EXPOSURE} e "
        f"JOIN {table} f ON f.customer_id = e.customer_id AND f.{at} >= %s AND f.{at} <= %s "
        f"AND f.{at} >= e.exposed_at{kind_sql} "
        f"WHERE e.experiment_id = %s AND e.exposed_at IS NOT NULL AND e.exposed_at <= %s "
        f"GROUP BY e.id, e.arm_id, e.exposed_at) u GROUP BY 1, 2, 3, 4"
    )
    returned = fetch(returners, [now_p, now_p, max_day, bound, now_p, *kind_params, experiment.id, now_p])

    censored = defaultdict(int)
    for arm_id, hours, days, count in all_rows:
        censored[(arm_id, float(hours), float(days))] += count
    arms, durations, events, observed_days, counts = [], [], [], [], []
    for arm_id, return_hours, hours, days, count in returned:
        censored[(arm_id, float(hours), float(days))] -= count
        arms.append(arm_id), durations.append(max(float(return_hours), 0.0) / 24.0)
        events.append(1), observed_days.append(float(days)), counts.append(count)
    for (arm_id, hours, days), count in censored.items():
        if count > 0:
            arms.append(arm_id), durations.append(max(hours, 0.0) / 24.0)
            events.append(0), observed_days.append(days), counts.append(count)
    return SurvivalData(
        arm_ids=np.array(arms, dtype=np.int64),
        durations=np.array(durations, dtype=float),
        events=np.array(events, dtype=int),
        observed_days=np.array(observed_days, dtype=float),
        counts=np.array(counts, dtype=np.int64),
    )
