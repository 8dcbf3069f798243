"""REST API: offers, campaigns (create from the spec, launch, pause, resume, cancel, status,
preview) and the ledger. Views validate and call one service each."""

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from customers.models import Customer

from . import selectors
from .errors import CampaignError
from .services.drafts import campaign_create, campaign_preview
from .services.launch_request import campaign_launch_request
from .services.lifecycle import campaign_cancel, campaign_pause, campaign_resume
from .services.offers import offer_create
from .models import Campaign, LedgerEntry, Offer, Variant


class OfferSerializer(serializers.ModelSerializer):
    class Meta:
        model = Offer
        fields = ["id", "name", "description", "discount", "code_mode", "code", "landing_url", "utm", "created_at"]
        read_only_fields = ["id", "created_at"]


class VariantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Variant
        fields = ["name", "subject", "preheader", "text", "html", "weight", "layout", "content"]


class CampaignSerializer(serializers.ModelSerializer):
    variants = VariantSerializer(many=True, read_only=True)
    segment = serializers.CharField(source="segment.name", read_only=True)
    offer = serializers.CharField(source="offer.name", read_only=True, default=None)

    class Meta:
        model = Campaign
        fields = [
            "id", "name", "state", "segment", "offer", "holdout", "send_at", "recurrence", "quiet_start",
            "quiet_end", "frequency_cap", "attribution_days", "experiment", "runs", "launched_at", "completed_at",
            "last_error", "variants", "created_at",
        ]
        read_only_fields = fields


class VariantSpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    subject = serializers.CharField()
    preheader = serializers.CharField(required=False, allow_blank=True)
    text = serializers.CharField(required=False, allow_blank=True)
    html = serializers.CharField(required=False, allow_blank=True)
    weight = serializers.FloatField(required=False, default=1.0)
    layout = serializers.CharField(required=False, allow_blank=True,
                                   help_text="spotlight, coupon or letter: html and text are generated from content")
    content = serializers.JSONField(required=False, help_text='{"headline": ..., "body": ..., "button": ..., "brand": ...}')


class CampaignSpecSerializer(serializers.Serializer):
    """The campaign spec: the same JSON as `launch_campaign --spec FILE.json`."""

    name = serializers.CharField()
    segment = serializers.CharField(help_text="segment name or id")
    exclude_segments = serializers.ListField(child=serializers.CharField(), required=False)
    offer = serializers.JSONField(required=False, help_text="an offer name or id, or a new offer's fields")
    variants = VariantSpecSerializer(many=True)
    holdout = serializers.FloatField(required=False, default=0.1)
    send_at = serializers.DateTimeField(required=False, allow_null=True)
    timezone = serializers.CharField(required=False, help_text="for a send_at without an offset")
    recurrence = serializers.CharField(required=False, help_text='crontab, e.g. "0 9 * * 1"')
    quiet_hours = serializers.JSONField(required=False, help_text='{"start": "21:00", "end": "08:00"}')
    frequency_cap = serializers.IntegerField(required=False, allow_null=True)
    attribution_days = serializers.IntegerField(required=False, default=7)
    from_email = serializers.CharField(required=False)


class LedgerSerializer(serializers.ModelSerializer):
    customer_external_id = serializers.CharField(source="customer.external_id", read_only=True)

    class Meta:
        model = LedgerEntry
        fields = [
            "id", "customer", "customer_external_id", "arm", "email", "status", "run", "assigned_at", "due_at",
            "attempts", "retries", "provider", "provider_message_id", "offer_code", "error", "sent_at", "updated_at",
        ]
        read_only_fields = fields


StatusSerializer = inline_serializer(
    "CampaignStatus",
    fields={
        "id": serializers.IntegerField(), "name": serializers.CharField(), "state": serializers.CharField(),
        "total": serializers.IntegerField(), "counts": serializers.DictField(child=serializers.IntegerField()),
        "progress": serializers.FloatField(), "arms": serializers.ListField(child=serializers.DictField()),
    },
)
PreviewSerializer = inline_serializer(
    "CampaignPreview", fields={"subject": serializers.CharField(), "text": serializers.CharField(), "html": serializers.CharField()}
)


