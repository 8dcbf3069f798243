"""Experiments: arms, metrics, exposures (who saw which arm, when), cached reports, uplift models.

Two sources of outcomes:
- ``customers``: exposures name customers (a campaign launch writes them, holdout included);
  outcomes are computed in SQL from the customers' orders and events in the attribution
  window after each exposure, so nothing is copied and late orders count when they arrive.
- ``imported``: a test run elsewhere; each exposure row carries its unit's outcomes and
  attributes from the file.
"""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


MIN_ATTRIBUTION_DAYS, MAX_ATTRIBUTION_DAYS = 1, 3650  # a day to ten years


SPAN_FIELDS = ("first_exposed_at", "last_exposed_at")  # Experiment's, written only by exposure_span_widen


class Experiment(models.Model):
    class Source(models.TextChoices):
        CUSTOMERS = "customers", "customers (outcomes from orders and events)"
        IMPORTED = "imported", "imported (outcomes from a file)"

    class Mode(models.TextChoices):
        FIXED = "fixed", "fixed horizon"
        SEQUENTIAL = "sequential", "sequential (always-valid, safe to peek)"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, default="")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.CUSTOMERS)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.FIXED)
    alpha = models.FloatField(default=0.05)
    # Days after an exposure in which an order or event counts as its outcome. Bounded: a
    # window of a million days overflows date arithmetic and means nothing.
    attribution_days = models.PositiveIntegerField(
        default=14, validators=[MinValueValidator(MIN_ATTRIBUTION_DAYS), MaxValueValidator(MAX_ATTRIBUTION_DAYS)])
    # Arm assignment hashes (salt, unit): kept with the experiment so reruns agree.
    salt = models.CharField(max_length=64)
    # Sample size at which the sequential interval is tightest; fixed before data arrive.
    sequential_tuning_n = models.PositiveIntegerField(default=10_000)
    # The effect worth detecting, for the power section; None: a 10% relative lift.
    mde = models.FloatField(null=True, blank=True)
    mde_relative = models.BooleanField(default=True)
    # Time to first order (or to the first event of this kind) after exposure; "" turns the
    # retention section off. Only for customer exposures.
    retention_event = models.CharField(max_length=64, blank=True, default="order")
    retention_days = models.JSONField(default=list, blank=True)
    # CUPED: imported, an attribute column; customers, "pre_period" (the same metric in the
    # attribution window before exposure). "" for none.
    covariate = models.CharField(max_length=100, blank=True, default="")
    unit_label = models.CharField(max_length=100, blank=True, default="customer")
    import_info = models.JSONField(default=dict, blank=True)
    # The Bayesian engine's prior on the relative effect: {"mean", "variance", "proper"};
    # empty is GrowthBook's default, a flat prior (stats.bayes.GaussianPrior).
    prior = models.JSONField(default=dict, blank=True)
    # The first and last exposure time, widened by every write of exposures
    # (services/exposures.py, and a launch for the rows its ranges wrote): reports read them
    # here instead of an index on (experiment, exposed_at), one entry fewer written per
    # recipient by every launch. A delete (a customer erased) never narrows them: they bound
    # the outcome scans, and a bound too wide only reads more. None: no exposure has a time.
    first_exposed_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_exposed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(alpha__gt=0) & Q(alpha__lt=1), name="experiment_alpha_range"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # The span is widened in SQL by the writers of exposures (exposure_span_widen): an
        # instance loaded before a launch holds an older one, which an edit must not put back.
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [f.name for f in self._meta.concrete_fields
                                       if not f.primary_key and f.name not in SPAN_FIELDS]
        super().save(*args, **kwargs)


