"""Model registry records: base models, registered models, immutable versions with their
lineage and calibration, aliases with their history, training jobs and stored predictions.

Heavy libraries (torch, transformers, TRL) are never imported here or by the web process
at start-up; only the training and scoring modules import them, when they run.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

NAME_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9._-]{0,99}$",
    "use lower-case letters, digits, dots, dashes and underscores (at most 100)",
)


class Kind(models.TextChoices):
    """What a model does: scores responses (reward) or generates them (policy)."""

    REWARD = "reward", "Reward model"
    POLICY = "policy", "Policy (causal LM)"


class BaseModel(models.Model):
    """A local Hugging Face model directory that training starts from.

    Never a hub name: the directory is on this machine (or on the workers' shared disk),
    either inside an installed package (all-MiniLM-L6-v2), under ``MEDIA_ROOT`` (tiny models
    built from a config) or an absolute path registered by an admin.
    """

    class Architecture(models.TextChoices):
        ENCODER = "encoder", "Encoder (sequence classification head)"
        CAUSAL_LM = "causal_lm", "Causal language model"

    class Source(models.TextChoices):
        PACKAGE = "package", "Inside an installed Python package"
        MEDIA = "media", "Under MEDIA_ROOT"
        DIRECTORY = "directory", "A local directory"

    name = models.CharField(max_length=100, unique=True, validators=[NAME_VALIDATOR])
    architecture = models.CharField(max_length=12, choices=Architecture.choices)
    source = models.CharField(max_length=10, choices=Source.choices)
    location = models.CharField(
        max_length=500,
        help_text="package: module name; media: path under MEDIA_ROOT; directory: absolute path.",
    )
    description = models.TextField(blank=True)
    config = models.JSONField(default=dict, blank=True, help_text="A summary of config.json.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RegisteredModel(models.Model):
    """A named line of model versions (e.g. ``helpfulness-rm``), with aliases."""

    name = models.CharField(max_length=100, unique=True, validators=[NAME_VALIDATOR])
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REWARD)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """One trained model, never changed after it is registered.

    The artifact is a directory in Django storage (``artifact_path``): ``model.safetensors``
    whose SHA-256 is ``artifact_sha256``, and the config and tokenizer files listed with
    their hashes in ``artifact_files``.  Every file is checked on load, and a mismatch
    refuses to load.  Lineage: the base model, the dataset snapshot and the training job.
    """

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="versions"
    )
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="versions")
    # Lineage back to items, annotations and agreement (read through annotation.selectors).
    snapshot = models.ForeignKey(
        "annotation.DatasetSnapshot", on_delete=models.PROTECT, related_name="+"
    )
    snapshot_sha256 = models.CharField(max_length=64)
    training_job = models.OneToOneField(
        "TrainingJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="version",
    )
    artifact_path = models.CharField(max_length=500)
    artifact_sha256 = models.CharField(max_length=64)
    artifact_files = models.JSONField(help_text='{"config.json": "<sha256>", ...}')
    size_bytes = models.PositiveBigIntegerField()
    training_config = models.JSONField()
    library_versions = models.JSONField(help_text="python, torch, transformers, trl, attune…")
    code_version = models.CharField(max_length=64, blank=True, help_text="git commit, if known")
    metrics = models.JSONField(default=dict)
    calibration = models.JSONField(
        default=dict, help_text="method, temperature, platt, and metrics before and after."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["registered_model", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "number"], name="model_version_unique_number"
            ),
        ]

    def __str__(self) -> str:
        return self.ref

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.pop("_allow_update", False):
            raise ValueError("model versions are immutable")
        super().save(*args, **kwargs)

    @property
    def ref(self) -> str:
        """How the API and the commands name this version: ``name@number``."""
        return f"{self.registered_model.name}@{self.number}"


class ModelAlias(models.Model):
    """A movable name (``candidate``, ``staging``, ``production``…) for one version of a
    registered model; every move is kept in ``AliasChange``."""

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="aliases"
    )
    name = models.CharField(max_length=50, validators=[NAME_VALIDATOR])
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["registered_model", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "name"], name="model_alias_unique_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name}:{self.name} → {self.version.number}"


class AliasChange(models.Model):
    """One move of an alias: from which version to which (None when set or removed)."""

    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="alias_changes"
    )
    alias = models.CharField(max_length=50)
    from_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    to_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.alias}: {self.from_version_id} → {self.to_version_id}"


class TrainingJob(models.Model):
    """A reward-model or DPO training run on a worker, with its live progress.

    Progress fields are written by a throttled callback while training runs; ``history``
    keeps the loss and evaluation curve.  ``heartbeat_at`` is refreshed by the running
    job, so a job whose worker died is found (``training_jobs_fail_abandoned``) and failed.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        REGISTERING = "registering", "Calibrating and registering"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REWARD)
    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="training_jobs"
    )
    base_model = models.ForeignKey(
        BaseModel, on_delete=models.PROTECT, related_name="training_jobs"
    )
    snapshot = models.ForeignKey(
        "annotation.DatasetSnapshot", on_delete=models.PROTECT, related_name="+"
    )
    config = models.JSONField(help_text="Validated settings (models_registry.training).")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    # Live progress.
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    epoch = models.FloatField(default=0.0)
    loss = models.FloatField(null=True, blank=True)
    eval_accuracy = models.FloatField(null=True, blank=True)
    pairs_per_second = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    cpu_percent = models.FloatField(null=True, blank=True)
    memory_mb = models.FloatField(null=True, blank=True)
    gpu_memory_mb = models.FloatField(null=True, blank=True)
    device = models.CharField(max_length=20, blank=True)
    n_train = models.PositiveIntegerField(default=0)
    n_eval = models.PositiveIntegerField(default=0)
    history = models.JSONField(default=list, blank=True, help_text="Loss and eval curve points.")
    card_seed = models.JSONField(
        default=dict, blank=True,
        help_text="Model-card text for the version this job registers, when its model has no "
        "earlier card to start from (ModelCard.HUMAN_FIELDS).",
    )  # fmt: skip
    # Where the artifact is being written, so that files of a run that died before it was
    # registered can be removed.
    artifact_path = models.CharField(max_length=500, blank=True)
    # Who runs it: the Celery worker's node name, its process id and a per-run id.
    worker = models.CharField(max_length=255, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="training_job_liveness")]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk}: {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> float:
        if self.status == self.Status.SUCCEEDED:
            return 100.0
        return round(100.0 * self.step / self.total_steps, 1) if self.total_steps else 0.0


class Prediction(models.Model):
    """One scored pair: calibrated P(a ≻ b), the raw rewards and the margin.

    Kept so that it can meet the human consensus later (``item_ref`` or ``text_sha256``,
    a hash of the prompt and both responses); monitoring reads these.  Like annotations,
    predictions are append-only records with their author and time and stay off the audit
    chain (they are the hot path, not a change of governed state).
    """

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="predictions")
    item_ref = models.CharField(max_length=255, blank=True, db_index=True)
    text_sha256 = models.CharField(max_length=64, db_index=True)
    reward_a = models.FloatField()
    reward_b = models.FloatField()
    margin = models.FloatField(help_text="reward_a − reward_b")
    p_a = models.FloatField(help_text="Calibrated P(a ≻ b).")
    source = models.CharField(max_length=20, default="api")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.version_id}: P(a≻b)={self.p_a:.3f}"


