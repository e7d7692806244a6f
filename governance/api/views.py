from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import pagination
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from governance.filters import AuditEventFilterSet
from governance.models import AuditEvent
from governance.selectors import user_roles, user_theme
from rlhf_platform.api import RestrictedReadOnlyViewSet

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
