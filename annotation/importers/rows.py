"""The normalised row every format produces, and the two ways of building one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any


@dataclass(slots=True)
class ParsedRow:
    """One record of an uploaded file, normalised.

    ``responses`` items are ``{"text": str, "model": str | None, "metadata": dict}``.
    When ``error`` is set the row must not be imported; the other fields are then best effort.
    """

    line: int
    external_id: str
    prompt: str
    responses: list[dict[str, Any]]
    metadata: dict[str, Any] = field(default_factory=dict)
    priority: float = 0.0
    gold: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the row has no error."""
        return self.error is None


def content_id(prompt: str, responses: Iterable[str]) -> str:
    """Deterministic external id of an item without one: 16 hex digits of a SHA-256.

    Equal to ``sha256(json.dumps({"prompt": prompt, "responses": list(responses)},
    sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]`` (compact, key-sorted
    JSON with the default ASCII escaping).
    """
    # Built by hand: same bytes, without json.dumps' per-call encoder set-up.
    payload = "".join(
        (
            '{"prompt":',
            _json_string(prompt),
            ',"responses":[',
            ",".join(map(_json_string, responses)),
            "]}",
        )
    )
    return hashlib.sha256(payload.encode("ascii")).hexdigest()[:16]


def error_row(line: int, message: str, external_id: str = "") -> ParsedRow:
    """A row that failed as a whole (unreadable record, bad header, ...)."""
    return ParsedRow(line, external_id, "", [], {}, 0.0, None, message)


def finished_row(
    line: int,
    errors: list[str],
    external_id: str,
    prompt: str,
    responses: list[dict[str, Any]],
    metadata: dict[str, Any],
    priority: float,
    gold: dict[str, Any] | None,
) -> ParsedRow:
    """The row a format mapper ends with: an error row if any field failed, else a good row.

    A good row without an explicit id gets :func:`content_id`, so re-imports give equal ids.
    """
    if errors:
        return ParsedRow(line, external_id, "", [], {}, 0.0, None, "; ".join(errors))
    if not external_id:
        external_id = content_id(prompt, [r["text"] for r in responses])
    return ParsedRow(line, external_id, prompt, responses, metadata, priority, gold, None)
