"""REST API for experiments: list, detail, report, CSV export, refresh, and the sample size plan.

Permissions are the project default (core.permissions.RolePermission): reads need
Viewer, writes Marketer. The plan computes and stores nothing, so it is a read for both
GET and POST.
"""

import io

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from core.roles import VIEWER

from . import selectors
from .kinds import KIND_CHOICES, KINDS, kind_get
from .models import Arm, Experiment, Metric
from .presentation import report_csv_write
from .services.definitions import ExperimentError
from .services.reports import report_refresh, report_refresh_enqueue
from .stats import planning
from .verdicts import ENGINES, report_for_engine

BY_PARAMETER = OpenApiParameter("by", str, description="break the results down by this unit attribute, "
                                "or by segment:NAME (its members against everyone else)")
ENGINE_PARAMETER = OpenApiParameter("engine", str, enum=list(ENGINES),
                                    description="whose verdict: frequentist (default) or bayesian")


class ArmSerializer(serializers.ModelSerializer):
    class Meta:
        model = Arm
        fields = ["name", "weight", "is_control"]


class MetricSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=KIND_CHOICES)

    class Meta:
        model = Metric
        fields = ["name", "kind", "source", "is_primary", "event_kind", "order_filter"]


class ExperimentSerializer(serializers.ModelSerializer):
    arms = ArmSerializer(many=True, read_only=True)
    metrics = MetricSerializer(many=True, read_only=True)

    class Meta:
        model = Experiment
        fields = [
            "id", "name", "description", "source", "mode", "alpha", "attribution_days", "unit_label",
            "mde", "mde_relative", "retention_event", "retention_days", "covariate", "arms", "metrics",
            "created_at", "updated_at",
        ]


class PlanSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KIND_CHOICES, default=next(iter(KINDS)))
    baseline = serializers.FloatField(required=False, help_text="control conversion rate (binary), e.g. 0.05")
    sd = serializers.FloatField(required=False, min_value=0, help_text="standard deviation per unit (continuous)")
    mde = serializers.FloatField(help_text="smallest effect worth detecting")
    relative = serializers.BooleanField(default=False, help_text="mde relative to the baseline (binary only)")
    alpha = serializers.FloatField(default=0.05, min_value=0.0001, max_value=0.5)
    power = serializers.FloatField(default=0.8, min_value=0.5, max_value=0.9999)
    ratio = serializers.FloatField(default=1.0, min_value=0.01, max_value=100,
                                   help_text="treatment units per control unit")

    def validate(self, data):
        kind = kind_get(data["kind"])
        if kind.plan_input == "baseline" and data.get("baseline") is None:
            raise ValidationError({"baseline": f"a {kind.name} plan needs the baseline rate"})
        if kind.plan_input == "sd" and not data.get("sd"):
            raise ValidationError({"sd": f"a {kind.name} plan needs the standard deviation"})
        if kind.plan_input == "sd" and data["relative"]:
            raise ValidationError({"relative": f"give a {kind.name} mde in the metric's units"})
        return data


class PlanResultSerializer(serializers.Serializer):
    n_per_arm = serializers.IntegerField(help_text="the larger of the two arms")
    n_control = serializers.IntegerField()
    n_treatment = serializers.IntegerField()
    total = serializers.IntegerField()
    effect_size = serializers.FloatField()
    treatment_rate = serializers.FloatField(required=False)
    method = serializers.CharField()
    inputs = serializers.DictField()


class RefreshSerializer(serializers.Serializer):
    by = serializers.CharField(required=False, allow_blank=True, default="")


def plan_compute(data: dict) -> dict:
    kind = kind_get(data["kind"])
    inputs = {kind.plan_input: data[kind.plan_input]}
    result = planning.sample_size_plan(data["mde"], relative=data["relative"], alpha=data["alpha"],
                                       power=data["power"], ratio=data["ratio"], **inputs)
    return {**result, "inputs": data}


class ExperimentViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ExperimentSerializer

    def get_queryset(self):
        return selectors.experiment_list()

    def _report(self, request, experiment: Experiment) -> dict:
        by = request.query_params.get("by", "")
        engine = request.query_params.get("engine", "frequentist")
        if engine not in ENGINES:
            raise ValidationError({"engine": f"one of {', '.join(ENGINES)}"})
        try:
            return report_for_engine(report_refresh(experiment, by=by).body, engine)
        except (ValueError, ExperimentError) as exc:
            raise ValidationError({"by": str(exc)}) from None

    @extend_schema(parameters=[BY_PARAMETER, ENGINE_PARAMETER], responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def report(self, request, pk=None):
        """The full analysis (the experiment_report schema): the stored one while it matches the
        data, else recomputed now."""
        return Response(self._report(request, self.get_object()))

    @extend_schema(parameters=[BY_PARAMETER], responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """The report's tables as CSV: one row per metric and arm (and segment with ?by=)."""
        experiment = self.get_object()
        body = self._report(request, experiment)
        buffer = io.StringIO()
        report_csv_write(body, buffer)
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="experiment-{experiment.id}-report.csv"'
        return response

    @extend_schema(request=RefreshSerializer, responses={202: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        """Queue a recomputation of the report (a Celery task); poll `report` for the result."""
        experiment = self.get_object()
        payload = RefreshSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        report_refresh_enqueue(experiment, by=payload.validated_data["by"])
        return Response({"queued": True, "experiment": experiment.id, "by": payload.validated_data["by"]},
                        status=status.HTTP_202_ACCEPTED)

    def get_object(self):
        try:
            return super().get_object()
        except (ValueError, Experiment.DoesNotExist):
            raise NotFound() from None


class PlanViewSet(viewsets.ViewSet):
    """Sample size calculator: units per arm to detect an effect, before launch."""

    required_role = VIEWER  # computes, stores nothing: a read for GET and POST alike

    @extend_schema(parameters=[PlanSerializer], responses={200: PlanResultSerializer},
                   operation_id="experiments_plan_get")
    def list(self, request):
        return self._plan(request.query_params)

    @extend_schema(request=PlanSerializer, responses={200: PlanResultSerializer})
    def create(self, request):
        return self._plan(request.data)

    def _plan(self, data) -> Response:
        payload = PlanSerializer(data=data)
        payload.is_valid(raise_exception=True)
        try:
            return Response(plan_compute(payload.validated_data))
        except ValueError as exc:
            raise ValidationError({"mde": str(exc)}) from None
