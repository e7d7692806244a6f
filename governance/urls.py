from django.urls import path

from rlhf_platform.content_security import plotly_charts

from .views import ApprovalDetailView, ApprovalQueueView, AuditEventListView

urlpatterns = [
    path("audit/", AuditEventListView.as_view(), name="audit-list"),
    path("approvals/", ApprovalQueueView.as_view(), name="approval-list"),
    path(
        "approvals/<int:request_id>/",
        plotly_charts(ApprovalDetailView.as_view()),
        name="approval-detail",
    ),
]
