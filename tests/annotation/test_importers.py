"""Tests for annotation.importers (pure Python; no Django needed).

Run with:
    python -m pytest -p no:django -p no:cacheprovider --noconftest tests/annotation/test_importers.py
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from annotation.importers import (
    ParsedRow,
    content_id,
    detect_format,
    iter_batches,
    json_reader,
    limits,
    parse_rows,
)
from annotation.importers.duplicates import SeenIds

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def parse(data: str | bytes, fmt: str = "auto", **kwargs: Any) -> list[ParsedRow]:
    """Parse ``data`` from a binary stream, as an upload would arrive."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return list(parse_rows(io.BytesIO(raw), fmt, **kwargs))


def jsonl(*records: Any) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def only(rows: list[ParsedRow]) -> ParsedRow:
    assert len(rows) == 1, rows
    return rows[0]


def texts(row: ParsedRow) -> list[str]:
    return [r["text"] for r in row.responses]


def errors(rows: list[ParsedRow]) -> list[tuple[int, str | None]]:
    return [(r.line, r.error) for r in rows if r.error]


# --------------------------------------------------------------------------------------------
# Native JSONL
# --------------------------------------------------------------------------------------------


def test_native_jsonl_full_row() -> None:
    row = only(
        parse(
            jsonl(
                {
                    "external_id": "item-1",
                    "prompt": "Which is better?",
                    "responses": [
                        "plain answer",
                        {"text": "rich answer", "model": "gpt-x", "metadata": {"t": 1}, "k": 2},
                    ],
                    "metadata": {"topic": "math"},
                    "priority": 2.5,
                    "gold": {"choice": "b", "note": "obvious"},
                    "source": "batch-7",
                }
            ),
            "jsonl",
        )
    )
    assert row.ok
    assert row.line == 1
    assert row.external_id == "item-1"
    assert row.prompt == "Which is better?"
    assert row.responses == [
        {"text": "plain answer", "model": None, "metadata": {}},
        {"text": "rich answer", "model": "gpt-x", "metadata": {"t": 1, "k": 2}},
    ]
    assert row.metadata == {"topic": "math", "source": "batch-7"}
    assert row.priority == 2.5
    assert row.gold == {"choice": "B", "note": "obvious"}


def test_native_defaults_and_id_alias() -> None:
    rows = parse(
        jsonl(
            {"id": 17, "prompt": "p", "responses": ["a", "b", "c"]},
            {"prompt": "q", "responses": ["a", "b"], "priority": "3"},
        ),
        "jsonl",
    )
    assert [r.error for r in rows] == [None, None]
    assert rows[0].external_id == "17"
    assert rows[0].priority == 0.0
    assert rows[0].gold is None
    assert rows[0].metadata == {}
    assert texts(rows[0]) == ["a", "b", "c"]
    assert rows[1].priority == 3.0


def test_native_gold_shorthands() -> None:
    rows = parse(
        jsonl(
            {"prompt": "p", "responses": ["a", "b"], "gold": "a"},
            {"prompt": "q", "responses": ["a", "b", "c"], "gold": ["c", "A", "b"]},
            {"prompt": "r", "responses": ["a", "b"], "gold": {"ranking": ["B", "A"]}},
        ),
        "jsonl",
    )
    assert [r.gold for r in rows] == [
        {"choice": "A"},
        {"ranking": ["C", "A", "B"]},
        {"ranking": ["B", "A"]},
    ]


def test_native_accepts_trl_shaped_rows() -> None:
    row = only(parse(jsonl({"prompt": "p", "chosen": "good", "rejected": "bad"}), "jsonl"))
    assert row.ok
    assert texts(row) == ["good", "bad"]
    assert row.metadata == {"source_preference": "A"}


