"""The marketer's campaign pages: list, the step-by-step form, a campaign's live progress
with its controls and failures, variant previews, and the outbox.

(campaigns/views.py holds the public unsubscribe page, which needs no login.)
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import F
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from core import charts
from customers.models import Customer, Order
from core.roles import MARKETER, VIEWER, has_role, role_required
from experiments.stats import planning
from segments.models import Segment
from segments.selectors import segment_customers

from . import selectors
from .errors import CampaignError
from .services.drafts import campaign_create, campaign_preview as preview_render
from .services.launch import campaign_check, campaign_launch
from .services.lifecycle import campaign_cancel, campaign_pause, campaign_resume
from .models import Campaign, LedgerEntry, OutboxMessage

S = LedgerEntry.Status
BAR_STATUSES = [S.SENT, S.DELIVERED, S.OPENED, S.CLICKED, S.PENDING, S.SENDING, S.UNKNOWN,
                S.FAILED, S.BOUNCED, S.COMPLAINED, S.SUPPRESSED, S.CANCELLED]
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
    if request.method == "POST":
        try:
            spec = _spec_from_post(request.POST)
            campaign = campaign_create(spec, user=request.user)
        except (CampaignError, ValueError) as exc:
            messages.error(request, f"The campaign was not saved: {exc}")
        else:
            messages.success(request, "Draft saved. Check the previews, then launch.")
            return redirect("campaigns:detail", campaign_id=campaign.id)
    context = {
        "segments": segments,
        "form": form,
        "variant_slots": range(MAX_VARIANTS),
        "provider": settings.EMAIL_PROVIDER,
    }
    return render(request, "campaigns/pages/new.html", context)


def _baseline(audience, days: int) -> float:
    """The share of the audience that ordered in any `days`-day window lately: what the
    holdout will probably do, so the estimate starts from this audience's own behaviour."""
    size = audience.count()
    if not size:
        return 0.0
    since = timezone.now() - timedelta(days=days)
    buyers = Order.objects.filter(customer__in=audience, ordered_at__gte=since).values("customer").distinct().count()
    return buyers / size


@role_required(VIEWER)
def campaign_estimate(request):
    """htmx: audience size and the smallest lift this audience and holdout can detect."""
    segment = Segment.objects.filter(pk=request.GET.get("segment") or 0).first()
    context: dict = {"segment": segment}
    if segment is not None:
        try:
            holdout = float(request.GET.get("holdout") or 10) / 100
            days = int(request.GET.get("attribution_days") or 7)
        except ValueError:
            holdout, days = 0.1, 7
        audience = segment_customers(segment).exclude(email="")
        size = audience.count()
        baseline = _baseline(audience, days)
        n_control, n_treated = int(size * holdout), size - int(size * holdout)
        context.update(size=size, holdout=holdout, baseline=baseline, n_control=n_control, n_treated=n_treated)
        if n_control >= 10 and 0 < baseline < 1:
            context["mde"] = planning.detectable_effect_binary(baseline, n_control, ratio=n_treated / n_control)
    return render(request, "campaigns/pages/_estimate.html", context)


def _progress(campaign: Campaign) -> dict:
    status = selectors.campaign_status(campaign)
    total = status["total"] - status["counts"].get(S.HELD_OUT, 0)
    bars = [
        {"status": s, "label": LedgerEntry.Status(s).label, "count": status["counts"].get(s, 0),
         "share": (status["counts"].get(s, 0) / total * 100) if total else 0}
        for s in BAR_STATUSES if status["counts"].get(s, 0)
    ]
    return {"status": status, "bars": bars, "percent": round(status["progress"] * 100, 1), "to_send": total}


@role_required(VIEWER)
def campaign_detail(request, campaign_id: int):
    campaign = _campaign(campaign_id)
    progress = _progress(campaign)
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
    return render(request, "campaigns/pages/outbox_detail.html", {"message": message})



@role_required(VIEWER)
def dashboard(request):
    """Campaigns sending now with live progress, scheduled ones, recent verdicts, segment trends.

    Here, in the top app, because it reads every app below it."""
    from experiments.models import Report
    from segments.models import SegmentRefresh

    sending = Campaign.objects.filter(state__in=[Campaign.State.SENDING, Campaign.State.PAUSED]).select_related("segment")
    scheduled = Campaign.objects.filter(state=Campaign.State.SCHEDULED).select_related("segment").order_by("send_at")[:10]
    reports = Report.objects.filter(by="").select_related("experiment").order_by("-computed_at")[:8]
    segments = list(Segment.objects.order_by("-size")[:10])
    sizes: dict[int, list[int]] = {}
    for refresh in SegmentRefresh.objects.filter(segment__in=segments).order_by("version"):
        sizes.setdefault(refresh.segment_id, []).append(refresh.size)
    context = {
        "sending": [{"campaign": c, **_progress(c)} for c in sending],
        "scheduled": scheduled,
        "reports": reports,
        "segments": [
            {"segment": s, "spark": mark_safe(charts.sparkline(sizes.get(s.id, [])[-20:], title=f"{s.name} size"))}
            for s in segments
        ],
        "customers": Customer.objects.count(),
    }
    return render(request, "campaigns/pages/dashboard.html", context)


@role_required(VIEWER)
def customer_detail(request, customer_id: int):
    """One customer across every app: orders, events, segments, model scores, messages
    received and consent. Here, in the top app, because it reads all of them."""
    from segments.models import Membership, ModelScore

    customer = get_object_or_404(Customer, pk=customer_id)
    memberships = (
        Membership.objects.filter(customer=customer, version=F("segment__current_version"))
        .select_related("segment").order_by("segment__name")
    )
    scores = ModelScore.objects.filter(customer=customer).select_related("model").order_by("-model__trained_at")[:20]
    context = {
        "customer": customer,
        "orders": customer.orders.order_by("-ordered_at")[:50],
        "events": customer.events.order_by("-occurred_at")[:50],
        "suppressions": customer.suppressions.all(),
        "consent": getattr(customer, "consent", None),
        "segments": [m.segment for m in memberships],
        "scores": scores,
        "messages": LedgerEntry.objects.filter(customer=customer).select_related("campaign", "variant").order_by("-assigned_at")[:50],
    }
    return render(request, "campaigns/pages/customer.html", context)
