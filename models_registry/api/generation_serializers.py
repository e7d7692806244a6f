"""Serializers of the generation API: providers (the key is write-only and answered only
masked), prompt sets and prompts, generation jobs and their responses."""

from rest_framework import serializers

from models_registry.generation import SAMPLING_SETTINGS
from models_registry.generation_models import (
    GeneratedResponse,
    GenerationJob,
    Prompt,
    PromptSet,
    Provider,
)
from rlhf_platform.validation import text_validate

MAX_ID = 2**63 - 1


class ProviderSerializer(serializers.ModelSerializer):
    """A provider as the API shows it: ``api_key`` is accepted on writes and never
    answered; ``api_key_masked`` shows its last characters."""

    api_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=4096,
        validators=[text_validate], trim_whitespace=True,
        help_text="Write-only. On update, empty or absent keeps the stored key.",
    )  # fmt: skip
    api_key_masked = serializers.CharField(read_only=True)
    name = serializers.CharField(max_length=100, validators=[text_validate])
    base_url = serializers.CharField(max_length=500, validators=[text_validate])
    model_name = serializers.CharField(max_length=200, validators=[text_validate])
    requests_per_minute = serializers.IntegerField(
        min_value=1, max_value=1_000_000, required=False, allow_null=True
    )
    tokens_per_minute = serializers.IntegerField(
        min_value=1, max_value=1_000_000_000, required=False, allow_null=True
    )
    max_concurrency = serializers.IntegerField(min_value=1, max_value=256, required=False)
    timeout_seconds = serializers.FloatField(min_value=0.1, max_value=600, required=False)

    class Meta:
        model = Provider
        fields = ["id", "name", "base_url", "model_name", "api_key", "api_key_masked",
                  "requests_per_minute", "tokens_per_minute", "max_concurrency",
                  "timeout_seconds", "last_test_at", "last_test_ok", "last_test_message",
                  "created_at", "updated_at"]  # fmt: skip
        read_only_fields = ["id", "api_key_masked", "last_test_at", "last_test_ok",
                            "last_test_message", "created_at", "updated_at"]  # fmt: skip


class ProviderTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField())


class PromptSetSerializer(serializers.ModelSerializer):
    provider = serializers.CharField(
        source="provider.name", default=None, read_only=True, allow_null=True
    )
    created_by = serializers.CharField(
        source="created_by.username", default=None, read_only=True, allow_null=True
    )
    counts = serializers.SerializerMethodField()

    class Meta:
        model = PromptSet
        fields = ["id", "name", "description", "source", "status", "provider", "generation",
                  "message", "counts", "created_by", "created_at"]  # fmt: skip
        read_only_fields = fields

    def get_counts(self, prompt_set) -> dict[str, int]:
        from django.db.models import Count

        rows = prompt_set.prompts.values("status").annotate(n=Count("pk"))
        return {row["status"]: row["n"] for row in rows}


class PromptSetCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, validators=[text_validate])
    description = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, default="", validators=[text_validate]
    )
    prompts = serializers.ListField(
        child=serializers.CharField(max_length=20000, validators=[text_validate]),
        allow_empty=False, max_length=50000,
    )  # fmt: skip


class PromptSetImportSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, validators=[text_validate])
    description = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, default="", validators=[text_validate]
    )
    file = serializers.FileField(help_text="CSV with a 'prompt' column, or JSONL {prompt, topic?}")


class PromptSetGenerateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, validators=[text_validate])
    description = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, default="", validators=[text_validate]
    )
    provider = serializers.PrimaryKeyRelatedField(queryset=Provider.objects.all())
    topics = serializers.ListField(
        child=serializers.CharField(max_length=200, validators=[text_validate]),
        allow_empty=False, max_length=100,
    )  # fmt: skip
    template = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, default="", validators=[text_validate],
        help_text="With {topic} and {n}; empty for the default.",
    )  # fmt: skip
    settings = serializers.DictField(
        required=False, default=dict,
        help_text="seeds_per_topic, variations_per_seed, dedupe_threshold, temperature, "
        "max_tokens, concurrency",
    )  # fmt: skip


class PromptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Prompt
        fields = ["id", "text", "topic", "origin", "status", "parent", "duplicate_of",
                  "similarity", "position"]  # fmt: skip
        read_only_fields = fields


class PromptReviewSerializer(serializers.Serializer):
    keep = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False, default=list,
        max_length=50000,
    )  # fmt: skip
    discard = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False, default=list,
        max_length=50000,
    )  # fmt: skip


class PromptReviewResultSerializer(serializers.Serializer):
    kept = serializers.IntegerField()
    discarded = serializers.IntegerField()


class SamplingSerializer(serializers.Serializer):
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False)
    top_p = serializers.FloatField(min_value=0, max_value=1, required=False)
    max_tokens = serializers.IntegerField(
        min_value=1, max_value=SAMPLING_SETTINGS["max_tokens"][3], required=False
    )
    seed = serializers.IntegerField(
        min_value=0, max_value=SAMPLING_SETTINGS["seed"][3], required=False, allow_null=True
    )


class GenerationJobSerializer(serializers.ModelSerializer):
    provider = serializers.CharField(source="provider.name")
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    percent = serializers.FloatField()
    project = serializers.IntegerField(source="item_project_id", allow_null=True)

    class Meta:
        model = GenerationJob
        fields = ["id", "prompt_set", "provider", "project", "pairing", "pairs", "k", "sampling",
                  "system_prompt", "concurrency", "max_retries", "token_cap", "status",
                  "cancel_requested", "total", "succeeded", "failed", "percent", "requests_sent",
                  "retries", "tokens_used", "items_created", "runs", "message", "created_by",
                  "created_at", "started_at", "finished_at"]  # fmt: skip
        read_only_fields = fields


class GenerationJobCreateSerializer(serializers.Serializer):
    prompt_set = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    provider = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    k = serializers.IntegerField(min_value=1, max_value=10, default=2)
    sampling = SamplingSerializer(required=False, default=dict)
    system_prompt = serializers.CharField(
        max_length=20000, required=False, allow_blank=True, default="", validators=[text_validate]
    )
    concurrency = serializers.IntegerField(min_value=1, max_value=256, default=8)
    max_retries = serializers.IntegerField(min_value=0, max_value=10, default=4)
    token_cap = serializers.IntegerField(
        min_value=1, max_value=10**12, required=False, allow_null=True, default=None
    )
    project = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, allow_null=True, default=None,
        help_text="An annotation project that receives pairs of responses as items.",
    )  # fmt: skip
    pairing = serializers.ChoiceField(
        choices=GenerationJob.Pairing.choices, required=False, allow_blank=True, default=""
    )
    pairs = serializers.ListField(
        child=serializers.ListField(
            child=serializers.IntegerField(min_value=0, max_value=9), min_length=2, max_length=2
        ),
        required=False, default=list, max_length=45,
    )  # fmt: skip


class GenerationRetrySerializer(serializers.Serializer):
    token_cap = serializers.IntegerField(
        min_value=1, max_value=10**12, required=False, allow_null=True, default=None
    )


class GeneratedResponseSerializer(serializers.ModelSerializer):
    class Meta:
        model = GeneratedResponse
        fields = ["id", "prompt", "sample_index", "ok", "text", "finish_reason", "prompt_tokens",
                  "completion_tokens", "total_tokens", "latency_ms", "attempts", "error",
                  "updated_at"]  # fmt: skip
        read_only_fields = fields
