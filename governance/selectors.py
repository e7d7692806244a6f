"""Governance reads: audit-chain verification, system health, approval requests."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from . import access
from .audit import (
    GENESIS_HASH,
    PAYLOAD_COLUMNS,
    audit_keys,
    checkpoints_read,
    document_check,
    event_check,
    legacy_row_text,
)
from .models import (
    ApprovalRequest,
    AuditAnchor,
    AuditEvent,
    GateResult,
    Notification,
    UserPreference,
    WebhookDelivery,
    WebhookSubscription,
    WorkerHeartbeat,
)

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ChainBreak:
    """Where and why the audit chain first fails to verify (event_id None: no such row)."""

    sequence: int
    event_id: int | None
    reason: str


@dataclasses.dataclass(frozen=True)
class ChainReport:
    """The result of checking the whole audit chain against its anchors and checkpoints."""

    checked: int
    first_break: ChainBreak | None
    legacy: int = 0
    checkpoints: int = 0
    head_sequence: int = 0

    @property
    def ok(self) -> bool:
        return self.first_break is None


_VERIFY_FIELDS = ("id", *PAYLOAD_COLUMNS, "hash", "canonical")


def _events_in_order(batch_size: int) -> Iterator[dict]:
    # Keyset pagination: constant memory on any table size, and no server-side cursor
    # (which SQLite lacks and PgBouncer-style poolers break).
    last = -1
    while True:
        rows = list(
            AuditEvent.objects.filter(sequence__gt=last)
            .order_by("sequence")
            .values(*_VERIFY_FIELDS)[:batch_size]
        )
        if not rows:
            return
        yield from rows
        last = rows[-1]["sequence"]


@dataclasses.dataclass(frozen=True)
class _Checkpoint:
    name: str
    sequence: int
    hash: str
    created_at: str


def _anchors_load(keys: Mapping[str, bytes]) -> tuple[list[AuditAnchor], list[ChainBreak]]:
    valid, problems = [], []
    for anchor in AuditAnchor.objects.order_by("first_sequence"):
        reason = document_check(anchor.document(), keys)
        if reason is None:
            valid.append(anchor)
        else:
            problems.append(ChainBreak(anchor.first_sequence, None, f"{anchor}: anchor {reason}"))
    return valid, problems


def _checkpoints_load(
    directory: Path, keys: Mapping[str, bytes]
) -> tuple[list[_Checkpoint], list[ChainBreak]]:
    valid, problems = [], []
    for path, document in checkpoints_read(directory):
        try:
            claimed = int(path.name.split("-")[1])
        except (IndexError, ValueError):
            claimed = 0
        reason = "unreadable" if document is None else document_check(document, keys)
        if reason is None and not (
            isinstance(document.get("sequence"), int) and isinstance(document.get("hash"), str)
        ):
            reason = "has no sequence and hash"
        if reason is not None:
            problems.append(ChainBreak(claimed, None, f"checkpoint {path.name}: {reason}"))
            continue
        valid.append(
            _Checkpoint(path.name, document["sequence"], document["hash"], document["created_at"])
        )
    return valid, problems


def audit_chain_verify(
    *, batch_size: int = 5000, checkpoint_dir: Path | None = None
) -> ChainReport:
    """Check every event, its link, the signed anchors and the signed checkpoints.

    An edited row fails its HMAC or no longer matches its signed text; a deleted, inserted or
    moved row breaks the sequence or the ``prev_hash`` link; a hash recomputed without the
    key fails the HMAC; events deleted from the start of the chain have no signed archive
    anchor to start from; events deleted from the end, a truncated table and a rolled-back
    database disagree with a signed checkpoint (``settings.AUDIT_CHECKPOINT_DIR``).  The
    report names the first (lowest-sequence) bad event.
    """
    _, keys = audit_keys()
    anchors, problems = _anchors_load(keys)
    archives = {a.last_sequence: a for a in anchors if a.kind == AuditAnchor.Kind.ARCHIVE}
    seal = next((a for a in anchors if a.kind == AuditAnchor.Kind.LEGACY), None)
    checkpoints, checkpoint_problems = _checkpoints_load(
        Path(checkpoint_dir or settings.AUDIT_CHECKPOINT_DIR), keys
    )
    problems += checkpoint_problems
    wanted = {cp.sequence for cp in checkpoints}
    seen: dict[int, tuple[int, str]] = {}

    walk = _ChainWalk(keys=keys, archives=archives, seal=seal)
    for row in _events_in_order(batch_size):
        if row["sequence"] in wanted:
            seen[row["sequence"]] = (row["id"], row["hash"])
        if not walk.step(row):
            break
    if walk.broken is not None:
        problems.append(walk.broken)
    else:
        problems += walk.end_problems()
    horizon = walk.broken.sequence if walk.broken is not None else None
    for cp in checkpoints:
        if horizon is not None and cp.sequence >= horizon:
            continue  # the chain is already broken before this point
        found = seen.get(cp.sequence)
        where = f"checkpoint {cp.name} (signed {cp.created_at})"
        if cp.sequence > walk.head:
            problems.append(
                ChainBreak(
                    walk.head + 1,
                    None,
                    f"the chain ends at sequence {walk.head} but {where} records event "
                    f"{cp.sequence}: newest events deleted, table truncated or rolled back",
                )
            )
        elif found is not None and found[1] != cp.hash:
            problems.append(
                ChainBreak(
                    cp.sequence,
                    found[0],
                    f"hash differs from {where}: the chain was rewritten or rolled back",
                )
            )
    first_break = min(problems, key=lambda brk: brk.sequence, default=None)
    return ChainReport(walk.checked, first_break, walk.legacy, len(checkpoints), walk.head)


class _ChainWalk:
    """Checks events one at a time, in sequence order; stops at the first bad one."""

    def __init__(self, *, keys, archives: dict[int, AuditAnchor], seal: AuditAnchor | None):
        self.keys, self.archives, self.seal = keys, archives, seal
        self.expected_sequence: int | None = None
        self.expected_prev = GENESIS_HASH
        self.checked = self.legacy = self.head = 0
        self.broken: ChainBreak | None = None
        # Only while the sealed range is read from its start.
        self.legacy_digest = hashlib.sha256() if seal is not None else None

    def step(self, row: dict) -> bool:
        sequence = row["sequence"]
        reason = self._start(sequence) if self.expected_sequence is None else None
        if reason is None and sequence != self.expected_sequence:
            reason = (
                f"sequence {sequence} follows {self.expected_sequence - 1}: "
                f"event(s) {self.expected_sequence}..{sequence - 1} missing"
            )
            sequence, row = self.expected_sequence, {"id": None}
        elif reason is None and row["prev_hash"] != self.expected_prev:
            reason = "prev_hash does not match the previous event's hash"
        elif reason is None:
            reason = event_check(row, self.keys) if row["canonical"] else self._legacy(row)
        if reason is not None:
            self.broken = ChainBreak(sequence, row["id"], reason)
            return False
        self.checked += 1
        self.head = sequence
        self.expected_sequence, self.expected_prev = sequence + 1, row["hash"]
        return True

    def _start(self, sequence: int) -> str | None:
        self.expected_sequence = sequence
        if sequence == 1:
            return None
        anchor = self.archives.get(sequence - 1)
        if anchor is None:
            self.expected_sequence = 1
            # Reported as "events 1..n missing" by the sequence check.
            return None
        self.expected_prev = anchor.last_hash
        self.head = sequence - 1
        if self.seal is not None and sequence > self.seal.first_sequence:
            self.legacy_digest = None  # the start of the sealed range was archived and pruned
        return None

    def _legacy(self, row: dict) -> str | None:
        seal, sequence = self.seal, row["sequence"]
        if seal is None or not seal.first_sequence <= sequence <= seal.last_sequence:
            return "unsigned event (no canonical payload) outside the sealed legacy range"
        self.legacy += 1
        if self.legacy_digest is not None:
            self.legacy_digest.update((legacy_row_text(row) + "\n").encode("utf-8"))
        if sequence == seal.last_sequence:
            if row["hash"] != seal.last_hash:
                return "differs from the last hash sealed for the unsigned events"
            if self.legacy_digest is not None and (
                self.legacy_digest.hexdigest() != seal.content_sha256
            ):
                return (
                    f"the unsigned events {seal.first_sequence}..{seal.last_sequence} no "
                    f"longer match the digest sealed at {seal.created_at}: one was edited"
                )
        return None

    def end_problems(self) -> list[ChainBreak]:
        """After a complete walk: events the anchors say must exist but do not."""
        problems = []
        newest_archive = max(self.archives, default=0)
        # Every archive is followed by its own "audit.archive" event.
        if newest_archive and self.head <= newest_archive:
            problems.append(
                ChainBreak(
                    newest_archive + 1,
                    None,
                    f"no event after the archive ending at {newest_archive}: its audit.archive "
                    "event and everything after it was deleted",
                )
            )
        if self.seal is not None and self.head < self.seal.last_sequence:
            problems.append(
                ChainBreak(
                    self.head + 1,
                    None,
                    f"the chain ends at {self.head}, before the sealed unsigned events end "
                    f"({self.seal.last_sequence})",
                )
            )
        return problems


@dataclasses.dataclass(frozen=True)
class ComponentHealth:
    """One component's state for /healthz."""

    ok: bool
    detail: dict


