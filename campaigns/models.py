"""Offers, campaigns and their variants, the send ledger, provider events, the outbox.

The ledger is the heart of sending: one row per (campaign, customer), written at launch
before anything is sent, so every retry, crash and webhook finds the row it belongs to.
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q


class Offer(models.Model):
    """What a campaign promotes: a discount, a code and where the link goes."""

    class CodeMode(models.TextChoices):
        NONE = "none", "no code"
        SHARED = "shared", "one code for everyone"
        UNIQUE = "unique", "a unique code per recipient"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, default="")
    discount = models.CharField(max_length=100, blank=True, default="")  # "20%", "$10 off"
    code_mode = models.CharField(max_length=8, choices=CodeMode.choices, default=CodeMode.NONE)
    code = models.CharField(max_length=64, blank=True, default="")  # the shared code, or the unique codes' prefix
    landing_url = models.URLField(max_length=1000, blank=True, default="")
    # utm_* tags added to the landing URL; utm_campaign and utm_content default to the
    # campaign's and the variant's names.
    utm = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft"
        # Launch was asked for (page or API); a task is writing the ledger. The request only
        # records the intent: a launch to a million customers outlasts any web request.
        LAUNCHING = "launching"
        SCHEDULED = "scheduled"
        SENDING = "sending"
        PAUSED = "paused"
        COMPLETED = "completed"
        CANCELLED = "cancelled"
        # stopped by the system (a template over its render budget) or a launch that failed
        # before writing anything (runs == 0: it can be retried): see last_error
        FAILED = "failed"

    name = models.CharField(max_length=200, unique=True)
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns")
    segment = models.ForeignKey("segments.Segment", on_delete=models.PROTECT, related_name="campaigns")
    exclusion_segments = models.ManyToManyField("segments.Segment", blank=True, related_name="excluded_from_campaigns")
    holdout = models.FloatField(default=0.1)  # share of the audience that gets nothing: the control
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT, db_index=True)
    # blank: DEFAULT_FROM_EMAIL; never a line break (a header injection: "\r\nBcc: ...")
    from_email = models.CharField(
        max_length=254, blank=True, default="",
        validators=[RegexValidator(r"[\r\n\x00]", inverse_match=True, message="line breaks are not allowed")],
    )
    send_at = models.DateTimeField(null=True, blank=True)  # None: as soon as launched
    # A crontab ("0 9 * * 1": Mondays 09:00) in recurrence_timezone; each run adds the
    # segment's members not yet in the ledger, so a recurring campaign reaches newcomers only.
    recurrence = models.CharField(max_length=100, blank=True, default="")
    recurrence_timezone = models.CharField(max_length=64, blank=True, default="UTC")
    periodic_task = models.ForeignKey(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Quiet hours in each customer's own time zone (e.g. 21:00-08:00): messages wait.
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    # At most this many marketing emails per customer per rolling 7 days; later ones wait.
    frequency_cap = models.PositiveIntegerField(null=True, blank=True)
    attribution_days = models.PositiveIntegerField(default=7)
    experiment = models.ForeignKey(
        "experiments.Experiment", null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns"
    )
    runs = models.PositiveIntegerField(default=0)  # launches so far (recurring: one per run)
    launched_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)  # a second beat's run of the same tick is skipped
    completed_at = models.DateTimeField(null=True, blank=True)
    # Workers touch this while they send; a stale value tells the pump to wake new ones.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(holdout__gte=0) & Q(holdout__lt=1), name="campaign_holdout_range"),
        ]

    def __str__(self) -> str:
        return self.name


class Variant(models.Model):
    """One arm that receives an email: its templates (Jinja2, rendered in a sandbox)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=100)
    subject = models.CharField(max_length=998)
    preheader = models.CharField(max_length=500, blank=True, default="")
    html = models.TextField(blank=True, default="")
    text = models.TextField(blank=True, default="")
    weight = models.FloatField(default=1.0)
    position = models.PositiveSmallIntegerField(default=0)
    # Composed from a layout (campaigns.layouts): html and text are generated from these
    # fields when the draft is saved, and the composer edits these rather than the markup.
    layout = models.CharField(max_length=32, blank=True, default="")
    content = models.JSONField(default=dict, blank=True)  # headline, body, button, brand

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="variant_name_unique"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="variant_weight_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.name}"


HOLDOUT_ARM = "holdout"


