"""Size limits shared by the readers and the field checks.

Modules that enforce ``MAX_RECORD_CHARS`` read it as ``limits.MAX_RECORD_CHARS`` (only when a stream
starts or a record is too long, never on the per-row fast path), so a test can lower it in one
place.
"""

from __future__ import annotations

MIN_RESPONSES = 2
MAX_RESPONSES = 10
MAX_PROMPT_CHARS = 100_000
MAX_RESPONSE_CHARS = 100_000
MAX_EXTERNAL_ID_CHARS = 255
MAX_MODEL_CHARS = 255
MAX_RECORD_CHARS = 8_000_000
LETTERS = "ABCDEFGHIJ"  # gold letters: A is the first response in file order
