from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import (
    ApprovalRequestViewSet,
    AuditEventViewSet,
    WebhookDeliveryViewSet,
    WebhookSubscriptionViewSet,
    me,
)

# No ``.json`` suffix routes: the API speaks JSON only, and the suffix variants of custom
# actions (``projects/1/consensus.json``) answered 500 — the actions take no ``format``.
router = DefaultRouter()
router.include_format_suffixes = False
router.register("audit-events", AuditEventViewSet, basename="audit-event")
router.register("approval-requests", ApprovalRequestViewSet, basename="approval-request")

router.register("webhooks", WebhookSubscriptionViewSet, basename="webhook")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns = [path("me/", me, name="api-me"), *router.urls]
