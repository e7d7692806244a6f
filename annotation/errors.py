"""Domain errors raised by annotation services (mapped to HTTP answers by the API)."""

from __future__ import annotations

import dataclasses

from rlhf_platform.errors import Conflict


class AssignmentConflict(Conflict):
    """The annotator holds no live assignment for the item (HTTP 409)."""


class ProjectClosed(Conflict):
    """The project is archived: it hands out no items and takes no answers (HTTP 409)."""


class IdempotencyConflict(Conflict):
    """An idempotency key was reused for a different item (HTTP 409)."""


@dataclasses.dataclass(frozen=True)
class RowError:
    """One rejected import row: its line in the file and why."""

    line: int
    reason: str


class ItemImportError(Exception):
    """An import was rejected; nothing was written.  ``errors`` name lines and reasons."""

    def __init__(self, errors: list[RowError], *, truncated: bool = False):
        self.errors = errors
        self.truncated = truncated
        first = "; ".join(f"line {e.line}: {e.reason}" for e in errors[:3])
        super().__init__(
            f"{len(errors)}{'+' if truncated else ''} invalid row(s), nothing imported: {first}"
        )
