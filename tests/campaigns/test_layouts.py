"""campaigns/layouts: responsive email layouts whose CSS is inlined once, at save."""

import re

import pytest

from campaigns.layouts import LAYOUTS, LayoutProblem, layout_html, layout_text
from campaigns.rendering import VariantSource, variant_compile, variant_render

CONTENT = {"headline": "Hi {{ customer.first_name }} & friends", "body": "Line one <b>\nline two\n\n"
           "{% if customer.country > 'A' %}Far away{% endif %}", "button": "Shop now", "brand": "Acme"}
CONTEXT = {"customer": {"first_name": "Ann", "country": "FR"},
           "offer": {"discount": "20% off", "code": "SPRING20", "name": "Spring", "landing_url": "https://shop.example/s"},
           "unsubscribe_url": "https://offerlab.example/u/token/"}


@pytest.mark.parametrize("key", list(LAYOUTS))
def test_every_layout_renders_in_the_sandbox_with_styles_on_the_elements(key):
    html = layout_html(key, CONTENT)
    message = variant_render(variant_compile(VariantSource("A", subject="s", html=html, text=layout_text(key, CONTENT))), CONTEXT)
    # Inlined: the body copy carries its own font size; only @media rules stay in <style>.
    assert re.search(r'<p style="[^"]*font-size: 16px', message.html)
    style_blocks = re.findall(r"<style>(.*?)</style>", message.html, re.S)
    assert style_blocks and all(block.strip().startswith("@media") for block in style_blocks)
    assert 'width="600"' in message.html  # Outlook reads the attribute
    assert "Hi Ann &amp; friends" in message.html and "Far away" in message.html
    assert "Line one &lt;b&gt;<br>" in message.html  # the marketer's text is text, not markup
    assert 'href="https://shop.example/s"' in message.html and "Shop now" in message.html
    assert 'href="https://offerlab.example/u/token/"' in message.html
    assert "https://offerlab.example/u/token/" in message.text and "Hi Ann & friends" in message.text


def test_offer_layouts_print_the_discount_and_the_code_and_the_letter_does_not():
    spotlight = variant_render(variant_compile(VariantSource("A", subject="s", html=layout_html("spotlight", CONTENT))), CONTEXT)
    letter = variant_render(variant_compile(VariantSource("A", subject="s", html=layout_html("letter", CONTENT))), CONTEXT)
    assert "20% off" in spotlight.html and "SPRING20" in spotlight.html
    assert "SPRING20" not in letter.html


def test_the_offer_layout_prints_the_discount_unguarded_so_the_launch_check_sees_it():
    compiled = variant_compile(VariantSource("A", subject="s", html=layout_html("spotlight", CONTENT)))
    assert ("offer", "discount") in compiled.printed_paths and ("offer", "landing_url") in compiled.printed_paths
    assert ("offer", "code") not in compiled.printed_paths  # shown only {% if offer.code %}


@pytest.mark.parametrize("key, content, message", [
    ("poster", {"body": "x"}, "unknown layout 'poster'"),
    ("letter", {"body": "x", "footer": "y"}, "unknown field(s) footer"),
    ("letter", {"headline": "", "body": " "}, "needs a headline or a body"),
    ("letter", {"body": "x", "button": "b" * 61}, "content.button: at most 60"),
])
def test_bad_layout_input_is_refused_naming_the_field(key, content, message):
    with pytest.raises(LayoutProblem, match=re.escape(message)):
        layout_html(key, content)
