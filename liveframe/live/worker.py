"""A small worker thread owned by the engine, for what must not run on the producer.

Loading a brain, opening a source (which waits for its first picture), stopping a
capture and stopping the engine at the end of its source all take time the producer
cannot spend. The engine submits them here; one thread runs them in order and is joined
when the engine closes it, so no thread is left behind.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Worker:
    """One thread running submitted jobs in order; started by :meth:`start`, joined by
    :meth:`close`.

    Parameters
    ----------
    name : str
        The thread's name.
    """

    def __init__(self, name: str = "liveframe-worker") -> None:
        self._q: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue())
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._closed = False
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run ``fn(*args)`` on the worker thread; False (not run) once closed."""
        with self._lock:
            if self._closed:
                return False
            self._q.put((fn, args))
        return True

    def close(self, *, timeout: float = 10.0) -> None:
        """Run what was submitted, then end the thread and join it (unless called from the
        worker itself, which ends right after its current job). Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._q.put(None)
        t = self._thread
        if t.ident is not None and t is not threading.current_thread():
            t.join(timeout)
            if t.is_alive():
                log.warning("worker thread still busy after %.0f s; left behind", timeout)

    def _run(self) -> None:
        while (job := self._q.get()) is not None:
            fn, args = job
            try:
                fn(*args)
            except Exception:  # a bug in a job: report it, keep serving the others
                log.exception("%r failed", fn)
