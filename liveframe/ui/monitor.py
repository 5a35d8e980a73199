"""The monitor: a pyqtgraph window for the stage.

It shows what the brain sees and what it plays -- the source frame, the 64x64 frame the
brain sees, the current output block's waveform, a scrolling spectrogram of the output, a
big output level meter in dBFS and the live figures (source and brain fps, inference ms,
frame-to-sound latency, underruns, ring buffer fill) -- and puts the controls at hand:
gain, mute, panic, mode, brain (``brains/*.onnx`` or a file, hot-swapped by the engine),
freeze frame and the granular density and spread. Keys: space mute, Esc panic,
F fullscreen.

The GUI pulls (STYLE.md, item 9). A :class:`~PySide6.QtCore.QTimer` in the GUI thread
calls ``engine.snapshot(self._snap)`` at about 30 Hz into a preallocated
:class:`~liveframe.control.params.Snapshot` and pushes those arrays into pyqtgraph items
(``setImage(..., autoLevels=False)``, peak downsampling). The audio path never calls into
Qt and never waits for it: a slow or frozen window only makes the pictures late. The
widgets write to the same :class:`~liveframe.control.params.Controls` object the OSC server writes
to, and the window re-reads that object each tick, so a change made over OSC shows up on
the sliders. Any exception raised while drawing or handling a control is caught, logged
and shown in the status line; it never reaches the event loop and never stops the sound.

Qt is imported only by this module, and only when ``liveframe play``/``live`` opens the
monitor; :func:`display_available` needs no Qt at all.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.control.params import DENSITY_MAX, GAIN_MAX, SPREAD_MAX, Controls, Snapshot
from liveframe.util import signals

log = logging.getLogger(__name__)

REFRESH_HZ = 30.0
"""How often the window pulls a snapshot."""

FIGURES_EVERY = 3
"""The numbers are redrawn every this many pulls (10 Hz): readable, and cheaper."""

SPEC_COLUMNS = 300
"""Columns of the scrolling spectrogram (one per brain tick: 10 s at 30 fps)."""

SPEC_NFFT = 1024
"""FFT size of one spectrogram column (the output block is zero-padded to it)."""

SPEC_FLOOR_DB = -100.0
METER_FLOOR_DB = -60.0

OPEN_FILE = "open file…"

# Qt platforms that draw nowhere a person can see.
_HEADLESS_PLATFORMS = frozenset({"offscreen", "minimal", "minimalegl"})


class MonitoredEngine(Protocol):
    """What the monitor needs from an engine."""

    controls: Controls

    def snapshot(self, out: Snapshot) -> Snapshot: ...


def display_available(environ: dict[str, str] | None = None) -> bool:
    """Whether a window opened now would be seen.

    Decided without importing Qt, from the environment:

    - ``QT_QPA_PLATFORM`` set: a platform that draws nowhere (``offscreen``, ``minimal``,
      ``minimalegl``) means no; any other platform (``xcb``, ``wayland``, ``cocoa``,
      ``windows``, ``eglfs``, ...) was chosen on purpose and means yes.
    - otherwise, on Linux and the BSDs: ``DISPLAY`` or ``WAYLAND_DISPLAY`` set means yes;
    - otherwise, on macOS and Windows: yes (their platforms need no variable).

    The tests set ``QT_QPA_PLATFORM=offscreen``, so ``play``/``live`` run headless there.
    """
    env = os.environ if environ is None else environ
    platform = env.get("QT_QPA_PLATFORM", "").strip()
    if platform:
        # "xcb:ignore..."; a ";"-separated list of fallbacks: the first one decides
        first = platform.split(";")[0].split(":")[0].strip().lower()
        return first not in _HEADLESS_PLATFORMS
    if sys.platform in ("darwin", "win32", "cygwin"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def brain_choices(brains_dir: Path) -> list[tuple[str, str]]:
    """``(label, path)`` of every ``*.onnx`` in ``brains_dir``, sorted by name."""
    try:
        files = sorted(p for p in Path(brains_dir).glob("*.onnx") if p.is_file())
    except OSError:
        return []
    return [(p.stem, str(p)) for p in files]


def level_colour(dbfs: float) -> str:
    """Meter colour for a level: green, amber from -12 dBFS, red from -3 dBFS."""
    if dbfs >= -3.0:
        return "#ff3b30"
    if dbfs >= -12.0:
        return "#ffcc00"
    return "#34c759"


class SpectrogramRing:
    """A preallocated ring of log-frequency FFT columns that scrolls without copying.

    Each block becomes one column: Hann-windowed, zero-padded to ``n_fft``, magnitude in
    dB (a full-scale sine reads 0 dB), resampled onto ``rows`` log-spaced frequencies from
    ``fmin`` to Nyquist. Every column is written twice, at ``i`` and ``i + columns``, so
    the latest ``columns`` columns in time order are always the slice
    ``buf[:, i+1 : i+1+columns]``: scrolling costs nothing.

    Parameters
    ----------
    columns : int
        Columns shown (time axis).
    n_fft : int
        FFT size.
    block : int
        Samples per block (<= ``n_fft``).
    sr : int
        Sample rate of the blocks in Hz.
    rows : int
        Log-spaced frequency rows.
    fmin : float
        Lowest frequency shown in Hz.
    floor_db : float
        Lowest level kept, and the value of an empty column, in dB.
    """

    def __init__(
        self,
        *,
        columns: int,
        n_fft: int,
        block: int,
        sr: int,
        rows: int = 192,
        fmin: float = 40.0,
        floor_db: float = -100.0,
    ) -> None:
        if block > n_fft:
            raise ValueError(f"block={block} must not exceed n_fft={n_fft}")
        self.columns = columns
        self.n_fft = n_fft
        self.block = block
        self.floor_db = floor_db
        self.log_fmin = math.log10(fmin)
        self.log_fmax = math.log10(sr / 2)
        freqs = np.logspace(self.log_fmin, self.log_fmax, rows)
        self._rows = np.clip(np.rint(freqs * n_fft / sr), 0, n_fft // 2).astype(np.intp)
        self.buf: npt.NDArray[np.float32] = np.full((rows, 2 * columns), floor_db, np.float32)
        self._frame = np.zeros(n_fft, np.float32)
        self._win = np.hanning(block).astype(np.float32)
        self._scale = np.float32(2.0 / self._win.sum())  # full-scale sine -> 0 dB
        self._mag = np.zeros(n_fft // 2 + 1, np.float32)
        self._col = np.zeros(rows, np.float32)
        self.index = columns - 1

    def push(self, x: npt.NDArray[np.float32], *, repeat: int = 1) -> None:
        """Add the column of one block ``x`` (shape (block,), float, [-1, 1]).

        ``repeat`` > 1 writes it that many times: ticks the window did not see (a slow
        redraw) keep their place on the time axis.
        """
        n = min(len(x), self.block)
        np.multiply(x[:n], self._win[:n], out=self._frame[:n])
        np.abs(np.fft.rfft(self._frame), out=self._mag, casting="unsafe")
        np.take(self._mag, self._rows, out=self._col)
        self._col *= self._scale
        np.maximum(self._col, 1e-6, out=self._col)
        np.log10(self._col, out=self._col)
        self._col *= 20.0
        np.maximum(self._col, self.floor_db, out=self._col)
        for _ in range(max(1, min(repeat, self.columns))):
            self.index = (self.index + 1) % self.columns
            self.buf[:, self.index] = self._col
            self.buf[:, self.index + self.columns] = self._col

    def view(self) -> npt.NDArray[np.float32]:
        """The latest ``columns`` columns, oldest first: shape (rows, columns), in dB."""
        i = self.index + 1
        return self.buf[:, i : i + self.columns]


class BoolRefGuard:
    """Keeps ``True``, ``False`` and ``None`` alive under a PySide6 that leaks references.

    PySide6 6.12.0 on CPython < 3.12 (where ``True`` and ``False`` are not yet immortal)
    drops one reference to ``True`` on every ``Signal.emit()``: pyqtgraph emits several
    per redraw, so after a few thousand redraws (a minute or two at 30 Hz) the interpreter
    deallocates ``True`` and aborts with ``Fatal Python error: bool_dealloc`` -- taking the
    audio thread down with it. :meth:`probe` measures the leak once; when there is one,
    :meth:`top_up` (called on every timer tick) pins extra references in a list so the
    count never nears zero. It costs 8 bytes per leaked reference (about 10 MB per hour
    of monitoring) and nothing at all where the bindings are sound.
    """

    FLOOR = 1 << 20
    """Top up when fewer references than this remain (a megabyte of list per refill)."""

    def __init__(self) -> None:
        self.leak_per_emit = 0.0
        self.pinned = 0
        self._pins: list[list[bool | None]] = []

    def probe(self) -> float:
        """References to ``True`` lost per ``Signal.emit()`` by these bindings (0 if none)."""
        if sys.version_info >= (3, 12):
            return 0.0  # immortal bools: a leak cannot free them
        from PySide6 import QtCore

        class _Probe(QtCore.QObject):
            sig = QtCore.Signal()

        o = _Probe()
        n = 200
        before = sys.getrefcount(True)
        for _ in range(n):
            o.sig.emit()
        lost = before - sys.getrefcount(True)
        self.leak_per_emit = max(0.0, lost / n) if lost > n // 2 else 0.0
        if self.leak_per_emit:
            log.debug(
                "monitor: these Qt bindings leak %.1f refs to True per emit; guarding",
                self.leak_per_emit,
            )
        return self.leak_per_emit

    def top_up(self) -> None:
        """Pin more references to ``True``, ``False`` and ``None`` if one ran low (cheap).

        ``None`` is guarded too: some slot paths of the same bindings drop references
        to it (seen as ``none_dealloc`` at exit).
        """
        if not self.leak_per_emit:
            return
        for value in (True, False, None):
            have = sys.getrefcount(value)
            if have < self.FLOOR:
                add = 2 * self.FLOOR - have
                chunk: list[bool | None] = [value] * add
                # never freed, not even at interpreter exit: the references the bindings
                # dropped were never really released, so letting these go would free True
                ctypes.pythonapi.Py_IncRef(ctypes.py_object(chunk))
                self._pins.append(chunk)
                self.pinned += add


BOOL_GUARD = BoolRefGuard()


def _import_qt() -> tuple[Any, Any, Any, Any]:
    import pyqtgraph as pg
    from PySide6 import QtCore, QtGui, QtWidgets

    return pg, QtCore, QtGui, QtWidgets


def ensure_app(argv: list[str] | None = None) -> Any:
    """The running QApplication, or a new one with the dark stage palette."""
    _, _, QtGui, QtWidgets = _import_qt()
    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication(argv if argv is not None else [sys.argv[0] or "liveframe"])
        app.setApplicationName("liveframe")
        app.setStyle("Fusion")
        pal = QtGui.QPalette()
        dark, text = QtGui.QColor(18, 18, 20), QtGui.QColor(235, 235, 235)
        roles = QtGui.QPalette.ColorRole
        for role, colour in (
            (roles.Window, dark),
            (roles.Base, QtGui.QColor(28, 28, 32)),
            (roles.AlternateBase, dark),
            (roles.Button, QtGui.QColor(40, 40, 46)),
            (roles.WindowText, text),
            (roles.Text, text),
            (roles.ButtonText, text),
            (roles.ToolTipBase, dark),
            (roles.ToolTipText, text),
            (roles.Highlight, QtGui.QColor(10, 132, 255)),
            (roles.HighlightedText, QtGui.QColor(0, 0, 0)),
        ):
            pal.setColor(role, colour)
        app.setPalette(pal)
        BOOL_GUARD.probe()
    BOOL_GUARD.top_up()
    return app


def _build_window_class() -> type:
    """Define the Qt classes on first use, so importing this module needs no Qt."""
    pg, QtCore, QtGui, QtWidgets = _import_qt()
    Qt = QtCore.Qt

    class LevelMeter(QtWidgets.QWidget):
        """A tall bar from ``METER_FLOOR_DB`` to 0 dBFS with a peak-hold line."""

        def __init__(self, parent: Any = None) -> None:
            super().__init__(parent)
            self.level = METER_FLOOR_DB
            self.peak = METER_FLOOR_DB
            self._peak_t = 0.0
            self.setMinimumSize(48, 220)
            self.setSizePolicy(
                QtWidgets.QSizePolicy.Policy.Fixed, QtWidgets.QSizePolicy.Policy.Expanding
            )

        def set_level(self, dbfs: float) -> None:
            v = dbfs if math.isfinite(dbfs) else METER_FLOOR_DB
            self.level = min(max(v, METER_FLOOR_DB), 0.0)
            now = time.monotonic()
            if self.level >= self.peak or now - self._peak_t > 1.5:
                self.peak, self._peak_t = self.level, now
            self.update()

        def _y(self, db: float, h: int) -> int:
            return round(h * (db / METER_FLOOR_DB))

        def paintEvent(self, event: Any) -> None:
            p = QtGui.QPainter(self)
            w, h = self.width(), self.height()
            p.fillRect(0, 0, w, h, QtGui.QColor(30, 30, 34))
            top = self._y(self.level, h)
            p.fillRect(0, top, w, h - top, QtGui.QColor(level_colour(self.level)))
            p.setPen(QtGui.QPen(QtGui.QColor(level_colour(self.peak)), 3))
            py = self._y(self.peak, h)
            p.drawLine(0, py, w, py)
            p.setPen(QtGui.QColor(150, 150, 150))
            for db in (-3, -12, -24, -48):
                y = self._y(db, h)
                p.drawLine(w - 8, y, w, y)
            p.end()

    class MonitorWindow(QtWidgets.QMainWindow):
        """The stage window of one running engine.

        Parameters
        ----------
        engine : object
            Anything with ``controls`` (a :class:`Controls`) and ``snapshot(out)``; the
            live :class:`liveframe.live.engine.Engine`.
        brains_dir : Path
            Where the brain selector looks for ``*.onnx``.
        refresh_hz : float
            How often the window pulls a snapshot.
        close_when_stopped : bool
            Close the window (ending :func:`run_monitor`) once the engine reports it has
            stopped, e.g. at the end of a clip that does not loop.
        """

        closed = QtCore.Signal()
        """Emitted once the window has closed (ends :func:`run_monitor`'s event loop)."""

        def __init__(
            self,
            engine: MonitoredEngine,
            *,
            brains_dir: Path = C.BRAINS_DIR,
            refresh_hz: float = REFRESH_HZ,
            close_when_stopped: bool = True,
        ) -> None:
            super().__init__()
            self.engine = engine
            self.controls: Controls = engine.controls
            self.brains_dir = Path(brains_dir)
            self.close_when_stopped = close_when_stopped
            self._snap = Snapshot()
            spec = getattr(engine, "spec", None)  # the brain's rate: the snapshot's output
            self.sample_rate = int(getattr(spec, "sample_rate", C.SAMPLE_RATE))
            self.fps = float(getattr(spec, "fps", C.FPS))
            self._spec = SpectrogramRing(
                columns=SPEC_COLUMNS,
                n_fft=SPEC_NFFT,
                block=len(self._snap.output),
                sr=self.sample_rate,
                floor_db=SPEC_FLOOR_DB,
            )
            self._x = np.arange(len(self._snap.output), dtype=np.float32) / self.sample_rate * 1e3
            self._last_tick = -1
            self._seen_version = -1
            self._seen_error: str | None = None
            self._seen_brain = ""
            self._colours: dict[int, str] = {}
            self._was_running = False
            self.updates = 0  # timer slots that drew a snapshot
            self.errors = 0  # timer slots or control handlers that raised
            self.slot_seconds = 0.0  # GUI-thread CPU time spent inside the timer slot
            self.slot_times = np.zeros(1 << 14, np.float64)  # wall s per slot, circular
            self.slot_count = 0
            self._cpu0 = time.thread_time()
            self._wall0 = time.perf_counter()
            self.setWindowTitle("liveframe")
            self._build()
            self._sync_controls(force=True)
            self.timer = QtCore.QTimer(self)
            self.timer.setTimerType(Qt.TimerType.PreciseTimer)
            self.timer.timeout.connect(self._on_timer)
            self.timer.start(max(1, round(1000.0 / refresh_hz)))

        # -- layout -----------------------------------------------------------------------
        def _label(self, text: str, size: int, *, bold: bool = False) -> Any:
            lab = QtWidgets.QLabel(text)
            f = lab.font()
            f.setPointSize(size)
            f.setBold(bold)
            lab.setFont(f)
            return lab

        def _slider(self, maximum: float, name: str) -> tuple[Any, Any]:
            s = QtWidgets.QSlider(Qt.Orientation.Horizontal)
            s.setRange(0, round(maximum * 100))
            s.setPageStep(10)
            s.setMinimumWidth(160)
            s.setObjectName(name)
            val = self._label("", 14)
            val.setMinimumWidth(56)
            return s, val

        def _build(self) -> None:
            central = QtWidgets.QWidget()
            self.setCentralWidget(central)
            root = QtWidgets.QHBoxLayout(central)

            # pictures and plots
            self.view = pg.GraphicsLayoutWidget()
            self.view.setBackground("#121214")
            self.view.setObjectName("plots")
            root.addWidget(self.view, stretch=3)
            self.view.addLabel("source", row=0, col=0, size="14pt", color="#8e8e93")
            self.view.addLabel("brain sees 64×64", row=0, col=1, size="14pt", color="#8e8e93")
            self.source_vb = self.view.addViewBox(row=1, col=0, lockAspect=True, enableMouse=False)
            self.source_vb.invertY(True)
            self.source_item = pg.ImageItem(axisOrder="row-major")
            self.source_item.setImage(self._snap.source_frame, autoLevels=False, levels=(0, 255))
            self.source_vb.addItem(self.source_item)
            self.frame_vb = self.view.addViewBox(row=1, col=1, lockAspect=True, enableMouse=False)
            self.frame_vb.invertY(True)
            self.frame_item = pg.ImageItem(axisOrder="row-major")
            self.frame_item.setImage(self._snap.frame, autoLevels=False, levels=(0, 255))
            self.frame_vb.addItem(self.frame_item)

            self.wave_plot = self.view.addPlot(row=2, col=0, colspan=2, title="output block")
            self.wave_plot.setYRange(-1.0, 1.0, padding=0)
            self.wave_plot.setXRange(0, float(self._x[-1]), padding=0)
            self.wave_plot.setMouseEnabled(x=False, y=False)
            self.wave_plot.hideButtons()
            self.wave_plot.setLabel("bottom", "ms")
            self.wave_plot.setDownsampling(auto=True, mode="peak")
            self.wave_plot.setClipToView(True)
            self.wave_curve = self.wave_plot.plot(
                self._x, self._snap.output, pen=pg.mkPen("#64d2ff", width=2)
            )

            self.spec_plot = self.view.addPlot(row=3, col=0, colspan=2, title="output spectrogram")
            self.spec_plot.setMouseEnabled(x=False, y=False)
            self.spec_plot.hideButtons()
            self.spec_plot.setLabel("bottom", "s")
            self.spec_plot.setLabel("left", "Hz")
            self.spec_item = pg.ImageItem(axisOrder="row-major")
            self.spec_item.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256))
            self.spec_item.setImage(
                self._spec.view(), autoLevels=False, levels=(SPEC_FLOOR_DB, 0.0)
            )
            span = SPEC_COLUMNS / self.fps
            lo, hi = self._spec.log_fmin, self._spec.log_fmax
            self.spec_item.setRect(QtCore.QRectF(-span, lo, span, hi - lo))
            self.spec_plot.addItem(self.spec_item)
            self.spec_plot.setXRange(-span, 0.0, padding=0)
            self.spec_plot.setYRange(lo, hi, padding=0)
            ticks = [
                (math.log10(f), lab)
                for f, lab in (
                    (100, "100"),
                    (300, "300"),
                    (1000, "1k"),
                    (3000, "3k"),
                    (10000, "10k"),
                )
                if lo <= math.log10(f) <= hi
            ]
            self.spec_plot.getAxis("left").setTicks([ticks, []])
            lay = self.view.ci.layout
            for row, stretch in ((0, 0), (1, 3), (2, 2), (3, 2)):
                lay.setRowStretchFactor(row, stretch)

            # meter + figures + controls
            side = QtWidgets.QVBoxLayout()
            root.addLayout(side, stretch=1)
            top = QtWidgets.QHBoxLayout()
            side.addLayout(top)
            self.meter = LevelMeter()
            top.addWidget(self.meter)
            figs = QtWidgets.QVBoxLayout()
            top.addLayout(figs)
            self.level_label = self._label("-inf dBFS", 30, bold=True)
            figs.addWidget(self.level_label)
            self.stat_labels: dict[str, Any] = {}
            for key in (
                "brain",
                "source",
                "brain_fps",
                "inference",
                "latency",
                "underruns",
                "ring",
            ):
                lab = self._label("", 16, bold=key == "underruns")
                figs.addWidget(lab)
                self.stat_labels[key] = lab
            figs.addStretch(1)

            grid = QtWidgets.QGridLayout()
            side.addLayout(grid)
            r = 0
            self.gain_slider, self.gain_value = self._slider(GAIN_MAX, "gain")
            self.gain_slider.valueChanged.connect(self._guard(self._on_gain))
            grid.addWidget(self._label("gain", 14), r, 0)
            grid.addWidget(self.gain_slider, r, 1)
            grid.addWidget(self.gain_value, r, 2)
            r += 1
            buttons = QtWidgets.QHBoxLayout()
            self.mute_button = QtWidgets.QPushButton("MUTE")
            self.mute_button.setCheckable(True)
            self.mute_button.toggled.connect(self._guard(self._on_mute))
            self.panic_button = QtWidgets.QPushButton("PANIC")
            self.panic_button.setStyleSheet(
                "QPushButton{background:#b00020;color:white;font-weight:bold;}"
            )
            self.panic_button.clicked.connect(self._guard(self._on_panic))
            self.freeze_button = QtWidgets.QPushButton("FREEZE")
            self.freeze_button.setCheckable(True)
            self.freeze_button.toggled.connect(self._guard(self._on_freeze))
            for b in (self.mute_button, self.panic_button, self.freeze_button):
                f = b.font()
                f.setPointSize(16)
                f.setBold(True)
                b.setFont(f)
                b.setMinimumHeight(48)
                # keys belong to the window shortcuts, not to whichever button has focus
                b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
                buttons.addWidget(b)
            grid.addLayout(buttons, r, 0, 1, 3)
            r += 1
            self.mode_box = QtWidgets.QComboBox()
            self.mode_box.addItems(list(C.MODES))
            self.mode_box.currentTextChanged.connect(self._guard(self._on_mode))
            grid.addWidget(self._label("mode", 14), r, 0)
            grid.addWidget(self.mode_box, r, 1, 1, 2)
            r += 1
            self.brain_box = QtWidgets.QComboBox()
            self._fill_brains()
            self.brain_box.activated.connect(self._guard(self._on_brain_index))
            grid.addWidget(self._label("brain", 14), r, 0)
            grid.addWidget(self.brain_box, r, 1, 1, 2)
            r += 1
            self.density_slider, self.density_value = self._slider(DENSITY_MAX, "density")
            self.density_slider.valueChanged.connect(self._guard(self._on_density))
            grid.addWidget(self._label("density", 14), r, 0)
            grid.addWidget(self.density_slider, r, 1)
            grid.addWidget(self.density_value, r, 2)
            r += 1
            self.spread_slider, self.spread_value = self._slider(SPREAD_MAX, "spread")
            self.spread_slider.valueChanged.connect(self._guard(self._on_spread))
            grid.addWidget(self._label("spread", 14), r, 0)
            grid.addWidget(self.spread_slider, r, 1)
            grid.addWidget(self.spread_value, r, 2)
            side.addStretch(1)
            keys = self._label("space mute · Esc panic · F fullscreen", 11)
            keys.setStyleSheet("color:#8e8e93")
            side.addWidget(keys)

            self.status_label = self._label("", 12)
            self.status_label.setStyleSheet("color:#ff9f0a")
            self.statusBar().addWidget(self.status_label, 1)

            for seq, slot in (
                (Qt.Key.Key_Space, self.toggle_mute),
                (Qt.Key.Key_Escape, self._on_panic),
                (Qt.Key.Key_F, self.toggle_fullscreen),
            ):
                sc = QtGui.QShortcut(QtGui.QKeySequence(seq), self)
                sc.setContext(Qt.ShortcutContext.WindowShortcut)
                sc.activated.connect(self._guard(slot))
            self.resize(1280, 800)

        def _fill_brains(self) -> None:
            self.brain_box.blockSignals(True)
            try:
                self.brain_box.clear()
                for label, path in brain_choices(self.brains_dir):
                    self.brain_box.addItem(label, path)
                self.brain_box.addItem(OPEN_FILE, None)
                self.brain_box.setCurrentIndex(-1)
            finally:
                self.brain_box.blockSignals(False)

        # -- controls -> Controls -----------------------------------------------------------
        def _guard(self, fn: Any) -> Any:
            """Wrap a slot: an exception is shown in the status line, never raised into Qt."""

            def slot(*args: Any) -> None:
                try:
                    fn(*args)
                except Exception as e:  # noqa: BLE001 -- nothing in the GUI may stop the sound
                    self.show_error(e)

            return slot

        def show_error(self, e: BaseException | str) -> None:
            msg = e if isinstance(e, str) else f"{type(e).__name__}: {e}"
            self.errors += 1
            if msg != self.status_label.text():  # once per distinct message, not 30 a second
                log.warning("monitor: %s", msg)
            self.status_label.setText(msg)

        def _on_gain(self, v: int) -> None:
            self.gain_value.setText(f"{self.controls.set_gain(v / 100.0):.2f}")

        def _on_density(self, v: int) -> None:
            self.density_value.setText(f"{self.controls.set_density(v / 100.0):.2f}")

        def _on_spread(self, v: int) -> None:
            self.spread_value.setText(f"{self.controls.set_spread(v / 100.0):.2f}")

        def _on_mute(self, on: bool) -> None:
            self.controls.set_mute(on)
            self._style_mute(on)

        def _on_freeze(self, on: bool) -> None:
            self.controls.set_freeze(on)
            self.freeze_button.setStyleSheet("QPushButton{background:#0a84ff;}" if on else "")

        def _on_panic(self) -> None:
            self.controls.panic()
            self._set_checked(self.mute_button, True)
            self._style_mute(True)
            self.status_label.setText("PANIC: muted (space or MUTE to unmute)")

        def _on_mode(self, mode: str) -> None:
            if mode:
                self.controls.set_mode(mode)

        def _on_brain_index(self, index: int) -> None:
            path = self.brain_box.itemData(index)
            if path is None:  # "open file…"
                path, _ = QtWidgets.QFileDialog.getOpenFileName(
                    self, "Open a brain", str(self.brains_dir), "ONNX brains (*.onnx)"
                )
                if not path:
                    self._select_brain_label(self._seen_brain)
                    return
            self.request_brain(str(path))

        def request_brain(self, path: str) -> None:
            """Ask the engine to hot-swap to the brain at ``path``."""
            self.controls.last_error = None  # so a second refusal shows again
            self._seen_error = None
            self.controls.request_brain(path)
            self.status_label.setText(f"loading brain {Path(path).name} …")

        def toggle_mute(self) -> None:
            self.mute_button.toggle()

        def toggle_fullscreen(self) -> None:
            if self.isFullScreen():
                self.showNormal()
            else:
                self.showFullScreen()

        def _style_mute(self, on: bool) -> None:
            self.mute_button.setText("MUTED" if on else "MUTE")
            self.mute_button.setStyleSheet(
                "QPushButton{background:#ff9f0a;color:black;}" if on else ""
            )

        @staticmethod
        def _set_checked(w: Any, on: bool) -> None:
            if w.isChecked() != on:
                w.blockSignals(True)
                w.setChecked(on)
                w.blockSignals(False)

        @staticmethod
        def _set_slider(s: Any, v: float) -> None:
            iv = round(v * 100)
            if s.value() != iv:
                s.blockSignals(True)
                s.setValue(iv)
                s.blockSignals(False)

        def _select_brain_label(self, name: str) -> None:
            self.brain_box.blockSignals(True)
            try:
                i = self.brain_box.findText(name) if name else -1
                if i < 0 and name:
                    self.brain_box.insertItem(0, name, self._brain_path_for(name))
                    i = 0
                self.brain_box.setCurrentIndex(i)
            finally:
                self.brain_box.blockSignals(False)

        def _brain_path_for(self, name: str) -> str:
            p = self.brains_dir / f"{name}.onnx"
            return str(p) if p.exists() else name

        # -- Controls -> widgets (a change made over OSC shows up here) ---------------------
        def _sync_controls(self, *, force: bool = False) -> None:
            c = self.controls
            err = c.last_error  # set by the engine's brain loader without a version bump
            if err and err != self._seen_error:
                self.show_error(err)
            self._seen_error = err
            if not force and c.version == self._seen_version:
                return
            self._seen_version = c.version
            self._set_slider(self.gain_slider, c.gain)
            self.gain_value.setText(f"{c.gain:.2f}")
            self._set_slider(self.density_slider, c.density)
            self.density_value.setText(f"{c.density:.2f}")
            self._set_slider(self.spread_slider, c.spread)
            self.spread_value.setText(f"{c.spread:.2f}")
            self._set_checked(self.mute_button, c.mute)
            self._style_mute(c.mute)
            self._set_checked(self.freeze_button, c.freeze)
            self.freeze_button.setStyleSheet("QPushButton{background:#0a84ff;}" if c.freeze else "")
            if self.mode_box.currentText() != c.mode:
                self.mode_box.blockSignals(True)
                self.mode_box.setCurrentText(c.mode)
                self.mode_box.blockSignals(False)

        # -- the pull ---------------------------------------------------------------------
        def _on_timer(self) -> None:
            t0, w0 = time.thread_time(), time.perf_counter()
            BOOL_GUARD.top_up()
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
            s = self.engine.snapshot(self._snap)
            self._sync_controls()
            self.source_item.setImage(s.source_frame, autoLevels=False, levels=(0, 255))
            self.frame_item.setImage(s.frame, autoLevels=False, levels=(0, 255))
            self.wave_curve.setData(self._x, s.output)
            if s.tick != self._last_tick:
                # one column per brain tick, so the time axis stays true when redraws lag
                new = s.tick - self._last_tick if self._last_tick >= 0 else 1
                self._last_tick = s.tick
                self._spec.push(s.output, repeat=new)
                self.spec_item.setImage(
                    self._spec.view(), autoLevels=False, levels=(SPEC_FLOOR_DB, 0.0)
                )
            self.meter.set_level(s.level_dbfs)
            if self.updates % FIGURES_EVERY == 0:  # numbers at 10 Hz: readable, and cheaper
                lvl = s.level_dbfs
                self._put(
                    self.level_label,
                    f"{lvl:6.1f} dBFS" if lvl > -119.0 else "  -inf dBFS",
                    level_colour(lvl),
                )
                L = self.stat_labels
                self._put(L["brain"], f"{s.brain_name or '-'} · {s.mode}")
                self._put(L["source"], f"source {s.source_fps:5.1f} fps")
                self._put(L["brain_fps"], f"brain  {s.brain_fps:5.1f} fps")
                self._put(L["inference"], f"inference {s.inference_ms:5.1f} ms")
                self._put(L["latency"], f"latency {s.latency_ms:5.0f} ms")
                self._put(L["ring"], f"ring {s.ring_fill:5.1f} ms")  # queued ahead of the DAC
                self._put(
                    L["underruns"],
                    f"underruns {s.underruns}",
                    "#ff3b30" if s.underruns else "#34c759",
                )
            if s.brain_name != self._seen_brain:
                if self._seen_brain:
                    self.status_label.setText(f"brain {s.brain_name} playing")
                self._seen_brain = s.brain_name
                self._select_brain_label(s.brain_name)
            self.updates += 1
            if s.running:
                self._was_running = True
            elif self._was_running and self.close_when_stopped:
                log.info("monitor: the engine stopped; closing the window")
                self.close()

        def _put(self, label: Any, text: str, colour: str | None = None) -> None:
            """Set a label's text (and colour) only when they change: no relayout per tick."""
            if label.text() != text:
                label.setText(text)
            if colour is not None and self._colours.get(id(label)) != colour:
                self._colours[id(label)] = colour
                pal = label.palette()
                pal.setColor(QtGui.QPalette.ColorRole.WindowText, QtGui.QColor(colour))
                label.setPalette(pal)

        # -- figures ----------------------------------------------------------------------
        def cpu_stats(self) -> dict[str, float]:
            """GUI-thread CPU use since the window opened.

            ``thread_cpu_share``: CPU time of the GUI thread (timer slot, painting, event
            handling) over wall time; ``slot_cpu_share``: the timer slot's share alone.
            Call from the GUI thread.
            """
            wall = max(time.perf_counter() - self._wall0, 1e-9)
            return {
                "wall_s": wall,
                "thread_cpu_s": time.thread_time() - self._cpu0,
                "thread_cpu_share": (time.thread_time() - self._cpu0) / wall,
                "slot_cpu_share": self.slot_seconds / wall,
                "updates": float(self.updates),
                "errors": float(self.errors),
            }

        def closeEvent(self, event: Any) -> None:
            self.timer.stop()
            super().closeEvent(event)
            self.closed.emit()

    return MonitorWindow


