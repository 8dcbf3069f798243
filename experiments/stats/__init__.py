"""Experiment statistics: pure functions over counts and arrays, one module per topic.

No Django here on purpose: the package is imported by the report analysis, by management
commands and by the tests alike, and must be checkable on its own against published numbers.

- srm.py: sample ratio mismatch (Pearson chi-square of arm sizes against planned weights).
- proportions.py: binary metrics (Wilson, Wald difference, log-ratio lift, z-test or Fisher).
- means.py: continuous metrics (Welch's t-test, delta-method lift), with cuped.py
  (pooled winsorization, CUPED).
- multiple.py: Holm; metrics.py: one metric's result with Holm over the primary metric.
- sequential.py: the normal-mixture mSPRT (always-valid p-value and confidence sequence).
- retention.py: day-N retention, Kaplan-Meier, log-rank, Cox hazard ratio.
- planning.py: sample size, detectable effect and achieved power.
- common.py: JSON-safe floats, intervals, the normal quantile.
"""
