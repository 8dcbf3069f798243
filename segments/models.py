"""Segments: who is in them (versioned memberships), how they came to be (rules or models)."""

from django.conf import settings
from django.db import models

from customers.models import Customer


# What a kind is called on a page (the stored codes stay: the API and commands use them).
KIND_NAMES = {
    "rule": "Rule",
    "kmeans": "Clusters (k-means)",
    "rfm": "RFM tiers",
    "propensity": "Churn propensity",
    "value": "Predicted value",
    "uplift": "Uplift",
}


class SegmentModel(models.Model):
    """One trained, versioned scikit-learn model: enough stored to reproduce its scores."""

    class Kind(models.TextChoices):
        KMEANS = "kmeans"
        RFM = "rfm"
        PROPENSITY = "propensity"
        VALUE = "value"
        UPLIFT = "uplift"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, self.get_kind_display())

    version = models.PositiveIntegerField(default=1)
    params = models.JSONField(default=dict)  # what it was asked to do: target, churn days, k range
    features = models.JSONField(default=list)
    training_rows = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0)
    metrics = models.JSONField(default=dict)
    info = models.JSONField(default=dict)  # everything ml.py reported: curves, profiles, importances
    pipeline = models.BinaryField()  # joblib bytes from segments.ml.model_dump
    trained_at = models.DateTimeField(auto_now_add=True)
    scored_at = models.DateTimeField(null=True, blank=True)
    # Scoring split across workers: {"as_of": iso, "ranges": [[lo, hi], ...], "done": [lo, ...]}.
    # Each range task marks its range done under a row lock; the last one finishes the job.
    scoring = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="segmentmodel_version")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.kind})"


class ModelScore(models.Model):
    # Scoring COPYs a million rows per model: no index of its own (modelscore_unique
    # starts with it) and no database-level constraint check per row for a parent row
    # this very scoring writes for; Django's CASCADE still deletes the scores with it.
    model = models.ForeignKey(SegmentModel, on_delete=models.CASCADE, related_name="scores", db_index=False,
                              db_constraint=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="model_scores")
    score = models.FloatField()
    label = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "customer"], name="modelscore_unique")]
        indexes = [models.Index(fields=["model", "label"], name="modelscore_label")]


class Segment(models.Model):
    class Kind(models.TextChoices):
        RULE = "rule"
        KMEANS = "kmeans"
        RFM = "rfm"
        PROPENSITY = "propensity"
        VALUE = "value"
        UPLIFT = "uplift"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.RULE)

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, self.get_kind_display())

    rule = models.JSONField(null=True, blank=True)  # the rule tree, for kind=rule
    model = models.ForeignKey(SegmentModel, null=True, blank=True, on_delete=models.PROTECT, related_name="segments")
    # For model segments: the cluster label or tier, or a threshold / top fraction of score.
    params = models.JSONField(default=dict, blank=True)
    # Segments of one family (the clusters of one model, the RFM tiers...) partition customers
    # and are compared refresh to refresh in the migration view.
    family = models.CharField(max_length=200, blank=True, default="", db_index=True)
    # Readers only see this version's memberships; a refresh writes the next version and
    # then moves this number in the same transaction, so nobody sees a half-written segment.
    current_version = models.PositiveIntegerField(default=0)
    size = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    # A refresh inserts every member again: the foreign keys lead a composite index below
    # instead of having their own, and the segment's constraint check (measured at ~20%
    # of a refresh's write time) is dropped, since the refresh holds the segment row
    # locked while it writes. Django's CASCADE still deletes memberships with a segment.
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships", db_index=False,
                                db_constraint=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="segment_memberships",
                                 db_index=False)
    version = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "version", "customer"], name="membership_unique"),
        ]
        indexes = [models.Index(fields=["customer", "segment"], name="membership_customer")]


class Entrant(models.Model):
    """A customer a refresh added: a member of `version` who was not one of the version before.

    The refresh diffs the two versions anyway (to count who entered and left) and keeps the
    entered list here, pruned with its version, so that a reader of who entered (a triggered
    automation, at every refresh) reads these rows instead of diffing a million-row version
    against the previous one again (measured: 3-4 s for 50,000 entrants of a 950,000-member
    segment at load 8). A segment's first refresh keeps none: everyone in it entered.

    Both keys are Django's to keep (as memberships' segment is): a row is copied from a
    membership row written, and checked, in the same transaction.
    """

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="entrants", db_index=False,
                                db_constraint=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False,
                                 db_constraint=False)
    version = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "version", "customer"], name="entrant_unique")]
        # a deleted customer's rows are found by this (Django's CASCADE)
        indexes = [models.Index(fields=["customer"], name="entrant_customer")]


class SegmentRefresh(models.Model):
    """The size history: one row per refresh, with how many entered and left."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="refreshes")
    version = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    entered = models.PositiveIntegerField()
    left = models.PositiveIntegerField()
    seconds = models.FloatField(default=0)
    refreshed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "version"], name="segmentrefresh_version")]
        ordering = ["segment", "version"]


class FamilyTransition(models.Model):
    """How customers moved between the segments of a family from one refresh to the next,
    counted once by the refresh that wrote `new_version` (set-based SQL on the worker), so
    the migration page reads a few rows instead of joining two million-row versions."""

    family = models.CharField(max_length=200)
    old_version = models.PositiveIntegerField()
    new_version = models.PositiveIntegerField()
    # [{"from": segment id or null (not in the family before), "to": id or null (left), "customers": n}]
    matrix = models.JSONField(default=list)
    # The customers whose segment got worse, worst moves first (at most MOVED_DOWN_KEPT).
    moved_down = models.JSONField(default=list)
    seconds = models.FloatField(default=0)
    computed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["family", "new_version", "old_version"],
                                               name="familytransition_versions")]


class SegmentRevision(models.Model):
    """One saved definition of a segment: editing writes the next revision and keeps the
    earlier ones, so the segment page can show what it selected when."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="revisions")
    revision = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    rule = models.JSONField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "revision"], name="segmentrevision_unique")]
        ordering = ["segment", "-revision"]
