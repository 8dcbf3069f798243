from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils.dateparse import parse_date
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from core import parsing
from core.uploads import limit_describe

from .importers.result import ImportFailed
from .importers.run import import_records
from .models import Customer
from .selectors import customer_list

BATCH_LIMIT = 5000


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "id", "external_id", "email", "name", "country", "time_zone", "signup_date",
            "attributes", "created_at", "updated_at",
        ]


class BatchUpsertSerializer(serializers.Serializer):
    customers = serializers.ListField(child=serializers.DictField(), max_length=BATCH_LIMIT, allow_empty=False)


def _text(value) -> str:
    # The importer reads text, as from a CSV file: JSON true/false/numbers become their words.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class CustomerViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CustomerSerializer
    # The batch rejects only the row holding a NUL byte, as the CSV importer does.
    nul_bytes_allowed = True

    @extend_schema(
        parameters=[
            OpenApiParameter("search", str, description="external id, email, or part of the name"),
            OpenApiParameter("country", str),
            OpenApiParameter("email", str),
            OpenApiParameter("external_id", str),
            OpenApiParameter("signed_up_after", str, description="YYYY-MM-DD"),
            OpenApiParameter("signed_up_before", str, description="YYYY-MM-DD"),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        dates = {}
        for name in ("signed_up_after", "signed_up_before"):
            if params.get(name):
                dates[name] = parse_date(params[name])
                if dates[name] is None:
                    raise ValidationError({name: f"{params[name]!r} is not a date (YYYY-MM-DD)"})
        return customer_list(
            search=params.get("search", ""),
            country=params.get("country", ""),
            email=params.get("email", ""),
            external_id=params.get("external_id", ""),
            **dates,
        )

    @extend_schema(request=BatchUpsertSerializer, responses={200: dict, 400: dict, 413: dict})
    @action(detail=False, methods=["post"], url_path="batch")
    def batch(self, request):
        """Upsert up to 5,000 customers by external_id; the same rules as the CSV importer."""
        try:
            data = request.data
        except RequestDataTooBig:
            limit = limit_describe(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
            return Response(
                {"detail": f"the request body is larger than the {limit} a request may be: "
                           "send fewer customers per request"},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        payload = BatchUpsertSerializer(data=data)
        payload.is_valid(raise_exception=True)
        items = payload.validated_data["customers"]
        header = list(dict.fromkeys(key for item in items for key in item))
        records = []
        for index, item in enumerate(items):
            fields = [_text(item.get(k)) for k in header]
            # The checks a CSV row gets as it is read (a NUL byte, an over-long value).
            records.append((index, parsing.fields_problem(header, fields) or dict(zip(header, fields))))
        try:
            result = import_records("customers", header, records, source_name="api", rejects_path=None)
        except ImportFailed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        body = result.as_dict()
        # "line" means the item's index in the posted list here.
        body["rejects"] = [
            {"index": r["line"], "reason": r["reason"].split(": ", 1)[-1]} for r in body.pop("reject_samples")
        ]
        for key in ("rejects_path", "encoding", "delimiter", "source"):
            body.pop(key)
        return Response(body)


EVENT_BATCH_LIMIT = 10000


class EventItemSerializer(serializers.Serializer):
    customer = serializers.CharField(help_text="the customer's external_id")
    kind = serializers.CharField(max_length=64)
    occurred_at = serializers.CharField(help_text="ISO 8601 date and time with an offset")
    properties = serializers.DictField(required=False, default=dict)


class EventBatchSerializer(serializers.Serializer):
    """What the schema documents."""

    events = EventItemSerializer(many=True, allow_empty=False, max_length=EVENT_BATCH_LIMIT)


class EventBatchInput(serializers.Serializer):
    """What is validated here: the list's shape only. Each event's fields are the importer's
    to check (a row it rejects is reported by index and the others are kept), and a nested
    serializer per event cost half of a 1,000-event request."""

    events = serializers.ListField(child=serializers.DictField(), allow_empty=False, max_length=EVENT_BATCH_LIMIT)


class EventViewSet(viewsets.ViewSet):
    """Events from a product, in real time: a batch per request, the CSV importer's rules."""

    nul_bytes_allowed = True

    @extend_schema(request=EventBatchSerializer, responses={200: dict, 400: dict, 413: dict})
    def create(self, request):
        """Insert up to 10,000 events; an event already stored (same customer, kind and
        instant) is not stored twice, so a product that posts a batch again changes nothing.
        Triggered automations read new events past their watermark (campaigns' tick)."""
        try:
            data = request.data
        except RequestDataTooBig:
            limit = limit_describe(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
            return Response({"detail": f"the request body is larger than the {limit} a request may be: "
                                       "send fewer events per request"},
                            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        payload = EventBatchInput(data=data)
        payload.is_valid(raise_exception=True)
        items = payload.validated_data["events"]
        for index, item in enumerate(items):
            if not isinstance(item.get("properties", {}), dict):
                raise ValidationError({"events": {index: {"properties": "must be an object"}}})
        props = list(dict.fromkeys(k for item in items for k in (item.get("properties") or {})))
        clash = [k for k in props if k in ("customer", "kind", "occurred_at")]
        if clash:
            raise ValidationError({"properties": f"property names {clash} are the event's own fields"})
        header = ["customer", "kind", "occurred_at", *props]
        records = []
        for index, item in enumerate(items):
            properties = item.get("properties") or {}
            fields = [_text(item.get("customer")), _text(item.get("kind")), _text(item.get("occurred_at")),
                      *[_text(properties.get(k)) for k in props]]
            records.append((index, parsing.fields_problem(header, fields) or dict(zip(header, fields))))
        try:
            result = import_records("events", header, records, source_name="api", rejects_path=None)
        except ImportFailed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        body = result.as_dict()
        body["rejects"] = [
            {"index": r["line"], "reason": r["reason"].split(": ", 1)[-1]} for r in body.pop("reject_samples")
        ]
        for key in ("rejects_path", "encoding", "delimiter", "source"):
            body.pop(key)
        return Response(body)
