import django_filters

from rlhf_platform.filters import UTCDateTimeFilter

from .models import AuditEvent


class AuditEventFilterSet(django_filters.FilterSet):
    """Filters for the audit trail (UI and API)."""

    action = django_filters.CharFilter(lookup_expr="iexact")
    action_prefix = django_filters.CharFilter(field_name="action", lookup_expr="istartswith")
    actor = django_filters.CharFilter(field_name="actor_username", lookup_expr="iexact")
    object_type = django_filters.CharFilter(lookup_expr="iexact")
    object_id = django_filters.CharFilter()
    request_id = django_filters.CharFilter()
    since = UTCDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    until = UTCDateTimeFilter(field_name="timestamp", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["action", "action_prefix", "actor", "object_type", "object_id", "request_id"]
