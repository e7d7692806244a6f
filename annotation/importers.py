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
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import re
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from json.encoder import encode_basestring_ascii as _json_string
from typing import IO, Any, TypeVar

from rlhf_platform.validation import json_problem
from rlhf_platform.validation import text_problem as _bad_text

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
MIN_RESPONSES = 2
MAX_RESPONSES = 10
MAX_PROMPT_CHARS = 100_000
MAX_RESPONSE_CHARS = 100_000
MAX_EXTERNAL_ID_CHARS = 255
MAX_MODEL_CHARS = 255
MAX_RECORD_CHARS = 8_000_000
LETTERS = "ABCDEFGHIJ"

_CHUNK = 1 << 16  # characters read at a time by the JSON array parser
_PIECE = 1 << 16  # readline() limit while sniffing
_SNIFF_LIMIT = 1 << 20  # give up decoding the first record for auto-detection after this

_T = TypeVar("_T")


@dataclass(slots=True)
class ParsedRow:
    """One record of an uploaded file, normalised.

    ``responses`` items are ``{"text": str, "model": str | None, "metadata": dict}``.
    When ``error`` is set the row must not be imported; the other fields are then best effort.
    """

    line: int
    external_id: str
    prompt: str
    responses: list[dict[str, Any]]
    metadata: dict[str, Any] = field(default_factory=dict)
    priority: float = 0.0
    gold: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the row has no error."""
        return self.error is None


# ------------------------------------------------------------------------------------------
# Public functions
# ------------------------------------------------------------------------------------------


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
    return _generate(file, name, _Normaliser(max_responses), check_duplicates)


def detect_format(file: IO[bytes] | IO[str] | Any) -> str:
    """Return the format ``"auto"`` would pick for ``file`` (see the module docstring).

    Reads at most about 1 MiB and seeks back, so ``file`` must be seekable.
    """
    start = file.tell()
    stream, release = _open_text(file)
    try:
        return _sniff(_TextSource(stream))
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


def content_id(prompt: str, responses: Iterable[str]) -> str:
    """Deterministic external id of an item without one: 16 hex digits of a SHA-256.

    Equal to ``sha256(json.dumps({"prompt": prompt, "responses": list(responses)},
    sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]`` (compact, key-sorted
    JSON with the default ASCII escaping).
    """
    # Built by hand: same bytes, without json.dumps' per-call encoder set-up.
    payload = "".join(
        (
            '{"prompt":',
            _json_string(prompt),
            ',"responses":[',
            ",".join(map(_json_string, responses)),
            "]}",
        )
    )
    return hashlib.sha256(payload.encode("ascii")).hexdigest()[:16]


# ------------------------------------------------------------------------------------------
# Stream plumbing
# ------------------------------------------------------------------------------------------

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\r\n]*")
_ARRAY_SEP = re.compile(r"[ \t\r\n,]*")
# Bracket matching used to skip a broken JSON element: strings (possibly unterminated at the
# end of a line) and brackets.
_STRUCT = re.compile(r'"(?:[^"\\\n]|\\.)*"?|[{}\[\]]')
_ARRAY_SCALAR_END = re.compile(r"[,\]\n]")
_EOL = re.compile(r"\n")


def _format_name(fmt: str) -> str:
    name = str(fmt).strip().lower().replace("-", "_")
    if name == "labelstudio":
        name = "label_studio"
    if name not in FORMATS:
        raise ValueError(f"unknown import format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return name


class _ReadAdapter(io.RawIOBase):
    """Raw stream over any object whose ``read(n)`` returns bytes (e.g. Django ``File``)."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._file.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


def _noop() -> None:
    return None


def _open_text(file: Any) -> tuple[IO[str], Callable[[], None]]:
    """Return a text stream over ``file`` and a function that releases it without closing."""
    if isinstance(file, io.TextIOBase) or isinstance(file.read(0), str):
        return file, _noop
    buffer = file if isinstance(file, io.IOBase) else io.BufferedReader(_ReadAdapter(file), _CHUNK)
    # newline="" keeps line endings as they are: csv needs that, and a lone "\r" still ends a line.
    wrapper = io.TextIOWrapper(buffer, encoding="utf-8-sig", errors="surrogateescape", newline="")

    def release() -> None:
        with contextlib.suppress(ValueError):
            wrapper.detach()  # the caller's file stays open

    return wrapper, release


class _TextSource:
    """A text stream with push-back, so sniffers can look ahead without seeking."""

    __slots__ = ("_pending", "_stream", "utf16")

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._pending: deque[str] = deque()
        first = stream.readline(_PIECE)
        if first.startswith("\ufeff"):  # text streams opened without utf-8-sig
            first = first[1:]
        # UTF-16 BOMs decoded as UTF-8 with surrogateescape.
        self.utf16 = first.startswith(("\udcff\udcfe", "\udcfe\udcff"))
        if first:
            self._pending.append(first)

    def readline(self, limit: int) -> str:
        """Like ``TextIOBase.readline(limit)``, serving pushed-back text first."""
        if not self._pending:
            return self._stream.readline(limit)
        text = self._pending.popleft()
        # A pushed-back piece may be a partial line: complete it.
        while text and text[-1] not in "\r\n" and len(text) < limit:
            more = self.readline(limit - len(text))
            if not more:
                break
            text += more
        return text

    def read(self, size: int) -> str:
        """Read about ``size`` characters (pushed-back text is returned whole)."""
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            return text
        return self._stream.read(size)

    def unread(self, pieces: list[str]) -> None:
        """Push ``pieces`` (in reading order) back in front of the stream."""
        self._pending.extendleft(reversed(pieces))


def _lines(src: _TextSource, limit: int) -> Iterator[str | None]:
    """Yield physical lines; ``None`` stands for a line longer than ``limit`` (skipped)."""
    readline = src.readline
    while True:
        line = readline(limit)
        if not line:
            return
        if len(line) >= limit and line[-1] not in "\r\n":
            while True:  # drain the rest of the over-long line without keeping it
                line = readline(limit)
                if not line or line[-1] in "\r\n":
                    break
            yield None
            continue
        yield line


# ------------------------------------------------------------------------------------------
# Format detection
# ------------------------------------------------------------------------------------------


def _classify(record: Any) -> str:
    if isinstance(record, dict):
        if isinstance(record.get("fields"), dict):
            return "argilla"
        if isinstance(record.get("data"), dict):
            return "label_studio"
        if "responses" in record:
            return "jsonl"
        if "chosen" in record and "rejected" in record:
            return "trl"
    return "jsonl"


def _sniff(src: _TextSource) -> str:
    """Guess the format from the first record; everything read is pushed back."""
    pieces: list[str] = []
    try:
        while True:
            piece = src.readline(_PIECE)
            if not piece:
                return "jsonl"  # empty file: nothing will be yielded anyway
            pieces.append(piece)
            stripped = piece.lstrip()
            if stripped:
                break
        first = stripped[0]
        if first not in "[{":
            return "csv"
        head = len(pieces) - 1
        offset = len(piece) - len(stripped)
        line_mode = first == "{" and stripped.strip() != "{"
        eof = False
        attempt_at = 0
        size = len(piece)
        while True:
            complete = eof or (line_mode and pieces[-1][-1] in "\r\n")
            if complete or (not line_mode and size >= attempt_at):
                text = "".join(pieces[head:])
                start = _WS.match(text, offset + 1).end() if first == "[" else offset
                try:
                    record, _ = _DECODER.raw_decode(text, start)
                except (ValueError, RecursionError):
                    if complete:
                        return "jsonl"
                    attempt_at = 2 * size
                else:
                    return _classify(record)
            if size > _SNIFF_LIMIT:
                return "jsonl"
            piece = src.readline(_PIECE)
            if piece:
                pieces.append(piece)
                size += len(piece)
            else:
                eof = True
    finally:
        src.unread(pieces)


# ------------------------------------------------------------------------------------------
# JSON record readers: yield (line, record, error)
# ------------------------------------------------------------------------------------------

_Record = tuple[int, Any, str | None]


def _peek_first_line(src: _TextSource) -> str:
    """The first non-blank line (or piece of one), left unread in ``src``."""
    pieces: list[str] = []
    first = ""
    while True:
        piece = src.readline(_PIECE)
        if not piece:
            break
        pieces.append(piece)
        if not piece.isspace():
            first = piece
            break
    src.unread(pieces)
    return first


def _json_records(src: _TextSource) -> Iterator[_Record]:
    stripped = _peek_first_line(src).strip()
    if stripped.startswith("["):
        return _JsonSequence(src, is_array=True).records()
    if stripped == "{":
        return _JsonSequence(src, is_array=False).records()
    return _json_lines(src)


def _json_lines(src: _TextSource) -> Iterator[_Record]:
    decode = _DECODER.decode
    lineno = 0
    for line in _lines(src, MAX_RECORD_CHARS):
        lineno += 1
        if line is None:
            yield lineno, None, f"line: longer than {MAX_RECORD_CHARS} characters"
            continue
        if line.isspace():
            continue
        try:
            record = decode(line)
        except json.JSONDecodeError as exc:
            yield lineno, None, f"invalid JSON: {exc.msg} at column {exc.colno}"
            continue
        except (ValueError, RecursionError) as exc:
            yield lineno, None, f"invalid JSON: {_value_error(exc)}"
            continue
        yield lineno, record, None


def _value_error(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


class _JsonSequence:
    """Incremental reader of a JSON array (or of whitespace-separated JSON values).

    Keeps a sliding text buffer; each element is decoded with ``raw_decode``. When decoding
    fails only because the buffer ends too early, more text is read and decoding is retried.
    """

    def __init__(self, src: _TextSource, *, is_array: bool) -> None:
        self.src = src
        self.is_array = is_array
        self.buf = ""
        self.pos = 0
        self.line = 1  # line number of self.pos
        self.line_start = 0  # offset (in the whole file) of the start of that line
        self.dropped = 0  # characters dropped from the front of the buffer so far
        self.eof = False

    def _fill(self, want: int = 0) -> None:
        if self.pos >= _CHUNK:  # drop consumed text (amortised: at most once per chunk)
            self.buf = self.buf[self.pos :]
            self.dropped += self.pos
            self.pos = 0
        data = self.src.read(max(want, _CHUNK))
        if data:
            self.buf += data
        else:
            self.eof = True

    def _advance(self, end: int) -> None:
        newlines = self.buf.count("\n", self.pos, end)
        if newlines:
            self.line += newlines
            self.line_start = self.dropped + self.buf.rfind("\n", self.pos, end) + 1
        self.pos = end

    def _skip(self, pattern: re.Pattern[str]) -> bool:
        """Skip characters matching ``pattern``; False at end of input."""
        while True:
            self._advance(pattern.match(self.buf, self.pos).end())
            if self.pos < len(self.buf):
                return True
            if self.eof:
                return False
            self._fill()

    def records(self) -> Iterator[_Record]:
        if self.is_array:
            if not self._skip(_WS):
                return
            if self.buf[self.pos] != "[":
                yield self.line, None, "invalid JSON: expected '[' at the start of the file"
                return
            self._advance(self.pos + 1)
        separators = _ARRAY_SEP if self.is_array else _WS
        while True:
            if not self._skip(separators):
                if self.is_array:
                    yield self.line, None, "invalid JSON: file ends before the closing ']'"
                return
            if self.is_array and self.buf[self.pos] == "]":
                self._advance(self.pos + 1)
                if self._skip(_WS):
                    yield self.line, None, "invalid JSON: unexpected data after the closing ']'"
                return
            start_line = self.line
            record, end, error = self._decode()
            if error is None:
                yield start_line, record, None
                self._advance(end)
                continue
            end = self._find_end()
            if end is None:
                yield start_line, None, f"{error}; cannot find where this record ends, stopped"
                return
            yield start_line, None, error
            self._advance(end)

    def _decode(self) -> tuple[Any, int, str | None]:
        raw_decode = _DECODER.raw_decode
        while True:
            buf, pos = self.buf, self.pos
            try:
                record, end = raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                truncated = exc.pos >= len(buf) - 8 or exc.msg.startswith("Unterminated string")
                if truncated and not self.eof:
                    if len(buf) - pos > MAX_RECORD_CHARS:
                        return None, 0, f"record: longer than {MAX_RECORD_CHARS} characters"
                    self._fill(len(buf) - pos)
                    continue
                return None, 0, self._describe(exc)
            except (ValueError, RecursionError) as exc:
                return None, 0, f"invalid JSON: {_value_error(exc)}"
            if end >= len(buf) and not self.eof:
                self._fill(len(buf) - pos)  # a number may continue in the next chunk
                continue
            return record, end, None

    def _describe(self, exc: json.JSONDecodeError) -> str:
        newlines = self.buf.count("\n", self.pos, exc.pos)
        if newlines:
            column = exc.pos - self.buf.rfind("\n", self.pos, exc.pos)
        else:
            column = self.dropped + exc.pos - self.line_start + 1
        line = self.line + newlines
        return f"invalid JSON: {exc.msg} at line {line} column {column}"

    def _find_end(self) -> int | None:
        """Index just past the broken element at ``self.pos`` (None if not found)."""
        while True:
            end = self._scan_end()
            if end is not None:
                return end
            if self.eof or len(self.buf) - self.pos > MAX_RECORD_CHARS:
                return None
            self._fill(len(self.buf) - self.pos)

    def _scan_end(self) -> int | None:
        buf, pos = self.buf, self.pos
        if buf[pos] not in "{[":
            match = (_ARRAY_SCALAR_END if self.is_array else _EOL).search(buf, pos + 1)
            if match:
                return match.start()
            return len(buf) if self.eof else None
        depth = 0
        for match in _STRUCT.finditer(buf, pos):
            char = buf[match.start()]
            if char == '"':
                continue
            if char in "{[":
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    return match.end()
        return None


# ------------------------------------------------------------------------------------------
# Validation helpers
# ------------------------------------------------------------------------------------------

_NATIVE_KEYS = frozenset(
    {"external_id", "id", "prompt", "responses", "metadata", "priority", "gold"}
)
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
_RESPONSE_KEYS = frozenset({"text", "model", "metadata"})
_TRL_SIDES = (
    ("chosen", "score_chosen", "chosen_model"),
    ("rejected", "score_rejected", "rejected_model"),
)
_NUMBERED_KEY = re.compile(r"(response|answer|completion|model)_?(\d{1,2}|[a-j])", re.IGNORECASE)
_RESPONSE_WORDS = ("response", "answer", "completion")
_CSV_NUMBERED = re.compile(r"(response|model)_?(\d{1,2}|[a-j])")
_RANKING_SPLIT = re.compile(r"[\s,>]+")


def _kind(value: Any) -> str:
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


def _bad_json(value: Any) -> str | None:
    """Like :func:`_bad_text` for every string, float and nesting level of a JSON value."""
    problem = json_problem(value)
    return problem[1] if problem else None


def _letter_index(token: str) -> int:
    """``"a"`` -> 1, ``"3"`` -> 3."""
    return int(token) if token.isdigit() else ord(token.lower()) - ord("a") + 1


def _consecutive(indices: list[int]) -> bool:
    return (
        bool(indices)
        and indices[0] in (0, 1)
        and indices == list(range(indices[0], indices[0] + len(indices)))
    )


def _is_messages(value: list[Any]) -> bool:
    return all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in value
    )


def _render_messages(messages: list[dict[str, Any]]) -> str:
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)


