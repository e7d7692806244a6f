"""The shared input checks: storable text and JSON that can be read safely."""

import json

import pytest
from django.core.exceptions import ValidationError

from rlhf_platform.validation import (
    MAX_JSON_DEPTH,
    JSONInputError,
    json_parse,
    json_problem,
    text_problem,
    texts_validate,
)

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("fine — ünïcödé ✓ 😀", None),
        ("a\x00b", "contains a NUL character"),
        ("a\ud800b", "contains an unpaired surrogate"),
        ("a\udc80b", "contains bytes that are not valid UTF-8"),
    ],
)
def test_text_problem(value, reason):
    assert text_problem(value) == reason


def test_texts_validate_names_every_bad_field():
    with pytest.raises(ValidationError) as caught:
        texts_validate(name="ok", reason="x\x00", guidelines="\ud800")
    assert caught.value.message_dict == {
        "reason": ["contains a NUL character"],
        "guidelines": ["contains an unpaired surrogate"],
    }


def test_json_problem_names_the_path_in_document_order():
    value = {
        "items": [{"prompt": "ok"}, {"prompt": "ok", "metadata": {"a b": "\x00", "z": "\x00"}}]
    }
    assert json_problem(value) == ('items[1].metadata."a b"', "contains a NUL character")
    assert json_problem({"x": [1.0, float("nan")]}) == ("x[1]", "contains NaN or Infinity")
    assert json_problem({"k\ud800": 1}) == ("", "has a key that contains an unpaired surrogate")
    assert json_problem({"fine": [1, "two", {"three": None}]}) is None


def test_json_problem_limits_depth_without_recursing():
    value: list = []
    for _ in range(200_000):  # far past Python's recursion limit
        value = [value]
    path, reason = json_problem({"answer": value})
    assert (
        path.startswith("answer[0][0]")
        and reason == f"is nested deeper than {MAX_JSON_DEPTH} levels"
    )
    deepest_allowed: list = []  # the object, then MAX_JSON_DEPTH - 1 lists
    for _ in range(MAX_JSON_DEPTH - 2):
        deepest_allowed = [deepest_allowed]
    assert json_problem({"answer": deepest_allowed}) is None
    assert json_problem({"answer": [deepest_allowed]}) is not None


@pytest.mark.parametrize(
    ("text", "path", "reason"),
    [
        ('{"answer": ' + DEEP + "}", "answer", "is nested deeper than 64 levels"),
        (DEEP, "", "is nested deeper than 64 levels"),
        (
            '{"answer": {"rationale": "\\ud800"}}',
            "answer.rationale",
            "contains an unpaired surrogate",
        ),
        ('{"answer": {"rationale": "a\\u0000"}}', "answer.rationale", "contains a NUL character"),
        ('{"x": NaN}', "", "NaN is not valid JSON"),
        ('{"x": ', "", "is not valid JSON: Expecting value at line 1 column 7"),
        (b'{"x": "\xff"}', "", "is not valid UTF-8 (byte 7)"),
    ],
)
def test_json_parse_refuses_with_path_and_reason(text, path, reason):
    with pytest.raises(JSONInputError) as caught:
        json_parse(text)
    assert (caught.value.path, caught.value.reason) == (path, reason)


def test_json_parse_reads_ordinary_json():
    value = {"answer": {"preference": {"choice": "A"}, "rationale": "ünï 😀"}, "n": [1, 2.5]}
    assert json_parse(json.dumps(value)) == value
