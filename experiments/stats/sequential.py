"""Sequential mode: the normal-mixture mSPRT (always-valid p-value and confidence sequence)."""

from __future__ import annotations

import math

from .common import interval, json_float

# Sample size (both arms of a comparison together) at which the sequential interval is
# tightest; any value fixed before the data are seen keeps the guarantee.
DEFAULT_SEQUENTIAL_TUNING_N = 10_000


def msprt_tau2(variance: float, n: float, tuning_n: float, alpha: float = 0.05) -> float:
    """Mixing variance tau^2 that makes the confidence sequence tightest at ``tuning_n`` units.

    ``variance * n`` is the per-unit variance of the estimate, so ``variance * n / tuning_n``
    is the variance expected at the tuning size V*. Minimising the half-width below at V*
    (Howard et al. 2021) gives tau^2 = V* * (2 log(1/alpha) + log(1 + 2 log(1/alpha))).
    The per-unit variance is estimated from the data, so the guarantee is asymptotic, as a
    z-test's is.
    """
    k = 2 * math.log(1 / alpha)
    return variance * n / tuning_n * (k + math.log(1 + k))


def sequential_interval(
    estimate: float, variance: float, *, tau2: float, alpha: float = 0.05
) -> dict:
    """Always-valid p-value and confidence sequence for an asymptotically normal estimate.

    Normal-mixture mSPRT (Johari et al., "Always valid inference"; Howard et al. 2021):
    with estimate d ~ N(theta, V) and a N(theta0, tau^2) mixing prior on theta, the mixture
    likelihood ratio against theta0 is

        Lambda(theta0) = sqrt(V / (V + tau^2)) * exp( tau^2 (d - theta0)^2 / (2 V (V + tau^2)) ).

    Lambda is a nonnegative martingale under theta0, so by Ville's inequality it exceeds
    1/alpha at *any* look with probability at most alpha. Hence
      p-value        p = min(1, 1 / Lambda(0)),
      confidence set {theta0 : Lambda(theta0) < 1/alpha}
                     = d +/- sqrt( V (V + tau^2) / tau^2 * (2 log(1/alpha) + log((V + tau^2) / V)) ).
    A caller tracking several looks may keep the running minimum of p and the running
    intersection of the intervals; both stay valid.
    """
    if variance is None or not math.isfinite(variance) or variance <= 0 or tau2 <= 0:
        return {"ci": [None, None], "p_value": None}
    v = variance
    log_lr = 0.5 * math.log(v / (v + tau2)) + tau2 * estimate**2 / (2 * v * (v + tau2))
    # exp(-log_lr) in log space: Lambda can overflow for decisive data.
    p = math.exp(-max(0.0, log_lr))
    half = math.sqrt(v * (v + tau2) / tau2 * (2 * math.log(1 / alpha) + math.log((v + tau2) / v)))
    return {"ci": interval(estimate - half, estimate + half), "p_value": json_float(p)}


def sequential_update(result: dict, diff: float, var_diff: float, lift: float | None, var_lift: float | None,
                      n: int, tuning_n: int, alpha: float) -> None:
    """A comparison's p-value and intervals from the always-valid confidence sequence."""
    seq = sequential_for(diff, var_diff, n, tuning_n, alpha)
    result.update(p_value=seq["p_value"], diff_ci=seq["ci"], test="msprt_normal_mixture",
                  diff_ci_method="msprt_normal_mixture")
    if var_lift is not None:
        result["lift_ci"] = sequential_for(lift, var_lift, n, tuning_n, alpha)["ci"]


def sequential_for(estimate: float | None, variance: float | None, n: int, tuning_n: int,
                    alpha: float) -> dict:
    if estimate is None or variance is None or variance <= 0:
        return {"ci": [None, None], "p_value": None}
    tau2 = msprt_tau2(variance, n, tuning_n, alpha)
    return sequential_interval(estimate, variance, tau2=tau2, alpha=alpha)
