from rest_framework import serializers

from governance.approvals import approval_kinds
from governance.models import (
    ApprovalDecision,
    ApprovalRequest,
    AuditEvent,
    GateResult,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from governance.webhooks import EVENT_TYPES
from rlhf_platform.crypto import secret_mask
from rlhf_platform.validation import text_validate


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "sequence",
            "timestamp",
            "actor",
            "actor_username",
            "action",
            "object_type",
            "object_id",
            "before",
            "after",
            "request_id",
            "client_ip",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    is_superuser = serializers.BooleanField()
    theme = serializers.CharField()


# -- Approvals ------------------------------------------------------------------------------


class GateResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = GateResult
        fields = ["stage", "gate", "label", "passed", "value", "comparator", "threshold",
                  "detail", "evaluated_at"]  # fmt: skip
        read_only_fields = fields


class ApprovalDecisionSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username", read_only=True)

    class Meta:
        model = ApprovalDecision
        fields = ["id", "reviewer", "verdict", "rationale", "gate_override",
                  "override_rationale", "created_at"]  # fmt: skip
        read_only_fields = fields


class ApprovalRequestSerializer(serializers.ModelSerializer):
    subject_type = serializers.SerializerMethodField()
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    decisions = ApprovalDecisionSerializer(many=True, read_only=True)
    gates = GateResultSerializer(many=True, read_only=True)

    class Meta:
        model = ApprovalRequest
        fields = ["id", "kind", "title", "subject_type", "subject_id", "project_id", "payload",
                  "justification", "requested_by", "status", "quorum", "rejection_vetoes",
                  "reviewer_groups", "project_reviewers", "override_group", "created_at",
                  "expires_at", "decided_at", "executed_at", "execution_error", "decisions",
                  "gates"]  # fmt: skip
        read_only_fields = fields

    def get_subject_type(self, request) -> str:
        """``app_label.model`` of the subject."""
        return f"{request.subject_type.app_label}.{request.subject_type.model}"


def _kind_choices() -> list[tuple[str, str]]:
    return [(kind.key, kind.label) for kind in approval_kinds()]


class ApprovalRequestCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=_kind_choices())
    subject = serializers.CharField(
        max_length=200,
        help_text="The subject's id (a model version's id; a dataset snapshot's id; an alert "
        "rule's id) — for gate_policy.change, `<kind>/<gate>` or `<kind>/<gate>/<project id>`.",
    )
    payload = serializers.JSONField(
        required=False, default=dict,
        help_text='What changes, e.g. {"alias": "production"} for model.promote.',
    )  # fmt: skip
    justification = serializers.CharField(max_length=10000, validators=[text_validate])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = _kind_choices()  # kinds registered after import too


class ApprovalDecisionCreateSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=ApprovalDecision.Verdict.choices)
    rationale = serializers.CharField(max_length=10000, validators=[text_validate])
    override_rationale = serializers.CharField(
        max_length=10000, required=False, allow_blank=True, default="",
        validators=[text_validate],
        help_text="Needed to approve despite failing gates (the policy's override role only).",
    )  # fmt: skip


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    """A subscription as admins read and edit it; the secret only masked."""

    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=list(EVENT_TYPES)), allow_empty=False
    )
    project = serializers.IntegerField(
        source="project_id", allow_null=True, required=False, min_value=1
    )
    secret = serializers.SerializerMethodField()

    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "name",
            "url",
            "event_types",
            "project",
            "allow_private",
            "is_active",
            "secret",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "secret",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "updated_at",
        ]
        # URL checks (scheme, addresses) are the service's, with its own messages.
        extra_kwargs = {"url": {"validators": []}}

    def get_secret(self, obj) -> str:
        """The secret, masked (it is shown in clear only once, when created or rotated)."""
        return secret_mask(text=obj.secret)


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    """The answer to a creation or a secret rotation: the one time the secret is shown."""

    secret = serializers.CharField(read_only=True, source="secret_clear")


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = [
            "number",
            "started_at",
            "duration_ms",
            "status_code",
            "error",
            "response_excerpt",
            "retry_in_seconds",
        ]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    """One event to one subscription, with its attempt log."""

    event_id = serializers.UUIDField(source="event.event_id", read_only=True)
    event_type = serializers.CharField(source="event.event_type", read_only=True)
    redelivery_of = serializers.UUIDField(
        source="redelivery_of.delivery_id", read_only=True, allow_null=True
    )
    log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "delivery_id",
            "subscription",
            "event_id",
            "event_type",
            "redelivery_of",
            "status",
            "attempts",
            "next_attempt_at",
            "delivered_at",
            "last_status_code",
            "last_error",
            "created_at",
            "log",
        ]
        read_only_fields = fields
