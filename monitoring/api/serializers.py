from rest_framework import serializers

from monitoring.models import (
    Alert,
    AlertRule,
    DetectorState,
    DriftReport,
    ErrorZone,
    ErrorZoneRun,
    MetricPoint,
)


class MetricPointSerializer(serializers.ModelSerializer):
    class Meta:
        model = MetricPoint
        fields = ["id", "version", "window", "start", "n", "accuracy", "ece", "ece_equal_mass",
                  "mce", "brier", "nll", "reliability", "computed_at"]  # fmt: skip


class DetectorStateSerializer(serializers.ModelSerializer):
    class Meta:
        model = DetectorState
        fields = ["id", "version", "stream", "kind", "n_seen", "n_drifts", "last_drift_at",
                  "updated_at"]  # fmt: skip


class DriftReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = DriftReport
        fields = ["id", "version", "method", "status", "reference_start", "reference_end",
                  "current_start", "current_end", "result", "dataset_drift", "error",
                  "created_at", "finished_at"]  # fmt: skip


class AlertRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertRule
        fields = ["id", "name", "metric", "comparator", "threshold", "window", "min_outcomes",
                  "severity", "cooldown", "registered_model", "alias", "scope_project",
                  "retrain", "retrain_config", "is_active", "created_at"]  # fmt: skip


class AlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = ["id", "rule", "version", "state", "value", "point_start", "fired_at",
                  "acknowledged_at", "resolved_at", "retraining_job",
                  "retraining_note"]  # fmt: skip


class ErrorZoneSerializer(serializers.ModelSerializer):
    class Meta:
        model = ErrorZone
        fields = ["index", "size", "n_outcomes", "error_rate", "top_terms", "examples", "trend"]


class ErrorZoneRunSerializer(serializers.ModelSerializer):
    zones = ErrorZoneSerializer(many=True, read_only=True)

    class Meta:
        model = ErrorZoneRun
        fields = ["id", "version", "method", "window", "status", "start", "end", "n_outcomes",
                  "n_errors", "error", "created_at", "finished_at", "zones"]  # fmt: skip
