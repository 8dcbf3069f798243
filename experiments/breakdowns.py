"""What a report may be broken down by: a unit attribute some unit of the experiment has,
or a customer column. Checked before a report is computed or stored, so a typo is an
error and a stranger's ?by= cannot store a report row per value it makes up."""

from __future__ import annotations

from core.db import is_postgres

from .models import Experiment
from .outcomes import CUSTOMER_COLUMNS
from .unitsql import CUSTOMER, EXPOSURE, fetch, json_key


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
    """The attributes to offer on the report page (imported: the file's other columns)."""
    if experiment.source == Experiment.Source.IMPORTED:
        return sorted((experiment.import_info or {}).get("attributes") or {})
    return list(CUSTOMER_COLUMNS)
