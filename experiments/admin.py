from django.contrib import admin

from .models import Arm, Experiment, Metric, Report, UpliftModel


class ArmInline(admin.TabularInline):
    model = Arm
    extra = 0


class MetricInline(admin.TabularInline):
    model = Metric
    extra = 0


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "source", "mode", "alpha", "attribution_days", "created_at"]
    search_fields = ["name"]
    list_filter = ["source", "mode"]
    inlines = [ArmInline, MetricInline]


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["experiment", "by", "computed_at", "seconds"]
    raw_id_fields = ["experiment"]


@admin.register(UpliftModel)
class UpliftModelAdmin(admin.ModelAdmin):
    list_display = ["experiment", "treatment_arm", "metric", "feature_source", "created_at"]
    raw_id_fields = ["experiment", "treatment_arm", "control_arm", "metric"]
    exclude = ["model"]