LONG_ID = "x" * 256


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"responses": ["a", "b"]}, "prompt: missing"),
        ({"prompt": "   ", "responses": ["a", "b"]}, "prompt: empty"),
        ({"prompt": 5, "responses": ["a", "b"]}, "prompt: must be a string, got number"),
        (
            {"prompt": "x" * 100_001, "responses": ["a", "b"]},
            "prompt: longer than 100000 characters",
        ),
        ({"prompt": "p"}, "responses: missing"),
        ({"prompt": "p", "responses": ["a"]}, "responses: need 2 to 10, got 1"),
        ({"prompt": "p", "responses": ["r"] * 11}, "responses: need 2 to 10, got 11"),
        ({"prompt": "p", "responses": "ab"}, "responses: must be an array, got string"),
        ({"prompt": "p", "responses": ["a", ""]}, "responses[1]: empty"),
        (
            {"prompt": "p", "responses": ["a", 3]},
            "responses[1]: must be a string or an object, got number",
        ),
        ({"prompt": "p", "responses": [{"model": "m"}, "b"]}, "responses[0].text: missing"),
        (
            {"prompt": "p", "responses": ["a", "b" * 100_001]},
            "responses[1]: longer than 100000 characters",
        ),
        ({"prompt": "p", "responses": ["a", "b"], "priority": "high"}, "priority: not a number"),
        ({"prompt": "p", "responses": ["a", "b"], "priority": True}, "priority: not a number"),
        (
            {"prompt": "p", "responses": ["a", "b"], "priority": float("inf")},
            "priority: not a finite number",
        ),
        (
            {"external_id": LONG_ID, "prompt": "p", "responses": ["a", "b"]},
            "external_id: longer than 255 characters",
        ),
        (
            {"id": True, "prompt": "p", "responses": ["a", "b"]},
            "id: must be a string or an integer, got boolean",
        ),
        (
            {"prompt": "p", "responses": ["a", "b"], "metadata": [1]},
            "metadata: must be an object, got array",
        ),
        (
            {"prompt": "p", "responses": ["a", "b"], "metadata": {"x": float("nan")}},
            "metadata: contains NaN or Infinity",
        ),
        ({"prompt": "nul\x00", "responses": ["a", "b"]}, "prompt: contains a NUL character"),
        (
            {"prompt": "p", "responses": ["a", "b"], "meta": "\x00"},
            "metadata: contains a NUL character",
        ),
        (
            {"prompt": "p", "responses": ["a", "\ud800"]},
            "responses[1]: contains an unpaired surrogate",
        ),
        ({"prompt": "p", "responses": ["a", "b"], "gold": "C"}, "gold.choice: must be one of A, B"),
        (
            {"prompt": "p", "responses": ["a", "b"], "gold": ["A"]},
            "gold.ranking: must list each of A, B exactly once",
        ),
        (
            {"prompt": "p", "responses": ["a", "b"], "gold": {"x": 1}},
            "gold: needs 'choice' or 'ranking'",
        ),
        (
            {"prompt": "p", "responses": ["a", "b"], "gold": 1},
            "gold: must be an object, a letter or a list of letters",
        ),
        ({"responses": ["a"]}, "prompt: missing; responses: need 2 to 10, got 1"),
    ],
)
def test_native_errors_name_the_field(record: dict[str, Any], expected: str) -> None:
    row = only(parse(jsonl(record), "jsonl"))
    assert row.error == expected
    assert row.line == 1


def test_error_rows_do_not_stop_the_stream_and_keep_line_numbers() -> None:
    data = (
        '{"prompt": "p1", "responses": ["a", "b"]}\n'
        "\n"
        '{"prompt": "p2" "responses": ["a", "b"]}\n'
        "   \n"
        '{"prompt": "p3", "responses": ["a"]}\n'
        "[1, 2]\n"
        '{"prompt": "p4", "responses": ["a", "b"]}\n'
    )
    rows = parse(data, "jsonl")
    assert [r.line for r in rows] == [1, 3, 5, 6, 7]
    assert errors(rows) == [
        (3, "invalid JSON: Expecting ',' delimiter at column 17"),
        (5, "responses: need 2 to 10, got 1"),
        (6, "record: expected a JSON object, got array"),
    ]
    assert [r.prompt for r in rows if r.ok] == ["p1", "p4"]


def test_crlf_and_lone_cr_line_endings() -> None:
    p, q, r = (json.dumps({"prompt": x, "responses": ["a", "b"]}) for x in "pqr")
    rows = parse(f"{p}\r\n\r\n{q}\r{r}")
    assert [(r.line, r.prompt) for r in rows] == [(1, "p"), (3, "q"), (4, "r")]


def test_too_long_line_is_reported_and_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_RECORD_CHARS", 100)
    data = jsonl(
        {"prompt": "p", "responses": ["a", "b"]},
        {"prompt": "x" * 200, "responses": ["a", "b"]},
        {"prompt": "q", "responses": ["a", "b"]},
    )
    rows = parse(data, "jsonl")
    assert [(r.line, r.error) for r in rows] == [
        (1, None),
        (2, "line: longer than 100 characters"),
        (3, None),
    ]


