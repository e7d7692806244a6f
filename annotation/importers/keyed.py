"""Rows whose prompt and responses are keys of one JSON object.

Shared by Label Studio (the task's ``data``) and Argilla (the record's ``fields``): the
responses are a ``responses`` list, numbered keys (``answer1``/``response_a``/``completion1``...
with ``model1``... for their models), or ``chosen``/``rejected``; other keys become metadata.
"""

from __future__ import annotations

import re
from typing import Any

from .fields import (
    check_count,
    check_json,
    clean_gold,
    clean_model,
    clean_priority,
    clean_response,
    clean_responses,
    clean_text,
    consecutive,
    letter_index,
)
from .limits import MAX_PROMPT_CHARS
from .rows import ParsedRow, finished_row

_NUMBERED_KEY = re.compile(r"(response|answer|completion|model)_?(\d{1,2}|[a-j])", re.IGNORECASE)
_RESPONSE_WORDS = ("response", "answer", "completion")


def _keyed_responses(
    data: dict[str, Any],
    prefix: str,
    metadata: dict[str, Any],
    errors: list[str],
    max_responses: int,
) -> tuple[list[dict[str, Any]], set[str]]:
    """Responses of a Label Studio ``data`` / Argilla ``fields`` object, and the keys used."""
    if "responses" in data:
        responses = clean_responses(data["responses"], prefix + "responses", errors, max_responses)
        return responses, {"responses"}
    numbered: dict[str, dict[int, str]] = {}
    for key in data:
        match = _NUMBERED_KEY.fullmatch(key)
        if match:
            word = match.group(1).lower()
            numbered.setdefault(word, {})[letter_index(match.group(2))] = key
    keys = next((numbered[w] for w in _RESPONSE_WORDS if w in numbered), None)
    if keys:
        indices = sorted(keys)
        if not consecutive(indices):
            names = ", ".join(keys[i] for i in indices)
            errors.append(f"{prefix}responses: numbering must start at 1 without gaps: {names}")
            return [], set()
        if not check_count(len(indices), prefix + "responses", errors, max_responses) and (
            len(indices) > max_responses
        ):
            return [], set()
        models = numbered.get("model", {})
        used = set(keys.values())
        result = []
        for index in indices:
            key = keys[index]
            response = clean_response(data[key], prefix + key, errors)
            model_key = models.get(index)
            if model_key is not None:
                used.add(model_key)
                response["model"] = clean_model(data[model_key], prefix + model_key, errors)
            result.append(response)
        return result, used
    if "chosen" in data or "rejected" in data:
        metadata["source_preference"] = "A"
        result = [
            clean_response(data.get("chosen"), prefix + "chosen", errors),
            clean_response(data.get("rejected"), prefix + "rejected", errors),
        ]
        return result, {"chosen", "rejected"}
    errors.append(
        f"{prefix}responses: missing (expected 'responses', 'answer1'/'answer2'..., "
        "'response1'/'response2'... or 'chosen'/'rejected')"
    )
    return [], set()


def keyed_row(
    line: int,
    data: dict[str, Any],
    prefix: str,
    errors: list[str],
    max_responses: int,
    *,
    external_id: str,
    metadata: dict[str, Any],
    priority: Any,
    gold: Any,
    skip: frozenset[str],
) -> ParsedRow:
    """Finish a row from ``data`` once the caller has read the id, metadata, priority and gold.

    Keys of ``data`` in ``skip`` or used for responses are not copied into metadata.
    """
    prompt = clean_text(data.get("prompt"), prefix + "prompt", errors, MAX_PROMPT_CHARS)
    responses, used = _keyed_responses(data, prefix, metadata, errors, max_responses)
    for key, val in data.items():
        if key not in used and key not in skip:
            metadata.setdefault(key, val)
    check_json(metadata, "metadata", errors)
    number = clean_priority(priority, "priority", errors)
    gold_dict = clean_gold(gold, len(responses), errors) if not errors else None
    return finished_row(line, errors, external_id, prompt, responses, metadata, number, gold_dict)
