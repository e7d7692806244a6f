"""Governance writes: the audit trail, worker heartbeats, user preferences, approvals.

Every state change in Attune is recorded through :func:`audit_event_record`, inside the
same transaction as the change, so a rolled-back change leaves no event and a committed
change always has one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import random
import secrets
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Model
from django.urls import reverse
from django.utils import timezone

from rlhf_platform import request_context
from rlhf_platform.errors import Conflict
from rlhf_platform.validation import texts_validate

from .approvals import Gate, GateMeasure, approval_kind
from .audit import (
    GENESIS_HASH,
    archive_line,
    archives_verify,
    audit_keys,
    audit_maintenance,
    canonical_text,
    document_sign,
    event_payload,
    mac_hex,
    signed_file_write,
    timestamp_text,
)
from .models import (
    ApprovalDecision,
    ApprovalPolicy,
    ApprovalRequest,
    AuditAnchor,
    AuditEvent,
    GatePolicy,
    GateResult,
    Notification,
    UserPreference,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
    WorkerHeartbeat,
)
from .outbox import outbox_sent_before, outbox_task_enqueue
from .webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    EVENT_TYPES,
    SIGNATURE_HEADER,
    UnsafeDestination,
    signature_header,
    url_validate,
    webhook_event_mapping,
    webhook_post,
    webhook_project_name,
)

logger = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every writer of the chain.
_AUDIT_LOCK_KEY = 0x41554454  # "AUDT"


def _lock_chain_head() -> None:
    """Serialise writers of the chain until the current transaction ends.

    PostgreSQL: a transaction-scoped advisory lock.  SQLite: nothing to do, because every
    transaction starts IMMEDIATE (settings.SQLITE_OPTIONS) and so already holds the
    database's single write lock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_LOCK_KEY])


def _chain_head() -> tuple[int, str]:
    """The newest event's sequence and hash; after a prune that emptied the table, the newest
    archive's end; for a new chain, (0, GENESIS_HASH)."""
    head = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    if head is None:
        head = (
            AuditAnchor.objects.filter(kind=AuditAnchor.Kind.ARCHIVE)
            .order_by("-last_sequence")
            .values_list("last_sequence", "last_hash")
            .first()
        )
    return head or (0, GENESIS_HASH)


def _object_ref(obj: Model | None) -> tuple[str, str]:
    if obj is None:
        return "", ""
    return obj._meta.label_lower, str(obj.pk)


def audit_event_record(
    *,
    action: str,
    obj: Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    before: Any = None,
    after: Any = None,
    actor: AbstractBaseUser | None = None,
) -> AuditEvent:
    """Append one event to the audit chain, in the caller's transaction.

    The actor, request id and client IP default to the ones bound for the current request
    (``rlhf_platform.request_context``), so services need only say what changed.  The
    payload is normalised (``governance.audit.audit_value_normalise``: NaN, huge integers,
    Decimal, dates become text) and its RFC 8785 text is stored and signed as it is.
    """
    if obj is not None:
        object_type, object_id = _object_ref(obj)
    if actor is None:
        actor = request_context.actor.get()
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    key_id, keys = audit_keys()
    with transaction.atomic():
        _lock_chain_head()
        head_sequence, prev_hash = _chain_head()
        timestamp = timezone.now()
        payload = event_payload(
            sequence=head_sequence + 1,
            timestamp=timestamp,
            actor_id=actor.pk if actor is not None else None,
            actor_username=actor.get_username() if actor is not None else "",
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            before=before,
            after=after,
            request_id=request_context.request_id.get(),
            client_ip=request_context.client_ip.get(),
            prev_hash=prev_hash,
            key_id=key_id,
        )
        text = canonical_text(payload)
        # The columns hold exactly what the signed text says (-0.0 is 0 there, and so here).
        stored = json.loads(text)
        del stored["v"], stored["timestamp"]
        event = AuditEvent.objects.create(
            **stored, timestamp=timestamp, hash=mac_hex(keys[key_id], text), canonical=text
        )
        if webhook_event_mapping(action=action) is not None:
            _webhook_event_dispatch_safely(event)
        return event


def audit_checkpoint_write(*, directory: Path | None = None) -> Path | None:
    """Write a signed checkpoint of the chain head to a file outside the database.

    A later rollback, truncation or deletion of the newest events no longer matches it
    (``audit_chain_verify`` compares).  Nothing is written for an empty chain, nor when the
    newest checkpoint already records the head.  Not audited: it changes no record, and an
    event would move the head it records.
    """
    directory = Path(directory or settings.AUDIT_CHECKPOINT_DIR)
    head = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
    if head is None:
        return None
    sequence, head_hash = head
    newest = max(directory.glob(f"checkpoint-{sequence:012d}-*.json"), default=None)
    if newest is not None and json.loads(newest.read_text()).get("hash") == head_hash:
        return newest
    now = timezone.now()
    document = document_sign(
        {"v": 1, "sequence": sequence, "hash": head_hash, "created_at": timestamp_text(now)}
    )
    name = f"checkpoint-{sequence:012d}-{now.astimezone(dt.UTC):%Y%m%dT%H%M%S%fZ}.json"
    return signed_file_write(directory / name, document)


def _event_rows(*, after_sequence: int, through_sequence: int, batch_size: int = 5000):
    # Keyset pagination: constant memory on any table size.
    last = after_sequence
    while True:
        rows = list(
            AuditEvent.objects.filter(sequence__gt=last, sequence__lte=through_sequence)
            .order_by("sequence")
            .values()[:batch_size]
        )
        if not rows:
            return
        yield from rows
        last = rows[-1]["sequence"]


def _archive_anchors() -> list[AuditAnchor]:
    return list(
        AuditAnchor.objects.filter(kind=AuditAnchor.Kind.ARCHIVE).order_by("first_sequence")
    )


