"""The monitor window: pulls snapshots on a timer, draws them, and writes the controls.

The GUI pulls (pyqtgraph's real-time habit): a :class:`~PySide6.QtCore.QTimer` in the GUI
thread calls ``engine.snapshot(self.snapshot)`` at about 30 Hz into one preallocated
:class:`~liveframe.control.params.Snapshot` and pushes its arrays into the plots. That and
``engine.controls`` are all the window knows of the engine. The widgets write to the same
:class:`~liveframe.control.params.Controls` object the OSC server writes to, and the window
re-reads it on every pull, so a change made over OSC shows up on the sliders. Any
exception raised while drawing or handling a control is caught, logged and shown in the
status line; it never reaches the event loop and never stops the sound.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from liveframe import constants as C
from liveframe.control.params import Controls, Snapshot
from liveframe.ui.monitor import MonitoredEngine, brain_choices
from liveframe.ui.panel import ControlPanel
from liveframe.ui.plots import Plots
from liveframe.ui.style import FIGURES_EVERY, REFRESH_HZ, WARNING_COLOUR
from liveframe.ui.widgets import Figure

log = logging.getLogger(__name__)

Qt = QtCore.Qt


class MonitorWindow(QtWidgets.QMainWindow):
    """The stage window of one running engine.

    Parameters
    ----------
    engine : MonitoredEngine
        Anything with ``controls`` (a :class:`Controls`) and ``snapshot(out)``; the live
        :class:`liveframe.live.engine.Engine`.
    sr : int
        Sample rate of the snapshot's output block in Hz (the brain's): the waveform's
        time axis and the spectrogram's frequency axis.
    fps : float
        Brain ticks per second: the spectrogram's time axis.
    brains_dir : Path, optional
        Where the brain selector looks for ``*.onnx``; default: ``./brains/`` and the
        shipped brains (:func:`liveframe.ui.monitor.brain_choices`).
    refresh_hz : float
        How often the window pulls a snapshot.
    close_when_stopped : bool
        Close the window (ending :func:`liveframe.ui.monitor.run_monitor`) once the engine
        reports it has stopped, e.g. at the end of a clip that does not loop.

    Attributes
    ----------
    snapshot : Snapshot
        The snapshot pulled last (its arrays are reused by every pull).
    plots : Plots
    panel : ControlPanel
    status : Figure
        The status line: errors, refusals, a brain that started playing.
    timer : QTimer
        The pull.
    updates, errors : int
        Pulls drawn; pulls or control handlers that raised.
    slot_seconds : float
        GUI-thread CPU time spent in the timer slot.
    slot_times : np.ndarray, shape (16384,), float64
        Wall seconds of the last pulls, circular, indexed by ``slot_count``.
    """

    closed = QtCore.Signal()
    """Emitted once the window has closed (ends ``run_monitor``'s event loop)."""

    def __init__(
        self,
        engine: MonitoredEngine,
        *,
        sr: int = C.SAMPLE_RATE,
        fps: float = C.FPS,
        brains_dir: Path | None = None,
        refresh_hz: float = REFRESH_HZ,
        close_when_stopped: bool = True,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.controls: Controls = engine.controls
        self.brains_dir = brains_dir
        self.close_when_stopped = close_when_stopped
        self.snapshot = Snapshot()
        self._seen_version = -1
        self._seen_error: str | None = None
        self._seen_brain = ""
        self._was_running = False
        self.updates = 0
        self.errors = 0
        self.slot_seconds = 0.0
        self.slot_times = np.zeros(1 << 14, np.float64)
        self.slot_count = 0
        self._cpu0 = time.thread_time()
        self._wall0 = time.perf_counter()
        self.setWindowTitle("liveframe")
        self.plots = Plots(self.snapshot, sr=sr, fps=fps)
        self.panel = ControlPanel()
        central = QtWidgets.QWidget()
        root = QtWidgets.QHBoxLayout(central)
        root.addWidget(self.plots, stretch=3)
        root.addWidget(self.panel, stretch=1)
        self.setCentralWidget(central)
        self.status = Figure(size=12)
        self.status.setStyleSheet(f"color:{WARNING_COLOUR}")
        self.statusBar().addWidget(self.status, 1)
        self.panel.fill_brains(brain_choices(brains_dir))
        self._connect()
        self._sync_controls(force=True)
        self.resize(1280, 800)
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._on_timer)
        self.timer.start(max(1, round(1000.0 / refresh_hz)))

    def _connect(self) -> None:
        """Widgets and keys -> Controls, every slot guarded."""
        p, g = self.panel, self._guard
        p.gain_slider.valueChanged.connect(g(self._on_gain))
        p.density_slider.valueChanged.connect(g(self._on_density))
        p.spread_slider.valueChanged.connect(g(self._on_spread))
        p.mute_button.toggled.connect(g(self._on_mute))
        p.panic_button.clicked.connect(g(self._on_panic))
        p.freeze_button.toggled.connect(g(self._on_freeze))
        p.mode_box.currentTextChanged.connect(g(self._on_mode))
        p.brain_box.activated.connect(g(self._on_brain_index))
        for key, slot in (
            (Qt.Key.Key_Space, self.toggle_mute),
            (Qt.Key.Key_Escape, self._on_panic),
            (Qt.Key.Key_F, self.toggle_fullscreen),
        ):
            sc = QtGui.QShortcut(QtGui.QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.WindowShortcut)
            sc.activated.connect(g(slot))

    # -- controls -> Controls ---------------------------------------------------------------
    def _guard(self, fn: Callable[..., None]) -> Callable[..., None]:
        """Wrap a slot: an exception is shown in the status line, never raised into Qt."""

        def slot(*args: Any) -> None:
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001 -- nothing in the GUI may stop the sound
                self.show_error(e)

        return slot

    def show_error(self, e: BaseException | str) -> None:
        """Count ``e``, show it in the status line, and log it once per distinct message."""
        msg = e if isinstance(e, str) else f"{type(e).__name__}: {e}"
        self.errors += 1
        if msg != self.status.text():  # once per distinct message, not 30 a second
            log.warning("monitor: %s", msg)
        self.status.setText(msg)

    def _on_gain(self, v: int) -> None:
        self.panel.gain_value.put(f"{self.controls.set_gain(v / 100.0):.2f}")

    def _on_density(self, v: int) -> None:
        self.panel.density_value.put(f"{self.controls.set_density(v / 100.0):.2f}")

    def _on_spread(self, v: int) -> None:
        self.panel.spread_value.put(f"{self.controls.set_spread(v / 100.0):.2f}")

    def _on_mute(self, on: bool) -> None:
        self.controls.set_mute(on)
        self.panel.style_mute(on)

    def _on_freeze(self, on: bool) -> None:
        self.controls.set_freeze(on)
        self.panel.style_freeze(on)

    def _on_panic(self) -> None:
        self.controls.panic()
        self.panel.follow(self.controls)
        self.status.setText("PANIC: muted (space or MUTE to unmute)")

    def _on_mode(self, mode: str) -> None:
        if mode:
            self.controls.set_mode(mode)

    def _on_brain_index(self, index: int) -> None:
        path = self.panel.brain_box.itemData(index)
        if path is None:  # "open file…"
            start = str(self.brains_dir or Path.cwd())
            path, _ = QtWidgets.QFileDialog.getOpenFileName(
                self, "Open a brain", start, "ONNX brains (*.onnx)"
            )
            if not path:
                self.panel.select_brain(self._seen_brain)
                return
        self.request_brain(str(path))

    def request_brain(self, path: str) -> None:
        """Ask the engine to hot-swap to the brain at ``path`` (or named ``path``)."""
        self.controls.last_error = None  # so a second refusal shows again
        self._seen_error = None
        self.controls.request_brain(path)
        self.status.setText(f"loading brain {Path(path).name} …")

    def toggle_mute(self) -> None:
        self.panel.mute_button.toggle()

    def toggle_fullscreen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()

    # -- Controls -> widgets (a change made over OSC shows up here) ---------------------------
    def _sync_controls(self, *, force: bool = False) -> None:
        c = self.controls
        err = c.last_error  # set by the engine's brain loader without a version bump
        if err and err != self._seen_error:
            self.show_error(err)
        self._seen_error = err
        if force or c.version != self._seen_version:
            self._seen_version = c.version
            self.panel.follow(c)

    # -- the pull ---------------------------------------------------------------------------
    def _on_timer(self) -> None:
        t0, w0 = time.thread_time(), time.perf_counter()
        try:
            self.refresh()
        except Exception as e:  # noqa: BLE001 -- a drawing error must never stop the sound
            self.show_error(e)
        finally:
            self.slot_seconds += time.thread_time() - t0
            self.slot_times[self.slot_count % self.slot_times.shape[0]] = (
                time.perf_counter() - w0
            )
            self.slot_count += 1

    def refresh(self) -> None:
        """Pull one snapshot and draw it."""
        s = self.engine.snapshot(self.snapshot)
        self._sync_controls()
        self.plots.draw(s)
        self.panel.meter.set_level(s.level_dbfs)
        if self.updates % FIGURES_EVERY == 0:  # numbers at 10 Hz: readable, and cheaper
            self.panel.show_figures(s)
        if s.brain_name != self._seen_brain:
            if self._seen_brain:
                self.status.setText(f"brain {s.brain_name} playing")
            self._seen_brain = s.brain_name
            self.panel.select_brain(s.brain_name)
        self.updates += 1
        if s.running:
            self._was_running = True
        elif self._was_running and self.close_when_stopped:
            log.info("monitor: the engine stopped; closing the window")
            self.close()

    # -- figures ----------------------------------------------------------------------------
    def cpu_stats(self) -> dict[str, float]:
        """GUI-thread CPU use since the window opened.

        ``thread_cpu_share``: CPU time of the GUI thread (timer slot, painting, event
        handling) over wall time; ``slot_cpu_share``: the timer slot's share alone.
        Call from the GUI thread.
        """
        wall = max(time.perf_counter() - self._wall0, 1e-9)
        cpu = time.thread_time() - self._cpu0
        return {
            "wall_s": wall,
            "thread_cpu_s": cpu,
            "thread_cpu_share": cpu / wall,
            "slot_cpu_share": self.slot_seconds / wall,
            "updates": float(self.updates),
            "errors": float(self.errors),
        }

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 -- Qt's name
        self.timer.stop()
        super().closeEvent(event)
        self.closed.emit()