class Arm(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="arms")
    name = models.CharField(max_length=100)
    weight = models.FloatField(default=1.0)
    is_control = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="arm_name_unique"),
            models.UniqueConstraint(fields=["experiment"], condition=Q(is_control=True), name="arm_one_control"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="arm_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name}{' (control)' if self.is_control else ''}"


class Metric(models.Model):
    class Source(models.TextChoices):
        ORDER_CONVERSION = "order_conversion", "an order in the window"
        ORDER_REVENUE = "order_revenue", "sum of order amounts in the window"
        ORDER_COUNT = "order_count", "number of orders in the window"
        EVENT_CONVERSION = "event_conversion", "an event of a kind in the window"
        EVENT_COUNT = "event_count", "number of events of a kind in the window"
        IMPORTED = "imported", "a column of the imported file"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="metrics")
    name = models.CharField(max_length=100)
    # A name in experiments.kinds.KINDS, checked when the metric is defined: no choices here,
    # so a new kind needs no migration.
    kind = models.CharField(max_length=16)
    source = models.CharField(max_length=20, choices=Source.choices)
    is_primary = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)
    event_kind = models.CharField(max_length=64, blank=True, default="")
    # Orders count only if their properties hold these values, e.g. {"campaign": "spring"}.
    order_filter = models.JSONField(default=dict, blank=True)
    # A ratio metric of a customer experiment: source (and event kind) is its numerator's,
    # these its denominator's (revenue per order: order_revenue over order_count).
    denominator_source = models.CharField(max_length=20, choices=Source.choices, blank=True, default="")
    denominator_event_kind = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "name"], name="metric_name_unique"),
            models.UniqueConstraint(fields=["experiment"], condition=Q(is_primary=True), name="metric_one_primary"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Exposure(models.Model):
    """One unit in one arm. Customer exposures also say when; imported ones carry outcomes."""

    # No index of its own on experiment (exposure_unit_unique starts with it)
    # nor on customer (exposure_customer_experiment starts with it): a launch writes every
    # index once per recipient.
    # No database constraint on experiment and arm (as on customer, below): a launch's two
    # checks per recipient at commit. Exposures are written only for the experiment's own arms
    # (launch made them, _source_check checks other sources); experiments and arms are deleted
    # through the ORM (experiment_delete), whose CASCADE deletes the exposures.
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="exposures", db_index=False,
                                   db_constraint=False)
    # No index on arm either: units per arm are counted within an experiment. Arms are deleted
    # only with their experiment, whose exposures go first (experiment_delete); the ORM's
    # cascade from its arms then scans the table once and finds none.
    arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="exposures", db_index=False,
                            db_constraint=False)
    # The unit's id: str(customer id) for customer exposures, the file's unit (or row number).
    unit = models.CharField(max_length=128)
    # No database constraint on customer, as on the send ledger (campaigns.models.LedgerEntry):
    # a launch's row lock per recipient at commit. Exposures come from the ledger rows the
    # launch has just written (checked=True) or are checked against customers first
    # (_source_check); deleting a customer goes through the ORM, whose CASCADE deletes them.
    customer = models.ForeignKey("customers.Customer", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="exposures", db_index=False, db_constraint=False)
    exposed_at = models.DateTimeField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    outcomes = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            # A unit is exposed once: a rerun of a launch, or a second import call, adds nothing.
            models.UniqueConstraint(fields=["experiment", "unit"], name="exposure_unit_unique"),
        ]
        # No index on (experiment, arm) nor on (experiment, exposed_at): a report reads all of
        # an experiment's exposures anyway, and the first and last exposure time are kept on
        # the experiment. With the one on arm, three entries fewer per recipient in every
        # launch (bench/campaigns_send.py --no-send, 100,000 recipients, each run beside the
        # six-index code on the same data: medians 1.51-1.80 s against 1.88-2.00 s).
        indexes = [
            # A report joins the orders in its window to the experiment's exposures by customer.
            # Right after a launch or an import, before ANALYZE has seen the new rows, PostgreSQL
            # plans that join as a loop over the few orders it expects; with an index on customer
            # alone each turn ANDed it with every exposure of the experiment: 70 s for 14,500
            # orders against 196,000 exposures, 0.2 s with both keys in one index.
            models.Index(fields=["customer", "experiment"], name="exposure_customer_experiment"),
        ]

    def __str__(self) -> str:
        return f"{self.unit} in {self.arm_id}"


class Report(models.Model):
    """The last computed analysis, so pages and the API answer without recomputing."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="reports")
    by = models.CharField(max_length=100, blank=True, default="")  # breakdown attribute, "" for none
    body = models.JSONField()
    # What the data looked like when computed (see selectors.experiment_fingerprint).
    fingerprint = models.CharField(max_length=200)
    computed_at = models.DateTimeField()
    seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "by"], name="report_experiment_by_unique")]

    def __str__(self) -> str:
        return f"report {self.experiment_id}{' by ' + self.by if self.by else ''} at {self.computed_at:%Y-%m-%d %H:%M}"


class UpliftModel(models.Model):
    """A T-learner trained on a finished experiment: who gains most from the treatment."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="uplift_models")
    treatment_arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="+")
    control_arm = models.ForeignKey(Arm, on_delete=models.CASCADE, related_name="+")
    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="+")
    # "unit_attributes" (imported columns) or "customer_features" (behaviour before exposure).
    feature_source = models.CharField(max_length=32)
    features = models.JSONField(default=list)
    model = models.BinaryField()  # joblib bytes from uplift.model_dump
    info = models.JSONField(default=dict)  # Qini curve and coefficient, deciles, settings
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"uplift {self.experiment_id}: {self.treatment_arm_id} vs {self.control_arm_id} on {self.metric_id}"