@transaction.atomic
def audit_archive_export(
    *, through_sequence: int | None = None, directory: Path | None = None
) -> AuditAnchor | None:
    """Export the events not yet archived (up to ``through_sequence``) to a signed archive.

    Writes ``audit-archive-<first>-<last>.jsonl`` (each event's stored signed text and chain
    fields, one per line) and a ``.manifest.json`` signed with the current key (range, count,
    first prev_hash, last hash, the file's SHA-256), records the manifest as an
    ``AuditAnchor`` and audits the export.  Refuses to archive a chain that does not verify.
    Returns None when there is nothing new to archive.
    """
    from .selectors import audit_chain_verify

    report = audit_chain_verify()
    if not report.ok:
        brk = report.first_break
        raise ValueError(
            f"the audit chain does not verify at sequence={brk.sequence}: {brk.reason}"
        )
    directory = Path(directory or settings.AUDIT_ARCHIVE_DIR)
    archived = _archive_anchors()
    after = archived[-1].last_sequence if archived else 0
    first = AuditEvent.objects.filter(sequence__gt=after).order_by("sequence").first()
    head = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    through = min(head or 0, through_sequence if through_sequence is not None else head or 0)
    if first is None or through < first.sequence:
        return None
    stem = f"audit-archive-{first.sequence:012d}-{through:012d}"
    directory.mkdir(parents=True, exist_ok=True)
    digest, count, last_hash = hashlib.sha256(), 0, first.prev_hash
    with (directory / f"{stem}.jsonl").open("wb") as out:
        for row in _event_rows(after_sequence=first.sequence - 1, through_sequence=through):
            line = (archive_line(row) + "\n").encode("utf-8")
            out.write(line)
            digest.update(line)
            count, last_hash = count + 1, row["hash"]
    document = document_sign(
        {
            "v": 1,
            "kind": AuditAnchor.Kind.ARCHIVE.value,
            "first_sequence": first.sequence,
            "last_sequence": through,
            "count": count,
            "first_prev_hash": first.prev_hash,
            "last_hash": last_hash,
            "content_sha256": digest.hexdigest(),
            "file": f"{stem}.jsonl",
            "created_at": timestamp_text(timezone.now()),
        }
    )
    signed_file_write(directory / f"{stem}.manifest.json", document)
    anchor = AuditAnchor.objects.create(**_anchor_fields(document))
    audit_event_record(
        action="audit.archive",
        obj=anchor,
        after={
            "first_sequence": first.sequence,
            "last_sequence": through,
            "count": count,
            "file": document["file"],
        },
    )
    return anchor


def _anchor_fields(document: dict[str, Any]) -> dict[str, Any]:
    fields = {name: value for name, value in document.items() if name not in ("v", "file")}
    return {**fields, "file_name": document["file"]}


@dataclasses.dataclass(frozen=True)
class PruneResult:
    """What ``audit_prune`` deleted (or would delete, on a dry run)."""

    cutoff: dt.datetime
    through_sequence: int
    deleted: int


@transaction.atomic
def audit_prune(
    *,
    older_than_days: int | None = None,
    archive_dir: Path | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Delete audit events older than the retention period AND already archived.

    The one sanctioned way rows leave the table.  It never deletes an event younger than
    ``AUDIT_RETENTION_DAYS`` (a shorter ``older_than_days`` is refused), deletes only a prefix
    of the chain that ends where a signed archive ends (so the first remaining event links to
    that archive's last hash, and verification starts there), and re-verifies those archive
    files before deleting.  The prune is itself audited.
    """
    retention = settings.AUDIT_RETENTION_DAYS
    days = retention if older_than_days is None else older_than_days
    if days < retention:
        raise ValueError(
            f"refusing to delete events younger than AUDIT_RETENTION_DAYS ({retention} days)"
        )
    cutoff = timezone.now() - dt.timedelta(days=days)
    _lock_chain_head()
    first = AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True).first()
    young = (
        AuditEvent.objects.filter(timestamp__gte=cutoff)
        .order_by("sequence")
        .values_list("sequence", flat=True)
        .first()
    )
    limit = (young - 1) if young is not None else _chain_head()[0]
    covering = [a for a in _archive_anchors() if first is not None and a.last_sequence >= first]
    covering = [a for a in covering if a.last_sequence <= limit]
    if first is None or not covering:
        return PruneResult(cutoff, 0, 0)
    if covering[0].first_sequence > first:
        raise ValueError(f"refusing to prune: no archive holds event {first}")
    directory = Path(archive_dir or settings.AUDIT_ARCHIVE_DIR)
    _, keys = audit_keys()
    report = archives_verify([directory / a.file_name for a in covering], keys)
    if not report.ok:
        raise ValueError(f"refusing to prune: the archive does not verify: {report.problem}")
    through = covering[-1].last_sequence
    doomed = AuditEvent.objects.filter(sequence__lte=through)
    if dry_run:
        return PruneResult(cutoff, through, doomed.count())
    with audit_maintenance():
        deleted, _ = doomed.delete()
    audit_event_record(
        action="audit.prune",
        object_type="governance.auditevent",
        after={
            "through_sequence": through,
            "deleted": deleted,
            "cutoff": cutoff,
            "archives": [a.file_name for a in covering],
        },
    )
    return PruneResult(cutoff, through, deleted)


def worker_heartbeat_record(
    *, instance: str, hostname: str, pid: int, queues: list[str]
) -> WorkerHeartbeat:
    """Upsert one worker instance's heartbeat (telemetry, not a state change: not audited)."""
    now = timezone.now()
    beat, created = WorkerHeartbeat.objects.get_or_create(
        instance=instance,
        defaults={
            "hostname": hostname,
            "pid": pid,
            "queues": queues,
            "last_seen": now,
            "started_at": now,
        },
    )
    if not created:
        WorkerHeartbeat.objects.filter(pk=beat.pk).update(queues=queues, last_seen=now)
    return beat


def worker_heartbeats_prune(*, older_than: dt.timedelta = dt.timedelta(days=1)) -> int:
    """Forget instances not seen for ``older_than`` (each worker restart adds one)."""
    deleted, _ = WorkerHeartbeat.objects.filter(last_seen__lt=timezone.now() - older_than).delete()
    return deleted


def user_theme_set(*, user: AbstractBaseUser, theme: str) -> UserPreference:
    """Remember a user's UI theme (a personal preference, so not audited)."""
    if theme not in UserPreference.Theme.values:
        raise ValueError(f"theme: must be one of {', '.join(UserPreference.Theme.values)}")
    preference, _ = UserPreference.objects.update_or_create(user=user, defaults={"theme": theme})
    return preference


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    roles: list[str],
    email: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
):
    """Create a user holding the given roles (audited; the password is never recorded)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from .roles import ROLES

    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"roles: unknown role(s) {', '.join(unknown)}")
    from .security_audit import silenced

    with silenced():  # this one event stands for the creation and its roles
        user = get_user_model().objects.create_user(
            username=username,
            password=password,
            email=email,
            is_staff=is_staff,
            is_superuser=is_superuser,
        )
        user.groups.set(Group.objects.filter(name__in=roles))
    audit_event_record(
        action="user.create",
        obj=user,
        after={
            "username": username,
            "roles": sorted(roles),
            "is_staff": is_staff,
            "is_superuser": is_superuser,
        },
    )
    return user


@transaction.atomic
def user_roles_set(*, user, roles: list[str]):
    """Replace a user's roles (audited with before and after)."""
    from django.contrib.auth.models import Group

    from .roles import ROLES

    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"roles: unknown role(s) {', '.join(unknown)}")
    from .security_audit import silenced

    before = sorted(user.groups.filter(name__in=list(ROLES)).values_list("name", flat=True))
    with silenced():  # recorded below, with the roles only
        user.groups.set(Group.objects.filter(name__in=roles))
    audit_event_record(
        action="user.roles_set", obj=user, before={"roles": before}, after={"roles": sorted(roles)}
    )
    return user


