from django.conf import settings
from rest_framework import serializers

from models_registry.models import (
    AliasChange,
    BaseModel,
    Kind,
    ModelCard,
    ModelCardRevision,
    ModelVersion,
    Prediction,
    RegisteredModel,
    TrainingJob,
)
from models_registry.selectors import PROGRESS_FIELDS

TEXT_LIMIT = 100_000


class BaseModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = BaseModel
        fields = ["id", "name", "architecture", "source", "location", "description", "config",
                  "created_at"]  # fmt: skip
        read_only_fields = fields


class AliasSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField(source="version_id")
    ref = serializers.CharField(source="version.ref")


class RegisteredModelSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    aliases = AliasSerializer(many=True, read_only=True)

    class Meta:
        model = RegisteredModel
        fields = ["id", "name", "kind", "description", "created_by", "created_at", "aliases"]
        read_only_fields = ["id", "created_by", "created_at", "aliases"]


class ModelVersionSerializer(serializers.ModelSerializer):
    ref = serializers.CharField(read_only=True)
    registered_model = serializers.CharField(source="registered_model.name")
    base_model = serializers.CharField(source="base_model.name")
    aliases = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["id", "ref", "registered_model", "number", "kind", "base_model", "snapshot",
                  "snapshot_sha256", "training_job", "artifact_sha256", "artifact_files",
                  "size_bytes", "training_config", "library_versions", "code_version", "metrics",
                  "calibration", "aliases", "created_at"]  # fmt: skip
        read_only_fields = fields

    def get_aliases(self, version) -> list[str]:
        return sorted(alias.name for alias in version.aliases.all())


class CompareSerializer(serializers.Serializer):
    versions = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.DictField())


class TrainingJobSerializer(serializers.ModelSerializer):
    registered_model = serializers.CharField(source="registered_model.name")
    base_model = serializers.CharField(source="base_model.name")
    created_by = serializers.CharField(source="created_by.username", default=None)
    percent = serializers.FloatField()
    version = serializers.SerializerMethodField()

    class Meta:
        model = TrainingJob
        fields = ["id", "kind", "registered_model", "base_model", "snapshot", "config",
                  *PROGRESS_FIELDS, "percent", "history", "worker", "traceback", "version",
                  "created_by", "created_at"]  # fmt: skip
        read_only_fields = fields

    def get_version(self, job) -> str | None:
        version = getattr(job, "version", None)
        return version.ref if version else None


class TrainingJobCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Kind.choices, default=Kind.REWARD)
    registered_model = serializers.RegexField(
        r"^[a-z0-9][a-z0-9._-]{0,99}$", help_text="A name; created when new."
    )
    base_model = serializers.SlugRelatedField(slug_field="name", queryset=BaseModel.objects.all())
    snapshot = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    config = serializers.DictField(required=False, default=dict)


class AliasSetSerializer(serializers.Serializer):
    alias = serializers.RegexField(r"^[a-z0-9][a-z0-9._-]{0,49}$")
    version = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, required=False, help_text="Omit to remove the alias."
    )
    reason = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class AliasChangeSerializer(serializers.ModelSerializer):
    registered_model = serializers.CharField(source="registered_model.name")
    changed_by = serializers.CharField(source="changed_by.username", default=None)

    class Meta:
        model = AliasChange
        fields = ["id", "registered_model", "alias", "from_version", "to_version", "reason",
                  "changed_by", "changed_at"]  # fmt: skip
        read_only_fields = fields


class PairSerializer(serializers.Serializer):
    prompt = serializers.CharField(max_length=TEXT_LIMIT, allow_blank=True, trim_whitespace=False)
    response_a = serializers.CharField(max_length=TEXT_LIMIT, trim_whitespace=False)
    response_b = serializers.CharField(max_length=TEXT_LIMIT, trim_whitespace=False)
    item_ref = serializers.CharField(max_length=255, required=False, allow_blank=True)


class PredictSerializer(serializers.Serializer):
    pairs = PairSerializer(
        many=True, allow_empty=False, max_length=settings.MODELS_PREDICT_MAX_PAIRS
    )


class PredictionResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item_ref = serializers.CharField()
    p_a = serializers.FloatField(help_text="Calibrated P(response_a ≻ response_b).")
    reward_a = serializers.FloatField()
    reward_b = serializers.FloatField()
    margin = serializers.FloatField(help_text="reward_a − reward_b")


class PredictResponseSerializer(serializers.Serializer):
    version = serializers.CharField()
    calibration = serializers.CharField()
    predictions = PredictionResultSerializer(many=True)


class PredictionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Prediction
        fields = ["id", "version", "item_ref", "text_sha256", "p_a", "reward_a", "reward_b",
                  "margin", "source", "created_at"]  # fmt: skip
        read_only_fields = fields


class ModelCardRevisionSerializer(serializers.ModelSerializer):
    edited_by = serializers.CharField(source="edited_by.username", read_only=True, default=None)

    class Meta:
        model = ModelCardRevision
        fields = ["revision", "changed", "note", "edited_by", "edited_at"]
        read_only_fields = fields


class CardGateSerializer(serializers.Serializer):
    passed = serializers.BooleanField()
    value = serializers.IntegerField(allow_null=True)
    detail = serializers.CharField()


class ModelCardSerializer(serializers.Serializer):
    """A version's card: its human-entered text, revision, content hash and history."""

    version = serializers.CharField()
    revision = serializers.IntegerField(help_text="0 when the version has no card yet.")
    intended_use = serializers.CharField(allow_blank=True)
    out_of_scope_use = serializers.CharField(allow_blank=True)
    limitations = serializers.CharField(allow_blank=True)
    ethical_considerations = serializers.CharField(allow_blank=True)
    training_data_notes = serializers.CharField(allow_blank=True)
    carried_from = serializers.CharField(allow_null=True)
    updated_by = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    content_sha256 = serializers.CharField(help_text="SHA-256 of the card's Markdown body.")
    gate = CardGateSerializer(help_text="The 'model card present' gate.")
    revisions = ModelCardRevisionSerializer(many=True)


def _card_text_field(**kwargs):
    return serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False,
        max_length=ModelCard.MAX_LENGTH, **kwargs,
    )  # fmt: skip


class ModelCardUpdateSerializer(serializers.Serializer):
    """Change some of a card's human-entered fields (Markdown); each save is a revision."""

    intended_use = _card_text_field()
    out_of_scope_use = _card_text_field()
    limitations = _card_text_field()
    ethical_considerations = _card_text_field()
    training_data_notes = _card_text_field()
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=500, default="",
        help_text="What changed (kept with the revision).",
    )  # fmt: skip
