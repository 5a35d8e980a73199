"""A small progress bar on stderr (pickle, train, render), with no dependency.

On a terminal it redraws one line at most ten times a second; elsewhere (CI logs, pipes)
it prints a line every ``log_every`` seconds, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """``Progress(total, desc)``; ``update(n)``, ``set_postfix(text)``, ``close()``.

    Parameters
    ----------
    total : int or None
        Expected count (None: unknown, shows the count and rate only).
    desc : str
    unit : str
    stream : text file
    enabled : bool, optional
        Default: on. ``False`` silences it (``--quiet``).
    log_every : float
        Seconds between lines when the stream is not a terminal.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        unit: str = "frames",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        log_every: float = 5.0,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = True if enabled is None else enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_every = log_every
        self.n = 0
        self.postfix = ""
        self._t0 = time.monotonic()
        self._last = 0.0
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= (0.1 if self.tty else self.log_every):
            self._last = now
            self._draw(now)

    def set_postfix(self, text: str) -> None:
        self.postfix = text

    def _line(self, now: float) -> str:
        dt = max(now - self._t0, 1e-9)
        rate = self.n / dt
        if self.total:
            frac = min(self.n / self.total, 1.0)
            width = 24
            bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
            eta = (self.total - self.n) / rate if rate > 0 else 0.0
            s = (f"{self.desc} [{bar}] {self.n}/{self.total} {self.unit} "
                 f"{rate:.0f}/s eta {eta:.0f}s")
        else:
            s = f"{self.desc} {self.n} {self.unit} {rate:.0f}/s"
        return f"{s} {self.postfix}".rstrip()

    def _draw(self, now: float) -> None:
        if not self.enabled:
            return
        line = self._line(now)
        if self.tty:
            self.stream.write("\r" + line + "\x1b[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.enabled:
            self._draw(time.monotonic())
            if self.tty:
                self.stream.write("\n")
                self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