# ----------------------------------------------------------------------------------------
# Approvals: requests, decisions with quorum, automated gates, execution
# ----------------------------------------------------------------------------------------


class GatesBlocked(Conflict):
    """An approval was refused because gates fail and no valid override was given.

    Raised *after* the gate results of that moment were committed, so the review page
    shows what turned red."""

    def __init__(self, failed: list[str], override_group: str):
        self.failed = failed
        super().__init__(
            f"gates: failing gate(s): {', '.join(failed)}. Approving anyway needs the "
            f"'{override_group}' role and a rationale for the override"
        )


def approval_policy_for(*, kind: str, project_id: int | None) -> dict[str, Any]:
    """The policy in force for ``kind`` in a project: the project's row, else the kind's
    default row, else :data:`ApprovalPolicy.DEFAULTS`."""
    rows = ApprovalPolicy.objects.filter(kind=kind)
    row = (rows.filter(project_id=project_id).first() if project_id else None) or rows.filter(
        project_id__isnull=True
    ).first()
    if row is None:
        return dict(ApprovalPolicy.DEFAULTS)
    return {name: getattr(row, name) for name in ApprovalPolicy.DEFAULTS}


@transaction.atomic
def approval_policy_set(
    *, kind: str, project_id: int | None = None, **fields: Any
) -> ApprovalPolicy:
    """Create or change the policy of a kind (a project's override when ``project_id``)."""
    approval_kind(kind)  # LookupError for an unknown kind
    unknown = set(fields) - set(ApprovalPolicy.DEFAULTS)
    if unknown:
        raise ValidationError({name: ["not a policy setting"] for name in sorted(unknown)})
    if "quorum" in fields and int(fields["quorum"]) < 1:
        raise ValidationError({"quorum": ["must be at least 1"]})
    row = (
        ApprovalPolicy.objects.select_for_update().filter(kind=kind, project_id=project_id).first()
    )
    before = {n: getattr(row, n) for n in ApprovalPolicy.DEFAULTS} if row else None
    if row is None:
        row = ApprovalPolicy(kind=kind, project_id=project_id, **ApprovalPolicy.DEFAULTS)
    for name, value in fields.items():
        setattr(row, name, value)
    row.full_clean()
    row.save()
    audit_event_record(
        action="approval.policy_set", obj=row, before=before,
        after={"kind": kind, "project_id": project_id,
               **{n: getattr(row, n) for n in ApprovalPolicy.DEFAULTS}},
    )  # fmt: skip
    return row


def _gate_threshold(*, kind: str, project_id: int | None, gate: Gate) -> tuple[bool, float | None]:
    """(enabled, threshold) of a gate: the project's GatePolicy, the kind's, the default."""
    rows = GatePolicy.objects.filter(kind=kind, gate=gate.key)
    row = (rows.filter(project_id=project_id).first() if project_id else None) or rows.filter(
        project_id__isnull=True
    ).first()
    if row is None:
        return True, gate.default_threshold
    return row.enabled, row.threshold


def _gate_judge(gate: Gate, measured: GateMeasure, threshold: float | None) -> bool:
    if measured.passed is not None:
        return measured.passed
    if measured.value is None or threshold is None:
        return False  # not measured: nobody can say it passes
    if gate.comparator == ">=":
        return measured.value >= threshold
    if gate.comparator == "<=":
        return measured.value <= threshold
    raise ValueError(f"gate {gate.key}: unknown comparator {gate.comparator!r}")


def gates_evaluate(*, request: ApprovalRequest, stage: str) -> list[GateResult]:
    """Run every enabled gate of the request's kind on its subject and store the results
    (values, thresholds, pass or fail) for ``stage``.  A provider that fails to measure
    makes its gate fail, with the reason as the detail: an error is never a pass."""
    kind = approval_kind(request.kind)
    subject = approval_subject(request=request)
    now = timezone.now()
    results = []
    for gate in kind.gates:
        enabled, threshold = _gate_threshold(
            kind=request.kind, project_id=request.project_id, gate=gate
        )
        if not enabled:
            continue
        try:
            measured = gate.measure(subject, request.payload)
        except Exception as exc:  # any failure to measure is a failed gate
            measured = GateMeasure(value=None, detail=f"could not be measured: {exc}"[:500])
        if measured.value is not None and not math.isfinite(measured.value):
            measured = GateMeasure(value=None, detail="not a finite number")
        results.append(
            GateResult(
                request=request,
                stage=stage,
                gate=gate.key,
                label=gate.label,
                passed=_gate_judge(gate, measured, threshold),
                value=measured.value,
                comparator=gate.comparator if measured.passed is None else "",
                threshold=threshold if measured.passed is None else None,
                detail=measured.detail[:500],
                evaluated_at=now,
            )
        )
    return GateResult.objects.bulk_create(results)


