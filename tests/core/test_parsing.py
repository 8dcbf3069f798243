import pytest

from core import parsing


@pytest.mark.parametrize(
    "values,expected",
    [
        (["1", "0", "1"], "boolean"),
        (["yes", "No"], "boolean"),
        (["TRUE", "false"], "boolean"),
        (["3", "10", "-2"], "integer"),
        (["3", "1.5"], "number"),
        (["007", "12"], "text"),
        (["2024-01-31", "2023-12-01"], "date"),
        (["2024-02-30"], "text"),
        (["", "  "], "text"),
    ],
)
def test_infer_type_picks_the_narrowest_type(values, expected):
    assert parsing.infer_type(values) == expected


@pytest.mark.parametrize("text", ["maybe", "2"])
def test_parse_bool_refuses_other_words(text):
    with pytest.raises(parsing.ValueProblem, match="boolean"):
        parsing.parse_bool(text)


def test_parse_datetime_takes_utc_for_naive_times():
    assert parsing.parse_datetime("2024-05-01 10:00").isoformat() == "2024-05-01T10:00:00+00:00"
    assert parsing.parse_datetime("2024-05-01T10:00:00Z").utcoffset().total_seconds() == 0
