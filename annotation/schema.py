"""Question schemas and answer validation.

A project's ``question_schema`` is ``{"questions": [...]}``; each question has a unique
``name`` and a ``type``:

- ``pairwise`` (options ``allow_tie`` = true, ``strength`` = false):
  ``{"choice": "A" | "B" | "tie", "strength": 1..3}``
- ``ranking``: a permutation of the response indexes, best first
- ``rating`` (``min`` = 1, ``max`` = 7): one integer per response
- ``text`` (``required`` = false, ``max_length`` = 5000, ``purpose`` = ``"rationale"``,
  ``sensitive``): a string.  A *rationale* (the default purpose) is always stored
  encrypted; a ``"comment"`` is encrypted only when ``sensitive`` is true (default false),
  so a project can keep, say, a "suggested fix" comment readable in the database while
  annotators' reasons stay protected (``answer_split``)
- ``spans`` (``labels``, optional): ``[{"response", "start", "end", "label"?}]``,
  character offsets into the response text
- ``tags`` (``options``, ``max`` optional): a list of distinct options

The first pairwise, ranking or rating question is the *primary* question: its answer is
coded as a class index (``Annotation.label``) for consensus and agreement.  Pairwise codes
are A=0, tie=1, B=2 so that they are also ordinal (A ≺ tie ≺ B); ranking codes are the
index of the best response; rating codes are the first response's rating minus ``min``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from rlhf_platform.validation import json_validate, text_problem

QUESTION_TYPES = ("pairwise", "ranking", "rating", "text", "spans", "tags")
TEXT_PURPOSES = ("rationale", "comment")
PRIMARY_TYPES = ("pairwise", "ranking", "rating")
PAIRWISE_CODES = {"A": 0, "tie": 1, "B": 2}
PAIRWISE_CHOICES = {code: choice for choice, code in PAIRWISE_CODES.items()}

DEFAULT_SCHEMA: dict[str, Any] = {
    "questions": [
        {"name": "preference", "type": "pairwise", "allow_tie": True, "strength": True},
        {"name": "rationale", "type": "text", "required": False, "max_length": 2000},
    ]
}


def _fail(field: str, reason: str) -> ValidationError:
    return ValidationError({field: [reason]})


def _text_check(value: str, field: str) -> None:
    reason = text_problem(value)
    if reason:
        raise _fail(field, reason)


def question_schema_validate(schema: Any) -> dict[str, Any]:
    """Check a project's question schema; return it normalised (defaults filled in)."""
    if not isinstance(schema, dict) or not isinstance(schema.get("questions"), list):
        raise _fail("question_schema", 'must be an object {"questions": [...]}')
    json_validate(schema, field="question_schema")
    questions = schema["questions"]
    if not questions:
        raise _fail("question_schema.questions", "needs at least one question")
    seen: set[str] = set()
    normalised = []
    for index, question in enumerate(questions):
        where = f"question_schema.questions[{index}]"
        if not isinstance(question, dict):
            raise _fail(where, "must be an object")
        name, qtype = question.get("name"), question.get("type")
        if not isinstance(name, str) or not name.isidentifier():
            raise _fail(f"{where}.name", "must be an identifier (letters, digits, _)")
        if name in seen:
            raise _fail(f"{where}.name", f"duplicate question name {name!r}")
        seen.add(name)
        if qtype not in QUESTION_TYPES:
            raise _fail(f"{where}.type", f"must be one of {', '.join(QUESTION_TYPES)}")
        q = dict(question)
        if qtype == "pairwise":
            q.setdefault("allow_tie", True)
            q.setdefault("strength", False)
        elif qtype == "rating":
            q.setdefault("min", 1)
            q.setdefault("max", 7)
            if not (
                isinstance(q["min"], int) and isinstance(q["max"], int) and q["min"] < q["max"]
            ):
                raise _fail(f"{where}.max", "rating needs integer min < max")
        elif qtype == "text":
            q.setdefault("required", False)
            q.setdefault("max_length", 5000)
            q.setdefault("purpose", "rationale")
            if q["purpose"] not in TEXT_PURPOSES:
                raise _fail(f"{where}.purpose", f"must be one of {', '.join(TEXT_PURPOSES)}")
            q.setdefault("sensitive", q["purpose"] == "rationale")
            if not isinstance(q["sensitive"], bool):
                raise _fail(f"{where}.sensitive", "must be true or false")
            if q["purpose"] == "rationale" and not q["sensitive"]:
                raise _fail(
                    f"{where}.sensitive",
                    'a rationale is always sensitive (encrypted); use "purpose": "comment" '
                    "for text that need not be",
                )
        elif qtype == "tags":
            options = q.get("options")
            if (
                not isinstance(options, list)
                or not options
                or not all(isinstance(o, str) for o in options)
            ):
                raise _fail(f"{where}.options", "tags need a non-empty list of strings")
        elif qtype == "spans":
            q.setdefault("labels", [])
        normalised.append(q)
    return {"questions": normalised}