def _gates_summary(results: list[GateResult]) -> dict[str, Any]:
    return {r.gate: {"passed": r.passed, "value": r.value, "threshold": r.threshold}
            for r in results}  # fmt: skip


def approval_subject(*, request: ApprovalRequest) -> Model | None:
    """The object a request is about (None if it was deleted since)."""
    model = request.subject_type.model_class()
    return model._default_manager.filter(pk=request.subject_id).first() if model else None


def _justification_clean(text: Any, field: str) -> str:
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        raise ValidationError({field: ["is required: say why, in words a reviewer can check"]})
    if len(text) > 10000:
        raise ValidationError({field: ["at most 10,000 characters"]})
    from rlhf_platform.validation import texts_validate

    texts_validate(**{field: text})
    return text


def _notify(*, user, message: str, url: str, subject: str) -> None:
    """In-app notification now, e-mail after commit (a rolled-back change sends nothing)."""
    if user is None or not user.is_active:
        return
    Notification.objects.create(user=user, message=message[:500], url=url[:300])
    if user.email:
        address = user.email
        transaction.on_commit(
            lambda: send_mail(
                subject=subject,
                message=f"{message}\n\n{url}",
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[address],
                fail_silently=True,
            )
        )


def _request_url(request: ApprovalRequest) -> str:
    return reverse("approval-detail", kwargs={"request_id": request.pk})


@transaction.atomic
def approval_request_open(
    *, kind: str, subject: Model, payload: dict | None, requested_by, justification: str
) -> ApprovalRequest:
    """Open a request for a governed change: validate it through its kind, copy the policy
    in force onto it, evaluate the gates (stage ``open``), audit ``approval.requested``."""
    from .access import require

    try:
        registered = approval_kind(kind)
    except LookupError as exc:
        raise ValidationError({"kind": [str(exc)]}) from exc
    if not isinstance(subject, registered.model):
        raise ValidationError({"subject": [f"must be a {registered.model._meta.verbose_name}"]})
    require(
        user=requested_by, action=registered.request_action, obj=registered.request_object(subject)
    )
    justification = _justification_clean(justification, "justification")
    if payload is not None and not isinstance(payload, dict):
        raise ValidationError({"payload": ["must be an object"]})
    payload = registered.validate(subject, dict(payload or {}))
    project = registered.project_of(subject)
    project_id = project.pk if project is not None else None
    subject_type = ContentType.objects.get_for_model(subject)
    duplicate = ApprovalRequest.objects.filter(
        kind=kind, subject_type=subject_type, subject_id=str(subject.pk), payload=payload,
        status=ApprovalRequest.Status.PENDING,
    ).first()  # fmt: skip
    if duplicate is not None:
        raise Conflict(f"payload: the same change is already waiting for review (#{duplicate.pk})")
    policy = approval_policy_for(kind=kind, project_id=project_id)
    request = ApprovalRequest.objects.create(
        kind=kind, subject_type=subject_type, subject_id=str(subject.pk), project_id=project_id,
        title=registered.describe(subject, payload)[:300], payload=payload,
        justification=justification, requested_by=requested_by,
        quorum=policy["quorum"], rejection_vetoes=policy["rejection_vetoes"],
        reviewer_groups=list(policy["reviewer_groups"]),
        project_reviewers=policy["project_reviewers"], override_group=policy["override_group"],
        expires_at=timezone.now() + policy["expiry"],
    )  # fmt: skip
    results = gates_evaluate(request=request, stage=GateResult.Stage.OPEN)
    subject_ref = f"{subject_type.app_label}.{subject_type.model}:{subject.pk}"
    audit_event_record(
        action="approval.requested", obj=request,
        after={"kind": kind, "subject": subject_ref,
               "project_id": project_id, "payload": payload, "title": request.title,
               "quorum": request.quorum, "rejection_vetoes": request.rejection_vetoes,
               "expires_at": request.expires_at, "gates": _gates_summary(results)},
    )  # fmt: skip
    return request


def _request_expire(request: ApprovalRequest, now) -> None:
    request.status, request.decided_at = ApprovalRequest.Status.EXPIRED, now
    request.save(update_fields=["status", "decided_at"])
    audit_event_record(
        action="approval.expired", obj=request,
        before={"status": "pending"}, after={"status": "expired", "expires_at": request.expires_at},
    )  # fmt: skip
    _notify(
        user=request.requested_by, url=_request_url(request),
        message=f"Your request “{request.title}” expired before reaching its quorum.",
        subject=f"Attune: request #{request.pk} expired",
    )  # fmt: skip


