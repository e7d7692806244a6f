"""Label Studio task export rows: ``{"id", "data": {...}, "meta"?}`` or a bare task.

Annotations and predictions are ignored; ``priority``/``gold`` are read from the task or
from ``data``.
"""

from __future__ import annotations

from typing import Any

from .fields import clean_metadata, clean_record_id, kind
from .keyed import keyed_row
from .native import NATIVE_KEYS
from .rows import ParsedRow, error_row

_BARE_TASK_SKIP = NATIVE_KEYS - {"responses"}
_DATA_SKIP = frozenset({"prompt", "priority", "gold"})


def label_studio_row(line: int, task: dict[str, Any], max_responses: int) -> ParsedRow:
    """Map one Label Studio task."""
    errors: list[str] = []
    data = task.get("data")
    if data is None and "prompt" in task:  # bare task, no "data" wrapper
        external_id = clean_record_id(task, errors)
        return keyed_row(
            line,
            task,
            "",
            errors,
            max_responses,
            external_id=external_id,
            metadata=clean_metadata(task.get("metadata"), "metadata", errors),
            priority=task.get("priority"),
            gold=task.get("gold"),
            skip=_BARE_TASK_SKIP,
        )
    external_id = clean_record_id(task, errors)
    if not isinstance(data, dict):
        reason = "missing" if data is None else f"must be an object, got {kind(data)}"
        return error_row(line, f"data: {reason}", external_id)
    if not external_id and not errors:
        external_id = clean_record_id(data, errors, "data.")
    metadata = clean_metadata(task.get("meta"), "meta", errors)
    return keyed_row(
        line,
        data,
        "data.",
        errors,
        max_responses,
        external_id=external_id,
        metadata=metadata,
        priority=task["priority"] if "priority" in task else data.get("priority"),
        gold=task["gold"] if "gold" in task else data.get("gold"),
        skip=_DATA_SKIP,
    )
