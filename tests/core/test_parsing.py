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


@pytest.mark.parametrize(
    "values,expected",
    [
        (["yes", "no"] * 5 + ["maybe"], "boolean"),
        ([str(i) for i in range(10)] + ["many"], "integer"),
        (["1.5", "2"] * 5 + ["n/a"], "number"),
        (["2024-01-31"] * 10 + ["2024-02-30"], "date"),
        (["007"] + [str(i + 10) for i in range(20)], "text"),  # a code with a leading zero
        (["1,234"] + [str(i + 10) for i in range(20)], "text"),
        (["yes", "no"] * 5 + ["maybe", "perhaps"], "text"),  # two odd values in eleven: not a typo
        (["yes", "maybe"], "text"),  # too few values to call one of them odd
        (["yes", "no"] * 100 + ["maybe"] * 2, "boolean"),  # 1% of a larger sample
    ],
)
def test_one_odd_value_does_not_make_a_column_text(values, expected):
    assert parsing.infer_type(values, odd_allowed=True) == expected


def test_without_odd_values_allowed_every_value_must_fit():
    assert parsing.infer_type(["yes", "no"] * 5 + ["maybe"]) == "text"


def test_a_row_with_a_nul_byte_or_an_over_long_value_comes_back_as_its_reason():
    import io

    text = f"id,name\n1,a\x00b\n2,{'x' * (parsing.FIELD_LIMIT + 1)}\n3,ok\n"
    _, records = parsing.read_records(io.StringIO(text, newline=""), ",")
    assert list(records) == [
        (2, "has a NUL byte in column 'name'"),
        (3, "has 131,073 characters in column 'name', at most 131,072 allowed"),
        (4, {"id": "3", "name": "ok"}),
    ]


def test_a_stray_nul_is_text_while_a_workbook_is_not():
    assert parsing.not_text(b"id,name\n1,a\x00b\n" * 3) is None
    assert parsing.not_text(b"PK\x03\x04rest") == "a ZIP archive (an Excel .xlsx workbook is one too)"
