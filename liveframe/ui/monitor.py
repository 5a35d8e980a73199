"""The monitor: a pyqtgraph window for the stage, and the entry points that open it.

The window shows what the brain sees and what it plays -- the source picture (in colour,
in its own aspect), the 64x64 frame the brain sees, the current output block's waveform, a
scrolling spectrogram of the output, a big output level meter in dBFS (what is played,
after gain, mute and the limiter) with the brain's own level beside it, the live figures
(source and brain fps, inference ms, frame-to-sound latency, underruns, ring buffer fill)
-- and puts the controls at hand: gain, mute, panic, mode, brain (hot-swapped by the
engine), freeze frame and the granular density and spread. Keys: space mute, Esc panic,
F fullscreen.

This module imports no Qt: ``liveframe render`` and ``play --no-gui`` never load it, and
:func:`display_available` decides from the environment and, for this process's own,
from a child process that opens the display (:mod:`liveframe.ui.display`: Qt aborts a
process whose display cannot open). The Qt side is in :mod:`liveframe.ui.window` (the
window), :mod:`liveframe.ui.plots` (pictures and plots), :mod:`liveframe.ui.panel` (meter,
figures, controls), :mod:`liveframe.ui.widgets` and :mod:`liveframe.ui.app` (the
QApplication); the functions below import them when called.

The window knows the engine only as a :class:`MonitoredEngine`: its ``controls`` and its
``snapshot(out)``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from liveframe.control.params import Controls, Snapshot
from liveframe.core.brain import available_brains
from liveframe.util import signals

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from liveframe.ui.window import MonitorWindow

log = logging.getLogger(__name__)

# Qt platforms that draw nowhere a person can see.
_HEADLESS_PLATFORMS = frozenset({"offscreen", "minimal", "minimalegl"})


class MonitoredEngine(Protocol):
    """What the monitor needs from an engine.

    ``controls`` is written by the widgets (and re-read on every pull); ``snapshot(out)``
    fills ``out`` in place and returns it, from the GUI thread, without blocking audio.
    """

    controls: Controls

    def snapshot(self, out: Snapshot) -> Snapshot: ...


def display_available(environ: dict[str, str] | None = None, *,
                      probe: bool | None = None) -> bool:
    """Whether a window opened now would be seen, and could open.

    Decided without importing Qt into this process. First from the environment:

    - ``QT_QPA_PLATFORM`` set: a platform that draws nowhere (``offscreen``, ``minimal``,
      ``minimalegl``) means no; any other platform (``xcb``, ``wayland``, ``cocoa``,
      ``windows``, ``eglfs``, ...) was chosen on purpose and means yes.
    - otherwise, on Linux and the BSDs: ``DISPLAY`` or ``WAYLAND_DISPLAY`` set means yes;
    - otherwise, on macOS and Windows: yes (their platforms need no variable).

    The tests set ``QT_QPA_PLATFORM=offscreen``, so ``play``/``live`` run headless there.

    Then, on Linux and the BSDs, when ``probe`` is on: whether Qt can really open it
    (:func:`liveframe.ui.display.probe`: the X11 plugin's libraries are there, and a child
    process opens the display). Qt aborts the whole process when it cannot, so when the
    probe fails this says why in one warning line and returns False: the caller plays
    without the window. A probe's answer is kept for the process's life.

    Parameters
    ----------
    environ : dict, optional
        The environment to decide from (default: ``os.environ``).
    probe : bool, optional
        Probe the display (default: when deciding for this process's own environment,
        i.e. ``environ`` not given).
    """
    env = os.environ if environ is None else environ
    platform = env.get("QT_QPA_PLATFORM", "").strip()
    if platform:
        # "xcb:ignore..."; a ";"-separated list of fallbacks: the first one decides
        first = platform.split(";")[0].split(":")[0].strip().lower()
        if first in _HEADLESS_PLATFORMS:
            return False
    elif sys.platform in ("darwin", "win32", "cygwin"):
        return True
    elif not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return False
    if not (environ is None if probe is None else probe):
        return True
    if sys.platform in ("darwin", "win32", "cygwin"):
        return True
    key = tuple(env.get(k, "") for k in _PROBE_KEYS)
    if key not in _probed:
        from liveframe.ui.display import probe as probe_display

        why = probe_display(dict(env))
        if why is not None:
            _refused.append(why)
            log.warning("monitor: %s; playing without the window (--no-gui skips this "
                        "check)", why)
        _probed[key] = why is None
    return _probed[key]


def display_refused() -> str | None:
    """Why the last probe of :func:`display_available` found no window could open (the
    line it logged), or None when no probe has refused one."""
    return _refused[-1] if _refused else None


_PROBE_KEYS = ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE")
_probed: dict[tuple[str, ...], bool] = {}
"""The probe's answers, by the environment it was asked for."""
_refused: list[str] = []
"""The reasons probes gave, oldest first."""


