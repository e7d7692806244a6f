"""Pages of response generation, under ``/generation/`` (namespace ``generation``)."""

from django.urls import path

from . import generation_views as views

app_name = "generation"

urlpatterns = [
    path("", views.JobListView.as_view(), name="job-list"),
    path("jobs/<int:generation_job_id>/", views.JobView.as_view(), name="job-detail"),
    path(
        "jobs/<int:generation_job_id>/progress.json",
        views.JobProgressView.as_view(),
        name="job-progress",
    ),
    path(
        "jobs/<int:generation_job_id>/cancel/",
        views.JobActionView.as_view(action="cancel"),
        name="job-cancel",
    ),
    path(
        "jobs/<int:generation_job_id>/retry/",
        views.JobActionView.as_view(action="retry"),
        name="job-retry",
    ),
    path(
        "jobs/<int:generation_job_id>/download/",
        views.JobDownloadView.as_view(),
        name="job-download",
    ),
    path("providers/", views.ProviderListView.as_view(), name="provider-list"),
    path("providers/<int:provider_id>/", views.ProviderView.as_view(), name="provider-detail"),
    path(
        "providers/<int:provider_id>/test/", views.ProviderTestView.as_view(), name="provider-test"
    ),
    path("prompt-sets/", views.PromptSetListView.as_view(), name="prompt-set-list"),
    path(
        "prompt-sets/<int:prompt_set_id>/",
        views.PromptSetView.as_view(),
        name="prompt-set-detail",
    ),
]
