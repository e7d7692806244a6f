from django.contrib import admin

from .models import (
    Alert,
    AlertRule,
    DetectorState,
    DriftReport,
    ErrorZone,
    ErrorZoneRun,
    MetricPoint,
    Notification,
    Outcome,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the monitoring workers: read-only here (rules are edited through
    the API, which audits every change)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MetricPoint)
class MetricPointAdmin(ReadOnlyAdmin):
    list_display = ("version", "window", "start", "n", "accuracy", "ece", "brier")
    list_filter = ("window",)


@admin.register(Outcome)
class OutcomeAdmin(ReadOnlyAdmin):
    list_display = ("id", "version", "project", "p_a", "label", "predicted_at")


@admin.register(DetectorState)
class DetectorStateAdmin(ReadOnlyAdmin):
    list_display = ("version", "stream", "kind", "n_seen", "n_drifts", "last_drift_at")
    exclude = ("state",)


@admin.register(DriftReport)
class DriftReportAdmin(ReadOnlyAdmin):
    list_display = ("id", "version", "method", "status", "dataset_drift", "created_at")


@admin.register(AlertRule)
class AlertRuleAdmin(ReadOnlyAdmin):
    list_display = (
        "name", "metric", "comparator", "threshold", "window", "severity", "retrain", "is_active",
    )  # fmt: skip


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = (
        "rule", "version", "state", "value", "fired_at", "resolved_at", "retraining_job",
    )  # fmt: skip
    list_filter = ("state",)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("user", "message", "created_at", "read_at")


class ErrorZoneInline(admin.TabularInline):
    model = ErrorZone
    fields = ("index", "size", "n_outcomes", "error_rate", "top_terms")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ErrorZoneRun)
class ErrorZoneRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "version", "method", "status", "n_outcomes", "n_errors", "created_at")
    list_filter = ("method", "status")
    inlines = [ErrorZoneInline]
