"""Power: statsmodels NormalIndPower (Cohen's h for proportions) and TTestIndPower.

The one place sample sizes, detectable effects and achieved power are computed: the
planner page, the plan API, the campaign estimate and the report's power section call here.
"""

from __future__ import annotations

import math

from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize


def _treatment_rate(baseline: float, mde: float, relative: bool) -> float:
    p2 = baseline * (1 + mde) if relative else baseline + mde
    if not 0 < baseline < 1 or not 0 < p2 < 1 or p2 == baseline:
        raise ValueError("baseline and baseline + effect must be distinct rates inside (0, 1)")
    return p2


def sample_size_binary(
    baseline: float,
    mde: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> dict:
    """Units per arm to detect ``mde`` (absolute, or relative to ``baseline``), two-sided.

    Uses Cohen's h (arcsine transform), which closely matches the textbook unpooled formula
    n = (z_{1-a/2} + z_{power})^2 (p1 q1 + p2 q2) / d^2.
    """
    p2 = _treatment_rate(baseline, mde, relative)
    h = abs(float(proportion_effectsize(p2, baseline)))
    n_c = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio)
    return {"n_control": math.ceil(n_c), "n_treatment": math.ceil(n_c * ratio),
            "treatment_rate": p2, "effect_size": h}


def sample_size_continuous(
    sd: float, mde: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> dict:
    """Units per arm to detect an absolute difference ``mde`` in means with a t-test."""
    d = abs(mde) / sd
    n_c = TTestIndPower().solve_power(effect_size=d, alpha=alpha, power=power, ratio=ratio)
    return {"n_control": math.ceil(n_c), "n_treatment": math.ceil(n_c * ratio), "effect_size": d}


def detectable_effect_binary(
    baseline: float, n_control: int, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> dict:
    """Smallest upward change of the rate detectable with ``n_control`` (and ratio) units."""
    h = NormalIndPower().solve_power(nobs1=n_control, alpha=alpha, power=power, ratio=ratio)
    # Invert h = 2 asin(sqrt(p2)) - 2 asin(sqrt(p1)).
    angle = math.asin(math.sqrt(baseline)) + h / 2
    if angle >= math.pi / 2:
        return {"absolute": None, "relative": None, "effect_size": float(h),
                "note": "no rate below 1 is detectable at this size"}
    p2 = math.sin(angle) ** 2
    return {"absolute": p2 - baseline, "relative": p2 / baseline - 1, "effect_size": float(h)}


def detectable_effect_continuous(
    sd: float, n_control: int, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> dict:
    """Smallest absolute difference in means detectable with ``n_control`` (and ratio) units."""
    d = TTestIndPower().solve_power(nobs1=n_control, alpha=alpha, power=power, ratio=ratio)
    return {"absolute": float(d) * sd, "effect_size": float(d)}


def achieved_power_binary(
    baseline: float,
    mde: float,
    n_control: int,
    n_treatment: int,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    target: float = 0.8,
) -> dict:
    """Power the observed arm sizes had for an effect of ``mde``; flags underpowered tests."""
    h = abs(float(proportion_effectsize(_treatment_rate(baseline, mde, relative), baseline)))
    pw = float(NormalIndPower().power(h, n_control, alpha, ratio=n_treatment / n_control))
    return {"power": pw, "underpowered": pw < target}


def achieved_power_continuous(
    sd: float, mde: float, n_control: int, n_treatment: int, *, alpha: float = 0.05,
    target: float = 0.8,
) -> dict:
    """Power the observed arm sizes had for a difference in means of ``mde``."""
    d, ratio = abs(mde) / sd, n_treatment / n_control
    pw = float(TTestIndPower().power(d, n_control, alpha, ratio=ratio))
    if not math.isfinite(pw):
        # The noncentral t underflows when power is all but 1 (d = 1/3 with 4,000 a side gives
        # NaN); there the normal approximation is exact to many digits.
        pw = float(NormalIndPower().power(d, n_control, alpha, ratio=ratio))
    return {"power": pw, "underpowered": pw < target}


def sample_size_plan(
    mde: float,
    *,
    baseline: float | None = None,
    sd: float | None = None,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> dict:
    """Units per arm to detect ``mde``: the one planning path of the planner page and the API.

    A rate needs its ``baseline`` (the mde absolute, or relative to it); a mean its ``sd``
    (the mde in the metric's units). Raises ValueError for an effect no test can detect.
    """
    common = dict(alpha=alpha, power=power, ratio=ratio)
    if sd is not None:
        if relative:
            raise ValueError("give the effect on a mean in the metric's units, not relative")
        result = sample_size_continuous(sd, mde, **common)
        method = "two-sided t-test (statsmodels TTestIndPower)"
    elif baseline is not None:
        result = sample_size_binary(baseline, mde, relative=relative, **common)
        method = "two-sided two-proportion test, Cohen's h (statsmodels NormalIndPower)"
    else:
        raise ValueError("a plan needs the baseline rate or the standard deviation")
    return {
        "n_per_arm": max(result["n_control"], result["n_treatment"]),
        "total": result["n_control"] + result["n_treatment"],
        **result, "method": method,
    }
