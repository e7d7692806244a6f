"""Governance writes: the audit trail, worker heartbeats, user preferences.

Every state change in Attune is recorded through :func:`audit_event_record`, inside the
same transaction as the change, so a rolled-back change leaves no event and a committed
change always has one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from rlhf_platform import request_context

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
from .models import AuditAnchor, AuditEvent, UserPreference, WorkerHeartbeat

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
        return AuditEvent.objects.create(
            **stored, timestamp=timestamp, hash=mac_hex(keys[key_id], text), canonical=text
        )


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
