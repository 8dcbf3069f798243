"""Marketer templates, rendered in Jinja2's sandbox. No Django here: pure and testable alone.

What a template can reach is exactly what the context holds: ``customer`` (its fields and
``customer.attributes``), ``offer`` and ``unsubscribe_url``. Anything else is an error when
the template is checked, not a blank when it is sent. HTML is autoescaped; subjects and the
preheader are plain text and may not contain CR or LF (a header injection).

    compiled = variant_compile(VariantSource("A", subject="Hi {{ customer.name }}", ...))
    message = variant_render(compiled, {"customer": {...}, "offer": {...}, "unsubscribe_url": url})
"""

from __future__ import annotations

from dataclasses import dataclass, field

from celery.exceptions import SoftTimeLimitExceeded
from jinja2 import TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError

from .sandbox import Budget, BudgetExceeded, environment_for, render_budget, stream_render

CONTEXT_NAMES = frozenset({"customer", "offer", "unsubscribe_url"})
CUSTOMER_FIELDS = frozenset(
    {"id", "external_id", "email", "name", "first_name", "country", "time_zone", "signup_date", "attributes"}
)
OFFER_FIELDS = frozenset({"name", "description", "discount", "code", "landing_url"})
PARTS = ("subject", "preheader", "text", "html")
# Filters and tests that make a missing value acceptable: `x | default("friend")`, `x is defined`.
OPTIONAL_FILTERS = frozenset({"default", "d"})
OPTIONAL_TESTS = frozenset({"defined", "undefined"})

# Immutable sandboxes with size-checked operators, no globals but range, a few filters.
_html_env = environment_for(autoescape=True, max_chars=Budget.max_chars)
_text_env = environment_for(autoescape=False, max_chars=Budget.max_chars)
# Blocks that capture output into a value (which the streaming count would not see) or
# call themselves: an email template needs none of them.
FORBIDDEN_NODES = {
    nodes.Macro: "macro", nodes.CallBlock: "call", nodes.AssignBlock: "set ... endset", nodes.FilterBlock: "filter",
    nodes.Include: "include", nodes.Import: "import", nodes.FromImport: "from ... import", nodes.Extends: "extends",
}


class TemplateProblem(ValueError):
    """A template that cannot be sent, with the variant and part it was found in."""

    def __init__(self, variant: str, part: str, message: str):
        self.variant, self.part, self.detail = variant, part, message
        super().__init__(f"variant {variant!r}, {part}: {message}")


class TemplateOverBudget(TemplateProblem):
    """A render that ran over its time or output budget: the template, not the customer,
    is at fault, so the whole campaign stops rather than each row failing slowly."""

    def __init__(self, variant: str, part: str, message: str):
        super().__init__(variant, part, f"over the render budget: {message}")


@dataclass(frozen=True)
class VariantSource:
    name: str
    subject: str
    preheader: str = ""
    text: str = ""
    html: str = ""


@dataclass
class CompiledVariant:
    name: str
    templates: dict  # part -> jinja2 Template
    # ("customer", "attributes", "tier") ... every dotted path the templates read,
    # split into those that must exist and those read behind `default` / `is defined`.
    required_paths: set[tuple[str, ...]] = field(default_factory=set)
    optional_paths: set[tuple[str, ...]] = field(default_factory=set)
    # Paths printed as they are ({{ offer.code }}, {{ customer.first_name | upper }}), outside
    # an {% if %} that tests them and not behind `default`: an empty value prints nothing,
    # so "Code " reaches the customer. The launch check counts who would get a blank.
    printed_paths: set[tuple[str, ...]] = field(default_factory=set)
    mentions_unsubscribe: bool = False

    @property
    def required_attributes(self) -> set[str]:
        return {p[2] for p in self.required_paths if p[:2] == ("customer", "attributes") and len(p) > 2}

    @property
    def attributes(self) -> set[str]:
        paths = self.required_paths | self.optional_paths
        return {p[2] for p in paths if p[:2] == ("customer", "attributes") and len(p) > 2}


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


def _path(node: nodes.Node) -> tuple[str, ...] | None:
    """customer.attributes.tier or customer["attributes"]["tier"] -> the tuple of names."""
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            parts.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name):
            parts.append(node.name)
            return tuple(reversed(parts))
        else:
            return None


