"""Outbound webhooks: the event catalogue, the audit-action registry, signing and the
guarded HTTP client.  No database writes here (those are in ``governance.services``).

Events come from the one audit path: ``audit_event_record`` hands every event to
``webhook_event_dispatch``, which looks its action up in the registry below.  Apps map
their audit actions to event types in their ``AppConfig.ready()`` with
:func:`webhook_event_register` (governance imports no other app), giving a resolver for
the event's project and a builder for its ``data`` — an explicit choice of fields, so a
free-text reason or anything sensitive reaches a receiver only if someone chose it.

A body is signed with HMAC-SHA256 over ``"{timestamp}.{raw body}"`` under the
subscription's secret and sent as ``Attune-Signature: t=<unix>,v1=<hex>``; receivers check
it with :func:`signature_verify` (the README shows the same code).

Outbound URLs may not reach internal services (SSRF): the host is resolved and every
address must be global unicast, unless the subscription was allowed private addresses by
an admin or the address is in ``settings.WEBHOOK_ALLOWED_NETWORKS``.  The check runs when
a URL is saved and again on the address actually connected to at delivery time (a DNS
answer that changed since — DNS rebinding — is refused); redirects are not followed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings

# -- The event catalogue ---------------------------------------------------------------------

EVENT_TYPES: dict[str, str] = {
    "annotation.project_completed": "Every item of an annotation project has its N annotations",
    "dataset.snapshot_created": "A dataset snapshot (export) was created",
    "job.finished": "An import or training job finished (succeeded or was cancelled)",
    "job.failed": "An import or training job failed",
    "alert.fired": "A monitoring alert fired",
    "alert.resolved": "A monitoring alert resolved",
    "approval.requested": "An approval was requested",
    "approval.decided": "An approval request was decided",
    "alias.moved": "A model alias was set, moved or removed",
}

SIGNATURE_HEADER = "Attune-Signature"
EVENT_HEADER = "Attune-Event"
DELIVERY_HEADER = "Attune-Delivery"
# Receivers refuse signatures older (or newer) than this: a captured request cannot be
# replayed later.
REPLAY_WINDOW_SECONDS = 300
RESPONSE_EXCERPT_BYTES = 1024


@dataclasses.dataclass(frozen=True)
class EventMapping:
    """How one audit action becomes a webhook event."""

    action: str
    event_type: str
    project: Callable[[Any], int | None]
    data: Callable[[Any], dict[str, Any]]


_MAPPINGS: dict[str, EventMapping] = {}
_PROJECT_NAMERS: list[Callable[[int], str | None]] = []


def _no_project(event) -> None:
    return None


def _reference(event) -> dict[str, Any]:
    return {"object_type": event.object_type, "object_id": event.object_id}


def webhook_event_register(
    *,
    action: str,
    event_type: str,
    project: Callable[[Any], int | None] = _no_project,
    data: Callable[[Any], dict[str, Any]] = _reference,
) -> None:
    """Map the audit ``action`` to ``event_type``; ``project(event)`` and ``data(event)``
    receive the ``AuditEvent`` (inside its transaction) and return the project id (or
    None) and the body's ``data`` (JSON values only, nothing secret)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"webhooks: unknown event type {event_type!r}")
    known = _MAPPINGS.get(action)
    if known is not None and known.event_type != event_type:
        raise ValueError(f"webhooks: {action!r} is already mapped to {known.event_type!r}")
    _MAPPINGS[action] = EventMapping(action, event_type, project, data)


def webhook_event_mapping(*, action: str) -> EventMapping | None:
    """The mapping of an audit action, or None (most actions are no webhook event)."""
    return _MAPPINGS.get(action)


def webhook_event_mappings() -> dict[str, EventMapping]:
    """Every registered mapping, by audit action."""
    return dict(_MAPPINGS)


def webhook_project_namer_register(namer: Callable[[int], str | None]) -> None:
    """Register ``namer(project_id)`` → the project's name or None (annotation does), so
    subscriptions can be validated and shown by name without importing that app."""
    if namer not in _PROJECT_NAMERS:
        _PROJECT_NAMERS.append(namer)


def webhook_project_name(*, project_id: int) -> str | None:
    """The name of a project, or None when no registered namer knows it."""
    for namer in _PROJECT_NAMERS:
        name = namer(project_id)
        if name is not None:
            return name
    return None


# -- Signing --------------------------------------------------------------------------------


def signature_header(*, secret: str, body: bytes, timestamp: int) -> str:
    """The ``Attune-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def signature_verify(
    *, secret: str, header: str, body: bytes, tolerance: int = REPLAY_WINDOW_SECONDS
) -> bool:
    """Whether ``header`` (Attune-Signature) signs the raw ``body`` under ``secret`` and
    is at most ``tolerance`` seconds old.  The README's receiver recipe is this code."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts.get("v1", ""))


# -- Outbound addresses (SSRF) --------------------------------------------------------------


class UnsafeDestination(ValueError):
    """A webhook URL or the address it resolves to may not be reached."""


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in settings.WEBHOOK_ALLOWED_NETWORKS]


