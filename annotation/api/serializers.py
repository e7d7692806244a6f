from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from annotation import selectors
from annotation.importers.redaction import DETECTORS
from annotation.models import (
    AnnotatorStats,
    DatasetSnapshot,
    ImportJob,
    Item,
    ItemConsensus,
    Project,
    ProjectStats,
)
from annotation.services import MEMBER_PERMISSIONS, PROJECT_FIELDS
from rlhf_platform.openapi import ErrorDetailSerializer
from rlhf_platform.validation import MAX_OBJECT_ID

# Set by the platform (archiving, retention) or an administrator (legal hold): read-only here.
PROJECT_STATE_FIELDS = ["archived_at", "legal_hold", "legal_hold_reason", "purged_at"]


class ProjectSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    pii_detectors = serializers.ListField(
        child=serializers.ChoiceField(choices=list(DETECTORS)),
        required=False,
        max_length=len(DETECTORS),
        help_text="PII detectors applied to imported text; [] for none. New projects: all.",
    )

    class Meta:
        model = Project
        read_only_fields = ["id", "created_by", "created_at", *PROJECT_STATE_FIELDS]
        fields = ["id", *PROJECT_FIELDS, "created_by", "created_at", *PROJECT_STATE_FIELDS]
        extra_kwargs = {"question_schema": {"required": False}}


class ItemSerializer(serializers.ModelSerializer):
    """Items as researchers see them (gold answers and counters included)."""

    class Meta:
        model = Item
        fields = [
            "id",
            "external_id",
            "prompt",
            "responses",
            "metadata",
            "priority",
            "is_gold",
            "gold_answer",
            "n_assigned",
            "n_submitted",
            "created_at",
        ]
        read_only_fields = fields


class AnnotatorItemSerializer(serializers.Serializer):
    """An item as an annotator sees it: nothing that hints at gold, source or others."""

    id = serializers.IntegerField()
    prompt = serializers.CharField()
    responses = serializers.SerializerMethodField()

    def get_responses(self, item) -> list[dict]:
        return [{"text": r["text"]} for r in item.responses]


class ItemBulkCreateSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=10000)


class ImportSerializer(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(
        choices=["auto", "jsonl", "csv", "trl", "label_studio", "argilla"], default="auto"
    )
    background = serializers.BooleanField(
        default=False, help_text="Import on a worker; answers 202 with the job to poll."
    )


class ImportJobSerializer(serializers.ModelSerializer):
    waiting_reason = serializers.SerializerMethodField(
        help_text="Why a queued job has not started yet (empty once it runs)."
    )

    class Meta:
        model = ImportJob
        fields = ["id", "project", "format", "original_name", "status", "rows", "created",
                  "skipped_existing", "redactions", "errors", "message", "waiting_reason",
                  "attempts", "created_at", "started_at", "finished_at"]  # fmt: skip
        read_only_fields = fields

    def get_waiting_reason(self, job) -> str:
        return selectors.import_job_wait_reason(job=job)


class ImportResultSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    skipped_existing = serializers.IntegerField()
    redactions = serializers.DictField(
        child=serializers.IntegerField(),
        help_text='What PII redaction replaced, per detector (counts only): {"email": 3}.',
    )


def object_id_field() -> serializers.IntegerField:
    """A row id in a request body: a positive 64-bit integer (larger ones cannot be looked
    up — the database rejects them — so they are a 400 here)."""
    return serializers.IntegerField(min_value=1, max_value=MAX_OBJECT_ID)


class RejectedRowSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    reason = serializers.CharField()


class ImportErrorDetailSerializer(ErrorDetailSerializer):
    """The error shape plus every rejected row (up to 1,000) of an all-or-nothing import."""

    rows = RejectedRowSerializer(many=True, required=False, help_text="When rows were rejected.")
    truncated = serializers.BooleanField(required=False)


class ImportErrorSerializer(serializers.Serializer):
    error = ImportErrorDetailSerializer()

    class Meta:
        ref_name = "ImportError"


IMPORT_REJECTED = OpenApiResponse(
    ImportErrorSerializer, description="Invalid rows: nothing was imported; `rows` lists them."
)


class QueuedSerializer(serializers.Serializer):
    queued = serializers.BooleanField()


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=list(MEMBER_PERMISSIONS))


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    session = serializers.IntegerField()
    skipped = serializers.IntegerField()
    available = serializers.IntegerField()
    percent = serializers.FloatField()


class NextItemSerializer(serializers.Serializer):
    item = AnnotatorItemSerializer(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    progress = ProgressSerializer()


class SubmitSerializer(serializers.Serializer):
    item = object_id_field()
    answer = serializers.JSONField()
    idempotency_key = serializers.CharField(max_length=100, required=False)


class AnnotationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.IntegerField(source="item_id")
    answer = serializers.JSONField(source="full_answer")
    label = serializers.IntegerField(allow_null=True)
    lead_time_ms = serializers.IntegerField()
    idempotency_key = serializers.CharField()
    created_at = serializers.DateTimeField()


class SkipSerializer(serializers.Serializer):
    item = object_id_field()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class AdjudicateSerializer(serializers.Serializer):
    item = object_id_field()
    answer = serializers.JSONField()
    reason = serializers.CharField(max_length=5000)


class AdjudicationSerializer(serializers.Serializer):
    item = serializers.IntegerField(source="item_id")
    label = serializers.IntegerField()
    answer = serializers.JSONField()
    reason = serializers.CharField()
    reviewer = serializers.CharField(source="reviewer.username")


class ConsensusSerializer(serializers.ModelSerializer):
    external_id = serializers.CharField(source="item.external_id")

    class Meta:
        model = ItemConsensus
        fields = [
            "item",
            "external_id",
            "label",
            "confidence",
            "agreement",
            "n_annotations",
            "mean_strength",
            "method",
            "majority_label",
            "dawid_skene_label",
            "computed_at",
        ]


class AnnotatorStatsSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username")

    class Meta:
        model = AnnotatorStats
        fields = [
            "annotator",
            "n_annotations",
            "gold_seen",
            "gold_accuracy",
            "agreement_with_consensus",
            "median_lead_time_ms",
            "confusion",
            "spammer_flag",
            "spammer_reasons",
            "computed_at",
        ]


class ProjectStatsSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProjectStats
        fields = ["computed_at", "n_items", "n_complete", "n_annotations", "metrics", "duration_ms"]


class StatsSerializer(serializers.Serializer):
    progress = serializers.DictField()
    latest = ProjectStatsSerializer(allow_null=True)
    annotators = AnnotatorStatsSerializer(many=True)


class ExportSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=DatasetSnapshot.Format.choices)
    filters = serializers.JSONField(required=False, default=dict)


class SnapshotSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)
    download = serializers.SerializerMethodField()

    class Meta:
        model = DatasetSnapshot
        fields = [
            "id",
            "project",
            "format",
            "filters",
            "row_count",
            "sha256",
            "size_bytes",
            "created_by",
            "created_at",
            "download",
        ]

    def get_download(self, snapshot) -> str:
        return f"/api/annotation/snapshots/{snapshot.pk}/download/"