_WINDOW_CLASS: type | None = None


def window_class() -> type:
    """The :class:`MonitorWindow` class (Qt is imported on the first call)."""
    global _WINDOW_CLASS
    if _WINDOW_CLASS is None:
        _WINDOW_CLASS = _build_window_class()
    return _WINDOW_CLASS


def make_window(engine: MonitoredEngine, **kwargs: Any) -> Any:
    """Build (not show) a monitor window for ``engine``; creates the QApplication if needed."""
    ensure_app()
    return window_class()(engine, **kwargs)


def open_monitor(engine: MonitoredEngine, args: Any = None, **kwargs: Any) -> Any:
    """Build and show the monitor window for ``engine``, before its audio starts.

    Creating the QApplication and the window, and showing it the first time (style, fonts,
    first layout), runs in Qt's C++ for tens of ms without letting go of the GIL, so the
    producer could not write the ring meanwhile: done while the engine is not yet playing,
    it costs no underrun. The window shows zeros until the engine runs. Hand it to
    :func:`run_monitor`.

    ``args`` may carry ``fullscreen`` (bool) and ``brains_dir`` (path); both optional.
    ``kwargs`` go to the window (e.g. ``close_when_stopped``).
    """
    app = ensure_app()
    brains_dir = Path(getattr(args, "brains_dir", None) or C.BRAINS_DIR)
    win = window_class()(engine, brains_dir=brains_dir, **kwargs)
    if bool(getattr(args, "fullscreen", False)):
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

    ``win`` is a window from :func:`open_monitor` (made before the engine started, as the
    ``play`` and ``live`` commands do); without it one is built and shown now.
    ``args`` may carry ``fullscreen`` (bool) and ``brains_dir`` (path); both optional.
    """
    app = ensure_app()
    if win is None:
        win = open_monitor(engine, args)
    win.closed.connect(app.quit)  # this window ends the loop, whatever else is open
    _, QtCore, _, _ = _import_qt()
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
        win.deleteLater()  # free the Qt side now, not in the interpreter's last GC
        app.processEvents()
    return 0