def brain_choices(brains_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, str]]:
    """The brain selector's entries: ``(label, path)``, sorted by label.

    Parameters
    ----------
    brains_dir : path-like, optional
        A folder: its ``*.onnx``. Default: what ``--brain NAME`` can pick, ``./brains/``
        first, then the shipped brains (:func:`liveframe.core.brain.available_brains`).
    """
    if brains_dir is None:
        return [(name, str(p)) for name, p in available_brains().items()]
    try:
        files = sorted(p for p in Path(brains_dir).glob("*.onnx") if p.is_file())
    except OSError:
        return []
    return [(p.stem, str(p)) for p in files]


def ensure_app(argv: list[str] | None = None) -> QApplication:
    """The running QApplication, or a new one with the dark stage palette (imports Qt)."""
    from liveframe.ui.app import ensure_app as _ensure_app

    return _ensure_app(argv)


def make_window(engine: MonitoredEngine, **kwargs: Any) -> MonitorWindow:
    """Build (not show) a monitor window for ``engine``; creates the QApplication if needed.

    ``kwargs`` go to :class:`liveframe.ui.window.MonitorWindow`: ``sr``, ``fps``,
    ``brains_dir``, ``refresh_hz``, ``close_when_stopped``.
    """
    ensure_app()
    from liveframe.ui.window import MonitorWindow

    return MonitorWindow(engine, **kwargs)


def open_monitor(engine: MonitoredEngine, args: Any = None, **kwargs: Any) -> MonitorWindow:
    """Build and show the monitor window for ``engine``, before its audio starts.

    Creating the QApplication and the window, and showing it the first time (style, fonts,
    first layout), runs in Qt's C++ for tens of ms without letting go of the GIL, so the
    producer could not write the ring meanwhile: done while the engine is not yet playing,
    it costs no underrun. The window shows zeros until the engine runs. Hand it to
    :func:`run_monitor`.

    Parameters
    ----------
    engine : MonitoredEngine
    args : namespace, optional
        The command's options; ``fullscreen`` (bool) and ``brains_dir`` (path) are read
        when present.
    **kwargs
        For the window (:func:`make_window`), e.g. ``sr``, ``fps``, ``close_when_stopped``.
    """
    app = ensure_app()
    brains_dir = getattr(args, "brains_dir", None)  # an optional option of the command
    if brains_dir is not None:
        kwargs.setdefault("brains_dir", Path(brains_dir))
    win = make_window(engine, **kwargs)
    if getattr(args, "fullscreen", False):
        win.showFullScreen()
    else:
        win.show()
    app.processEvents()
    return win


def run_monitor(engine: MonitoredEngine, args: Any = None, *, win: Any = None) -> int:
    """Show the monitor for a running ``engine`` until the window is closed.

    Runs the Qt event loop in the calling (main) thread and returns 0 once the window is
    closed -- by the performer, by Ctrl+C in the terminal, or by itself when the engine
    stops (a clip that ended). Stopping the engine is the caller's job.

    Parameters
    ----------
    engine : MonitoredEngine
    args : namespace, optional
        As for :func:`open_monitor`.
    win : MonitorWindow, optional
        A window from :func:`open_monitor` (made before the engine started, as the
        ``play`` and ``live`` commands do); without it one is built and shown now.
    """
    from PySide6 import QtCore

    app = ensure_app()
    if win is None:
        win = open_monitor(engine, args)
    win.closed.connect(app.quit)  # this window ends the loop, whatever else is open
    wake = QtCore.QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    try:
        # Ctrl+C in the terminal (or SIGTERM) closes the window: Qt's loop holds the main
        # thread, so the cheap timer above lets Python run its signal handlers now and then
        with signals.handling(lambda *_: win.close()):
            app.exec()
    finally:
        wake.stop()
        win.timer.stop()
        log.debug("monitor: closed (%s)", win.cpu_stats())
        release_window(win)
    return 0


def release_window(win: Any) -> None:
    """Delete ``win``'s Qt side now, and with it every reference Qt held to Python.

    A signal connected to a Python slot (the window's own methods, lambdas) is held by Qt
    and keeps the window's Python object -- and through it the engine, its producer and
    the producer's soxr resampler -- alive until the Qt object is deleted. ``deleteLater``
    alone waits for an event loop that no longer runs after ``app.exec()`` returned
    (``processEvents`` skips deferred deletes), so the engine lived on to the
    interpreter's exit and nanobind reported soxr's objects as leaked there. Posted
    deferred deletes are delivered here at once, as QTest does.
    """
    from PySide6 import QtCore

    win.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
