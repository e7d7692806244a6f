"""Monitoring API (read through ``governance.access``: researchers and viewers read,
admins acknowledge alerts)."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.response import Response

from monitoring import services
from monitoring.models import (
    Alert,
    AlertRule,
    DetectorState,
    DriftReport,
    ErrorZoneRun,
    MetricPoint,
)
from rlhf_platform.api import RestrictedReadOnlyViewSet

from . import serializers as s


class MetricPointViewSet(RestrictedReadOnlyViewSet):
    """Calibration metric points (pre-aggregated) per version and window."""

    queryset = MetricPoint.objects.all()
    serializer_class = s.MetricPointSerializer
    filterset_fields = ["version", "window"]


class DetectorStateViewSet(RestrictedReadOnlyViewSet):
    """Streaming detectors per version and stream: outcomes seen, drifts found."""

    queryset = DetectorState.objects.all()
    serializer_class = s.DetectorStateSerializer
    filterset_fields = ["version", "stream", "kind"]


class DriftReportViewSet(RestrictedReadOnlyViewSet):
    """Drift reports with their verdicts."""

    queryset = DriftReport.objects.all()
    serializer_class = s.DriftReportSerializer
    filterset_fields = ["version", "method", "status"]


class ErrorZoneRunViewSet(RestrictedReadOnlyViewSet):
    """Error-zone searches with their zones (top terms, size, error rate, trend)."""

    queryset = ErrorZoneRun.objects.prefetch_related("zones")
    serializer_class = s.ErrorZoneRunSerializer
    filterset_fields = ["version", "method", "status"]


class AlertRuleViewSet(RestrictedReadOnlyViewSet):
    """Alert rules."""

    queryset = AlertRule.objects.all()
    serializer_class = s.AlertRuleSerializer
    filterset_fields = ["registered_model", "metric", "is_active"]


class AlertViewSet(RestrictedReadOnlyViewSet):
    """Alerts; acknowledge a firing one."""

    queryset = Alert.objects.all()
    serializer_class = s.AlertSerializer
    filterset_fields = ["rule", "version", "state"]
    action_permissions = {"acknowledge": "change"}

    @extend_schema(request=None, responses=s.AlertSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Mark a firing alert as seen (409 if it is not firing)."""
        alert = services.alert_acknowledge(alert=self.get_object(), user=request.user)
        return Response(s.AlertSerializer(alert).data)