def approval_requests_expire(*, now=None) -> int:
    """Close every pending request past its expiry (beat, and before any decision)."""
    now = now or timezone.now()
    expired = 0
    for pk in ApprovalRequest.objects.filter(
        status=ApprovalRequest.Status.PENDING, expires_at__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic():
            request = ApprovalRequest.objects.select_for_update().get(pk=pk)
            if request.status == ApprovalRequest.Status.PENDING and request.expires_at <= now:
                _request_expire(request, now)
                expired += 1
    return expired


def approval_request_decide(
    *,
    request: ApprovalRequest,
    reviewer,
    verdict: str,
    rationale: str,
    override_rationale: str = "",
) -> ApprovalDecision:
    """Record one reviewer's verdict (approve, reject, request changes) with its rationale.

    Refused: an expired or closed request (409), a reviewer the policy does not name or
    the requester themself (403), a second verdict by the same reviewer (409), a missing
    rationale (400).  An approval meets the gates: those measured at opening, and — for
    the approval that reaches the quorum — the gates measured again now; a failing gate
    refuses it (:class:`GatesBlocked`, 409) unless the reviewer holds the policy's
    override role and gives ``override_rationale``.  Reaching the quorum approves and
    executes the change through the kind's app; a veto (or as many rejections as the
    quorum) rejects; "request changes" closes the request for the requester to revise.
    """
    with transaction.atomic():
        # A refusal that must keep what it recorded (gate results, an expiry) comes back
        # as ``refused`` and is raised only after the commit.
        decision, refused = _decide(
            request_id=request.pk, reviewer=reviewer, verdict=verdict, rationale=rationale,
            override_rationale=override_rationale,
        )  # fmt: skip
    if refused is not None:
        raise refused
    return decision


def _decide(*, request_id, reviewer, verdict, rationale, override_rationale):
    from .access import approval_decider_require, user_in_group

    request = (
        ApprovalRequest.objects.select_for_update()
        .select_related("requested_by", "subject_type")
        .get(pk=request_id)
    )
    approval_decider_require(request=request, user=reviewer)
    now = timezone.now()
    if request.status == ApprovalRequest.Status.PENDING and request.expires_at <= now:
        _request_expire(request, now)
        # The expiry is kept: answer after this transaction commits.
        expired_at = f"{request.expires_at:%Y-%m-%d %H:%M}"
        return None, Conflict(f"status: this request expired at {expired_at} UTC")
    if request.status != ApprovalRequest.Status.PENDING:
        raise Conflict(f"status: this request is {request.get_status_display().lower()}")
    if verdict not in ApprovalDecision.Verdict.values:
        choices = ", ".join(ApprovalDecision.Verdict.values)
        raise ValidationError({"verdict": [f"must be one of {choices}"]})
    rationale = _justification_clean(rationale, "rationale")
    if request.decisions.filter(reviewer=reviewer).exists():
        raise Conflict("reviewer: you have already decided this request")
    kind = approval_kind(request.kind)
    subject = approval_subject(request=request)
    approvals = request.decisions.filter(verdict=ApprovalDecision.Verdict.APPROVE).count()
    gate_override = False
    results: list[GateResult] = []
    failing: list[GateResult] = []
    if verdict == ApprovalDecision.Verdict.APPROVE:
        if approvals + 1 >= request.quorum:
            results = gates_evaluate(request=request, stage=GateResult.Stage.APPROVAL)
        else:
            results = list(request.gates.filter(stage=GateResult.Stage.OPEN))
        # Failing gates that an earlier override on this request already covers do not
        # block the other reviewers; a gate that turned red since does.
        covered = {
            gate
            for gates in request.decisions.filter(gate_override=True).values_list(
                "overridden_gates", flat=True
            )
            for gate in gates
        }
        failing = [r for r in results if not r.passed and r.gate not in covered]
        if failing:
            text = override_rationale.strip() if isinstance(override_rationale, str) else ""
            if not (text and user_in_group(user=reviewer, group=request.override_group)):
                labels = [r.label for r in failing]
                audit_event_record(
                    action="approval.gates_blocked", obj=request,
                    after={"reviewer": reviewer.get_username(), "failed": [r.gate for r in failing],
                           "gates": _gates_summary(results)},
                )  # fmt: skip
                return None, GatesBlocked(labels, request.override_group)
            override_rationale = _justification_clean(text, "override_rationale")
            gate_override = True
    decision = ApprovalDecision.objects.create(
        request=request, reviewer=reviewer, verdict=verdict, rationale=rationale,
        gate_override=gate_override,
        overridden_gates=[r.gate for r in failing] if gate_override else [],
        override_rationale=override_rationale if gate_override else "",
    )  # fmt: skip
    if gate_override:
        audit_event_record(
            action="approval.gate_override", obj=request,
            after={"reviewer": reviewer.get_username(), "role": request.override_group,
                   "failed": decision.overridden_gates},
        )  # fmt: skip
    before = request.status
    rejections = request.decisions.filter(verdict=ApprovalDecision.Verdict.REJECT).count()
    if verdict == ApprovalDecision.Verdict.APPROVE and approvals + 1 >= request.quorum:
        request.status = ApprovalRequest.Status.APPROVED
    elif verdict == ApprovalDecision.Verdict.REJECT and (
        request.rejection_vetoes or rejections >= request.quorum
    ):
        request.status = ApprovalRequest.Status.REJECTED
    elif verdict == ApprovalDecision.Verdict.REQUEST_CHANGES:
        request.status = ApprovalRequest.Status.CHANGES_REQUESTED
    if request.status != before:
        request.decided_at = now
        request.save(update_fields=["status", "decided_at"])
    audit_event_record(
        action="approval.decided", obj=request,
        before={"status": before},
        after={"verdict": verdict, "reviewer": reviewer.get_username(), "status": request.status,
               "approvals": approvals + (verdict == "approve"), "quorum": request.quorum,
               "gate_override": gate_override},
    )  # fmt: skip
    if request.status == ApprovalRequest.Status.APPROVED:
        _execute(request=request, kind=kind, subject=subject)
    verdict_text = ApprovalDecision.Verdict(verdict).label.lower()
    state = request.get_status_display().lower()
    _notify(
        user=request.requested_by, url=_request_url(request),
        message=f"{reviewer.get_username()} chose “{verdict_text}” on your request "
                f"“{request.title}”. It is now: {state}.",
        subject=f"Attune: request #{request.pk} — {state}",
    )  # fmt: skip
    return decision, None


def _execute(*, request: ApprovalRequest, kind, subject) -> None:
    """Carry an approved request out through its app, in a savepoint: a failure is kept
    on the request (status ``failed``) and audited, and the approvals stay recorded."""
    try:
        if subject is None:
            raise ValidationError({"subject": ["no longer exists"]})
        with transaction.atomic():
            result = kind.execute(subject, request.payload, request)
    except (ValidationError, Conflict, PermissionDenied, LookupError) as exc:
        message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        request.status, request.execution_error = ApprovalRequest.Status.FAILED, message[:2000]
        request.save(update_fields=["status", "execution_error"])
        audit_event_record(
            action="approval.execution_failed", obj=request, after={"error": message[:500]}
        )
        return
    request.status, request.executed_at = ApprovalRequest.Status.EXECUTED, timezone.now()
    request.save(update_fields=["status", "executed_at"])
    audit_event_record(action="approval.executed", obj=request, after={"result": result or {}})


def approval_bypass_refuse(*, kind: str, obj: Model | None, channel: str, detail: dict) -> str:
    """Record a refused attempt to make a governed change directly (e.g. an alias moved
    through the API or the admin) and return the message to answer with."""
    audit_event_record(
        action="approval.bypass_refused", obj=obj,
        after={"kind": kind, "channel": channel, **detail},
    )  # fmt: skip
    return (
        "This change needs an approved request: open one (the model's page, or POST "
        "/api/governance/approval-requests/ with kind "
        f"'{kind}'); reviewers decide it at /governance/approvals/."
    )


@transaction.atomic
def gate_policy_set(
    *, kind: str, gate: str, threshold: float | None, enabled: bool = True,
    project_id: int | None = None,
) -> GatePolicy:  # fmt: skip
    """Set a gate's threshold for a kind (and project); used by an approved
    ``gate_policy.change`` request (audited with before and after)."""
    row = (
        GatePolicy.objects.select_for_update()
        .filter(kind=kind, gate=gate, project_id=project_id)
        .first()
    )
    before = {"threshold": row.threshold, "enabled": row.enabled} if row else None
    if row is None:
        row = GatePolicy(kind=kind, gate=gate, project_id=project_id)
    row.threshold, row.enabled = threshold, enabled
    row.save()
    audit_event_record(
        action="gate_policy.set", obj=row, before=before,
        after={"kind": kind, "gate": gate, "project_id": project_id, "threshold": threshold,
               "enabled": enabled},
    )  # fmt: skip
    return row


def notifications_mark_read(*, user) -> int:
    """Mark the user's unread notifications read (a personal state, not audited)."""
    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=timezone.now()
    )


