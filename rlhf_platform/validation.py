"""Input checks shared by every entry point: text that can be stored, JSON that can be read.

Free text reaches Attune through DRF serializers, Django forms, imported files, answers to
a project's questions and JSON bodies.  Two kinds of string fail only when they reach the
database, as a 500 after validation passed: a NUL character (PostgreSQL ``text`` and
``jsonb`` cannot hold U+0000) and a lone UTF-16 surrogate such as ``"\\ud800"`` in JSON
(not Unicode at all: it has no UTF-8 encoding).  :func:`text_problem` is the one check for
both, used wherever free text comes in, so the caller gets a 400 naming the field.

JSON bodies and JSON form fields are read with :func:`json_parse`, which refuses nesting
deeper than :data:`MAX_JSON_DEPTH` (Python's recursive decoder and encoder raise
``RecursionError`` on very deep input), ``NaN``/``Infinity`` (not JSON) and any string
:func:`text_problem` refuses, naming the path of the offending value.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django.core.exceptions import ValidationError

#: Deepest nesting of objects and arrays accepted in any JSON input.  Far beyond what any
#: real item, answer or schema needs, far below Python's recursion limit.
MAX_JSON_DEPTH = 64

#: The largest row id (a signed 64-bit primary key); larger numbers cannot be looked up.
MAX_OBJECT_ID = 2**63 - 1

_SURROGATE = re.compile(r"[\ud800-\udfff]")
_KEY_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Strings, brackets and colons of a JSON text, to locate too-deep nesting without recursion.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:]')


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        match = _SURROGATE.search(value)
        if match:
            # Python's surrogateescape decoding maps undecodable bytes to U+DC80..U+DCFF.
            if "\udc80" <= match.group() <= "\udcff":
                return "contains bytes that are not valid UTF-8"
            return "contains an unpaired surrogate"
    return None


def text_validate(value: Any) -> None:
    """A Django/DRF validator for free-text fields (see :func:`text_problem`)."""
    if isinstance(value, str):
        reason = text_problem(value)
        if reason:
            raise ValidationError(reason, code="text")


def texts_validate(**fields: Any) -> None:
    """Check several free-text values at once; raise ``{field: [reason]}`` for the bad ones."""
    errors = {
        name: [reason]
        for name, value in fields.items()
        if isinstance(value, str) and (reason := text_problem(value))
    }
    if errors:
        raise ValidationError(errors)


def _path(trail: tuple | None) -> str:
    """``(((None, "items"), 3), "metadata")`` -> ``items[3].metadata``."""
    keys: list[str | int] = []
    while trail is not None:
        trail, key = trail
        keys.append(key)
    path = ""
    for key in reversed(keys):
        if isinstance(key, int):
            path += f"[{key}]"
        else:
            key = key if _KEY_PATH.match(key) else json.dumps(key)
            path += f".{key}" if path else key
    return path


def json_problem(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> tuple[str, str] | None:
    """The first ``(path, reason)`` that makes a decoded JSON value unfit to store, or None.

    Checks nesting depth, every string and key (:func:`text_problem`) and every float
    (finite).  Iterative, so any depth is safe to check.  ``path`` is like
    ``rationale`` or ``items[3].metadata.source`` ("" for the value itself).
    """
    # Each entry carries its trail of keys as nested pairs; the path is spelled out only
    # for a value that fails, so checking large imports stays cheap.
    stack: list[tuple[Any, int, tuple | None]] = [(value, 0, None)]
    while stack:
        item, depth, trail = stack.pop()
        if isinstance(item, str):
            reason = text_problem(item)
            if reason:
                return _path(trail), reason
        elif isinstance(item, dict):
            if depth >= max_depth:
                return _path(trail), f"is nested deeper than {max_depth} levels"
            for key, child in reversed(item.items()):  # reversed: checked in document order
                if isinstance(key, str) and (reason := text_problem(key)):
                    return _path(trail), f"has a key that {reason}"
                stack.append((child, depth + 1, (trail, str(key))))
        elif isinstance(item, list):
            if depth >= max_depth:
                return _path(trail), f"is nested deeper than {max_depth} levels"
            stack.extend((item[i], depth + 1, (trail, i)) for i in range(len(item) - 1, -1, -1))
        elif isinstance(item, float) and not math.isfinite(item):
            return _path(trail), "contains NaN or Infinity"
    return None


def path_join(field: str, path: str) -> str:
    """``("answer", "rationale")`` -> ``answer.rationale``; ``("items", "[2]")`` -> ``items[2]``."""
    if not field or not path:
        return field or path
    return f"{field}{path}" if path.startswith("[") else f"{field}.{path}"


def json_validate(value: Any, *, field: str) -> None:
    """Raise ``{field.path: [reason]}`` when a decoded JSON value is unfit to store."""
    problem = json_problem(value)
    if problem is not None:
        path, reason = problem
        raise ValidationError({path_join(field, path) or "body": [reason]})


class JSONInputError(ValueError):
    """JSON input that was refused: ``path`` names where ("" for the whole text)."""

    def __init__(self, path: str, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}" if path else reason)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _too_deep_key(text: str, max_depth: int) -> str:
    """The top-level key under which ``text`` nests deeper than ``max_depth`` ("" if none)."""
    depth, key, previous = 0, "", ""
    for match in _JSON_TOKEN.finditer(text):
        piece = match.group()
        if piece in "{[":
            depth += 1
            if depth > max_depth:
                return key
        elif piece in "}]":
            depth -= 1
        elif piece == ":" and depth == 1 and previous.startswith('"'):
            try:
                key = str(json.loads(previous))
            except ValueError:
                key = ""
        previous = piece
    return ""


def json_parse(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode JSON input, refusing what cannot be stored (see the module docstring).

    Raises :class:`JSONInputError` naming the path and the reason.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONInputError("", f"is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise JSONInputError(
            _too_deep_key(text, max_depth), f"is nested deeper than {max_depth} levels"
        ) from None
    except json.JSONDecodeError as exc:
        raise JSONInputError(
            "", f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:
        raise JSONInputError("", str(exc)) from None
    problem = json_problem(value, max_depth=max_depth)
    if problem is not None:
        raise JSONInputError(*problem)
    return value
