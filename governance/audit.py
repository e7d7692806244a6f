"""The audit chain's hashing rule, shared by the writer and the verifier."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

GENESIS_HASH = "0" * 64

# The fields that the hash covers, in the canonical payload.
HASHED_FIELDS = (
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
)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace: one text per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def jsonable(value: Any) -> Any:
    """The value as it will read back from a JSON column (dates and decimals as text)."""
    if value is None:
        return None
    return json.loads(canonical_json(value))


def _timestamp_text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_digest(*, prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 (hex) over the previous hash and the canonical JSON of the event's fields."""
    payload = {name: fields.get(name) for name in HASHED_FIELDS}
    payload["timestamp"] = _timestamp_text(payload["timestamp"])
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(canonical_json(payload).encode("utf-8"))
    return digest.hexdigest()
