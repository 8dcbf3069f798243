"""Model-derived segments: scikit-learn pipelines over per-customer feature frames.

Pure computation, no Django (DESIGN.md: pure modules can be tested and reused alone).
The Django side builds a pandas DataFrame with one row per customer, indexed by customer
id (recency_days, frequency, monetary, tenure_days, orders_30d, events_*_90d and any
attribute columns: numeric, boolean or categorical strings, with gaps), and stores what
comes back: a fitted model (bytes from `scoring.model_dump`) and its `info`.

By topic: common (kinds, info), preprocessing (column types, imputation, encoding), kmeans,
rfm, propensity, value (with supervised, what the last two share), scoring (chunked
scoring, dump and load). Import from the topic module.
"""

# Models stored before this was a package were pickled with references to these names in
# `segments.ml`; unpickling looks them up here, so old model versions still load.
from .preprocessing import coerce_frame as _coerce_frame  # noqa: F401
from .preprocessing import log1p_nonnegative as _log1p_nonnegative  # noqa: F401
from .rfm import RfmScorer  # noqa: F401