@transaction.atomic
def gate_policy_ensure(*, kind: str, gate: Gate, project_id: int | None = None) -> GatePolicy:
    """The policy row of a gate, made with the provider's default when it has none (so a
    change request has a subject); the creation is audited."""
    row, created = GatePolicy.objects.get_or_create(
        kind=kind, gate=gate.key, project_id=project_id,
        defaults={"threshold": gate.default_threshold, "enabled": True},
    )  # fmt: skip
    if created:
        audit_event_record(
            action="gate_policy.set", obj=row,
            after={"kind": kind, "gate": gate.key, "project_id": project_id,
                   "threshold": row.threshold, "enabled": True, "from": "default"},
        )  # fmt: skip
    return row


# Outbound webhooks (governance.webhooks has the catalogue, signing and the HTTP client)
# ----------------------------------------------------------------------------------------

WEBHOOK_TASK = "governance.webhook_deliver"
WEBHOOK_QUEUE = "webhooks"


def _webhook_event_dispatch_safely(event: AuditEvent) -> None:
    """Dispatch in a savepoint: a faulty resolver of some app must not undo the change
    being audited (the error is logged, the event simply has no deliveries)."""
    try:
        with transaction.atomic():
            webhook_event_dispatch(event=event)
    except Exception:
        logger.exception("webhooks: could not dispatch audit event %s", event.sequence)


def webhook_event_dispatch(*, event: AuditEvent) -> list[WebhookDelivery]:
    """Turn an audit event into deliveries for the active subscriptions that want it.

    Called by :func:`audit_event_record` in the transaction that writes the event: the
    event body, a delivery row per subscription and its task (through the outbox, sent
    after commit, queue ``webhooks``) exist if and only if the change commits.
    """
    mapping = webhook_event_mapping(action=event.action)
    if mapping is None:
        return []
    wanted = [
        s
        for s in WebhookSubscription.objects.filter(is_active=True).defer("secret")
        if mapping.event_type in s.event_types
    ]
    if not wanted:
        return []
    project_id = mapping.project(event)
    wanted = [s for s in wanted if s.project_id is None or s.project_id == project_id]
    if not wanted:
        return []
    webhook_event = WebhookEvent(
        event_type=mapping.event_type,
        project_id=project_id,
        audit_sequence=event.sequence,
        created_at=event.timestamp,
    )
    document = {
        "id": str(webhook_event.event_id),
        "type": mapping.event_type,
        "timestamp": event.timestamp.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "project": project_id,
        "data": mapping.data(event),
    }
    webhook_event.body = json.dumps(
        document, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str
    )
    webhook_event.save()
    deliveries = []
    for subscription in wanted:
        delivery = WebhookDelivery.objects.create(subscription=subscription, event=webhook_event)
        _webhook_delivery_enqueue(delivery)
        deliveries.append(delivery)
    return deliveries


def _webhook_delivery_enqueue(delivery: WebhookDelivery, *, delay: float = 0) -> None:
    # The attempt number makes every other copy of the message stale (see below).
    outbox_task_enqueue(
        task=WEBHOOK_TASK,
        kwargs={"delivery_id": delivery.pk, "attempt": delivery.attempts + 1},
        delay=delay,
        subject=delivery,
        queue=WEBHOOK_QUEUE,
    )


def webhook_retry_delay(*, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: base × 2^(attempt-1), times a jitter of
    1–1.5 (so receivers that failed together are not retried in lockstep, and each delay
    still exceeds the one before), capped at ``WEBHOOK_RETRY_MAX_SECONDS``."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    jitter = (rng or random).uniform(1.0, 1.5)
    return min(base * jitter, settings.WEBHOOK_RETRY_MAX_SECONDS)


def webhook_delivery_attempt(*, delivery_id: int, attempt: int = 1) -> WebhookDelivery | None:
    """Make attempt number ``attempt`` of a pending delivery (the worker's side); idempotent.

    The delivery is claimed (pending → sending) under a row lock and the claim committed
    before the POST, so a second copy of the task finds it sending or delivered and
    leaves it alone: one event is never delivered twice to one subscription by us.  The
    result goes to the delivery log; a failure is retried with backoff through the outbox
    (queue ``webhooks``) until ``WEBHOOK_MAX_ATTEMPTS``, then the delivery fails and counts
    towards disabling the subscription.
    """
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("subscription", "event")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
            return delivery
        # Each message carries the number of the attempt it is for.  A copy of a message
        # whose attempt was made (a broker redelivery, a duplicate send) is stale: running it
        # would post again before the backoff.  No clocks are compared, so workers whose
        # clocks differ cannot retry early or strand a delivery.
        if attempt != delivery.attempts + 1:
            return delivery
        subscription, event = delivery.subscription, delivery.event
        if not subscription.is_active:
            delivery.status = WebhookDelivery.Status.CANCELLED
            delivery.save(update_fields=["status"])
            return delivery
        delivery.status, delivery.claimed_at = WebhookDelivery.Status.SENDING, now
        delivery.attempts += 1
        delivery.save(update_fields=["status", "claimed_at", "attempts"])
    body = event.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Attune-Webhooks/1",
        EVENT_HEADER: event.event_type,
        DELIVERY_HEADER: str(delivery.delivery_id),
        SIGNATURE_HEADER: signature_header(
            secret=subscription.secret, body=body, timestamp=int(time.time())
        ),
    }
    result = webhook_post(
        url=subscription.url, body=body, headers=headers, allow_private=subscription.allow_private
    )
    return _webhook_attempt_record(delivery_id=delivery.pk, started_at=now, result=result)


