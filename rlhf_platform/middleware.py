"""Request-id and request-context middleware."""

from __future__ import annotations

import re
import uuid

from . import request_context

# Accept a caller's id only if it is short and plain, so logs and audit rows stay clean.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def client_ip(request) -> str | None:
    """The client's address, for the audit trail and the login lockout."""
    # REMOTE_ADDR only: X-Forwarded-For is caller-controlled unless a trusted proxy sets it,
    # and a deployment behind one should rewrite REMOTE_ADDR at the proxy.
    return request.META.get("REMOTE_ADDR") or None


class RequestContextMiddleware:
    """Give every request an id (``X-Request-ID``, the caller's if valid) and bind the
    id and client IP for the audit service; the id is echoed on the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = rid
        with request_context.bind(request_id_value=rid, ip=client_ip(request)):
            response = self.get_response(request)
        response["X-Request-ID"] = rid
        return response


class RequestUserMiddleware:
    """Bind the authenticated user as the audit actor (after AuthenticationMiddleware).

    DRF authenticates token users later, inside the view; the API base class binds them.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        token = request_context.actor.set(user if user and user.is_authenticated else None)
        try:
            return self.get_response(request)
        finally:
            request_context.actor.reset(token)
