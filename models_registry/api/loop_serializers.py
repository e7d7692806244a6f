"""Serializers of the RLHF loop's API (settings, runs, chart data, error memory,
retraining requests)."""

from rest_framework import serializers

from models_registry.models_loop import LoopRun, LoopSettings, ModelError, RetrainingRequest


class LoopSettingsSerializer(serializers.ModelSerializer):
    """A project's loop settings (``registered_model`` by name)."""

    registered_model = serializers.CharField(
        source="registered_model.name", allow_null=True, required=False, default=None
    )
    updated_by = serializers.CharField(
        source="updated_by.username", read_only=True, default=None, allow_null=True
    )
    # Settings never saved yet have no time (the defaults are shown).
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = LoopSettings
        fields = ["project", "enabled", "registered_model", "alias", "second_alias",
                  "confidence_threshold", "human_feedback_ratio", "uncertainty",
                  "schedule_minutes", "batch_size", "kill_switch", "seed", "updated_by",
                  "updated_at"]  # fmt: skip
        read_only_fields = ["project", "updated_by", "updated_at"]


class LoopSettingsUpdateSerializer(serializers.Serializer):
    """The settings to change (any subset); validated again by the service."""

    enabled = serializers.BooleanField(required=False)
    registered_model = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    alias = serializers.CharField(required=False, max_length=50)
    second_alias = serializers.CharField(required=False, allow_blank=True, max_length=50)
    confidence_threshold = serializers.FloatField(required=False, min_value=0.5, max_value=1.0)
    human_feedback_ratio = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    uncertainty = serializers.ChoiceField(choices=LoopSettings.Uncertainty.choices, required=False)
    schedule_minutes = serializers.IntegerField(required=False, min_value=0, max_value=10080)
    batch_size = serializers.IntegerField(required=False, min_value=1, max_value=4096)
    kill_switch = serializers.BooleanField(required=False)
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)


class LoopStateSerializer(serializers.Serializer):
    """Settings, the version the alias points at, and how items are routed."""

    settings = LoopSettingsSerializer()
    version = serializers.CharField(allow_null=True)
    summary = serializers.DictField(child=serializers.IntegerField())


class LoopRunSerializer(serializers.ModelSerializer):
    version = serializers.CharField(source="version.ref", default=None)

    class Meta:
        model = LoopRun
        fields = ["id", "version", "trigger", "status", "settings", "items_scored",
                  "auto_labelled", "checks", "sent_to_humans", "checks_compared",
                  "check_agreement", "errors_found", "scoring_seconds", "message",
                  "started_at", "finished_at"]  # fmt: skip
        read_only_fields = fields


class LoopChartSerializer(serializers.Serializer):
    """The passes over time, oldest first, one list per series."""

    id = serializers.ListField(child=serializers.IntegerField())
    started_at = serializers.ListField(child=serializers.CharField())
    status = serializers.ListField(child=serializers.CharField())
    items_scored = serializers.ListField(child=serializers.IntegerField())
    auto_labelled = serializers.ListField(child=serializers.IntegerField())
    sent_to_humans = serializers.ListField(child=serializers.IntegerField())
    checks = serializers.ListField(child=serializers.IntegerField())
    check_agreement = serializers.ListField(child=serializers.FloatField(allow_null=True))
    errors_found = serializers.ListField(child=serializers.IntegerField())


class ModelErrorSerializer(serializers.ModelSerializer):
    external_id = serializers.CharField(source="item.external_id")
    version = serializers.CharField(source="version.ref")

    class Meta:
        model = ModelError
        fields = ["id", "item", "external_id", "version", "model_label", "human_label",
                  "confidence", "route", "run", "recorded_at"]  # fmt: skip
        read_only_fields = fields


class RetrainingCreateSerializer(serializers.Serializer):
    oversample = serializers.IntegerField(default=5, min_value=1, max_value=20)
    heldout_fraction = serializers.FloatField(default=0.2, min_value=0.05, max_value=0.5)
    config = serializers.DictField(required=False, default=dict)


class RetrainingRequestSerializer(serializers.ModelSerializer):
    parent = serializers.CharField(source="parent.ref")
    heldout = serializers.SerializerMethodField()

    class Meta:
        model = RetrainingRequest
        fields = ["id", "project", "parent", "snapshot", "oversample", "n_errors", "heldout",
                  "training_job", "comparison", "created_at"]  # fmt: skip
        read_only_fields = fields

    def get_heldout(self, obj) -> int:
        """How many items were held out."""
        return len(obj.heldout)
