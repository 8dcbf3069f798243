"""What a report may be broken down by: a unit attribute some unit of the experiment has,
a customer column, or a segment (``segment:NAME``: its members against everyone else).
Checked before a report is computed or stored, so a typo is an error and a stranger's ?by=
cannot store a report row per value it makes up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.db import is_postgres
from segments.models import Membership, Segment
from segments.selectors import segment_version_at

from .models import Experiment, Report
from .selectors import exposure_span
from .unitsql import CUSTOMER, CUSTOMER_COLUMNS, EXPOSURE, fetch, json_key

SEGMENT_PREFIX = "segment:"
MEMBER, NOT_MEMBER = "member", "not a member"
BY_MAX_LENGTH = Report._meta.get_field("by").max_length
SEGMENT_CHOICES = 50  # segments offered on the report page, most recently refreshed first


@dataclass(frozen=True)
class SegmentBy:
    """A segment breakdown: whose membership, which version of it, and whether that version
    is the one current when the experiment started (its first exposure)."""

    id: int
    name: str
    version: int
    as_of: datetime | None
    at_start: bool

    def group_sql(self) -> tuple[str, list, str]:
        """(expression, params, join) grouping units into members and non-members."""
        members = Membership._meta.db_table
        return (f"CASE WHEN EXISTS (SELECT 1 FROM {members} sm WHERE sm.segment_id = %s AND sm.version = %s "
                f"AND sm.customer_id = e.customer_id) THEN '{MEMBER}' ELSE '{NOT_MEMBER}' END",
                [self.id, self.version], "")

    def describe(self) -> dict:
        when = self.as_of.isoformat() if self.as_of else None
        text = (f"membership of segment '{self.name}' as it was when the experiment started (version "
                f"{self.version}, refreshed {when})" if self.at_start else
                f"membership of segment '{self.name}' as of its latest refresh (version {self.version}, refreshed "
                f"{when}): the version current at the experiment's start is no longer kept, or the segment is "
                "younger than the experiment, so the treatment itself may have moved units in or out")
        return {"name": self.name, "version": self.version, "as_of": when, "at_start": self.at_start, "text": text}


def segment_by(experiment: Experiment, by: str) -> SegmentBy | None:
    """The segment a ``segment:NAME`` breakdown names, None for any other breakdown;
    ValueError naming it when there is no such segment."""
    if not by.startswith(SEGMENT_PREFIX):
        return None
    name = by[len(SEGMENT_PREFIX):].strip()
    if experiment.source != Experiment.Source.CUSTOMERS:
        raise ValueError(f"a breakdown by segment needs a customer experiment: the units of {experiment.name!r} "
                         "are not customers")
    segment = Segment.objects.filter(name=name).first()
    if segment is None:
        raise ValueError(f"no segment named {name!r} to break the results down by")
    start = exposure_span(experiment)[0]
    version, as_of, at_start = segment_version_at(segment, start)
    return SegmentBy(segment.id, segment.name, version, as_of, at_start)


def breakdown_check(experiment: Experiment, by: str) -> None:
    """ValueError naming what ``by`` names when the experiment cannot be broken down by it."""
    if len(by) > BY_MAX_LENGTH:
        raise ValueError(f"a breakdown is named in at most {BY_MAX_LENGTH} characters, not {len(by)}")
    if not by or segment_by(experiment, by) is not None:
        return
    if not breakdown_known(experiment, by):
        raise ValueError(f"no unit of this experiment has an attribute {by!r} to break the results down by")


def breakdown_known(experiment: Experiment, by: str) -> bool:
    """Whether some unit of the experiment has attribute ``by`` (or it is a customer column):
    a breakdown by anything else is a typo, and would store a report per typo."""
    if experiment.source == Experiment.Source.CUSTOMERS and by in CUSTOMER_COLUMNS:
        return True
    if experiment.source == Experiment.Source.IMPORTED:
        column, join = "e.attributes", ""
    else:
        column, join = "c.attributes", f"JOIN {CUSTOMER} c ON c.id = e.customer_id"
    if is_postgres():
        test, params = f"{column} ? %s", [by]
    else:
        test, params = f"json_type({column}, %s) IS NOT NULL", [json_key(by)]
    sql = f"SELECT EXISTS (SELECT 1 FROM {EXPOSURE} e {join} WHERE e.experiment_id = %s AND {test})"
    return bool(fetch(sql, [experiment.id] + params)[0][0])


def breakdown_choices(experiment: Experiment) -> list[str]:
    """The breakdowns to offer on the report page (imported: the file's other columns;
    customers: the customer columns and the most recently refreshed segments)."""
    if experiment.source == Experiment.Source.IMPORTED:
        return sorted((experiment.import_info or {}).get("attributes") or {})
    segments = Segment.objects.exclude(refreshed_at=None).order_by("-refreshed_at", "name")[:SEGMENT_CHOICES]
    return list(CUSTOMER_COLUMNS) + [f"{SEGMENT_PREFIX}{s.name}" for s in segments]
