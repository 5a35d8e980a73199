"""Stop signals for the commands that play: Ctrl-C (SIGINT) and a launcher's SIGTERM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def handling(handler: Callable[[int, Any], None],
             signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
    """``handler`` for ``signals`` inside the block, the previous handlers restored after.

    Interrupted system calls restart (``siginterrupt(False)``, SA_RESTART): Python installs
    its handlers without it, and a signal landing while libjack talks to the server
    (opening a stream registers ports over a socket) fails the request, after which
    PortAudio aborts on exit. Off the main thread, where Python cannot install handlers,
    nothing changes.
    """
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for s in signals:
            old[s] = signal.signal(s, handler)
            signal.siginterrupt(s, False)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
