"""Governance records: the hash-chained audit log, worker heartbeats, user preferences."""

from __future__ import annotations

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
    """The last time a Celery worker reported itself alive (read by /healthz)."""

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list)
    last_seen = models.DateTimeField(db_index=True)
    started_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"


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
