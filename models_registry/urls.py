"""Pages of the models web UI, under ``/models/`` (namespace ``models_registry``)."""

from django.urls import path

from rlhf_platform.content_security import plotly_charts

from . import loop_views, views

app_name = "models_registry"

urlpatterns = [
    path("", views.ModelListView.as_view(), name="model-list"),
    path("compare/", views.CompareView.as_view(), name="compare"),
    path(
        "versions/<int:version_id>/",
        plotly_charts(views.VersionView.as_view()),
        name="version-detail",
    ),
    path("versions/<int:version_id>/card/", views.CardView.as_view(), name="version-card"),
    path(
        "versions/<int:version_id>/card.md",
        views.CardDownloadView.as_view(fmt="md"),
        name="version-card-markdown",
    ),
    path(
        "versions/<int:version_id>/card.pdf",
        views.CardDownloadView.as_view(fmt="pdf"),
        name="version-card-pdf",
    ),
    path("jobs/", views.JobListView.as_view(), name="job-list"),
    path("jobs/<int:job_id>/", plotly_charts(views.JobView.as_view()), name="job-detail"),
    path("jobs/<int:job_id>/progress.json", views.JobProgressView.as_view(), name="job-progress"),
    path("jobs/<int:job_id>/cancel/", views.JobCancelView.as_view(), name="job-cancel"),
    path("loop/<int:project_id>/", plotly_charts(loop_views.LoopView.as_view()), name="loop"),
    path("loop/<int:project_id>/run/", loop_views.LoopRunNowView.as_view(), name="loop-run"),
    path(
        "loop/<int:project_id>/retrain/",
        loop_views.LoopRetrainView.as_view(),
        name="loop-retrain",
    ),
    path("<str:name>/", views.RegisteredModelView.as_view(), name="model-detail"),
]
