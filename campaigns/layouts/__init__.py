"""Responsive email layouts: a marketer writes the offer, not table markup.

A layout turns a few fields (headline, body, button label, brand) into the variant's HTML
and text templates, with the CSS inlined once here, when the draft is saved: the result is
an ordinary variant template, so every message still renders through the sandbox under the
render budget, and the worker does no CSS work per message.

Why inline: Gmail drops <style> for many accounts (non-Gmail addresses in the Gmail apps),
and Outlook for Windows renders with Word, which ignores most CSS outside style attributes.
So every rule lives on its element (css-inline, a maintained Rust inliner with Python
wheels: one call, no lxml, microseconds per email), and only the @media rules for phones
stay in a <style> block, where the clients that honour them read them. The markup is
tables with role="presentation", a fixed 600 px column that shrinks on phones, a
bulletproof button (a coloured cell, not a background image) and an MSO wrapper for Outlook.

No Django here: pure, tested alone.

    html = layout_html("spotlight", {"headline": "Hi {{ customer.first_name }}", "body": "...",
                                     "button": "Shop now", "brand": "Acme"})
"""

from __future__ import annotations

import html as htmlmod
import re
from dataclasses import dataclass

import css_inline

from . import skeletons


@dataclass(frozen=True)
class Layout:
    key: str
    label: str
    description: str
    shows_offer: bool  # prints offer.discount and offer.code: needs an offer with them


LAYOUTS: dict[str, Layout] = {
    layout.key: layout
    for layout in (
        Layout("spotlight", "Offer spotlight",
               "A header band, your headline and message, the offer in a box with its code, a button, the footer.", True),
        Layout("coupon", "Coupon",
               "The discount large on a cut-out coupon with its code, a short message, a button, the footer.", True),
        Layout("letter", "Personal letter",
               "A quiet header, your message as a letter, one button, the footer. No offer box.", False),
    )
}
CONTENT_FIELDS = ("headline", "body", "button", "brand")
MAX_FIELD_CHARS = {"headline": 300, "body": 20_000, "button": 60, "brand": 100}

# Jinja in the marketer's text ({{ customer.first_name }}, {% if %}...): kept verbatim, while
# the text around it is HTML-escaped and the inliner never sees it (its serializer would
# escape the ">" of `{% if x > 3 %}`).
_JINJA = re.compile(r"({{.*?}}|{%.*?%}|{#.*?#})", re.S)
# Private-use characters: no marketer types them, and the HTML parser keeps them (it would
# turn a NUL into U+FFFD).
_TOKEN = "\ue000{}\ue001"
_TOKEN_RE = re.compile("\ue000(\\d+)\ue001")


class LayoutProblem(ValueError):
    """A layout or its content that cannot make an email; the message names the field."""


def _escape_keeping_jinja(text: str, tokens: list[str]) -> str:
    out = []
    for i, piece in enumerate(_JINJA.split(text)):
        if i % 2:  # a Jinja token
            tokens.append(piece)
            out.append(_TOKEN.format(len(tokens) - 1))
        else:
            out.append(htmlmod.escape(piece, quote=True))
    return "".join(out)


def _paragraphs(text: str, tokens: list[str]) -> str:
    """Blank lines part paragraphs; a single line break stays a line break."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if b.strip()]
    return "".join(
        "<p>" + _escape_keeping_jinja(b, tokens).replace("\n", "<br>\n") + "</p>\n" for b in blocks
    )


def content_clean(content: dict | None) -> dict:
    """The content fields as strings, each within its length; unknown keys are an error."""
    content = content or {}
    if not isinstance(content, dict):
        raise LayoutProblem("content: an object with headline, body, button and brand")
    unknown = set(content) - set(CONTENT_FIELDS)
    if unknown:
        raise LayoutProblem(f"content: unknown field(s) {', '.join(sorted(unknown))} (fields: {', '.join(CONTENT_FIELDS)})")
    clean = {}
    for name in CONTENT_FIELDS:
        value = content.get(name) or ""
        if not isinstance(value, str):
            raise LayoutProblem(f"content.{name}: text")
        if len(value) > MAX_FIELD_CHARS[name]:
            raise LayoutProblem(f"content.{name}: at most {MAX_FIELD_CHARS[name]:,} characters (got {len(value):,})")
        clean[name] = value
    if not clean["body"].strip() and not clean["headline"].strip():
        raise LayoutProblem("content: a layout needs a headline or a body")
    return clean


def layout_get(key: str) -> Layout:
    try:
        return LAYOUTS[key]
    except KeyError:
        raise LayoutProblem(f"unknown layout {key!r} (layouts: {', '.join(LAYOUTS)})") from None


_inliner = css_inline.CSSInliner(
    keep_style_tags=False,
    keep_at_rules=True,  # the @media rules for phones stay in a <style>: they cannot be inlined
    load_remote_stylesheets=False,
    apply_width_attributes=True,  # width="600" on the column: Outlook reads attributes, not CSS
)


def layout_html(key: str, content: dict) -> str:
    """The variant's HTML template: this layout with the content, CSS inlined."""
    layout = layout_get(key)
    content = content_clean(content)
    tokens: list[str] = []
    fields = {
        "headline": _escape_keeping_jinja(content["headline"].strip(), tokens),
        "body": _paragraphs(content["body"], tokens),
        "button": _escape_keeping_jinja(content["button"].strip(), tokens),
        "brand": _escape_keeping_jinja(content["brand"].strip(), tokens),
    }
    document = skeletons.document(layout.key, fields)
    inlined = _inliner.inline(document)
    return _TOKEN_RE.sub(lambda m: tokens[int(m.group(1))], inlined)


def layout_text(key: str, content: dict) -> str:
    """The plain-text part that goes with the HTML (clients that show no HTML, and spam
    filters that compare the two)."""
    layout = layout_get(key)
    content = content_clean(content)
    lines = []
    if content["brand"].strip():
        lines += [content["brand"].strip(), ""]
    if content["headline"].strip():
        lines += [content["headline"].strip(), ""]
    if content["body"].strip():
        lines += [content["body"].strip(), ""]
    if layout.shows_offer:
        lines += ["{{ offer.discount }}{% if offer.code %} with the code {{ offer.code }}{% endif %}", ""]
    if content["button"].strip():
        lines += [f"{content['button'].strip()}: {{{{ offer.landing_url }}}}", ""]
    lines += ["--", "To stop receiving these emails, unsubscribe: {{ unsubscribe_url }}"]
    return "\n".join(lines) + "\n"
