"""core/templatetags/present.py: the filters every template spells numbers and times with."""

import datetime as dt

import pytest
from django.template import Context, Template

from core.templatetags.present import nav_current


def render(text: str, **context) -> str:
    return Template(text).render(Context(context))


def test_a_moment_reads_one_way_with_its_time_zone(settings):
    settings.TIME_ZONE = "Europe/Paris"
    moment = dt.datetime(2026, 12, 2, 14, 5, tzinfo=dt.timezone.utc)
    assert render("{{ t|when }}", t=moment) == "2 Dec 2026, 15:05 CET"


def test_durations_read_in_words_from_seconds_or_between_two_moments():
    start = dt.datetime(2026, 12, 2, 14, 5, tzinfo=dt.timezone.utc)
    assert render("{{ s|duration }}", s=125) == "2 minutes 5 seconds"
    assert render("{{ a|took:b }}", a=start, b=start + dt.timedelta(hours=1, minutes=3)) == "1 hour 3 minutes"
    assert render("{{ a|took:b }}", a=start.isoformat(), b=(start + dt.timedelta(seconds=9)).isoformat()) == "9 seconds"
    assert render("{{ a|took:b }}", a=None, b=start) == "n/a"


def test_an_iso_string_and_a_date_read_the_same_way():
    assert render("{{ t|when }}", t="2026-03-01T12:00:00+00:00") == "1 Mar 2026, 12:00 UTC"
    assert render("{{ d|when }} / {{ d|day }}", d=dt.date(2026, 3, 1)) == "1 Mar 2026 / 1 Mar 2026"
    assert render("{{ t|when }}", t=None) == "—"


def test_counts_have_thousands_separators_and_rates_read_through_core_formatting():
    assert render("{{ n|count }}", n=20004) == "20,004"
    assert render("{{ x|percent }} {{ x|points }} {{ y|lift }}", x=0.0357, y=1.1884) == "3.57% +3.57 points +118.8%"
    assert render("{{ p|pvalue }}", p=1.5e-13) == "&lt; 0.0001"
    assert render("{{ k|method }}", k="two_proportion_ztest") == "two-proportion z-test"


@pytest.mark.parametrize("path, section", [
    ("/", "/"), ("/customers/12/", "/customers/"), ("/customers/imports/3/", "/customers/imports/"),
    ("/segments/models/4/", "/segments/models/"), ("/segments/7/", "/segments/"),
    ("/campaigns/outbox/", "/campaigns/outbox/"), ("/campaigns/new/", "/campaigns/"), ("/admin/", ""),
])
def test_the_current_section_is_the_longest_matching_nav_link(path, section):
    assert nav_current(path) == section


def test_money_reads_with_separators_and_its_currency():
    assert render('{{ x|money:"EUR" }}', x=1234.5) == "1,234.50 EUR"
    assert render("{{ x|money }}", x=None) == "n/a"