# --------------------------------------------------------------------------------------------
# TRL
# --------------------------------------------------------------------------------------------


def test_trl_rows() -> None:
    rows = parse(
        jsonl(
            {"prompt": "p", "chosen": "good", "rejected": "bad"},
            {
                "id": "t-2",
                "prompt": "q",
                "chosen": "yes",
                "rejected": "no",
                "score_chosen": 9.0,
                "score_rejected": 2.5,
                "chosen_model": "m1",
                "rejected_model": "m2",
                "prompt_id": "abc",
                "gold": "A",
            },
            {"prompt": "r", "chosen": "c"},
        ),
        "trl",
    )
    first, second, third = rows
    assert first.ok and first.gold is None
    assert texts(first) == ["good", "bad"]
    assert first.metadata == {"source_preference": "A"}
    assert second.ok
    assert second.external_id == "t-2"
    assert second.responses == [
        {"text": "yes", "model": "m1", "metadata": {"score": 9.0}},
        {"text": "no", "model": "m2", "metadata": {"score": 2.5}},
    ]
    assert second.metadata == {"prompt_id": "abc", "source_preference": "A"}
    assert second.gold == {"choice": "A"}
    assert (third.line, third.error) == (3, "rejected: missing")


def test_trl_conversational_rows() -> None:
    user = {"role": "user", "content": "What is 2+2?"}
    rows = parse(
        jsonl(
            # explicit prompt
            {
                "prompt": [user],
                "chosen": [{"role": "assistant", "content": "4"}],
                "rejected": [{"role": "assistant", "content": "5"}],
            },
            # implicit prompt (shared leading messages)
            {
                "chosen": [user, {"role": "assistant", "content": "4"}],
                "rejected": [user, {"role": "assistant", "content": "22"}],
            },
            # UltraFeedback style: prompt string, completions repeat the user turn
            {
                "prompt": "What is 2+2?",
                "chosen": [user, {"role": "assistant", "content": "4"}],
                "rejected": [user, {"role": "assistant", "content": "four"}],
            },
            # multi-turn prompt
            {
                "prompt": [
                    {"role": "system", "content": "Be brief."},
                    user,
                ],
                "chosen": [{"role": "assistant", "content": "4"}],
                "rejected": [{"role": "assistant", "content": "It is 4."}],
            },
            {
                "prompt": [{"role": "user", "content": [{"type": "image"}]}],
                "chosen": "a",
                "rejected": "b",
            },
        ),
        "trl",
    )
    assert [(r.prompt, texts(r)) for r in rows[:3]] == [
        ("What is 2+2?", ["4", "5"]),
        ("What is 2+2?", ["4", "22"]),
        ("What is 2+2?", ["4", "four"]),
    ]
    assert all("prompt_messages" not in r.metadata for r in rows[:3])
    multi = rows[3]
    assert multi.prompt == "system: Be brief.\n\nuser: What is 2+2?"
    assert multi.metadata["prompt_messages"][0] == {"role": "system", "content": "Be brief."}
    assert rows[4].error is not None and rows[4].error.startswith("prompt: must be a string or")


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def test_csv_rows() -> None:
    data = (
        "External ID,prompt,response_a,response_b,response_c,model_a,model_b,priority,gold_choice,topic\n"
        "c1,Say hi,hi,hello,hey,m1,m2,1.5,b,greetings\n"
        "c2,Say bye,bye,ciao,,m1,,,,\n"
    )
    rows = parse(data, "csv")
    assert [r.error for r in rows] == [None, None]
    first, second = rows
    assert (first.line, first.external_id, first.prompt) == (2, "c1", "Say hi")
    assert first.responses == [
        {"text": "hi", "model": "m1", "metadata": {}},
        {"text": "hello", "model": "m2", "metadata": {}},
        {"text": "hey", "model": None, "metadata": {}},
    ]
    assert first.priority == 1.5
    assert first.gold == {"choice": "B"}
    assert first.metadata == {"topic": "greetings"}
    assert (second.line, texts(second), second.priority, second.gold) == (
        3,
        ["bye", "ciao"],
        0.0,
        None,
    )
    assert second.metadata == {}


def test_csv_multiline_fields_keep_line_numbers() -> None:
    data = (
        "prompt,response_a,response_b,priority\r\n"
        '"Line one\r\nline two\r\nline three",a,b,1\r\n'
        'p2,"multi\nline ""quoted""",b,not-a-number\r\n'
        "\r\n"
        "p3,a,b,2\r\n"
    )
    rows = parse(data, "csv")
    assert [(r.line, r.error) for r in rows] == [
        (2, None),
        (5, "priority: not a number"),
        (8, None),
    ]
    assert rows[0].prompt == "Line one\r\nline two\r\nline three"