def _database_health() -> ComponentHealth:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return ComponentHealth(True, {"vendor": connection.vendor})
    except Exception as exc:  # any failure means "down"; the reason is reported
        return ComponentHealth(False, {"vendor": connection.vendor, "error": str(exc)})


def _broker_health() -> ComponentHealth:
    from rlhf_platform.celery import app

    transport = app.conf.broker_url.split("://", 1)[0]
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return ComponentHealth(True, {"transport": transport})
    except Exception as exc:
        return ComponentHealth(False, {"transport": transport, "error": str(exc)})


def worker_heartbeat_cutoff(*, now: dt.datetime) -> dt.datetime:
    """The oldest heartbeat of a worker instance still counted as alive at ``now``."""
    return now - dt.timedelta(seconds=settings.WORKER_HEARTBEAT_MAX_AGE)


def worker_heartbeats_alive(*, now: dt.datetime) -> QuerySet[WorkerHeartbeat]:
    """The worker instances alive at ``now``: health, and the reapers' test of whether the
    worker holding a job is gone (keyed by instance, so a restarted worker of the same name
    does not hide the dead one)."""
    return WorkerHeartbeat.objects.filter(last_seen__gte=worker_heartbeat_cutoff(now=now))


def _workers_health(now: dt.datetime) -> ComponentHealth:
    try:
        beats = list(worker_heartbeats_alive(now=now).order_by("hostname", "instance"))
    except Exception as exc:
        return ComponentHealth(False, {"error": str(exc), "alive": []})
    alive = [
        {
            "hostname": beat.hostname,
            "instance": beat.instance,
            "queues": beat.queues,
            "last_seen_seconds_ago": round((now - beat.last_seen).total_seconds(), 1),
        }
        for beat in beats
    ]
    return ComponentHealth(
        bool(alive), {"alive": alive, "max_age_seconds": settings.WORKER_HEARTBEAT_MAX_AGE}
    )


