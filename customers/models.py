"""The customer base and what customers did: orders, activity events, suppression."""

from django.db import models
from django.db.models.functions import Lower


class Customer(models.Model):
    external_id = models.CharField(max_length=128, unique=True)
    email = models.CharField(max_length=254, blank=True, default="")
    name = models.CharField(max_length=200, blank=True, default="")
    country = models.CharField(max_length=64, blank=True, default="")
    time_zone = models.CharField(max_length=64, blank=True, default="UTC")
    signup_date = models.DateField(null=True, blank=True)
    # Columns a business brings beyond ours, typed as AttributeDefinition says:
    # numbers stay numbers and booleans stay booleans, so rules can compare them.
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(Lower("email"), name="customer_email_lower"),
            models.Index(fields=["signup_date"], name="customer_signup"),
            models.Index(fields=["country"], name="customer_country"),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.external_id


class AttributeDefinition(models.Model):
    """The type of each custom attribute, fixed by the first import that saw it."""

    class Type(models.TextChoices):
        BOOLEAN = "boolean"
        INTEGER = "integer"
        NUMBER = "number"
        DATE = "date"
        TEXT = "text"

    name = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=10, choices=Type.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


class Order(models.Model):
    # Unique by a constraint rather than unique=True, which on PostgreSQL adds a second
    # index (varchar_pattern_ops, for LIKE) that no query uses: 330 MB at ten million orders.
    external_id = models.CharField(max_length=128)
    # No index of its own: order_customer_time starts with it.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders", db_index=False)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    ordered_at = models.DateTimeField()
    # Any other column of the orders file (discount code, channel...), typed.
    properties = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["external_id"], name="order_external_id_unique")]
        indexes = [
            # Recency, frequency and monetary are all "per customer, before a date".
            models.Index(fields=["customer", "ordered_at"], name="order_customer_time"),
            models.Index(fields=["ordered_at"], name="order_time"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} {self.amount} {self.currency}"


class Event(models.Model):
    # No index of its own: event_unique starts with it.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events", db_index=False)
    kind = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            # An event file has no ids of its own: the same customer doing the same thing at
            # the same instant is the same event, which makes a re-import change nothing.
            models.UniqueConstraint(fields=["customer", "kind", "occurred_at"], name="event_unique"),
        ]
        indexes = [models.Index(fields=["kind", "occurred_at"], name="event_kind_time")]

    def __str__(self) -> str:
        return f"{self.kind} at {self.occurred_at:%Y-%m-%d %H:%M}"


class Suppression(models.Model):
    """A reason never to email a customer; at most one row per reason."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed"
        BOUNCED = "bounced"
        COMPLAINED = "complained"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="suppressions")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    detail = models.CharField(max_length=500, blank=True, default="")
    source = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "reason"], name="suppression_unique")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.reason}"


class Consent(models.Model):
    """The customer's latest word on marketing email, with when and where it was given."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="consent")
    granted = models.BooleanField()
    recorded_at = models.DateTimeField()
    source = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.customer_id} {'granted' if self.granted else 'withdrawn'}"


class ImportJob(models.Model):
    """A file import run by a worker, so the browser can watch it and fetch the rejects."""

    class Status(models.TextChoices):
        DRAFT = "draft"  # uploaded, columns not mapped yet
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    kind = models.CharField(max_length=16)  # customers, orders or events
    path = models.CharField(max_length=500)
    options = models.JSONField(default=dict, blank=True)  # mapping, id_from_row, ...
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"import {self.kind} {self.path} ({self.status})"
