from axes.helpers import get_cool_off
from django.contrib.auth.signals import user_logged_in
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, pagination
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import api_view, permission_classes
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from governance.filters import AuditEventFilterSet
from governance.models import AuditEvent
from governance.selectors import user_roles, user_theme
from rlhf_platform.api import ClientAddressThrottle, RestrictedReadOnlyViewSet
from rlhf_platform.parsers import JSONParser

from .serializers import AuditEventSerializer, MeSerializer


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
