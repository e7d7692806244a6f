from django.urls import path
from rest_framework.routers import DefaultRouter

from . import charts
from .views import (
    AlertRuleViewSet,
    AlertViewSet,
    DetectorStateViewSet,
    DriftReportViewSet,
    ErrorZoneRunViewSet,
    MetricPointViewSet,
)

router = DefaultRouter()
router.include_format_suffixes = False
router.register("metric-points", MetricPointViewSet, basename="metric-point")
router.register("detectors", DetectorStateViewSet, basename="detector")
router.register("drift-reports", DriftReportViewSet, basename="drift-report")
router.register("error-zone-runs", ErrorZoneRunViewSet, basename="error-zone-run")
router.register("alert-rules", AlertRuleViewSet, basename="alert-rule")
router.register("alerts", AlertViewSet, basename="alert")
router.register("preference-points", charts.PreferencePointViewSet, basename="preference-point")
router.register("annotator-points", charts.AnnotatorPointViewSet, basename="annotator-point")
router.register("annotator-drift", charts.AnnotatorDriftViewSet, basename="annotator-drift")

urlpatterns = [
    *router.urls,
    path("control-charts/accuracy/", charts.AccuracyControlChartView.as_view(),
         name="monitoring-control-chart-accuracy"),
    path("control-charts/agreement/", charts.AgreementControlChartView.as_view(),
         name="monitoring-control-chart-agreement"),
    path("control-charts/annotator/", charts.AnnotatorControlChartView.as_view(),
         name="monitoring-control-chart-annotator"),
    path("model-evolution/", charts.ModelEvolutionView.as_view(),
         name="monitoring-model-evolution"),
    path("preference-timeline/", charts.PreferenceTimelineView.as_view(),
         name="monitoring-preference-timeline"),
]  # fmt: skip
