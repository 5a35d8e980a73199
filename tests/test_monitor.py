"""The monitor, offscreen: it builds, draws what an engine shows, and its controls drive it.

Four groups:

- no Qt: the display check (and its probe: Qt's libraries, a display that cannot open),
  the Debian packages the monitor needs, the spectrogram ring, the meter colours, the
  brain list, the capture's copy of the source picture, and that importing the entry
  points loads no Qt;
- ``gui``: the window on a :class:`StageEngine`, a small engine that implements the
  monitor's whole contract (:class:`liveframe.ui.monitor.MonitoredEngine`: ``controls`` and
  ``snapshot``) with known pictures and a known tone, so every widget can be checked
  against what it must show;
- ``gui`` + ``jack``: the real :class:`liveframe.live.engine.Engine` playing a real clip to
  a JACK dummy server (``jack_server`` in tests/jack.py), through test brains from
  ``tests/helpers.make_brain``: the window follows it, and its selectors change it; and
  ``liveframe play`` with a display that cannot open, which plays on without the window;
- ``gui`` + ``jack`` on a real X server: ``tools/screenshot_monitor.py`` under
  ``xvfb-run`` with Qt's X11 platform (``xcb``) and the Debian packages ``make`` installs.

Qt runs with ``QT_QPA_PLATFORM=offscreen`` (set here and in conftest). Waits are
conditions polled with a deadline (:func:`_pump`), never fixed sleeps.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import numpy as np
import pytest

from liveframe import constants as C
from liveframe.control.params import Controls, Snapshot
from liveframe.core.brain import Brain, available_brains
from liveframe.data.clips import write_clip
from liveframe.live.capture import PREVIEW_MAX, Capture, OpenCVReader, PyAVReader, preview_size
from liveframe.live.jackd import jack_env
from liveframe.ui import display, monitor
from liveframe.ui.spectrogram import SpectrogramRing
from liveframe.ui.style import OPEN_FILE, level_colour

from .helpers import make_brain
from .jack import JackServer

TONE = 441.0
"""The StageEngine's tone, Hz (a whole number of cycles per 735-sample tick)."""

REPO = Path(__file__).resolve().parent.parent

WIDE = (90, 320)
"""The StageEngine's source picture, (height, width): 32:9, far from the brain's square."""


def _free_display() -> str:
    """An X display number that no server holds here (no socket, no lock file)."""
    for n in range(190, 290):
        if not (Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists()):
            return f":{n}"
    raise AssertionError("no free X display number in :190..:289")


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


