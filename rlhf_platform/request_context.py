"""Who is acting, and within which request: read by the audit service.

Context variables (not thread locals) so the values stay correct under ASGI and in
Celery tasks, which set them through :func:`bind`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

request_id: ContextVar[str] = ContextVar("request_id", default="")
client_ip: ContextVar[str | None] = ContextVar("client_ip", default=None)
actor: ContextVar[Any] = ContextVar("actor", default=None)


@contextlib.contextmanager
def bind(*, request_id_value: str = "", ip: str | None = None, user: Any = None) -> Iterator[None]:
    """Set the request context for a block (used by middleware, tasks and commands)."""
    tokens = (request_id.set(request_id_value), client_ip.set(ip), actor.set(user))
    try:
        yield
    finally:
        request_id.reset(tokens[0])
        client_ip.reset(tokens[1])
        actor.reset(tokens[2])