def system_health() -> dict:
    """The state of the database, the broker and the workers, for /healthz."""
    now = timezone.now()
    components = {
        "database": _database_health(),
        "broker": _broker_health(),
        "workers": _workers_health(now),
    }
    return {
        "status": "ok" if all(c.ok for c in components.values()) else "unavailable",
        "checked_at": now.isoformat(),
        **{name: {"ok": c.ok, **c.detail} for name, c in components.items()},
    }


def user_theme(*, user) -> str:
    """The user's remembered theme ("system" when none is stored)."""
    if not getattr(user, "is_authenticated", False):
        return UserPreference.Theme.SYSTEM
    pref = UserPreference.objects.filter(user=user).values_list("theme", flat=True).first()
    return pref or UserPreference.Theme.SYSTEM


def user_roles(*, user) -> list[str]:
    """The role names (groups) a user holds, sorted."""
    from .roles import ROLES

    if not getattr(user, "is_authenticated", False):
        return []
    return sorted(name for name in user.groups.values_list("name", flat=True) if name in ROLES)


# -- Approvals ------------------------------------------------------------------------------


LIST_FIELDS = ("id", "kind", "title", "status", "project_id", "created_at", "expires_at",
               "requested_by__username", "requested_by__id")  # fmt: skip


def approval_request_list(
    *, user, kind: str = "", project_id: int | None = None, status: str = ""
) -> QuerySet[ApprovalRequest]:
    """Requests the user may see (``governance.access``), newest first, filtered."""
    # The list shows what the queue page and the API list need to find a request: the
    # encrypted reasons and the JSON columns are read on the request's own page only.
    queryset = access.queryset_restrict(
        queryset=ApprovalRequest.objects.select_related("requested_by").only(*LIST_FIELDS),
        user=user,
    )
    if kind:
        queryset = queryset.filter(kind=kind)
    if project_id is not None:
        queryset = queryset.filter(project_id=project_id)
    if status:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-created_at", "-id")


