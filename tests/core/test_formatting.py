"""core/formatting.py: numbers read the same everywhere (DESIGN.md)."""

import pytest

from core import formatting


def test_shares_read_in_percent_and_their_differences_in_points():
    assert formatting.percent(0.0534) == "5.34%"
    assert formatting.percent(0.05, 1) == "5.0%"
    assert formatting.points(0.0068) == "+0.68 points"
    assert formatting.points_interval([-0.001, 0.0124]) == "-0.10 to +1.24 points"


def test_lift_reads_in_percent_with_its_sign():
    assert formatting.lift(1.188) == "+118.8%"
    assert formatting.lift_interval([0.031, 0.098]) == "+3.1% to +9.8%"


@pytest.mark.parametrize("p, text", [
    (1.52e-13, "< 0.0001"), (0.0, "< 0.0001"), (0.00009999, "< 0.0001"), (0.0001, "0.0001"),
    (0.047213, "0.0472"), (0.206, "0.206"), (1.0, "1"),
])
def test_p_values_below_0_0001_read_as_a_bound(p, text):
    assert formatting.p_value(p) == text


def test_a_p_value_in_a_sentence_uses_equals_or_below():
    assert formatting.p_clause(0.0472) == "p = 0.0472"
    assert formatting.p_clause(1e-9) == "p < 0.0001"


def test_counts_means_and_money_have_thousands_separators():
    assert formatting.count(1234567) == "1,234,567"
    assert formatting.number(1234.5) == "1,234.50"
    assert formatting.number(0.00123) == "0.00123"
    assert formatting.signed(-1234.5) == "-1,234.50"
    assert formatting.money(1234.5, "EUR") == "1,234.50 EUR"


def test_anything_undefined_reads_n_a():
    for spell in (formatting.percent, formatting.points, formatting.lift, formatting.number, formatting.signed,
                  formatting.count, formatting.money, formatting.p_value):
        assert spell(None) == "n/a"
    assert formatting.signed_interval([None, 1.0]) == "n/a"


def test_a_moment_reads_day_month_year_time_and_zone():
    import datetime as dt
    assert formatting.moment(dt.datetime(2026, 12, 2, 4, 7), "UTC") == "2 Dec 2026, 04:07 UTC"
    assert formatting.day(dt.date(2026, 1, 9)) == "9 Jan 2026"


@pytest.mark.parametrize(("seconds", "text"), [
    (0.4, "less than a second"), (1, "1 second"), (45, "45 seconds"), (59.6, "1 minute"), (61, "1 minute 1 second"),
    (125, "2 minutes 5 seconds"), (3780, "1 hour 3 minutes"), (3789, "1 hour 3 minutes"), (187_200, "2 days 4 hours"),
    (None, "n/a"),
])
def test_a_duration_reads_in_words_with_two_units_at_most(seconds, text):
    assert formatting.duration(seconds) == text


def test_tests_and_model_metrics_have_plain_names():
    assert formatting.method_name("two_proportion_ztest") == "two-proportion z-test"
    assert formatting.method_name("welch_t") == "Welch's t-test"
    assert formatting.metric_term("roc_auc") == "ROC AUC"
    assert "lower is better" in formatting.metric_explained("brier")
    assert formatting.metric_term("some_new_key") == "some new key"


@pytest.mark.parametrize("a, b, text", [
    (0.02, 0.022, ("2.00%", "2.20%")), (0.02, 0.02001, ("2.000%", "2.001%")), (0.015, 0.0505, ("1.50%", "5.05%")),
])
def test_two_different_rates_never_read_the_same(a, b, text):
    assert formatting.percent_pair(a, b) == text
