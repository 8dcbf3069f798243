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


# ---- times -------------------------------------------------------------------------------
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def day(d) -> str:
    """A date: "2 Dec 2026" (day first, month in words: no 02/12 vs 12/02 ambiguity)."""
    return NA if d is None else f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def moment(t, tz_name: str) -> str:
    """A moment already in the zone ``tz_name``: "2 Dec 2026, 14:05 UTC" — every page, export
    and command writes a time this way, always with its zone."""
    if t is None:
        return NA
    return f"{day(t)}, {t.hour:02d}:{t.minute:02d}{' ' + tz_name if tz_name else ''}"


def duration(seconds: float | None) -> str:
    """How long something took, in words: 0.4 -> "less than a second", 45 -> "45 seconds",
    125 -> "2 minutes 5 seconds", 3780 -> "1 hour 3 minutes", 187200 -> "2 days 4 hours".
    Two units at most: the third is noise at that scale."""
    if seconds is None:
        return NA
    if seconds < 1:
        return "less than a second"
    whole = int(round(seconds))
    units = (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1))
    parts = []
    for name, size in units:
        amount, whole = divmod(whole, size)
        if amount or parts:
            parts.append((amount, name))
        if len(parts) == 2:
            break
    return " ".join(f"{n} {name}{'' if n == 1 else 's'}" for n, name in parts if n)


# ---- names for people --------------------------------------------------------------------
METHOD_NAMES = {
    "two_proportion_ztest": "two-proportion z-test",
    "fisher_exact": "Fisher's exact test",
    "welch_t": "Welch's t-test",
    "msprt_normal_mixture": "sequential test (mSPRT)",
    "delta_method_z": "z-test on the ratio (delta method)",
    "quantile_z": "z-test on the quantile",
    "logrank": "log-rank test",
}


def method_name(key: str | None) -> str:
    """The name a manager reads for a test the engine ran: "two-proportion z-test"."""
    if not key:
        return NA
    return METHOD_NAMES.get(key, key.replace("_", " "))


# A model's holdout metrics, in words: (name, what it says, how to read it).
METRIC_TERMS = {
    "roc_auc": ("ROC AUC", "how well the score ranks those who did above those who did not",
                "0.5 is a coin toss, 1 is perfect"),
    "cv_roc_auc": ("cross-validated ROC AUC", "ROC AUC averaged over training folds",
                   "0.5 is a coin toss, 1 is perfect"),
    "brier": ("Brier score", "the mean squared error of the predicted probabilities", "lower is better, 0 is perfect"),
    "precision": ("precision", "of those flagged, the share who really did", "higher is better"),
    "recall": ("recall", "of those who did, the share flagged", "higher is better"),
    "f1": ("F1 score", "the balance of precision and recall", "higher is better, 1 is perfect"),
    "cv_f1_at_threshold": ("cross-validated F1", "F1 over the training folds at the chosen threshold",
                           "higher is better"),
    "threshold": ("threshold", "the score above which a customer is flagged", ""),
    "base_rate": ("base rate", "the share who did, among held-out customers", "what a model must beat"),
    "silhouette": ("silhouette", "how clearly customers fall into separate groups",
                   "from -1 to 1; above 0.5 clear groups, below 0.25 weak ones"),
    "inertia": ("inertia", "the spread of customers around their group's centre", "lower is tighter"),
    "k": ("groups", "the number of clusters chosen", ""),
    "mae": ("mean absolute error", "the average miss of the prediction, in its unit", "lower is better"),
    "rmse": ("root mean squared error", "the typical miss, large misses weighing more", "lower is better"),
    "r2": ("R²", "the share of the variation the model explains", "1 is perfect, 0 no better than the average"),
    "baseline_mae": ("baseline mean absolute error", "the average miss when predicting the training mean",
                     "the model must beat it"),
    "baseline_rmse": ("baseline root mean squared error", "the typical miss when predicting the training mean",
                      "the model must beat it"),
    "baseline_r2": ("baseline R²", "R² of predicting the training mean", ""),
    "beats_baseline": ("beats the baseline", "the model misses less than predicting the average", ""),
    "qini_coefficient": ("Qini coefficient", "extra conversions from targeting by predicted uplift, beyond random",
                         "above 0 beats random targeting"),
    "qini_p_value": ("Qini p-value", "how often chance (shuffled treatment labels) reaches the model's Qini coefficient",
                     "below 0.05 the gain is more than luck"),
}


def metric_term(key: str) -> str:
    """roc_auc -> "ROC AUC"; unknown keys lose their underscores."""
    term = METRIC_TERMS.get(key)
    return term[0] if term else key.replace("_", " ")


def metric_explained(key: str) -> str:
    """roc_auc -> "how well the score ranks ... (0.5 is a coin toss, 1 is perfect)"."""
    term = METRIC_TERMS.get(key)
    if not term:
        return ""
    return term[1] + (f" ({term[2]})" if term[2] else "")


# ---- rates that never contradict each other ----------------------------------------------
def percent_pair(a: float | None, b: float | None, digits: int = 2) -> tuple[str, str]:
    """Two shares with enough digits that different values never read the same
    ("moving from 2.00% to 2.20%", never "from 2% to 2%"). Up to 4 decimals."""
    if a is None or b is None or a == b:
        return percent(a, digits), percent(b, digits)
    while digits < 4 and f"{a * 100:.{digits}f}" == f"{b * 100:.{digits}f}":
        digits += 1
    return percent(a, digits), percent(b, digits)