@transaction.atomic
def _webhook_attempt_record(*, delivery_id: int, started_at, result) -> WebhookDelivery:
    """Log an attempt and decide what follows: delivered, retried later, or failed."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    retry_in = None
    if result.ok:
        delivery.status, delivery.delivered_at = WebhookDelivery.Status.SUCCEEDED, timezone.now()
        # Only a subscription with failures to forget is written (the usual case is none).
        WebhookSubscription.objects.filter(
            pk=delivery.subscription_id, consecutive_failures__gt=0
        ).update(consecutive_failures=0)
    elif delivery.attempts < settings.WEBHOOK_MAX_ATTEMPTS:
        retry_in = webhook_retry_delay(attempt=delivery.attempts)
        delivery.status = WebhookDelivery.Status.PENDING
        delivery.next_attempt_at = timezone.now() + dt.timedelta(seconds=retry_in)
        _webhook_delivery_enqueue(delivery, delay=retry_in)
    else:
        delivery.status = WebhookDelivery.Status.FAILED
        _webhook_subscription_failure_count(subscription_id=delivery.subscription_id)
    delivery.last_status_code, delivery.last_error = result.status_code, result.error
    delivery.save()
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        started_at=started_at,
        duration_ms=result.duration_ms,
        status_code=result.status_code,
        error=result.error,
        response_excerpt=result.response_excerpt,
        retry_in_seconds=retry_in,
    )
    return delivery


def _webhook_subscription_failure_count(*, subscription_id: int) -> None:
    """One more failed delivery in a row; at the limit the subscription is disabled
    (audited, its pending deliveries cancelled, the admins and its creator e-mailed)."""
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription_id)
    subscription.consecutive_failures += 1
    subscription.save(update_fields=["consecutive_failures"])
    limit = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    if not subscription.is_active or subscription.consecutive_failures < limit:
        return
    reason = f"{subscription.consecutive_failures} deliveries in a row failed"
    subscription.is_active = False
    subscription.disabled_at, subscription.disabled_reason = timezone.now(), reason
    subscription.save(update_fields=["is_active", "disabled_at", "disabled_reason"])
    WebhookDelivery.objects.filter(
        subscription=subscription, status=WebhookDelivery.Status.PENDING
    ).update(status=WebhookDelivery.Status.CANCELLED)
    audit_event_record(
        action="webhook.subscription_disable",
        obj=subscription,
        actor=None,
        before={"is_active": True},
        after={"is_active": False, "reason": reason},
    )
    _webhook_admins_notify(subscription=subscription, reason=reason)


def _webhook_admins_notify(*, subscription: WebhookSubscription, reason: str) -> None:
    """E-mail the admins and the subscription's creator (after commit)."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    from .roles import ADMIN

    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    admins = users.filter(Q(groups__name=ADMIN) | Q(is_superuser=True))
    addresses = set(admins.values_list("email", flat=True))
    if subscription.created_by_id:
        creator = users.filter(pk=subscription.created_by_id)
        addresses |= set(creator.values_list("email", flat=True))
    if not addresses:
        return
    message = (
        f"The webhook subscription {subscription.name!r} (#{subscription.pk}) was disabled: "
        f"{reason}. Check the receiver and its delivery log, then enable it again."
    )
    recipients = sorted(addresses)
    transaction.on_commit(
        lambda: send_mail(
            subject=f"Attune: webhook {subscription.name} disabled",
            message=message,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
            fail_silently=True,
        )
    )


