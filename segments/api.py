"""REST API for segments, their members, history and migration, and the rule builder's
field registry. Routes in segments/api_urls.py, mounted under /api/ by config/urls.py.

Views validate input and call one service or selector; permissions are the project's
RolePermission (reads: Viewer, writes: Marketer); a preview is a read.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings

from core.jobs import enqueue
from core.roles import VIEWER
from core.schedules import schedule_describe
from customers.models import Customer

from . import migration, rules, selectors
from .models import Segment, SegmentModel, SegmentRefresh
from .services import membership, schedules, specs


class SegmentSerializer(serializers.ModelSerializer):
    # null for a rule segment, which has no model
    model_name = serializers.CharField(source="model.name", read_only=True, default=None, allow_null=True)
    model_version = serializers.IntegerField(source="model.version", read_only=True, default=None, allow_null=True)
    schedule = serializers.SerializerMethodField()

    class Meta:
        model = Segment
        fields = ["id", "name", "description", "kind", "rule", "model", "model_name", "model_version", "params",
                  "family", "current_version", "size", "refreshed_at", "created_at", "schedule"]
        read_only_fields = fields

    def get_schedule(self, segment: Segment) -> dict | None:
        return schedule_describe(schedules.segment_schedule(segment))


class SegmentSpecSerializer(serializers.Serializer):
    """The payload of create (and of `segment_create --spec FILE.json`); checked by the service."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=Segment.Kind.choices, required=False)
    rule = serializers.JSONField(required=False, help_text="rule tree, for kind=rule")
    model = serializers.JSONField(required=False, help_text="model id (or name: its latest version)")
    label = serializers.CharField(required=False, help_text="cluster number or RFM tier")
    threshold = serializers.FloatField(required=False)
    below = serializers.FloatField(required=False)
    top_fraction = serializers.FloatField(required=False)
    after_fraction = serializers.FloatField(required=False)
    family = serializers.CharField(required=False, allow_blank=True)
    rank = serializers.IntegerField(required=False, help_text="0 = best segment of its family")
    worse = serializers.ChoiceField(choices=["higher", "lower"], required=False)
    schedule = serializers.JSONField(required=False)
    refresh = serializers.BooleanField(required=False, default=True, help_text="queue a first refresh")


class SegmentPreviewRequestSerializer(serializers.Serializer):
    rule = serializers.JSONField()
    sample = serializers.IntegerField(required=False, default=20, min_value=0, max_value=100)
    segment = serializers.IntegerField(required=False, help_text="the segment being edited, for cycle checks")


PreviewResult = inline_serializer("SegmentPreview", {
    "count": serializers.IntegerField(),
    "estimated": serializers.BooleanField(),
    "margin": serializers.IntegerField(),
    "sampled": serializers.IntegerField(),
    "total": serializers.IntegerField(),
    "seconds": serializers.FloatField(),
    "sample": serializers.ListField(child=serializers.DictField()),
})
RuleErrors = inline_serializer("RuleErrors", {
    "errors": serializers.ListField(child=inline_serializer("RuleError", {
        "path": serializers.CharField(), "message": serializers.CharField()})),
})
# A 400 comes in two shapes: a spec or rule problem as {"errors": [{path, message}]}, a body
# the serializer or parser refused as DRF's {field: [messages]} (or {"detail": ...}).
Invalid = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='{"errors": [{"path", "message"}]} for a rule or spec problem; {field: [messages]} or '
                '{"detail": ...} for a malformed body',
)
# Path and query numbers stay within PostgreSQL's integer columns (a larger one is a 400, not a 500).
INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1


class SegmentMemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "external_id", "email", "name", "country"]


class MemberPagination(CursorPagination):
    """A segment's members by keyset on customer id: `next` and `previous` carry the last id
    seen, so a deep page reads what the first does from the (segment, version, customer)
    index. By OFFSET, page 5,000 of a million-member segment read the 499,900 members before it."""

    ordering = "customer_id"
    page_size = api_settings.PAGE_SIZE


class SegmentRefreshSerializer(serializers.ModelSerializer):
    class Meta:
        model = SegmentRefresh
        fields = ["version", "size", "entered", "left", "seconds", "refreshed_at"]


class SegmentModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = SegmentModel
        fields = ["id", "name", "kind", "version", "params", "features", "training_rows", "seconds", "metrics",
                  "trained_at", "scored_at"]
        read_only_fields = fields


class ModelTrainSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["kmeans", "rfm", "propensity", "value"])
    name = serializers.CharField(required=False, max_length=200)
    target = serializers.CharField(required=False)
    churn_days = serializers.IntegerField(required=False, min_value=1, max_value=3650)
    features = serializers.ListField(child=serializers.CharField(), required=False)
    k_range = serializers.ListField(child=serializers.IntegerField(min_value=2, max_value=30), required=False)


