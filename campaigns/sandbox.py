"""The Jinja2 environment marketer templates run in, and the budget every render gets.

Templates are untrusted code: a loop can spin, an operator can build a gigabyte string, and
Jinja folds constant expressions while compiling (``{{ 9**(9**8) }}`` would hang the save).
So: no constant folding (``optimized=False``), size-checked ``*`` ``**`` ``+`` ``%`` and
``~``, no method calls and no globals but ``range``, a short list of filters, output counted
while it streams, and a wall-clock budget that interrupts pure-Python loops. No Django here.

    with render_budget(seconds=2.0):
        text = stream_render(template, context, max_chars=512 * 1024)
"""

from __future__ import annotations

import _signal
import ctypes
import math
import operator
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from jinja2 import StrictUndefined, Template
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# What a marketer's template may use: enough to format a name, a price and a date.
FILTERS = frozenset({
    "default", "d", "upper", "lower", "title", "capitalize", "trim", "truncate", "escape", "e", "striptags",
    "round", "int", "float", "string", "length", "count", "first", "last", "abs", "urlencode", "wordcount",
})
MAX_INT_BITS = 4096  # far beyond any price or count, far below a number that takes seconds to print


class BudgetExceeded(Exception):
    """A render ran over its time or output budget."""


@dataclass(frozen=True)
class Budget:
    seconds: float = 2.0
    max_chars: int = 512 * 1024


class _Codegen(CodeGenerator):
    """`a ~ b` is compiled to a plain join; wrap it so its result is size-checked too."""

    def visit_Concat(self, node, frame) -> None:  # noqa: N802 (Jinja's visitor naming)
        self.write("environment.size_checked(")
        super().visit_Concat(node, frame)
        self.write(")")


def _sized(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else 0


class TemplateEnvironment(ImmutableSandboxedEnvironment):
    code_generator_class = _Codegen
    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})
    max_chars = Budget.max_chars

    def __init__(self, *, autoescape: bool):
        super().__init__(autoescape=autoescape, undefined=StrictUndefined, optimized=False)
        self.filters = {name: f for name, f in self.filters.items() if name in FILTERS}
        self.globals = {"range": self.globals["range"]}

    def size_checked(self, value: Any) -> Any:
        if _sized(value) > self.max_chars:
            raise BudgetExceeded(f"a value of more than {self.max_chars:,} characters")
        return value

    def call_binop(self, context, op: str, left: Any, right: Any) -> Any:
        if op == "%" and isinstance(left, str):
            raise SecurityError("string formatting with % is not allowed; use ~ to join")
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                if _sized(seq) and isinstance(times, int) and _sized(seq) * max(times, 0) > self.max_chars:
                    raise BudgetExceeded(f"a value of more than {self.max_chars:,} characters")
        if op == "+" and _sized(left) + _sized(right) > self.max_chars:
            raise BudgetExceeded(f"a value of more than {self.max_chars:,} characters")
        if op == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            if right * math.log2(abs(left)) > MAX_INT_BITS:
                raise BudgetExceeded(f"a number of more than {MAX_INT_BITS} bits")
        result = {"*": operator.mul, "**": operator.pow, "+": operator.add, "%": operator.mod,
                  "//": operator.floordiv}[op](left, right)
        if isinstance(result, int) and result.bit_length() > MAX_INT_BITS:
            raise BudgetExceeded(f"a number of more than {MAX_INT_BITS} bits")
        return self.size_checked(result)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # customer.attributes.items is the attribute named "items", not dict.items.
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # No method calls at all: "a".ljust(10**9) or "a".replace("a", ...) would allocate
        # before any check could run. Filters do what a template needs.
        return not callable(value) and super().is_safe_attribute(obj, attr, value)

    def call(__self, __context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if __obj is not __self.globals["range"]:
            raise SecurityError(f"{getattr(__obj, '__name__', 'this')} cannot be called in a template")
        return super().call(__context, __obj, *args, **kwargs)


def environment_for(*, autoescape: bool, max_chars: int) -> TemplateEnvironment:
    env = TemplateEnvironment(autoescape=autoescape)
    env.max_chars = max_chars
    return env


def stream_render(template: Template, context: dict, max_chars: int) -> str:
    """Render, counting the output as it is produced: stop as soon as it is too long."""
    chunks, size = [], 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > max_chars:
            raise BudgetExceeded(f"output over {max_chars // 1024:,} KB")
        chunks.append(chunk)
    return "".join(chunks)


class _Timer:
    """One armed deadline; `fired` once it has interrupted the render."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.active = True
        self.fired = False
        self.lock = threading.Lock()


_message = "took longer than {seconds:g} s of CPU time"


@contextmanager
def render_budget(seconds: float) -> Iterator[None]:
    """Interrupt the code inside after `seconds` with BudgetExceeded, even a pure-Python loop.

    In the main thread (gunicorn's sync workers, Celery's prefork children, commands) a
    timer on the process's CPU time (SIGPROF) does it: a render is judged by the work it
    does, so a busy host (another process holding the cores) never fails a campaign whose
    template is fine. A template cannot sleep or wait on I/O, so CPU time is all it spends. Elsewhere (a threaded dev server) a watchdog thread raises the
    exception in this thread through the interpreter's async-exception hook.
    """
    if seconds <= 0:
        yield
        return
    timer = _Timer(seconds)
    if threading.current_thread() is threading.main_thread():
        with _alarm(timer):
            yield
    else:
        with _watchdog(timer):
            yield


@contextmanager
def _alarm(timer: _Timer) -> Iterator[None]:
    def on_alarm(signum, frame):
        if timer.active:
            timer.fired = True
            # Again shortly, in case some code in between catches Exception and carries on.
            signal.setitimer(signal.ITIMER_PROF, 0.05)
            raise BudgetExceeded(_message.format(seconds=timer.seconds))

    # _signal's own signal(), not the signal module's wrapper: the wrapper turns the handler
    # it returns into a Handlers enum member when it can, and for a function that costs a
    # failed enum lookup (a formatted ValueError) on every restore: 5% of a send worker's
    # samples, once per message.
    previous = _signal.signal(signal.SIGPROF, on_alarm)
    outer_delay, _ = signal.setitimer(signal.ITIMER_PROF, timer.seconds)
    started = time.process_time()
    try:
        yield
    finally:
        timer.active = False
        signal.setitimer(signal.ITIMER_PROF, 0)
        _signal.signal(signal.SIGPROF, previous)
        if outer_delay:  # someone else's timer was running: give it back what is left of it
            signal.setitimer(signal.ITIMER_PROF, max(outer_delay - (time.process_time() - started), 0.001))


_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)


class BudgetInterrupt(BudgetExceeded):
    """Raised into a non-main thread (it must be a class, and it cannot carry a message)."""

    def __init__(self, *args):
        super().__init__(*(args or ("took longer than its time budget",)))


@contextmanager
def _watchdog(timer: _Timer) -> Iterator[None]:
    ident = threading.get_ident()

    def fire() -> None:
        with timer.lock:
            if timer.active:
                timer.fired = True
                _set_async_exc(ident, BudgetInterrupt)

    watchdog = threading.Timer(timer.seconds, fire)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield
    finally:
        with timer.lock:
            timer.active = False
            watchdog.cancel()
            if timer.fired:
                # Fired but maybe not delivered yet: it must not land in the caller's code.
                _set_async_exc(ident, ctypes.py_object())
