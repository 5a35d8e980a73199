"""OSC: handlers from raw datagrams, the whole path with real peers (oscsend, Pd, Csound),
and fuzzing of the control port. Every socket is on 127.0.0.1 with a free port."""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import struct
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import psutil
import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from liveframe import constants as C
from liveframe.control import osc
from liveframe.control.params import Controls
from liveframe.core.brain import Brain
from liveframe.core.synth import GranularSynth, OlaSynth
from liveframe.errors import UsageError
from tests.helpers import make_brain

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parent.parent
GRAINS_CSD = REPO / "patches" / "liveframe-grains.csd"
CONTROL_PD = REPO / "patches" / "liveframe-control.pd"
CONTROL_MAX = REPO / "patches" / "liveframe-control.maxpat"


def msg(address: str, *args: object, types: str | None = None) -> bytes:
    b = OscMessageBuilder(address)
    for i, a in enumerate(args):
        b.add_arg(a, types[i] if types else None)
    return b.build().dgram


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


@pytest.fixture
def controls() -> Controls:
    return Controls()


@pytest.fixture
def server(controls: Controls):
    with osc.ControlServer(controls, port=0) as s:
        yield s


def offline(controls: Controls) -> osc.ControlServer:
    """A server that is never started: handle_datagram is called directly."""
    s = osc.ControlServer(controls, port=0)
    s.close()
    return s


# -- handlers from raw datagrams ----------------------------------------------------------
def test_levels_are_validated_and_clamped(controls: Controls) -> None:
    s = offline(controls)
    s.handle_datagram(msg("/liveframe/gain", 3.5))
    assert controls.gain == 2.0
    s.handle_datagram(msg("/liveframe/gain", -1))
    assert controls.gain == 0.0
    s.handle_datagram(msg("/liveframe/gain", 1, types="i"))  # ints are numbers too
    assert controls.gain == 1.0
    s.handle_datagram(msg("/liveframe/grain/density", 9.0))
    s.handle_datagram(msg("/liveframe/grain/spread", 0.25))
    assert (controls.density, controls.spread) == (4.0, 0.25)
    s.handle_datagram(msg("/liveframe/mute", 1.0))  # Pd sends floats
    s.handle_datagram(msg("/liveframe/freeze", 1, types="i"))
    assert controls.mute and controls.freeze
    s.handle_datagram(msg("/liveframe/mute", 0, types="i"))
    assert not controls.mute
    assert s.handled == 8 and s.refused == 0


def test_events_and_strings(controls: Controls) -> None:
    s = offline(controls)
    s.handle_datagram(msg("/liveframe/panic"))
    assert controls.mute and controls.panic_count == 1
    s.handle_datagram(msg("/liveframe/brain", "tone"))
    assert controls.take_brain_request() == "tone"
    s.handle_datagram(msg("/liveframe/mode", "granular"))
    assert controls.mode == "granular"
    s.handle_datagram(msg("/liveframe/source", "clip.mkv"))
    assert controls.source == "clip.mkv"
    s.handle_datagram(msg("/liveframe/source", 0, types="i"))  # a camera index
    assert controls.source == "0"


@pytest.mark.parametrize(
    "datagram",
    [
        msg("/liveframe/gain", "loud"),
        msg("/liveframe/gain", float("nan")),
        msg("/liveframe/gain"),
        msg("/liveframe/gain", 1.0, 2.0),
        msg("/liveframe/mode", "wobble"),
        msg("/liveframe/mode", 1.0),
        msg("/liveframe/brain", 3, types="i"),
        msg("/liveframe/brain", "x" * 5000),
        msg("/liveframe/source", -1, types="i"),
        msg("/liveframe/mute", "yes"),
        msg("/liveframe/status", 70000, types="i"),
    ],
)
def test_wrong_types_and_values_are_refused(controls: Controls, datagram: bytes) -> None:
    before = dict(controls.state())
    s = offline(controls)
    assert s.handle_datagram(datagram) == []
    assert s.refused == 1 and s.handled == 0
    assert controls.state() == before
    assert controls.take_brain_request() is None


@pytest.mark.parametrize(
    "datagram",
    [b"", b"garbage", b"/liveframe/gain\0",
     b"#bundle\0" + b"\xff" * 12, b"/liveframe/gain\0,z\0\0\0\0\0\0", os.urandom(64)],
)
def test_malformed_packets_are_counted(controls: Controls, datagram: bytes) -> None:
    s = offline(controls)
    assert s.handle_datagram(datagram) == []
    assert s.malformed + s.unknown + s.refused == 1 and s.handled == 0
    assert controls.gain == 1.0


