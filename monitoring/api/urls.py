from rest_framework.routers import DefaultRouter

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

urlpatterns = router.urls
