"""campaigns/rendering.py: marketer templates in Jinja2's sandbox."""

import pytest

from campaigns.rendering import TemplateProblem, VariantSource, variant_compile, variant_render

CUSTOMER = {"id": 1, "name": "Ann <b>", "first_name": "Ann", "email": "a@example.com", "attributes": {"tier": "gold"}}
CONTEXT = {"customer": CUSTOMER, "offer": {"code": "X1", "discount": "10%"}, "unsubscribe_url": "https://s.example/u/t/"}


def render(**parts):
    parts.setdefault("subject", "Hi")
    parts.setdefault("text", "body")
    return variant_render(variant_compile(VariantSource(name="A", **parts)), CONTEXT)


def test_html_is_autoescaped_and_text_is_not():
    message = render(html="<p>{{ customer.name }}</p>", text="{{ customer.name }}")
    assert "<p>Ann &lt;b&gt;</p>" in message.html
    assert message.text.startswith("Ann <b>")


def test_an_undefined_attribute_fails_naming_the_variant_and_the_value():
    with pytest.raises(TemplateProblem) as problem:
        render(subject="Hi {{ customer.attributes.shoe_size }}")
    assert problem.value.variant == "A" and problem.value.part == "subject"
    assert "shoe_size" in str(problem.value)


def test_a_variable_outside_the_context_is_refused_at_compile_time():
    with pytest.raises(TemplateProblem, match="unknown variable settings"):
        variant_compile(VariantSource(name="A", subject="{{ settings.SECRET_KEY }}", text="x"))


def test_an_unknown_customer_field_is_refused_at_compile_time():
    with pytest.raises(TemplateProblem, match="customer.password is not a customer field"):
        variant_compile(VariantSource(name="A", subject="{{ customer.password }}", text="x"))


def test_the_sandbox_blocks_reaching_python_internals():
    with pytest.raises(TemplateProblem):
        render(text="{{ customer.__class__.__mro__ }}")


def test_line_breaks_in_a_subject_template_are_refused():
    with pytest.raises(TemplateProblem, match="CR/LF"):
        variant_compile(VariantSource(name="A", subject="Hi\r\nBcc: x@evil.example", text="x"))


def test_a_rendered_subject_with_a_line_break_is_refused():
    context = dict(CONTEXT, customer=dict(CUSTOMER, name="Ann\nBcc: x@evil.example"))
    compiled = variant_compile(VariantSource(name="A", subject="Hi {{ customer.name }}", text="x"))
    with pytest.raises(TemplateProblem, match="line break"):
        variant_render(compiled, context)


def test_default_makes_an_attribute_optional():
    compiled = variant_compile(VariantSource(name="A", subject="{{ customer.attributes.size | default('M') }}", text="x"))
    assert compiled.required_attributes == set() and compiled.attributes == {"size"}
    assert variant_render(compiled, CONTEXT).subject == "M"


def test_required_attributes_are_listed():
    compiled = variant_compile(VariantSource(name="A", subject="{{ customer.attributes.tier }}", text="x"))
    assert compiled.required_attributes == {"tier"}


def test_a_visible_unsubscribe_link_is_added_when_the_template_has_none():
    message = render(text="Hello", html="<html><body><p>Hello</p></body></html>")
    assert "https://s.example/u/t/" in message.text
    assert 'href="https://s.example/u/t/"' in message.html and message.html.endswith("</body></html>")


def test_the_preheader_is_a_hidden_first_line_of_the_html():
    message = render(preheader="Only today", html="<body><p>x</p></body>")
    assert message.html.index("Only today") < message.html.index("<p>x</p>")


@pytest.mark.parametrize("template, printed", [
    ("Code {{ offer.code }}", {("offer", "code")}),
    ("Hi {{ customer.first_name | upper | trim }}", {("customer", "first_name")}),
    ("Hi {{ customer.first_name | default('there') }}", set()),
    ("{% if offer.code %}Code {{ offer.code }}{% endif %}", set()),
    ("{% if offer.code %}x{% elif customer.country %}{{ customer.country }}{% else %}{{ offer.name }}{% endif %}",
     {("offer", "name")}),
    ("{{ customer.attributes.tier }} {{ unsubscribe_url }}", {("customer", "attributes", "tier")}),
])
def test_printed_paths_are_the_values_printed_unguarded(template, printed):
    assert variant_compile(VariantSource(name="A", subject="Hi", text=template)).printed_paths == printed
