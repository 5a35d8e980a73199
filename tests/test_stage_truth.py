"""On stage the instrument tells the truth and survives what a network throws at it.

- The meter (``Snapshot.level_dbfs``), ``/liveframe/level`` and the status read what
  reaches the output: after the gain, mute, panic and the limiter (the brain's own level
  is ``brain_level_dbfs``), on a real JACK dummy server.
- The status names the source and the brain that play, and the last refusal apart.
- A storm of brain swaps: the last request wins and memory returns to its level;
  ``/dev/zero`` and a FIFO are refused at once.
- Log bombs (8 KB bundles of empty elements, unknown type tags, a negative element size)
  leave a bounded number of log lines a second, python-osc's included.
- The path policy of a server that listens beyond loopback (``media_dirs``).

Every wait is on a condition (the callback's buffers, the engine's ticks, a status reply).
"""

from __future__ import annotations

import logging
import math
import os
import struct
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from pythonosc import osc_packet
from pythonosc.osc_message import OscMessage

from liveframe import constants as C
from liveframe.control.out import AnalysisSender
from liveframe.control.params import Controls, Snapshot
from liveframe.control.server import (
    MAX_BUNDLE_ELEMENTS,
    PYTHONOSC_LOG_FILTER,
    ControlServer,
    split_packet,
)
from liveframe.core.brain import available_brains
from liveframe.data.clips import write_clip
from liveframe.live.capture import Capture, PyAVReader
from liveframe.live.engine import Engine
from tests.helpers import make_brain
from tests.oscutil import msg, read_status, receive_pending, udp_socket, wait_for

MARGIN = 2048  # generous on a shared 2-core machine: these tests check behaviour
AMP = 0.3
TONE = 450.0  # 15 whole cycles per 735-sample hop: a pure, steady tone
SILENCE_DBFS = -100.0
MB = 2**20


