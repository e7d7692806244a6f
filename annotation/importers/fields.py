"""Normalising and validating one field of a record, whatever the format.

Each ``clean_*`` function returns the normalised value and appends ``"<label>: <reason>"`` to
``errors`` for every problem, so a mapper collects all of a row's problems in one pass.
Labels name the field as the file spells it (``"data.answer1"``, ``"responses[2].text"``).
"""

from __future__ import annotations

import math
from typing import Any

from rlhf_platform.validation import json_problem, text_problem

from .limits import (
    LETTERS,
    MAX_EXTERNAL_ID_CHARS,
    MAX_MODEL_CHARS,
    MAX_RESPONSE_CHARS,
    MIN_RESPONSES,
)

_RESPONSE_KEYS = frozenset({"text", "model", "metadata"})


def kind(value: Any) -> str:
    """JSON type name of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def bad_json(value: Any) -> str | None:
    """Like ``text_problem`` for every string, float and nesting level of a JSON value."""
    problem = json_problem(value)
    return problem[1] if problem else None


def letter_index(token: str) -> int:
    """``"a"`` -> 1, ``"3"`` -> 3."""
    return int(token) if token.isdigit() else ord(token.lower()) - ord("a") + 1


def consecutive(indices: list[int]) -> bool:
    """True when sorted ``indices`` run 0.. or 1.. without gaps (response numbering)."""
    return (
        bool(indices)
        and indices[0] in (0, 1)
        and indices == list(range(indices[0], indices[0] + len(indices)))
    )


def clean_text(value: Any, label: str, errors: list[str], limit: int) -> str:
    """A required non-blank string of at most ``limit`` characters (prompt, response text)."""
    if not isinstance(value, str):
        if value is None:
            errors.append(f"{label}: missing")
        else:
            errors.append(f"{label}: must be a string, got {kind(value)}")
        return ""
    if not value or value.isspace():
        errors.append(f"{label}: empty")
        return ""
    if len(value) > limit:
        errors.append(f"{label}: longer than {limit} characters")
    reason = text_problem(value)
    if reason:
        errors.append(f"{label}: {reason}")
    return value


def clean_external_id(value: Any, label: str, errors: list[str]) -> str:
    """An optional id: a string (stripped) or an integer; ``""`` when absent or invalid."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        errors.append(f"{label}: must be a string or an integer, got {kind(value)}")
        return ""
    if len(text) > MAX_EXTERNAL_ID_CHARS:
        errors.append(f"{label}: longer than {MAX_EXTERNAL_ID_CHARS} characters")
        return ""
    reason = text_problem(text)
    if reason:
        errors.append(f"{label}: {reason}")
        return ""
    return text


def clean_record_id(record: dict[str, Any], errors: list[str], prefix: str = "") -> str:
    """The record's ``external_id``, falling back to its ``id``."""
    value = record.get("external_id")
    if value is not None and value != "":
        return clean_external_id(value, prefix + "external_id", errors)
    return clean_external_id(record.get("id"), prefix + "id", errors)


def clean_model(value: Any, label: str, errors: list[str]) -> str | None:
    """An optional model name."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors.append(f"{label}: must be a string, got {kind(value)}")
        return None
    if len(value) > MAX_MODEL_CHARS:
        errors.append(f"{label}: longer than {MAX_MODEL_CHARS} characters")
    reason = text_problem(value)
    if reason:
        errors.append(f"{label}: {reason}")
    return value


def clean_metadata(value: Any, label: str, errors: list[str]) -> dict[str, Any]:
    """An optional object, copied so that the mapper may add keys to it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(f"{label}: must be an object, got {kind(value)}")
        return {}
    return dict(value)


def check_json(value: dict[str, Any], label: str, errors: list[str]) -> None:
    """Refuse JSON that PostgreSQL cannot store (NUL, lone surrogates, NaN, too deep)."""
    if value:
        reason = bad_json(value)
        if reason:
            errors.append(f"{label}: {reason}")


