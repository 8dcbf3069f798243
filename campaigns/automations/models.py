"""Triggered offers ("automations"): the automation, its versions and steps, entries, step sends.

An automation is an experiment that never stops: every entry is an exposure, decided held out
or not once, when it is written. Its step sends keep the campaign ledger's discipline: one row
per (automation, step, customer, entry) under a unique constraint, claimed with a lease and an
attempt counter, reconciled when a worker dies mid-send, never resent blindly.

Imported by campaigns/models.py so that Django finds these models in the campaigns app.
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q


class Automation(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"  # entries are still recorded (nobody is lost); nothing is sent
        ARCHIVED = "archived"  # no new entries; pending sends are cancelled

    class Trigger(models.TextChoices):
        SEGMENT = "segment", "enters a segment"
        EVENT = "event", "does something (an event)"
        DATE = "date", "a date attribute comes round"

    name = models.CharField(max_length=200, unique=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE, db_index=True)
    trigger = models.CharField(max_length=8, choices=Trigger.choices)
    trigger_segment = models.ForeignKey(
        "segments.Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="triggered_automations"
    )
    trigger_event = models.CharField(max_length=64, blank=True, default="")
    date_attribute = models.CharField(max_length=100, blank=True, default="")  # signup_date or an attribute
    date_offset_days = models.IntegerField(default=0)  # negative: before the date
    # Optional: only customers in this segment (its current version) enter.
    audience_segment = models.ForeignKey(
        "segments.Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="filtered_automations"
    )
    holdout = models.FloatField(default=0.1)
    reentry_days = models.PositiveIntegerField(null=True, blank=True)  # None: once ever
    exit_rules = models.JSONField(default=list, blank=True)  # ["ordered", "left_segment", "unsubscribed"]
    include_current = models.BooleanField(default=False)
    offer = models.ForeignKey("campaigns.Offer", null=True, blank=True, on_delete=models.PROTECT, related_name="automations")
    from_email = models.CharField(
        max_length=254, blank=True, default="",
        validators=[RegexValidator(r"[\r\n\x00]", inverse_match=True, message="line breaks are not allowed")],
    )
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    frequency_cap = models.PositiveIntegerField(null=True, blank=True)  # per customer per rolling 7 days
    attribution_days = models.PositiveIntegerField(default=7)  # the outcome window after entry
    salt = models.CharField(max_length=32)  # the holdout's hash salt: entries decide the same on every rerun
    current_version = models.ForeignKey(
        "campaigns.AutomationVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Watermarks: what the trigger reader has already turned into entries.
    refresh_watermark = models.BigIntegerField(default=0)  # last SegmentRefresh id read
    event_watermark = models.BigIntegerField(default=0)  # last Event id read
    event_floor = models.BigIntegerField(default=0)  # events up to this id were there before it started
    date_checked_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    archived_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(holdout__gte=0) & Q(holdout__lt=1), name="automation_holdout_range"),
        ]

    def __str__(self) -> str:
        return self.name


class AutomationVersion(models.Model):
    """The steps as they were when an entry came in: an edit makes a new version, and entries
    already in the flow finish the version they entered."""

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["automation", "number"]
        constraints = [models.UniqueConstraint(fields=["automation", "number"], name="automationversion_number")]


class AutomationStep(models.Model):
    version = models.ForeignKey(AutomationVersion, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveSmallIntegerField()
    wait_hours = models.FloatField(default=0)  # after entry (first step) or after the previous step
    unless = models.CharField(max_length=32, blank=True, default="")  # a condition that skips the step

    class Meta:
        ordering = ["version", "index"]
        constraints = [models.UniqueConstraint(fields=["version", "index"], name="automationstep_index")]


class AutomationVariant(models.Model):
    step = models.ForeignKey(AutomationStep, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=100)
    subject = models.CharField(max_length=998)
    preheader = models.CharField(max_length=500, blank=True, default="")
    html = models.TextField(blank=True, default="")
    text = models.TextField(blank=True, default="")
    weight = models.FloatField(default=1.0)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["step", "name"], name="automationvariant_name")]


class AutomationEntry(models.Model):
    """One customer's way into an automation: the exposure of its experiment."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        COMPLETED = "completed"  # every step done
        EXITED = "exited"  # an exit rule fired: see exit_reason
        HELD_OUT = "held_out"  # the control: gets nothing
        CANCELLED = "cancelled"  # the automation was archived first

    # A trigger writes 10,000s of entries at once: the small tables' foreign keys are kept
    # by Django (CASCADE, PROTECT) rather than checked row by row in the database, as
    # segments' memberships do; the customer's is kept.
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="entries", db_index=False,
                                   db_constraint=False)
    version = models.ForeignKey(AutomationVersion, on_delete=models.PROTECT, related_name="entries", db_index=False,
                                db_constraint=False)
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="automation_entries",
                                 db_index=False)
    # What makes two triggers the same entry: the customer alone (once ever) or the customer
    # and what triggered it (re-entry allowed). A refresh read twice, an event posted twice,
    # a day evaluated twice find the row already there.
    key = models.CharField(max_length=100)
    source = models.CharField(max_length=16)  # segment, event, date, current
    held_out = models.BooleanField()
    status = models.CharField(max_length=10, choices=Status.choices)
    exit_reason = models.CharField(max_length=32, blank=True, default="")
    entered_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["automation", "key"], name="automationentry_key")]
        indexes = [
            models.Index(fields=["automation", "entered_at"], name="automationentry_time"),
            models.Index(fields=["customer", "automation"], name="automationentry_customer"),
        ]


