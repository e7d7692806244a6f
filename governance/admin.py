from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from . import security_audit
from .models import (
    ApprovalDecision,
    ApprovalPolicy,
    ApprovalRequest,
    AuditEvent,
    GatePolicy,
    GateResult,
    OutboxMessage,
    UserPreference,
    WorkerHeartbeat,
)


class RelationsAuditedOnceMixin:
    """An admin form replaces a user's groups or a group's permissions with ``set()``,
    which Django carries out as a remove and an add: record the form's change of each
    relation as one audit event, with the whole before and after."""

    def save_related(self, request, form, formsets, change):
        with security_audit.m2m_changes_coalesced():
            super().save_related(request, form, formsets, change)


class ReadOnlyAdmin(admin.ModelAdmin):
    """View only: no add, change or delete (records written only by their services)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(get_user_model())
admin.site.unregister(Group)


@admin.register(get_user_model())
class AttuneUserAdmin(RelationsAuditedOnceMixin, UserAdmin):
    """Django's user admin; every security change made here is audited (security_audit)."""


@admin.register(Group)
class AttuneGroupAdmin(RelationsAuditedOnceMixin, GroupAdmin):
    """Django's group (role) admin, with its permission changes audited once per save."""


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
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


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    """Heartbeats are written by the workers themselves: read-only here."""

    list_display = ("instance", "hostname", "queues", "last_seen", "started_at")
    ordering = ("-last_seen",)
    readonly_fields = ("instance", "hostname", "pid", "queues", "last_seen", "started_at")

    def has_add_permission(self, request):
        return False  # every field is read-only: an added row could only fail (500)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    """Read-only view of the task outbox: what waits for the broker, and why."""

    list_display = ("id", "task", "subject_type", "subject_id", "available_at", "sent_at")
    list_filter = ("task",)
    ordering = ("-id",)
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # a deleted pending row is a lost task; beat prunes sent rows


@admin.register(UserPreference)
class UserPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "theme")
    list_filter = ("theme",)
    search_fields = ("user__username",)


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    """Requests change only through their services (opened, decided, expired): shown here."""

    list_display = ("id", "kind", "title", "requested_by", "status", "created_at", "expires_at")
    list_filter = ("status", "kind")
    exclude = ("justification",)  # sensitive text: read it on the review page
    ordering = ("-id",)


@admin.register(ApprovalDecision)
class ApprovalDecisionAdmin(ReadOnlyAdmin):
    list_display = ("id", "request", "reviewer", "verdict", "gate_override", "created_at")
    exclude = ("rationale", "override_rationale")


@admin.register(GateResult)
class GateResultAdmin(ReadOnlyAdmin):
    list_display = ("request", "stage", "gate", "passed", "value", "threshold", "evaluated_at")


@admin.register(GatePolicy)
class GatePolicyAdmin(ReadOnlyAdmin):
    """Gate thresholds change through an approved ``gate_policy.change`` request."""

    list_display = ("kind", "project_id", "gate", "threshold", "enabled", "updated_at")


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(admin.ModelAdmin):
    """Who reviews what: edited here by admins, saved through the audited service."""

    list_display = ("kind", "project_id", "quorum", "rejection_vetoes", "expiry", "override_group")
    fields = ("kind", "project_id", "reviewer_groups", "project_reviewers", "quorum",
              "rejection_vetoes", "expiry", "override_group")  # fmt: skip

    def save_model(self, request, obj, form, change):
        from .services import approval_policy_set

        settings = {name: getattr(obj, name) for name in ApprovalPolicy.DEFAULTS}
        saved = approval_policy_set(kind=obj.kind, project_id=obj.project_id, **settings)
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False  # a deleted policy would silently fall back to the defaults
