"""The monitor, offscreen: it builds, draws a running engine, and its controls drive the engine.

Qt runs with ``QT_QPA_PLATFORM=offscreen`` (set here and in conftest); the engine is the
real :class:`liveframe.live.engine.Engine` playing a real clip written by
:func:`liveframe.data.clips.write_clip` through test brains from ``tests/helpers.make_brain``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import numpy as np
import pytest

from liveframe import constants as C
from liveframe.core.brain import Brain
from liveframe.data.clips import write_clip
from liveframe.ui import monitor

from .helpers import make_brain
from .jack import JackServer


# -- no Qt needed ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "env, expected",
    [
        ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, False),
        ({"QT_QPA_PLATFORM": "minimal"}, False),
        ({"QT_QPA_PLATFORM": "xcb"}, True),
        ({"QT_QPA_PLATFORM": "wayland;xcb"}, True),
        ({"QT_QPA_PLATFORM": "offscreen:fontengine=freetype"}, False),
    ],
)
def test_display_available_follows_the_qt_platform(env: dict, expected: bool) -> None:
    assert monitor.display_available(env) is expected


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="no DISPLAY there")
def test_display_available_needs_a_display_on_linux() -> None:
    assert monitor.display_available({}) is False
    assert monitor.display_available({"DISPLAY": ":0"}) is True
    assert monitor.display_available({"WAYLAND_DISPLAY": "wayland-0"}) is True


def test_display_available_is_false_in_the_tests() -> None:
    assert monitor.display_available() is False


def test_spectrogram_ring_puts_a_sine_on_its_row_and_scrolls() -> None:
    sr, n = C.SAMPLE_RATE, C.HOP
    ring = monitor.SpectrogramRing(columns=8, n_fft=1024, block=n, sr=sr, floor_db=-100.0)
    assert ring.view().shape == (192, 8) and (ring.view() == -100.0).all()
    f = 1000.0
    x = np.sin(2 * np.pi * f * np.arange(n) / sr).astype(np.float32)
    ring.push(x)
    col = ring.view()[:, -1]
    row = int(np.argmax(col))
    freqs = np.logspace(ring.log_fmin, ring.log_fmax, len(col))
    assert abs(math.log2(freqs[row] / f)) < 0.1  # within a semitone or so
    assert -2.0 < col[row] <= 0.5  # a full-scale sine reads about 0 dB
    assert (ring.view()[:, :-1] == -100.0).all()  # older columns still empty
    ring.push(np.zeros(n, np.float32))
    assert int(np.argmax(ring.view()[:, -2])) == row  # the sine scrolled one left
    assert (ring.view()[:, -1] == -100.0).all()
    ring.push(np.zeros(n, np.float32), repeat=3)  # ticks the window missed keep their place
    assert int(np.argmax(ring.view()[:, -5])) == row
    assert (ring.view()[:, -4:] == -100.0).all()
    base = ring.buf.ctypes.data
    for _ in range(20):
        ring.push(x)
    assert ring.buf.ctypes.data == base  # no reallocation, ever


def test_level_colour_bands() -> None:
    assert monitor.level_colour(-30.0) != monitor.level_colour(-6.0)
    assert monitor.level_colour(-6.0) != monitor.level_colour(-1.0)


# -- a real engine on a real clip, on a real JACK server (dummy backend) ------------------
# ``jack_server`` (tests/jack.py, via conftest) starts a private jackd and points PortAudio
# at it.
@pytest.fixture(scope="module")
def brains(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A brains/ folder: a tone scaled by brightness, another tone, and one that does not fit."""
    d = tmp_path_factory.mktemp("brains")
    make_brain(d / "bright.onnx", brightness=True, freq=441.0, amp=0.5)
    make_brain(d / "high.onnx", freq=1764.0, amp=0.3)
    make_brain(d / "wrongrate.onnx", spec_overrides={"sample_rate": 24000})
    return d


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three seconds of a moving diagonal gradient (never blank, never uniform)."""
    yy, xx = np.mgrid[0:120, 0:160]
    frames = [(k / 30, ((2 * xx + yy + 6 * k) % 256).astype(np.uint8)) for k in range(90)]
    return write_clip(tmp_path_factory.mktemp("clip") / "gradient.mkv", frames)


def _pump(app: Any, until: Any, timeout: float = 10.0) -> bool:
    """Run the Qt loop until ``until()`` holds (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.processEvents()
        if until():
            return True
        time.sleep(0.01)
    app.processEvents()
    return bool(until())


@pytest.fixture(scope="module")
def live(jack_server: JackServer, brains: Path, clip: Path) -> Iterator[tuple[Any, Any, Any]]:
    """(engine, window, app): the real engine playing the clip, the monitor showing it."""
    from liveframe.live.engine import Capture, Engine, PyAVReader

    brain = Brain.load(brains / "bright.onnx")
    engine = Engine(brain, Capture(PyAVReader(clip, loop=True), spec=brain.spec), blocksize=256)
    engine.start()
    try:
        win = monitor.make_window(engine, brains_dir=brains, close_when_stopped=False)
        win.show()
        app = monitor.ensure_app()
        assert _pump(app, lambda: win.updates >= 5 and engine.tick > 10)
        yield engine, win, app
        _dispose(app, win)
    finally:
        engine.stop()


def _dispose(app: Any, win: Any) -> None:
    """Close a window and delete its Qt objects now, not in the interpreter's final GC."""
    win.close()
    win.deleteLater()
    app.processEvents()


def _region_std(img: Any, rect: Any) -> float:
    """Standard deviation of the grey values of ``img`` (QImage) inside ``rect`` (QRect)."""
    from PySide6 import QtGui

    sub = img.copy(rect).convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    w, h, bpl = sub.width(), sub.height(), sub.bytesPerLine()
    a = np.frombuffer(sub.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)[:, :w]
    return float(a.std())


def _window_rect(win: Any, item: Any) -> Any:
    """Where a pyqtgraph item is drawn, in window pixels."""
    from PySide6 import QtCore

    poly = win.view.mapFromScene(item.sceneBoundingRect())
    r = poly.boundingRect().adjusted(3, 3, -3, -3)  # inside the item's edge
    return r.translated(win.view.mapTo(win, QtCore.QPoint(0, 0)))


def test_window_builds_and_updates_from_the_running_engine(live: tuple) -> None:
    _, win, app = live
    n, tick = win.updates, win._snap.tick
    assert _pump(app, lambda: win.updates >= n + 10 and win._snap.tick > tick + 5)
    assert win._snap.running
    assert win._snap.brain_name == "bright"
    assert win.brain_box.currentText() == "bright"
    assert win.stat_labels["brain"].text().startswith("bright")
    assert "fps" in win.stat_labels["brain_fps"].text()
    assert win._snap.brain_fps > 0 and win._snap.source_fps > 0
    assert win.errors == 0, win.status_label.text()
    # the frame the brain sees is the clip's gradient; the output is the bright tone
    assert win._snap.frame.std() > 20
    assert np.abs(win._snap.output).max() > 0.05
    # the spectrogram scrolled in columns of the tone (441 Hz): loudest row near it
    col = win._spec.view()[:, -1]
    freqs = np.logspace(win._spec.log_fmin, win._spec.log_fmax, len(col))
    assert abs(math.log2(freqs[int(np.argmax(col))] / 441.0)) < 0.2


def test_screenshot_shows_the_frame_and_the_waveform(live: tuple, tmp_path: Path) -> None:
    from PySide6 import QtGui

    engine, win, app = live
    _pump(app, lambda: False, timeout=0.3)
    png = tmp_path / "monitor.png"
    assert win.grab().save(str(png))
    img = QtGui.QImage(str(png))
    assert not img.isNull() and img.width() > 600
    frame_rect = _window_rect(win, win.frame_item)
    wave_rect = _window_rect(win, win.wave_plot.vb)
    assert frame_rect.width() > 50 and wave_rect.width() > 200
    assert _region_std(img, frame_rect) > 20  # the gradient, not a flat fill
    assert _region_std(img, _window_rect(win, win.source_item)) > 20
    assert _region_std(img, wave_rect) > 5  # a drawn curve on the dark plot
    # the same regions of a window that has drawn nothing yet are flat
    blank = monitor.window_class()(engine, brains_dir=Path("/nonexistent"))
    blank.timer.stop()
    blank.resize(win.size())
    blank.show()
    _pump(app, lambda: False, timeout=0.2)
    empty = blank.grab().toImage()
    _dispose(app, blank)
    assert _region_std(empty, _window_rect(blank, blank.frame_item)) < 1
    assert _region_std(empty, _window_rect(blank, blank.wave_plot.vb)) < _region_std(img, wave_rect)


def test_sliders_drive_the_engine(live: tuple) -> None:
    engine, win, app = live
    c = engine.controls
    win.gain_slider.setValue(50)
    assert c.gain == pytest.approx(0.5)
    assert _pump(app, lambda: engine.audio.target_gain == pytest.approx(0.5))
    win.gain_slider.setValue(100)
    win.density_slider.setValue(250)
    assert c.density == pytest.approx(2.5)
    win.spread_slider.setValue(30)
    assert c.spread == pytest.approx(0.3)
    assert win.density_value.text() == "2.50" and win.spread_value.text() == "0.30"


def test_mode_selector_switches_the_synth(live: tuple) -> None:
    engine, win, app = live
    win.mode_box.setCurrentText("granular")
    assert engine.controls.mode == "granular"
    assert _pump(app, lambda: engine.mode == "granular" and win._snap.mode == "granular")
    # the granular parameters reach the granular synth
    win.density_slider.setValue(175)
    assert _pump(app, lambda: getattr(engine.synth, "density", None) == pytest.approx(1.75))
    win.mode_box.setCurrentText("ola")
    assert _pump(app, lambda: engine.mode == "ola")


def test_mute_panic_and_freeze_buttons(live: tuple) -> None:
    engine, win, app = live
    c = engine.controls
    win.mute_button.click()
    assert c.mute and win.mute_button.text() == "MUTED"
    assert _pump(app, lambda: engine.audio.target_gain == 0.0)
    win.mute_button.click()
    assert not c.mute
    n = c.panic_count
    win.panic_button.click()
    assert c.panic_count == n + 1 and c.mute and win.mute_button.isChecked()
    assert _pump(app, lambda: engine.audio.silent)
    win.mute_button.click()  # unmute after a panic
    assert _pump(app, lambda: not engine.audio.silent)
    win.freeze_button.click()
    assert c.freeze
    t0 = engine.tick
    assert _pump(app, lambda: win._snap.tick > t0 + 3)  # a pull made after the freeze
    frozen = win._snap.frame.copy()
    tick = win._snap.tick
    assert _pump(app, lambda: win._snap.tick > tick + 15)
    assert np.array_equal(win._snap.frame, frozen)  # the moving clip stands still
    win.freeze_button.click()
    assert not c.freeze
    assert _pump(app, lambda: not np.array_equal(win._snap.frame, frozen))


def test_keys_space_mute_esc_panic_f_fullscreen(live: tuple) -> None:
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    engine, win, app = live
    c = engine.controls
    Qt = QtCore.Qt
    win.activateWindow()  # the keys are window shortcuts: they act on the active window
    assert QTest.qWaitForWindowActive(win)
    assert not c.mute
    QTest.keyClick(win, Qt.Key.Key_Space)
    assert c.mute and win.mute_button.isChecked()
    QTest.keyClick(win, Qt.Key.Key_Space)
    assert not c.mute
    n = c.panic_count
    QTest.keyClick(win, Qt.Key.Key_Escape)
    assert c.panic_count == n + 1 and c.mute
    QTest.keyClick(win, Qt.Key.Key_Space)
    assert not c.mute
    QTest.keyClick(win, Qt.Key.Key_F)
    assert _pump(app, lambda: win.isFullScreen(), timeout=3)
    QTest.keyClick(win, Qt.Key.Key_F)
    assert _pump(app, lambda: not win.isFullScreen(), timeout=3)


def test_a_change_made_elsewhere_shows_on_the_widgets(live: tuple) -> None:
    """The OSC server writes the same Controls: the window follows within a tick."""
    engine, win, app = live
    c = engine.controls
    c.set_gain(1.5)
    c.set_spread(2.0)
    c.set_freeze(True)
    assert _pump(app, lambda: win.gain_slider.value() == 150)
    assert win.spread_slider.value() == 200 and win.freeze_button.isChecked()
    assert c.gain == 1.5  # following did not write back a different value
    c.set_freeze(False)
    c.set_gain(1.0)
    assert _pump(app, lambda: not win.freeze_button.isChecked() and win.gain_slider.value() == 100)


def test_brain_selector_hot_swaps(live: tuple, brains: Path) -> None:
    engine, win, app = live
    labels = [win.brain_box.itemText(i) for i in range(win.brain_box.count())]
    assert labels == ["bright", "high", "wrongrate", monitor.OPEN_FILE]
    win.brain_box.activated.emit(labels.index("high"))
    assert _pump(app, lambda: win._snap.brain_name == "high")
    assert engine.brain.name == "high" and win.brain_box.currentText() == "high"
    # a brain that does not fit is refused by the engine; the window says why
    win.brain_box.activated.emit(labels.index("wrongrate"))
    assert _pump(app, lambda: "refused" in win.status_label.text())
    assert engine.brain.name == "high"
    win.brain_box.activated.emit(labels.index("bright"))
    assert _pump(app, lambda: win._snap.brain_name == "bright")


def test_a_failing_pull_is_shown_and_the_sound_goes_on(live: tuple) -> None:
    engine, win, app = live
    good = win._snap.frame
    win._snap.frame = None  # the engine cannot copy into this: snapshot() raises
    try:
        e0, tick = win.errors, engine.tick
        assert _pump(app, lambda: win.errors > e0 + 3)
        assert win.status_label.text()  # shown in the status line
        assert win.timer.isActive() and engine.running and engine.tick > tick
    finally:
        win._snap.frame = good
    n = win.updates
    assert _pump(app, lambda: win.updates > n + 3)


def test_window_closes_when_the_engine_stops(
    jack_server: JackServer, brains: Path, clip: Path
) -> None:
    from liveframe.live.engine import Capture, Engine, PyAVReader

    brain = Brain.load(brains / "bright.onnx")
    engine = Engine(brain, Capture(PyAVReader(clip), spec=brain.spec))  # no loop: 3 s
    engine.start()
    try:
        win = monitor.make_window(engine, brains_dir=brains)
        win.show()
        app = monitor.ensure_app()
        assert _pump(app, lambda: win.updates > 3)
        assert win.isVisible()
        engine.stop()
        assert _pump(app, lambda: not win.isVisible())
        assert not win.timer.isActive()
        _dispose(app, win)
    finally:
        engine.stop()


def test_bool_guard_keeps_a_long_show_alive() -> None:
    """PySide6 6.12 on CPython 3.11 drops a reference to True per Signal.emit(); unguarded,
    the process (and the sound) aborts with ``bool_dealloc`` after a few thousand redraws.
    Here: over 3 million emissions (hours of redraws; more than the first top-up covers)
    with the guard topped up as the timer does, in a child process, which must exit
    cleanly."""
    code = (
        "import os\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6 import QtCore\n"
        "from liveframe.ui import monitor\n"
        "monitor.ensure_app()\n"
        "class O(QtCore.QObject):\n"
        "    s = QtCore.Signal()\n"
        "o = O()\n"
        "for i in range(3 * monitor.BoolRefGuard.FLOOR + 100_000):\n"
        "    o.s.emit()\n"
        "    if i % 1000 == 0:\n"
        "        monitor.BOOL_GUARD.top_up()\n"
        "print('survived', monitor.BOOL_GUARD.leak_per_emit)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=C.REPO_DIR,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "survived" in r.stdout


def test_run_monitor_returns_when_the_engine_stops(
    jack_server: JackServer, brains: Path, clip: Path
) -> None:
    """What ``liveframe play`` runs: the Qt loop ends when the engine stops (``--seconds``)."""
    import argparse
    import threading

    from PySide6 import QtCore

    from liveframe.live.engine import Capture, Engine, PyAVReader

    brain = Brain.load(brains / "bright.onnx")
    engine = Engine(brain, Capture(PyAVReader(clip, loop=True), spec=brain.spec))
    engine.start()
    app = monitor.ensure_app()
    stopper = threading.Timer(1.0, engine.stop)
    fired = []
    safety = QtCore.QTimer()
    safety.setSingleShot(True)
    safety.timeout.connect(lambda: (fired.append(1), app.quit()))
    safety.start(30_000)  # a safety net: fails the test instead of hanging it
    try:
        stopper.start()
        rc = monitor.run_monitor(engine, argparse.Namespace(fullscreen=False, brains_dir=brains))
    finally:
        safety.stop()
        stopper.cancel()
        engine.stop()
    assert rc == 0
    assert not fired, "the window did not close when the engine stopped"
    assert engine.stats()["ticks"] > 0
