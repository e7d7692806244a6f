"""Flagging rows whose external id already appeared earlier in the same file."""

from __future__ import annotations

from array import array
from collections.abc import Iterator

from .rows import ParsedRow

_MASK64 = (1 << 64) - 1


class SeenIds:
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


def flag_duplicates(rows: Iterator[ParsedRow]) -> Iterator[ParsedRow]:
    """Pass ``rows`` through, adding ``"external_id: duplicate of line N"`` to repeats."""
    add = SeenIds().add
    for row in rows:
        if row.external_id:
            first = add(row.external_id, row.line)
            if first:
                message = f"external_id: duplicate of line {first}"
                row.error = message if row.error is None else f"{row.error}; {message}"
        yield row