def test_the_entry_points_load_no_qt() -> None:
    """``liveframe render`` and ``play --no-gui`` import the monitor's module, never Qt."""
    code = (
        "import sys\n"
        "from liveframe.ui import monitor\n"
        "monitor.display_available()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph')))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert r.stdout.strip() == "[]"


def test_the_probe_says_in_one_line_why_a_display_cannot_open() -> None:
    """Nothing listens on the display: Qt would abort the process (134); the probe's child
    dies instead and the reason is one line naming the display."""
    d = _free_display()
    why = display.probe(dict(os.environ, DISPLAY=d, QT_QPA_PLATFORM="xcb"))
    assert why is not None and "\n" not in why
    assert why.startswith(f"cannot open the display {d}") and "could not connect" in why


def test_display_available_probes_the_real_environment_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    d = _free_display()
    assert monitor.display_available({"DISPLAY": d, "QT_QPA_PLATFORM": "xcb"}) is True  # env only
    monkeypatch.setenv("DISPLAY", d)
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(monitor, "_probed", {})
    with caplog.at_level(logging.WARNING, logger="liveframe.ui.monitor"):
        assert monitor.display_available() is False
        assert monitor.display_available() is False  # the answer is kept: one probe, one line
    (rec,) = caplog.records
    assert d in rec.getMessage() and "playing without the window" in rec.getMessage()
    assert monitor.display_refused() is not None and d in monitor.display_refused()


def test_ldd_output_gives_the_missing_libraries() -> None:
    """What ldd printed for PySide6 6.11's libqxcb.so on a Debian 12 without two packages
    (the machine whose monitor aborted while Qt blamed libxcb-cursor0, which was there)."""
    text = (
        "\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f1f3938c000)\n"
        "\tlibxcb-icccm.so.4 => not found\n"
        "\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f1f39384000)\n"
        "\tlibxcb-keysyms.so.1 => not found\n"
        "\tlibxcb-icccm.so.4 => not found\n"
        "\t/lib64/ld-linux-x86-64.so.2 (0x00007f1f39548000)\n"
    )
    missing = display.parse_ldd(text)
    assert missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert [display.XCB_DEBS[lib] for lib in missing] == ["libxcb-icccm4", "libxcb-keysyms1"]
    assert display.missing_xcb_libraries() == []  # `make test` installed them here


def _make_vars() -> dict[str, list[str]]:
    """The Makefile's ``NAME := words`` variables, continuation lines joined, ``$(X)``
    expanded."""
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    raw = dict(re.findall(r"^([A-Z_]+)\s*:=\s*(.*)$", text, re.M))
    out: dict[str, list[str]] = {}
    for name, value in raw.items():
        words: list[str] = []
        for w in value.split():
            m = re.fullmatch(r"\$\((\w+)\)", w)
            words += out.get(m.group(1), []) if m else [w]
        out[name] = words
    return out


# what every Debian and Ubuntu has (C/C++ runtime, zlib, zstd), and what PySide6 bundles
_BASE_LIBS = re.compile(r"(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|libz|libzstd)"
                        r"\.so\.\d+|ld-linux.*|libQt6\w*\.so\.6|libicu\w+\.so\.\d+")


def test_make_installs_every_library_the_qt_x11_plugin_links() -> None:
    """``make demo`` installs a package for every library that PySide6's xcb plugin and
    the Qt libraries under it link (read with objdump), and ``make test`` adds Xvfb."""
    objdump = shutil.which("objdump")
    assert objdump, "objdump is missing: `make test` installs it (Debian: binutils)"
    plugins = display.qt_plugin_dir()
    assert plugins is not None
    qt = plugins.parent.parent
    needed: set[str] = set()
    for lib in (plugins / "libqxcb.so", *(qt / "lib" / f"libQt6{m}.so.6"
                                          for m in ("XcbQpa", "Gui", "Widgets", "DBus", "Core"))):
        r = subprocess.run([objdump, "-p", str(lib)], capture_output=True, text=True,
                           check=True, timeout=60)
        needed |= set(re.findall(r"^\s*NEEDED\s+(\S+)", r.stdout, re.M))
    assert "libxcb-icccm.so.4" in needed and "libxcb-keysyms.so.1" in needed
    unlisted = {n for n in needed if not _BASE_LIBS.fullmatch(n)} - set(display.XCB_DEBS)
    assert unlisted == set(), "add them to XCB_DEBS and the Makefile's MONITOR_DEBS"
    make = _make_vars()
    assert set(display.XCB_DEBS.values()) | {"fonts-dejavu-core"} == set(make["MONITOR_DEBS"])
    assert set(make["MONITOR_DEBS"]) | {"libportaudio2"} <= set(make["RUNTIME_DEBS"])
    assert set(make["RUNTIME_DEBS"]) | {"xvfb", "jackd2", "binutils"} <= set(make["TEST_DEBS"])
    r = subprocess.run(["sh", "tools/install_debs.sh", *make["TEST_DEBS"]], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout == "", r.stdout + r.stderr  # all installed already


# -- the capture's copy of the source picture ------------------------------------------------
@pytest.fixture(scope="module")
def wide_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seconds of a 400x96 grey gradient that moves 6 levels a frame (30 fps)."""
    yy, xx = np.mgrid[0:96, 0:400]
    frames = [(k / 30, ((2 * xx + yy + 6 * k) % 256).astype(np.uint8)) for k in range(60)]
    return write_clip(tmp_path_factory.mktemp("wide") / "wide.mkv", frames, video_codec="ffv1")


def test_preview_size_keeps_the_aspect_and_never_enlarges() -> None:
    assert PREVIEW_MAX == (320, 240)
    assert preview_size(1920, 1080) == (320, 180)
    assert preview_size(1080, 1920) == (135, 240)
    assert preview_size(400, 96) == (320, 77)
    assert preview_size(160, 120) == (160, 120)
    assert preview_size(5000, 2) == (320, 1)


@pytest.mark.parametrize("reader", [PyAVReader, OpenCVReader])
def test_capture_keeps_a_reduced_copy_of_the_source_picture(wide_clip: Path, reader: type) -> None:
    """The monitor gets the source itself (colour, aspect kept) -- the picture of the tick
    the producer took -- in slots allocated once; nothing is copied before it asks."""
    import cv2

    cap = Capture(reader(wide_clip))
    out = np.zeros((240, 320, 3), np.uint8)
    cap.start()
    try:
        assert cap.wait_first()
        for k in range(5):
            cap.take(k)
        assert cap.previews.made == 0  # no monitor yet: no copies
        assert cap.preview_into(out) is None  # asks: copies from now on
        size, base = None, None
        deadline = time.monotonic() + 10
        k = 5
        while cap.previews.made < 20 and time.monotonic() < deadline:
            cap.take(k)
            k += 1
            size = cap.preview_into(out) or size
            if base is None and cap.previews._buf is not None:
                base = cap.previews._buf.ctypes.data
            time.sleep(0.01 if reader is PyAVReader else 0.03)  # polling, not timing
        assert size == (77, 320)
        assert cap.previews._buf is not None and cap.previews._buf.ctypes.data == base
        pic = out[:77, :320].astype(np.int16)
        assert np.abs(pic[..., 0] - pic[..., 2]).max() <= 2  # a grey source stays grey
        # the source's own picture reduced, not the brain's 64x64 enlarged: which frame?
        yy, xx = np.mgrid[0:96, 0:400]
        diffs = [np.abs(cv2.resize(((2 * xx + yy + 6 * f) % 256).astype(np.uint8), (320, 77),
                                   interpolation=cv2.INTER_AREA).astype(np.int16)
                        - pic[..., 1]) for f in range(60)]
        best = int(np.argmin([np.median(d) for d in diffs]))
        assert np.median(diffs[best]) <= 2
        if reader is PyAVReader:  # on the brain clock: the frame of the tick taken last
            assert best == k - 1
    finally:
        cap.stop()


def test_spectrogram_ring_puts_a_sine_on_its_row_and_scrolls() -> None:
    sr, n = C.SAMPLE_RATE, C.HOP
    ring = SpectrogramRing(columns=8, n_fft=1024, length=n, sr=sr, floor_db=-100.0)
    assert ring.view().shape == (192, 8) and (ring.view() == -100.0).all()
    f = 1000.0
    x = np.sin(2 * np.pi * f * np.arange(n) / sr).astype(np.float32)
    ring.push(x)
    col = ring.view()[:, -1]
    row = int(np.argmax(col))
    assert abs(math.log2(ring.frequencies()[row] / f)) < 0.1  # within a semitone or so
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


def test_spectrogram_ring_refuses_a_block_longer_than_its_fft() -> None:
    with pytest.raises(ValueError, match="length=2048"):
        SpectrogramRing(columns=8, n_fft=1024, length=2048, sr=C.SAMPLE_RATE)


def test_level_colour_bands() -> None:
    quiet, loud, clipping = level_colour(-30.0), level_colour(-6.0), level_colour(-1.0)
    assert len({quiet, loud, clipping}) == 3
    assert level_colour(-12.0) == loud and level_colour(-3.0) == clipping


def test_brain_choices_list_a_folder_or_what_a_name_can_pick(tmp_path: Path) -> None:
    for name in ("zeta", "alpha"):
        (tmp_path / f"{name}.onnx").write_bytes(b"")
    (tmp_path / "notes.md").write_text("not a brain")
    assert monitor.brain_choices(tmp_path) == [
        ("alpha", str(tmp_path / "alpha.onnx")),
        ("zeta", str(tmp_path / "zeta.onnx")),
    ]
    assert monitor.brain_choices(tmp_path / "missing") == []
    default = monitor.brain_choices()
    assert default == [(name, str(p)) for name, p in available_brains().items()]
    assert C.DEFAULT_BRAIN_NAME in dict(default)


# -- the window on a small engine of known output ------------------------------------------
class StageEngine:
    """The monitor's contract and nothing more: ``controls`` and ``snapshot(out)``.

    Every snapshot is one brain tick: a diagonal gradient that moves 6 grey levels a tick
    (it stands still while ``controls.freeze`` is set) as the brain's picture and, in
    colour, as a :data:`WIDE` source picture; a ``TONE`` Hz sine at -6 dBFS (the brain's
    own level -3 dBFS), the mode the controls ask for. Brain requests are taken as the
    engine takes them: a path whose name contains ``wrongrate`` is refused with a message
    in ``controls.last_error``, any other becomes the playing brain. ``failing`` makes
    ``snapshot`` raise; ``running = False`` is a stopped engine.
    """

    def __init__(self) -> None:
        self.controls = Controls()
        self.running = True
        self.failing = False
        self.brain_name = "bright"
        self.tick = 0
        self.shift = 0
        self.snapshots = 0

    def snapshot(self, out: Snapshot) -> Snapshot:
        if self.failing:
            raise RuntimeError("the engine cannot copy into this snapshot")
        self.snapshots += 1
        req = self.controls.take_brain_request()
        if req is not None:
            if "wrongrate" in req:
                self.controls.last_error = f"{req}: refused, it plays at 24000 Hz"
            else:
                self.brain_name = Path(req).stem
        if not self.controls.freeze:
            self.shift += 6
        yy, xx = np.indices(out.frame.shape)
        out.frame[...] = (2 * xx + yy + self.shift) % 256
        h, w = WIDE
        yy, xx = np.indices(WIDE)
        grad = (2 * xx + yy + self.shift) % 256
        out.source_frame[:h, :w] = np.stack([grad, 255 - grad, grad // 2], axis=-1)
        out.source_size = WIDE
        n = np.arange(out.output.shape[0]) + self.tick * out.output.shape[0]
        out.output[:] = 0.5 * np.sin(2 * np.pi * TONE * n / C.SAMPLE_RATE)
        out.tick = self.tick
        self.tick += 1
        out.level_dbfs = -6.0
        out.brain_level_dbfs = -3.0
        out.source_fps, out.brain_fps, out.inference_ms = 30.0, 30.0, 1.5
        out.brain_name = self.brain_name
        out.mode = self.controls.mode
        out.running = self.running
        return out


def _pump(app: Any, until: Callable[[], Any], timeout: float = 10.0) -> bool:
    """Run the Qt loop until ``until()`` holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.processEvents()
        if until():
            return True
        time.sleep(0.005)  # polling the condition, not waiting for a guessed time
    app.processEvents()
    return bool(until())


def _dispose(app: Any, win: Any) -> None:
    """Close a window and delete its Qt objects now, not in the interpreter's final GC
    (and with them Qt's references to the engine: see ``monitor.release_window``)."""
    win.close()
    monitor.release_window(win)


@pytest.fixture(scope="module")
def brains(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A brains/ folder: a tone scaled by brightness, another tone, and one that does not fit."""
    d = tmp_path_factory.mktemp("brains")
    make_brain(d / "bright.onnx", brightness=True, freq=TONE, amp=0.5)
    make_brain(d / "high.onnx", freq=1764.0, amp=0.3)
    make_brain(d / "wrongrate.onnx", spec_overrides={"sample_rate": 24000})
    return d


@pytest.fixture
def stage(brains: Path) -> Iterator[tuple[StageEngine, Any, Any]]:
    """(engine, window, app): a shown window on a StageEngine that has drawn a few pulls."""
    engine = StageEngine()
    win = monitor.open_monitor(engine, brains_dir=brains, close_when_stopped=False)
    app = monitor.ensure_app()
    assert _pump(app, lambda: win.updates >= 5)
    yield engine, win, app
    _dispose(app, win)


def _region_std(img: Any, rect: Any) -> float:
    """Standard deviation of the grey values of ``img`` (QImage) inside ``rect`` (QRect)."""
    return float(_grey(img.copy(rect)).std())


def _grey(img: Any) -> np.ndarray:
    """The grey values of ``img`` (QImage): shape (height, width), uint8."""
    from PySide6 import QtGui

    sub = img.convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    w, h, bpl = sub.width(), sub.height(), sub.bytesPerLine()
    return np.frombuffer(sub.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)[:, :w].copy()


def _rows_drawn(img: Any, rect: Any) -> float:
    """Share of the pixel rows of ``img`` inside ``rect`` that something bright crosses."""
    a = _grey(img.copy(rect))
    return float(np.mean((a > a.min() + 80).any(axis=1)))


def _window_rect(win: Any, item: Any) -> Any:
    """Where a pyqtgraph item is drawn, in window pixels."""
    from PySide6 import QtCore

    poly = win.plots.mapFromScene(item.sceneBoundingRect())
    r = poly.boundingRect().adjusted(3, 3, -3, -3)  # inside the item's edge
    return r.translated(win.plots.mapTo(win, QtCore.QPoint(0, 0)))


@pytest.mark.gui
def test_window_draws_the_pictures_waveform_and_spectrogram(stage: tuple) -> None:
    engine, win, app = stage
    n = win.updates
    assert _pump(app, lambda: win.updates >= n + 5)
    assert win.snapshot.frame.std() > 20 and np.abs(win.snapshot.output).max() > 0.4
    assert win.errors == 0, win.status.text()
    # one spectrogram column per tick, loudest row at the tone
    spec = win.plots.spectrogram
    col = spec.view()[:, -1]
    assert abs(math.log2(spec.frequencies()[int(np.argmax(col))] / TONE)) < 0.2
    p = win.panel
    assert _pump(app, lambda: p.figures["brain"].text() == "bright · ola")
    assert p.figures["brain_fps"].text() == "brain   30.0 fps"
    assert p.level.text() == "  -6.0 dBFS" and p.level.colour == level_colour(-6.0)
    assert p.brain_level.text() == "brain    -3.0 dBFS"  # the brain's own, labelled
    assert p.meter.level == pytest.approx(-6.0)  # the meter shows the output
    assert p.brain_box.currentText() == "bright"


@pytest.mark.gui
def test_screenshot_shows_the_frame_and_the_waveform(stage: tuple, tmp_path: Path) -> None:
    from PySide6 import QtGui, QtTest

    engine, win, app = stage
    n = win.updates
    assert _pump(app, lambda: win.updates >= n + 3)
    png = tmp_path / "monitor.png"
    assert win.grab().save(str(png))
    img = QtGui.QImage(str(png))
    assert not img.isNull() and img.width() > 600
    frame_rect = _window_rect(win, win.plots.frame_item)
    wave_rect = _window_rect(win, win.plots.wave_plot.vb)
    spec_rect = _window_rect(win, win.plots.spec_plot.vb)
    assert frame_rect.width() > 50 and wave_rect.width() > 200
    assert _region_std(img, frame_rect) > 20  # the gradient, not a flat fill
    assert _region_std(img, _window_rect(win, win.plots.source_item)) > 20
    assert _rows_drawn(img, wave_rect) > 0.3  # the tone (+-0.5 of +-1) drawn on the dark plot
    assert _grey(img.copy(spec_rect)).max() > 200  # the tone's bright line in the spectrogram
    # the same regions of a window that has drawn nothing yet are flat
    blank = monitor.make_window(engine, brains_dir=tmp_path)
    blank.timer.stop()
    blank.resize(win.size())
    blank.show()
    assert QtTest.QTest.qWaitForWindowExposed(blank)
    empty = blank.grab().toImage()
    assert blank.updates == 0
    rects = [_window_rect(blank, it) for it in (blank.plots.frame_item,
                                                blank.plots.wave_plot.vb, blank.plots.spec_plot.vb)]
    _dispose(app, blank)  # deletes its Qt objects: measured first
    assert _region_std(empty, rects[0]) < 1
    assert _rows_drawn(empty, rects[1]) < 0.1  # a flat line
    # the empty spectrogram is one dark colour, crossed by the axes' grey inward ticks only
    assert _grey(empty.copy(rects[2])).max() < 160


@pytest.mark.gui
def test_the_source_pane_shows_the_source_in_its_aspect(stage: tuple) -> None:
    """A 32:9 source is drawn 32:9 (not the brain's square picture, scaled up), in
    colour, beside the brain's square."""
    from PySide6 import QtCore

    engine, win, app = stage
    n = win.updates
    assert _pump(app, lambda: win.updates >= n + 3)
    img = win.grab().toImage()
    item = win.plots.source_item
    assert (item.width(), item.height()) == (WIDE[1], WIDE[0])
    src = _window_rect(win, item).adjusted(-3, -3, 3, 3)  # the item's own edge
    frame = _window_rect(win, win.plots.frame_item).adjusted(-3, -3, 3, 3)
    assert src.width() > 200
    assert src.width() / src.height() == pytest.approx(WIDE[1] / WIDE[0], rel=0.03)
    assert frame.width() / frame.height() == pytest.approx(1.0, rel=0.03)
    inner = src.adjusted(4, 4, -4, -4)
    assert _region_std(img, inner) > 20
    rgb = img.copy(inner).convertToFormat(img.Format.Format_RGB888)
    w, h, bpl = rgb.width(), rgb.height(), rgb.bytesPerLine()
    px = np.frombuffer(rgb.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)[:, : w * 3]
    px = px.reshape(h, w, 3).astype(int)
    assert np.abs(px[..., 0] - px[..., 1]).mean() > 40  # colour: red and green differ
    # just above and below the picture, the box is background: the picture is not stretched
    above = QtCore.QRect(src.left() + 4, src.top() - 12, src.width() - 8, 6)
    assert _region_std(img, above) < 2


@pytest.mark.gui
def test_sliders_write_the_controls(stage: tuple) -> None:
    engine, win, _ = stage
    c, p = engine.controls, win.panel
    p.gain_slider.setValue(50)
    assert c.gain == pytest.approx(0.5) and p.gain_value.text() == "0.50"
    p.density_slider.setValue(250)
    assert c.density == pytest.approx(2.5)
    p.spread_slider.setValue(30)
    assert c.spread == pytest.approx(0.3)
    assert p.density_value.text() == "2.50" and p.spread_value.text() == "0.30"


@pytest.mark.gui
def test_mute_panic_and_freeze_buttons(stage: tuple) -> None:
    engine, win, app = stage
    c, p = engine.controls, win.panel
    p.mute_button.click()
    assert c.mute and p.mute_button.text() == "MUTED"
    p.mute_button.click()
    assert not c.mute and p.mute_button.text() == "MUTE"
    n = c.panic_count
    p.panic_button.click()
    assert c.panic_count == n + 1 and c.mute and p.mute_button.isChecked()
    assert win.status.text().startswith("PANIC")
    p.mute_button.click()  # unmute after a panic
    assert not c.mute
    p.freeze_button.click()
    assert c.freeze
    assert _pump(app, lambda: engine.snapshots >= 2 and win.updates > 0)
    frozen, tick = win.snapshot.frame.copy(), win.snapshot.tick
    assert _pump(app, lambda: win.snapshot.tick > tick + 5)
    assert np.array_equal(win.snapshot.frame, frozen)  # the picture stands still
    p.freeze_button.click()
    assert not c.freeze
    assert _pump(app, lambda: not np.array_equal(win.snapshot.frame, frozen))


@pytest.mark.gui
def test_keys_space_mute_esc_panic_f_fullscreen(stage: tuple) -> None:
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    engine, win, app = stage
    c = engine.controls
    key = QtCore.Qt.Key
    win.activateWindow()  # the keys are window shortcuts: they act on the active window
    assert QTest.qWaitForWindowActive(win)
    QTest.keyClick(win, key.Key_Space)
    assert c.mute and win.panel.mute_button.isChecked()
    QTest.keyClick(win, key.Key_Space)
    assert not c.mute
    n = c.panic_count
    QTest.keyClick(win, key.Key_Escape)
    assert c.panic_count == n + 1 and c.mute
    QTest.keyClick(win, key.Key_Space)
    assert not c.mute
    QTest.keyClick(win, key.Key_F)
    assert _pump(app, lambda: win.isFullScreen(), timeout=3)
    QTest.keyClick(win, key.Key_F)
    assert _pump(app, lambda: not win.isFullScreen(), timeout=3)


@pytest.mark.gui
def test_a_change_made_elsewhere_shows_on_the_widgets(stage: tuple) -> None:
    """The OSC server writes the same Controls: the window follows within a pull."""
    engine, win, app = stage
    c, p = engine.controls, win.panel
    c.set_gain(1.5)
    c.set_spread(2.0)
    c.set_freeze(True)
    c.set_mode("granular")
    assert _pump(app, lambda: p.gain_slider.value() == 150)
    assert p.spread_slider.value() == 200 and p.freeze_button.isChecked()
    assert p.mode_box.currentText() == "granular" and p.gain_value.text() == "1.50"
    assert c.gain == 1.5  # following did not write back a different value
    v = c.version
    c.set_freeze(False)
    c.set_gain(1.0)
    assert _pump(app, lambda: not p.freeze_button.isChecked() and p.gain_slider.value() == 100)
    assert c.version == v + 2  # following wrote nothing back


@pytest.mark.gui
def test_mode_selector_writes_the_controls(stage: tuple) -> None:
    engine, win, app = stage
    win.panel.mode_box.setCurrentText("granular")
    assert engine.controls.mode == "granular"
    assert _pump(app, lambda: win.snapshot.mode == "granular")
    assert _pump(app, lambda: win.panel.figures["brain"].text() == "bright · granular")
    win.panel.mode_box.setCurrentText("raw")
    assert engine.controls.mode == "raw"


@pytest.mark.gui
def test_brain_selector_requests_and_shows_a_refusal(stage: tuple, brains: Path) -> None:
    engine, win, app = stage
    box = win.panel.brain_box
    labels = [box.itemText(i) for i in range(box.count())]
    assert labels == ["bright", "high", "wrongrate", OPEN_FILE]
    box.activated.emit(labels.index("high"))
    assert _pump(app, lambda: win.snapshot.brain_name == "high")
    assert box.currentText() == "high" and win.status.text() == "brain high playing"
    e0 = win.errors
    box.activated.emit(labels.index("wrongrate"))
    assert _pump(app, lambda: "refused" in win.status.text())
    assert win.errors == e0 + 1 and engine.brain_name == "high"
    box.activated.emit(labels.index("wrongrate"))  # a second refusal shows again
    assert _pump(app, lambda: win.errors == e0 + 2)
    box.activated.emit(labels.index("bright"))
    assert _pump(app, lambda: win.snapshot.brain_name == "bright")


@pytest.mark.gui
def test_a_brain_missing_from_the_list_is_shown_on_top(stage: tuple) -> None:
    engine, win, app = stage
    engine.brain_name = "elsewhere"
    box = win.panel.brain_box
    assert _pump(app, lambda: box.currentText() == "elsewhere")
    assert box.currentIndex() == 0 and box.itemData(0) == "elsewhere"


@pytest.mark.gui
def test_a_failing_pull_is_shown_and_the_window_goes_on(stage: tuple) -> None:
    engine, win, app = stage
    engine.failing = True
    e0, n = win.errors, win.updates
    assert _pump(app, lambda: win.errors > e0 + 3)
    assert "cannot copy" in win.status.text()  # shown in the status line
    assert win.timer.isActive() and win.updates == n
    engine.failing = False
    assert _pump(app, lambda: win.updates > n + 3)


@pytest.mark.gui
def test_window_closes_when_the_engine_stops(brains: Path) -> None:
    engine = StageEngine()
    win = monitor.open_monitor(engine, brains_dir=brains)
    app = monitor.ensure_app()
    assert _pump(app, lambda: win.updates > 3)
    engine.running = False
    assert _pump(app, lambda: not win.isVisible())
    assert not win.timer.isActive()
    _dispose(app, win)


# -- the real engine on a real clip, on a real JACK server (dummy backend) -----------------
@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three seconds of a moving diagonal gradient (never blank, never uniform), 256x96."""
    yy, xx = np.mgrid[0:96, 0:256]
    frames = [(k / 30, ((2 * xx + yy + 6 * k) % 256).astype(np.uint8)) for k in range(90)]
    return write_clip(tmp_path_factory.mktemp("clip") / "gradient.mkv", frames)


def _engine(brains: Path, clip: Path, *, loop: bool) -> Any:
    from liveframe.live.capture import Capture, PyAVReader
    from liveframe.live.engine import Engine

    brain = Brain.load(brains / "bright.onnx")
    return Engine(brain, Capture(PyAVReader(clip, loop=loop), spec=brain.spec), blocksize=256)


@pytest.fixture(scope="module")
def live(jack_server: JackServer, brains: Path, clip: Path) -> Iterator[tuple[Any, Any, Any]]:
    """(engine, window, app): the real engine playing the clip, the monitor showing it."""
    engine = _engine(brains, clip, loop=True)
    win = monitor.open_monitor(
        engine,
        brains_dir=brains,
        sr=engine.spec.sample_rate,
        fps=engine.spec.fps,
        close_when_stopped=False,
    )
    app = monitor.ensure_app()
    engine.start()
    try:
        assert _pump(app, lambda: win.updates >= 5 and win.snapshot.tick > 10)
        yield engine, win, app
        _dispose(app, win)
    finally:
        engine.stop()


@pytest.mark.gui
@pytest.mark.jack
def test_window_follows_the_running_engine(live: tuple) -> None:
    _, win, app = live
    n, tick = win.updates, win.snapshot.tick
    assert _pump(app, lambda: win.updates >= n + 10 and win.snapshot.tick > tick + 5)
    s = win.snapshot
    assert s.running and s.brain_name == "bright" and s.brain_fps > 0 and s.source_fps > 0
    assert win.panel.brain_box.currentText() == "bright"
    assert _pump(app, lambda: win.panel.figures["brain"].text().startswith("bright"))
    assert win.errors == 0, win.status.text()
    # the frame the brain sees is the clip's gradient; the output is the bright tone
    assert s.frame.std() > 20 and np.abs(s.output).max() > 0.05
    # the source pane: the clip itself, 256x96 as it is (it fits the preview), grey
    assert s.source_size == (96, 256)
    pic = s.source_frame[:96, :256].astype(int)
    assert pic.std() > 20 and np.abs(pic[..., 0] - pic[..., 2]).max() <= 2
    assert (win.plots.source_item.width(), win.plots.source_item.height()) == (256, 96)
    spec = win.plots.spectrogram
    col = spec.view()[:, -1]
    assert abs(math.log2(spec.frequencies()[int(np.argmax(col))] / TONE)) < 0.2


@pytest.mark.gui
@pytest.mark.jack
def test_selectors_and_freeze_change_the_running_engine(live: tuple) -> None:
    engine, win, app = live
    p = win.panel
    p.mode_box.setCurrentText("granular")
    assert _pump(app, lambda: win.snapshot.mode == "granular")
    p.mode_box.setCurrentText("ola")
    assert _pump(app, lambda: win.snapshot.mode == "ola")
    labels = [p.brain_box.itemText(i) for i in range(p.brain_box.count())]
    p.brain_box.activated.emit(labels.index("high"))
    assert _pump(app, lambda: win.snapshot.brain_name == "high")
    # a brain that does not fit is refused by the engine; the window says why
    p.brain_box.activated.emit(labels.index("wrongrate"))
    assert _pump(app, lambda: "refused" in win.status.text())
    assert win.snapshot.brain_name == "high"
    p.brain_box.activated.emit(labels.index("bright"))
    assert _pump(app, lambda: win.snapshot.brain_name == "bright")
    p.freeze_button.click()
    t0 = win.snapshot.tick
    assert _pump(app, lambda: win.snapshot.tick > t0 + 3)  # a pull made after the freeze
    frozen, tick = win.snapshot.frame.copy(), win.snapshot.tick
    assert _pump(app, lambda: win.snapshot.tick > tick + 15)
    assert np.array_equal(win.snapshot.frame, frozen)  # the moving clip stands still
    p.freeze_button.click()
    assert _pump(app, lambda: not np.array_equal(win.snapshot.frame, frozen))


@pytest.mark.gui
@pytest.mark.jack
def test_run_monitor_returns_when_the_engine_stops(
    jack_server: JackServer, brains: Path, clip: Path
) -> None:
    """What ``liveframe play`` runs: open the window, start, run the loop until the clip
    (not looping: 3 s) ends and the window closes by itself."""
    import argparse

    from PySide6 import QtCore

    engine = _engine(brains, clip, loop=False)
    args = argparse.Namespace(fullscreen=False, brains_dir=brains)
    win = monitor.open_monitor(engine, args)
    app = monitor.ensure_app()
    fired = []
    safety = QtCore.QTimer()
    safety.setSingleShot(True)
    safety.timeout.connect(lambda: (fired.append(1), app.quit()))
    safety.start(30_000)  # a safety net: fails the test instead of hanging it
    engine.start()
    try:
        rc = monitor.run_monitor(engine, args, win=win)
    finally:
        safety.stop()
        engine.stop()
    assert rc == 0
    assert not fired, "the window did not close when the engine stopped"
    assert engine.stats()["ticks"] > 0


# -- a display that cannot open; the monitor on a real X server -----------------------------
@pytest.mark.jack
def test_play_goes_on_headless_when_the_display_cannot_open(
    jack_server: JackServer, brains: Path, clip: Path
) -> None:
    """Qt's xcb platform and a display nobody serves: Qt would abort (exit 134, no stats);
    play says why in one line and plays the second without the window."""
    d = _free_display()
    env = dict(jack_env(jack_server.name), DISPLAY=d, QT_QPA_PLATFORM="xcb")
    r = subprocess.run([sys.executable, "-m", "liveframe", "play", str(clip), "--seconds", "1",
                        "--osc-port", "0", "--brain", str(brains / "bright.onnx")],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "display" in ln]
    assert said == [f"liveframe: monitor: cannot open the display {d} (could not connect to "
                    f"display {d}); playing without the window (--no-gui skips this check)"]
    assert re.search(r"played \d+ ticks", r.stderr), r.stderr
    assert "Traceback" not in r.stderr and "nanobind" not in r.stderr


@pytest.mark.gui
@pytest.mark.jack
def test_screenshot_on_a_real_x_server(
    jack_server: JackServer, brains: Path, clip: Path, tmp_path: Path
) -> None:
    """``make screenshot``'s script under ``xvfb-run`` with Qt's own X11 platform: the
    monitor opens on a real X server with the installed packages, plays, and the window
    grabbed from the server shows the pictures and the sound."""
    from PySide6 import QtGui

    xvfb_run = shutil.which("xvfb-run")
    assert xvfb_run, "xvfb-run is missing: `make test` installs it (Debian: xvfb)"
    png = tmp_path / "monitor.png"
    png.write_bytes(b"old")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "xcb"
    r = subprocess.run([xvfb_run, "-a", "-s", "-screen 0 1400x900x24", sys.executable,
                        str(REPO / "tools" / "screenshot_monitor.py"), str(png), "--clip",
                        str(clip), "--brain", str(brains / "bright.onnx"), "--seconds", "2"],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Qt platform xcb" in r.stdout and ", 0 errors)" in r.stdout, r.stdout
    assert "nanobind" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["monitor.png"]  # no temporary left
    img = QtGui.QImage(str(png))
    assert (img.width(), img.height()) == (1280, 800)
    a = _grey(img)
    assert a[60:370, :560].std() > 20  # the source pane: the clip's gradient
    assert a[600:720, 70:940].max() > 150  # the spectrogram: the tone's bright line
    # a bad --clip: one line, exit 2, the PNG left as it was
    before = png.read_bytes()
    r = subprocess.run([xvfb_run, "-a", sys.executable, str(REPO / "tools" /
                        "screenshot_monitor.py"), str(png), "--clip", str(tmp_path / "no.mkv")],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "no.mkv" in r.stderr
    assert png.read_bytes() == before
