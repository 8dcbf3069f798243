"""Campaign pages: the marketer's (list, the step-by-step form, a campaign's live progress
with its controls and failures, variant previews, the outbox) and the public one-click
unsubscribe page under /u/ (RFC 8058), which needs no login: its signed token is the key.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from core.roles import MARKETER, VIEWER, has_role, role_required
from customers.models import Customer
from segments.models import Segment
from segments.selectors import segment_customers

from . import selectors
from .errors import CampaignError
from .services.drafts import MAX_ATTRIBUTION_DAYS, campaign_create, campaign_preview as preview_render
from .services.launch import campaign_check, campaign_launch
from .services.lifecycle import campaign_cancel, campaign_pause, campaign_resume
from .services.unsubscribe import unsubscribe_apply
from .unsubscribe import unsubscribe_redact
from .models import Campaign, LedgerEntry, OutboxMessage

S = LedgerEntry.Status
FAILED_STATUSES = [S.FAILED, S.BOUNCED, S.COMPLAINED, S.UNKNOWN]
MAX_VARIANTS = 4


def _campaign(campaign_id: int) -> Campaign:
    return get_object_or_404(Campaign.objects.select_related("segment", "offer"), pk=campaign_id)


@role_required(VIEWER)
def campaign_index(request):
    campaigns = Campaign.objects.select_related("segment").order_by("-created_at")[:100]
    rows = [{"campaign": c, "status": selectors.campaign_status(c)} for c in campaigns]
    return render(request, "campaigns/pages/index.html", {"rows": rows, "can_edit": has_role(request.user, MARKETER)})


def _variants_from_post(post) -> list[dict]:
    variants = []
    for i in range(MAX_VARIANTS):
        subject = post.get(f"v{i}_subject", "").strip()
        if not subject and not post.get(f"v{i}_text", "").strip():
            continue
        variants.append({
            "name": post.get(f"v{i}_name", "").strip() or chr(ord("A") + i),
            "subject": subject,
            "preheader": post.get(f"v{i}_preheader", ""),
            "text": post.get(f"v{i}_text", ""),
            "html": post.get(f"v{i}_html", ""),
            "weight": post.get(f"v{i}_weight") or 1,
        })
    return variants


def _spec_from_post(post) -> dict:
    spec = {
        "name": post.get("name", "").strip(),
        "segment": post.get("segment") and int(post["segment"]),
        "exclude_segments": [int(s) for s in post.getlist("exclude") if s.isdigit()],
        "variants": _variants_from_post(post),
        "holdout": float(post.get("holdout") or 0) / 100,
        "send_at": post.get("send_at") or None,
        "timezone": post.get("timezone") or "",
        "attribution_days": post.get("attribution_days") or 7,
    }
    if post.get("offer_name", "").strip():
        spec["offer"] = {
            "name": post["offer_name"].strip(),
            "discount": post.get("offer_discount", ""),
            "code": post.get("offer_code", ""),
            "landing_url": post.get("offer_url", ""),
        }
    if post.get("quiet_start") and post.get("quiet_end"):
        spec["quiet_hours"] = {"start": post["quiet_start"], "end": post["quiet_end"]}
    if post.get("frequency_cap"):
        spec["frequency_cap"] = post["frequency_cap"]
    return spec


@role_required(MARKETER)
def campaign_new(request):
    segments = Segment.objects.order_by("name")
    form = request.POST if request.method == "POST" else {}
    status = 200
    if request.method == "POST":
        try:
            spec = _spec_from_post(request.POST)
            campaign = campaign_create(spec, user=request.user)
        except (CampaignError, ValueError) as exc:
            messages.error(request, f"The campaign was not saved: {exc}")
            status = 400  # the form again, with the reason: bad input is a 4xx
        else:
            messages.success(request, "Draft saved. Check the previews, then launch.")
            return redirect("campaigns:detail", campaign_id=campaign.id)
    context = {
        "segments": segments,
        "form": form,
        "variant_slots": range(MAX_VARIANTS),
        "provider": settings.EMAIL_PROVIDER,
    }
    return render(request, "campaigns/pages/new.html", context, status=status)


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


@role_required(VIEWER)
def campaign_detail(request, campaign_id: int):
    campaign = _campaign(campaign_id)
    progress = selectors.campaign_progress(campaign)
    if request.htmx:
        context = {"campaign": campaign, "can_edit": has_role(request.user, MARKETER), **progress}
        return render(request, "campaigns/pages/_progress.html", context)
    failures = selectors.ledger_list(campaign).filter(status__in=FAILED_STATUSES)
    sample = list(segment_customers(campaign.segment).exclude(email="").order_by("id")[:20])
    context = {
        "campaign": campaign,
        **progress,
        "variants": list(campaign.variants.order_by("position")),
        "failures": failures[:100],
        "failure_count": failures.count(),
        "sample": sample,
        "can_edit": has_role(request.user, MARKETER),
        "problems": campaign_check(campaign) if campaign.state == Campaign.State.DRAFT else [],
    }
    return render(request, "campaigns/pages/detail.html", context)


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


ACTIONS = {
    "launch": campaign_launch,
    "pause": campaign_pause,
    "resume": campaign_resume,
    "cancel": campaign_cancel,
}


@role_required(MARKETER)
@require_POST
def campaign_action(request, campaign_id: int, action: str):
    campaign = _campaign(campaign_id)
    if action not in ACTIONS:
        raise Http404("No such action.")
    try:
        ACTIONS[action](campaign)
    except CampaignError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Campaign {action} done.")
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
