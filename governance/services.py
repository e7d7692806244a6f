"""Governance writes: the audit trail, worker heartbeats, user preferences.

Every state change in Attune is recorded through :func:`audit_event_record`, inside the
same transaction as the change, so a rolled-back change leaves no event and a committed
change always has one.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from rlhf_platform import request_context

from .audit import GENESIS_HASH, event_digest, jsonable
from .models import AuditEvent, UserPreference, WorkerHeartbeat

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
    (``rlhf_platform.request_context``), so services need only say what changed.
    """
    if obj is not None:
        object_type, object_id = _object_ref(obj)
    if actor is None:
        actor = request_context.actor.get()
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    with transaction.atomic():
        _lock_chain_head()
        head = AuditEvent.objects.order_by("-sequence").values("sequence", "hash").first()
        fields = {
            "sequence": (head["sequence"] + 1) if head else 1,
            "timestamp": timezone.now(),
            "actor_id": actor.pk if actor is not None else None,
            "actor_username": actor.get_username() if actor is not None else "",
            "action": action,
            "object_type": object_type,
            "object_id": str(object_id),
            "before": jsonable(before),
            "after": jsonable(after),
            "request_id": request_context.request_id.get(),
            "client_ip": request_context.client_ip.get(),
        }
        prev_hash = head["hash"] if head else GENESIS_HASH
        return AuditEvent.objects.create(
            **fields, prev_hash=prev_hash, hash=event_digest(prev_hash=prev_hash, fields=fields)
        )


def worker_heartbeat_record(*, hostname: str, queues: list[str]) -> WorkerHeartbeat:
    """Upsert a worker's heartbeat (not audited: it is telemetry, not a state change)."""
    now = timezone.now()
    beat, created = WorkerHeartbeat.objects.get_or_create(
        hostname=hostname, defaults={"queues": queues, "last_seen": now, "started_at": now}
    )
    if not created:
        WorkerHeartbeat.objects.filter(pk=beat.pk).update(queues=queues, last_seen=now)
    return beat


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
    before = sorted(user.groups.filter(name__in=list(ROLES)).values_list("name", flat=True))
    user.groups.set(Group.objects.filter(name__in=roles))
    audit_event_record(
        action="user.roles_set", obj=user, before={"roles": before}, after={"roles": sorted(roles)}
    )
    return user