def approval_gates(*, request: ApprovalRequest) -> dict[str, list[GateResult]]:
    """The request's gate results by stage: at opening, and at the latest approval attempt
    that reached the quorum (the newest evaluation of each stage only)."""
    stages: dict[str, list[GateResult]] = {}
    for stage in GateResult.Stage.values:
        rows = request.gates.filter(stage=stage)
        latest = rows.order_by("-evaluated_at").values_list("evaluated_at", flat=True).first()
        stages[stage] = list(rows.filter(evaluated_at=latest).order_by("id")) if latest else []
    return stages


def approval_evidence(*, request: ApprovalRequest) -> list[dict[str, Any]]:
    """The review page's evidence sections, each provided by the kind's app: title,
    template and context (a section that fails to build says so instead of hiding)."""
    from .approvals import approval_kind

    try:
        kind = approval_kind(request.kind)
    except LookupError:
        return []
    model = request.subject_type.model_class()
    subject = model._default_manager.filter(pk=request.subject_id).first() if model else None
    if subject is None:
        return []
    sections = []
    for section in kind.evidence:
        try:
            context, error = section.context(subject, request.payload), ""
        except Exception as exc:  # one broken section must not hide the rest
            logger.exception("evidence section %s of request %s", section.key, request.pk)
            context, error = {}, f"This part could not be shown ({type(exc).__name__})."
        sections.append({"key": section.key, "title": section.title,
                         "template": section.template, "context": context, "error": error,
                         "charts": section.charts})  # fmt: skip
    return sections


def approval_reviewer_state(*, request: ApprovalRequest, user) -> dict[str, Any]:
    """What this user may do on the request and, if nothing, why — in plain words."""
    from django.core.exceptions import PermissionDenied

    if request.requested_by_id == user.pk:
        return {
            "can_decide": False,
            "reason": "You asked for this change, so you cannot decide it.",
        }
    if not request.is_open:
        return {
            "can_decide": False,
            "reason": f"This request is {request.get_status_display().lower()}.",
        }
    try:
        access.approval_decider_require(user=user, request=request)
    except PermissionDenied as exc:
        return {"can_decide": False, "reason": str(exc)}
    if request.decisions.filter(reviewer=user).exists():
        return {"can_decide": False, "reason": "You have already decided this request."}
    return {
        "can_decide": True,
        "reason": "",
        "can_override": access.user_in_group(user=user, group=request.override_group),
    }


def notification_list(
    *, user, unread_only: bool = False, limit: int = 20
) -> QuerySet[Notification]:
    """The user's own governance notifications, newest first."""
    queryset = Notification.objects.filter(user=user)
    if unread_only:
        queryset = queryset.filter(read_at__isnull=True)
    return queryset[:limit]


def webhook_subscription_list(*, user):
    """The webhook subscriptions ``user`` may see (admins: all)."""
    return access.queryset_restrict(queryset=WebhookSubscription.objects.all(), user=user)


def webhook_delivery_list(*, user, subscription=None):
    """Deliveries ``user`` may see, newest first, with their event and attempt log."""
    queryset = WebhookDelivery.objects.select_related("event").prefetch_related("log")
    if subscription is not None:
        queryset = queryset.filter(subscription=subscription)
    return access.queryset_restrict(queryset=queryset, user=user).order_by("-id")
