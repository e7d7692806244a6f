"""Security actions on the audit trail, whichever way they are made.

Role and permission changes, superuser and staff grants, object-permission grants and
revokes, deletion of objects that carry object permissions (projects), user creation,
deactivation, deletion and password changes, logins, failed logins, lockouts, logouts and
API tokens: each becomes one event through ``governance.services.audit_event_record``.
They are caught at the model and signal level (``m2m_changed``, ``pre_save``/``post_save``,
``post_delete``, Django's and axes' auth signals), so the UI, the admin, the API, a
management command and a shell all leave the same trace.  ``governance.apps`` connects
them once, through :func:`connect`.

One event per action:

* services that already record an event for their action (``user_create``,
  ``user_roles_set``, ``project_member_add``…) make their change inside :func:`silenced`;
* an admin form replaces a relation with ``set()``, which Django carries out as a remove
  and an add; the admin wraps ``save_related`` in :func:`m2m_changes_coalesced`, so the
  form's change of, say, a user's groups is one event with the whole before and after;
* rows deleted because their owner is deleted (a project's permission rows, a user's
  token) are part of the owner's deletion event, not events of their own.

Never recorded: passwords, password hashes, token keys (a token appears as its user and
an 8-character fingerprint, a prefix of the SHA-256 of its key).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models import Model, QuerySet
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from guardian.models.models import (
    BaseGenericObjectPermission,
    GroupObjectPermissionBase,
    UserObjectPermissionBase,
)
from rest_framework.authtoken.models import Token

from .services import audit_event_record

_silenced: ContextVar[bool] = ContextVar("security_audit_silenced", default=False)
# Relations changed inside an m2m_changes_coalesced() block, or between a pre_ and a
# post_ signal: (relation action, owner pk) -> (owner, names before the change).
_coalesced: ContextVar[dict | None] = ContextVar("security_audit_coalesced", default=None)
_in_flight: ContextVar[dict | None] = ContextVar("security_audit_in_flight", default=None)

# User fields whose change is a security action, and the events they become.
_USER_FLAGS = {
    "is_superuser": ("user.superuser_grant", "user.superuser_revoke"),
    "is_staff": ("user.staff_grant", "user.staff_revoke"),
    "is_active": ("user.activate", "user.deactivate"),
}
_USER_TRACKED = frozenset({*_USER_FLAGS, "password"})


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Record nothing from these receivers within the block.

    For callers that record the one event of their action themselves (services), and for
    changes that are not actions of anyone (roles applied by ``migrate``, test fixtures).
    """
    token = _silenced.set(True)
    try:
        yield
    finally:
        _silenced.reset(token)


@contextlib.contextmanager
def m2m_changes_coalesced() -> Iterator[None]:
    """Record each relation changed within the block once, when the block ends, with the
    state before its first change and after its last (e.g. an admin form's ``set()``)."""
    pending: dict = {}
    token = _coalesced.set(pending)
    try:
        yield
    finally:
        _coalesced.reset(token)
    # Reached only when the block succeeded: a failed change records nothing.
    _m2m_flush(pending)


# ----------------------------------------------------------------------------------------
# Roles and permissions (many-to-many relations)
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Relation:
    """A security-relevant many-to-many relation and the event its change becomes."""

    action: str
    key: str
    owner: type[Model]
    field: str
    names: Callable[[Model], list[str]]


def _group_names(owner: Model) -> list[str]:
    return sorted(owner.groups.values_list("name", flat=True))


def _permission_names(relation_name: str) -> Callable[[Model], list[str]]:
    def names(owner: Model) -> list[str]:
        rows = getattr(owner, relation_name).values_list("content_type__app_label", "codename")
        return sorted(f"{app_label}.{codename}" for app_label, codename in rows)

    return names


def _relations() -> list[_Relation]:
    user_model = get_user_model()
    return [
        _Relation("user.roles_set", "roles", user_model, "groups", _group_names),
        _Relation(
            "user.permissions_set",
            "permissions",
            user_model,
            "user_permissions",
            _permission_names("user_permissions"),
        ),
        _Relation(
            "group.permissions_set",
            "permissions",
            Group,
            "permissions",
            _permission_names("permissions"),
        ),
    ]


def _owners(relation: _Relation, instance, reverse: bool, pk_set) -> list[Model]:
    """The objects whose relation changes: the instance, or on the reverse side (e.g.
    ``group.user_set.add(...)``) the users named in ``pk_set`` (all members on clear)."""
    if not reverse:
        return [instance]
    manager = relation.owner._default_manager
    if pk_set is None:
        return list(manager.filter(**{relation.field: instance}))
    return list(manager.filter(pk__in=pk_set))


