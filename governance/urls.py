from django.urls import path

from rlhf_platform.content_security import plotly_charts

from . import views

urlpatterns = [
    path("audit/", views.AuditEventListView.as_view(), name="audit-list"),
    path("approvals/", views.ApprovalQueueView.as_view(), name="approval-list"),
    path(
        "approvals/<int:request_id>/",
        plotly_charts(views.ApprovalDetailView.as_view()),
        name="approval-detail",
    ),
    path("webhooks/", views.WebhookListView.as_view(), name="webhook-list"),
    path("webhooks/<int:subscription_id>/", views.WebhookView.as_view(), name="webhook-detail"),
    path(
        "webhooks/<int:subscription_id>/rotate-secret/",
        views.WebhookRotateSecretView.as_view(),
        name="webhook-rotate-secret",
    ),
    path(
        "webhooks/<int:subscription_id>/delete/",
        views.WebhookDeleteView.as_view(),
        name="webhook-delete",
    ),
    path(
        "webhooks/deliveries/<int:delivery_id>/redeliver/",
        views.WebhookRedeliverView.as_view(),
        name="webhook-redeliver",
    ),
]
