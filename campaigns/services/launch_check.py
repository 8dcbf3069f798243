"""The confirm step's facts about a draft, computed once and read back.

Counting the audience, its baseline, the launch check (missing attributes, values printed
blank) all scan the audience: 1.7 s on a quiet machine and 7.9 s on a busy one for a
draft to a few hundred thousand customers, every time the confirm step was opened. So they
are computed once for a given draft and segment versions, stored as a LaunchCheck, and
read back by the page:
- inline, when the segment holds at most CHECK_INLINE_MAX customers (a few milliseconds'
  work: the page answers at once, as it did before);
- otherwise on a worker, as a tracked job the confirm step shows (queued, running, failed
  with a retry), started when the draft is saved and again if the confirm step finds the
  stored facts no longer match the draft.

The key covers what the facts depend on in the draft (variants, offer, holdout, audience
definition and the segments' versions). Suppressions and consent may change between the
check and the launch; the launch checks everything again on its own, and the page says when
the facts were counted.
"""

from __future__ import annotations

import hashlib
import json
import time

from django.db import transaction
from django.utils import timezone

from campaigns.models import Campaign, LaunchCheck
from campaigns.selectors import launch_preview
from core.jobs import Track, enqueue
from customers.models import AttributeDefinition

from .launch import campaign_check
from .launch_request import campaign_target

CHECK_INLINE_MAX = 20_000
CHECK_TASK = "campaigns.tasks.campaign_launch_check_task"
CHECK_JOB_KIND = "launch_check"
SAMPLE_KEPT = 20


def launch_check_key(campaign: Campaign) -> str:
    """A digest of everything in the draft the confirm step's facts depend on."""
    segments = [campaign.segment, *campaign.exclusion_segments.order_by("id")]
    offer = campaign.offer
    described = {
        "holdout": campaign.holdout, "from": campaign.from_email, "days": campaign.attribution_days,
        "segments": [[s.id, s.current_version] for s in segments],
        "variants": list(campaign.variants.order_by("position", "id").values_list(
            "name", "subject", "preheader", "html", "text", "weight", "layout", "content")),
        "offer": None if offer is None else [offer.id, offer.name, offer.discount, offer.code_mode, offer.code,
                                             offer.landing_url, offer.utm],
        "attributes": list(AttributeDefinition.objects.order_by("name").values_list("name", "type")),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def launch_check_run(campaign_id: int) -> LaunchCheck | None:
    """Count and check the draft now, and keep the result. None if it was deleted."""
    campaign = Campaign.objects.select_related("segment", "offer").filter(pk=campaign_id).first()
    if campaign is None:
        return None
    started = time.perf_counter()
    key = launch_check_key(campaign)  # before counting: a change meanwhile leaves it stale, never fresh
    now = timezone.now()
    with transaction.atomic():
        facts = launch_preview(campaign)
        warnings: list[str] = []
        problems = campaign_check(campaign, facts["audience"], warnings)
    stored = {
        "size": facts["size"], "n_control": facts["n_control"], "n_treated": facts["n_treated"],
        "baseline": facts["baseline"], "mde": facts["mde"], "problems": problems, "warnings": warnings,
        "sample_ids": [c.id for c in facts["sample"][:SAMPLE_KEPT]],
    }
    check, _ = LaunchCheck.objects.update_or_create(
        campaign=campaign,
        defaults={"key": key, "facts": stored, "computed_at": now, "seconds": round(time.perf_counter() - started, 3)},
    )
    return check


def launch_check_current(campaign: Campaign) -> LaunchCheck | None:
    """The stored facts if they were computed for the draft as it is now."""
    check = LaunchCheck.objects.filter(campaign=campaign).first()
    return check if check is not None and check.key == launch_check_key(campaign) else None


def launch_check_request(campaign: Campaign, *, user=None, queue: bool = True) -> LaunchCheck | None:
    """The current facts, computing them here when the audience is small; otherwise queue
    the job (when `queue`, unless one is waiting, running or failed) and return None."""
    check = launch_check_current(campaign)
    if check is not None:
        return check
    if campaign.segment.size <= CHECK_INLINE_MAX:  # the stored size bounds the audience
        return launch_check_run(campaign.id)
    if queue:
        from core.models import Job

        # A failed check stays on the page with its reason and a retry, rather than being
        # queued again by every look at the page (saving the draft queues a fresh one).
        latest = Job.objects.filter(target=campaign_target(campaign.id), kind=CHECK_JOB_KIND).order_by("-id").first()
        if latest is None or latest.state == Job.State.DONE:
            launch_check_enqueue(campaign, user=user)
    return None


def launch_check_prepare(campaign: Campaign, *, user=None) -> None:
    """After a draft is saved: queue the check of a large audience now, so the confirm step
    finds it done (a small one is counted when the confirm step opens)."""
    if campaign.segment.size > CHECK_INLINE_MAX and launch_check_current(campaign) is None:
        launch_check_enqueue(campaign, user=user)


def launch_check_enqueue(campaign: Campaign, *, user=None):
    """Queue the check as a job the campaign's pages show, unless one is already pending."""
    from core.models import Job

    pending = Job.objects.filter(target=campaign_target(campaign.id), kind=CHECK_JOB_KIND,
                                 state__in=[Job.State.QUEUED, Job.State.RUNNING]).order_by("-id").first()
    if pending is not None:
        return pending
    return enqueue(CHECK_TASK, campaign.id, track=Track(
        CHECK_JOB_KIND, f"Count and check the audience of {campaign.name}", target=campaign_target(campaign.id),
        user=user))