def test_csv_chosen_rejected_and_extras() -> None:
    data = 'id,prompt,chosen,rejected,gold_ranking,metadata\nx1,p,good,bad,B>A,"{""k"": 1}"\n'
    row = only(parse(data, "csv"))
    assert row.ok
    assert row.external_id == "x1"
    assert texts(row) == ["good", "bad"]
    assert row.metadata == {"k": 1, "source_preference": "A"}
    assert row.gold == {"ranking": ["B", "A"]}


def test_csv_row_errors() -> None:
    data = (
        "prompt,response_a,response_b,response_c,gold_choice\n"
        "p1,a,,c,\n"  # gap
        "p2,a,,,\n"  # one response
        "p3,a,b,c,D\n"  # gold out of range
        "p4,a,b,c,,extra\n"  # too many fields
        ",a,b,,\n"  # empty prompt
        "p6,a,b\n"  # short row: padded
    )
    rows = parse(data, "csv")
    assert errors(rows) == [
        (2, "response_b: empty"),
        (3, "responses: need 2 to 10, got 1"),
        (4, "gold_choice: must be one of A, B, C"),
        (5, "row: 6 fields but the header has 5 (unquoted delimiter?)"),
        (6, "prompt: empty"),
    ]
    assert rows[-1].ok and texts(rows[-1]) == ["a", "b"]


def test_csv_malformed_records(monkeypatch: pytest.MonkeyPatch) -> None:
    header = "prompt,response_a,response_b\n"
    rows = parse(header + 'p1,"a"x,b\np2,a,b\np3,"unclosed,b\np4,a,b\n', "csv")
    assert errors(rows) == [
        (2, "CSV: ',' expected after '\"'"),
        (4, "CSV: file ends inside a quoted field (unclosed quote?)"),
    ]
    assert [r.prompt for r in rows if r.ok] == ["p2"]
    huge = "x" * 200_000
    rows = parse(f'{header}p1,"{huge}",b\np2,a,b\n', "csv")
    assert errors(rows) == [(2, "CSV: field larger than field limit (131072)")]
    assert rows[1].ok and rows[1].line == 3
    monkeypatch.setattr(limits, "MAX_RECORD_CHARS", 50)
    rows = parse(f'{header}p1,a,b\n"p2\n{huge}\nend",a,b\np3,{huge},b\np4,a,b\n', "csv")
    assert [(r.line, r.error) for r in rows] == [
        (2, None),
        (3, "line 4: longer than 50 characters"),
        (6, "line 6: longer than 50 characters"),
        (7, None),
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("question,response_a,response_b", "header: missing 'prompt' column"),
        (
            "prompt,answer",
            "header: need response_a, response_b, ... or chosen and rejected columns",
        ),
        (
            "prompt,response_a,response_c",
            "header: response columns must be response_a, response_b, ... without gaps",
        ),
        ("prompt,response_a", "header: need 2 to 10 response columns, got 1"),
        ("prompt,response_a,response_b,prompt", "header: duplicate column 'prompt'"),
        (
            "prompt,response_a,response_b,model_c",
            "header: 'model_c' has no matching response column",
        ),
    ],
)
def test_csv_header_errors_stop_the_import(header: str, expected: str) -> None:
    rows = parse(f"{header}\np,a,b\n", "csv")
    assert [(r.line, r.error) for r in rows] == [(1, expected)]


def test_csv_delimiter_sniffing() -> None:
    rows = parse("prompt;response_1;response_2\np;a, with comma;b\n")
    assert only(rows).ok and texts(rows[0]) == ["a, with comma", "b"]
    rows = parse("prompt\tresponse_1\tresponse_2\np\ta\tb\n", "csv")
    assert only(rows).ok


# --------------------------------------------------------------------------------------------
# Label Studio
# --------------------------------------------------------------------------------------------


