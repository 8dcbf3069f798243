"""Numbers for people: the one spelling pages, exports and commands use. Pure, no Django.

DESIGN.md, "Numbers read the same everywhere": rates in %, their differences in percentage
points, lift in %, p-values as "< 0.0001" below that. Anything undefined reads "n/a".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

NA = "n/a"
P_FLOOR = 0.0001  # below this a p-value reads "< 0.0001": more digits only suggest precision


def percent(x: float | None, digits: int = 2) -> str:
    """A share: 0.0534 -> "5.34%"."""
    return NA if x is None else f"{x * 100:.{digits}f}%"


def points(x: float | None, digits: int = 2) -> str:
    """A difference of two shares: 0.0068 -> "+0.68 points"."""
    return NA if x is None else f"{x * 100:+.{digits}f} points"


def lift(x: float | None) -> str:
    """A relative change: 1.188 -> "+118.8%"."""
    return NA if x is None else f"{x * 100:+.1f}%"


def number(x: float | None) -> str:
    """A mean or an amount: thousands separators, 2 decimals; tiny values keep 3 digits."""
    if x is None:
        return NA
    return f"{x:,.2f}" if abs(x) >= 0.01 or x == 0 else f"{x:.3g}"


def signed(x: float | None) -> str:
    """A difference of means: as number(), with its sign."""
    if x is None:
        return NA
    return f"{x:+,.2f}" if abs(x) >= 0.01 or x == 0 else f"{x:+.3g}"


def count(n: int | None) -> str:
    """A count of people or rows: 1234567 -> "1,234,567"."""
    return NA if n is None else f"{int(n):,}"


def money(x: float | None, currency: str = "") -> str:
    """An amount of money: 1234.5 -> "1,234.50", with the currency code after it if given."""
    if x is None:
        return NA
    return f"{x:,.2f}" + (f" {currency}" if currency else "")


def p_value(p: float | None) -> str:
    """0.04721 -> "0.0472"; 1.5e-13 -> "< 0.0001" (also a p-value that underflowed to 0)."""
    if p is None:
        return NA
    if p < P_FLOOR:
        return f"< {P_FLOOR:g}"
    return f"{p:.4f}".rstrip("0").rstrip(".")


def p_clause(p: float | None) -> str:
    """The p-value in a sentence: "p = 0.0472" or "p < 0.0001"."""
    text = p_value(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def interval(ci: Sequence[float | None], one: Callable[[float], str] = number, unit: str = "") -> str:
    """"lo to hi" with each end spelled by ``one``; n/a when either end is missing."""
    lo, hi = ci
    if lo is None or hi is None:
        return NA
    return f"{one(lo)} to {one(hi)}{unit}"


def points_interval(ci: Sequence[float | None]) -> str:
    """"+0.12 to +1.24 points"."""
    return interval(ci, lambda x: f"{x * 100:+.2f}", " points")


def signed_interval(ci: Sequence[float | None]) -> str:
    return interval(ci, signed)


def lift_interval(ci: Sequence[float | None]) -> str:
    """"+3.1% to +9.8%"."""
    return interval(ci, lift)
