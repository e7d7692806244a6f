"""Governance records: the hash-chained audit log, worker heartbeats, the task outbox,
user preferences, approval requests with their policies, decisions and gate results."""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import models

from rlhf_platform.crypto import EncryptedTextField


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


# -- Approvals ------------------------------------------------------------------------------
# What is approved lives in other apps (a model alias, a dataset snapshot, an alert rule):
# the subject is named by content type and id, and its project by a bare id, so governance
# holds no foreign key into those apps.  What each kind means is registered by its app
# (``governance.approvals``).


class ApprovalPolicy(models.Model):
    """Who may review one kind of request, how many must approve, and for how long.

    The row with no ``project_id`` is the kind's default; a row naming a project overrides
    it for requests whose subject belongs to that project.  Kinds without a row use
    :data:`ApprovalPolicy.DEFAULTS`.
    """

    DEFAULTS = {
        "reviewer_groups": ["ethics_committee"],
        "project_reviewers": True,
        "quorum": 2,
        "rejection_vetoes": True,
        "expiry": dt.timedelta(days=14),
        "override_group": "admin",
    }

    kind = models.CharField(max_length=50)
    project_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Empty: the kind's default for every project."
    )
    reviewer_groups = models.JSONField(
        default=list,
        blank=True,
        help_text='Roles or groups whose members review, e.g. ["ethics_committee"].',
    )
    project_reviewers = models.BooleanField(
        default=True, help_text="The reviewers of the subject's project review too."
    )
    quorum = models.PositiveSmallIntegerField(
        default=2, help_text="Distinct approving reviewers needed (the requester never counts)."
    )
    rejection_vetoes = models.BooleanField(
        default=True, help_text="One rejection rejects the request."
    )
    expiry = models.DurationField(default=dt.timedelta(days=14))
    override_group = models.CharField(
        max_length=150, default="admin", help_text="Role whose members may override failing gates."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "project_id"]
        verbose_name_plural = "approval policies"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "project_id"], name="approval_policy_one_per_scope"
            ),
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(project_id__isnull=True),
                name="approval_policy_one_default",
            ),
            models.CheckConstraint(condition=models.Q(quorum__gte=1), name="approval_quorum_min"),
        ]

    def __str__(self) -> str:
        scope = f"project {self.project_id}" if self.project_id else "default"
        return f"{self.kind} ({scope}): quorum {self.quorum}"


class GatePolicy(models.Model):
    """The threshold of one automated gate for one kind (and optionally one project).

    Changed only through an approved ``gate_policy.change`` request; gates without a row
    use their provider's default threshold.
    """

    kind = models.CharField(max_length=50)
    project_id = models.PositiveBigIntegerField(null=True, blank=True)
    gate = models.CharField(max_length=50)
    threshold = models.FloatField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "project_id", "gate"]
        verbose_name_plural = "gate policies"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "project_id", "gate"], name="gate_policy_one_per_scope"
            ),
            models.UniqueConstraint(
                fields=["kind", "gate"],
                condition=models.Q(project_id__isnull=True),
                name="gate_policy_one_default",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}/{self.gate}: {self.threshold}"


class ApprovalRequest(models.Model):
    """A request to make a governed change, decided by a quorum of reviewers.

    The policy in force when it opened is copied onto it (quorum, veto, reviewers, expiry,
    override role), so changing a policy never changes a request under review.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for reviewers"
        APPROVED = "approved", "Approved"
        EXECUTED = "executed", "Approved and carried out"
        FAILED = "failed", "Approved, but carrying it out failed"
        REJECTED = "rejected", "Rejected"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        EXPIRED = "expired", "Expired"

    kind = models.CharField(max_length=50, db_index=True)
    subject_type = models.ForeignKey(
        "contenttypes.ContentType", on_delete=models.PROTECT, related_name="+"
    )
    subject_id = models.CharField(max_length=64)
    project_id = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    title = models.CharField(max_length=300)
    payload = models.JSONField(default=dict, blank=True)
    justification = EncryptedTextField(help_text="Why the requester asks (encrypted at rest).")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    quorum = models.PositiveSmallIntegerField()
    rejection_vetoes = models.BooleanField()
    reviewer_groups = models.JSONField(default=list)
    project_reviewers = models.BooleanField()
    override_group = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    execution_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # The queue's orders: by status (the default view), all, and within a project.
        indexes = [
            models.Index(fields=["status", "-created_at", "-id"], name="approval_queue"),
            models.Index(fields=["-created_at", "-id"], name="approval_recent"),
            models.Index(fields=["project_id", "-created_at", "-id"], name="approval_project"),
            models.Index(fields=["subject_type", "subject_id"], name="approval_subject"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.PENDING


class ApprovalDecision(models.Model):
    """One reviewer's verdict on a request, with the rationale (encrypted at rest)."""

    class Verdict(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"
        REQUEST_CHANGES = "request_changes", "Request changes"

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    rationale = EncryptedTextField()
    gate_override = models.BooleanField(default=False)
    # The gates this override covers: a later approval may pass them, not a gate that
    # turns red afterwards.
    overridden_gates = models.JSONField(default=list, blank=True)
    override_rationale = EncryptedTextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    access_parent = "request"

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "reviewer"], name="approval_one_decision_per_reviewer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.reviewer_id}: {self.verdict} on #{self.request_id}"