def question_is_sensitive(question: dict[str, Any]) -> bool:
    """True for a text question whose answers are stored encrypted.

    Schemas saved before ``purpose``/``sensitive`` existed count as rationales.
    """
    return question["type"] == "text" and question.get("sensitive", True)


def answer_split(
    *, schema: dict[str, Any], answer: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """``(public, private)``: the answers stored as JSON, and the sensitive text answers
    stored encrypted (``Annotation.answer_private``)."""
    sensitive = {q["name"] for q in schema["questions"] if question_is_sensitive(q)}
    public = {k: v for k, v in answer.items() if k not in sensitive}
    private = {k: v for k, v in answer.items() if k in sensitive and v}
    return public, private


def primary_question(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The question whose answer is the item's label for consensus (or None)."""
    return next((q for q in schema["questions"] if q["type"] in PRIMARY_TYPES), None)


def label_classes(schema: dict[str, Any], *, n_responses: int = 2) -> list[str]:
    """Human names of the primary question's label codes, in code order."""
    q = primary_question(schema)
    if q is None:
        return []
    if q["type"] == "pairwise":
        return ["A", "tie", "B"]
    if q["type"] == "ranking":
        return [f"response {i + 1}" for i in range(n_responses)]
    return [str(v) for v in range(q["min"], q["max"] + 1)]


def n_label_classes(schema: dict[str, Any], *, max_responses: int = 10) -> int:
    """How many label codes the primary question can produce."""
    q = primary_question(schema)
    if q is None:
        return 0
    if q["type"] == "pairwise":
        return 3
    if q["type"] == "ranking":
        return max_responses
    return q["max"] - q["min"] + 1


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_one(
    q: dict[str, Any], value: Any, responses: list[dict], field: str
) -> tuple[Any, int | None, int | None]:
    """Validate one answer; return (clean value, label code or None, strength or None)."""
    k = len(responses)
    qtype = q["type"]
    if qtype == "pairwise":
        if not isinstance(value, dict):
            raise _fail(field, 'must be an object {"choice": "A"|"B"|"tie"}')
        choice = value.get("choice")
        allowed = ["A", "B", "tie"] if q["allow_tie"] else ["A", "B"]
        if choice not in allowed:
            raise _fail(f"{field}.choice", f"must be one of {', '.join(allowed)}; got {choice!r}")
        clean: dict[str, Any] = {"choice": choice}
        strength = None
        if q["strength"] and choice != "tie":
            strength = value.get("strength", 2)
            if not _is_int(strength) or not 1 <= strength <= 3:
                raise _fail(f"{field}.strength", f"must be an integer 1..3; got {strength!r}")
            clean["strength"] = strength
        elif "strength" in value and value["strength"] is not None and not q["strength"]:
            raise _fail(f"{field}.strength", "this question takes no strength")
        return clean, PAIRWISE_CODES[choice], strength
    if qtype == "ranking":
        if (
            not isinstance(value, list)
            or not all(_is_int(v) for v in value)
            or sorted(value) != list(range(k))
        ):
            raise _fail(field, f"must be a permutation of 0..{k - 1} (best first); got {value!r}")
        return list(value), value[0], None
    if qtype == "rating":
        if not isinstance(value, list) or len(value) != k:
            raise _fail(field, f"must be a list of {k} ratings, one per response")
        for i, rating in enumerate(value):
            if not _is_int(rating) or not q["min"] <= rating <= q["max"]:
                raise _fail(
                    f"{field}[{i}]", f"must be an integer {q['min']}..{q['max']}; got {rating!r}"
                )
        return list(value), value[0] - q["min"], None
    if qtype == "text":
        if value is None or value == "":
            if q["required"]:
                raise _fail(field, "is required")
            return "", None, None
        if not isinstance(value, str):
            raise _fail(field, "must be text")
        if len(value) > q["max_length"]:
            raise _fail(field, f"longer than {q['max_length']} characters")
        _text_check(value, field)
        return value, None, None
    if qtype == "spans":
        if value is None:
            return [], None, None
        if not isinstance(value, list):
            raise _fail(field, "must be a list of spans")
        clean_spans = []
        for i, span in enumerate(value):
            where = f"{field}[{i}]"
            if not isinstance(span, dict):
                raise _fail(where, "must be an object {response, start, end}")
            r, start, end = span.get("response"), span.get("start"), span.get("end")
            if not _is_int(r) or not 0 <= r < k:
                raise _fail(f"{where}.response", f"must be a response index 0..{k - 1}")
            length = len(responses[r]["text"])
            if not (_is_int(start) and _is_int(end) and 0 <= start < end <= length):
                raise _fail(
                    where, f"span {start!r}..{end!r} is outside the response text (0..{length})"
                )
            label = span.get("label") or ""
            if q["labels"] and label not in q["labels"]:
                raise _fail(f"{where}.label", f"must be one of {', '.join(q['labels'])}")
            if not isinstance(label, str):
                raise _fail(f"{where}.label", "must be text")
            _text_check(label, f"{where}.label")
            clean_spans.append({"response": r, "start": start, "end": end, "label": label})
        return clean_spans, None, None
    # tags
    if value is None:
        return [], None, None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(field, "must be a list of tags")
    unknown = [v for v in value if v not in q["options"]]
    if unknown:
        raise _fail(field, f"unknown tag(s) {', '.join(map(repr, unknown))}")
    if len(set(value)) != len(value):
        raise _fail(field, "tags must be distinct")
    if q.get("max") and len(value) > q["max"]:
        raise _fail(field, f"at most {q['max']} tags")
    return list(value), None, None


def answer_validate(
    *, schema: dict[str, Any], answer: Any, responses: list[dict]
) -> tuple[dict[str, Any], int | None, int | None]:
    """Validate an answer against the schema and the item's responses.

    Returns ``(clean_answer, label, strength)``; raises ValidationError naming the field
    (``answer.<question>...``) and the reason.
    """
    if not isinstance(answer, dict):
        raise _fail("answer", "must be an object keyed by question name")
    names = {q["name"] for q in schema["questions"]}
    unknown = sorted(set(answer) - names)
    if unknown:
        raise _fail(f"answer.{unknown[0]}", "is not a question of this project")
    primary = primary_question(schema)
    clean: dict[str, Any] = {}
    label = strength = None
    for q in schema["questions"]:
        field = f"answer.{q['name']}"
        if q["name"] not in answer:
            if q["type"] in PRIMARY_TYPES or (q["type"] == "text" and q["required"]):
                raise _fail(field, "is required")
            continue
        value, code, q_strength = _validate_one(q, answer[q["name"]], responses, field)
        clean[q["name"]] = value
        if q is primary:
            label, strength = code, q_strength
    return clean, label, strength