class ModelCard(models.Model):
    """The human-entered part of a version's model card: one card per version.

    Everything else on the card (metrics, agreement, calibration, monitoring, approvals) is
    computed when it is rendered (``models_registry.cards``).  A new version's card starts
    from its parent's text (``carried_from``); every edit raises ``revision`` and keeps the
    previous text in ``ModelCardRevision`` (and is audited).
    """

    #: The fields people write, in the order the card shows them.
    HUMAN_FIELDS = (
        ("intended_use", "Intended use"),
        ("out_of_scope_use", "Out-of-scope use"),
        ("limitations", "Limitations"),
        ("ethical_considerations", "Ethical considerations"),
        ("training_data_notes", "Notes on the training data"),
    )
    #: What the "model card present" gate needs filled in.
    REQUIRED_FIELDS = ("intended_use", "limitations")
    MAX_LENGTH = 20_000

    access_parent = "version"

    version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="card")
    revision = models.PositiveIntegerField(default=1)
    intended_use = models.TextField(blank=True)
    out_of_scope_use = models.TextField(blank=True)
    limitations = models.TextField(blank=True)
    ethical_considerations = models.TextField(blank=True)
    training_data_notes = models.TextField(blank=True)
    carried_from = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The parent version whose card text this card started from.",
    )  # fmt: skip
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version"]

    def __str__(self) -> str:
        return f"card of {self.version.ref} (revision {self.revision})"

    def human_fields(self) -> dict[str, str]:
        """The human-entered text, by field name."""
        return {name: getattr(self, name) for name, _ in self.HUMAN_FIELDS}


class ModelCardRevision(models.Model):
    """One revision of a card's human-entered text, as it was saved (append-only)."""

    access_parent = "card"

    card = models.ForeignKey(ModelCard, on_delete=models.CASCADE, related_name="revisions")
    revision = models.PositiveIntegerField()
    fields = models.JSONField(help_text="The human-entered fields at this revision.")
    changed = models.JSONField(default=list, help_text="Names of the fields this edit changed.")
    note = models.CharField(max_length=500, blank=True)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    edited_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["card", "-revision"]
        constraints = [
            models.UniqueConstraint(fields=["card", "revision"], name="model_card_revision_unique")
        ]

    def __str__(self) -> str:
        return f"{self.card_id} r{self.revision}"


# Response generation (providers, prompt sets, generation jobs) lives in its own module.
from .generation_models import (  # noqa: E402, F401
    GeneratedResponse,
    GenerationJob,
    Prompt,
    PromptSet,
    Provider,
)

# The RLHF loop's models live in their own module; Django finds them through this import.
from .models_loop import (  # noqa: E402, F401
    ItemSuggestion,
    LoopRun,
    LoopSettings,
    ModelError,
    RetrainingRequest,
)
