"""Governance records: the hash-chained audit log, worker heartbeats, the task outbox,
user preferences."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One state change, append-only and chained to the event before it by a keyed hash.

    ``canonical`` is the event's RFC 8785 canonical JSON (every column below plus
    ``prev_hash`` and ``key_id``), stored verbatim; ``hash`` is HMAC-SHA256 over it with the
    key ``key_id`` from ``settings.AUDIT_HMAC_KEYS``, which lives outside the database.  So
    editing, deleting, inserting or reordering rows breaks the chain, and nobody without the
    key can mend it; ``manage.py audit_verify`` names the first broken event.  The other
    columns repeat the payload for querying and must still match it.  Database triggers
    refuse UPDATE, DELETE and TRUNCATE outside ``governance.audit.audit_maintenance`` (prune).
    Rows written before the chain was keyed have an empty ``canonical``: they are sealed by a
    signed ``AuditAnchor`` (kind ``legacy``).
    """

    sequence = models.PositiveBigIntegerField(unique=True)
    timestamp = models.DateTimeField(db_index=True)
    # No database constraint and no cascade: deleting a user must never rewrite history
    # (and would be refused by the append-only trigger).  The username is kept as text.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True, db_index=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    key_id = models.CharField(max_length=32, blank=True, default="")
    canonical = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["sequence"]
        indexes = [models.Index(fields=["object_type", "object_id", "sequence"])]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id}"


class AuditAnchor(models.Model):
    """A signed statement about a stretch of the audit chain that the table alone cannot prove.

    ``archive``: the events ``first_sequence..last_sequence`` were exported to ``file_name``
    (SHA-256 ``content_sha256``) and may be pruned; the first event left in the table must
    link to ``last_hash``.  ``legacy``: the events written before the chain was keyed, sealed
    by the migration that introduced the key (``content_sha256`` over their canonical text).
    ``mac`` is HMAC-SHA256 under ``key_id`` over the canonical JSON of the other fields.
    """

    class Kind(models.TextChoices):
        ARCHIVE = "archive", "Archive export"
        LEGACY = "legacy", "Seal of the unkeyed events"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    first_sequence = models.PositiveBigIntegerField()
    last_sequence = models.PositiveBigIntegerField(db_index=True)
    count = models.PositiveBigIntegerField()
    first_prev_hash = models.CharField(max_length=64)
    last_hash = models.CharField(max_length=64)
    content_sha256 = models.CharField(max_length=64)
    file_name = models.CharField(max_length=255, blank=True)
    created_at = models.CharField(max_length=32)  # the signed ISO text, verbatim
    key_id = models.CharField(max_length=32)
    mac = models.CharField(max_length=64)

    class Meta:
        ordering = ["first_sequence"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.first_sequence}..#{self.last_sequence}"

    def document(self) -> dict:
        """The signed document (what an archive's manifest file holds)."""
        return {
            "v": 1,
            "kind": self.kind,
            "first_sequence": self.first_sequence,
            "last_sequence": self.last_sequence,
            "count": self.count,
            "first_prev_hash": self.first_prev_hash,
            "last_hash": self.last_hash,
            "content_sha256": self.content_sha256,
            "file": self.file_name,
            "created_at": self.created_at,
            "key_id": self.key_id,
            "mac": self.mac,
        }


class WorkerHeartbeat(models.Model):
    """The last time one Celery worker *instance* reported itself alive.

    Keyed by instance (node name, process id and a random start id), not by node name: a
    worker restarted under the same name is a new row, so the dead one stays visible and
    the jobs it held are found by the reaper (``annotation.services.import_jobs_reap``).
    Read by /healthz; a worker that stops cleanly deletes its row.
    """

    instance = models.CharField(max_length=255, unique=True)
    hostname = models.CharField(max_length=255, db_index=True)
    pid = models.PositiveIntegerField(default=0)
    queues = models.JSONField(default=list)
    last_seen = models.DateTimeField(db_index=True)
    started_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.instance} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"


class UserPreference(models.Model):
    """Per-user UI preferences (theme), remembered across devices."""

    class Theme(models.TextChoices):
        SYSTEM = "system", "Follow the system"
        LIGHT = "light", "Light"
        DARK = "dark", "Dark"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    theme = models.CharField(max_length=10, choices=Theme.choices, default=Theme.SYSTEM)

    def __str__(self) -> str:
        return f"{self.user} ({self.theme})"


class OutboxMessage(models.Model):
    """A Celery task to send, written in the same transaction as the change that needs it.

    The transactional outbox (``governance.outbox``): a committed change always has its
    task recorded, whether or not the broker is reachable at that moment; a relay sends due
    rows to the broker and marks them sent, retrying while the broker is down.
    ``dedupe_key`` allows one unsent row per key (a debounce); ``subject_type`` and
    ``subject_id`` say what the task is about, so a job can show why it still waits.
    """

    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    task = models.CharField(max_length=200, help_text="Celery task name.")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=200, blank=True)
    queue = models.CharField(
        max_length=200, blank=True, help_text="Overrides the task's routing when set."
    )
    subject_type = models.CharField(max_length=100, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    available_at = models.DateTimeField(help_text="Not sent before this time.")
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["available_at"],
                condition=models.Q(sent_at__isnull=True),
                name="outbox_pending",
            ),
            models.Index(fields=["subject_type", "subject_id"], name="outbox_subject"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=models.Q(sent_at__isnull=True) & ~models.Q(dedupe_key=""),
                name="outbox_one_pending_per_key",
            )
        ]

    def __str__(self) -> str:
        state = "sent" if self.sent_at else "pending"
        return f"outbox #{self.pk} {self.task} ({state})"
