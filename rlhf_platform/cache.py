"""Cache outages are warnings, not errors.

The cache (django-redis with ``IGNORE_EXCEPTIONS``, see ``settings.redis_caches``) only
holds what the database can recompute, so while Redis is down every cache call is a miss
and requests go on from the database.  django-redis reports each ignored error with a
traceback at ERROR level; during an outage that is one per cache call.
:class:`CacheOutageLogFilter` turns them into one short warning per ``interval`` seconds.
"""

from __future__ import annotations

import logging
import threading
import time


class CacheOutageLogFilter(logging.Filter):
    """Rewrite django-redis' "Exception ignored" records as rate-limited warnings."""

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._last = float("-inf")
        self._suppressed = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.interval:
                self._suppressed += 1
                return False
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        exc = record.exc_info[1] if record.exc_info else None
        cause = getattr(exc, "__cause__", None) or exc
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg = "cache unavailable, falling back to the database: %s%s"
        record.args = (
            cause or "unknown error",
            f" ({suppressed} similar warnings suppressed)" if suppressed else "",
        )
        record.exc_info = record.exc_text = None
        return True