def _rss() -> int:
    """Resident set size of this process (bytes), from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _heavy_brain(path: Path, *, freq: float, mb: int = 16) -> Path:
    """A tone brain that carries ``mb`` MB of weights (folded away when the session is
    made): loading it churns the heap as a real brain's load does."""
    make_brain(path, freq=freq, amp=AMP)
    model = onnx.load(str(path))
    g = model.graph
    for node in g.node:
        node.output[:] = ["pre" if o == C.OUTPUT_NAME else o for o in node.output]
    ballast = np.random.default_rng(int(freq)).standard_normal(mb * MB // 4).astype(np.float32)
    g.initializer.extend([numpy_helper.from_array(ballast.reshape(1, -1), "ballast"),
                          numpy_helper.from_array(np.zeros((1, 1), np.float32), "nought")])
    g.node.extend([helper.make_node("ReduceMax", ["ballast"], ["bmax"], keepdims=1),
                   helper.make_node("Mul", ["bmax", "nought"], ["bz"]),
                   helper.make_node("Add", ["pre", "bz"], [C.OUTPUT_NAME])])
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("stage")
    grey = [(i / 30, np.full((48, 64), 120, np.uint8)) for i in range(30)]
    dark = [(i / 30, np.full((48, 64), 30, np.uint8)) for i in range(30)]
    return {
        "clip": write_clip(d / "grey.mkv", grey, fps=30.0),
        "other": write_clip(d / "dark.mkv", dark, fps=30.0),
        "tone": make_brain(d / "tone.onnx", freq=TONE, amp=AMP),
        "tone900": make_brain(d / "tone900.onnx", freq=900.0, amp=AMP),
        "dir": d,
    }


def _engine(media: dict[str, Path], brain: Path, **kw) -> Engine:
    from liveframe.core.brain import Brain

    b = Brain.load(brain)
    return Engine(b, Capture(PyAVReader(media["clip"], loop=True), spec=b.spec),
                  margin=MARGIN, **kw)


def _next_buffers(eng: Engine, extra: int = 0) -> None:
    """Wait for the next audio buffer and then one tick's worth more (plus ``extra``):
    the meter's window holds only buffers output after now."""
    sh = eng.shared
    per_tick = math.ceil(eng.hop * eng.ratio / max(eng.blocksize, 1))
    end = sh.measured + 1 + per_tick + extra
    assert wait_for(lambda: sh.measured >= end, timeout=10)


def _analysis_level_after(eng: Engine, rx, tick: int) -> float:
    """The ``/liveframe/level`` sent for the first tick numbered ``tick`` or later."""
    assert wait_for(lambda: eng.tick >= tick + 2, timeout=10)
    got = [OscMessage(d) for d in receive_pending(rx)]
    levels: dict[int, float] = {}
    # four messages per tick: level, brightness, motion, tick
    for i in range(0, len(got) - 3):
        if got[i].address == "/liveframe/level" and got[i + 3].address == "/liveframe/tick":
            levels[int(got[i + 3].params[0])] = float(got[i].params[0])
    after = [t for t in levels if t >= tick]
    assert after, (tick, sorted(levels)[-5:])
    return levels[min(after)]


# -- 1. the meter reads what is output ---------------------------------------------------
@pytest.mark.jack
def test_meter_level_and_status_read_the_output_after_gain_mute_and_panic(
        jack_server, media) -> None:
    eng = _engine(media, media["tone"])
    snap = Snapshot()
    sh = eng.shared
    with udp_socket() as rx, udp_socket() as tx, \
            ControlServer(eng.controls, port=0, status=eng.stats) as server:
        sender = AnalysisSender(*rx.getsockname())
        eng.add_tick_listener(sender)
        to = server.address
        assert sender.level is not None  # the engine gave it the output's level

        def settle(cond) -> tuple[float, float, float]:
            """Once ``cond`` holds for the callback: the meter, /liveframe/level and the
            brain's level, read within one tick after the next audio buffer."""
            assert wait_for(cond, timeout=10)
            _next_buffers(eng)
            eng.snapshot(snap)
            return (snap.level_dbfs, _analysis_level_after(eng, rx, eng.tick + 1),
                    snap.brain_level_dbfs)

        eng.start()
        try:
            assert wait_for(lambda: eng.tick >= 10, timeout=10)
            full = settle(lambda: sh.gain == 1.0)
            tx.sendto(msg("/liveframe/gain", 0.5), to)
            half = settle(lambda: sh.gain == 0.5)
            st_half = read_status(tx, to)
            tx.sendto(msg("/liveframe/mute", 1), to)
            muted = settle(lambda: sh.gain == 0.0)
            st_muted = read_status(tx, to)
            tx.sendto(msg("/liveframe/mute", 0), to)
            back = settle(lambda: sh.gain == 0.5)
            tx.sendto(msg("/liveframe/panic"), to)
            panicked = settle(lambda: sh.silent)
            st_panic = read_status(tx, to)
        finally:
            eng.stop()
            sender.close()
    print("meter, /liveframe/level, brain level (dBFS):", {
        "gain 1": full, "gain 0.5": half, "muted": muted, "unmuted": back, "panic": panicked})
    peak, rms = 20 * math.log10(AMP), 20 * math.log10(AMP / math.sqrt(2))
    assert full[0] == pytest.approx(peak, abs=0.5) and full[1] == pytest.approx(rms, abs=0.5)
    # the gain change, in dB, on the meter and on /liveframe/level; not on the brain's
    gain_db = 20 * math.log10(0.5)
    assert half[0] - full[0] == pytest.approx(gain_db, abs=1.0)
    assert half[1] - full[1] == pytest.approx(gain_db, abs=1.0)
    assert back[0] == pytest.approx(half[0], abs=0.5)
    for brain_level in (full[2], half[2], muted[2], panicked[2]):
        assert brain_level == pytest.approx(peak, abs=0.5)
    # silence within one tick after the next audio buffer, once muted or panicked
    for meter, level, _ in (muted, panicked):
        assert meter <= SILENCE_DBFS and level <= SILENCE_DBFS
    # the status carries both, labelled
    assert st_half["level_dbfs"] == pytest.approx(half[0], abs=1.0)
    assert st_half["brain_level_dbfs"] == pytest.approx(peak, abs=0.5)
    for st in (st_muted, st_panic):
        assert st["level_dbfs"] <= SILENCE_DBFS
        assert st["brain_level_dbfs"] == pytest.approx(peak, abs=0.5)


@pytest.mark.jack
def test_route_csound_meters_the_level_csound_plays_and_outputs_silence(
        jack_server, media, tmp_path) -> None:
    """``--route csound`` (``controls.own_output`` False): the meter reads the gained,
    limited level (what the grains carry to Csound), while this process's own output, its
    recording and its stats peak stay silent."""
    rec = tmp_path / "own.wav"
    eng = _engine(media, media["tone"], record=rec)
    eng.controls.own_output = False
    eng.controls.gain = 0.5
    snap = Snapshot()
    eng.start()
    try:
        assert wait_for(lambda: eng.tick >= 10 and eng.shared.gain == 0.5, timeout=10)
        _next_buffers(eng)
        eng.snapshot(snap)
    finally:
        eng.stop()
    from liveframe.util.wav import read_wav

    _, own = read_wav(rec)
    peak = 20 * math.log10(AMP * 0.5)
    assert snap.level_dbfs == pytest.approx(peak, abs=1.0), snap.level_dbfs
    assert own.size > 0 and not np.any(own)
    assert eng.stats()["peak"] == 0.0


# -- 2. the status names what plays -------------------------------------------------------
@pytest.mark.jack
def test_status_names_what_plays_and_the_last_refusal_apart(jack_server, media) -> None:
    eng = _engine(media, media["tone"])
    with udp_socket() as tx, ControlServer(eng.controls, port=0, status=eng.stats) as server:
        to = server.address
        eng.start()
        try:
            assert wait_for(lambda: eng.tick >= 5, timeout=10)
            first = read_status(tx, to)
            missing = str(media["dir"] / "missing.mkv")
            tx.sendto(msg("/liveframe/source", missing), to)
            assert wait_for(lambda: "missing.mkv" in (eng.controls.last_error or ""))
            after_source = read_status(tx, to)
            tx.sendto(msg("/liveframe/brain", "/dev/zero"), to)
            assert wait_for(lambda: "/dev/zero" in (eng.controls.last_error or ""))
            after_brain = read_status(tx, to)
            tx.sendto(msg("/liveframe/source", str(media["other"])), to)
            assert wait_for(lambda: eng.source_switches == 1, timeout=10)
            switched = read_status(tx, to)
            tx.sendto(msg("/liveframe/brain", str(media["tone900"]) + ".nope"), to)
            assert wait_for(lambda: ".nope" in (eng.controls.last_error or ""))
            tx.sendto(msg("/liveframe/brain", str(media["tone900"])), to)
            assert wait_for(lambda: eng.brain.name == "tone900", timeout=10)
            swapped = read_status(tx, to)
        finally:
            eng.stop()
    clip, other = str(media["clip"]), str(media["other"])
    # the clip the engine was started with is named, not ""
    assert first["source"] == clip and first["brain"] == "tone" and first["refused"] == ""
    # refused: the old one plays and says so; the refusal is apart
    assert after_source["source"] == clip and "missing.mkv" in after_source["refused"]
    assert after_brain["brain"] == "tone" and "/dev/zero" in after_brain["refused"]
    assert after_brain["source"] == clip
    # a later success clears the refusal
    assert switched["source"] == other and switched["refused"] == ""
    assert swapped["brain"] == "tone900" and swapped["refused"] == ""
    assert swapped["source"] == other


# -- 3. hot swaps --------------------------------------------------------------------------
def _worker_idle(eng: Engine) -> None:
    """Wait until the engine's worker has run everything submitted so far."""
    done = threading.Event()
    assert eng.worker.submit(done.set)
    assert done.wait(30)


@pytest.mark.jack
@pytest.mark.slow
def test_a_storm_of_swaps_ends_on_the_last_and_gives_the_memory_back(jack_server, media) -> None:
    d = media["dir"]
    a = _heavy_brain(d / "heavy450.onnx", freq=TONE)
    b = _heavy_brain(d / "heavy900.onnx", freq=900.0)
    eng = _engine(media, a)
    outs: deque[np.ndarray] = deque(maxlen=4)
    eng.add_tick_listener(lambda t: outs.append(t.out.copy()))
    with udp_socket() as tx, ControlServer(eng.controls, port=0, status=eng.stats) as server:
        to = server.address
        eng.start()
        try:
            # warm up: each brain loaded and played once, so both are "at their level"
            for path, name in ((b, "heavy900"), (a, "heavy450")):
                tx.sendto(msg("/liveframe/brain", str(path)), to)
                assert wait_for(lambda n=name: eng.brain.name == n, timeout=20)
                assert wait_for(lambda t=eng.tick: eng.tick >= t + 3, timeout=10)
            _worker_idle(eng)
            rss0 = _rss()
            for i in range(100):  # alternating, 10 ms apart; the last asks for heavy900
                tx.sendto(msg("/liveframe/brain", str(a if i % 2 == 0 else b)), to)
                time.sleep(0.01)
            assert wait_for(lambda: eng.brain.name == "heavy900", timeout=30)
            t = eng.tick
            assert wait_for(lambda: eng.tick >= t + 10, timeout=10)
            _worker_idle(eng)
            assert wait_for(lambda: eng.tick >= t + 15, timeout=10)
            still = eng.brain.name
            st = read_status(tx, to)
            _worker_idle(eng)
            rss1 = _rss()
        finally:
            eng.stop()
    print(f"RSS before the storm {rss0 / MB:.0f} MB, after {rss1 / MB:.0f} MB "
          f"({(rss1 - rss0) / MB:+.1f} MB)")
    assert still == "heavy900" and st["brain"] == "heavy900" and st["refused"] == ""
    last = outs[-1]
    spec = np.abs(np.fft.rfft(last * np.hanning(last.size)))
    assert abs(np.argmax(spec) * 22050 / last.size - 900.0) < 40  # heard, not just named
    assert rss1 - rss0 < 50 * MB


@pytest.mark.jack
def test_dev_zero_and_a_fifo_are_refused_at_once_while_playing(jack_server, media,
                                                                tmp_path) -> None:
    fifo = tmp_path / "brain.onnx"
    os.mkfifo(fifo)
    vfifo = tmp_path / "clip.mkv"
    os.mkfifo(vfifo)
    eng = _engine(media, media["tone"])
    with udp_socket() as tx, ControlServer(eng.controls, port=0, status=eng.stats) as server:
        to = server.address
        eng.start()
        try:
            assert wait_for(lambda: eng.tick >= 5, timeout=10)
            rss0 = _rss()
            refusals = []
            for address, path in (("/liveframe/brain", "/dev/zero"),
                                  ("/liveframe/brain", str(fifo)),
                                  ("/liveframe/source", "/dev/zero"),
                                  ("/liveframe/source", str(vfifo))):
                eng.controls.last_error = None
                tx.sendto(msg(address, path), to)
                assert wait_for(lambda: eng.controls.last_error is not None, timeout=5), path
                refusals.append(eng.controls.last_error or "")
            t = eng.tick
            assert wait_for(lambda: eng.tick >= t + 5, timeout=10)  # still playing
            rss1 = _rss()
            st = read_status(tx, to)
        finally:
            eng.stop()
    print("refusals:", refusals, f"RSS {rss0 / MB:.0f} -> {rss1 / MB:.0f} MB")
    for path, why in zip(["/dev/zero", str(fifo), "/dev/zero", str(vfifo)], refusals,
                         strict=True):
        assert path in why and "\n" not in why, why
    assert st["brain"] == "tone" and st["source"] == str(media["clip"])
    assert abs(rss1 - rss0) < 50 * MB and eng.error is None


# -- 4. log bombs ----------------------------------------------------------------------------
def _bombs() -> list[bytes]:
    """The hostile datagrams of issue 16: 8 KB bundles of empty elements, a message of
    4,000 unknown type tags, a bundle with an element of negative size (python-osc loops
    on it for ever), a bundle of 1,000 tiny messages."""
    head = b"#bundle\0" + b"\0" * 8
    empty = head + b"\0\0\0\0" * 2043
    tags = b"/liveframe/gain\0," + b"x" * 4000 + b"\0\0\0" + b"\0\0\0\0"
    negative = head + struct.pack(">i", -4)
    tiny = head + (struct.pack(">i", 4) + b"/a\0\0") * 1000
    return [empty, tags, negative, tiny]


def test_log_bombs_leave_a_bounded_number_of_lines(caplog) -> None:
    assert len(_bombs()[0]) == 8188
    controls = Controls()
    with caplog.at_level(logging.WARNING), udp_socket() as tx, \
            ControlServer(controls, port=0) as s:
        t0 = time.monotonic()
        sent = 0
        for _ in range(125):
            for d in _bombs():
                tx.sendto(d, s.address)
                sent += 1
            # a few at a time, so that the socket buffer drops none: every one is read
            assert wait_for(lambda n=sent: s.malformed >= n, timeout=10)
        # still answering
        assert wait_for(lambda: controls.gain == 0.5, timeout=5,
                        every=lambda: tx.sendto(msg("/liveframe/gain", 0.5), s.address))
        seconds = time.monotonic() - t0
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    print(f"{sent} bombs, {s.malformed} read as malformed, {len(lines)} log lines in "
          f"{seconds:.1f} s")
    assert s.malformed == sent == 500 and s.handled >= 1 and s.unknown == 0
    # one line per kind a second at most, and there are two kinds here
    assert 1 <= len(lines) <= 2 * (math.ceil(seconds) + 1), [r.getMessage() for r in lines]


def test_split_packet_refuses_what_python_osc_would_log_or_loop_on() -> None:
    empty, tags, negative, tiny = _bombs()
    for d in (empty, tags, negative, tiny):
        with pytest.raises(ValueError):
            split_packet(d)
    head = b"#bundle\0" + b"\0" * 8
    ok = head + struct.pack(">i", 8) + b"/b\0\0,\0\0\0" + struct.pack(">i", 4) + b"/c\0\0"
    assert split_packet(ok) == [b"/b\0\0,\0\0\0", b"/c\0\0"]
    many = head + (struct.pack(">i", 4) + b"/a\0\0") * MAX_BUNDLE_ELEMENTS
    assert len(split_packet(many)) == MAX_BUNDLE_ELEMENTS


def test_python_oscs_own_lines_are_rate_limited(caplog) -> None:
    """python-osc logs one line per bundle element it cannot identify (on the root
    logger); the server's filter holds them to one a second."""
    ControlServer(Controls(), port=0).close()  # installs the filter
    assert PYTHONOSC_LOG_FILTER in logging.getLogger().filters
    bundle = b"#bundle\0" + b"\0" * 8 + b"\0\0\0\0" * 200
    held = PYTHONOSC_LOG_FILTER.held
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            osc_packet.OscPacket(bundle)  # python-osc itself: 1,000 lines unfiltered
    from_osc = [r for r in caplog.records if "Could not identify" in r.getMessage()]
    assert len(from_osc) <= 1 and PYTHONOSC_LOG_FILTER.held >= held + 999
    logging.getLogger().removeFilter(PYTHONOSC_LOG_FILTER)  # the filter is what bounds it
    try:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            osc_packet.OscPacket(bundle)
        assert len(caplog.records) == 200
    finally:
        logging.getLogger().addFilter(PYTHONOSC_LOG_FILTER)


# -- 5. the path policy ------------------------------------------------------------------------
def test_path_policy_beyond_loopback(tmp_path) -> None:
    media_dir = tmp_path / "media"
    media_dir.mkdir()
    inside = make_brain(media_dir / "mine.onnx")
    clip = media_dir / "clip.mkv"
    clip.write_bytes(b"x")
    outside = make_brain(tmp_path / "outside.onnx")
    (media_dir / "link.onnx").symlink_to(outside)
    controls = Controls()
    shipped = available_brains()
    with udp_socket() as tx, ControlServer(controls, port=0, media_dirs=[media_dir]) as s:
        def send(address: str, value: object) -> tuple[str | None, str | None]:
            """(what was stored, the refusal) for one message over UDP."""
            n = s.handled + s.refused
            controls.last_error = None
            controls.source = None
            tx.sendto(msg(address, value), s.address)
            assert wait_for(lambda: s.handled + s.refused > n)
            stored = (controls.take_brain_request() if address.endswith("brain")
                      else controls.source)
            return stored, controls.last_error

        # allowed: a shipped brain by name, a brain or a clip inside the media folder
        # (stored resolved), a camera index
        if "default" in shipped:
            assert send("/liveframe/brain", "default") == (os.path.realpath(shipped["default"]),
                                                           None)
        assert send("/liveframe/brain", str(inside)) == (os.path.realpath(inside), None)
        assert send("/liveframe/source", str(clip)) == (os.path.realpath(clip), None)
        assert send("/liveframe/source", 0) == ("0", None)
        assert send("/liveframe/source", "2") == ("2", None)
        # refused, with the same words whether or not the path exists
        refused = {}
        for address in ("/liveframe/brain", "/liveframe/source"):
            for name, path in (("exists", str(outside)),
                               ("missing", str(tmp_path / "nothing.onnx")),
                               ("dot-dot", str(media_dir / ".." / "outside.onnx")),
                               ("link", str(media_dir / "link.onnx")),
                               ("etc", "/etc/passwd"), ("dev", "/dev/zero")):
                stored, why = send(address, path)
                assert stored is None and why is not None, (address, name)
                refused[address, name] = why.replace(path, "PATH")
            assert len({w for (a, _), w in refused.items() if a == address}) == 1, refused
        # a bare name that is no brain is refused alike: it is never looked up as a file
        stored, why = send("/liveframe/brain", "etc")
        assert stored is None and why == refused["/liveframe/brain", "exists"].replace(
            "PATH", "etc")
        st = read_status(tx, s.address)
    assert "refused" in st["refused"]
    # on loopback (no media_dirs) nothing is restricted, as before
    with udp_socket() as tx, ControlServer(controls, port=0) as s:
        tx.sendto(msg("/liveframe/brain", str(outside)), s.address)
        assert wait_for(lambda: s.handled == 1)
        assert controls.take_brain_request() == str(outside)