def webhook_deliveries_reap(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Queue again deliveries that a dead worker left "sending", and pending ones whose
    task was lost (sent long ago, never run).  Beat runs it every minute; harmless twice:
    the claim decides."""
    now = now or timezone.now()
    counts = {"requeued": 0, "resent": 0}
    stale = now - dt.timedelta(seconds=3 * settings.WEBHOOK_TIMEOUT_SECONDS + 60)
    for delivery_id in WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.SENDING, claimed_at__lt=stale
    ).values_list("pk", flat=True):
        with transaction.atomic():
            delivery = (
                WebhookDelivery.objects.select_for_update()
                .filter(pk=delivery_id, status=WebhookDelivery.Status.SENDING)
                .first()
            )
            if delivery is None:
                continue
            delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.PENDING, None
            delivery.last_error = "the worker sending this delivery stopped; queued again"
            delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
            _webhook_delivery_enqueue(delivery)
            counts["requeued"] += 1
    lost_before = now - dt.timedelta(minutes=5)
    for delivery in WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, created_at__lt=lost_before
    ).exclude(next_attempt_at__gte=lost_before):
        if outbox_sent_before(subject=delivery, before=lost_before):
            with transaction.atomic():
                _webhook_delivery_enqueue(delivery)
            counts["resent"] += 1
    return counts


WEBHOOK_LOG_KEEP = dt.timedelta(days=30)


def webhook_log_prune(*, older_than: dt.timedelta = WEBHOOK_LOG_KEEP) -> int:
    """Delete events older than ``older_than`` whose deliveries have all finished, with
    their deliveries and attempt logs (beat, with the outbox prune); returns how many
    events.  Log housekeeping, not a state change: not audited."""
    from django.db.models import Exists, OuterRef

    unfinished = WebhookDelivery.objects.filter(
        event=OuterRef("pk"),
        status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.SENDING],
    )
    old = WebhookEvent.objects.filter(created_at__lt=timezone.now() - older_than)
    _, by_model = old.exclude(Exists(unfinished)).delete()
    return by_model.get(WebhookEvent._meta.label, 0)


def _webhook_audit_view(subscription: WebhookSubscription) -> dict[str, Any]:
    """What the audit trail records of a subscription: never the secret, and of the URL
    only its host and a fingerprint (some receivers put a token in the path)."""
    from urllib.parse import urlsplit

    return {
        "name": subscription.name,
        "url_host": urlsplit(subscription.url).hostname or "",
        "url_sha256": hashlib.sha256(subscription.url.encode()).hexdigest()[:16],
        "event_types": sorted(subscription.event_types),
        "project": subscription.project_id,
        "allow_private": subscription.allow_private,
        "is_active": subscription.is_active,
    }


def _webhook_subscription_validate(
    subscription: WebhookSubscription, *, user, allow_private_before: bool = False
) -> None:
    """Check every field; raise ValidationError naming each bad one."""
    from . import access

    errors: dict[str, list[str]] = {}
    name = (subscription.name or "").strip()
    if not name or len(name) > 100:
        errors["name"] = ["is required, at most 100 characters"]
    try:
        texts_validate(name=name, url=subscription.url or "")
    except ValidationError as exc:
        errors.update(exc.message_dict)
    types = subscription.event_types
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        errors["event_types"] = ["must be a non-empty list of event types"]
    elif unknown := sorted(set(types) - set(EVENT_TYPES)):
        errors["event_types"] = [f"unknown: {', '.join(unknown)} (known: {', '.join(EVENT_TYPES)})"]
    if subscription.project_id is not None and (
        webhook_project_name(project_id=subscription.project_id) is None
    ):
        errors["project"] = ["no such project"]
    if (
        subscription.allow_private
        and not allow_private_before
        and not access.user_can(user=user, action="allow_private", obj=subscription)
    ):
        errors["allow_private"] = ["only an admin may allow private addresses"]
    if "url" not in errors:
        if len(subscription.url or "") > 1000:
            errors["url"] = ["at most 1000 characters"]
        else:
            try:
                url_validate(subscription.url or "", allow_private=subscription.allow_private)
            except UnsafeDestination as exc:
                errors["url"] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    subscription.name = name
    subscription.event_types = sorted(set(types))


def webhook_secret_generate() -> str:
    """A new signing secret (256 bits)."""
    return "whsec_" + secrets.token_urlsafe(32)


@transaction.atomic
def webhook_subscription_create(
    *,
    name: str,
    url: str,
    event_types: list[str],
    user,
    project_id: int | None = None,
    allow_private: bool = False,
) -> tuple[WebhookSubscription, str]:
    """Create a subscription with a generated secret; returns it and the secret, which is
    shown to its creator this once (audited, without the secret)."""
    subscription = WebhookSubscription(
        name=name,
        url=url,
        event_types=event_types,
        project_id=project_id,
        allow_private=bool(allow_private),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    _webhook_subscription_validate(subscription, user=user)
    secret = webhook_secret_generate()
    subscription.secret = secret
    subscription.save()
    audit_event_record(
        action="webhook.subscription_create",
        obj=subscription,
        after=_webhook_audit_view(subscription),
    )
    return subscription, secret


WEBHOOK_EDITABLE = ("name", "url", "event_types", "project_id", "allow_private", "is_active")


@transaction.atomic
def webhook_subscription_update(
    *, subscription: WebhookSubscription, user, **changes: Any
) -> WebhookSubscription:
    """Change a subscription (audited with before and after).  Enabling a disabled one
    resets its failure count."""
    unknown = sorted(set(changes) - set(WEBHOOK_EDITABLE))
    if unknown:
        raise ValidationError({name: ["cannot be changed"] for name in unknown})
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    before = _webhook_audit_view(subscription)
    allow_private_before = subscription.allow_private
    for field, value in changes.items():
        setattr(subscription, field, value)
    _webhook_subscription_validate(
        subscription, user=user, allow_private_before=allow_private_before
    )
    if changes.get("is_active") and not before["is_active"]:
        subscription.consecutive_failures = 0
        subscription.disabled_at, subscription.disabled_reason = None, ""
    subscription.save()
    after = _webhook_audit_view(subscription)
    if after != before:
        audit_event_record(
            action="webhook.subscription_update", obj=subscription, before=before, after=after
        )
    return subscription


@transaction.atomic
def webhook_subscription_secret_rotate(*, subscription: WebhookSubscription) -> str:
    """Replace the signing secret; returns the new one (shown once; audited without it)."""
    secret = webhook_secret_generate()
    WebhookSubscription.objects.filter(pk=subscription.pk).update(secret=secret)
    subscription.secret = secret
    audit_event_record(action="webhook.secret_rotate", obj=subscription)
    return secret


@transaction.atomic
def webhook_subscription_delete(*, subscription: WebhookSubscription) -> None:
    """Delete a subscription and its delivery log (audited)."""
    audit_event_record(
        action="webhook.subscription_delete",
        obj=subscription,
        before=_webhook_audit_view(subscription),
    )
    subscription.delete()


@transaction.atomic
def webhook_delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery's event again, as a new delivery (new ``Attune-Delivery`` id, same
    event id and body) — an admin's explicit request, audited."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status in (WebhookDelivery.Status.PENDING, WebhookDelivery.Status.SENDING):
        raise Conflict("delivery: still being delivered; wait for it to succeed or fail")
    subscription = WebhookSubscription.objects.get(pk=delivery.subscription_id)
    if not subscription.is_active:
        raise Conflict("subscription: the subscription is disabled; enable it first")
    again = WebhookDelivery.objects.create(
        subscription=subscription, event_id=delivery.event_id, redelivery_of=delivery
    )
    audit_event_record(
        action="webhook.redeliver",
        obj=again,
        after={"of": str(delivery.delivery_id), "subscription": subscription.pk},
    )
    _webhook_delivery_enqueue(again)
    return again