def _m2m_flush(pending: dict) -> None:
    for key in list(pending):
        relation, owner, before = pending.pop(key)
        after = relation.names(owner)
        if after != before:
            audit_event_record(
                action=relation.action,
                obj=owner,
                before={relation.key: before},
                after={relation.key: after},
            )


def _m2m_receiver(relation: _Relation):
    def on_m2m_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
        if _silenced.get():
            return
        coalesced = _coalesced.get()
        if action.startswith("pre_"):
            pending = coalesced
            if pending is None:
                pending = _in_flight.get()
                if pending is None:
                    pending = {}
                    _in_flight.set(pending)
            for owner in _owners(relation, instance, reverse, pk_set):
                key = (relation.action, owner.pk)
                if key not in pending:
                    pending[key] = (relation, owner, relation.names(owner))
        elif action.startswith("post_") and coalesced is None:
            pending = _in_flight.get() or {}
            _m2m_flush({k: pending.pop(k) for k in list(pending) if k[0] == relation.action})

    on_m2m_changed.__name__ = f"on_{relation.action.replace('.', '_')}"
    return on_m2m_changed


# ----------------------------------------------------------------------------------------
# Users
# ----------------------------------------------------------------------------------------


def _user_pre_save(sender, instance, update_fields=None, **kwargs) -> None:
    """Remember the stored flags and hash, to tell what the save changes."""
    instance._security_audit_before = None
    if _silenced.get() or instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and not (set(update_fields) & _USER_TRACKED):
        return  # e.g. last_login on every login: nothing to compare
    instance._security_audit_before = (
        sender._default_manager.filter(pk=instance.pk).values(*_USER_TRACKED).first()
    )


def _password_changed(instance, before: dict, update_fields) -> bool:
    if before["password"] == instance.password:
        return False
    # Django re-hashes a password on login when the hasher's settings changed: it calls
    # set_password, then clears _password and saves only the hash.  Not a change.
    rehash = instance._password is None and update_fields is not None
    return not (rehash and set(update_fields) == {"password"})


def _user_post_save(sender, instance, created, update_fields=None, **kwargs) -> None:
    if _silenced.get():
        return
    if created:
        audit_event_record(
            action="user.create",
            obj=instance,
            after={
                "username": instance.get_username(),
                "is_active": instance.is_active,
                "is_staff": instance.is_staff,
                "is_superuser": instance.is_superuser,
            },
        )
        return
    before = getattr(instance, "_security_audit_before", None)
    instance._security_audit_before = None
    if before is None:
        return
    for field, (granted, withdrawn) in _USER_FLAGS.items():
        value = getattr(instance, field)
        if value != before[field]:
            audit_event_record(
                action=granted if value else withdrawn,
                obj=instance,
                before={field: before[field]},
                after={field: value},
            )
    if _password_changed(instance, before, update_fields):
        audit_event_record(
            action="user.password_change",
            obj=instance,
            after={"usable": instance.has_usable_password()},
        )


def _user_post_delete(sender, instance, **kwargs) -> None:
    if not _silenced.get():
        audit_event_record(
            action="user.delete", obj=instance, before={"username": instance.get_username()}
        )


# ----------------------------------------------------------------------------------------
# Logins
# ----------------------------------------------------------------------------------------


def _on_logged_in(sender, request, user, **kwargs) -> None:
    audit_event_record(action="auth.login", obj=user, actor=user)


def _on_logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:  # logging out without a session is not an action
        audit_event_record(action="auth.logout", obj=user, actor=user)


def _attempted_user(username: str) -> tuple[str, str]:
    user_model = get_user_model()
    pk = (
        user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username})
        .values_list("pk", flat=True)
        .first()
    )
    return user_model._meta.label_lower, "" if pk is None else str(pk)


def _on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    """A failed login, with the username tried (Django has already masked the password,
    and only the username is read)."""
    field = get_user_model().USERNAME_FIELD
    username = str(credentials.get(field) or credentials.get("username") or "")[:150]
    object_type, object_id = _attempted_user(username)
    audit_event_record(
        action="auth.login_failed",
        object_type=object_type,
        object_id=object_id,
        after={"username": username},
    )


def _on_locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    object_type, object_id = _attempted_user(str(username or ""))
    audit_event_record(
        action="auth.lockout",
        object_type=object_type,
        object_id=object_id,
        after={"username": str(username or "")[:150], "ip_address": ip_address},
    )


# ----------------------------------------------------------------------------------------
# API tokens, object permissions, guarded objects
# ----------------------------------------------------------------------------------------


def _deleted_on_its_own(sender, origin) -> bool:
    """Whether a post_delete is the row's own deletion, not a cascade from its owner's."""
    deleted = origin.model if isinstance(origin, QuerySet) else type(origin)
    return (
        issubclass(deleted, Model) and deleted._meta.concrete_model is sender._meta.concrete_model
    )


