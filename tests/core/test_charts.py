import xml.etree.ElementTree as ET

from core.charts import Series, interval_chart, line_chart, matrix_chart, nice_ticks, sparkline

SVG = "{http://www.w3.org/2000/svg}"


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 0.0125)[-1] >= 0.01


def test_line_chart_is_valid_svg_with_a_path_per_series_and_escaped_names():
    svg = line_chart(
        [Series("A <b>", [0, 1, 2], [1, 0.9, 0.7], lo=[1, 0.8, 0.6], hi=[1, 1, 0.8], step=True), Series("B", [0, 2], [1, 0.5])],
        title="Survival", x_label="days", y_label="share",
    )
    root = ET.fromstring(svg)
    assert root.find(f"{SVG}title").text == "Survival"
    names = [p.get("data-name") for p in root.iter(f"{SVG}path") if p.get("class") == "series"]
    assert names == ["A <b>", "B"]  # escaped in the markup, intact when parsed


def test_interval_chart_draws_a_point_per_row_and_describes_the_numbers():
    svg = interval_chart([("control", 0.05, 0.04, 0.06), ("treatment", 0.08, 0.07, 0.09)], title="Rates", value_label="rate", percent=True)
    root = ET.fromstring(svg)
    assert len([c for c in root.iter(f"{SVG}circle")]) == 2
    assert "treatment: 8% (7% to 9%)" in root.find(f"{SVG}desc").text


def test_matrix_and_sparkline_render():
    ET.fromstring(matrix_chart(["a", "b"], ["a", "b"], [[3, 1], [0, 2]], title="moves"))
    ET.fromstring(sparkline([1, 2, 3], title="size"))


def test_interval_chart_draws_rows_without_numbers_as_not_available():
    svg = interval_chart([("empty", None, None, None), ("one", 0.5, None, None)], title="Rates", value_label="rate")
    root = ET.fromstring(svg)
    assert "empty: n/a (n/a to n/a)" in root.find(f"{SVG}desc").text
    assert len(list(root.iter(f"{SVG}circle"))) == 1


def test_a_size_trend_draws_a_line_only_when_the_size_moved():
    from core.charts import size_trend

    assert size_trend([], title="t") == ("", "not refreshed yet")
    assert size_trend([120], title="t") == ("", "one refresh so far: the trend starts at the next")
    assert size_trend([2353, 2353, 2353], title="t") == ("", "unchanged at 2,353 over 3 refreshes")
    svg, words = size_trend([1500, 2353], title="t")
    ET.fromstring(svg)
    assert words == "1,500 to 2,353 over 2 refreshes"