def test_label_studio_array_export() -> None:
    tasks = [
        {"id": 1, "data": {"prompt": "p1", "answer1": "a", "answer2": "b"}, "annotations": []},
        {
            "id": 2,
            "data": {"prompt": "p2", "responses": ["x", {"text": "y", "model": "m"}], "lang": "en"},
            "meta": {"batch": 3},
            "priority": 4,
        },
        {"id": 3, "data": {"prompt": "p3", "chosen": "c", "rejected": "r", "gold": "B"}},
        {
            "id": 4,
            "data": {
                "prompt": "p4",
                "response_a": "1",
                "response_b": "2",
                "response_c": "3",
                "model_a": "ma",
            },
        },
    ]
    text = json.dumps(tasks, indent=2)
    rows = parse(text, "label_studio")
    assert [r.error for r in rows] == [None] * 4
    starts = [i + 1 for i, line in enumerate(text.splitlines()) if line == "  {"]
    assert [r.line for r in rows] == starts
    assert [r.external_id for r in rows] == ["1", "2", "3", "4"]
    assert texts(rows[0]) == ["a", "b"]
    assert rows[1].responses[1] == {"text": "y", "model": "m", "metadata": {}}
    assert rows[1].metadata == {"batch": 3, "lang": "en"}
    assert rows[1].priority == 4.0
    assert rows[2].metadata == {"source_preference": "A"}
    assert rows[2].gold == {"choice": "B"}
    assert texts(rows[3]) == ["1", "2", "3"]
    assert rows[3].responses[0]["model"] == "ma"


LS_ARRAY_WITH_BAD_RECORD_ON_LINE_7 = """\
[
  {"id": 1, "data": {"prompt": "p1", "answer1": "a", "answer2": "b"}},
  {
    "id": 2,
    "data": {"prompt": "p2", "answer1": "a", "answer2": "b"}
  },
  {"id": 3, "data": {"prompt": "p3" "answer1": "a", "answer2": "b"}},
  {"id": 4, "data": {"prompt": "p4", "answer1": "a", "answer2": "b"}},
  {"id": 5, "data": {"prompt": "p5", "answer1": "a"}}
]
"""