def _invalid(errors: list[dict]) -> Response:
    return Response({"errors": errors}, status=status.HTTP_400_BAD_REQUEST)


class SegmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                     viewsets.GenericViewSet):
    serializer_class = SegmentSerializer
    queryset = Segment.objects.none()

    @property
    def required_role(self) -> str | None:
        # Preview changes nothing: anyone who may read segments may try a rule.
        return VIEWER if getattr(self, "action", None) in ("preview", "fields") else None

    def get_queryset(self):
        return selectors.segment_list()

    def get_serializer_class(self):
        return {"members": SegmentMemberSerializer, "history": SegmentRefreshSerializer}.get(self.action, SegmentSerializer)

    @extend_schema(request=SegmentSpecSerializer, responses={201: SegmentSerializer, 400: Invalid})
    def create(self, request):
        """Create a rule or model-derived segment; its first refresh is queued."""
        spec = _body_object(request)
        refresh = spec.pop("refresh", True)
        try:
            with transaction.atomic():
                segment = membership.segment_create(spec, user=request.user)
                if refresh:
                    enqueue("segments.tasks.segment_refresh", segment.pk)
        except specs.SpecInvalid as exc:
            return _invalid(exc.errors)
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SegmentSpecSerializer, responses={200: SegmentSerializer, 400: Invalid})
    def partial_update(self, request, pk=None):
        """Change the definition (name, description, rule, band, schedule...)."""
        segment = self.get_object()
        try:
            segment = membership.segment_update(segment, _body_object(request))
        except specs.SpecInvalid as exc:
            return _invalid(exc.errors)
        return Response(SegmentSerializer(segment).data)

    @extend_schema(responses={204: None, 409: RuleErrors})
    def destroy(self, request, pk=None):
        """Delete the segment (refused while another rule or a campaign uses it)."""
        segment = self.get_object()
        try:
            with transaction.atomic():
                # Lock the row as a refresh does: a refresh under way commits first and its new
                # memberships go with the segment, instead of failing the delete at commit (a 500).
                segment = Segment.objects.select_for_update().get(pk=segment.pk)
                membership.segment_delete(segment)
        except Segment.DoesNotExist:
            return Response(status=status.HTTP_404_NOT_FOUND)
        except specs.SpecInvalid as exc:
            return Response({"errors": exc.errors}, status=status.HTTP_409_CONFLICT)
        except ProtectedError as exc:
            users = sorted({str(obj) for obj in exc.protected_objects})[:10]
            return Response({"errors": [{"path": "segment", "message": f"in use by {', '.join(users)}"}]},
                            status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=SegmentPreviewRequestSerializer, responses={200: PreviewResult, 400: Invalid})
    @action(detail=False, methods=["post"])
    def preview(self, request):
        """Count (exact, or estimated on a large base) and a sample of a rule's members; saves nothing."""
        body = SegmentPreviewRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            result = selectors.segment_preview(body.validated_data["rule"], sample=body.validated_data["sample"],
                                               segment_id=body.validated_data.get("segment"))
        except rules.RuleInvalid as exc:
            return _invalid(exc.as_list())
        return Response(result)

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["get"])
    def fields(self, request):
        """The field registry for the rule builder: types, operators, known values, models, segments."""
        return Response(selectors.field_registry_describe())

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        """Queue a refresh (of the whole family for a family member)."""
        segment = self.get_object()
        enqueue("segments.tasks.segment_refresh", segment.pk)
        return Response({"queued": True, "segment": segment.pk}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[OpenApiParameter("cursor", str, description="from a response's next or previous link"),
                    OpenApiParameter("page", int, description="page by number instead (slow deep in a large segment)")],
        responses=SegmentMemberSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def members(self, request, pk=None):
        """The current version's customers by id: `count` (the segment's size), `next` and
        `previous` links that page by keyset, and `results`. `?page=N` pages by number, as
        this endpoint did before it had cursors."""
        segment = self.get_object()
        if "page" in request.query_params:
            page = self.paginate_queryset(selectors.segment_customers(segment).order_by("id"))
            return self.get_paginated_response(SegmentMemberSerializer(page, many=True).data)
        paginator = MemberPagination()
        rows = paginator.paginate_queryset(selectors.segment_member_rows(segment), request, view=self)
        links = paginator.get_paginated_response([]).data
        return Response({"count": segment.size, "next": links["next"], "previous": links["previous"],
                         "results": SegmentMemberSerializer([row.customer for row in rows], many=True).data})

    @extend_schema(responses=SegmentRefreshSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        """One row per refresh: size, entered, left; newest first, paginated."""
        segment = self.get_object()
        page = self.paginate_queryset(selectors.segment_history(segment))
        return self.get_paginated_response(SegmentRefreshSerializer(page, many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("old", int, description="family version (default: the one before new)"),
                    OpenApiParameter("new", int, description="family version (default: the latest)"),
                    OpenApiParameter("customer", int, description="also return this customer's history")],
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["get"])
    def migration(self, request, pk=None):
        """Transition matrix between two refreshes of the segment's family."""
        segment = self.get_object()
        family = segment.family
        if not family:
            raise ValidationError({"family": "this segment belongs to no family; migration compares a family"})
        old, new = (_int_param(request, name) for name in ("old", "new"))
        customer = _int_param(request, "customer", maximum=BIGINT_MAX)
        body = migration.family_migration(family, old=old, new=new)
        body["versions"] = migration.family_versions(family)
        if customer is not None:
            body["customer_history"] = migration.customer_family_history(customer, family)
        return Response(body)

    @extend_schema(
        parameters=[OpenApiParameter("old", int), OpenApiParameter("new", int),
                    OpenApiParameter("limit", int, description="rows per list (default 100, at most 1000)"),
                    OpenApiParameter("margin", float, description="share of a band's width counted as near")],
        responses={200: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["get"], url_path="at-risk")
    def at_risk(self, request, pk=None):
        """Customers who moved to a worse segment of the family, or sit near the worse edge of a score band."""
        segment = self.get_object()
        if not segment.family:
            raise ValidationError({"family": "this segment belongs to no family"})
        limit = _int_param(request, "limit", minimum=1, maximum=1000)
        margin = _float_param(request, "margin", maximum=1.0)
        limit = 100 if limit is None else limit
        margin = 0.1 if margin is None else margin
        return Response(migration.family_at_risk(segment.family, old=_int_param(request, "old"),
                                                 new=_int_param(request, "new"), limit=limit, margin=margin))

    @extend_schema(request=OpenApiTypes.OBJECT, responses={200: OpenApiTypes.OBJECT, 400: Invalid})
    @action(detail=True, methods=["put", "delete"])
    def schedule(self, request, pk=None):
        """PUT a schedule ({"every": "day", "at": "06:00"}, {"every_minutes": 60}, {"crontab": "..."}); DELETE it."""
        segment = self.get_object()
        if request.method == "DELETE":
            schedules.segment_schedule_clear(segment)
            return Response(status=status.HTTP_204_NO_CONTENT)
        try:
            periodic = schedules.segment_schedule_set(segment, request.data)
        except specs.SpecInvalid as exc:
            return _invalid(exc.errors)
        return Response(schedule_describe(periodic))


class SegmentModelViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = SegmentModelSerializer
    queryset = SegmentModel.objects.none()

    def get_queryset(self):
        return SegmentModel.objects.defer("pipeline").order_by("name", "-version")

    @extend_schema(request=ModelTrainSerializer, responses={202: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"])
    def train(self, request):
        """Queue the training of a new model (version); it scores everyone and refreshes its segments."""
        body = ModelTrainSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        enqueue("segments.tasks.model_train", **body.validated_data)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def retrain(self, request, pk=None):
        """Queue a re-train with the same settings; its family of segments follows."""
        model = self.get_object()  # DRF's lookup: a malformed id is a 404, not a 500
        enqueue("segments.tasks.model_retrain", model.pk)
        return Response({"queued": True, "model": model.pk}, status=status.HTTP_202_ACCEPTED)


def _body_object(request) -> dict:
    """The request body as a dict of fields; a JSON list or scalar is a 400, not a 500."""
    data = request.data
    if not hasattr(data, "items"):
        raise ValidationError({"non_field_errors": ["the body must be a JSON object of fields"]})
    return dict(data.items())


def _int_param(request, name: str, minimum: int = 0, maximum: int = INT_MAX) -> int | None:
    return _number_param(request, name, int, "a whole number", minimum, maximum)


def _float_param(request, name: str, minimum: float = 0.0, maximum: float = 1.0) -> float | None:
    return _number_param(request, name, float, "a number", minimum, maximum)


def _number_param(request, name: str, parse, what: str, minimum, maximum):
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = parse(raw)
    except ValueError:
        raise ValidationError({name: f"{raw!r} is not {what}"}) from None
    # NaN fails both comparisons, so it is refused too.
    if not minimum <= value <= maximum:
        raise ValidationError({name: f"must be between {minimum} and {maximum}"})
    return value
