from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from rlhf_platform.errors import Conflict

from . import security_audit, services
from .models import (
    ApprovalDecision,
    ApprovalPolicy,
    ApprovalRequest,
    AuditEvent,
    GatePolicy,
    GateResult,
    OutboxMessage,
    UserPreference,
    WebhookDelivery,
    WebhookSubscription,
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


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: read here, changed through actions that call them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(_ReadOnlyAdmin):
    """Subscriptions are created in the app or the API (where the secret is shown once);
    here admins enable or disable them."""

    list_display = ("name", "url", "project_id", "is_active", "consecutive_failures")
    list_filter = ("is_active",)
    search_fields = ("name", "url")
    exclude = ("secret",)
    actions = ["enable", "disable"]

    def has_delete_permission(self, request, obj=None):
        return False  # deletion is audited: the app's page or the API

    def _active_set(self, request, queryset, active: bool) -> None:
        for subscription in queryset:
            services.webhook_subscription_update(
                subscription=subscription, user=request.user, is_active=active
            )
        self.message_user(request, f"{queryset.count()} webhook(s) updated.")

    @admin.action(description="Enable (resets the failure count)", permissions=["view"])
    def enable(self, request, queryset):
        self._active_set(request, queryset, True)

    @admin.action(description="Disable", permissions=["view"])
    def disable(self, request, queryset):
        self._active_set(request, queryset, False)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_ReadOnlyAdmin):
    """The delivery log; the "Redeliver" action sends an event again as a new delivery."""

    list_display = ("delivery_id", "subscription", "status", "attempts", "last_status_code")
    list_filter = ("status",)
    search_fields = ("delivery_id",)
    actions = ["redeliver"]

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Redeliver", permissions=["view"])
    def redeliver(self, request, queryset):
        done, refused = 0, []
        for delivery in queryset:
            try:
                services.webhook_delivery_redeliver(delivery=delivery)
                done += 1
            except Conflict as exc:
                refused.append(f"{delivery.delivery_id}: {exc}")
        self.message_user(request, f"{done} redelivery(ies) queued.")
        for reason in refused:
            self.message_user(request, reason, level=messages.WARNING)
