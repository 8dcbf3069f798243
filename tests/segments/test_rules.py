"""segments/rules.py: validation with paths, typed values, cycles, limits. No database."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from segments import fields, rules

DAYS = fields.ArgSpec("integer", minimum=1, maximum=3650)


def registry(**segments: frozenset[int]) -> fields.Registry:
    specs = [
        fields.FieldSpec("country", "text", "customer", key="country"),
        fields.FieldSpec("signup_date", "date", "customer", key="signup_date"),
        fields.FieldSpec("created_at", "datetime", "customer", key="created_at"),
        fields.FieldSpec("attributes.plan", "text", "attribute", key="plan"),
        fields.FieldSpec("attributes.seats", "integer", "attribute", key="seats"),
        fields.FieldSpec("attributes.score", "number", "attribute", key="score"),
        fields.FieldSpec("attributes.vip", "boolean", "attribute", key="vip"),
        fields.FieldSpec("recency_days", "number", "feature", ops=("lt", "lte", "gt", "gte", "between", "is_null"),
                        key="recency_days"),
        fields.FieldSpec("orders_in_last_days", "integer", "feature", args={"days": DAYS}, key="orders_in_last_days"),
        fields.FieldSpec("events_in_last_days", "integer", "feature",
                        args={"kind": fields.ArgSpec("text"), "days": DAYS}, key="events_in_last_days"),
        fields.FieldSpec("model_score", "number", "model", args={"model": fields.ArgSpec("text", choices=("churn",))},
                        key="score"),
        fields.FieldSpec("segment", "segment", "segment"),
    ]
    graph = {int(k.lstrip("s")): v for k, v in segments.items()}
    return fields.Registry(fields={f.name: f for f in specs}, segments=graph,
                          segment_names={k: f"seg{k}" for k in graph})


def errors_of(rule, reg=None, **kwargs) -> dict[str, str]:
    with pytest.raises(rules.RuleInvalid) as caught:
        rules.rule_validate(rule, reg or registry(), **kwargs)
    return {e.path: e.message for e in caught.value.errors}


def cond(field="country", op="eq", value="US", **extra) -> dict:
    return {"field": field, "op": op, "value": value, **extra}


# --------------------------------------------------------------------------- shape


def test_valid_rule_becomes_a_typed_tree():
    node = rules.rule_validate({"all": [
        cond(),
        {"any": [cond("signup_date", "between", ["2024-01-01", "2024-06-30"]),
                 {"not": cond("attributes.vip", "eq", True)}]},
    ]}, registry())
    assert isinstance(node, rules.Group) and node.mode == "all"
    inner = node.children[1]
    assert inner.children[0].value == (date(2024, 1, 1), date(2024, 6, 30))
    assert isinstance(inner.children[1], rules.Not)
    assert inner.children[1].child.path == "rule.all[1].any[1].not"


def test_error_names_the_path_of_a_nested_bad_value():
    rule = {"all": [cond(), cond(), {"any": [cond("attributes.seats", "gt", "five")]}]}
    assert errors_of(rule) == {"rule.all[2].any[0].value": "expected an integer for attributes.seats, got a text ('five')"}


def test_every_problem_is_reported_at_once():
    rule = {"any": [cond("nope"), cond("country", "gt", "x"), cond("attributes.vip", "eq", "yes")]}
    found = errors_of(rule)
    assert set(found) == {"rule.any[0].field", "rule.any[1].op", "rule.any[2].value"}


def test_unknown_field_is_refused():
    assert "unknown field 'colour'" in errors_of(cond("colour"))["rule.field"]


def test_operator_not_allowed_for_the_type_is_refused():
    message = errors_of(cond("attributes.vip", "contains", "t"))["rule.op"]
    assert "not allowed for attributes.vip (boolean)" in message and "eq, ne, is_null" in message


def test_operator_the_field_restricts_is_refused():
    assert "not allowed" in errors_of(cond("recency_days", "eq", 3))["rule.op"]


def test_unknown_operator_is_refused():
    assert "unknown operator 'like'" in errors_of(cond(op="like"))["rule.op"]


def test_group_with_two_keys_is_refused():
    assert "exactly one key" in errors_of({"all": [], "any": []})["rule"]


def test_group_items_must_be_a_list():
    assert "expected a list" in errors_of({"all": cond()})["rule.all"]


def test_condition_with_unknown_key_is_refused():
    assert "unknown key(s) ['extra']" in errors_of(cond(extra=1))["rule"]


def test_not_an_object_is_refused():
    assert "expected an object" in errors_of({"all": ["country = US"]})["rule.all[0]"]


def test_empty_all_group_is_valid_and_means_everyone():
    node = rules.rule_validate({"all": []}, registry())
    assert node == rules.Group("all", (), "rule")


# -------------------------------------------------------------------------- values


@pytest.mark.parametrize("field,op,value,expected", [
    ("country", "in", ["US", "GB", "US"], ("US", "GB")),
    ("attributes.seats", "between", [1, 5], (1, 5)),
    ("attributes.score", "gte", 2.5, 2.5),
    ("attributes.score", "lt", 3, 3),
    ("attributes.vip", "ne", False, False),
    ("signup_date", "before", "2024-02-01", date(2024, 2, 1)),
    ("created_at", "after", "2024-02-01T10:00:00Z", datetime(2024, 2, 1, 10, tzinfo=timezone.utc)),
    ("created_at", "gte", "2024-02-01", datetime(2024, 2, 1, tzinfo=timezone.utc)),
    ("signup_date", "within_last_days", 30, 30),
    ("country", "is_null", True, True),
    ("country", "starts_with", "U", "U"),
])
def test_values_are_typed(field, op, value, expected):
    node = rules.rule_validate(cond(field, op, value), registry())
    assert node.value == expected


def test_is_null_without_value_means_true():
    node = rules.rule_validate({"field": "country", "op": "is_null"}, registry())
    assert node.value is True


@pytest.mark.parametrize("field,op,value,message", [
    ("attributes.seats", "eq", True, "expected an integer"),
    ("attributes.seats", "eq", 1.5, "expected an integer"),
    ("attributes.score", "eq", "1", "expected a number"),
    ("attributes.score", "eq", float("nan"), "expected a number"),
    ("attributes.vip", "eq", 1, "expected true or false"),
    ("country", "eq", 5, "expected a text"),
    ("signup_date", "eq", "01/02/2024", "expected a date YYYY-MM-DD"),
    ("signup_date", "eq", "2024-02-30", "expected a date YYYY-MM-DD"),
    ("created_at", "after", "yesterday", "expected a date or an ISO 8601"),
    ("country", "in", "US", "takes a non-empty list"),
    ("country", "in", [], "takes a non-empty list"),
    ("attributes.seats", "between", [1], "two values"),
    ("attributes.seats", "between", [5, 1], "low <= high"),
    ("signup_date", "within_last_days", 0, "whole number of days"),
    ("country", "is_null", "yes", "true or false"),
    ("country", "contains", "", "non-empty text"),
])
def test_wrong_value_types_are_refused(field, op, value, message):
    found = errors_of(cond(field, op, value))
    assert any(message in text for text in found.values()), found


def test_list_items_report_their_own_index():
    found = errors_of(cond("attributes.seats", "in", [1, 2, "three"]))
    assert list(found) == ["rule.value[2]"]


def test_missing_value_is_refused():
    assert "needs a value" in errors_of({"field": "country", "op": "eq"})["rule.value"]


def test_a_too_long_list_is_refused():
    found = errors_of(cond("country", "in", ["x"] * (rules.MAX_LIST + 1)))
    assert "list too long" in found["rule.value"]


def test_a_too_long_text_is_refused():
    assert "text too long" in errors_of(cond(value="x" * (rules.MAX_TEXT + 1)))["rule.value"]


def test_a_too_deep_tree_is_refused():
    rule = cond()
    for _ in range(rules.MAX_DEPTH + 1):
        rule = {"all": [rule]}
    found = errors_of(rule)
    assert any("too deep" in m for m in found.values())
    path = next(p for p, m in found.items() if "too deep" in m)
    assert path.startswith("rule.all[0].all[0]")


def test_the_deepest_allowed_tree_is_fine():
    rule = cond()
    for _ in range(rules.MAX_DEPTH):
        rule = {"all": [rule]}
    rules.rule_validate(rule, registry())


def test_too_many_conditions_is_refused():
    rule = {"any": [cond()] * (rules.MAX_CONDITIONS + 1)}
    assert any("too many conditions" in m for m in errors_of(rule).values())


# ---------------------------------------------------------------------------- args


def test_field_arguments_are_checked():
    found = errors_of(cond("orders_in_last_days", "gte", 2, args={"days": 0}))
    assert "between 1 and 3650" in found["rule.args.days"]
    found = errors_of(cond("orders_in_last_days", "gte", 2))
    assert "needs the argument 'days'" in found["rule.args.days"]
    found = errors_of(cond("orders_in_last_days", "gte", 2, args={"days": 3, "kind": "x"}))
    assert "takes no argument 'kind'" in found["rule.args.kind"]


def test_argument_choices_are_enforced():
    found = errors_of(cond("model_score", "gt", 0.5, args={"model": "unknown"}))
    assert "unknown model 'unknown'" in found["rule.args.model"]
    node = rules.rule_validate(cond("model_score", "gt", 0.5, args={"model": "churn"}), registry())
    assert node.args == {"model": "churn"}


def test_event_kind_argument_is_plain_text():
    node = rules.rule_validate(
        cond("events_in_last_days", "gte", 1, args={"kind": "support_ticket", "days": 90}), registry())
    assert node.args == {"kind": "support_ticket", "days": 90}


# ------------------------------------------------------------------------ security


@pytest.mark.parametrize("field", [
    "attributes.a') OR 1=1 --",
    "country; DROP TABLE customers_customer",
    "attributes.plan__contains",
    "id",
    "",
])
def test_field_names_outside_the_registry_are_refused(field):
    found = errors_of(cond(field))
    assert list(found) == ["rule.field"]


def test_an_injection_attempt_in_a_value_is_just_text():
    value = "x'); DROP TABLE customers_customer; --"
    node = rules.rule_validate(cond(value=value), registry())
    assert node.value == value  # bound as a parameter by the compiler, never spliced


# -------------------------------------------------------------------------- cycles


def test_membership_of_an_unknown_segment_is_refused():
    assert "unknown segment 9" in errors_of(cond("segment", "eq", 9), registry(s1=frozenset()))["rule.value"]


def test_a_segment_cannot_contain_itself():
    found = errors_of(cond("segment", "eq", 1), registry(s1=frozenset()), self_id=1)
    assert "cycle: seg1 -> seg1" in found["rule.value"]


def test_a_cycle_through_other_segments_is_refused_with_the_chain():
    # 1 is being edited to reference 2; 2 references 3; 3 references 1.
    reg = registry(s1=frozenset(), s2=frozenset({3}), s3=frozenset({1}))
    found = errors_of({"all": [cond(), cond("segment", "in", [2])]}, reg, self_id=1)
    assert found == {"rule.all[1].value[0]": "membership makes a cycle: seg1 -> seg2 -> seg3 -> seg1"}


def test_referencing_a_segment_without_a_cycle_is_fine():
    reg = registry(s1=frozenset(), s2=frozenset({3}), s3=frozenset())
    node = rules.rule_validate(cond("segment", "ne", 2), reg, self_id=1)
    assert node.value == 2


# ------------------------------------------------------------------------- walking


def test_fold_combines_bottom_up():
    node = rules.rule_validate({"any": [cond(), {"not": {"all": [cond(value="GB"), cond(value="DE")]}}]}, registry())
    text = rules.rule_fold(
        node, condition=lambda c: c.value, all_of=lambda p: "(" + " & ".join(p) + ")",
        any_of=lambda p: "(" + " | ".join(p) + ")", negate=lambda p: "~" + p,
    )
    assert text == "(US | ~(GB & DE))"
    assert [c.value for c in rules.rule_conditions(node)] == ["US", "GB", "DE"]