class AutomationSend(models.Model):
    """One step's message to one entry: the automation's ledger row."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        UNKNOWN = "unknown"
        SENT = "sent"
        DELIVERED = "delivered"
        OPENED = "opened"
        CLICKED = "clicked"
        FAILED = "failed"
        BOUNCED = "bounced"
        COMPLAINED = "complained"
        SUPPRESSED = "suppressed"
        SKIPPED = "skipped"  # the step's `unless` held: nothing sent, the entry goes on
        CANCELLED = "cancelled"  # the entry exited, or the automation was archived

    # As for entries: the small tables' keys are Django's to keep, and so are the entry's and the
    # customer's (see customer below).
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="sends", db_index=False,
                                   db_constraint=False)
    step = models.ForeignKey(AutomationStep, on_delete=models.PROTECT, related_name="sends", db_index=False,
                             db_constraint=False)
    step_index = models.PositiveSmallIntegerField()
    entry = models.ForeignKey(AutomationEntry, on_delete=models.CASCADE, related_name="sends", db_index=False,
                              db_constraint=False)
    # Not checked by the database either: a send is written with its entry's customer (in the
    # same statement as the entry, or from the entry's earlier send), and the entry's key to
    # the customer is checked. A second check per row locked each customer row again
    # (measured: ~0.8 s of 45,000 first-step rows at commit). Django's CASCADE still deletes
    # a customer's sends with the customer.
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="automation_sends",
                                 db_index=False, db_constraint=False)
    variant = models.ForeignKey(AutomationVariant, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                db_index=False, db_constraint=False)
    email = models.CharField(max_length=254, blank=True, default="")
    status = models.CharField(max_length=12, choices=Status.choices)
    due_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    batch = models.CharField(max_length=32, blank=True, default="")
    # Unique (automationsend_key below): a constraint rather than unique=True, which would add
    # a second (pattern-matching) index that no query uses and every insert pays for.
    key = models.CharField(max_length=32)
    provider = models.CharField(max_length=32, blank=True, default="")
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    offer_code = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            # Unique (automation, step, customer, entry), led by the entry: the same index then
            # serves "this entry's sends", and a trigger's 10,000s of new rows update one index fewer.
            models.UniqueConstraint(fields=["entry", "step", "automation", "customer"], name="automationsend_once"),
            models.UniqueConstraint(fields=["key"], name="automationsend_key"),
        ]
        indexes = [
            models.Index(fields=["due_at"], name="automationsend_due", condition=Q(status="pending")),
            models.Index(fields=["lease_until"], name="automationsend_lease", condition=Q(status="sending")),
            models.Index(fields=["updated_at"], name="automationsend_unknown", condition=Q(status="unknown")),
            # Webhooks without our key in their metadata find the row by the provider's id. Partial:
            # the rows a trigger writes have none yet, so the index costs their insert nothing.
            models.Index(fields=["provider_message_id"], name="automationsend_provider_id",
                         condition=~Q(provider_message_id="")),
        ]


class CapSlot(models.Model):
    """One marketing email counted against its customer's frequency cap, campaigns and
    automations alike. Written under a per-customer lock before the send, so two workers
    sending to the same customer at the same instant cannot both pass the cap."""

    # No database constraint on customer, as on the ledgers: its check at commit was a row
    # lock (FOR KEY SHARE) of every recipient's customer row, a WAL record and a dirty page per
    # send; 0.68 -> 0.60 s per 10,000 uncapped slots (cap_reserve, batches of 500, medians of
    # 6 interleaved rounds, load 2.7-4.9). Slots are written for customers a claim has just
    # read; deleting a customer goes through the ORM, whose CASCADE deletes them.
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+", db_index=False,
                                 db_constraint=False)
    # The ledger or send row's key, unique through Meta's constraint: unique=True added a
    # second index on PostgreSQL (varchar_pattern_ops, for LIKE, which nothing asks), one
    # more entry written by every send.
    key = models.CharField(max_length=32)
    at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key"], name="capslot_key")]
        indexes = [models.Index(fields=["customer", "at"], name="capslot_customer_at")]
