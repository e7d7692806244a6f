"""Argilla v2 record rows: ``{"id", "external_id"?, "fields": {...}, "metadata"?}``.

``external_id`` wins over ``id``; ``priority`` and ``gold`` are read from the record or popped
from its ``metadata``. Argilla's own ``responses``/``suggestions`` (annotations) are ignored.
"""

from __future__ import annotations

from typing import Any

from .fields import clean_metadata, clean_record_id, kind
from .keyed import keyed_row
from .rows import ParsedRow, error_row

_FIELDS_SKIP = frozenset({"prompt"})


def argilla_row(line: int, record: dict[str, Any], max_responses: int) -> ParsedRow:
    """Map one Argilla record."""
    errors: list[str] = []
    external_id = clean_record_id(record, errors)
    fields = record.get("fields")
    if not isinstance(fields, dict):
        reason = "missing" if fields is None else f"must be an object, got {kind(fields)}"
        return error_row(line, f"fields: {reason}", external_id)
    metadata = clean_metadata(record.get("metadata"), "metadata", errors)
    priority = record["priority"] if "priority" in record else metadata.pop("priority", None)
    gold = record["gold"] if "gold" in record else metadata.pop("gold", None)
    return keyed_row(
        line,
        fields,
        "fields.",
        errors,
        max_responses,
        external_id=external_id,
        metadata=metadata,
        priority=priority,
        gold=gold,
        skip=_FIELDS_SKIP,
    )