def test_label_studio_array_error_line_numbers() -> None:
    rows = parse(LS_ARRAY_WITH_BAD_RECORD_ON_LINE_7, "label_studio")
    assert [(r.line, r.external_id, r.error) for r in rows] == [
        (2, "1", None),
        (3, "2", None),
        (7, "", "invalid JSON: Expecting ',' delimiter at line 7 column 37"),
        (8, "4", None),
        (9, "5", "data.responses: need 2 to 10, got 1"),
    ]


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_json_array_parsing_is_independent_of_chunk_size(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    expected = parse(LS_ARRAY_WITH_BAD_RECORD_ON_LINE_7, "label_studio")
    unicode_tasks = json.dumps(
        [
            {"id": i, "data": {"prompt": "é😀" * i, "answer1": 'a\\"', "answer2": 1e3}}
            for i in range(1, 6)
        ]
    )
    expected_unicode = parse(unicode_tasks, "label_studio")
    monkeypatch.setattr(json_reader, "_CHUNK", chunk)
    assert parse(LS_ARRAY_WITH_BAD_RECORD_ON_LINE_7, "label_studio") == expected
    assert parse(unicode_tasks, "label_studio") == expected_unicode
    assert [r.error for r in expected_unicode] == [
        "data.answer2: must be a string or an object, got number"
    ] * 5


def test_label_studio_jsonl_bare_and_broken_tasks() -> None:
    data = jsonl(
        {"id": 10, "data": {"prompt": "p", "answer1": "a", "answer2": "b"}},
        {"id": 11, "prompt": "bare", "answer1": "a", "answer2": "b", "metadata": {"m": 1}},
        {"id": 12},
        {"id": 13, "data": {"prompt": "p", "text": "t"}},
        {"id": 14, "data": {"prompt": "p", "answer1": "a", "answer3": "c"}},
        {"data": {"external_id": "own-id", "prompt": "q", "answer1": "a", "answer2": "b"}},
    )
    rows = parse(data, "label_studio")
    assert rows[0].ok and rows[0].external_id == "10"
    assert rows[1].ok and rows[1].prompt == "bare" and rows[1].metadata == {"m": 1}
    assert (rows[2].external_id, rows[2].error) == ("12", "data: missing")
    assert rows[3].error is not None and rows[3].error.startswith("data.responses: missing")
    assert (
        rows[4].error == "data.responses: numbering must start at 1 without gaps: answer1, answer3"
    )
    assert rows[5].ok and rows[5].external_id == "own-id"


def test_json_array_structural_errors() -> None:
    truncated = '[\n  {"id": 1, "data": {"prompt": "p", "answer1": "a", "answer2": "b"}},\n  {"id": 2, "data": {'
    rows = parse(truncated, "label_studio")
    assert rows[0].ok
    assert rows[1].line == 3
    assert rows[1].error is not None
    assert rows[1].error.endswith("cannot find where this record ends, stopped")
    assert len(rows) == 2

    unclosed = '[{"id": 1, "data": {"prompt": "p", "answer1": "a", "answer2": "b"}}'
    assert errors(parse(unclosed, "label_studio")) == [
        (1, "invalid JSON: file ends before the closing ']'")
    ]
    trailing = '[{"id": 1, "data": {"prompt": "p", "answer1": "a", "answer2": "b"}}]\nxyz'
    assert errors(parse(trailing, "label_studio")) == [
        (2, "invalid JSON: unexpected data after the closing ']'")
    ]
    garbage = (
        '[\n  nope,\n  {"id": 2, "data": {"prompt": "p", "answer1": "a", "answer2": "b"}},\n  7\n]'
    )
    rows = parse(garbage, "label_studio")
    assert [(r.line, r.ok) for r in rows] == [(2, False), (3, True), (4, False)]
    assert rows[2].error == "record: expected a JSON object, got number"


def test_concatenated_pretty_printed_objects() -> None:
    tasks = [{"id": i, "data": {"prompt": f"p{i}", "answer1": "a", "answer2": "b"}} for i in (1, 2)]
    text = "\n".join(json.dumps(t, indent=2) for t in tasks) + "\n"
    rows = parse(text)
    assert [(r.line, r.external_id, r.error) for r in rows] == [(1, "1", None), (9, "2", None)]


# --------------------------------------------------------------------------------------------
# Argilla
# --------------------------------------------------------------------------------------------


def test_argilla_records() -> None:
    records = [
        {
            "id": "rec-1",
            "fields": {"prompt": "p1", "response1": "a", "response2": "b", "context": "c"},
            "metadata": {"source": "s", "priority": 2, "gold": "b"},
            "responses": {"preference": [{"value": "A"}]},
            "suggestions": {},
            "status": "pending",
        },
        {
            "id": "uuid-2",
            "external_id": "ext-2",
            "fields": {"prompt": "p2", "responses": ["x", "y", "z"]},
        },
        {"id": "rec-3", "fields": "nope"},
    ]
    for text in (json.dumps(records), jsonl(*records)):
        rows = parse(text, "argilla")
        first, second, third = rows
        assert first.ok
        assert (first.external_id, first.prompt, texts(first)) == ("rec-1", "p1", ["a", "b"])
        assert first.metadata == {"source": "s", "context": "c"}
        assert (first.priority, first.gold) == (2.0, {"choice": "B"})
        assert (second.external_id, texts(second)) == ("ext-2", ["x", "y", "z"])
        assert (third.external_id, third.error) == (
            "rec-3",
            "fields: must be an object, got string",
        )


# --------------------------------------------------------------------------------------------
# Auto-detection, encodings, file objects
# --------------------------------------------------------------------------------------------

LS_TASK = {"id": 1, "data": {"prompt": "p", "answer1": "a", "answer2": "b"}}
ARGILLA_RECORD = {"id": "r", "fields": {"prompt": "p", "response1": "a", "response2": "b"}}
NATIVE = {"prompt": "p", "responses": ["a", "b"]}
TRL = {"prompt": "p", "chosen": "a", "rejected": "b"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (jsonl(NATIVE), "jsonl"),
        (jsonl(TRL), "trl"),
        (json.dumps([TRL], indent=2), "trl"),
        (jsonl(LS_TASK), "label_studio"),
        ("\n\n  " + json.dumps([LS_TASK, LS_TASK | {"id": 2}], indent=4), "label_studio"),
        (json.dumps(LS_TASK, indent=2), "label_studio"),
        (jsonl(ARGILLA_RECORD), "argilla"),
        (json.dumps([ARGILLA_RECORD]), "argilla"),
        ("prompt,response_a,response_b\np,a,b\n", "csv"),
        ("prompt,chosen,rejected\np,a,b\n", "csv"),
        ('{"prompt": broken\n', "jsonl"),
        ('{"something": "else"}\n', "jsonl"),
        ("", "jsonl"),
    ],
)
def test_auto_detection(content: str, expected: str) -> None:
    stream = io.BytesIO(b"\xef\xbb\xbf" + content.encode())
    stream.read(3)  # detect_format starts where the file is...
    assert detect_format(stream) == expected
    assert stream.tell() == 3  # ...and seeks back there
    auto = parse(content)
    assert auto == parse(content, expected)
    if content.strip() and expected not in ("jsonl",):
        assert all(r.ok for r in auto), auto


