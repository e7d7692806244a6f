"""Records of response generation: OpenAI-compatible providers, prompt sets and their
prompts, generation jobs and every response they produced.

Kept apart from the registry's other models (re-exported by ``models_registry.models``) so
the generation part reads on its own.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from rlhf_platform.crypto import EncryptedTextField, secret_mask


class Provider(models.Model):
    """An OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, TGI, LiteLLM…) with its limits.

    The API key is stored as a Fernet token (:class:`EncryptedTextField`); after it is
    entered, pages and the API show only :attr:`api_key_masked`.  Managed by admins;
    researchers read providers to choose one for a job.
    """

    name = models.CharField(max_length=100, unique=True)
    base_url = models.CharField(
        max_length=500, help_text="e.g. https://api.openai.com/v1 or http://127.0.0.1:8001/v1"
    )
    model_name = models.CharField(max_length=200, help_text="The model named in each request.")
    api_key = EncryptedTextField(blank=True)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    max_concurrency = models.PositiveIntegerField(
        default=16, help_text="Requests in flight at most, whatever a job asks for."
    )
    timeout_seconds = models.FloatField(default=60.0)
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_message = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def api_key_masked(self) -> str:
        """What may be shown of the key: ``••••••••abcd``, or "" when there is none."""
        return secret_mask(text=self.api_key) if self.api_key else ""


class PromptSet(models.Model):
    """Prompts to generate responses for: typed, imported from a file, or generated from
    topics and a template through a provider (then reviewed: keep or discard)."""

    class Source(models.TextChoices):
        TYPED = "typed", "Typed"
        IMPORTED = "imported", "Imported"
        GENERATED = "generated", "Generated"

    class Status(models.TextChoices):
        GENERATING = "generating", "Generating"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.READY)
    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.PROTECT, related_name="prompt_sets"
    )
    generation = models.JSONField(
        default=dict, blank=True, help_text="Topics, template and counts of a generated set."
    )
    message = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class Prompt(models.Model):
    """One prompt of a set.  ``text_sha256`` is the hash of its normalised text, unique in
    the set, so importing or generating the same prompt twice keeps one."""

    access_parent = "prompt_set"

    class Origin(models.TextChoices):
        TYPED = "typed", "Typed"
        IMPORTED = "imported", "Imported"
        SEED = "seed", "Generated seed"
        VARIATION = "variation", "Generated variation"

    class Status(models.TextChoices):
        PENDING = "pending", "To review"
        KEPT = "kept", "Kept"
        DISCARDED = "discarded", "Discarded"
        DUPLICATE = "duplicate", "Near-duplicate (removed)"

    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="prompts")
    text = models.TextField()
    text_sha256 = models.CharField(max_length=64)
    topic = models.CharField(max_length=200, blank=True)
    origin = models.CharField(max_length=10, choices=Origin.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="variations"
    )
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    similarity = models.FloatField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["prompt_set", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["prompt_set", "text_sha256"], name="prompt_unique_text_in_set"
            ),
        ]

    def __str__(self) -> str:
        return self.text[:80]


class GenerationJob(models.Model):
    """k responses per kept prompt of a set, through a provider, on the ``generation``
    queue; then, optionally, pairs of them as items of an annotation project.

    A response is identified by (job, prompt, sample index), so a rerun only asks for what
    is missing or failed, and items by an external id made of the same, so pairing again
    creates nothing twice.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        STOPPED = "stopped", "Stopped at the token cap"

    class Pairing(models.TextChoices):
        NONE = "none", "No items"
        ALL = "all", "All pairs of a prompt's responses"
        CHOSEN = "chosen", "Chosen pairs of sample indices"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.STOPPED)

    prompt_set = models.ForeignKey(
        PromptSet, on_delete=models.PROTECT, related_name="generation_jobs"
    )
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="jobs")
    # Not named ``project``: a job belongs to no project (the registry's access is by role);
    # this is only where its items go.
    item_project = models.ForeignKey(
        "annotation.Project",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The annotation project that receives pairs of responses as items.",
    )
    pairing = models.CharField(max_length=6, choices=Pairing.choices, default=Pairing.NONE)
    pairs = models.JSONField(default=list, blank=True, help_text="[[0, 1], ...] for 'chosen'.")
    k = models.PositiveSmallIntegerField(default=2)
    sampling = models.JSONField(default=dict, help_text="temperature, top_p, max_tokens, seed")
    system_prompt = models.TextField(blank=True)
    concurrency = models.PositiveSmallIntegerField(default=8)
    max_retries = models.PositiveSmallIntegerField(default=4)
    token_cap = models.PositiveBigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    # Progress (written in batches by the running job).
    total = models.PositiveIntegerField(default=0, help_text="Responses asked for (prompts × k).")
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    requests_sent = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    tokens_used = models.PositiveBigIntegerField(default=0)
    items_created = models.PositiveIntegerField(default=0)
    runs = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"generation job {self.pk}: {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> float:
        done = self.succeeded + self.failed
        return round(100.0 * done / self.total, 1) if self.total else 0.0


class GeneratedResponse(models.Model):
    """One response of a job: the text, or the error of its last attempt, with latency,
    token counts and the finish reason.  One row per (job, prompt, sample index)."""

    access_parent = "job"

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="responses")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="+")
    sample_index = models.PositiveSmallIntegerField()
    ok = models.BooleanField()
    text = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=30, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0.0)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["job", "prompt", "sample_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "prompt", "sample_index"], name="generated_response_unique_sample"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.prompt_id}#{self.sample_index}"
