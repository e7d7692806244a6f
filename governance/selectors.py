"""Governance reads: audit-chain verification and system health."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .audit import GENESIS_HASH, event_digest
from .models import AuditEvent, UserPreference, WorkerHeartbeat


@dataclasses.dataclass(frozen=True)
class ChainBreak:
    """Where and why the audit chain first fails to verify."""

    sequence: int
    event_id: int
    reason: str


@dataclasses.dataclass(frozen=True)
class ChainReport:
    """The result of checking the whole audit chain."""

    checked: int
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


_VERIFY_FIELDS = (
    "id",
    "sequence",
    "timestamp",
    "actor_id",
    "actor_username",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "request_id",
    "client_ip",
    "prev_hash",
    "hash",
)


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


def audit_chain_verify(*, batch_size: int = 5000) -> ChainReport:
    """Recompute every event's hash and link; report the first broken event.

    An edited row fails its own hash; a deleted row leaves a gap in the sequence and a
    ``prev_hash`` that no longer matches; an inserted row has a hash or link that does not
    fit its neighbours.
    """
    expected_prev = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    for row in _events_in_order(batch_size):
        checked += 1
        reason = None
        if row["sequence"] != expected_sequence:
            reason = (
                f"sequence {row['sequence']} follows {expected_sequence - 1}: "
                f"event(s) {expected_sequence}..{row['sequence'] - 1} missing"
            )
        elif row["prev_hash"] != expected_prev:
            reason = "prev_hash does not match the previous event's hash"
        elif event_digest(prev_hash=row["prev_hash"], fields=row) != row["hash"]:
            reason = "hash does not match the event's content (edited or forged)"
        if reason is not None:
            return ChainReport(checked, ChainBreak(row["sequence"], row["id"], reason))
        expected_prev = row["hash"]
        expected_sequence += 1
    return ChainReport(checked, None)


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


def _workers_health(now: dt.datetime) -> ComponentHealth:
    try:
        cutoff = now - dt.timedelta(seconds=settings.WORKER_HEARTBEAT_MAX_AGE)
        beats = list(WorkerHeartbeat.objects.filter(last_seen__gte=cutoff).order_by("hostname"))
    except Exception as exc:
        return ComponentHealth(False, {"error": str(exc), "alive": []})
    alive = [
        {
            "hostname": beat.hostname,
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
