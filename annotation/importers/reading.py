"""Reading an upload as text: decoding, line iteration with push-back, format detection.

Nothing here reads a whole file: text is pulled a line (or a piece of a line) at a time, and
whatever format detection looks at is pushed back so the format reader sees the file whole.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections import deque
from collections.abc import Callable, Iterator
from typing import IO, Any

BUFFER_SIZE = 1 << 16  # bytes buffered over objects that only have read(n)
PIECE = 1 << 16  # readline() limit while sniffing
_SNIFF_LIMIT = 1 << 20  # give up decoding the first record for auto-detection after this

DECODER = json.JSONDecoder()
WHITESPACE = re.compile(r"[ \t\r\n]*")


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


def open_text(file: Any) -> tuple[IO[str], Callable[[], None]]:
    """Return a text stream over ``file`` and a function that releases it without closing."""
    if isinstance(file, io.TextIOBase) or isinstance(file.read(0), str):
        return file, _noop
    buffer = (
        file if isinstance(file, io.IOBase) else io.BufferedReader(_ReadAdapter(file), BUFFER_SIZE)
    )
    # newline="" keeps line endings as they are: csv needs that, and a lone "\r" still ends a line.
    wrapper = io.TextIOWrapper(buffer, encoding="utf-8-sig", errors="surrogateescape", newline="")

    def release() -> None:
        with contextlib.suppress(ValueError):
            wrapper.detach()  # the caller's file stays open

    return wrapper, release


class TextSource:
    """A text stream with push-back, so sniffers can look ahead without seeking."""

    __slots__ = ("_pending", "_stream", "utf16")

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._pending: deque[str] = deque()
        first = stream.readline(PIECE)
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


def lines(src: TextSource, limit: int) -> Iterator[str | None]:
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


def peek_first_line(src: TextSource) -> str:
    """The first non-blank line (or piece of one), left unread in ``src``."""
    pieces: list[str] = []
    first = ""
    while True:
        piece = src.readline(PIECE)
        if not piece:
            break
        pieces.append(piece)
        if not piece.isspace():
            first = piece
            break
    src.unread(pieces)
    return first


# ------------------------------------------------------------------------------------------
# Format detection ("auto")
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


def sniff_format(src: TextSource) -> str:
    """Guess the format from the first record; everything read is pushed back."""
    pieces: list[str] = []
    try:
        while True:
            piece = src.readline(PIECE)
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
                start = WHITESPACE.match(text, offset + 1).end() if first == "[" else offset
                try:
                    record, _ = DECODER.raw_decode(text, start)
                except (ValueError, RecursionError):
                    if complete:
                        return "jsonl"
                    attempt_at = 2 * size
                else:
                    return _classify(record)
            if size > _SNIFF_LIMIT:
                return "jsonl"
            piece = src.readline(PIECE)
            if piece:
                pieces.append(piece)
                size += len(piece)
            else:
                eof = True
    finally:
        src.unread(pieces)
