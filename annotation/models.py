"""Annotation records: projects, items, assignments, annotations, adjudications, the
computed consensus and quality, and immutable dataset snapshots."""

from __future__ import annotations

import json
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from rlhf_platform.crypto import EncryptedTextField

from .importers.redaction import DETECTORS


def _pseudonym_key() -> str:
    return secrets.token_hex(32)


def pii_detectors_default() -> list[str]:
    """New projects redact every kind of personal data the importers detect."""
    return list(DETECTORS)


def pii_detectors_validate(value) -> None:
    """A list of distinct detector names (``annotation.importers.redaction.DETECTORS``)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"must be a list of detector names ({', '.join(DETECTORS)})")
    unknown = [v for v in value if v not in DETECTORS]
    if unknown:
        raise ValidationError(
            f"unknown detector {unknown[0]!r}; choose from {', '.join(DETECTORS)}"
        )
    if len(set(value)) != len(value):
        raise ValidationError("detectors must be distinct")


# Retention periods are whole days: from one day up to a hundred years.
_RETENTION_DAYS = [MinValueValidator(1), MaxValueValidator(36500)]


class Project(models.Model):
    """An annotation project: guidelines, a question schema, and how items are shared out.

    Membership (annotators, reviewers, researchers, viewers) is granted as django-guardian
    object permissions on the project (``annotation.services.project_member_add``).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ARCHIVED = "archived", "Archived"

    class SkipPolicy(models.TextChoices):
        ALLOW = "allow", "Annotators may skip"
        REASON = "reason", "Annotators may skip with a reason"
        NEVER = "never", "Skipping is not allowed"

    name = models.CharField(max_length=200)
    guidelines = models.TextField(blank=True, help_text="Markdown, shown to annotators.")
    question_schema = models.JSONField(help_text="See annotation.schema for the format.")
    overlap = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Distinct annotators per item.",
    )
    gold_ratio = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(0.5)]
    )
    blind = models.BooleanField(default=True, help_text="Annotators never see others' answers.")
    lock_ttl_seconds = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(30), MaxValueValidator(86400)]
    )
    skip_policy = models.CharField(
        max_length=10, choices=SkipPolicy.choices, default=SkipPolicy.ALLOW
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    show_suggestions = models.BooleanField(
        default=False,
        help_text="Show annotators the suggestion of a registered provider (e.g. a model's "
        "prediction) beside an item; never on items sent to humans as a blind check.",
    )
    # Per-project salt of the annotator pseudonyms in exports (annotation.exports.pseudonym):
    # with the server's PSEUDONYM_KEY, which is not in the database, it keys an HMAC.
    pseudonym_key = models.CharField(max_length=64, default=_pseudonym_key, editable=False)
    # --- Data protection (README "Data protection") ---
    pii_detectors = models.JSONField(
        default=pii_detectors_default,
        blank=True,
        validators=[pii_detectors_validate],
        help_text="PII detectors applied to imported text (empty list: none).",
    )
    retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=_RETENTION_DAYS,
        help_text="Delete items (with their answers), snapshots and import records older "
        "than this many days; empty keeps them.",
    )
    archive_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=_RETENTION_DAYS,
        help_text="Delete all of the project's data this many days after it was archived; "
        "empty keeps it.",
    )
    archived_at = models.DateTimeField(null=True, blank=True, editable=False)
    purged_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When retention last deleted its data."
    )
    legal_hold = models.BooleanField(
        default=False, help_text="Retention deletes nothing while set (administrators only)."
    )
    legal_hold_reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    access_object_permissions = True

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("annotate_project", "Can annotate items of the project"),
            ("review_project", "Can review and adjudicate in the project"),
            ("export_project", "Can export datasets of the project"),
            ("report_project", "Can read the project's agreement and annotator quality"),
        ]

    def __str__(self) -> str:
        return self.name


class ProjectUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK guardian table for per-user project permissions (fast joins)."""

    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)


class ProjectGroupObjectPermission(GroupObjectPermissionBase):
    """Direct-FK guardian table for per-group project permissions."""

    content_object = models.ForeignKey(Project, on_delete=models.CASCADE)


class Item(models.Model):
    """A prompt with 2..k responses to compare; gold items carry the expected answer."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=255)
    prompt = models.TextField()
    responses = models.JSONField(help_text='[{"text": ..., "model": ..., "metadata": {...}}]')
    metadata = models.JSONField(default=dict, blank=True)
    priority = models.FloatField(default=0.0, help_text="Higher is served first.")
    # False: the item is not offered to annotators (another process labelled it, e.g. the
    # RLHF loop's auto-labelling).  Part of the assignment index, so held items cost the
    # next-item query nothing.
    assignable = models.BooleanField(default=True)
    is_gold = models.BooleanField(default=False)
    gold_answer = models.JSONField(null=True, blank=True)
    # Submitted plus locked assignments; maintained by the assignment services under row
    # locks, so finding an open item needs no COUNT over assignments.
    n_assigned = models.PositiveIntegerField(default=0)
    n_submitted = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    access_parent = "project"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="item_unique_external_id"
            ),
        ]
        indexes = [
            # The assignment query: open items of a project, by priority then completion.
            models.Index(
                "project",
                "is_gold",
                "assignable",
                models.F("priority").desc(),
                models.F("n_assigned").desc(),
                "id",
                name="item_assignment_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.external_id}"


class Assignment(models.Model):
    """One annotator's claim on one item: locked until it expires, then submitted or skipped."""

    class Status(models.TextChoices):
        LOCKED = "locked", "Locked"
        SUBMITTED = "submitted", "Submitted"
        SKIPPED = "skipped", "Skipped"
        EXPIRED = "expired", "Expired"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LOCKED)
    locked_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # The annotator's free-text reason: a rationale, so encrypted at rest.
    skip_reason = EncryptedTextField(blank=True)

    access_parent = "project"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "annotator"], name="assignment_unique_item_annotator"
            ),
        ]
        indexes = [
            models.Index(fields=["project", "status", "expires_at"], name="assignment_expiry"),
            models.Index(fields=["project", "annotator", "status"], name="assignment_by_annotator"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id}/{self.annotator_id} {self.status}"


class Annotation(models.Model):
    """An annotator's answer to an item: an append-only record with its author and time.

    ``label`` is the primary question's answer coded as a class index (pairwise: A=0,
    tie=1, B=2, so the codes are also ordinal), which consensus and agreement read
    without parsing JSON.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    assignment = models.OneToOneField(
        Assignment, on_delete=models.PROTECT, related_name="annotation"
    )
    # The structured answers and the text answers of questions that are not sensitive.
    answer = models.JSONField()
    # The sensitive text answers (rationales, comments marked sensitive) as JSON
    # ``{question: text}``, encrypted at rest; see ``annotation.schema.answer_split``.
    answer_private = EncryptedTextField(blank=True, default="")
    label = models.SmallIntegerField(null=True)
    strength = models.PositiveSmallIntegerField(null=True)
    lead_time_ms = models.PositiveIntegerField(help_text="From assignment to submission.")
    idempotency_key = models.CharField(max_length=100)
    is_gold = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    access_parent = "project"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "idempotency_key"], name="annotation_idempotency"
            ),
        ]
        indexes = [models.Index(fields=["project", "id"], name="annotation_by_project")]

    def __str__(self) -> str:
        return f"{self.item_id} by {self.annotator_id}"

    @property
    def full_answer(self) -> dict:
        """The whole answer: the structured part and the decrypted text answers."""
        if not self.answer_private:
            return self.answer
        return {**self.answer, **json.loads(self.answer_private)}


class Adjudication(models.Model):
    """A reviewer's decision on an item, overriding the computed consensus."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="adjudication")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    answer = models.JSONField()
    label = models.SmallIntegerField()
    # The reviewer's rationale: encrypted at rest, never in an audit payload.
    reason = EncryptedTextField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    access_parent = "project"
    access_parent_write_action = "review"

    def __str__(self) -> str:
        return f"{self.item_id}: {self.label}"


class ItemConsensus(models.Model):
    """The current consensus label of an item (recomputed; adjudications override)."""

    class Method(models.TextChoices):
        MAJORITY = "majority", "Majority vote"
        DAWID_SKENE = "dawid_skene", "Dawid–Skene"
        ADJUDICATED = "adjudicated", "Adjudicated"
        GOLD = "gold", "Gold answer"

    item = models.OneToOneField(
        Item, on_delete=models.CASCADE, primary_key=True, related_name="consensus"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    label = models.SmallIntegerField()
    confidence = models.FloatField()
    agreement = models.FloatField(help_text="Share of annotators agreeing with the label.")
    n_annotations = models.PositiveIntegerField()
    mean_strength = models.FloatField(null=True)
    method = models.CharField(max_length=12, choices=Method.choices)
    majority_label = models.SmallIntegerField()
    dawid_skene_label = models.SmallIntegerField()
    computed_at = models.DateTimeField()

    access_parent = "project"

    class Meta:
        indexes = [models.Index(fields=["project", "agreement"], name="consensus_by_agreement")]

    def __str__(self) -> str:
        return f"{self.item_id}: {self.label} ({self.method})"


class ProjectStats(models.Model):
    """One recomputation of a project's agreement and progress (kept, for trends)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="stats")
    computed_at = models.DateTimeField(db_index=True)
    n_items = models.PositiveIntegerField()
    n_complete = models.PositiveIntegerField()
    n_annotations = models.PositiveIntegerField()
    metrics = models.JSONField(
        help_text="alpha_nominal, alpha_ordinal, alpha_interval, fleiss_kappa, ..."
    )
    duration_ms = models.PositiveIntegerField()

    access_parent = "project"

    class Meta:
        ordering = ["-computed_at"]
        get_latest_by = "computed_at"

    def __str__(self) -> str:
        return f"{self.project_id} @ {self.computed_at:%Y-%m-%d %H:%M:%S}"


class AnnotatorStats(models.Model):
    """An annotator's quality in a project, from the latest recomputation."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    n_annotations = models.PositiveIntegerField()
    gold_seen = models.PositiveIntegerField(default=0)
    gold_accuracy = models.FloatField(null=True)
    agreement_with_consensus = models.FloatField(null=True)
    median_lead_time_ms = models.FloatField(null=True)
    confusion = models.JSONField(default=list, help_text="Dawid–Skene confusion matrix.")
    spammer_flag = models.BooleanField(default=False)
    spammer_reasons = models.JSONField(default=list)
    computed_at = models.DateTimeField()

    access_parent = "project"

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "annotator"], name="annotator_stats_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} in {self.project_id}"


class DatasetSnapshot(models.Model):
    """An immutable export: what was exported (filters, format), its content hash and size.

    Training runs point at snapshots for lineage; the file is never rewritten.
    """

    class Format(models.TextChoices):
        TRL = "trl", "TRL prompt/chosen/rejected (JSONL)"
        PARQUET = "parquet", "Hugging Face datasets (Parquet)"
        CSV = "csv", "CSV"
        LABEL_STUDIO = "label_studio", "Label Studio JSON"
        ARGILLA = "argilla", "Argilla JSON"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="snapshots")
    format = models.CharField(max_length=20, choices=Format.choices)
    filters = models.JSONField(default=dict)
    row_count = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    file = models.FileField(upload_to="snapshots/")
    size_bytes = models.PositiveBigIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    access_parent = "project"
    # A snapshot holds every annotator's answers and the gold answers: reading it (its row
    # or its file) needs the project's export permission, not merely view.
    access_parent_view_action = "export"
    access_parent_write_action = "export"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.project_id} {self.format} {self.sha256[:12]}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.pop("_allow_update", False):
            raise ValueError("dataset snapshots are immutable")
        super().save(*args, **kwargs)


class ImportJob(models.Model):
    """A file import run by a worker, for files too large to import inside one request.

    Same rules as any import (all-or-nothing, line-numbered errors); the upload is kept
    only until the worker has read it, or the job has failed.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    format = models.CharField(max_length=20)
    file = models.FileField(upload_to="imports/", blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    skipped_existing = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text='[{"line", "reason"}]')
    redactions = models.JSONField(
        default=dict, blank=True, help_text='What PII redaction replaced: {"email": 3, ...}.'
    )
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The worker instance running the job (governance.WorkerHeartbeat.instance): a running
    # job whose worker stopped sending heartbeats is requeued by the reaper.
    worker = models.CharField(max_length=255, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    access_parent = "project"
    # A job is the record of someone's upload (file name, rejected lines, external ids):
    # only those who may import into the project (``change``) read it.
    access_parent_view_action = "change"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import {self.pk} into {self.project_id}: {self.status}"
