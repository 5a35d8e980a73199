"""Rate-limited logging: at most one line per kind per interval, counting the rest.

For warnings that a flood (OSC garbage, a stalled camera, a failing tick listener) could
repeat thousands of times a second: :class:`RateLimitedLog` for our own lines,
:class:`RateLimitFilter` for another library's (python-osc logs a line per bundle element
or unknown type tag it skips, on the root logger).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable


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


class RateLimitFilter(logging.Filter):
    """A :class:`logging.Filter` that passes at most one record per kind per ``interval``
    seconds, for records of one library that logs per item of a datagram.

    Records for which ``select(record)`` is false pass untouched. Of the selected ones, the
    kind is the record's logger, module and message template (the first 40 characters of
    ``record.msg``, which for an f-string message holds its fixed start); a record that
    passes after some were held back says how many (``(and N more like it)``).

    Parameters
    ----------
    select : callable(LogRecord) -> bool
        Which records this filter limits.
    interval : float
        Seconds between two records of one kind.
    max_kinds : int
        Kinds remembered at most; beyond, every new kind counts as one ("other"), so a
        flood of distinct messages cannot grow the table.
    """

    def __init__(self, select: Callable[[logging.LogRecord], bool], *,
                 interval: float = 1.0, max_kinds: int = 64) -> None:
        super().__init__()
        self.select = select
        self.interval = interval
        self.max_kinds = max_kinds
        self.held = 0  # records held back so far
        self._last: dict[tuple[str, str, str], float] = {}
        self._suppressed: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.select(record):
            return True
        kind = (record.name, record.module, str(record.msg)[:40])
        now = time.monotonic()
        with self._lock:
            if kind not in self._last and len(self._last) >= self.max_kinds:
                kind = ("", "", "other")
            if now - self._last.get(kind, -math.inf) < self.interval:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                self.held += 1
                return False
            n = self._suppressed.pop(kind, 0)
            self._last[kind] = now
        if n:
            record.msg = f"{record.getMessage()} (and {n} more like it)"
            record.args = None
        return True
