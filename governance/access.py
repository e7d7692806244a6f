"""The one place where access is decided, for every queryset and every write.

Rules, in order:

1. Anonymous and inactive users get nothing; superusers get everything.
2. A *model permission* held through a role (e.g. ``governance.view_auditevent`` for the
   ethics committee) grants the action on every row of the model.
3. Otherwise, for models that declare ``access_object_permissions = True``, a django-guardian
   *object permission* grants the action on that one row.
4. Models that live inside another object declare ``access_parent = "<field>"`` (e.g. an
   item inside a project): the action is granted where it is granted on the parent, with
   ``view`` mapping to the parent's ``access_parent_view_action`` (default ``view``) and
   every write to ``access_parent_write_action`` (default ``change``).  Rows that carry
   more than their parent shows — a dataset snapshot holds every annotator's answers and
   the gold answers — declare a stronger view action (``export``), so reading the row and
   downloading its file need that permission everywhere, not just where a view checks it.

The API base viewset (``rlhf_platform.api``) and the HTML view mixin
(``rlhf_platform.views.RestrictedViewMixin``) call only these functions, so apps declare
their rules on the model and never filter by user by hand.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from guardian.core import ObjectPermissionChecker
from guardian.shortcuts import get_objects_for_user

ACTIONS = ("view", "add", "change", "delete")


def permission_name(model: type[Model], action: str) -> str:
    """``app_label.action_modelname`` for a model and an action."""
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def _is_privileged(user) -> bool | None:
    """True for superusers, False for users who get nothing, None when rules decide."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return None


def _parent(model: type[Model]) -> tuple[str, type[Model]] | None:
    field_name = getattr(model, "access_parent", None)
    if not field_name:
        return None
    return field_name, model._meta.get_field(field_name).related_model


def _parent_action(model: type[Model], action: str) -> str:
    """The parent's action that grants ``action`` on a child row of ``model``."""
    if action == "view":
        return getattr(model, "access_parent_view_action", "view")
    return getattr(model, "access_parent_write_action", "change")


def queryset_restrict(*, queryset: QuerySet, user, action: str = "view") -> QuerySet:
    """The rows of ``queryset`` on which ``user`` may perform ``action``."""
    privileged = _is_privileged(user)
    if privileged is not None:
        return queryset if privileged else queryset.none()
    model = queryset.model
    if user.has_perm(permission_name(model, action)):
        return queryset
    parent = _parent(model)
    if parent is not None:
        field_name, parent_model = parent
        parents = queryset_restrict(
            queryset=parent_model._default_manager.all(),
            user=user,
            action=_parent_action(model, action),
        )
        return queryset.filter(**{f"{field_name}__in": parents.values("pk")})
    if getattr(model, "access_object_permissions", False):
        return get_objects_for_user(
            user, permission_name(model, action), klass=queryset, accept_global_perms=False
        )
    return queryset.none()


def model_accessible(*, user, model: type[Model], action: str = "view") -> bool:
    """Whether ``user`` may perform ``action`` on at least some rows of ``model`` in
    principle (a model permission, or a model whose rows carry their own permissions).
    Used to answer 403 rather than an empty list when a role has no business there."""
    privileged = _is_privileged(user)
    if privileged is not None:
        return privileged
    if user.has_perm(permission_name(model, action)):
        return True
    return _parent(model) is not None or getattr(model, "access_object_permissions", False)


def user_can(*, user, action: str, obj: Model) -> bool:
    """Whether ``user`` may perform ``action`` on the object ``obj``."""
    privileged = _is_privileged(user)
    if privileged is not None:
        return privileged
    model = type(obj)
    perm = permission_name(model, action)
    if user.has_perm(perm):
        return True
    parent = _parent(model)
    if parent is not None:
        parent_obj = getattr(obj, parent[0])
        return user_can(user=user, action=_parent_action(model, action), obj=parent_obj)
    if getattr(model, "access_object_permissions", False):
        return perm.split(".", 1)[1] in _object_permissions(user, obj)
    return False


def _object_permissions(user, obj: Model) -> set[str]:
    """The user's object permissions on ``obj`` (codenames), cached on the user object —
    as Django's ModelBackend caches model permissions — so that checking several actions
    on one object in a request costs one lookup.  ``permissions_cache_clear`` forgets."""
    checker = user.__dict__.get("_attune_object_checker")
    if checker is None:
        checker = user.__dict__["_attune_object_checker"] = ObjectPermissionChecker(user)
    return set(checker.get_perms(obj))


def permissions_cache_clear(*, user) -> None:
    """Forget the permissions cached on this user object (after granting or revoking)."""
    for attr in ("_attune_object_checker", "_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(attr, None)


def object_get(*, queryset: QuerySet, user, action: str = "view", **lookup) -> Model | None:
    """One object by ``lookup`` if ``user`` may perform ``action`` on it, else None.

    The same decision as ``queryset_restrict``, made on the one row instead of as a
    filter over all rows: cheaper for detail pages and API routes.
    """
    try:
        obj = queryset.filter(**lookup).first()
    except (TypeError, ValueError, ValidationError):  # a malformed id names nothing
        return None
    if obj is None or not user_can(user=user, action=action, obj=obj):
        return None
    return obj


def user_can_add(*, user, model: type[Model], parent: Model | None = None) -> bool:
    """Whether ``user`` may create a ``model`` row (inside ``parent`` for child models)."""
    privileged = _is_privileged(user)
    if privileged is not None:
        return privileged
    if user.has_perm(permission_name(model, "add")):
        return True
    if parent is not None and _parent(model) is not None:
        return user_can(user=user, action=_parent_action(model, "add"), obj=parent)
    return False


def require(*, user, action: str, obj: Model) -> None:
    """Raise PermissionDenied unless ``user`` may perform ``action`` on ``obj``."""
    if not user_can(user=user, action=action, obj=obj):
        raise PermissionDenied(f"You may not {action} this {obj._meta.verbose_name}.")


# -- Approvals: who may decide a request ----------------------------------------------------


def user_in_group(*, user, group: str) -> bool:
    """Whether an active user holds the role (Django group) ``group``."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.groups.filter(name=group).exists()


def approval_reviewer_eligible(*, user, request, project) -> bool:
    """Whether ``user`` may decide ``request`` under the policy copied onto it: a member of
    one of its reviewer groups (the ethics committee by default), or — when the policy says
    so — a reviewer of the subject's ``project`` (its ``review`` permission).  Admins
    (superusers) may always review.  The requester is refused elsewhere, whatever this says."""
    privileged = _is_privileged(user)
    if privileged is not None:
        return privileged
    if request.reviewer_groups and user.groups.filter(name__in=request.reviewer_groups).exists():
        return True
    if request.project_reviewers and project is not None:
        return user_can(user=user, action="review", obj=project)
    return False


def approval_decider_require(*, user, request) -> None:
    """Raise PermissionDenied unless ``user`` may decide the approval ``request``: never
    its requester, and only a reviewer its policy names (:func:`approval_reviewer_eligible`,
    with the subject's project as the kind's app finds it)."""
    from .approvals import approval_kind

    if user.pk == request.requested_by_id:
        raise PermissionDenied("The requester may not decide their own request.")
    try:
        kind = approval_kind(request.kind)
    except LookupError as exc:
        raise PermissionDenied("This kind of request can no longer be decided.") from exc
    model = request.subject_type.model_class()
    subject = model._default_manager.filter(pk=request.subject_id).first() if model else None
    project = kind.project_of(subject) if subject is not None else None
    if not approval_reviewer_eligible(user=user, request=request, project=project):
        raise PermissionDenied("You are not one of this request's reviewers.")
