"""Campaign pages: the marketer's (list, the composer with its live preview, a campaign's
state and progress with its controls, launch job and failures, the confirm step, previews,
test sends, the outbox) and the public one-click unsubscribe page under /u/ (RFC 8058),
which needs no login: its signed token is the key. Launch only records the intent here.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.formatting import count, percent, points, lift as lift_text
from core.jobs import jobs_expire_lost
from core.roles import MARKETER, VIEWER, has_role, role_required
from core.selectors import jobs_for
from customers.models import Customer
from segments.models import Segment
from segments.selectors import segment_customers

from . import forms, selectors
from .errors import CampaignError
from .layouts import LAYOUTS
from .services.drafts import (
    MAX_ATTRIBUTION_DAYS, campaign_create, campaign_editable, campaign_preview as preview_render, campaign_update,
    spec_variant_preview,
)
from .services.launch_check import (
    CHECK_JOB_KIND, launch_check_prepare, launch_check_request,
)
from .services.launch_request import (
    LAUNCH_JOB_KIND, campaign_launch_request, campaign_target, launch_retryable, launches_settle_lost,
)
from .services.lifecycle import campaign_cancel, campaign_pause, campaign_resume
from .services.proof_send import campaign_test_send
from .services.unsubscribe import unsubscribe_apply
from .unsubscribe import unsubscribe_redact
from .models import Campaign, LedgerEntry, OutboxMessage

S = LedgerEntry.Status
FAILED_STATUSES = [S.FAILED, S.BOUNCED, S.COMPLAINED, S.UNKNOWN]
POLLING_STATES = (Campaign.State.LAUNCHING, Campaign.State.SCHEDULED, Campaign.State.SENDING)


def _campaign(campaign_id: int) -> Campaign:
    return get_object_or_404(Campaign.objects.select_related("segment", "offer"), pk=campaign_id)


@role_required(VIEWER)
def campaign_index(request):
    campaigns = list(Campaign.objects.select_related("segment").order_by("-created_at")[:100])
    counts = selectors.campaigns_counts([c.id for c in campaigns])
    rows = [{"campaign": c, "counts": selectors.counts_line(c.state, counts[c.id])} for c in campaigns]
    return render(request, "campaigns/pages/index.html", {"rows": rows, "can_edit": has_role(request.user, MARKETER)})


# --------------------------------------------------------------------------- the composer


def _composer(request, *, campaign: Campaign | None):
    """New draft (campaign None) or a draft's edit: the form beside a live preview."""
    status = 200
    if request.method == "POST":
        form, blocks = request.POST, forms.variant_blocks(request.POST)
        try:
            spec = forms.spec_from_post(request.POST)
            if campaign is None:
                saved = campaign_create(spec, user=request.user)
            else:
                saved = campaign_update(campaign, spec, user=request.user)
        except (CampaignError, ValueError) as exc:
            messages.error(request, f"The draft was not saved: {exc}")
            status = 400  # the form again, with the reason: bad input is a 4xx
        else:
            launch_check_prepare(saved, user=request.user)  # counted by the time the confirm step opens
            messages.success(request, "Draft saved. Send yourself a test, then review and launch.")
            return redirect("campaigns:detail", campaign_id=saved.id)
    elif campaign is not None:
        form, blocks = forms.form_from_campaign(campaign)
    else:
        form, blocks = {}, [forms.new_block(0)]
    segment_id = str(form.get("segment") or "")
    segment = Segment.objects.filter(pk=segment_id).first() if segment_id.isdigit() else None
    context = {
        "campaign": campaign,
        "segments": Segment.objects.order_by("name"),
        "form": form,
        "excluded": form.getlist("exclude") if hasattr(form, "getlist") else form.get("exclude", []),
        "blocks": blocks,
        "layouts": LAYOUTS.values(),
        "max_variants": forms.MAX_VARIANTS,
        "provider": settings.EMAIL_PROVIDER,
        "customers": _preview_customers(segment),
    }
    return render(request, "campaigns/pages/composer.html", context, status=status)


def _preview_customers(segment: Segment | None) -> list[Customer]:
    """Real customers to preview for: the segment's first members with an email."""
    people = segment_customers(segment) if segment is not None else Customer.objects.all()
    return list(people.exclude(email="").order_by("id")[:25])


@role_required(MARKETER)
def campaign_new(request):
    return _composer(request, campaign=None)


