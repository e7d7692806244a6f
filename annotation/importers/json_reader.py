"""JSON record readers shared by every JSON format: yield ``(line, record, error)``.

Three layouts are read: JSON Lines; a JSON array, decoded element by element with
``json.JSONDecoder.raw_decode`` over a sliding buffer (commas between elements are not
enforced); and whitespace-separated objects when the first non-blank line is just ``{``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from . import limits
from .reading import DECODER, WHITESPACE, TextSource, lines, peek_first_line

Record = tuple[int, Any, str | None]

_CHUNK = 1 << 16  # characters read at a time by the JSON array parser
_ARRAY_SEP = re.compile(r"[ \t\r\n,]*")
# Bracket matching used to skip a broken JSON element: strings (possibly unterminated at the
# end of a line) and brackets.
_STRUCT = re.compile(r'"(?:[^"\\\n]|\\.)*"?|[{}\[\]]')
_ARRAY_SCALAR_END = re.compile(r"[,\]\n]")
_EOL = re.compile(r"\n")


def json_records(src: TextSource) -> Iterator[Record]:
    """Records of ``src`` in whichever of the three layouts its first non-blank line shows."""
    stripped = peek_first_line(src).strip()
    if stripped.startswith("["):
        return _JsonSequence(src, is_array=True).records()
    if stripped == "{":
        return _JsonSequence(src, is_array=False).records()
    return _json_lines(src)


def _json_lines(src: TextSource) -> Iterator[Record]:
    decode = DECODER.decode
    max_chars = limits.MAX_RECORD_CHARS
    lineno = 0
    for line in lines(src, max_chars):
        lineno += 1
        if line is None:
            yield lineno, None, f"line: longer than {max_chars} characters"
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

    def __init__(self, src: TextSource, *, is_array: bool) -> None:
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

    def records(self) -> Iterator[Record]:
        if self.is_array:
            if not self._skip(WHITESPACE):
                return
            if self.buf[self.pos] != "[":
                yield self.line, None, "invalid JSON: expected '[' at the start of the file"
                return
            self._advance(self.pos + 1)
        separators = _ARRAY_SEP if self.is_array else WHITESPACE
        while True:
            if not self._skip(separators):
                if self.is_array:
                    yield self.line, None, "invalid JSON: file ends before the closing ']'"
                return
            if self.is_array and self.buf[self.pos] == "]":
                self._advance(self.pos + 1)
                if self._skip(WHITESPACE):
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
        raw_decode = DECODER.raw_decode
        while True:
            buf, pos = self.buf, self.pos
            try:
                record, end = raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                truncated = exc.pos >= len(buf) - 8 or exc.msg.startswith("Unterminated string")
                if truncated and not self.eof:
                    max_chars = limits.MAX_RECORD_CHARS
                    if len(buf) - pos > max_chars:
                        return None, 0, f"record: longer than {max_chars} characters"
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
            if self.eof or len(self.buf) - self.pos > limits.MAX_RECORD_CHARS:
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
