"""Governance records: the hash-chained audit log, worker heartbeats, user preferences."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One state change, append-only and hash-chained to the event before it.

    ``hash`` is SHA-256 over ``prev_hash`` and a canonical JSON of the event's fields (see
    ``governance.audit.event_digest``), so editing, deleting or inserting a row breaks the
    chain and ``manage.py audit_verify`` names the first broken event.  On PostgreSQL a
    trigger rejects UPDATE and DELETE on this table.
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

    class Meta:
        ordering = ["sequence"]
        indexes = [models.Index(fields=["object_type", "object_id", "sequence"])]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id}"


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
