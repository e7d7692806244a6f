"""Shared API base classes: permission-restricted viewsets, pagination, error shape.

Apps declare ``queryset``, ``serializer_class`` and ``filterset_class``; the base viewset
restricts every queryset and checks every write through ``governance.access``.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, permissions, throttling, viewsets
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from governance import access
from rlhf_platform import request_context
from rlhf_platform.cache import ThrottleCache
from rlhf_platform.errors import Conflict


class ConflictError(exceptions.APIException):
    status_code = 409
    default_code = "conflict"
    default_detail = "The request conflicts with the current state."


class ClientAddressThrottle(throttling.ScopedRateThrottle):
    """The view's ``throttle_scope`` rate, counted per client address even for a caller
    that is logged in: for endpoints that take credentials, where who the caller claims
    to be proves nothing yet.  Counts survive a Redis outage (``ThrottleCache``)."""

    cache = ThrottleCache()

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


# DRF action -> the access action it needs.  Viewsets extend this for custom actions.
ACTION_PERMISSIONS = {
    "list": "view",
    "retrieve": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}


class RestrictedViewSetMixin:
    """Restricts ``get_queryset`` to what the user may see, for every viewset."""

    #: custom actions -> access action, or one per HTTP method:
    #: {"items": {"GET": "view", "POST": "change"}}
    action_permissions: dict[str, str | dict[str, str]] = {}

    def access_action(self) -> str:
        name = getattr(self, "action", None) or ""
        if name in self.action_permissions:
            rule = self.action_permissions[name]
            return rule[self.request.method] if isinstance(rule, dict) else rule
        if name in ACTION_PERMISSIONS:
            return ACTION_PERMISSIONS[name]
        return "view" if self.request.method in permissions.SAFE_METHODS else "change"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Token-authenticated users are known only now; bind them as the audit actor.
        if request.user and request.user.is_authenticated:
            request_context.actor.set(request.user)

    def get_object(self):
        """The object named in the URL, if the user may view it (else 404), checked for the
        action's permission (else 403).  Decided on the one row by ``governance.access``."""
        lookup_url_kwarg = self.lookup_url_kwarg or self.lookup_field
        obj = access.object_get(
            queryset=self.filter_queryset(super().get_queryset()),
            user=self.request.user,
            action="view",
            **{self.lookup_field: self.kwargs[lookup_url_kwarg]},
        )
        if obj is None:
            raise Http404
        self.check_object_permissions(self.request, obj)
        return obj

    def get_queryset(self):
        queryset = super().get_queryset()
        # Reads are restricted to viewable rows; writes look the object up among the
        # viewable rows too, so an invisible object is a 404 and a visible one that may
        # not be changed is a 403 (has_object_permission).
        return access.queryset_restrict(queryset=queryset, user=self.request.user, action="view")


class RestrictedModelViewSet(RestrictedViewSetMixin, viewsets.ModelViewSet):
    """A full CRUD viewset whose every query and write is permission-checked."""


class RestrictedReadOnlyViewSet(RestrictedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """A list/retrieve viewset restricted to what the user may see."""


def _field_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """Flatten DRF's nested error detail into {"field.sub": ["reason", ...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_field_errors(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                out.update(_field_errors(item, f"{prefix}[{index}]" if prefix else f"[{index}]"))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def exception_handler(exc, context):
    """Every API error as ``{"error": {"status", "code", "message", "fields"}}``."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, Conflict):
        field, _, reason = str(exc).partition(": ")
        conflict = ConflictError(str(exc))
        response = drf_exception_handler(conflict, context)
        return _error_response(response, conflict, context, {field: [reason]} if reason else {})
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    return _error_response(response, exc, context)


def _error_response(response, exc, context, fields: dict | None = None) -> Response:
    if isinstance(exc, exceptions.ValidationError):
        fields = _field_errors(exc.detail)
        message = "; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items())
        code = "invalid"
    else:
        fields = fields or {}
        message = str(getattr(exc, "detail", exc))
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        code = codes if isinstance(codes, str) else "error"
    body = error_body(
        status=response.status_code,
        code=code,
        message=message,
        fields=fields,
        request=context.get("request"),
    )
    return Response(body, status=response.status_code, headers=_copy_headers(response))


def error_body(
    *, status: int, code: str, message: str, fields: dict | None = None, request=None, **extra
) -> dict:
    """The one API error shape (``extra`` adds keys beside the standard ones)."""
    return {
        "error": {
            "status": status,
            "code": code,
            "message": message,
            "fields": fields or {},
            "request_id": getattr(request, "request_id", "") if request else "",
            **extra,
        }
    }


def _copy_headers(response) -> dict[str, str]:
    return {k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After", "Allow")}