def _longest_paths(root: nodes.Node) -> set[tuple[str, ...]]:
    """Every full path read under `root` (a.b.c, not also a.b and a)."""
    found: set[tuple[str, ...]] = set()
    inner: set[int] = set()
    for node in root.find_all((nodes.Getattr, nodes.Getitem)):
        if id(node) in inner:
            continue
        path = _path(node)
        if path:
            found.add(path)
            child = node.node
            while isinstance(child, (nodes.Getattr, nodes.Getitem)):
                inner.add(id(child))
                child = child.node
    return found


def _unwrapped(expr: nodes.Node) -> nodes.Node | None:
    """{{ x | upper | trim }} prints x's emptiness: look through filters that keep it
    (any filter but `default`, which is the marketer's answer to an empty value)."""
    while isinstance(expr, nodes.Filter):
        if expr.name in OPTIONAL_FILTERS:
            return None
        expr = expr.node
    return expr


def _printed(node: nodes.Node, guarded: frozenset, found: set) -> None:
    if isinstance(node, nodes.If):
        own = _path(node.test)  # `{% if offer.code %}`: find_all sees only what is below the test
        tested = frozenset(_longest_paths(node.test) | ({own} if own else set()))
        for child in node.body:
            _printed(child, guarded | tested, found)
        for branch in node.elif_:  # each elif is an If of its own: its body is guarded by its test
            _printed(branch, guarded, found)
        for child in node.else_:
            _printed(child, guarded, found)
        return
    if isinstance(node, nodes.Output):
        for expr in node.nodes:
            if isinstance(expr, nodes.TemplateData):
                continue
            inner = _unwrapped(expr)
            path = _path(inner) if inner is not None else None
            if path and not any(path[: len(g)] == g for g in guarded):
                found.add(path)
        return
    for child in node.iter_child_nodes():
        _printed(child, guarded, found)


def printed_paths(ast: nodes.Template) -> set[tuple[str, ...]]:
    """Every customer or offer path a template prints unguarded (see CompiledVariant)."""
    found: set[tuple[str, ...]] = set()
    _printed(ast, frozenset(), found)
    return {p for p in found if p[0] in ("customer", "offer") and len(p) > 1}


def _analyse(variant: str, part: str, ast: nodes.Template) -> tuple[set, set]:
    for node_type, tag in FORBIDDEN_NODES.items():
        if next(ast.find_all(node_type), None) is not None:
            raise TemplateProblem(variant, part, f"{{% {tag} %}} is not allowed in a campaign template")
    unknown = meta.find_undeclared_variables(ast) - CONTEXT_NAMES
    if unknown:
        names = ", ".join(sorted(unknown))
        raise TemplateProblem(
            variant, part,
            f"unknown variable {names}: only customer, offer and unsubscribe_url are available",
        )
    optional: set[tuple[str, ...]] = set()
    for node in ast.find_all((nodes.Filter, nodes.Test)):
        names = OPTIONAL_FILTERS if isinstance(node, nodes.Filter) else OPTIONAL_TESTS
        if node.name in names and node.node is not None:
            path = _path(node.node)
            if path:
                optional.add(path)
    paths = _longest_paths(ast)
    for path in paths | optional:
        if path[0] == "customer" and len(path) > 1 and path[1] not in CUSTOMER_FIELDS:
            raise TemplateProblem(
                variant, part,
                f"customer.{path[1]} is not a customer field (fields: {', '.join(sorted(CUSTOMER_FIELDS))}; "
                f"custom ones are under customer.attributes)",
            )
        if path[0] == "offer" and len(path) > 1 and path[1] not in OFFER_FIELDS:
            raise TemplateProblem(
                variant, part, f"offer.{path[1]} is not an offer field (fields: {', '.join(sorted(OFFER_FIELDS))})"
            )
    return paths - optional, optional


