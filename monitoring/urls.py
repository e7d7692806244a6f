"""Pages of the monitoring web UI, under ``/monitoring/`` (namespace ``monitoring``)."""

from django.urls import path

from rlhf_platform.content_security import plotly_charts, sandboxed_report

from . import chart_views, views

app_name = "monitoring"

urlpatterns = [
    path("", plotly_charts(views.DashboardView.as_view()), name="dashboard"),
    path("calibration.json", views.CalibrationDataView.as_view(), name="calibration"),
    path("zones.json", views.ErrorZonesDataView.as_view(), name="zones"),
    path(
        "control/",
        plotly_charts(chart_views.ControlChartsView.as_view()),
        name="control-charts",
    ),
    path(
        "evolution/",
        plotly_charts(chart_views.ModelEvolutionView.as_view()),
        name="model-evolution",
    ),
    path(
        "preferences/",
        plotly_charts(chart_views.PreferencesView.as_view()),
        name="preferences",
    ),
    path(
        "alerts/<int:alert_id>/acknowledge/",
        views.AlertAcknowledgeView.as_view(),
        name="alert-acknowledge",
    ),
    path("drift/<int:report_id>/", views.DriftReportView.as_view(), name="drift-report"),
    path(
        "drift/<int:report_id>/evidently.html",
        sandboxed_report(views.DriftReportHtmlView.as_view()),
        name="drift-report-html",
    ),
]