def _completion_text(messages: list[dict[str, Any]]) -> str:
    start = len(messages)
    while start and messages[start - 1]["role"] == "assistant":
        start -= 1
    tail = messages[start:]
    if not tail:
        return _render_messages(messages)
    return "\n\n".join(m["content"] for m in tail)


class _Normaliser:
    """Turns decoded records (or CSV rows) into :class:`ParsedRow`."""

    __slots__ = ("max_responses",)

    def __init__(self, max_responses: int) -> None:
        self.max_responses = max_responses

    # -- field validators: append "<field>: <reason>" to ``errors`` --------------------------

    @staticmethod
    def text(value: Any, label: str, errors: list[str], limit: int) -> str:
        if not isinstance(value, str):
            if value is None:
                errors.append(f"{label}: missing")
            else:
                errors.append(f"{label}: must be a string, got {_kind(value)}")
            return ""
        if not value or value.isspace():
            errors.append(f"{label}: empty")
            return ""
        if len(value) > limit:
            errors.append(f"{label}: longer than {limit} characters")
        reason = _bad_text(value)
        if reason:
            errors.append(f"{label}: {reason}")
        return value

    @staticmethod
    def external_id(value: Any, label: str, errors: list[str]) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            text = value.strip()
        elif isinstance(value, int) and not isinstance(value, bool):
            text = str(value)
        else:
            errors.append(f"{label}: must be a string or an integer, got {_kind(value)}")
            return ""
        if len(text) > MAX_EXTERNAL_ID_CHARS:
            errors.append(f"{label}: longer than {MAX_EXTERNAL_ID_CHARS} characters")
            return ""
        reason = _bad_text(text)
        if reason:
            errors.append(f"{label}: {reason}")
            return ""
        return text

    def record_id(self, record: dict[str, Any], errors: list[str], prefix: str = "") -> str:
        value = record.get("external_id")
        if value is not None and value != "":
            return self.external_id(value, prefix + "external_id", errors)
        return self.external_id(record.get("id"), prefix + "id", errors)

    @staticmethod
    def model(value: Any, label: str, errors: list[str]) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            errors.append(f"{label}: must be a string, got {_kind(value)}")
            return None
        if len(value) > MAX_MODEL_CHARS:
            errors.append(f"{label}: longer than {MAX_MODEL_CHARS} characters")
        reason = _bad_text(value)
        if reason:
            errors.append(f"{label}: {reason}")
        return value

    @staticmethod
    def metadata(value: Any, label: str, errors: list[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            errors.append(f"{label}: must be an object, got {_kind(value)}")
            return {}
        return dict(value)

    @staticmethod
    def check_json(value: dict[str, Any], label: str, errors: list[str]) -> None:
        if value:
            reason = _bad_json(value)
            if reason:
                errors.append(f"{label}: {reason}")

    @staticmethod
    def priority(value: Any, label: str, errors: list[str]) -> float:
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

    @staticmethod
    def gold(
        value: Any,
        n_responses: int,
        errors: list[str],
        *,
        label: str = "gold",
        choice_label: str = "gold.choice",
        ranking_label: str = "gold.ranking",
    ) -> dict[str, Any] | None:
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
        reason = _bad_json(gold)
        if reason:
            errors.append(f"{label}: {reason}")
        return gold

    def count_ok(self, count: int, label: str, errors: list[str]) -> bool:
        if MIN_RESPONSES <= count <= self.max_responses:
            return True
        errors.append(f"{label}: need {MIN_RESPONSES} to {self.max_responses}, got {count}")
        return False

    def response(self, value: Any, label: str, errors: list[str]) -> dict[str, Any]:
        if isinstance(value, str):
            self.text(value, label, errors, MAX_RESPONSE_CHARS)
            return {"text": value, "model": None, "metadata": {}}
        if isinstance(value, dict):
            text = self.text(value.get("text"), f"{label}.text", errors, MAX_RESPONSE_CHARS)
            model = self.model(value.get("model"), f"{label}.model", errors)
            meta = self.metadata(value.get("metadata"), f"{label}.metadata", errors)
            for key, val in value.items():
                if key not in _RESPONSE_KEYS:
                    meta.setdefault(key, val)
            self.check_json(meta, f"{label}.metadata", errors)
            return {"text": text, "model": model, "metadata": meta}
        if value is None:
            errors.append(f"{label}: missing")
        else:
            errors.append(f"{label}: must be a string or an object, got {_kind(value)}")
        return {"text": "", "model": None, "metadata": {}}

    def responses(self, value: Any, label: str, errors: list[str]) -> list[dict[str, Any]]:
        if value is None:
            errors.append(f"{label}: missing")
            return []
        if not isinstance(value, list):
            errors.append(f"{label}: must be an array, got {_kind(value)}")
            return []
        if not self.count_ok(len(value), label, errors) and len(value) > self.max_responses:
            return []
        return [self.response(item, f"{label}[{i}]", errors) for i, item in enumerate(value)]

    # -- building rows ------------------------------------------------------------------------

    @staticmethod
    def error(line: int, message: str, external_id: str = "") -> ParsedRow:
        return ParsedRow(line, external_id, "", [], {}, 0.0, None, message)

    @staticmethod
    def finish(
        line: int,
        errors: list[str],
        external_id: str,
        prompt: str,
        responses: list[dict[str, Any]],
        metadata: dict[str, Any],
        priority: float,
        gold: dict[str, Any] | None,
    ) -> ParsedRow:
        if errors:
            return ParsedRow(line, external_id, "", [], {}, 0.0, None, "; ".join(errors))
        if not external_id:
            external_id = content_id(prompt, [r["text"] for r in responses])
        return ParsedRow(line, external_id, prompt, responses, metadata, priority, gold, None)

    # -- JSON formats -------------------------------------------------------------------------

    def native(self, line: int, record: dict[str, Any]) -> ParsedRow:
        if "responses" not in record and ("chosen" in record or "rejected" in record):
            return self.trl(line, record)
        errors: list[str] = []
        external_id = self.record_id(record, errors)
        prompt = self.text(record.get("prompt"), "prompt", errors, MAX_PROMPT_CHARS)
        responses = self.responses(record.get("responses"), "responses", errors)
        metadata = self.metadata(record.get("metadata"), "metadata", errors)
        for key, val in record.items():
            if key not in _NATIVE_KEYS:
                metadata.setdefault(key, val)
        self.check_json(metadata, "metadata", errors)
        priority = self.priority(record.get("priority"), "priority", errors)
        gold = self.gold(record.get("gold"), len(responses), errors) if not errors else None
        return self.finish(line, errors, external_id, prompt, responses, metadata, priority, gold)

    def trl(self, line: int, record: dict[str, Any]) -> ParsedRow:
        if "responses" in record and "chosen" not in record and "rejected" not in record:
            return self.native(line, record)
        errors: list[str] = []
        external_id = self.record_id(record, errors)
        metadata = self.metadata(record.get("metadata"), "metadata", errors)
        prompt_v = record.get("prompt")
        chosen_v = record.get("chosen")
        rejected_v = record.get("rejected")
        if isinstance(prompt_v, list) or isinstance(chosen_v, list) or isinstance(rejected_v, list):
            prompt_v, chosen_v, rejected_v = self.conversation(
                prompt_v, chosen_v, rejected_v, metadata, errors
            )
            if errors:
                return self.finish(line, errors, external_id, "", [], {}, 0.0, None)
        prompt = self.text(prompt_v, "prompt", errors, MAX_PROMPT_CHARS)
        responses = []
        for (key, score_key, model_key), value in zip(
            _TRL_SIDES, (chosen_v, rejected_v), strict=True
        ):
            response = self.response(value, key, errors)
            score = record.get(score_key)
            if score is not None:
                reason = _bad_json(score)
                if reason:
                    errors.append(f"{score_key}: {reason}")
                response["metadata"].setdefault("score", score)
            model = record.get(model_key)
            if model is not None:
                response["model"] = self.model(model, model_key, errors)
            responses.append(response)
        for key, val in record.items():
            if key not in _TRL_KEYS:
                metadata.setdefault(key, val)
        self.check_json(metadata, "metadata", errors)
        metadata["source_preference"] = "A"
        priority = self.priority(record.get("priority"), "priority", errors)
        gold = self.gold(record.get("gold"), 2, errors) if not errors else None
        return self.finish(line, errors, external_id, prompt, responses, metadata, priority, gold)

    @staticmethod
    def conversation(
        prompt: Any, chosen: Any, rejected: Any, metadata: dict[str, Any], errors: list[str]
    ) -> tuple[Any, Any, Any]:
        """Reduce conversational TRL fields (message lists) to plain strings."""
        for label, value in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
            if isinstance(value, list) and not _is_messages(value):
                errors.append(
                    f"{label}: must be a string or a list of messages with string 'role' "
                    "and 'content'"
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

    def mapping_responses(
        self, data: dict[str, Any], prefix: str, metadata: dict[str, Any], errors: list[str]
    ) -> tuple[list[dict[str, Any]], set[str]]:
        """Responses of a Label Studio ``data`` / Argilla ``fields`` object, and the keys used."""
        if "responses" in data:
            return self.responses(data["responses"], prefix + "responses", errors), {"responses"}
        numbered: dict[str, dict[int, str]] = {}
        for key in data:
            match = _NUMBERED_KEY.fullmatch(key)
            if match:
                word = match.group(1).lower()
                numbered.setdefault(word, {})[_letter_index(match.group(2))] = key
        keys = next((numbered[w] for w in _RESPONSE_WORDS if w in numbered), None)
        if keys:
            indices = sorted(keys)
            if not _consecutive(indices):
                names = ", ".join(keys[i] for i in indices)
                errors.append(f"{prefix}responses: numbering must start at 1 without gaps: {names}")
                return [], set()
            if not self.count_ok(len(indices), prefix + "responses", errors) and (
                len(indices) > self.max_responses
            ):
                return [], set()
            models = numbered.get("model", {})
            used = set(keys.values())
            result = []
            for index in indices:
                key = keys[index]
                response = self.response(data[key], prefix + key, errors)
                model_key = models.get(index)
                if model_key is not None:
                    used.add(model_key)
                    response["model"] = self.model(data[model_key], prefix + model_key, errors)
                result.append(response)
            return result, used
        if "chosen" in data or "rejected" in data:
            metadata["source_preference"] = "A"
            result = [
                self.response(data.get("chosen"), prefix + "chosen", errors),
                self.response(data.get("rejected"), prefix + "rejected", errors),
            ]
            return result, {"chosen", "rejected"}
        errors.append(
            f"{prefix}responses: missing (expected 'responses', 'answer1'/'answer2'..., "
            "'response1'/'response2'... or 'chosen'/'rejected')"
        )
        return [], set()

    def mapping(
        self,
        line: int,
        data: dict[str, Any],
        prefix: str,
        errors: list[str],
        *,
        external_id: str,
        metadata: dict[str, Any],
        priority: Any,
        gold: Any,
        skip: frozenset[str],
    ) -> ParsedRow:
        prompt = self.text(data.get("prompt"), prefix + "prompt", errors, MAX_PROMPT_CHARS)
        responses, used = self.mapping_responses(data, prefix, metadata, errors)
        for key, val in data.items():
            if key not in used and key not in skip:
                metadata.setdefault(key, val)
        self.check_json(metadata, "metadata", errors)
        number = self.priority(priority, "priority", errors)
        gold_dict = self.gold(gold, len(responses), errors) if not errors else None
        return self.finish(
            line, errors, external_id, prompt, responses, metadata, number, gold_dict
        )

    def label_studio(self, line: int, task: dict[str, Any]) -> ParsedRow:
        errors: list[str] = []
        data = task.get("data")
        if data is None and "prompt" in task:  # bare task, no "data" wrapper
            external_id = self.record_id(task, errors)
            return self.mapping(
                line,
                task,
                "",
                errors,
                external_id=external_id,
                metadata=self.metadata(task.get("metadata"), "metadata", errors),
                priority=task.get("priority"),
                gold=task.get("gold"),
                skip=_NATIVE_KEYS - {"responses"},
            )
        external_id = self.record_id(task, errors)
        if not isinstance(data, dict):
            reason = "missing" if data is None else f"must be an object, got {_kind(data)}"
            return self.error(line, f"data: {reason}", external_id)
        if not external_id and not errors:
            external_id = self.record_id(data, errors, "data.")
        metadata = self.metadata(task.get("meta"), "meta", errors)
        return self.mapping(
            line,
            data,
            "data.",
            errors,
            external_id=external_id,
            metadata=metadata,
            priority=task["priority"] if "priority" in task else data.get("priority"),
            gold=task["gold"] if "gold" in task else data.get("gold"),
            skip=frozenset({"prompt", "priority", "gold"}),
        )

    def argilla(self, line: int, record: dict[str, Any]) -> ParsedRow:
        errors: list[str] = []
        external_id = self.record_id(record, errors)
        fields = record.get("fields")
        if not isinstance(fields, dict):
            reason = "missing" if fields is None else f"must be an object, got {_kind(fields)}"
            return self.error(line, f"fields: {reason}", external_id)
        metadata = self.metadata(record.get("metadata"), "metadata", errors)
        priority = record["priority"] if "priority" in record else metadata.pop("priority", None)
        gold = record["gold"] if "gold" in record else metadata.pop("gold", None)
        return self.mapping(
            line,
            fields,
            "fields.",
            errors,
            external_id=external_id,
            metadata=metadata,
            priority=priority,
            gold=gold,
            skip=frozenset({"prompt"}),
        )

    def json_rows(self, src: _TextSource, fmt: str) -> Iterator[ParsedRow]:
        handler = {
            "jsonl": self.native,
            "trl": self.trl,
            "label_studio": self.label_studio,
            "argilla": self.argilla,
        }[fmt]
        error = self.error
        for line, record, message in _json_records(src):
            if message is not None:
                yield error(line, message)
            elif type(record) is dict:
                yield handler(line, record)
            else:
                yield error(line, f"record: expected a JSON object, got {_kind(record)}")

    # -- CSV ----------------------------------------------------------------------------------

    def csv_layout(self, header: list[str]) -> _CsvLayout | str:
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
                target[_letter_index(match.group(2))] = i
        layout = _CsvLayout(width=len(names), names=names, prompt_col=index["prompt"])
        if responses:
            indices = sorted(responses)
            if not _consecutive(indices):
                return "header: response columns must be response_a, response_b, ... without gaps"
            if not MIN_RESPONSES <= len(indices) <= self.max_responses:
                return (
                    f"header: need {MIN_RESPONSES} to {self.max_responses} response columns, "
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

    def csv_row(self, layout: _CsvLayout, row: list[str], line: int) -> ParsedRow:
        width = layout.width
        if len(row) < width:
            row = row + [""] * (width - len(row))
        elif len(row) > width and any(row[width:]):
            return self.error(
                line, f"row: {len(row)} fields but the header has {width} (unquoted delimiter?)"
            )
        errors: list[str] = []
        names = layout.names
        external_id = ""
        if layout.id_col is not None:
            external_id = self.external_id(row[layout.id_col], names[layout.id_col], errors)
        prompt = self.text(row[layout.prompt_col], "prompt", errors, MAX_PROMPT_CHARS)
        count = len(layout.response_cols)
        if not layout.trl:
            while count and not row[layout.response_cols[count - 1]].strip():
                count -= 1
            self.count_ok(count, "responses", errors)
        responses = []
        for col, model_col in zip(
            layout.response_cols[:count], layout.model_cols[:count], strict=True
        ):
            text = self.text(row[col], names[col], errors, MAX_RESPONSE_CHARS)
            model = None
            if model_col is not None:
                model = self.model(row[model_col], names[model_col], errors)
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
                errors.append(f"metadata: must be a JSON object, got {_kind(metadata)}")
                metadata = {}
        for col, name in layout.extra:
            if row[col] != "":
                metadata.setdefault(name, row[col])
        self.check_json(metadata, "metadata", errors)
        if layout.trl:
            metadata["source_preference"] = "A"
        priority = 0.0
        if layout.priority_col is not None:
            priority = self.priority(row[layout.priority_col], "priority", errors)
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
                gold = self.gold(
                    raw_gold,
                    count,
                    errors,
                    choice_label=choice_label,
                    ranking_label=ranking_label,
                )
        return self.finish(line, errors, external_id, prompt, responses, metadata, priority, gold)

    def csv_rows(self, src: _TextSource) -> Iterator[ParsedRow]:
        delimiter = _sniff_delimiter(src)
        long_lines: list[int] = []
        lineno = 0

        def feed() -> Iterator[str]:
            nonlocal lineno
            for text in _lines(src, MAX_RECORD_CHARS):
                lineno += 1
                if text is None:
                    long_lines.append(lineno)
                    yield "\n"
                else:
                    yield text

        reader = csv.reader(feed(), delimiter=delimiter, strict=True)
        layout: _CsvLayout | None = None
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
                        yield self.error(n, f"line: longer than {MAX_RECORD_CHARS} characters")
                long_lines.clear()
                if inside:
                    failure = f"line {inside[0]}: longer than {MAX_RECORD_CHARS} characters"
            if failure is not None:
                yield self.error(start, failure)
                continue
            if not any(row) or (len(row) == 1 and row[0].isspace()):
                continue
            if layout is None:
                result = self.csv_layout(row)
                if isinstance(result, str):
                    yield self.error(start, result)
                    return
                layout = result
                continue
            yield self.csv_row(layout, row, start)
        for n in long_lines:
            yield self.error(n, f"line: longer than {MAX_RECORD_CHARS} characters")


@dataclass(slots=True)
class _CsvLayout:
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


def _sniff_delimiter(src: _TextSource) -> str:
    header = _peek_first_line(src)
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else ","


# ------------------------------------------------------------------------------------------
# Duplicates and the driver
# ------------------------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1


class _SeenIds:
    """Open-addressing table of 64-bit id hashes -> first line (12 bytes per slot).

    A plain ``dict[str, int]`` costs ~130 bytes per id; this keeps a million ids in ~25 MB.
    """

    __slots__ = ("_keys", "_lines", "_mask", "_size")

    def __init__(self, capacity: int = 1 << 12) -> None:
        self._keys = array("Q", [0]) * capacity
        self._lines = array("I", [0]) * capacity
        self._mask = capacity - 1
        self._size = 0

    def add(self, key: str, line: int) -> int:
        """Remember ``key``; return the line it was first seen on, or 0 if it is new."""
        digest = (hash(key) & _MASK64) or 1
        keys, mask = self._keys, self._mask
        slot = digest & mask
        while True:
            found = keys[slot]
            if found == 0:
                break
            if found == digest:
                return self._lines[slot]
            slot = (slot + 1) & mask
        keys[slot] = digest
        self._lines[slot] = min(line, 0xFFFFFFFF)
        self._size += 1
        if 2 * self._size > len(keys):
            self._grow()
        return 0

    def _grow(self) -> None:
        old_keys, old_lines = self._keys, self._lines
        capacity = 2 * len(old_keys)
        keys = array("Q", [0]) * capacity
        lines = array("I", [0]) * capacity
        mask = capacity - 1
        for digest, line in zip(old_keys, old_lines, strict=True):
            if digest:
                slot = digest & mask
                while keys[slot]:
                    slot = (slot + 1) & mask
                keys[slot] = digest
                lines[slot] = line
        self._keys, self._lines, self._mask = keys, lines, mask


def _flag_duplicates(rows: Iterator[ParsedRow]) -> Iterator[ParsedRow]:
    add = _SeenIds().add
    for row in rows:
        if row.external_id:
            first = add(row.external_id, row.line)
            if first:
                message = f"external_id: duplicate of line {first}"
                row.error = message if row.error is None else f"{row.error}; {message}"
        yield row


def _generate(
    file: Any, fmt: str, normaliser: _Normaliser, check_duplicates: bool
) -> Iterator[ParsedRow]:
    stream, release = _open_text(file)
    try:
        src = _TextSource(stream)
        if src.utf16:
            yield normaliser.error(1, "file: looks like UTF-16; save it as UTF-8")
            return
        if fmt == "auto":
            fmt = _sniff(src)
        rows = normaliser.csv_rows(src) if fmt == "csv" else normaliser.json_rows(src, fmt)
        yield from _flag_duplicates(rows) if check_duplicates else rows
    finally:
        release()