def token_fingerprint(key: str) -> str:
    """A short, non-reversible name for a token: enough to tell two apart in the trail."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def _token_post_save(sender, instance, created, **kwargs) -> None:
    if created and not _silenced.get():
        audit_event_record(
            action="token.create",
            obj=instance.user,
            after={"fingerprint": token_fingerprint(instance.key)},
        )


def _token_post_delete(sender, instance, origin=None, **kwargs) -> None:
    if not _silenced.get() and _deleted_on_its_own(sender, origin):
        audit_event_record(
            action="token.delete",
            object_type=get_user_model()._meta.label_lower,
            object_id=str(instance.user_id),
            before={"fingerprint": token_fingerprint(instance.key)},
        )


def _permission_target(row) -> tuple[str, str]:
    if isinstance(row, BaseGenericObjectPermission):
        return f"{row.content_type.app_label}.{row.content_type.model}", str(row.object_pk)
    target = row._meta.get_field("content_object").related_model
    return target._meta.label_lower, str(row.content_object_id)


def _permission_grantee(row) -> dict[str, str]:
    if isinstance(row, UserObjectPermissionBase):
        return {"user": row.user.get_username()}
    return {"group": row.group.name}


def _object_permission_record(row, *, granted: bool) -> None:
    """One grant or revoke, on the object it concerns, naming grantee and permission."""
    object_type, object_id = _permission_target(row)
    permission = row.permission
    payload = {
        **_permission_grantee(row),
        "permission": f"{permission.content_type.app_label}.{permission.codename}",
    }
    audit_event_record(
        action="object_permission.grant" if granted else "object_permission.revoke",
        object_type=object_type,
        object_id=object_id,
        **({"after": payload} if granted else {"before": payload}),
    )


def _object_permission_post_save(sender, instance, created, **kwargs) -> None:
    if created and not _silenced.get():
        _object_permission_record(instance, granted=True)


def _object_permission_post_delete(sender, instance, origin=None, **kwargs) -> None:
    if not _silenced.get() and _deleted_on_its_own(sender, origin):
        _object_permission_record(instance, granted=False)


def _guarded_object_post_delete(sender, instance, **kwargs) -> None:
    """An object that carries object permissions (e.g. a project) was deleted."""
    if not _silenced.get():
        audit_event_record(
            action=f"{sender._meta.model_name}.delete", obj=instance, before={"name": str(instance)}
        )


# ----------------------------------------------------------------------------------------


def _models(predicate: Callable[[type[Model]], bool]) -> list[type[Model]]:
    """Concrete and proxy models (signals are sent with the proxy class as sender)."""
    return [model for model in apps.get_models() if predicate(model)]


def connect() -> None:
    """Connect every receiver (called once, from ``GovernanceConfig.ready``)."""
    uid = "governance.security_audit"
    for relation in _relations():
        through = getattr(relation.owner, relation.field).through
        m2m_changed.connect(
            _m2m_receiver(relation),
            sender=through,
            weak=False,
            dispatch_uid=f"{uid}.{relation.action}",
        )
    user_model = get_user_model()
    for model in _models(lambda m: issubclass(m, user_model)):
        pre_save.connect(_user_pre_save, sender=model, dispatch_uid=f"{uid}.user_pre.{model}")
        post_save.connect(_user_post_save, sender=model, dispatch_uid=f"{uid}.user_post.{model}")
        post_delete.connect(_user_post_delete, sender=model, dispatch_uid=f"{uid}.user_del.{model}")
    for model in _models(lambda m: issubclass(m, Token)):
        post_save.connect(_token_post_save, sender=model, dispatch_uid=f"{uid}.token.{model}")
        post_delete.connect(_token_post_delete, sender=model, dispatch_uid=f"{uid}.tdel.{model}")
    permission_bases = (UserObjectPermissionBase, GroupObjectPermissionBase)
    for model in _models(lambda m: issubclass(m, permission_bases) and not m._meta.abstract):
        post_save.connect(
            _object_permission_post_save, sender=model, dispatch_uid=f"{uid}.perm.{model}"
        )
        post_delete.connect(
            _object_permission_post_delete, sender=model, dispatch_uid=f"{uid}.pdel.{model}"
        )
    for model in _models(lambda m: getattr(m, "access_object_permissions", False)):
        post_delete.connect(
            _guarded_object_post_delete, sender=model, dispatch_uid=f"{uid}.guarded.{model}"
        )
    user_logged_in.connect(_on_logged_in, dispatch_uid=f"{uid}.login")
    user_logged_out.connect(_on_logged_out, dispatch_uid=f"{uid}.logout")
    user_login_failed.connect(_on_login_failed, dispatch_uid=f"{uid}.login_failed")
    if apps.is_installed("axes"):
        from axes.signals import user_locked_out

        user_locked_out.connect(_on_locked_out, dispatch_uid=f"{uid}.lockout")
