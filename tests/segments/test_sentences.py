"""segments/sentences.py: a rule read as a sentence, its problems named by condition."""

from segments.sentences import condition_number, error_words, op_name, rule_sentence

LABELS = {"country": "Country", "attributes.vip": "VIP", "orders_count": "Orders"}


def test_operators_have_human_names():
    assert [op_name(o) for o in ("eq", "lte", "not_in", "in")] == ["is", "is at most", "is not one of", "is one of"]


def test_a_saved_rule_reads_as_a_sentence():
    rule = {"all": [{"field": "country", "op": "in", "value": ["US", "GB"]},
                    {"field": "attributes.vip", "op": "eq", "value": True},
                    {"not": {"field": "orders_count", "op": "lte", "value": 2, "args": {"days": 90}}}]}
    assert rule_sentence(rule, LABELS) == (
        "Customers whose Country is one of US, GB and whose VIP is true "
        "and whose not (Orders (in the last 90 days) is at most 2)")


def test_nested_groups_are_bracketed_and_a_lone_condition_reads_too():
    rule = {"any": [{"field": "country", "op": "eq", "value": "FR"},
                    {"all": [{"field": "country", "op": "eq", "value": "US"},
                             {"field": "attributes.vip", "op": "is_null", "value": False}]}]}
    assert rule_sentence(rule, LABELS) == "Customers whose Country is FR or whose (Country is US and VIP is not empty)"
    assert rule_sentence({"field": "country", "op": "ne", "value": "US"}, LABELS) == "Customers whose Country is not US"


def test_problems_name_the_condition_and_its_field_not_a_json_path():
    rule = {"all": [{"field": "country", "op": "eq", "value": "US"}, {"field": "orders_count", "op": "lte", "value": "x"}]}
    words = error_words([{"path": "rule.all[1].value", "message": "expected a number, got text 'x'"}], rule, LABELS)
    assert words == ["Condition 2 (Orders): Expected a number, got text 'x'"]
    assert condition_number("rule.all[0].any[2].op") == "Condition 1.3"
    assert error_words([{"path": "rule", "message": "not valid JSON"}], None, LABELS) == ["The rule: Not valid JSON"]


def test_a_problem_inside_a_condition_names_its_field_and_operators_as_the_builder_does():
    rule = {"all": [{"field": "country", "op": "eq", "value": "US"},
                    {"field": "attributes.vip", "op": "eq", "value": "perhaps"}]}
    said = error_words([
        {"path": "rule.all[1].value", "message": "expected true or false for attributes.vip, got text 'perhaps'"},
        {"path": "rule.all[1].op", "message": "operator 'lt' is not allowed for attributes.vip (boolean); "
                                              "use one of eq, ne, is_null"},
        {"path": "rule.all[1].value", "message": "is_null takes true or false, got text 'x'"},
        {"path": "rule.all[1].value", "message": "between needs low <= high"},
    ], rule, LABELS)
    assert said == [
        "Condition 2 (VIP): Expected true or false, got text 'perhaps'",
        "Condition 2 (VIP): Operator \u201cis less than\u201d is not allowed for VIP (boolean); "
        "use one of \u201cis\u201d, \u201cis not\u201d, \u201cis empty\u201d",
        "Condition 2 (VIP): \u201cis empty\u201d takes true or false, got text 'x'",
        "Condition 2 (VIP): \u201cis between\u201d needs the lower value first",
    ]
    assert not any("attributes." in s or "is_null" in s for s in said)
