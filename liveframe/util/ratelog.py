"""Rate-limited logging: at most one line per kind per interval, counting the rest.

For warnings that a flood (OSC garbage, a stalled camera, a failing tick listener) could
repeat thousands of times a second.
"""

from __future__ import annotations

import logging
import math
import threading
import time


class RateLimitedLog:
    """Log at most one line per ``kind`` per ``interval`` seconds, counting the rest."""

    def __init__(self, logger: logging.Logger, *, interval: float = 1.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, kind: str, msg: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(kind, -math.inf) < self.interval:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return
            n = self._suppressed.pop(kind, 0)
            self._last[kind] = now
        more = f" (and {n} more like it)" if n else ""
        self.logger.warning("%s%s", msg, more)
