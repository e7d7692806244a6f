"""The API permission class: every decision delegated to ``governance.access``.

Kept apart from ``rlhf_platform.api`` because DRF imports it while building ``APIView``.
"""

from rest_framework import permissions

from governance import access


class RolePermission(permissions.BasePermission):
    """Authenticated users only; the rest is decided by ``governance.access``.

    Reads are filtered by the viewset's restricted queryset (an object outside it is a
    404, never a 403 that would confirm it exists); writes on an object are checked here.
    """

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        model = getattr(getattr(view, "queryset", None), "model", None)
        if model is None:
            return True
        action = view.access_action()
        if action == "add":
            return access.user_can_add(user=request.user, model=model)
        if action == "view":
            return access.model_accessible(user=request.user, model=model, action="view")
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        action = view.access_action()
        return access.user_can(user=request.user, action=action, obj=obj)