class LedgerEntry(models.Model):
    """One recipient of one campaign: written at launch, before any send, never twice."""

    class Status(models.TextChoices):
        HELD_OUT = "held_out"  # the control: receives nothing
        PENDING = "pending"  # waiting for due_at
        SENDING = "sending"  # claimed by a worker until lease_until
        UNKNOWN = "unknown"  # the provider may or may not have it: reconciled, never resent blindly
        SENT = "sent"  # the provider accepted it
        DELIVERED = "delivered"
        OPENED = "opened"
        CLICKED = "clicked"
        FAILED = "failed"  # permanent error: the reason is in `error`
        BOUNCED = "bounced"
        COMPLAINED = "complained"
        SUPPRESSED = "suppressed"  # unsubscribed, bounced or complained before its turn came
        CANCELLED = "cancelled"  # the campaign was cancelled first

    # Every index is written again by each claim and each result (no update of a row can be
    # HOT: its status is in the partial indexes' conditions), so there are few: none for
    # campaign (the unique constraint and ledger_pending start with it) nor for variant.
    # No database constraint on campaign or variant either: each was checked per row at the
    # launch's commit, 1.2-1.7 s of a 100,000-row launch (SET CONSTRAINTS ALL IMMEDIATE after
    # the INSERT, quiet machine). Launch writes the rows of the campaign it holds locked and of
    # its own variants; a campaign or variant is deleted only through the ORM, whose CASCADE
    # deletes its rows (tests/campaigns/test_models.py).
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="ledger", db_index=False,
                                 db_constraint=False)
    # No database constraint on customer: checking it was a row lock (SELECT ... FOR KEY
    # SHARE) of every recipient at the launch's commit, 30-40% of a 100,000-row launch and
    # half of the hand-written INSERT ... SELECT's time (bench/campaigns_send.py --no-send,
    # load 8-10: launch 20.8 s -> 14.8 s, baseline 15.6 s -> 7.5 s, with the exposures').
    # Launch writes rows only for customers it reads in the same statement; deleting a
    # customer goes through the ORM (demo reload, admin), whose CASCADE deletes their rows;
    # a row whose customer was deleted while its launch ran is never claimed, and is
    # cancelled when its campaign runs out of claimable rows (campaign_finish_if_done).
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="campaign_ledger",
                                 db_constraint=False)
    variant = models.ForeignKey(Variant, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False,
                                db_constraint=False)
    arm = models.CharField(max_length=100)
    email = models.CharField(max_length=254, blank=True, default="")  # frozen at launch
    status = models.CharField(max_length=12, choices=Status.choices)
    run = models.PositiveIntegerField(default=1)
    assigned_at = models.DateTimeField()
    due_at = models.DateTimeField()
    # Bumped by every claim: a worker records its result only while its attempt is current.
    attempts = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)  # transient errors so far, for the backoff
    lease_until = models.DateTimeField(null=True, blank=True)
    batch = models.CharField(max_length=32, blank=True, default="")  # the claim it was sent in
    # Our own id for the message, carried in the provider's metadata and the unsubscribe
    # token: reconciliation and webhooks find the row by it. Unique through Meta's
    # constraint, not unique=True, which on PostgreSQL adds a second (LIKE) index on it.
    key = models.CharField(max_length=32)
    provider = models.CharField(max_length=32, blank=True, default="")
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    offer_code = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer"], name="ledger_campaign_customer"),
            models.UniqueConstraint(fields=["key"], name="ledger_key"),
        ]
        indexes = [
            # The claim's order (due_at, id) over pending rows only: a claim reads its LIMIT
            # rows off the front, however many are pending or long sent (over all of a
            # campaign's rows by status it sorted every pending row on every claim, and
            # sending slowed as the ledger grew).
            models.Index(fields=["campaign", "due_at", "id"], name="ledger_pending", condition=Q(status="pending")),
            # Partial indexes: launch writes 100,000s of rows that none of them hold yet.
            # (No index of sent rows by customer: frequency caps count CapSlot rows, and an
            # index nothing read cost one more entry in each send's record.)
            models.Index(fields=["lease_until"], name="ledger_sending_lease", condition=Q(status="sending")),
            models.Index(fields=["updated_at"], name="ledger_unknown", condition=Q(status="unknown")),
            models.Index(fields=["provider_message_id"], name="ledger_provider_id", condition=~Q(provider_message_id="")),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.customer_id} {self.status}"


class TrackingEvent(models.Model):
    """A provider webhook event, stored once: replays and duplicates find their twin."""

    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=255)  # the provider's id, or a digest of the payload
    event_type = models.CharField(max_length=32)
    ledger = models.ForeignKey(LedgerEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    # Or the automation step send it is about (an automation's message): one of the two, or neither.
    automation_send = models.ForeignKey("campaigns.AutomationSend", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="events")
    recipient = models.CharField(max_length=254, blank=True, default="")
    message_id = models.CharField(max_length=255, blank=True, default="")
    occurred_at = models.DateTimeField(null=True, blank=True)
    description = models.TextField(blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="trackingevent_unique")]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.recipient}"


class RateBucket(models.Model):
    """The token bucket of one provider account when there is no Redis to hold it."""

    key = models.CharField(max_length=200, unique=True)
    tokens = models.FloatField(default=0)
    stamp = models.FloatField(default=0)  # epoch seconds of the last refill
    factor = models.FloatField(default=1.0)  # <1 after a 429: the rate slows, then recovers
    blocked_until = models.FloatField(default=0)


class OutboxMessage(models.Model):
    """A message the `outbox` provider kept instead of sending: viewable in the app."""

    message_id = models.CharField(max_length=64, unique=True)
    from_email = models.CharField(max_length=254)
    to = models.JSONField(default=list)
    subject = models.CharField(max_length=998)
    text = models.TextField(blank=True, default="")
    html = models.TextField(blank=True, default="")
    headers = models.JSONField(default=dict)
    metadata = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.subject} -> {', '.join(self.to)}"


# Triggered offers live in their own module; imported here so Django registers them.
from .automations.models import (  # noqa: E402,F401
    Automation, AutomationEntry, AutomationSend, AutomationStep, AutomationVariant, AutomationVersion, CapSlot,
)


class LaunchCheck(models.Model):
    """What the confirm step states about a draft, computed once for exactly this draft and
    these segment versions (services.launch_check): the audience count, the held-out share,
    the baseline and smallest detectable lift, the problems and warnings. At a million
    recipients these take several scans of the audience (seconds), so the worker computes
    them when the draft is saved or the confirm step finds none, and the page reads this row."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="launch_check")
    key = models.CharField(max_length=64)  # services.launch_check.launch_check_key at computation
    facts = models.JSONField(default=dict)  # size, n_control, n_treated, baseline, mde, problems, warnings, sample_ids
    computed_at = models.DateTimeField()
    seconds = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"launch check of {self.campaign_id} at {self.computed_at:%Y-%m-%d %H:%M}"