def variant_compile(source: VariantSource, budget: Budget = Budget()) -> CompiledVariant:
    """Parse and check every part; a TemplateProblem names the variant, part and cause."""
    if not source.subject.strip():
        raise TemplateProblem(source.name, "subject", "the subject is empty")
    if not (source.text.strip() or source.html.strip()):
        raise TemplateProblem(source.name, "body", "a text or an HTML body is needed")
    compiled = CompiledVariant(name=source.name, templates={})
    for part in PARTS:
        text = getattr(source, part)
        if part in ("subject", "preheader") and ("\r" in text or "\n" in text):
            raise TemplateProblem(source.name, part, "line breaks (CR/LF) are not allowed in a header")
        env = _html_env if part == "html" else _text_env
        if not text:
            continue  # nothing to render: saves a context per message
        try:
            with render_budget(budget.seconds):
                ast = env.parse(text)
                required, optional = _analyse(source.name, part, ast)
                compiled.templates[part] = env.from_string(ast)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(source.name, part, f"line {exc.lineno}: {exc.message}") from None
        except BudgetExceeded as exc:
            raise TemplateOverBudget(source.name, part, str(exc)) from None
        except (TemplateProblem, SoftTimeLimitExceeded):
            raise
        except Exception as exc:  # a literal too long to be a number, nesting too deep...
            raise TemplateProblem(source.name, part, f"{type(exc).__name__}: {exc}") from None
        compiled.required_paths |= required
        compiled.optional_paths |= optional
        compiled.printed_paths |= printed_paths(ast)
        if part in ("text", "html") and "unsubscribe_url" in meta.find_undeclared_variables(ast):
            compiled.mentions_unsubscribe = True
    return compiled


def _footer_text(url: str) -> str:
    return f"\n\n--\nTo stop receiving these emails, unsubscribe: {url}\n"


def _footer_html(url: str) -> str:
    from markupsafe import escape

    return (
        '<p style="font-size:12px;color:#666">You receive this email because you are a customer. '
        f'<a href="{escape(url)}">Unsubscribe</a></p>'
    )


def _insert_html(html: str, snippet: str, *, at_start: bool) -> str:
    lower = html.lower()
    if at_start:
        start = lower.find("<body")
        if start != -1:
            end = html.find(">", start)
            if end != -1:
                return html[: end + 1] + snippet + html[end + 1 :]
        return snippet + html
    end = lower.rfind("</body>")
    return html[:end] + snippet + html[end:] if end != -1 else html + snippet


def _part_render(compiled: CompiledVariant, part: str, context: dict, max_chars: int) -> str:
    template = compiled.templates[part]
    template.environment.max_chars = max_chars
    try:
        return stream_render(template, context, max_chars)
    except (TemplateProblem, BudgetExceeded, SoftTimeLimitExceeded):
        raise
    except UndefinedError as exc:
        raise TemplateProblem(compiled.name, part, f"undefined value: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateProblem(compiled.name, part, f"not allowed: {exc}") from None
    except Exception as exc:  # a filter on a value of the wrong type, a division by zero...
        raise TemplateProblem(compiled.name, part, f"{type(exc).__name__}: {exc}") from None


def variant_render(compiled: CompiledVariant, context: dict, budget: Budget = Budget()) -> RenderedMessage:
    """Render one message, every part within one time budget and each within the output
    budget. Raises TemplateProblem on a missing value or a header break, TemplateOverBudget
    past the budget; Celery's own time limit (SoftTimeLimitExceeded) passes through."""
    context = {k: context[k] for k in CONTEXT_NAMES if k in context}
    out: dict[str, str] = {}
    part = "subject"
    try:
        with render_budget(budget.seconds):
            for part in compiled.templates:
                out[part] = _part_render(compiled, part, context, budget.max_chars)
    except BudgetExceeded as exc:
        raise TemplateOverBudget(compiled.name, part, str(exc)) from None
    subject = out.get("subject", "").strip()
    if "\r" in subject or "\n" in subject:
        raise TemplateProblem(compiled.name, "subject", "the rendered subject contains a line break (CR/LF)")
    if not subject:
        raise TemplateProblem(compiled.name, "subject", "the rendered subject is empty")
    preheader = out.get("preheader", "").strip()
    if "\r" in preheader or "\n" in preheader:
        raise TemplateProblem(compiled.name, "preheader", "the rendered preheader contains a line break (CR/LF)")
    text, html = out.get("text", ""), out.get("html", "")
    url = context.get("unsubscribe_url", "")
    if not compiled.mentions_unsubscribe and url:
        # Every message carries a visible way out, whatever the marketer wrote.
        text = text + _footer_text(url) if text else text
        html = _insert_html(html, _footer_html(url), at_start=False) if html else html
    if preheader and html:
        from markupsafe import escape

        hidden = f'<div style="display:none;max-height:0;overflow:hidden">{escape(preheader)}</div>'
        html = _insert_html(html, hidden, at_start=True)
    return RenderedMessage(subject=subject, text=text, html=html)
