"""segments/fields.py: the declared rule fields and typed values. No database."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from segments import fields

DECLARED = [*fields.CUSTOMER_FIELDS, *fields.FEATURE_FIELDS, *fields.MODEL_FIELDS, fields.MEMBERSHIP_FIELD]
MEASURES = {"count", "sum", "days_since_last", "tenure"}


def test_declared_fields_have_unique_names_known_types_and_operators():
    names = [spec.name for spec in DECLARED]
    assert len(names) == len(set(names))
    for spec in DECLARED:
        assert spec.type in fields.TYPES
        assert set(spec.operators) <= set(fields.OPS_BY_TYPE[spec.type]) | {"is_null"}, spec.name


def test_every_feature_field_names_a_recipe_the_compiler_knows():
    for spec in fields.FEATURE_FIELDS:
        assert spec.feature is not None and spec.feature.measure in MEASURES, spec.name
        assert spec.feature.rows in ("orders", "events"), spec.name


def test_registry_describes_fields_for_the_builder():
    spec = next(s for s in fields.FEATURE_FIELDS if s.name == "orders_in_last_days")
    described = spec.describe()
    assert described["type"] == "integer" and "between" in described["operators"]
    assert described["args"]["days"] == {"type": "integer", "required": True, "min": 1, "max": 3650,
                                         "label": "days"}


def test_an_attribute_of_an_unknown_type_compares_as_text():
    assert fields.attribute_field("plan", "json").type == "text"
    assert fields.attribute_field("seats", "integer").name == "attributes.seats"


@pytest.mark.parametrize("value, expected", [
    ("2024-02-29", date(2024, 2, 29)), ("2024-02-30", None), ("20240229", None), (20240229, None),
])
def test_parse_date(value, expected):
    assert fields.parse_date(value) == expected


def test_parse_datetime_reads_a_bare_date_and_z_as_utc():
    assert fields.parse_datetime("2024-01-02") == datetime(2024, 1, 2, tzinfo=timezone.utc)
    assert fields.parse_datetime("2024-01-02T03:04:05Z") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_booleans_are_not_numbers():
    assert not fields.is_int(True) and not fields.is_number(False)
    assert fields.is_number(2.5) and not fields.is_number(float("inf"))