def _bad(exc: Exception) -> ValidationError:
    return ValidationError({"detail": str(exc)})


class OfferViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Offer.objects.order_by("-created_at", "-id")
    serializer_class = OfferSerializer

    def create(self, request, *args, **kwargs):
        try:
            offer = offer_create(dict(request.data), user=request.user)
        except CampaignError as exc:
            raise _bad(exc) from None
        return Response(OfferSerializer(offer).data, status=status.HTTP_201_CREATED)


class CampaignViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Campaign.objects.select_related("segment", "offer").prefetch_related("variants")
    serializer_class = CampaignSerializer

    @extend_schema(request=CampaignSpecSerializer, responses={201: CampaignSerializer})
    def create(self, request, *args, **kwargs):
        """Create a draft from the spec; add `?launch=true` to ask for its launch in the same call.
        The answer says `launching`: a worker writes the ledger and moves it to `sending`
        (or `scheduled`, or `failed` with `last_error`); follow it with `status`."""
        launch = request.query_params.get("launch", "").lower() in ("1", "true", "yes")
        try:
            with transaction.atomic():
                campaign = campaign_create(dict(request.data), user=request.user)
                if launch:
                    campaign_launch_request(campaign, user=request.user)  # the intent only: a task launches
        except CampaignError as exc:
            raise _bad(exc) from None
        campaign.refresh_from_db()
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)

    def _act(self, fn):
        try:
            result = fn(self.get_object())
        except CampaignError as exc:
            raise _bad(exc) from None
        campaign = getattr(result, "campaign", result)
        campaign.refresh_from_db()
        return Response(selectors.campaign_status(campaign))

    @extend_schema(request=None, responses={200: StatusSerializer})
    @action(detail=True, methods=["post"])
    def launch(self, request, pk=None):
        """Ask for the launch: the answer says `launching` and a worker freezes the audience,
        assigns arms, writes the ledger and starts sending (or schedules); a failed launch
        says `failed` with `last_error` and may be asked for again."""
        return self._act(lambda campaign: campaign_launch_request(campaign, user=request.user))

    @extend_schema(request=None, responses={200: StatusSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._act(campaign_pause)

    @extend_schema(request=None, responses={200: StatusSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._act(campaign_resume)

    @extend_schema(request=None, responses={200: StatusSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._act(campaign_cancel)

    @extend_schema(responses={200: StatusSerializer})
    @action(detail=True, methods=["get"])
    def status(self, request, pk=None):
        """Counts per ledger status, progress, and per arm: sent and attributed conversions."""
        return Response(selectors.campaign_status(self.get_object()))

    @extend_schema(
        parameters=[
            OpenApiParameter("variant", str, required=True),
            OpenApiParameter("customer", str, required=True, description="customer id or external id"),
        ],
        responses={200: PreviewSerializer},
    )
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        """One variant rendered for one customer."""
        campaign = self.get_object()
        ref = request.query_params.get("customer", "")
        customer = Customer.objects.filter(external_id=ref).first()
        if customer is None and ref.isdigit():
            customer = Customer.objects.filter(id=int(ref)).first()
        if customer is None:
            raise NotFound(f"no customer {ref!r}")
        try:
            message = campaign_preview(campaign, request.query_params.get("variant", ""), customer)
        except CampaignError as exc:
            raise _bad(exc) from None
        return Response({"subject": message.subject, "text": message.text, "html": message.html})

    @extend_schema(
        parameters=[OpenApiParameter("status", str), OpenApiParameter("arm", str)],
        responses={200: LedgerSerializer(many=True)},
    )
    @action(detail=True, methods=["get"])
    def ledger(self, request, pk=None):
        """The send ledger: one row per recipient (holdout included), with the reason of any failure."""
        rows = selectors.ledger_list(
            self.get_object(), status=request.query_params.get("status", ""), arm=request.query_params.get("arm", "")
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(LedgerSerializer(page, many=True).data)
