"""campaigns/sandbox.py through rendering: every render has a time and output budget,
constant folding is off, operators are size-checked, only a few filters and no methods."""

import threading
import time

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from campaigns.rendering import TemplateOverBudget, TemplateProblem, VariantSource, variant_compile, variant_render
from campaigns.sandbox import Budget

LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x"
CONTEXT = {
    "customer": {"id": 7, "name": "Ann Lee", "first_name": "Ann", "attributes": {}},
    "offer": {"name": "o", "description": "d" * 100, "discount": "20%", "code": "C", "landing_url": ""},
    "unsubscribe_url": "https://x.example/u/t/",
}
FAST = Budget(seconds=0.5, max_chars=64 * 1024)


def _render(text: str, budget: Budget = FAST, context=CONTEXT):
    return variant_render(variant_compile(VariantSource("A", subject="Hi", text=text), budget), context, budget)


def _timed(fn):
    started = time.monotonic()
    try:
        fn()
    finally:
        return time.monotonic() - started


def test_a_nested_loop_is_interrupted_within_its_budget():
    with pytest.raises(TemplateOverBudget, match=r"variant 'A', text: over the render budget: took longer than 0.5 s"):
        started = time.monotonic()
        _render(LOOP)
    assert time.monotonic() - started < 2


def test_the_budget_holds_outside_the_main_thread_too():
    errors = []

    def run():
        try:
            _render(LOOP)
        except TemplateOverBudget as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    started = time.monotonic()
    thread.start()
    thread.join(5)
    assert not thread.is_alive() and len(errors) == 1
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("text", ["{{ 9**(9**8) }}", "{{ 2 ** 100000 }}", '{{ "a" * 300000000 }}',
                                  '{{ [1] * 300000000 }}', '{{ offer.description * 100000 }}'])
def test_huge_values_are_refused_without_compiling_or_building_them(text):
    # Compiling is instant: no constant folding at compile time.
    assert _timed(lambda: variant_compile(VariantSource("A", subject="Hi", text=text), FAST)) < 0.5
    with pytest.raises(TemplateOverBudget):
        _render(text)


def test_doubling_a_value_is_stopped_at_the_output_budget():
    doubling = "{% set a = offer.description %}" + "".join(
        f"{{% set {n} = {p} ~ {p} %}}" for p, n in zip("abcdefghijklmnopqrstuvwxy", "bcdefghijklmnopqrstuvwxyz")
    ) + "{{ z }}"
    with pytest.raises(TemplateOverBudget, match="characters"):
        _render(doubling)


def test_output_is_counted_while_it_streams():
    with pytest.raises(TemplateOverBudget, match="output over 64 KB"):
        _render("{% for i in range(100000) %}{{ offer.description }}{% endfor %}")


@pytest.mark.parametrize("text, message", [
    ('{{ "a".ljust(1000000000) }}', "not allowed|undefined"),
    ('{{ customer.name.replace("a", "b") }}', "not allowed|undefined"),
    ('{{ "%0999999999d" % 1 }}', "not allowed"),
])
def test_methods_and_percent_formatting_are_refused(text, message):
    with pytest.raises(TemplateProblem, match=message):
        _render(text)


@pytest.mark.parametrize("text", [
    "{{ customer.name | center(1000000000) }}", "{{ customer.name | format(1) }}",
    "{% set ns = namespace(x=1) %}{{ ns.x }}", "{{ lipsum() }}", "{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f('a') }}",
    "{% set x %}{% for i in range(3) %}a{% endfor %}{% endset %}{{ x }}", "{% filter upper %}a{% endfilter %}",
])
def test_only_a_short_list_of_filters_and_no_capturing_blocks(text):
    with pytest.raises(TemplateProblem):
        variant_compile(VariantSource("A", subject="Hi", text=text), FAST)


def test_the_filters_a_template_needs_still_work():
    text = "{{ customer.first_name | upper }} {{ customer.attributes.tier | default('friend') | title }} {{ 3.14159 | round(2) }}"
    assert _render(text).text.startswith("ANN Friend 3.14")


def test_a_dict_key_named_like_a_method_is_the_key():
    context = CONTEXT | {"customer": CONTEXT["customer"] | {"attributes": {"items": "three"}}}
    assert _render("{{ customer.attributes.items }}", context=context).text.startswith("three")


class _Slow:
    def __str__(self):
        raise SoftTimeLimitExceeded()


def test_celerys_own_time_limit_is_never_swallowed():
    context = CONTEXT | {"customer": CONTEXT["customer"] | {"name": _Slow()}}
    with pytest.raises(SoftTimeLimitExceeded):
        _render("{{ customer.name }}", context=context)


def test_an_alarm_set_by_someone_else_is_given_back():
    import signal

    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        _render("{{ customer.name }}")
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25 < remaining <= 30
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def test_a_signal_handler_set_by_someone_else_is_given_back():
    import signal

    def theirs(signum, frame):
        pass

    before = signal.signal(signal.SIGPROF, theirs)
    try:
        _render("{{ customer.name }}")
        assert signal.getsignal(signal.SIGPROF) is theirs
    finally:
        signal.signal(signal.SIGPROF, before)
