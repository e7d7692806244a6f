"""Cache outages are warnings, not errors.

The cache (django-redis with ``IGNORE_EXCEPTIONS``, see ``settings.redis_caches``) only
holds what the database can recompute, so while Redis is down every cache call is a miss
and requests go on from the database.  django-redis reports each ignored error with a
traceback at ERROR level; during an outage that is one per cache call.
:class:`CacheOutageLogFilter` turns them into one short warning per ``interval`` seconds.

Throttle counters are the exception: a miss there means "no requests yet", so an outage
would switch rate limits off.  :class:`ThrottleCache` keeps counting in process memory
while the shared cache is unreachable.
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


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


class ThrottleCache:
    """The ``throttle`` cache, or process memory while it is unreachable.

    During a Redis outage each process counts on its own, so a client may get up to the
    rate times the number of web processes: weaker than one shared count, but a limit
    (and django-axes' lockouts, kept in the database, still apply to the token endpoint).
    """

    def __init__(self) -> None:
        self._local = LocMemCache("attune-throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 10000}})

    def _call(self, method: str, *args, **kwargs):
        try:
            return getattr(caches["throttle"], method)(*args, **kwargs)
        except (RedisError, OSError) as exc:
            logger.error("Exception ignored", exc_info=exc)  # rate-limited by the filter
            return getattr(self._local, method)(*args, **kwargs)

    def get(self, key, default=None):
        return self._call("get", key, default)

    def set(self, key, value, timeout=None):
        return self._call("set", key, value, timeout)
