from django.contrib import admin

from .models import AuditEvent, UserPreference, WorkerHeartbeat


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit trail is append-only and written only by the audit service."""

    list_display = (
        "sequence",
        "timestamp",
        "actor_username",
        "action",
        "object_type",
        "object_id",
        "request_id",
    )
    list_filter = ("action", "object_type")
    search_fields = ("action", "actor_username", "object_id", "request_id", "hash")
    date_hierarchy = "timestamp"
    ordering = ("-sequence",)
    show_full_result_count = False  # COUNT(*) on millions of rows is slow

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    """Heartbeats are written by the workers themselves: read-only here."""

    list_display = ("hostname", "queues", "last_seen", "started_at")
    ordering = ("-last_seen",)
    readonly_fields = ("hostname", "queues", "last_seen", "started_at")

    def has_add_permission(self, request):
        return False  # every field is read-only: an added row could only fail (500)


@admin.register(UserPreference)
class UserPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "theme")
    list_filter = ("theme",)
    search_fields = ("user__username",)