def clean_priority(value: Any, label: str, errors: list[str]) -> float:
    """An optional finite number (a numeric string is accepted); 0.0 when absent."""
    if value is None:
        return 0.0
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return 0.0
        try:
            number = float(value)
        except ValueError:
            errors.append(f"{label}: not a number")
            return 0.0
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
    else:
        errors.append(f"{label}: not a number")
        return 0.0
    if not math.isfinite(number):
        errors.append(f"{label}: not a finite number")
        return 0.0
    return number


def clean_gold(
    value: Any,
    n_responses: int,
    errors: list[str],
    *,
    label: str = "gold",
    choice_label: str = "gold.choice",
    ranking_label: str = "gold.ranking",
) -> dict[str, Any] | None:
    """Gold as ``{"choice": "A"}`` and/or ``{"ranking": [...]}``; a bare letter or list works."""
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, str):
        gold: dict[str, Any] = {"choice": value}
    elif isinstance(value, list):
        gold = {"ranking": value}
    elif isinstance(value, dict):
        gold = dict(value)
    else:
        errors.append(f"{label}: must be an object, a letter or a list of letters")
        return None
    if "choice" not in gold and "ranking" not in gold:
        errors.append(f"{label}: needs 'choice' or 'ranking'")
        return None
    letters = LETTERS[:n_responses]
    allowed = ", ".join(letters)
    if "choice" in gold:
        choice = gold["choice"]
        choice = choice.strip().upper() if isinstance(choice, str) else None
        if choice is None or len(choice) != 1 or choice not in letters:
            errors.append(f"{choice_label}: must be one of {allowed}")
        else:
            gold["choice"] = choice
    if "ranking" in gold:
        ranking = gold["ranking"]
        if isinstance(ranking, list) and all(isinstance(x, str) for x in ranking):
            ranking = [x.strip().upper() for x in ranking]
            if sorted(ranking) == list(letters):
                gold["ranking"] = ranking
            else:
                errors.append(f"{ranking_label}: must list each of {allowed} exactly once")
        else:
            errors.append(f"{ranking_label}: must be a list of letters")
    reason = bad_json(gold)
    if reason:
        errors.append(f"{label}: {reason}")
    return gold


def check_count(count: int, label: str, errors: list[str], max_responses: int) -> bool:
    """True when ``count`` responses are allowed."""
    if MIN_RESPONSES <= count <= max_responses:
        return True
    errors.append(f"{label}: need {MIN_RESPONSES} to {max_responses}, got {count}")
    return False


def clean_response(value: Any, label: str, errors: list[str]) -> dict[str, Any]:
    """One response: a string, or ``{"text", "model"?, "metadata"?}`` (other keys -> metadata)."""
    if isinstance(value, str):
        clean_text(value, label, errors, MAX_RESPONSE_CHARS)
        return {"text": value, "model": None, "metadata": {}}
    if isinstance(value, dict):
        text = clean_text(value.get("text"), f"{label}.text", errors, MAX_RESPONSE_CHARS)
        model = clean_model(value.get("model"), f"{label}.model", errors)
        meta = clean_metadata(value.get("metadata"), f"{label}.metadata", errors)
        for key, val in value.items():
            if key not in _RESPONSE_KEYS:
                meta.setdefault(key, val)
        check_json(meta, f"{label}.metadata", errors)
        return {"text": text, "model": model, "metadata": meta}
    if value is None:
        errors.append(f"{label}: missing")
    else:
        errors.append(f"{label}: must be a string or an object, got {kind(value)}")
    return {"text": "", "model": None, "metadata": {}}


def clean_responses(
    value: Any, label: str, errors: list[str], max_responses: int
) -> list[dict[str, Any]]:
    """A list of 2 to ``max_responses`` responses (too many: none are read)."""
    if value is None:
        errors.append(f"{label}: missing")
        return []
    if not isinstance(value, list):
        errors.append(f"{label}: must be an array, got {kind(value)}")
        return []
    if not check_count(len(value), label, errors, max_responses) and len(value) > max_responses:
        return []
    return [clean_response(item, f"{label}[{i}]", errors) for i, item in enumerate(value)]