def address_refusal(address: str) -> str:
    """Why ``address`` may not be reached ("" when it is a global unicast address).

    An IPv4-mapped (``::ffff:127.0.0.1``), IPv4-compatible, 6to4 or NAT64 address is
    judged by the IPv4 address inside it.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and ip in ipaddress.ip_network("64:ff9b::/96"):
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is None and ip in ipaddress.ip_network("::/96") and int(ip) > 1:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)  # IPv4-compatible (deprecated)
        if inner is not None:
            reason = address_refusal(str(inner))
            return f"{reason} (inside {ip})" if reason else ""
    for label, flag in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return f"{ip} is a {label} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return ""


def address_check(address: str, *, allow_private: bool) -> None:
    """Raise UnsafeDestination unless ``address`` may be reached."""
    reason = address_refusal(address)
    if not reason or allow_private:
        return
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if any(ip in network for network in _allowed_networks()):
        return
    raise UnsafeDestination(f"{reason}; only an admin may allow it")


def host_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeDestination(f"{host} does not resolve ({exc})") from exc
    return list(dict.fromkeys(info[4][0] for info in infos))


def url_validate(url: str, *, allow_private: bool = False, resolve: bool = True) -> str:
    """The URL, if it may be a webhook's destination; else UnsafeDestination naming why.

    http or https only, no credentials in it, and (``resolve``) every address its host
    resolves to passes :func:`address_check`.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestination(f"not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeDestination("only http and https URLs are allowed")
    if not parts.hostname:
        raise UnsafeDestination("the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestination(
            "credentials in the URL are not allowed (receivers check the signature instead)"
        )
    if resolve:
        port = port or (443 if parts.scheme == "https" else 80)
        for address in host_resolve(parts.hostname, port):
            address_check(address, allow_private=allow_private)
    return url


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves the host itself, checks the address, and connects to *that* address, so
    the address judged is the address used (no second DNS lookup to rebind).  TLS still
    verifies the certificate against the host name (httpcore passes it as SNI)."""

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = host_resolve(host, port)
        for address in addresses:
            address_check(address, allow_private=self._allow_private)
        return self._inner.connect_tcp(
            addresses[0],
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise UnsafeDestination("unix sockets are not webhook destinations")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool on the guarded network backend (httpx
    takes no backend argument, so the pool it built is replaced by an equivalent one)."""

    def __init__(self, *, allow_private: bool) -> None:
        # No proxy from the environment: it would hide the address connected to.
        super().__init__(trust_env=False)
        old = self._pool
        self._pool = httpcore.ConnectionPool(
            ssl_context=old._ssl_context,
            max_connections=10,
            max_keepalive_connections=10,
            keepalive_expiry=30.0,
            network_backend=_GuardedBackend(allow_private=allow_private),
        )
        old.close()


_clients: dict[bool, httpx.Client] = {}


def _client(*, allow_private: bool) -> httpx.Client:
    """One client per policy and process: connections are kept alive between deliveries."""
    client = _clients.get(allow_private)
    if client is None:
        client = _clients[allow_private] = httpx.Client(
            transport=_GuardedTransport(allow_private=allow_private),
            follow_redirects=False,
            trust_env=False,
        )
    return client


@dataclasses.dataclass(frozen=True)
class PostResult:
    """What one HTTP attempt gave."""

    status_code: int | None
    duration_ms: int
    error: str
    response_excerpt: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def webhook_post(
    *, url: str, body: bytes, headers: dict[str, str], allow_private: bool
) -> PostResult:
    """POST ``body`` once; never raises for what the network or the receiver did.

    A 3xx is a failure (redirects are not followed: they could point inside).  Only the
    first ``RESPONSE_EXCERPT_BYTES`` of the answer are read.
    """
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    started = time.monotonic()
    status, error, excerpt = None, "", b""
    try:
        url_validate(url, allow_private=allow_private, resolve=False)
        request = _client(allow_private=allow_private).build_request(
            "POST", url, content=body, headers=headers, timeout=httpx.Timeout(timeout)
        )
        response = _client(allow_private=allow_private).send(request, stream=True)
        try:
            status = response.status_code
            for chunk in response.iter_raw():
                excerpt += chunk
                if len(excerpt) >= RESPONSE_EXCERPT_BYTES:
                    break
        finally:
            response.close()
        if not 200 <= status < 300:
            redirect = " (redirects are not followed)" if 300 <= status < 400 else ""
            error = f"HTTP {status}{redirect}"
    except UnsafeDestination as exc:
        error = f"refused: {exc}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    duration_ms = int((time.monotonic() - started) * 1000)
    text = excerpt[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace")
    return PostResult(status, duration_ms, error[:1000], text)


# -- Governance's own events ------------------------------------------------------------------

# What an approval event may carry from its audit payload: identifiers and states, never
# the rationale (free text, possibly sensitive).
# What the approval audit events carry that a receiver may see (never rationales).
_APPROVAL_FIELDS = ("kind", "title", "status", "verdict", "approvals", "quorum", "payload")


def _approval_project(event) -> int | None:
    """``project_id`` from the event (``approval.requested``), else from its request row
    (``approval.decided`` does not repeat it)."""
    from .models import ApprovalRequest

    for payload in (event.after, event.before):
        if isinstance(payload, dict):
            for key in ("project_id", "project"):
                if isinstance(payload.get(key), int):
                    return payload[key]
    if event.object_type == "governance.approvalrequest" and str(event.object_id).isdigit():
        return (
            ApprovalRequest.objects.filter(pk=int(event.object_id))
            .values_list("project_id", flat=True)
            .first()
        )
    return None


def _approval_data(event) -> dict[str, Any]:
    after = event.after if isinstance(event.after, dict) else {}
    return {
        "request": event.object_id,
        "object_type": event.object_type,
        **{key: after[key] for key in _APPROVAL_FIELDS if key in after},
    }


def approval_events_register() -> None:
    """Map the approval workflow's audit actions (``approval.requested``,
    ``approval.decided``) to their event types; the project comes from the payload."""
    for action in ("approval.requested", "approval.decided"):
        webhook_event_register(
            action=action, event_type=action, project=_approval_project, data=_approval_data
        )
