from axes.helpers import get_cool_off
from django.contrib.auth.signals import user_logged_in
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, pagination, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from governance import access, services
from governance.approvals import approval_kind
from governance.filters import AuditEventFilterSet
from governance.models import ApprovalRequest, AuditEvent, WebhookDelivery, WebhookSubscription
from governance.selectors import user_roles, user_theme
from rlhf_platform.api import (
    ClientAddressThrottle,
    RestrictedModelViewSet,
    RestrictedReadOnlyViewSet,
    RestrictedViewSetMixin,
)
from rlhf_platform.openapi import CONFLICT
from rlhf_platform.parsers import JSONParser

from .serializers import (
    ApprovalDecisionCreateSerializer,
    ApprovalRequestCreateSerializer,
    ApprovalRequestSerializer,
    AuditEventSerializer,
    MeSerializer,
    WebhookDeliverySerializer,
    WebhookSubscriptionCreatedSerializer,
    WebhookSubscriptionSerializer,
)


class AuditEventPagination(pagination.CursorPagination):
    """Newest first, stable under concurrent appends, fast on millions of rows."""

    ordering = "-sequence"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class AuditEventViewSet(RestrictedReadOnlyViewSet):
    """The audit trail: readable by admins and the ethics committee, never writable."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    pagination_class = AuditEventPagination
    filter_backends = [DjangoFilterBackend]
    lookup_field = "sequence"


@extend_schema(responses=MeSerializer)
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def me(request):
    """The calling user, their roles and UI theme."""
    user = request.user
    data = {
        "username": user.get_username(),
        "roles": user_roles(user=user),
        "is_superuser": user.is_superuser,
        "theme": user_theme(user=user),
    }
    return Response(MeSerializer(data).data)


class LoginLockedOut(exceptions.Throttled):
    default_code = "locked_out"
    default_detail = "Too many failed logins for this account or from this address."


class AuthTokenView(ObtainAuthToken):
    """Exchange a username and password for the user's API token.

    Throttled per client address (the ``auth`` rate), and under the same lockout as the
    login page (django-axes): a locked-out account or address answers 429 with
    Retry-After, in the API's error shape.  A success is a login like the page's
    (``user_logged_in``: audited, and it resets the failure count).
    """

    throttle_classes = [ClientAddressThrottle]
    throttle_scope = "auth"
    # DRF's token view names its own parsers; give it the project's JSON parser.
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except exceptions.ValidationError as invalid:
            # The axes backend flags the request it refused (see settings.AXES_*).
            if getattr(request, "axes_locked_out", False):
                cool_off = get_cool_off(request)
                wait = cool_off.total_seconds() if cool_off else None
                raise LoginLockedOut(wait=wait) from invalid
            raise
        user = serializer.validated_data["user"]
        token, _ = Token.objects.get_or_create(user=user)
        user_logged_in.send(sender=type(user), request=request, user=user)
        return Response({"token": token.key})


class ApprovalRequestViewSet(
    RestrictedViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Approval requests for governed changes (alias moves, releases, rule and gate
    changes), with their decisions and gate results; open one, or decide one."""

    queryset = ApprovalRequest.objects.select_related(
        "requested_by", "subject_type"
    ).prefetch_related("decisions__reviewer", "gates")
    serializer_class = ApprovalRequestSerializer
    filterset_fields = ["kind", "status", "project_id"]
    # Who decides is the request's policy (checked by the service): any reader may try.
    action_permissions = {"decide": "view"}

    @extend_schema(
        request=ApprovalRequestCreateSerializer,
        responses={201: ApprovalRequestSerializer, 409: CONFLICT},
    )
    def create(self, request, *args, **kwargs):
        """Open a request; its gates are evaluated at once and stored with it."""
        data = ApprovalRequestCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        kind = approval_kind(data.validated_data["kind"])
        subject = kind.subject_find(data.validated_data["subject"])
        if subject is None:
            raise exceptions.ValidationError({"subject": ["no such object for this kind"]})
        opened = services.approval_request_open(
            kind=kind.key, subject=subject, payload=data.validated_data["payload"],
            requested_by=request.user, justification=data.validated_data["justification"],
        )  # fmt: skip
        body = ApprovalRequestSerializer(self.get_queryset().get(pk=opened.pk)).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=ApprovalDecisionCreateSerializer,
        responses={200: ApprovalRequestSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        """Approve, reject or request changes, with a rationale (403 for the requester
        and for users the policy does not name; 409 when gates fail without an override)."""
        approval = self.get_object()
        # Who may not decide hears so before anything about the body.
        access.approval_decider_require(user=request.user, request=approval)
        data = ApprovalDecisionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.approval_request_decide(
            request=approval, reviewer=request.user, **data.validated_data
        )
        return Response(ApprovalRequestSerializer(self.get_queryset().get(pk=approval.pk)).data)


class WebhookSubscriptionViewSet(RestrictedModelViewSet):
    """Webhook subscriptions (admins).  The signing secret is in the creation's answer
    (and a rotation's) only; every other answer shows it masked."""

    queryset = WebhookSubscription.objects.all()
    serializer_class = WebhookSubscriptionSerializer
    filterset_fields = ["is_active", "project_id"]
    action_permissions = {"rotate_secret": "change"}

    @extend_schema(responses={201: WebhookSubscriptionCreatedSerializer})
    def create(self, request, *args, **kwargs):
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        subscription, secret = services.webhook_subscription_create(
            user=request.user,
            name=values["name"],
            url=values["url"],
            event_types=values["event_types"],
            project_id=values.get("project_id"),
            allow_private=values.get("allow_private", False),
        )
        subscription.secret_clear = secret
        return Response(
            WebhookSubscriptionCreatedSerializer(subscription).data, status=status.HTTP_201_CREATED
        )

    def perform_update(self, serializer):
        serializer.instance = services.webhook_subscription_update(
            subscription=serializer.instance, user=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.webhook_subscription_delete(subscription=instance)

    @extend_schema(request=None, responses=WebhookSubscriptionCreatedSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """Replace the signing secret; the answer shows the new one, this once."""
        subscription = self.get_object()
        subscription.secret_clear = services.webhook_subscription_secret_rotate(
            subscription=subscription
        )
        return Response(WebhookSubscriptionCreatedSerializer(subscription).data)


class WebhookDeliveryViewSet(RestrictedReadOnlyViewSet):
    """The delivery log: each event sent to a subscription, with every attempt."""

    queryset = WebhookDelivery.objects.select_related("event", "redelivery_of").prefetch_related(
        "log"
    )
    serializer_class = WebhookDeliverySerializer
    filterset_fields = ["subscription", "status"]
    action_permissions = {"redeliver": "change"}

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        """Send the delivery's event again as a new delivery (202: queued)."""
        again = services.webhook_delivery_redeliver(delivery=self.get_object())
        return Response(WebhookDeliverySerializer(again).data, status=status.HTTP_202_ACCEPTED)