def test_unknown_address_is_ignored(controls: Controls) -> None:
    s = offline(controls)
    s.handle_datagram(msg("/liveframe/volume", 0.5))
    s.handle_datagram(msg("/liveframe/*", 0.5))  # patterns are not expanded
    assert s.unknown == 2 and controls.gain == 1.0


def test_bundles_apply_at_once_even_with_a_future_time_tag(controls: Controls) -> None:
    b = OscBundleBuilder(time.time() + 3600)  # python-osc's dispatcher would sleep an hour
    b.add_content(OscMessage(msg("/liveframe/gain", 0.5)))
    inner = OscBundleBuilder(IMMEDIATELY)
    inner.add_content(OscMessage(msg("/liveframe/mode", "raw")))
    b.add_content(inner.build())
    s = offline(controls)
    s.handle_datagram(b.build().dgram)
    assert controls.gain == 0.5 and controls.mode == "raw"


def test_deeply_nested_bundle_does_not_escape(controls: Controls) -> None:
    head = b"#bundle\0" + b"\0" * 8
    inner = msg("/liveframe/gain", 0.5)
    for _ in range(2000):  # deeper than Python's recursion limit
        inner = head + struct.pack(">i", len(inner)) + inner
    s = offline(controls)
    assert s.handle_datagram(inner[:65000]) == []
    assert s.malformed == 1


def test_status_replies_one_message_per_key(controls: Controls) -> None:
    controls.set_gain(0.5)
    controls.set_mode("granular")
    s = osc.ControlServer(controls, port=0, status=lambda: {"tick": 42, "brain": "tone"})
    s.close()
    replies = s.handle_datagram(msg("/liveframe/status"), ("127.0.0.1", 5555))
    got = {}
    for data, to in replies:
        assert to == ("127.0.0.1", 5555)
        m = OscMessage(data)
        got[m.address] = m.params[0]
    assert got["/liveframe/status/gain"] == 0.5
    assert got["/liveframe/status/mode"] == "granular"
    assert got["/liveframe/status/mute"] == 0
    assert got["/liveframe/status/tick"] == 42 and got["/liveframe/status/brain"] == "tone"
    # with a port: to the sender's host at that port
    replies = s.handle_datagram(msg("/liveframe/status", 9001.0), ("127.0.0.1", 5555))
    assert {to for _, to in replies} == {("127.0.0.1", 9001)}


def test_status_is_rate_limited(controls: Controls) -> None:
    s = offline(controls)
    answered = sum(bool(s.handle_datagram(msg("/liveframe/status"))) for _ in range(200))
    assert 1 <= answered <= osc.STATUS_REPLIES_PER_SECOND + 5


def test_logging_is_rate_limited(controls: Controls, caplog) -> None:
    s = offline(controls)
    with caplog.at_level("WARNING", logger="liveframe.control.osc"):
        for _ in range(500):
            s.handle_datagram(b"garbage")
    assert s.malformed == 500
    assert 1 <= len(caplog.records) <= 3


# -- one address table everywhere ---------------------------------------------------------
def test_every_patch_and_the_readme_carry_every_address() -> None:
    pd = CONTROL_PD.read_text()
    mx = json.loads(CONTROL_MAX.read_text())
    max_texts = " ".join(b["box"].get("text", "") for b in mx["patcher"]["boxes"])
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- section:osc -->")[1].split("<!-- /section:osc -->")[0]
    for r in osc.ROUTES:
        parts = r.address.strip("/").split("/")
        assert f"oscformat {' '.join(parts)};" in pd, r.address
        assert r.address in max_texts, r.address
        assert f"`{r.address}`" in section, r.address
    for a, _, _ in osc.ANALYSIS:
        assert a in max_texts and f"`{a}`" in section
    assert "netsend -u -b" in pd and "netreceive -u -b" in pd and "oscparse" in pd
    assert "udpsend 127.0.0.1 9000" in max_texts and "udpreceive" in max_texts


