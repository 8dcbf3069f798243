"""REST API of triggered offers, under /api/automations/: create from the spec (the same JSON
as `automation_create --spec`), list, status (the `automation_status --json` keys), pause,
resume, archive, and new steps (a new version). Views validate and call one service each."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from . import selectors
from ..errors import CampaignError
from ..models import Automation
from ..services.automations.create import automation_create
from ..services.automations.lifecycle import (
    automation_archive, automation_edit_steps, automation_pause, automation_resume,
)


class AutomationSerializer(serializers.ModelSerializer):
    trigger_segment = serializers.CharField(source="trigger_segment.name", read_only=True, default=None)
    audience_segment = serializers.CharField(source="audience_segment.name", read_only=True, default=None)
    version = serializers.IntegerField(source="current_version.number", read_only=True, default=None)

    class Meta:
        model = Automation
        fields = [
            "id", "name", "state", "trigger", "trigger_segment", "trigger_event", "date_attribute",
            "date_offset_days", "audience_segment", "holdout", "reentry_days", "exit_rules", "include_current",
            "quiet_start", "quiet_end", "frequency_cap", "attribution_days", "version", "started_at", "archived_at",
            "last_error", "created_at",
        ]
        read_only_fields = fields


class AutomationVariantSpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    subject = serializers.CharField()
    preheader = serializers.CharField(required=False, allow_blank=True)
    text = serializers.CharField(required=False, allow_blank=True)
    html = serializers.CharField(required=False, allow_blank=True)
    weight = serializers.FloatField(required=False, default=1.0)


class StepSpecSerializer(serializers.Serializer):
    wait_hours = serializers.FloatField(required=False, default=0)
    unless = serializers.CharField(required=False, allow_blank=True, help_text='"ordered": skip the step if so')
    variants = AutomationVariantSpecSerializer(many=True)


class AutomationSpecSerializer(serializers.Serializer):
    """The automation spec: the same JSON as `automation_create --spec FILE.json`."""

    name = serializers.CharField()
    trigger = serializers.JSONField(help_text='{"segment": NAME}, {"event": KIND} or '
                                              '{"date": {"attribute": "signup_date", "offset_days": 30}}')
    audience = serializers.CharField(required=False, help_text="only members of this segment enter")
    holdout = serializers.FloatField(required=False, default=0.1)
    reentry_days = serializers.IntegerField(required=False, allow_null=True, help_text="null: once ever")
    exit = serializers.ListField(child=serializers.CharField(), required=False,
                                 help_text="ordered, left_segment, unsubscribed")
    include_current = serializers.BooleanField(required=False, default=False)
    steps = StepSpecSerializer(many=True)
    offer = serializers.JSONField(required=False)
    quiet_hours = serializers.JSONField(required=False, help_text='{"start": "21:00", "end": "08:00"}')
    frequency_cap = serializers.IntegerField(required=False, allow_null=True)
    attribution_days = serializers.IntegerField(required=False, default=7)
    from_email = serializers.CharField(required=False)


StepsSerializer = inline_serializer("AutomationSteps", fields={"steps": StepSpecSerializer(many=True)})
StatusSerializer = inline_serializer(
    "AutomationStatus",
    fields={
        "name": serializers.CharField(), "state": serializers.CharField(), "entries": serializers.IntegerField(),
        "held_out": serializers.IntegerField(), "steps": serializers.ListField(child=serializers.DictField()),
        "exits": serializers.DictField(child=serializers.IntegerField()), "report": serializers.DictField(),
    },
)


def _bad(exc: Exception) -> ValidationError:
    return ValidationError({"detail": str(exc)})


class AutomationViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Automation.objects.select_related("trigger_segment", "audience_segment", "current_version")
    serializer_class = AutomationSerializer

    @extend_schema(request=AutomationSpecSerializer, responses={201: AutomationSerializer})
    def create(self, request, *args, **kwargs):
        """Create an active automation: from now on its trigger makes entries."""
        try:
            automation = automation_create(dict(request.data), user=request.user)
        except CampaignError as exc:
            raise _bad(exc) from None
        return Response(AutomationSerializer(automation).data, status=status.HTTP_201_CREATED)

    def _act(self, fn, *args):
        try:
            automation = fn(self.get_object().id, *args)
        except CampaignError as exc:
            raise _bad(exc) from None
        return Response(selectors.automation_status(automation))

    @extend_schema(responses={200: StatusSerializer})
    @action(detail=True, methods=["get"])
    def status(self, request, pk=None):
        """Entries, held out, sends per step, exits by reason, and the always-valid report."""
        return Response(selectors.automation_status(self.get_object()))

    @extend_schema(request=None, responses={200: StatusSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._act(automation_pause)

    @extend_schema(request=None, responses={200: StatusSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._act(automation_resume)

    @extend_schema(request=None, responses={200: StatusSerializer})
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        return self._act(automation_archive)

    @extend_schema(request=StepsSerializer, responses={200: StatusSerializer})
    @action(detail=True, methods=["post"])
    def steps(self, request, pk=None):
        """New steps: a new version for new entries; entries in the flow finish their own."""
        return self._act(automation_edit_steps, request.data.get("steps") if isinstance(request.data, dict) else None)
