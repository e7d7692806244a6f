"""Attune's native JSONL row: ``{"external_id"?, "prompt", "responses", "metadata"?,
"priority"?, "gold"?}`` (``id`` is accepted for ``external_id``; other keys go to metadata)."""

from __future__ import annotations

from typing import Any

from .fields import (
    check_json,
    clean_gold,
    clean_metadata,
    clean_priority,
    clean_record_id,
    clean_responses,
    clean_text,
)
from .limits import MAX_PROMPT_CHARS
from .rows import ParsedRow, finished_row
from .trl import trl_row

NATIVE_KEYS = frozenset(
    {"external_id", "id", "prompt", "responses", "metadata", "priority", "gold"}
)


def native_row(line: int, record: dict[str, Any], max_responses: int) -> ParsedRow:
    """Map one native record; a record with ``chosen``/``rejected`` and no ``responses`` is TRL."""
    if "responses" not in record and ("chosen" in record or "rejected" in record):
        return trl_row(line, record, max_responses)
    errors: list[str] = []
    external_id = clean_record_id(record, errors)
    prompt = clean_text(record.get("prompt"), "prompt", errors, MAX_PROMPT_CHARS)
    responses = clean_responses(record.get("responses"), "responses", errors, max_responses)
    metadata = clean_metadata(record.get("metadata"), "metadata", errors)
    for key, val in record.items():
        if key not in NATIVE_KEYS:
            metadata.setdefault(key, val)
    check_json(metadata, "metadata", errors)
    priority = clean_priority(record.get("priority"), "priority", errors)
    gold = clean_gold(record.get("gold"), len(responses), errors) if not errors else None
    return finished_row(line, errors, external_id, prompt, responses, metadata, priority, gold)