# -- real peers ---------------------------------------------------------------------------
def test_oscsend_plays_the_controls(server: osc.ControlServer, controls: Controls) -> None:
    host, port = server.address
    for args in (["/liveframe/gain", "f", "1.75"], ["/liveframe/mode", "s", "raw"],
                 ["/liveframe/freeze", "i", "1"], ["/liveframe/brain", "s", "other"]):
        subprocess.run(["oscsend", host, str(port), *args], check=True, timeout=10)
    assert wait_for(lambda: server.handled == 4)
    assert controls.gain == 1.75 and controls.mode == "raw" and controls.freeze
    assert controls.take_brain_request() == "other"


def test_pd_control_patch_plays_the_controls_and_gets_status(
    server: osc.ControlServer, controls: Controls
) -> None:
    port = server.address[1]
    pd_port = free_udp_port()
    sends = [f"connect 127.0.0.1 {port}", f"listen {pd_port}", "gain 1.5", "mute 1",
             "mode symbol granular", "grain/density 2.5", "grain/spread 0.5",
             "freeze 1", "brain symbol tone", "source symbol clip.mkv", "panic",
             f"status {pd_port}"]
    cmd = ["pd", "-nogui", "-nosound", "-nomidi", "-noprefs", "-stderr", "-open", str(CONTROL_PD)]
    for s in sends:
        cmd += ["-send", f"liveframe-ctl {s}"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_for(lambda: server.handled >= 10, timeout=15)
        time.sleep(0.5)  # the status replies travel back into Pd
    finally:
        p.terminate()
        out = p.communicate(timeout=10)[0]
    assert server.refused == 0 and server.malformed == 0 and server.unknown == 0, out
    assert controls.gain == 1.5 and controls.mute and controls.freeze
    assert controls.mode == "granular" and controls.source == "clip.mkv"
    assert (controls.density, controls.spread) == (2.5, 0.5)
    assert controls.panic_count == 1 and controls.take_brain_request() == "tone"
    assert "liveframe-status: gain 1.5" in out, out
    assert "liveframe-status: mode granular" in out, out
    assert "couldn't create" not in out and "error" not in out.lower(), out


# -- analysis out -------------------------------------------------------------------------
def test_analysis_out_sends_level_brightness_motion_tick() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(2.0)
        sender = osc.AnalysisSender(*rx.getsockname())
        n = np.arange(C.HOP)
        out = (0.3 * np.sin(2 * np.pi * 441 * n / C.SAMPLE_RATE)).astype(np.float32)
        dark = np.full((1, 64, 64), 51, np.uint8)
        light = np.full((1, 64, 64), 204, np.uint8)
        sender(7, dark, out, out, None)
        sender(8, light, np.zeros_like(out), np.zeros_like(out), None)
        got = [OscMessage(rx.recv(1024)) for _ in range(8)]
        sender.close()
    v = [(m.address, m.params[0]) for m in got]
    assert [a for a, _ in v[:4]] == [a for a, _, _ in osc.ANALYSIS]
    assert v[0][1] == pytest.approx(20 * math.log10(0.3 / math.sqrt(2)), abs=0.05)
    assert v[1][1] == pytest.approx(0.2, abs=1e-3) and v[2][1] == 0.0 and v[3][1] == 7
    assert v[4][1] == -120.0 and v[5][1] == pytest.approx(0.8, abs=1e-3)
    assert v[6][1] == pytest.approx(0.6, abs=1e-3) and v[7][1] == 8


def test_senders_drop_instead_of_failing_when_nobody_listens() -> None:
    port = free_udp_port()  # closed: loopback answers with ICMP port unreachable
    sender = osc.AnalysisSender("127.0.0.1", port)
    bridge = osc.CsoundBridge("127.0.0.1", port, sr=C.SAMPLE_RATE)
    frame = np.zeros((1, 64, 64), np.uint8)
    out = np.zeros(C.HOP, np.float32)
    for k in range(50):
        sender(k, frame, out, out, None)
        bridge(k, frame, out, out, None)
    assert sender.sent + bridge.sent + bridge.dropped > 0
    sender.close()
    bridge.close()


def test_grain_message_layout() -> None:
    x = np.linspace(-1, 1, 10, dtype=np.float32)
    m = OscMessage(osc.grain_message(735, x, sr=22050, amp=0.5, env=1))
    assert m.address == "/liveframe/grain"
    pos, n, sr, amp, env, blob = m.params
    assert (pos, n, sr, amp, env) == (735, 10, 22050, 0.5, 1)
    np.testing.assert_array_equal(np.frombuffer(blob, "<f8"), x.astype(np.float64))
    big = osc.grain_message(0, np.zeros(10000), sr=22050, amp=1.0, env=0)
    assert len(big) < 32768 and OscMessage(big).params[1] == osc.GRAIN_MAX_SAMPLES


def test_command_line_flags() -> None:
    p = argparse.ArgumentParser()
    osc.add_osc_arguments(p)
    a = p.parse_args([])
    assert (a.osc_port, a.osc_host, a.osc_out, a.csound) == (9000, "127.0.0.1", None, None)
    a = p.parse_args(["--csound", "--osc-port", "0"])
    assert a.csound == "127.0.0.1:7770" and a.osc_port == 0
    assert osc.parse_hostport("10.0.0.2:7000", flag="--csound") == ("10.0.0.2", 7000)
    assert osc.parse_hostport("9001", flag="--osc-out") == ("127.0.0.1", 9001)
    with pytest.raises(UsageError, match="--osc-out"):
        osc.parse_hostport("host:99999", flag="--osc-out")


def test_a_busy_port_is_one_clear_error(server: osc.ControlServer) -> None:
    with pytest.raises(UsageError, match="--osc-port"):
        osc.ControlServer(Controls(), port=server.address[1])


# -- Csound, the real binary --------------------------------------------------------------
def _run_csound_with(feed, tmp_path: Path, seconds: float = 3.0) -> np.ndarray:
    """Start csound on the shipped instrument writing a WAV, call feed(port), return audio."""
    port = free_udp_port()
    wav = tmp_path / "csound.wav"
    cmd = ["csound", str(GRAINS_CSD), "-+rtaudio=null", "-odac", "-m4", f"--omacro:PORT={port}",
           f"--omacro:WAV={wav}", f"--smacro:DUR={seconds}"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        assert p.stdout is not None
        for line in p.stdout:  # wait until OSClisten listens
            lines.append(line)
            if "OSC listener" in line:
                break
        assert any("OSC listener" in ln for ln in lines), "".join(lines)
        feed(port)
        out = p.communicate(timeout=seconds + 10)[0]
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, "".join(lines) + out
    with wave.open(str(wav)) as w:
        sr = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768
        assert w.getnchannels() == 1 and sr == 44100
    return x


def _feed_brain(port: int, brain: Brain, synth, *, granular: bool, seconds: float) -> int:
    bridge = osc.CsoundBridge("127.0.0.1", port, sr=brain.spec.sample_rate)
    frame = np.full((1, 64, 64), 128, np.uint8)
    t0 = time.monotonic()
    ticks = int(seconds * brain.spec.fps)
    for k in range(ticks):  # at the brain's clock, like the engine's producer
        block = brain.run(frame[None].astype(np.float32) / 255)[0]
        out = synth.process(block)
        bridge(k, frame, block, out, synth.last_grains if granular else None)
        time.sleep(max(0.0, t0 + (k + 1) / brain.spec.fps - time.monotonic()))
    sent = bridge.sent
    bridge.close()
    return sent


def _spectrum_peak(x: np.ndarray, sr: int = 44100) -> tuple[float, float, float]:
    """Peak frequency, RMS, and the share of energy within 40 Hz of 450 Hz."""
    loud = np.nonzero(np.abs(x) > 1e-2)[0]
    active = x[loud[0] : loud[-1] + 1]
    power = np.abs(np.fft.rfft(active * np.hanning(active.size))) ** 2
    f = np.fft.rfftfreq(active.size, 1 / sr)
    share = float(power[np.abs(f - 450) < 40].sum() / power.sum())
    return float(f[np.argmax(power)]), float(np.sqrt(np.mean(active**2))), share


@pytest.mark.parametrize("mode", ["ola", "granular"])
def test_csound_plays_the_bridged_tone(tmp_path: Path, mode: str) -> None:
    # 450 Hz: a whole number of cycles per hop (15), so the overlap-added tone is pure
    brain = Brain.load(make_brain(tmp_path / "tone.onnx", freq=450.0, amp=0.3))
    granular = mode == "granular"
    synth = GranularSynth(seed=1) if granular else OlaSynth()
    sent = []
    x = _run_csound_with(
        lambda port: sent.append(_feed_brain(port, brain, synth, granular=granular,
                                             seconds=1.2)),
        tmp_path,
    )
    assert sent[0] >= 36
    peak, rms, share = _spectrum_peak(x)
    # granular: short grains cut from the tone spread its line, the tone still dominates
    assert abs(peak - 450.0) < (10.0 if granular else 2.0), peak
    assert share > (0.5 if granular else 0.95), share
    assert np.count_nonzero(np.abs(x) > 0.01) > 44100 * 0.8  # about 1.2 s of sound
    if not granular:
        # the hops join without gaps: the level is steady (a 0.3 sine: RMS 0.212)
        assert rms == pytest.approx(0.3 / math.sqrt(2), rel=0.1)


# -- robustness ---------------------------------------------------------------------------
def test_fuzz_and_flood_leave_the_server_working(
    server: osc.ControlServer, controls: Controls, thread_errors: list
) -> None:
    rng = np.random.default_rng(5)
    target = server.address
    addrs = [r.address for r in osc.ROUTES]
    junk = [
        msg("/liveframe/gain", "x" * 60000), msg("/liveframe/brain", "y" * 60000),
        msg("/liveframe/mode", 3.0), msg("/liveframe/freeze", "on"), b"#bundle\0",
        msg("/liveframe/" + "z" * 1000, 1.0), msg("/liveframe/status", "x"),
    ]
    proc = psutil.Process()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        # random bytes, wrong types, huge strings, about 5,000 a second
        t0 = time.monotonic()
        for i in range(2000):
            if i % 50 == 49:
                time.sleep(max(0.0, t0 + (i + 1) / 5000 - time.monotonic()))
            kind = i % 3
            if kind == 0:
                data = rng.bytes(int(rng.integers(1, 2000)))
            elif kind == 1:
                data = junk[i % len(junk)]
            else:
                data = msg(addrs[i % len(addrs)], rng.bytes(8).hex())  # wrong types
            tx.sendto(data, target)
        rss0 = proc.memory_info().rss
        # a flood of about 10,000 valid messages per second for 2 s
        valid = [msg("/liveframe/gain", float(v)) for v in rng.uniform(0, 2, 100)]
        t0 = time.monotonic()
        for i in range(20000):
            tx.sendto(valid[i % 100], target)
            if i % 100 == 99:
                time.sleep(max(0.0, t0 + (i + 1) / 10000 - time.monotonic()))
        rss1 = proc.memory_info().rss
        # still working afterwards
        time.sleep(0.3)
        tx.sendto(msg("/liveframe/gain", 0.123), target)
        assert wait_for(lambda: abs(controls.gain - 0.123) < 1e-6)
        tx.sendto(msg("/liveframe/status"), target)
        tx.settimeout(2.0)
        reply = OscMessage(tx.recv(65536))
        assert reply.address.startswith("/liveframe/status/")
    assert thread_errors == []
    assert server.handled > 1000 and server.malformed + server.refused + server.unknown > 500
    assert rss1 - rss0 < 50 * 2**20


def test_a_flood_beyond_max_rate_is_throttled_not_fatal(controls: Controls) -> None:
    # a server that reads 2,000 datagrams a second at most, sent 6,000 as fast as possible
    with osc.ControlServer(controls, port=0, max_rate=2000) as s, socket.socket(
        socket.AF_INET, socket.SOCK_DGRAM
    ) as tx:
        for i in range(6000):
            tx.sendto(msg("/liveframe/grain/density", (i % 40) / 10), s.address)
        assert wait_for(lambda: s.throttled > 0)
        time.sleep(0.2)
        tx.sendto(msg("/liveframe/gain", 0.321), s.address)
        assert wait_for(lambda: abs(controls.gain - 0.321) < 1e-6, timeout=10)
    assert 0 < s.handled <= 6001
    with pytest.raises(ValueError, match="max_rate"):
        osc.ControlServer(controls, port=0, max_rate=0)


def test_oversized_datagrams_are_refused_unread(controls: Controls, caplog) -> None:
    s = offline(controls)
    big = msg("/liveframe/brain", "b" * (osc.MAX_DATAGRAM + 100))
    with caplog.at_level("WARNING", logger="liveframe.control.osc"):
        assert s.handle_datagram(big) == []
    assert s.malformed == 1 and controls.take_brain_request() is None
    assert f"{len(big)} bytes" in caplog.text
    # the longest valid string still fits
    s.handle_datagram(msg("/liveframe/brain", "c" * osc.MAX_TEXT))
    assert s.handled == 1 and controls.take_brain_request() == "c" * osc.MAX_TEXT
