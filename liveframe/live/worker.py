"""A small worker thread owned by the engine, for what must not run on the producer.

Loading a brain, opening a source (which waits for its first picture), stopping a
capture and stopping the engine at the end of its source all take time the producer
cannot spend. The engine submits them here; one thread runs them in order and is joined
when the engine closes it, so no thread is left behind. The thread lets go of a job's
function and arguments as soon as the job returns (a job that releases a brain frees it
there and then, not when the next job comes).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


_TRIM = _malloc_trim()


def release_memory() -> bool:
    """Give the heap that was freed back to the system (glibc's ``malloc_trim(0)``).

    glibc keeps what a thread freed in that thread's arena; after a brain (an onnxruntime
    session, its model and weights) is released on the worker, the process would stay as
    large as it was at its largest: 100 swaps took it from 319 to 728 MB. Call it off the
    audio path (it walks every arena). False where there is no such call (not glibc).
    """
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


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
        while self._run_next():
            pass

    def _run_next(self) -> bool:
        """Run the next job; False at the end. The job's references die with this frame."""
        job = self._q.get()
        if job is None:
            return False
        fn, args = job
        del job
        try:
            fn(*args)
        except Exception:  # a bug in a job: report it, keep serving the others
            log.exception("%r failed", fn)
        return True
