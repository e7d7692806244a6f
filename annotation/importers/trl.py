"""TRL preference rows ``{"prompt", "chosen", "rejected"}``, plain or conversational.

``responses`` is ``[chosen, rejected]`` and ``metadata["source_preference"] = "A"`` records
which one was preferred. Conversational rows hold lists of ``{"role", "content"}`` messages,
with or without an explicit prompt; they are reduced to plain text here.
"""

from __future__ import annotations

from typing import Any

from .fields import (
    bad_json,
    check_json,
    clean_gold,
    clean_metadata,
    clean_model,
    clean_priority,
    clean_record_id,
    clean_response,
    clean_text,
)
from .limits import MAX_PROMPT_CHARS
from .rows import ParsedRow, finished_row

_TRL_KEYS = frozenset(
    {
        "external_id",
        "id",
        "prompt",
        "chosen",
        "rejected",
        "metadata",
        "priority",
        "gold",
        "score_chosen",
        "score_rejected",
        "chosen_model",
        "rejected_model",
    }
)
_TRL_SIDES = (
    ("chosen", "score_chosen", "chosen_model"),
    ("rejected", "score_rejected", "rejected_model"),
)


def trl_row(line: int, record: dict[str, Any], max_responses: int) -> ParsedRow:
    """Map one TRL record; a record with ``responses`` and no ``chosen``/``rejected`` is native."""
    if "responses" in record and "chosen" not in record and "rejected" not in record:
        # Imported here because native imports this module (its TRL-shaped rows come here);
        # this branch only runs for the native rows of a mixed file.
        from .native import native_row

        return native_row(line, record, max_responses)
    errors: list[str] = []
    external_id = clean_record_id(record, errors)
    metadata = clean_metadata(record.get("metadata"), "metadata", errors)
    prompt_v = record.get("prompt")
    chosen_v = record.get("chosen")
    rejected_v = record.get("rejected")
    if isinstance(prompt_v, list) or isinstance(chosen_v, list) or isinstance(rejected_v, list):
        prompt_v, chosen_v, rejected_v = _conversation(
            prompt_v, chosen_v, rejected_v, metadata, errors
        )
        if errors:
            return finished_row(line, errors, external_id, "", [], {}, 0.0, None)
    prompt = clean_text(prompt_v, "prompt", errors, MAX_PROMPT_CHARS)
    responses = []
    for (key, score_key, model_key), value in zip(_TRL_SIDES, (chosen_v, rejected_v), strict=True):
        response = clean_response(value, key, errors)
        score = record.get(score_key)
        if score is not None:
            reason = bad_json(score)
            if reason:
                errors.append(f"{score_key}: {reason}")
            response["metadata"].setdefault("score", score)
        model = record.get(model_key)
        if model is not None:
            response["model"] = clean_model(model, model_key, errors)
        responses.append(response)
    for key, val in record.items():
        if key not in _TRL_KEYS:
            metadata.setdefault(key, val)
    check_json(metadata, "metadata", errors)
    metadata["source_preference"] = "A"
    priority = clean_priority(record.get("priority"), "priority", errors)
    gold = clean_gold(record.get("gold"), 2, errors) if not errors else None
    return finished_row(line, errors, external_id, prompt, responses, metadata, priority, gold)


# ------------------------------------------------------------------------------------------
# Conversational rows
# ------------------------------------------------------------------------------------------


def _is_messages(value: list[Any]) -> bool:
    return all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in value
    )


def _render_messages(messages: list[dict[str, Any]]) -> str:
    """One message's content, or a ``"role: content"`` transcript of several."""
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


def _completion_text(messages: list[dict[str, Any]]) -> str:
    """The trailing run of assistant messages (what comes before repeats the prompt)."""
    start = len(messages)
    while start and messages[start - 1]["role"] == "assistant":
        start -= 1
    tail = messages[start:]
    if not tail:
        return _render_messages(messages)
    return "\n\n".join(m["content"] for m in tail)


def _conversation(
    prompt: Any, chosen: Any, rejected: Any, metadata: dict[str, Any], errors: list[str]
) -> tuple[Any, Any, Any]:
    """Reduce conversational TRL fields (message lists) to plain strings."""
    for label, value in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
        if isinstance(value, list) and not _is_messages(value):
            errors.append(
                f"{label}: must be a string or a list of messages with string 'role' and 'content'"
            )
    if errors:
        return prompt, chosen, rejected
    if prompt is None and isinstance(chosen, list) and isinstance(rejected, list):
        # Implicit prompt: the messages both completions start with.
        shared, limit = 0, min(len(chosen), len(rejected)) - 1
        while shared < limit and chosen[shared] == rejected[shared]:
            shared += 1
        if shared:
            prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
    if isinstance(prompt, list):
        if len(prompt) > 1 or (prompt and prompt[0]["role"] != "user"):
            metadata["prompt_messages"] = prompt
        prompt = _render_messages(prompt) if prompt else ""
    if isinstance(chosen, list):
        chosen = _completion_text(chosen) if chosen else ""
    if isinstance(rejected, list):
        rejected = _completion_text(rejected) if rejected else ""
    return prompt, chosen, rejected