def test_bom_is_ignored_for_binary_and_text_streams() -> None:
    csv_data = "prompt,response_a,response_b\np,a,b\n"
    for raw in (b"\xef\xbb\xbf" + csv_data.encode(), "\ufeff" + csv_data):
        stream = io.BytesIO(raw) if isinstance(raw, bytes) else io.StringIO(raw, newline="")
        row = only(list(parse_rows(stream, "auto")))
        assert row.ok and row.line == 2 and row.prompt == "p"
    row = only(list(parse_rows(io.StringIO("\ufeff" + jsonl(NATIVE)))))
    assert row.ok and row.line == 1


def test_invalid_utf8_fails_only_its_row() -> None:
    data = b'{"prompt": "caf\xe9", "responses": ["a", "b"]}\n'.join(
        [jsonl(NATIVE).encode(), jsonl(TRL | {"prompt": "other"}).encode()]
    )
    rows = parse(data, "jsonl")
    assert [(r.line, r.error) for r in rows] == [
        (1, None),
        (2, "prompt: contains bytes that are not valid UTF-8"),
        (3, None),
    ]


def test_utf16_file_is_rejected() -> None:
    rows = parse("prompt,response_a,response_b\np,a,b\n".encode("utf-16"))
    assert [(r.line, r.error) for r in rows] == [(1, "file: looks like UTF-16; save it as UTF-8")]