@role_required(MARKETER)
def campaign_edit(request, campaign_id: int):
    campaign = _campaign(campaign_id)
    if not campaign_editable(campaign):
        messages.error(request, f"This campaign is {campaign.get_state_display().lower()}: only a draft can be edited.")
        return redirect("campaigns:detail", campaign_id=campaign.id)
    return _composer(request, campaign=campaign)


@role_required(MARKETER)
@require_GET
def composer_variant(request):
    """htmx: one more variant block, numbered after the blocks the form has."""
    indexes = forms.variant_indexes(request.GET)
    if len(indexes) >= forms.MAX_VARIANTS:
        return HttpResponseBadRequest(f"At most {forms.MAX_VARIANTS} variants.")
    i = max(indexes, default=-1) + 1
    block = forms.new_block(i) | {"name": chr(ord("A") + min(len(indexes), 25))}
    return render(request, "campaigns/pages/_variant.html", {"block": block, "layouts": LAYOUTS.values(), "removable": True})


@role_required(MARKETER)
@require_GET
def composer_remove(request):
    """htmx: the removed block's place, now empty (the form keeps the others' numbers); the
    event tells the live preview to render again (it may have shown the removed variant)."""
    return HttpResponse("", headers={"HX-Trigger": "variant-removed"})


@role_required(VIEWER)
@require_GET
def composer_customers(request):
    """htmx: the preview's customer choices for the segment just chosen."""
    segment_id = request.GET.get("segment", "")
    segment = Segment.objects.filter(pk=segment_id).first() if segment_id.isdigit() else None
    response = render(request, "campaigns/pages/_customer_options.html", {"customers": _preview_customers(segment)})
    response["HX-Trigger"] = "customers-loaded"  # the live preview renders again, for one of them
    return response


@role_required(MARKETER)
@require_POST
def composer_preview(request):
    """htmx: the variant being written, rendered for a real customer, as the marketer types.
    Same sandbox and render budget as a send; nothing is saved."""
    blocks = forms.variant_blocks(request.POST)
    chosen = request.POST.get("preview_variant", "")
    block = next((b for b in blocks if str(b["i"]) == chosen), blocks[0] if blocks else None)
    customer = Customer.objects.filter(pk=request.POST.get("preview_customer") or 0).first()
    context: dict = {"customer": customer, "block": block, "message": None, "error": ""}
    if block is None:
        context["error"] = "Add a variant to see its preview."
    elif customer is None:
        context["error"] = "Choose a segment with customers to preview the email for one of them."
    elif not (block["subject"].strip() and (block["headline"].strip() or block["body"].strip()
                                             or block["text"].strip() or block["html"].strip())):
        context["error"] = "Write a subject and a message to see the preview."
    else:
        try:
            spec = forms.spec_from_post(request.POST)
            context["message"] = spec_variant_preview(spec, forms.variant_from_block(block, 0), customer)
        except (CampaignError, ValueError) as exc:
            context["error"] = str(exc)
    return render(request, "campaigns/pages/_live_preview.html", context)


@role_required(VIEWER)
def campaign_estimate(request):
    """htmx: audience size and the smallest lift this audience and holdout can detect."""
    segment_id = request.GET.get("segment") or "0"
    segment = Segment.objects.filter(pk=segment_id).first() if segment_id.isdigit() else None
    context: dict = {"segment": segment}
    try:
        holdout = float(request.GET.get("holdout") or 10) / 100
        days = int(request.GET.get("attribution_days") or 7)
    except ValueError:
        return HttpResponseBadRequest("holdout is a percentage and attribution_days a whole number of days")
    if not 0 <= holdout < 1:  # also refuses nan and inf
        return HttpResponseBadRequest("holdout: a percentage of the audience, at least 0 and below 100")
    if not 1 <= days <= MAX_ATTRIBUTION_DAYS:
        return HttpResponseBadRequest(f"attribution_days: from 1 to {MAX_ATTRIBUTION_DAYS}")
    if segment is not None:
        context.update(selectors.audience_estimate(segment, holdout, days))
    return render(request, "campaigns/pages/_estimate.html", context)


# --------------------------------------------------------------------------- a campaign


