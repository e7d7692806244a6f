"""CSV rows: the header decides the column layout, each record is mapped through it.

Columns are case-insensitive (spaces and hyphens count as underscores): ``external_id``/``id``,
``prompt``, ``response_a``... (or ``response_1``...) with ``model_a``..., or ``chosen``/
``rejected`` with ``chosen_model``/``rejected_model``; ``priority``, ``gold_choice``,
``gold_ranking``, ``metadata`` (a JSON object); other named columns go to metadata.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import limits
from .fields import (
    check_count,
    check_json,
    clean_external_id,
    clean_gold,
    clean_model,
    clean_priority,
    clean_text,
    consecutive,
    kind,
    letter_index,
)
from .limits import MAX_PROMPT_CHARS, MAX_RESPONSE_CHARS, MIN_RESPONSES
from .reading import TextSource, lines, peek_first_line
from .rows import ParsedRow, error_row, finished_row

_CSV_NUMBERED = re.compile(r"(response|model)_?(\d{1,2}|[a-j])")
_RANKING_SPLIT = re.compile(r"[\s,>]+")


@dataclass(slots=True)
class CsvLayout:
    """Which column holds what, read from the header row."""

    width: int
    names: list[str]
    prompt_col: int
    trl: bool = False
    id_col: int | None = None
    priority_col: int | None = None
    gold_choice_col: int | None = None
    gold_ranking_col: int | None = None
    metadata_col: int | None = None
    response_cols: list[int] = field(default_factory=list)
    model_cols: list[int | None] = field(default_factory=list)
    extra: list[tuple[int, str]] = field(default_factory=list)


def csv_rows(src: TextSource, max_responses: int) -> Iterator[ParsedRow]:
    """Rows of a CSV file; a bad header is one error row and ends the stream."""
    delimiter = _sniff_delimiter(src)
    max_chars = limits.MAX_RECORD_CHARS
    long_lines: list[int] = []
    lineno = 0

    def feed() -> Iterator[str]:
        nonlocal lineno
        for text in lines(src, max_chars):
            lineno += 1
            if text is None:
                long_lines.append(lineno)
                yield "\n"
            else:
                yield text

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)
    layout: CsvLayout | None = None
    previous = 0
    while True:
        try:
            row = next(reader)
            failure = None
        except StopIteration:
            break
        except csv.Error as exc:
            reason = str(exc)
            if reason == "unexpected end of data":
                reason = "file ends inside a quoted field (unclosed quote?)"
            row, failure = [], f"CSV: {reason}"
        start, previous = previous + 1, reader.line_num
        if long_lines:
            inside = [n for n in long_lines if n >= start]
            for n in long_lines:
                if n < start:
                    yield error_row(n, f"line: longer than {max_chars} characters")
            long_lines.clear()
            if inside:
                failure = f"line {inside[0]}: longer than {max_chars} characters"
        if failure is not None:
            yield error_row(start, failure)
            continue
        if not any(row) or (len(row) == 1 and row[0].isspace()):
            continue
        if layout is None:
            result = csv_layout(row, max_responses)
            if isinstance(result, str):
                yield error_row(start, result)
                return
            layout = result
            continue
        yield csv_row(layout, row, start, max_responses)
    for n in long_lines:
        yield error_row(n, f"line: longer than {max_chars} characters")


def _sniff_delimiter(src: TextSource) -> str:
    """``,``, ``;`` or tab, whichever the header line has most of."""
    header = peek_first_line(src)
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else ","


def csv_layout(header: list[str], max_responses: int) -> CsvLayout | str:
    """Column layout from the header row, or an error message."""
    names = [re.sub(r"[\s\-]+", "_", h.strip().lower()) for h in header]
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if not name:
            continue
        if name in index:
            return f"header: duplicate column '{name}'"
        index[name] = i
    if "prompt" not in index:
        return "header: missing 'prompt' column"
    responses: dict[int, int] = {}
    models: dict[int, int] = {}
    for i, name in enumerate(names):
        match = _CSV_NUMBERED.fullmatch(name)
        if match:
            target = responses if match.group(1) == "response" else models
            target[letter_index(match.group(2))] = i
    layout = CsvLayout(width=len(names), names=names, prompt_col=index["prompt"])
    if responses:
        indices = sorted(responses)
        if not consecutive(indices):
            return "header: response columns must be response_a, response_b, ... without gaps"
        if not MIN_RESPONSES <= len(indices) <= max_responses:
            return (
                f"header: need {MIN_RESPONSES} to {max_responses} response columns, "
                f"got {len(indices)}"
            )
        for index_ in models:
            if index_ not in responses:
                return f"header: '{names[models[index_]]}' has no matching response column"
        layout.response_cols = [responses[i] for i in indices]
        layout.model_cols = [models.get(i) for i in indices]
    elif "chosen" in index and "rejected" in index:
        layout.trl = True
        layout.response_cols = [index["chosen"], index["rejected"]]
        layout.model_cols = [index.get("chosen_model"), index.get("rejected_model")]
    else:
        return "header: need response_a, response_b, ... or chosen and rejected columns"
    layout.id_col = index.get("external_id", index.get("id"))
    layout.priority_col = index.get("priority")
    layout.gold_choice_col = index.get("gold_choice", index.get("gold"))
    layout.gold_ranking_col = index.get("gold_ranking")
    layout.metadata_col = index.get("metadata")
    used = {
        layout.prompt_col,
        layout.id_col,
        layout.priority_col,
        layout.gold_choice_col,
        layout.gold_ranking_col,
        layout.metadata_col,
        *layout.response_cols,
        *layout.model_cols,
    }
    layout.extra = [(i, n) for i, n in enumerate(names) if n and i not in used]
    return layout


def csv_row(layout: CsvLayout, row: list[str], line: int, max_responses: int) -> ParsedRow:
    """Map one CSV record through ``layout``."""
    width = layout.width
    if len(row) < width:
        row = row + [""] * (width - len(row))
    elif len(row) > width and any(row[width:]):
        return error_row(
            line, f"row: {len(row)} fields but the header has {width} (unquoted delimiter?)"
        )
    errors: list[str] = []
    names = layout.names
    external_id = ""
    if layout.id_col is not None:
        external_id = clean_external_id(row[layout.id_col], names[layout.id_col], errors)
    prompt = clean_text(row[layout.prompt_col], "prompt", errors, MAX_PROMPT_CHARS)
    count = len(layout.response_cols)
    if not layout.trl:
        while count and not row[layout.response_cols[count - 1]].strip():
            count -= 1
        check_count(count, "responses", errors, max_responses)
    responses = []
    for col, model_col in zip(layout.response_cols[:count], layout.model_cols[:count], strict=True):
        text = clean_text(row[col], names[col], errors, MAX_RESPONSE_CHARS)
        model = None
        if model_col is not None:
            model = clean_model(row[model_col], names[model_col], errors)
        responses.append({"text": text, "model": model, "metadata": {}})
    metadata: dict[str, Any] = {}
    if layout.metadata_col is not None and row[layout.metadata_col].strip():
        try:
            metadata = json.loads(row[layout.metadata_col])
        except ValueError as exc:
            errors.append(f"metadata: invalid JSON: {exc}")
            metadata = {}
        except RecursionError:
            errors.append("metadata: invalid JSON: nested too deeply")
            metadata = {}
        if not isinstance(metadata, dict):
            errors.append(f"metadata: must be a JSON object, got {kind(metadata)}")
            metadata = {}
    for col, name in layout.extra:
        if row[col] != "":
            metadata.setdefault(name, row[col])
    check_json(metadata, "metadata", errors)
    if layout.trl:
        metadata["source_preference"] = "A"
    priority = 0.0
    if layout.priority_col is not None:
        priority = clean_priority(row[layout.priority_col], "priority", errors)
    gold = None
    if not errors:
        raw_gold: dict[str, Any] = {}
        choice_label = ranking_label = "gold"
        if layout.gold_choice_col is not None and row[layout.gold_choice_col].strip():
            raw_gold["choice"] = row[layout.gold_choice_col]
            choice_label = names[layout.gold_choice_col]
        if layout.gold_ranking_col is not None and row[layout.gold_ranking_col].strip():
            ranking = _RANKING_SPLIT.split(row[layout.gold_ranking_col].strip())
            raw_gold["ranking"] = [x for x in ranking if x]
            ranking_label = names[layout.gold_ranking_col]
        if raw_gold:
            gold = clean_gold(
                raw_gold, count, errors, choice_label=choice_label, ranking_label=ranking_label
            )
    return finished_row(line, errors, external_id, prompt, responses, metadata, priority, gold)
