"""Streaming parsers that turn uploaded files into normalised preference items.

Pure Python (stdlib only, no Django), so it runs in web requests, Celery workers and scripts.
Nothing here reads a whole file into memory: JSONL and CSV are read line by line, JSON arrays
with an incremental ``json.JSONDecoder.raw_decode`` over a sliding buffer. Memory stays flat
apart from the duplicate-id table (24 to 48 bytes per row: ~10 MB for 200,000 rows).

Usage::

    rows = parse_rows(upload, "auto")          # binary or text file-like object
    for batch in iter_batches(rows, size=5000):
        good = [r for r in batch if r.error is None]
        ...

Input
-----
A binary file-like object (e.g. a Django ``UploadedFile``) is decoded as UTF-8; a leading BOM
is dropped (``utf-8-sig``), and bytes that are not valid UTF-8 make only the rows containing
them fail. A text stream is used as is (a leading BOM is dropped too). UTF-16 files are
rejected with a single error row. The caller's file is never closed.

Formats (``fmt``)
-----------------
``"jsonl"`` (Attune native)
    One JSON object per line::

        {"external_id"?, "prompt", "responses": [str | {"text", "model"?, "metadata"?}],
         "metadata"?, "priority"?, "gold"?}

    ``id`` is accepted for ``external_id``. Other top-level keys, and other keys of a response
    object, are kept in the matching ``metadata`` (explicit metadata wins). A row without
    ``responses`` but with ``chosen``/``rejected`` is read as a TRL row.
``"trl"``
    JSONL rows ``{"prompt", "chosen", "rejected"}`` (TRL preference format). ``responses`` is
    ``[chosen, rejected]`` in that order and ``metadata["source_preference"] = "A"`` records
    which one was preferred (the UI must hide this). A row with ``responses`` and no
    ``chosen``/``rejected`` is read as a native row, so mixed files work whichever way ``auto``
    decides. ``score_chosen``/``score_rejected`` go to
    the response's ``metadata["score"]``, ``chosen_model``/``rejected_model`` to its ``model``;
    other keys go to ``metadata``. No ``gold`` unless the row has a ``gold`` key.
    Conversational TRL rows are accepted as well: ``prompt``/``chosen``/``rejected`` as lists of
    ``{"role", "content"}`` messages, with or without an explicit prompt (the "implicit prompt"
    form: the common leading messages of ``chosen`` and ``rejected`` become the prompt). A
    response's text is the trailing run of assistant messages (the context before it is taken
    to repeat the prompt); a one-message prompt becomes its content, a longer one a
    ``"role: content"`` transcript, with the original list kept in
    ``metadata["prompt_messages"]``.
``"csv"``
    Header row required (it is line 1 unless blank lines precede it). Column names are
    case-insensitive; spaces and hyphens count as underscores. Columns: ``external_id`` (or
    ``id``)?, ``prompt``, ``response_a``, ``response_b``, ``response_c``... (``response_1``...
    also works), optional ``model_a``/``model_b``..., ``priority``, ``gold_choice`` (a letter),
    ``gold_ranking`` (letters separated by ``>``, ``,`` or spaces), ``metadata`` (a JSON
    object); or ``prompt,chosen,rejected`` (+ ``chosen_model``/``rejected_model``), read like
    TRL. Other named columns go to ``metadata`` (as strings, empty cells skipped). Empty
    trailing response cells are dropped, so rows may have different numbers of responses; a
    gap (``response_b`` empty but ``response_c`` set) is an error. The delimiter is ``,``,
    ``;`` or tab, whichever is most frequent in the header line. Quoted fields may span lines.
``"label_studio"``
    Label Studio task export: a JSON array of tasks, JSONL of tasks, or concatenated
    pretty-printed task objects. ``task["data"]`` holds ``prompt`` and the responses as a
    ``responses`` list, or ``answer1``/``answer2``... (also ``response1``... or
    ``response_a``...; ``model1``... set the models), or ``chosen``/``rejected``. ``id`` is the
    external id (falling back to ``data.external_id``/``data.id``), ``meta`` and the other data
    keys become metadata, ``priority``/``gold`` are read from the task or from ``data``. A bare
    task without a ``data`` wrapper is accepted. Annotations and predictions are ignored.
``"argilla"``
    Argilla v2 records (array, JSONL or concatenated objects) ``{"id", "external_id"?,
    "fields": {"prompt", "response1", "response2", ... | "responses" | "chosen", "rejected"},
    "metadata"?}``. ``external_id`` wins over ``id``; ``priority`` and ``gold`` are read from the
    record or popped from its ``metadata``. Argilla's own ``responses``/``suggestions`` (the
    annotations) are ignored.
``"auto"``
    The first non-whitespace character decides: anything but ``{`` or ``[`` means CSV.
    Otherwise the first record (first line, first array element, or first pretty-printed
    object) is decoded and its keys decide: a ``fields`` object -> ``argilla``; a ``data``
    object -> ``label_studio``; a ``responses`` key -> ``jsonl``; ``chosen`` and ``rejected`` ->
    ``trl``; anything else (including an undecodable first record) -> ``jsonl``.

Every JSON format accepts all three layouts: JSON Lines, a JSON array (commas between elements
are not enforced), or whitespace-separated objects when the first non-blank line is just ``{``.

Output
------
A generator of :class:`ParsedRow`. ``line`` is the 1-based physical line on which the record
starts (for a CSV record spanning several lines, its first line). ``gold`` is normalised to
``{"choice": "A"}`` and/or ``{"ranking": ["B", "A", ...]}``, letters referring to responses in
file order (``A`` = first); a bare letter or list in JSON is accepted; extra gold keys are kept.
Without an explicit id the external id is :func:`content_id` of the prompt and response texts
(first 16 hex digits of the SHA-256 of ``json.dumps({"prompt": ..., "responses": [texts]},
sort_keys=True, separators=(",", ":"))``), so re-importing the same file gives the same ids.

Errors
------
A malformed record never stops the stream: it yields a ``ParsedRow`` whose ``error`` names the
field(s), e.g. ``"prompt: missing"``, ``"responses: need 2 to 10, got 1"``,
``"invalid JSON: Expecting ',' delimiter at column 17"``, ``"priority: not a number"``,
``"external_id: longer than 255 characters"``, ``"prompt: longer than 100000 characters"``
(several problems are joined with ``"; "``). On error rows only ``line``, ``external_id`` (when
it could be read) and ``error`` are meaningful. Limits: 2 to 10 responses, prompt and each
response at most 100,000 characters, ids and model names at most 255, a record at most
8,000,000 characters; NUL characters, unpaired surrogates, invalid UTF-8 and NaN/Infinity are
rejected because PostgreSQL cannot store them. Blank lines are skipped. A later row whose
external id was already seen in the file gets ``"external_id: duplicate of line N"`` (ids are
remembered as 64-bit hashes, so a false duplicate has a probability of about 3e-8 per million
rows). A JSON array element that cannot be decoded is skipped by bracket matching and parsing
resumes with the next element; if even that fails, one last error row says where reading
stopped.

Modules
-------
``reading`` (decoding, lines, format detection), ``json_reader`` (the three JSON layouts),
``fields`` (one field's checks), one mapper per format (``native``, ``trl``, ``label_studio``
and ``argilla`` over ``keyed``, ``csv_format``), ``duplicates``, ``rows`` (:class:`ParsedRow`)
and ``limits``. This module wires them together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import IO, Any, TypeVar

from .argilla import argilla_row
from .csv_format import csv_rows
from .duplicates import flag_duplicates
from .fields import kind
from .json_reader import json_records
from .label_studio import label_studio_row
from .limits import (
    MAX_EXTERNAL_ID_CHARS,
    MAX_PROMPT_CHARS,
    MAX_RECORD_CHARS,
    MAX_RESPONSE_CHARS,
    MAX_RESPONSES,
    MIN_RESPONSES,
)
from .native import native_row
from .reading import TextSource, open_text, sniff_format
from .rows import ParsedRow, content_id, error_row
from .trl import trl_row

__all__ = [
    "FORMATS",
    "MAX_EXTERNAL_ID_CHARS",
    "MAX_PROMPT_CHARS",
    "MAX_RECORD_CHARS",
    "MAX_RESPONSES",
    "MAX_RESPONSE_CHARS",
    "MIN_RESPONSES",
    "ParsedRow",
    "content_id",
    "detect_format",
    "iter_batches",
    "parse_rows",
]

FORMATS = ("auto", "jsonl", "csv", "trl", "label_studio", "argilla")

# Row mappers of the JSON formats: (line, decoded object, max_responses) -> ParsedRow.
_JSON_MAPPERS: dict[str, Callable[[int, dict[str, Any], int], ParsedRow]] = {
    "jsonl": native_row,
    "trl": trl_row,
    "label_studio": label_studio_row,
    "argilla": argilla_row,
}

_T = TypeVar("_T")


def parse_rows(
    file: IO[bytes] | IO[str] | Any,
    fmt: str = "auto",
    *,
    max_responses: int = MAX_RESPONSES,
    check_duplicates: bool = True,
) -> Iterator[ParsedRow]:
    """Stream :class:`ParsedRow` records out of ``file``.

    ``file`` is a binary or text file-like object with ``read()``/``readline()`` (or any object
    whose ``read(n)`` returns bytes, such as a Django ``UploadedFile``); it is not closed.
    ``fmt`` is one of :data:`FORMATS` (``-``/case are ignored, so ``"Label-Studio"`` works).
    Arguments are validated immediately; the file is only read while iterating.
    """
    name = _format_name(fmt)
    if not MIN_RESPONSES <= max_responses <= MAX_RESPONSES:
        raise ValueError(f"max_responses must be between {MIN_RESPONSES} and {MAX_RESPONSES}")
    return _generate(file, name, max_responses, check_duplicates)


def detect_format(file: IO[bytes] | IO[str] | Any) -> str:
    """Return the format ``"auto"`` would pick for ``file`` (see the module docstring).

    Reads at most about 1 MiB and seeks back, so ``file`` must be seekable.
    """
    start = file.tell()
    stream, release = open_text(file)
    try:
        return sniff_format(TextSource(stream))
    finally:
        release()
        file.seek(start)


def iter_batches(rows: Iterable[_T], size: int = 5000) -> Iterator[list[_T]]:
    """Group ``rows`` into lists of at most ``size`` items (the last one may be shorter)."""
    if size < 1:
        raise ValueError("size must be at least 1")
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def _format_name(fmt: str) -> str:
    name = str(fmt).strip().lower().replace("-", "_")
    if name == "labelstudio":
        name = "label_studio"
    if name not in FORMATS:
        raise ValueError(f"unknown import format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return name


def _json_rows(src: TextSource, fmt: str, max_responses: int) -> Iterator[ParsedRow]:
    mapper = _JSON_MAPPERS[fmt]
    for line, record, message in json_records(src):
        if message is not None:
            yield error_row(line, message)
        elif type(record) is dict:
            yield mapper(line, record, max_responses)
        else:
            yield error_row(line, f"record: expected a JSON object, got {kind(record)}")


def _generate(
    file: Any, fmt: str, max_responses: int, check_duplicates: bool
) -> Iterator[ParsedRow]:
    stream, release = open_text(file)
    try:
        src = TextSource(stream)
        if src.utf16:
            yield error_row(1, "file: looks like UTF-16; save it as UTF-8")
            return
        if fmt == "auto":
            fmt = sniff_format(src)
        rows = csv_rows(src, max_responses) if fmt == "csv" else _json_rows(src, fmt, max_responses)
        yield from flag_duplicates(rows) if check_duplicates else rows
    finally:
        release()
