"""Pages of the annotation web UI, under ``/annotation/`` (namespace ``annotation``)."""

from django.urls import path

from rlhf_platform.content_security import plotly_charts

from . import views

app_name = "annotation"

urlpatterns = [
    path("", views.ProjectListView.as_view(), name="project-list"),
    path(
        "projects/<int:project_id>/",
        plotly_charts(views.DashboardView.as_view()),
        name="project-dashboard",
    ),
    path("projects/<int:project_id>/queue/", views.QueueView.as_view(), name="queue"),
    path("projects/<int:project_id>/label/", views.LabelView.as_view(), name="label"),
    path("projects/<int:project_id>/skip/", views.SkipView.as_view(), name="skip"),
    path("projects/<int:project_id>/review/", views.ReviewQueueView.as_view(), name="review-queue"),
    path(
        "projects/<int:project_id>/review/<int:item_id>/",
        views.ReviewItemView.as_view(),
        name="review-item",
    ),
    path("projects/<int:project_id>/recompute/", views.RecomputeView.as_view(), name="recompute"),
    path("projects/<int:project_id>/import/", views.ImportView.as_view(), name="import"),
    path("projects/<int:project_id>/export/", views.ExportView.as_view(), name="export"),
    path(
        "projects/<int:project_id>/data-protection/",
        views.DataProtectionView.as_view(),
        name="data-protection",
    ),
    path(
        "projects/<int:project_id>/snapshots/<int:snapshot_id>/download/",
        views.SnapshotDownloadView.as_view(),
        name="snapshot-download",
    ),
]