def test_caller_file_stays_open(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text(jsonl(NATIVE, TRL, NATIVE | {"id": "x"}))
    with path.open("rb") as fh:
        assert len(list(parse_rows(fh))) == 3
        assert not fh.closed
        fh.seek(0)
        rows = parse_rows(fh)
        assert next(rows).ok
        rows.close()  # abandoned half-way
        assert not fh.closed
        fh.seek(0)
        assert fh.read(1) == b"{"


class UploadLike:
    """Duck-typed stand-in for a Django UploadedFile: only read(n) returning bytes."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._buf.read(size)


def test_objects_with_only_read_are_accepted() -> None:
    rows = list(parse_rows(UploadLike(b"\xef\xbb\xbf" + jsonl(TRL, NATIVE | {"id": 2}).encode())))
    assert [r.ok for r in rows] == [True, True]


def test_unknown_format_and_aliases() -> None:
    with pytest.raises(ValueError, match="unknown import format"):
        parse_rows(io.BytesIO(b""), "xml")
    with pytest.raises(ValueError, match="max_responses"):
        parse_rows(io.BytesIO(b""), "jsonl", max_responses=11)
    assert only(parse(jsonl(LS_TASK), "Label-Studio")).ok


def test_max_responses_can_be_lowered() -> None:
    row = only(parse(jsonl({"prompt": "p", "responses": ["a", "b", "c"]}), max_responses=2))
    assert row.error == "responses: need 2 to 2, got 3"


# --------------------------------------------------------------------------------------------
# Ids and duplicates
# --------------------------------------------------------------------------------------------


def test_deterministic_ids() -> None:
    data = jsonl(
        {"prompt": "p é", "responses": ["a", "b"]},
        {"prompt": "p é", "responses": ["b", "a"]},
        TRL,
    )
    first, again = parse(data), parse(data)
    assert [r.external_id for r in first] == [r.external_id for r in again]
    expected = hashlib.sha256(
        json.dumps(
            {"prompt": "p é", "responses": ["a", "b"]}, sort_keys=True, separators=(",", ":")
        ).encode()
    ).hexdigest()[:16]
    assert first[0].external_id == expected == content_id("p é", ["a", "b"])
    assert len({r.external_id for r in first}) == 3  # order matters
    assert all(len(r.external_id) == 16 for r in first)
    # models and metadata do not change the identity of an item
    other = only(
        parse(
            jsonl(
                {
                    "prompt": "p é",
                    "responses": [{"text": "a", "model": "m"}, "b"],
                    "metadata": {"k": 1},
                }
            )
        )
    )
    assert other.external_id == expected
    # the same content in another format gets the same id
    assert only(parse("prompt,chosen,rejected\np,a,b\n")).external_id == content_id("p", ["a", "b"])


def test_duplicate_external_ids() -> None:
    data = jsonl(
        {"external_id": "a", "prompt": "p", "responses": ["x", "y"]},
        {"external_id": "b", "prompt": "p", "responses": ["x", "y"]},
        {"external_id": "a", "prompt": "q", "responses": ["x", "y"]},
        {"prompt": "same", "responses": ["x", "y"]},
        {"prompt": "same", "responses": ["x", "y"]},
        {"external_id": "a", "prompt": "p"},
    )
    rows = parse(data)
    assert errors(rows) == [
        (3, "external_id: duplicate of line 1"),
        (5, "external_id: duplicate of line 4"),
        (6, "responses: missing; external_id: duplicate of line 1"),
    ]
    assert errors(parse(data, check_duplicates=False)) == [(6, "responses: missing")]


def test_seen_ids_table_grows() -> None:
    seen = SeenIds(capacity=4)
    ids = [f"id-{i}" for i in range(10_000)]
    assert [seen.add(x, n) for n, x in enumerate(ids, 1)] == [0] * len(ids)
    assert seen.add("id-1234", 99_999) == 1235


# --------------------------------------------------------------------------------------------
# Batches, robustness, memory
# --------------------------------------------------------------------------------------------


def test_iter_batches() -> None:
    assert list(iter_batches(range(7), size=3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(iter_batches([], size=3)) == []
    with pytest.raises(ValueError):
        list(iter_batches([1], size=0))
    rows = parse_rows(
        io.BytesIO(
            jsonl(*[{"prompt": f"p{i}", "responses": ["a", "b"]} for i in range(5)]).encode()
        )
    )
    assert [len(b) for b in iter_batches(rows, size=2)] == [2, 2, 1]


@pytest.mark.parametrize(
    "content",
    [
        jsonl(
            NATIVE, TRL, {"id": 3, "prompt": "p", "responses": [{"text": "a"}, "b"], "gold": "A"}
        ),
        json.dumps(
            [LS_TASK, {"id": 2, "data": {"prompt": "q", "responses": ["a", "b"]}}], indent=2
        ),
        json.dumps([ARGILLA_RECORD, ARGILLA_RECORD | {"id": "s"}]),
        'external_id,prompt,response_a,response_b,gold_choice\n1,"multi\nline",a,b,A\n2,p,"x,y",z,\n',
    ],
)
def test_mutated_files_never_raise(content: str) -> None:
    rnd = random.Random(content)
    alphabet = '{}[]",:\n\r\\ az0\x00é'
    for _ in range(300):
        chars = list(content)
        for _ in range(rnd.randint(1, 4)):
            op = rnd.random()
            pos = rnd.randrange(len(chars))
            if op < 0.4:
                chars[pos] = rnd.choice(alphabet)
            elif op < 0.7:
                del chars[pos]
            else:
                chars.insert(pos, rnd.choice(alphabet))
        mutated = "".join(chars)
        for fmt in ("auto", "jsonl", "csv", "label_studio"):
            for row in parse(mutated.encode("utf-8", "surrogatepass"), fmt):
                assert row.line >= 1
                assert row.error or (row.prompt and len(row.responses) >= 2), row


def _peak_while_parsing(path: Path, fmt: str) -> tuple[int, int]:
    count = 0
    tracemalloc.start()
    try:
        with path.open("rb") as fh:
            for row in parse_rows(fh, fmt):
                assert row.error is None, row
                count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak


def test_streaming_memory_stays_flat(tmp_path: Path) -> None:
    n = 200_000
    path = tmp_path / "big.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(
                json.dumps(
                    {
                        "prompt": f"Question {i}: " + "why " * 20,
                        "responses": [f"A{i} " * 10, f"B{i} " * 10],
                    }
                )
                + "\n"
            )
    assert path.stat().st_size > 50_000_000
    count, peak = _peak_while_parsing(path, "jsonl")
    assert count == n
    assert peak < 20 * 1024 * 1024, f"peak traced memory {peak / 1e6:.1f} MB"


def test_streaming_memory_json_array_on_one_line(tmp_path: Path) -> None:
    n = 50_000
    path = tmp_path / "tasks.json"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[")
        for i in range(n):
            task = {
                "id": i,
                "data": {"prompt": f"p{i} " * 50, "answer1": "a " * 50, "answer2": "b"},
            }
            fh.write(("," if i else "") + json.dumps(task))
        fh.write("]")
    count, peak = _peak_while_parsing(path, "auto")
    assert count == n
    assert peak < 20 * 1024 * 1024, f"peak traced memory {peak / 1e6:.1f} MB"
