"""OSC against the live Engine on a real JACK server (dummy backend): controls change what
is played, analysis out arrives every tick, fuzz and flood while playing, real Csound fed
by a playing engine, and the ``liveframe play`` command with every OSC flag.

Every wait is on a condition: the device's clock (samples the callback has played), the
engine's tick count, or what a peer received."""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import psutil
import pytest
from pythonosc.osc_message import OscMessage

from liveframe.cli.osc import add_osc_arguments, start_osc
from liveframe.control.messages import ANALYSIS
from liveframe.control.out import scale_brightness, scale_motion
from liveframe.core.brain import Brain
from liveframe.core.pipeline import Tick
from liveframe.data.clips import write_clip
from liveframe.errors import UsageError
from liveframe.live.capture import Capture, PyAVReader
from liveframe.live.engine import Engine
from liveframe.live.jackd import jack_env
from liveframe.util.wav import read_wav
from tests.helpers import make_brain
from tests.oscutil import (
    REPO,
    free_udp_port,
    msg,
    read_status,
    receive_pending,
    run_csound_with,
    spectrum_peak,
    udp_socket,
    wait_for,
)

pytestmark = [pytest.mark.jack, pytest.mark.timeout(90)]

MARGIN = 2048  # generous (43 ms at 48 kHz) on a shared 2-core machine: these tests check
# behaviour; benchmarks/bench_osc.py measures underruns at tighter margins
TONE = 450.0  # 15 whole cycles per 735-sample hop: the overlap-added tone is pure
AMP = 0.3


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("osclive")
    # brightness rises frame by frame: the analysis out can see brightness and motion
    frames = [(i / 30, np.full((48, 64), 40 + i * 6, np.uint8)) for i in range(30)]
    return {
        "clip": write_clip(d / "ramp.mkv", frames, fps=30.0),
        "tone": make_brain(d / "tone.onnx", freq=TONE, amp=AMP),
        "tone900": make_brain(d / "tone900.onnx", freq=900.0, amp=AMP),
        "block": make_brain(d / "block.onnx", framing="block"),  # incompatible framing
        "dir": d,
    }


def _engine(media: dict[str, Path], brain: str = "tone", **kw) -> Engine:
    b = Brain.load(media[brain])
    return Engine(b, Capture(PyAVReader(media["clip"], loop=True), spec=b.spec),
                  margin=MARGIN, **kw)


def _start_osc(engine: Engine, **flags) -> tuple:
    """``start_osc`` as ``liveframe play`` calls it, on a free control port."""
    p = argparse.ArgumentParser()
    add_osc_arguments(p)
    for _ in range(5):
        port = free_udp_port()
        ns = p.parse_args(["--osc-port", str(port)])
        for k, v in flags.items():
            setattr(ns, k, v)
        try:
            return start_osc(ns, engine), ("127.0.0.1", port)
        except UsageError:  # somebody took the port in between: pick another
            continue
    raise RuntimeError("no free UDP port")


def _played_samples(engine: Engine) -> int:
    """Samples the callback has output so far (the device's clock)."""
    return int(engine.shared.frames)


def _play_for(engine: Engine, seconds: float) -> int:
    """Wait until the device has played ``seconds`` more; return the position then."""
    end = _played_samples(engine) + int(seconds * engine.samplerate)
    assert wait_for(lambda: _played_samples(engine) >= end, timeout=seconds * 4 + 5)
    return _played_samples(engine)


def _rms_windows(x: np.ndarray, w: int = 256) -> np.ndarray:
    n = x.shape[0] // w
    return np.sqrt(np.mean(x[: n * w].reshape(n, w).astype(np.float64) ** 2, axis=1))


def _peak_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spec) * sr / x.size)