def _progress_context(request, campaign: Campaign) -> dict:
    if campaign.state == Campaign.State.LAUNCHING and launches_settle_lost():
        campaign.refresh_from_db()  # its launch job was lost: the page says so, with a retry
    progress = selectors.campaign_progress(campaign)
    return {
        "jobs": jobs_for(campaign_target(campaign.id), kinds=(LAUNCH_JOB_KIND,), limit=1),
        "campaign": campaign,
        **progress,
        "counts_line": selectors.counts_line(campaign.state, progress["status"]["counts"]),
        "can_edit": has_role(request.user, MARKETER),
        "editable": campaign_editable(campaign),
        "retryable": launch_retryable(campaign),
        "polling": campaign.state in POLLING_STATES,
    }


@role_required(VIEWER)
def campaign_detail(request, campaign_id: int):
    campaign = _campaign(campaign_id)
    context = _progress_context(request, campaign)
    if request.htmx:
        return render(request, "campaigns/pages/_progress.html", context)
    failures = selectors.ledger_list(campaign).filter(status__in=FAILED_STATUSES)
    sample = list(segment_customers(campaign.segment).exclude(email="").order_by("id")[:20])
    context |= {
        "variants": list(campaign.variants.order_by("position")),
        "failures": failures[:100],
        "failure_count": failures.count(),
        "sample": sample,
        "problems": _draft_problems(request, campaign),
        "checking": campaign.state == Campaign.State.DRAFT and any(
            j.active for j in jobs_for(campaign_target(campaign.id), kinds=(CHECK_JOB_KIND,), limit=1)),
        "provider": settings.EMAIL_PROVIDER,
        "test_address": request.user.email,
    }
    return render(request, "campaigns/pages/detail.html", context)


def _draft_problems(request, campaign: Campaign) -> list[str]:
    """A draft's launch problems from its stored check (a large audience: queued for a
    worker, and shown once counted; the confirm step waits for it)."""
    if campaign.state != Campaign.State.DRAFT:
        return []
    # A Viewer sees a small audience checked on the spot and starts no job for a large one.
    check = launch_check_request(campaign, user=request.user, queue=has_role(request.user, MARKETER))
    return (check.facts.get("problems") or []) if check is not None else []


@role_required(MARKETER)
def campaign_confirm(request, campaign_id: int):
    """The step before launch: who gets it, who is held out, when, through which provider,
    what this test can detect, a sample email for a real customer, and what would go wrong.

    The counts come from the draft's stored launch check (services.launch_check): computed
    here for a small audience, by a worker for a large one while this page shows the job
    and fetches itself again until the facts are there."""
    campaign = _campaign(campaign_id)
    if campaign.state not in (Campaign.State.DRAFT, Campaign.State.SCHEDULED) and not launch_retryable(campaign):
        messages.info(request, f"This campaign is {campaign.get_state_display().lower()}: there is nothing to launch.")
        return redirect("campaigns:detail", campaign_id=campaign.id)
    check = launch_check_request(campaign, user=request.user)
    jobs = jobs_for(campaign_target(campaign.id), kinds=(CHECK_JOB_KIND,), limit=1)
    if check is None and jobs and jobs_expire_lost(ids=[jobs[0].id]):  # its worker is gone: say so
        jobs = jobs_for(campaign_target(campaign.id), kinds=(CHECK_JOB_KIND,), limit=1)
    context = {"campaign": campaign, "check": check, "provider": settings.EMAIL_PROVIDER, "jobs": jobs}
    if check is not None:
        context |= _confirm_facts(campaign, check.facts)
    template = "campaigns/pages/_confirm_body.html" if request.htmx else "campaigns/pages/confirm.html"
    return render(request, template, context)


def _confirm_facts(campaign: Campaign, facts: dict) -> dict:
    variants = list(campaign.variants.order_by("position", "id"))
    by_id = Customer.objects.in_bulk(facts.get("sample_ids") or [])
    customers = [by_id[i] for i in facts.get("sample_ids") or [] if i in by_id]
    sample_customer = customers[0] if customers else None
    sample, sample_error = None, ""
    if sample_customer is not None and variants:
        try:
            sample = preview_render(campaign, variants[0].name, sample_customer)
        except CampaignError as exc:
            sample_error = str(exc)
    mde = facts.get("mde")
    return {
        "size": count(facts["size"]),
        "size_n": facts["size"],
        "n_control": count(facts["n_control"]),
        "n_treated": count(facts["n_treated"]),
        "control_label": "held out (the holdout, who get nothing)" if campaign.holdout
        else f"in variant {variants[0].name if variants else ''}, the control (no holdout)",
        "baseline": percent(facts["baseline"]),
        "mde_points": points(mde["absolute"]) if mde and mde.get("absolute") is not None else None,
        "mde_relative": lift_text(mde["relative"]) if mde and mde.get("relative") is not None else None,
        "problems": facts.get("problems") or [],
        "warnings": facts.get("warnings") or [],
        "variants": variants,
        "sample": sample,
        "sample_error": sample_error,
        "sample_customer": sample_customer,
        "customers": customers,
    }


