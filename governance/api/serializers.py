from rest_framework import serializers

from governance.approvals import approval_kinds
from governance.models import ApprovalDecision, ApprovalRequest, AuditEvent, GateResult
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