class GateResult(models.Model):
    """One automated gate's verdict on a request at one stage, with the measured value."""

    class Stage(models.TextChoices):
        OPEN = "open", "When the request opened"
        APPROVAL = "approval", "At the approval that reached quorum"

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="gates")
    stage = models.CharField(max_length=10, choices=Stage.choices)
    gate = models.CharField(max_length=50)
    label = models.CharField(max_length=200)
    passed = models.BooleanField()
    value = models.FloatField(null=True, blank=True)
    comparator = models.CharField(max_length=2, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    evaluated_at = models.DateTimeField()

    access_parent = "request"

    class Meta:
        ordering = ["evaluated_at", "id"]

    def __str__(self) -> str:
        return f"{self.gate} ({self.stage}): {'pass' if self.passed else 'fail'}"


class Notification(models.Model):
    """An in-app message to one user (e.g. a decision on their request), with a link."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="governance_notifications"
    )
    message = models.CharField(max_length=500)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.message}"


# -- Outbound webhooks ---------------------------------------------------------------------


class WebhookSubscription(models.Model):
    """An admin's subscription: POST signed events of some types (of one project or all) to
    a URL.

    The signing ``secret`` is generated by the platform, shown once at creation and stored
    encrypted.  ``allow_private`` lets the URL reach loopback/private addresses; only users
    with ``governance.allow_private_webhooksubscription`` (admins) may set it.  After
    ``WEBHOOK_DISABLE_AFTER_FAILURES`` failed deliveries in a row the subscription is
    disabled (audited) until an admin enables it again.
    """

    name = models.CharField(max_length=100)
    url = models.CharField(max_length=1000, help_text="http(s) URL, checked by the service.")
    event_types = models.JSONField(default=list, help_text="Event type names (at least one).")
    project_id = models.PositiveBigIntegerField(
        null=True, blank=True, db_index=True, help_text="Only this project's events (none: all)."
    )
    secret = EncryptedTextField()
    allow_private = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        permissions = [
            ("allow_private_webhooksubscription", "Allow a webhook to reach private addresses")
        ]

    def __str__(self) -> str:
        return self.name


class WebhookEvent(models.Model):
    """One event as sent: its body is stored as the exact bytes that are signed (text, not
    JSON: ``jsonb`` would rewrite it), the same for every subscription and every retry."""

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(max_length=100, db_index=True)
    project_id = models.PositiveBigIntegerField(null=True, blank=True)
    audit_sequence = models.PositiveBigIntegerField(db_index=True)
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class WebhookDelivery(models.Model):
    """One event to one subscription, attempted until it succeeds or gives up.

    ``delivery_id`` is the ``Attune-Delivery`` header, the same on every retry, so a
    receiver can de-duplicate.  A worker claims the row (pending → sending) under a row
    lock before posting, so a task delivered twice never posts twice; a manual redelivery
    is a new row (``redelivery_of``) with a new delivery id.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SUCCEEDED = "succeeded", "Delivered"
        FAILED = "failed", "Failed (gave up)"
        CANCELLED = "cancelled", "Cancelled (subscription disabled)"

    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    redelivery_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "claimed_at"], name="webhook_delivery_status")]

    def __str__(self) -> str:
        return f"delivery {self.delivery_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery: the delivery log."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=1000, blank=True)
    response_excerpt = models.TextField(blank=True)
    retry_in_seconds = models.FloatField(
        null=True, blank=True, help_text="Backoff before the next attempt (none: no retry)."
    )

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_once")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error}"
