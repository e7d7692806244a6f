"""The RLHF loop's records: a project's loop settings, the model's suggestions on items
(predictions, never annotations), the error memory, loop runs and retraining requests.

Defined apart from the registry's core models (``models.py`` re-exports them) so the loop
reads as one piece.  Every row lives inside an annotation project (``access_parent``):
reading needs the project's ``report`` permission, writing its ``change``.
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class LoopSettings(models.Model):
    """How the loop runs for one project: which model alias scores, the confidence above
    which it labels alone, the share of confident items still checked by humans, the
    uncertainty measure that orders the human queue, the schedule and the kill switch."""

    class Uncertainty(models.TextChoices):
        MARGIN = "margin", "Margin (|P − 0.5| smallest first)"
        ENTROPY = "entropy", "Entropy of P(a ≻ b)"
        DISAGREEMENT = "disagreement", "Disagreement between two model versions"

    project = models.OneToOneField(
        "annotation.Project", on_delete=models.CASCADE, related_name="loop_settings"
    )
    enabled = models.BooleanField(default=False)
    registered_model = models.ForeignKey(
        "models_registry.RegisteredModel", null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
    )  # fmt: skip
    alias = models.CharField(max_length=50, default="production")
    second_alias = models.CharField(
        max_length=50, blank=True, help_text="The other version, for the disagreement measure."
    )
    confidence_threshold = models.FloatField(
        default=0.8, validators=[MinValueValidator(0.5), MaxValueValidator(1.0)]
    )
    human_feedback_ratio = models.FloatField(
        default=0.1, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    uncertainty = models.CharField(
        max_length=12, choices=Uncertainty.choices, default=Uncertainty.MARGIN
    )
    schedule_minutes = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(7 * 24 * 60)],
        help_text="Run every N minutes (Celery beat); 0: by hand only.",
    )  # fmt: skip
    batch_size = models.PositiveIntegerField(
        default=256, validators=[MinValueValidator(1), MaxValueValidator(4096)]
    )
    kill_switch = models.BooleanField(
        default=False, help_text="On: no pass starts, and a running pass stops at its next batch."
    )
    seed = models.PositiveIntegerField(default=0, help_text="Seeds the choice of check items.")
    updated_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    access_parent = "project"
    access_parent_view_action = "report"

    def __str__(self) -> str:
        return f"loop of project {self.project_id}"


class LoopRun(models.Model):
    """One pass of the loop over a project's new items, with what it did."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        STOPPED = "stopped", "Stopped by the kill switch"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "By hand (UI or API)"
        COMMAND = "command", "manage.py rlhf_loop"
        SCHEDULE = "schedule", "Celery beat"

    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="loop_runs"
    )
    version = models.ForeignKey(
        "models_registry.ModelVersion", null=True, on_delete=models.PROTECT, related_name="+"
    )
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    settings = models.JSONField(help_text="The loop settings this pass ran with.")
    items_scored = models.PositiveIntegerField(default=0)
    auto_labelled = models.PositiveIntegerField(default=0)
    checks = models.PositiveIntegerField(default=0, help_text="Confident items sent to humans.")
    sent_to_humans = models.PositiveIntegerField(default=0, help_text="Uncertain items + checks.")
    checks_compared = models.PositiveIntegerField(default=0)
    check_agreement = models.FloatField(
        null=True, help_text="Model–human agreement on the check items with a consensus."
    )
    errors_found = models.PositiveIntegerField(default=0)
    scoring_seconds = models.FloatField(default=0.0)
    message = models.TextField(blank=True)
    started_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    access_parent = "project"
    access_parent_view_action = "report"

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"loop run {self.pk} of project {self.project_id}: {self.status}"


class ItemSuggestion(models.Model):
    """The model's answer for one item — a prediction, never an annotation — and how the
    loop routed the item: labelled by the model, checked by humans, or sent to humans
    because the model was unsure."""

    class Route(models.TextChoices):
        AUTO = "auto", "Auto-labelled"
        CHECK = "check", "Confident, sent to humans as a check"
        HUMAN = "human", "Uncertain, sent to humans"

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    item = models.OneToOneField(
        "annotation.Item", on_delete=models.CASCADE, related_name="model_suggestion"
    )
    run = models.ForeignKey(LoopRun, on_delete=models.CASCADE, related_name="suggestions")
    version = models.ForeignKey(
        "models_registry.ModelVersion", on_delete=models.PROTECT, related_name="+"
    )
    prediction = models.ForeignKey(
        "models_registry.Prediction", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    p_a = models.FloatField(help_text="Calibrated P(response A ≻ response B).")
    label = models.SmallIntegerField(help_text="Pairwise code: 0 = A, 2 = B.")
    confidence = models.FloatField(help_text="max(P, 1 − P).")
    uncertainty = models.FloatField(help_text="The run's uncertainty measure; higher: less sure.")
    route = models.CharField(max_length=5, choices=Route.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    access_parent = "project"
    access_parent_view_action = "report"

    class Meta:
        indexes = [models.Index(fields=["project", "route"], name="suggestion_by_route")]

    def __str__(self) -> str:
        return f"{self.item_id}: {self.label} ({self.route})"


class ModelError(models.Model):
    """Error memory: an item where the model's suggestion disagreed with the final human
    consensus, with both answers and the model's confidence."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    item = models.OneToOneField(
        "annotation.Item", on_delete=models.CASCADE, related_name="model_error"
    )
    suggestion = models.OneToOneField(ItemSuggestion, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(
        "models_registry.ModelVersion", on_delete=models.PROTECT, related_name="+"
    )
    run = models.ForeignKey(LoopRun, null=True, on_delete=models.SET_NULL, related_name="errors")
    model_label = models.SmallIntegerField()
    human_label = models.SmallIntegerField()
    confidence = models.FloatField()
    route = models.CharField(max_length=5)
    recorded_at = models.DateTimeField(auto_now_add=True)

    access_parent = "project"
    access_parent_view_action = "report"

    class Meta:
        ordering = ["-confidence", "-id"]

    def __str__(self) -> str:
        return f"{self.item_id}: model {self.model_label} vs humans {self.human_label}"


class RetrainingRequest(models.Model):
    """A retraining snapshot built from a project's data with the error memory
    oversampled, the training job started on it, and the comparison of the new version
    with its parent on the same held-out items."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    parent = models.ForeignKey(
        "models_registry.ModelVersion", on_delete=models.PROTECT, related_name="+"
    )
    snapshot = models.ForeignKey(
        "annotation.DatasetSnapshot", on_delete=models.PROTECT, related_name="+"
    )
    oversample = models.PositiveSmallIntegerField()
    n_errors = models.PositiveIntegerField()
    heldout = models.JSONField(
        help_text="External ids held out of the snapshot, for the comparison."
    )
    training_job = models.ForeignKey(
        "models_registry.TrainingJob", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    comparison = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    access_parent = "project"
    access_parent_view_action = "report"

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"retraining of {self.parent_id} on snapshot {self.snapshot_id}"