# -- controls change what is played -------------------------------------------------------
@pytest.mark.slow
def test_gain_mute_panic_are_heard_promptly_and_without_a_click(jack_server, media) -> None:
    rec = media["dir"] / "levels.wav"
    eng = _engine(media, record=rec)
    closer, to = _start_osc(eng)
    marks: dict[str, int] = {}
    with udp_socket() as tx:

        def send(name: str, *m: object) -> None:
            marks[name] = _played_samples(eng)
            tx.sendto(msg(*m), to)
            _play_for(eng, 0.5)

        eng.start()
        try:
            _play_for(eng, 0.5)
            send("gain0", "/liveframe/gain", 0.0)
            send("gain1", "/liveframe/gain", 1.0)
            send("mute", "/liveframe/mute", 1)
            send("unmute", "/liveframe/mute", 0)
            send("panic", "/liveframe/panic")
            send("end", "/liveframe/gain", 1.0)  # a gain alone does not undo a panic
            assert eng.controls.mute and eng.controls.panic_count == 1
        finally:
            eng.stop()
            closer()
    st = eng.stats()
    assert st["underruns"] == 0 and eng.error is None
    sr, x = read_wav(rec)
    w = 256
    rms = _rms_windows(x, w)
    steady = float(np.median(rms[marks["gain0"] // w - 40 : marks["gain0"] // w - 2]))
    assert steady == pytest.approx(AMP / math.sqrt(2), rel=0.1)  # the tone at gain 1
    natural = float(np.abs(np.diff(x[marks["gain0"] - 8000 : marks["gain0"]])).max())

    def drop_delay(name: str) -> int:
        """Samples from sending to the first window 6 dB below the steady level."""
        i0 = marks[name] // w
        below = np.nonzero(rms[i0:] < steady / 2)[0]
        assert below.size, f"{name}: the level never dropped"
        return int(below[0]) * w

    # "within one tick plus the ring margin": the producer reads the controls once per
    # tick and the callback applies the gain; 0.25 s is allowed for a loaded machine's
    # scheduling (benchmarks/bench_osc.py measures the real figure)
    tick = math.ceil(eng.hop * eng.ratio)
    bound = tick + MARGIN + int(0.25 * sr)
    delay = {name: drop_delay(name) for name in ("gain0", "mute", "panic")}
    print("samples from sending to -6 dB:", delay)
    assert all(d <= bound for d in delay.values()), (delay, bound)
    # silence once the smoothed gain has settled (10 ms time constant: 0.1 s), the tone
    # back in between
    settle = int(0.1 * sr)
    for off, on in (("gain0", "gain1"), ("mute", "unmute")):
        a, b = marks[off] + delay[off] + settle, marks[on]
        assert b - a > sr // 10 and np.abs(x[a:b]).max() < 1e-3, off
    for name, end in (("gain1", "mute"), ("unmute", "panic")):
        i0, i1 = marks[name] // w, marks[end] // w
        up = np.nonzero(rms[i0:i1] > steady / 2)[0]
        assert up.size and up[0] * w <= bound, (name, up[:1], bound)
        back = rms[i0 + up[0] + settle // w : i1]
        assert back.size > 5 and np.median(back) == pytest.approx(steady, rel=0.1), name
    assert np.abs(x[marks["panic"] + delay["panic"] + w :]).max() == 0.0  # panic: true zeros
    # no click: the smoothed gain never steps harder than the tone itself does
    for a, b in (("gain0", "gain1"), ("gain1", "mute"), ("mute", "unmute"), ("unmute", "panic")):
        step = float(np.abs(np.diff(x[marks[a] : marks[b]])).max())
        assert step <= natural * 1.05 + 2e-3, (a, step, natural)


@pytest.mark.slow
def test_mode_and_brain_swaps_over_osc(jack_server, media) -> None:
    rec = media["dir"] / "swaps.wav"
    eng = _engine(media, record=rec)
    granular: list[bool] = []  # per tick: did the tick carry grain placements

    def listener(tick: Tick) -> None:
        granular.append(tick.placements is not None)

    eng.add_tick_listener(listener)
    closer, to = _start_osc(eng)
    marks: dict[str, int] = {}
    with udp_socket() as tx:
        eng.start()
        try:
            assert wait_for(lambda: eng.tick >= 10)
            n = len(granular)
            tx.sendto(msg("/liveframe/mode", "granular"), to)
            assert wait_for(lambda: granular[-1], timeout=3)  # the synth changed
            assert not any(granular[:n]) and eng.mode == "granular"
            tx.sendto(msg("/liveframe/mode", "ola"), to)
            assert wait_for(lambda: not granular[-1] and eng.mode == "ola", timeout=3)
            # incompatible, then unreadable: refused, the old brain keeps playing
            tx.sendto(msg("/liveframe/brain", str(media["block"])), to)
            assert wait_for(lambda: "refused" in (eng.controls.last_error or ""), timeout=5)
            tx.sendto(msg("/liveframe/brain", "no-such-brain-here"), to)
            assert wait_for(lambda: "no-such-brain-here" in (eng.controls.last_error or ""),
                            timeout=5)
            st = read_status(tx, to)
            assert "no-such-brain-here" in st["refused"] and st["brain"] == "tone"
            marks["refused"] = _played_samples(eng)
            marks["swap"] = _play_for(eng, 0.4)
            tx.sendto(msg("/liveframe/brain", str(media["tone900"])), to)
            assert wait_for(lambda: eng.brain.name == "tone900", timeout=5)
            marks["end"] = _play_for(eng, 0.4)
            st = read_status(tx, to)
        finally:
            eng.stop()
            closer()
    assert st["brain"] == "tone900" and st["mode"] == "ola" and st["ticks"] > 30
    assert eng.stats()["underruns"] == 0 and eng.error is None
    sr, x = read_wav(rec)
    before = x[marks["refused"] : marks["swap"]]
    after = x[marks["end"] - sr // 4 : marks["end"]]
    assert abs(_peak_hz(before, sr) - TONE) < 10  # the old brain kept playing
    assert np.sqrt(np.mean(before**2)) == pytest.approx(AMP / math.sqrt(2), rel=0.1)
    assert abs(_peak_hz(after, sr) - 900.0) < 10  # the new one is heard
    # crossfaded: no step harder than the 900 Hz tone's own
    cross = x[marks["swap"] : marks["end"]]
    assert np.abs(np.diff(cross)).max() <= AMP * 2 * math.pi * 900 / sr * 1.1 + 2e-3


# -- analysis out -------------------------------------------------------------------------
def test_analysis_out_arrives_every_tick_and_follows_freeze(jack_server, media) -> None:
    with udp_socket() as rx, udp_socket() as tx:
        eng = _engine(media)
        closer, to = _start_osc(eng, osc_out=f"127.0.0.1:{rx.getsockname()[1]}")
        try:
            eng.start()
            assert wait_for(lambda: eng.tick >= 36, timeout=10)
            frozen_at = eng.tick
            tx.sendto(msg("/liveframe/freeze", 1), to)
            assert wait_for(lambda: eng.tick >= frozen_at + 24, timeout=10)
        finally:
            eng.stop()
            closer()
        got = [OscMessage(d) for d in receive_pending(rx)]
    ticks = eng.tick
    assert len(got) == 4 * ticks  # loopback: nothing lost
    names = [a for a, _, _ in ANALYSIS]
    rows = [[m.params[0] for m in got[i : i + 4]] for i in range(0, len(got), 4)]
    assert all([m.address for m in got[i : i + 4]] == names for i in range(0, len(got), 4))
    assert [r[3] for r in rows] == list(range(ticks))  # /liveframe/tick: every tick, in order
    want = 20 * math.log10(AMP / math.sqrt(2))  # the ola tone at full level, as output
    # /liveframe/level is what reached the output over the last tick: silence while the
    # ring is prefilled (before the stream runs), the gain's fade-in, then the tone (until
    # the stop fades it out, after tick frozen_at + 24)
    assert rows[0][0] == -120.0 and all(r[0] < want + 0.5 for r in rows[:12])
    assert all(r[0] == pytest.approx(want, abs=0.5) for r in rows[12 : frozen_at + 24])
    # until the freeze: the clip's grey rises 40, 46, ... 214 and loops
    follow = rows[:frozen_at]
    for k, (_, bright, motion, _) in enumerate(follow):
        assert bright == pytest.approx(scale_brightness((40 + (k % 30) * 6) / 255), abs=0.015)
        if k % 30:
            assert motion == pytest.approx(scale_motion(6 / 255), abs=0.05)
        elif k:
            assert motion == pytest.approx(scale_motion(174 / 255), abs=0.01)  # loop jumps back
    # frozen (within a few ticks of sending): the same picture, no motion
    held = rows[frozen_at + 8 :]
    assert len({r[1] for r in held}) == 1 and all(r[2] == 0.0 for r in held[1:])


# -- robustness while playing -------------------------------------------------------------
_FLOODER = textwrap.dedent("""
    import sys
    import numpy as np
    from liveframe.control.fuzz import flood, fuzz_datagrams, send_all

    host, port, seconds, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    fuzzed = send_all(host, port, fuzz_datagrams(np.random.default_rng(5), 3000), rate=10000)
    sent, per_s = flood(host, port, seconds=seconds, rate=rate)
    print(fuzzed, sent, per_s)
""")


@pytest.mark.slow
def test_fuzz_and_flood_while_playing_on_jack(jack_server, media, thread_errors) -> None:
    eng = _engine(media)
    closer, to = _start_osc(eng)
    server_thread = [t for t in threading.enumerate() if t.name == "liveframe-osc"]
    assert server_thread
    proc = psutil.Process()
    eng.start()
    try:
        assert wait_for(lambda: eng.tick >= 10)
        rss0 = proc.memory_info().rss
        tick0, pos0 = eng.tick, _played_samples(eng)
        r = subprocess.run([sys.executable, "-c", _FLOODER, *map(str, to), "3", "10000"],
                           check=False, capture_output=True, text=True, timeout=40,
                           env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert r.returncode == 0, r.stderr
        played = eng.tick - tick0
        heard = (_played_samples(eng) - pos0) / (eng.hop * eng.ratio)  # ticks' worth
        rss1 = proc.memory_info().rss
        fuzzed, flood, rate = r.stdout.split()
        # still answering (resent: the flood may still fill the socket buffer), and the
        # engine still plays what the controls say
        with udp_socket() as tx:
            assert wait_for(lambda: eng.controls.gain == 0.25, timeout=5,
                            every=lambda: tx.sendto(msg("/liveframe/gain", 0.25), to))
            st = read_status(tx, to)
        alive = all(t.is_alive() for t in server_thread)
    finally:
        eng.stop()
        closer()
    stats = eng.stats()
    assert int(fuzzed) == 3000 and int(flood) >= 25000 and float(rate) > 8000, r.stdout
    assert stats["underruns"] == 0, stats
    assert stats["listener_errors"] == 0 and eng.error is None
    # it kept up with the device's clock (the dummy JACK may run slow on a loaded machine)
    assert played >= heard - 2 and heard >= 60, (played, heard)
    assert thread_errors == []
    assert alive  # the server thread survived it all
    assert st["gain"] == 0.25 and st["underruns"] == 0
    assert st["osc_handled"] >= 25000 and st["osc_ignored"] >= 1500, st  # it all arrived
    assert rss1 - rss0 < 50 * 2**20


# -- real Csound fed by a playing engine --------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ola", "granular"])
def test_csound_plays_what_the_live_engine_sends(jack_server, media, tmp_path, mode) -> None:
    eng = _engine(media, mode=mode)
    played: list[int] = []

    def feed(port: int) -> None:
        closer, _ = _start_osc(eng, csound=f"127.0.0.1:{port}")
        try:
            eng.run(seconds=1.2)
        finally:
            closer()
        played.append(eng.tick)

    x = run_csound_with(feed, tmp_path, seconds=3.0)
    assert played[0] >= 20
    peak, rms, share = spectrum_peak(x, freq=TONE)
    granular = mode == "granular"
    assert abs(peak - TONE) < (10.0 if granular else 2.0), peak
    assert share > (0.5 if granular else 0.95), share
    # about as long as the engine played, the hops joined without gaps
    assert np.count_nonzero(np.abs(x) > 0.01) > 44100 * 0.8 * played[0] / 30
    if not granular:
        assert rms == pytest.approx(AMP / math.sqrt(2), rel=0.1)


# -- the command ----------------------------------------------------------------------------
@pytest.mark.slow
def test_liveframe_play_with_every_osc_flag(jack_server, media) -> None:
    with udp_socket() as rx, udp_socket() as cs, udp_socket() as tx:
        port = free_udp_port()
        p = subprocess.Popen(
            [sys.executable, "-m", "liveframe", "play", str(media["clip"]), "--no-gui", "--loop",
             "--brain", str(media["tone"]), "--margin", str(MARGIN), "--seconds", "2",
             "--osc-port", str(port), "--osc-out", f"127.0.0.1:{rx.getsockname()[1]}",
             "--csound", f"127.0.0.1:{cs.getsockname()[1]}"],
            env=jack_env(jack_server.name), stderr=subprocess.PIPE, text=True,
        )
        try:
            rx.settimeout(20)
            first = OscMessage(rx.recv(65536))  # it plays: ask it while it does
            rx.settimeout(None)
            to = ("127.0.0.1", port)
            st: dict = {}

            def gain_is_half() -> bool:
                st.update(read_status(tx, to, timeout=0.5))
                return st.get("gain") == 0.5

            assert wait_for(gain_is_half, timeout=10,
                            every=lambda: tx.sendto(msg("/liveframe/gain", 0.5), to))
            rc = p.wait(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
        err = p.stderr.read() if p.stderr else ""
        assert rc == 0, err
        assert first.address == "/liveframe/level"
        assert st["brain"] == "tone" and st["ticks"] > 0, st
        assert f"OSC control on 127.0.0.1:{port}" in err and "underruns" in err, err
        got: dict[str, list] = {}
        for s in (rx, cs):
            for d in receive_pending(s):
                m = OscMessage(d)
                got.setdefault(m.address, []).append(m.params)
    ticks = [p[0] for p in got["/liveframe/tick"]]
    assert len(ticks) >= 30 and ticks == list(range(ticks[0], ticks[0] + len(ticks)))
    grains = got["/liveframe/grain"]
    assert len(grains) == len(ticks)  # one hop per tick in ola mode
    assert all(g[1] == 735 and g[2] == 22050 for g in grains)
    assert {g[3] for g in grains[-10:]} == {0.5}  # the gain travels with the grains
    pos = [g[0] for g in grains]
    assert pos == [735 * k for k in range(len(pos))]
