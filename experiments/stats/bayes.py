"""The Bayesian read: GrowthBook's Gaussian approach to effect sizes (gbstats
EffectBayesianABTest). The relative effect mean_t / mean_c - 1 is taken as normal with the
delta-method variance; a Gaussian prior on it (flat by default, or proper with a mean and
variance) gives a normal posterior, from which come the chance to beat control, the
expected loss (risk) of shipping either arm and a credible interval. The absolute effect
gets the same treatment on mean_t - mean_c, with the prior scaled by |mean_c|.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as sps

from .common import interval, json_float, z_quantile

# The decision rule the report and the A/A test use: ship when the chance to win reaches this.
CHANCE_TO_WIN_BAR = 0.95


@dataclass(frozen=True)
class GaussianPrior:
    """A prior on the relative effect: mean and variance, ignored unless ``proper``."""

    mean: float = 0.0
    variance: float = 0.09  # sd 0.3: a 30% lift is already a large one
    proper: bool = False

    def describe(self) -> str:
        if not self.proper:
            return "flat (improper) prior on the relative effect"
        return f"normal prior on the relative effect, mean {self.mean:+g}, sd {math.sqrt(self.variance):g}"

    @classmethod
    def from_dict(cls, data: dict | None) -> GaussianPrior:
        data = data or {}
        prior = cls(mean=float(data.get("mean", 0.0)), variance=float(data.get("variance", 0.09)),
                    proper=bool(data.get("proper", False)))
        if not (math.isfinite(prior.mean) and math.isfinite(prior.variance) and prior.variance > 0):
            raise ValueError("a prior needs a finite mean and a positive, finite variance")
        return prior


def risk(mu: float, sigma: float) -> tuple[float, float]:
    """Expected loss of choosing control, and of choosing treatment, when the effect is
    N(mu, sigma²): E[max(effect, 0)] and E[max(-effect, 0)] (GrowthBook's get_risk)."""
    if sigma <= 0 or abs(mu / sigma) > 37:
        return max(mu, 0.0), max(-mu, 0.0)
    z = mu / sigma
    # E[max(X, 0)] for X ~ N(mu, sigma²) = mu Phi(z) + sigma phi(z); the other side by symmetry.
    pos = mu * sps.norm.cdf(z) + sigma * sps.norm.pdf(z)
    neg = -mu * sps.norm.cdf(-z) + sigma * sps.norm.pdf(z)
    return float(pos), float(neg)


def posterior(estimate: float, variance: float, prior: GaussianPrior) -> tuple[float, float] | None:
    """Posterior mean and sd of an effect estimated as ``estimate`` with ``variance``."""
    precision = (1 / variance if variance > 0 else 0.0) + (1 / prior.variance if prior.proper else 0.0)
    if precision == 0:
        return None
    if not prior.proper:
        return estimate, math.sqrt(1 / precision)
    data_part = estimate / variance if variance > 0 else 0.0
    return (data_part + prior.mean / prior.variance) / precision, math.sqrt(1 / precision)


def bayes_compare(mean_t: float, var_mean_t: float, mean_c: float, var_mean_c: float, *,
                  prior: GaussianPrior = GaussianPrior(), alpha: float = 0.05) -> dict:
    """Chance to win, expected loss and credible intervals for treatment against control,
    from each arm's mean and the variance of that mean."""
    out = {"chance_to_win": None, "expected_loss": None, "expected_loss_control": None,
           "credible_interval": [None, None], "credible_interval_absolute": [None, None],
           "posterior_mean": None, "posterior_sd": None}
    if not all(math.isfinite(x) for x in (mean_t, var_mean_t, mean_c, var_mean_c)):
        return out
    z = z_quantile(alpha)
    absolute = posterior(mean_t - mean_c, var_mean_t + var_mean_c,
                         GaussianPrior(prior.mean * abs(mean_c), prior.variance * mean_c**2, prior.proper)
                         if mean_c != 0 else GaussianPrior(proper=False))
    if absolute is not None and absolute[1] > 0:
        out["credible_interval_absolute"] = interval(absolute[0] - z * absolute[1], absolute[0] + z * absolute[1])
    if mean_c == 0:
        return out
    lift = mean_t / mean_c - 1
    var_lift = var_mean_t / mean_c**2 + mean_t**2 * var_mean_c / mean_c**4
    relative = posterior(lift, var_lift, prior)
    if relative is None:
        return out
    mu, sigma = relative
    if sigma == 0:
        return out
    loss_control, loss_treatment = risk(mu, sigma)
    out.update(
        chance_to_win=json_float(sps.norm.sf(0, mu, sigma)),
        expected_loss=json_float(loss_treatment),
        expected_loss_control=json_float(loss_control),
        credible_interval=interval(mu - z * sigma, mu + z * sigma),
        posterior_mean=json_float(mu), posterior_sd=json_float(sigma),
    )
    return out