@role_required(VIEWER)
def campaign_preview(request, campaign_id: int):
    """A variant rendered for one customer, shown in a sandboxed frame."""
    campaign = _campaign(campaign_id)
    customer = get_object_or_404(Customer, pk=request.GET.get("customer") or 0)
    try:
        message = preview_render(campaign, request.GET.get("variant", ""), customer)
        error = ""
    except CampaignError as exc:
        message, error = None, str(exc)
    return render(request, "campaigns/pages/_preview.html", {"message": message, "error": error, "customer": customer})


@role_required(MARKETER)
@require_POST
def campaign_test(request, campaign_id: int):
    """Send one variant, as a chosen customer would get it, to the address typed."""
    campaign = _campaign(campaign_id)
    customer = Customer.objects.filter(pk=request.POST.get("customer") or 0).first()
    if customer is None:
        messages.error(request, "Test send: choose a customer to render the email for.")
    else:
        address = request.POST.get("address", "")
        try:
            campaign_test_send(campaign, request.POST.get("variant", ""), address, customer)
        except CampaignError as exc:
            messages.error(request, f"Test send failed: {exc}")
        else:
            messages.success(request, f"Test of variant {request.POST.get('variant')} sent to {address.strip()} "
                                      f"through {settings.EMAIL_PROVIDER}, rendered for {customer.external_id}.")
    return redirect("campaigns:detail", campaign_id=campaign.id)


ACTIONS = {
    "launch": campaign_launch_request,
    "pause": campaign_pause,
    "resume": campaign_resume,
    "cancel": campaign_cancel,
}
DONE = {"launch": "Launching: the send list is being written; this page follows it.", "pause": "Paused.",
        "resume": "Resumed.", "cancel": "Cancelled: nothing more is sent."}


@role_required(MARKETER)
@require_POST
def campaign_action(request, campaign_id: int, action: str):
    campaign = _campaign(campaign_id)
    if action not in ACTIONS:
        raise Http404("No such action.")
    if action == "launch" and request.POST.get("confirm") != "yes":
        # Nothing sends without the confirm step: a bare POST is sent there.
        return redirect("campaigns:confirm", campaign_id=campaign.id)
    try:
        if action == "launch":
            campaign_launch_request(campaign, user=request.user)
        else:
            ACTIONS[action](campaign)
    except CampaignError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, DONE[action])
    return redirect("campaigns:detail", campaign_id=campaign.id)


@role_required(VIEWER)
def outbox_index(request):
    page = Paginator(OutboxMessage.objects.order_by("-created_at", "-id"), 50).get_page(request.GET.get("page"))
    return render(request, "campaigns/pages/outbox.html", {"page": page, "provider": settings.EMAIL_PROVIDER})


@role_required(VIEWER)
def outbox_detail(request, message_id: int):
    message = get_object_or_404(OutboxMessage, pk=message_id)
    if not has_role(request.user, MARKETER):
        # Each link unsubscribes its customer: a Viewer reads the message without it.
        message.text, message.html = unsubscribe_redact(message.text), unsubscribe_redact(message.html)
        message.headers = {k: unsubscribe_redact(str(v)) for k, v in message.headers.items()}
    return render(request, "campaigns/pages/outbox_detail.html", {"message": message})


# --------------------------------------------------------------------------- unsubscribe (public)


@csrf_exempt  # mail clients POST without a CSRF token; the signed token is the proof
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirmation with a button (link scanners and prefetchers GET: they must
    not unsubscribe anyone). POST unsubscribes and answers 200 with a page, no redirect: it
    is what a mail client's one-click button sends (`List-Unsubscribe=One-Click`)."""
    row = selectors.unsubscribe_find(token)
    if row is None:
        return render(request, "campaigns/unsubscribe.html", {"state": "invalid"}, status=404)
    if request.method == "POST":
        unsubscribe_apply(row, source="one-click" if "List-Unsubscribe" in request.POST else "link")
        return render(request, "campaigns/unsubscribe.html", {"state": "done", "email": row.email})
    return render(request, "campaigns/unsubscribe.html", {"state": "confirm", "email": row.email, "token": token})
