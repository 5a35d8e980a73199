"""OSC without an audio device: handlers from raw datagrams, the message builder and the
grain wire format, the Csound bridge against GranularSynth sample for sample, the whole
path with real peers (oscsend, Pd, Csound), and fuzzing of the control port. Every socket
is on 127.0.0.1 with a free port."""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import re
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage

from liveframe import constants as C
from liveframe.cli.osc import add_osc_arguments, parse_hostport, start_osc
from liveframe.control import messages, server
from liveframe.control.fuzz import flood, fuzz_datagrams, send_all
from liveframe.control.out import AnalysisSender, CsoundBridge, scale_brightness, scale_motion
from liveframe.control.params import Controls
from liveframe.control.server import ControlServer
from liveframe.core.brain import Brain
from liveframe.core.pipeline import Tick, TickPipeline
from liveframe.errors import UsageError
from tests.helpers import make_brain
from tests.oscutil import (
    REPO,
    LineReader,
    PipelineEngine,
    free_udp_port,
    msg,
    receive,
    run_csound_with,
    spectrum_peak,
    udp_socket,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)

CONTROL_PD = REPO / "patches" / "liveframe-control.pd"
CONTROL_MAX = REPO / "patches" / "liveframe-control.maxpat"
SERVER_LOG = "liveframe.control.server"


@pytest.fixture
def controls() -> Controls:
    return Controls()


@pytest.fixture
def running(controls: Controls):
    with ControlServer(controls, port=0) as s:
        yield s


def offline(controls: Controls, **kw) -> ControlServer:
    """A server that is never started: handle_datagram is called directly."""
    s = ControlServer(controls, port=0, **kw)
    s.close()
    return s


def osc_args(**flags) -> argparse.Namespace:
    """The OSC options as ``liveframe play`` parses them."""
    p = argparse.ArgumentParser()
    add_osc_arguments(p)
    ns = p.parse_args([])
    for k, v in flags.items():
        setattr(ns, k, v)
    return ns


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


def test_every_fuzz_datagram_is_ignored(controls: Controls) -> None:
    """The fuzz generator the flood tests and the benchmark use: each of its datagrams is
    counted as ignored, and none changes a control."""
    before = dict(controls.state())
    s = offline(controls)
    n = 600
    for data in fuzz_datagrams(np.random.default_rng(3), n):
        assert s.handle_datagram(data) == []
    assert s.handled == 0 and s.malformed + s.unknown + s.refused == n
    assert s.refused >= n // 3 and s.malformed >= n // 3  # every kind came
    assert controls.state() == before and controls.panic_count == 0
    assert controls.take_brain_request() is None


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
    controls.last_error = "tone2.onnx: refused"
    s = offline(controls, status=lambda: {"tick": 42, "brain": "tone", "running": True,
                                          "latency_ms": {"p50": 1.0}})
    replies = s.handle_datagram(msg("/liveframe/status"), ("127.0.0.1", 5555))
    got = {}
    for data, to in replies:
        assert to == ("127.0.0.1", 5555)
        m = OscMessage(data)
        got[m.address] = m.params[0]
    assert got["/liveframe/status/gain"] == 0.5
    assert got["/liveframe/status/mode"] == "granular"
    assert got["/liveframe/status/mute"] == 0
    assert got["/liveframe/status/refused"] == "tone2.onnx: refused"
    assert got["/liveframe/status/tick"] == 42 and got["/liveframe/status/brain"] == "tone"
    assert got["/liveframe/status/running"] == 1  # a bool goes as 0 or 1
    assert "/liveframe/status/latency_ms" not in got  # only scalars are sent
    # with a port: to the sender's host at that port
    replies = s.handle_datagram(msg("/liveframe/status", 9001.0), ("127.0.0.1", 5555))
    assert {to for _, to in replies} == {("127.0.0.1", 9001)}


def test_a_failing_status_extra_still_answers(controls: Controls) -> None:
    def broken() -> dict:
        raise RuntimeError("engine gone")

    s = offline(controls, status=broken)
    replies = s.handle_datagram(msg("/liveframe/status"))
    keys = {OscMessage(d).address.rsplit("/", 1)[1] for d, _ in replies}
    assert {"gain", "mode", "osc_handled"} <= keys


def test_status_is_rate_limited(controls: Controls) -> None:
    s = offline(controls)
    answered = sum(bool(s.handle_datagram(msg("/liveframe/status"))) for _ in range(200))
    assert 1 <= answered <= server.STATUS_REPLIES_PER_SECOND + 5


def test_logging_is_rate_limited(controls: Controls, caplog) -> None:
    s = offline(controls)
    with caplog.at_level("WARNING", logger=SERVER_LOG):
        for _ in range(500):
            s.handle_datagram(b"garbage")
    assert s.malformed == 500
    assert 1 <= len(caplog.records) <= 3


def test_oversized_datagrams_are_refused_unread(controls: Controls, caplog) -> None:
    s = offline(controls)
    big = msg("/liveframe/brain", "b" * (server.MAX_DATAGRAM + 100))
    with caplog.at_level("WARNING", logger=SERVER_LOG):
        assert s.handle_datagram(big) == []
    assert s.malformed == 1 and controls.take_brain_request() is None
    assert f"{len(big)} bytes" in caplog.text
    # the longest valid string still fits
    s.handle_datagram(msg("/liveframe/brain", "c" * server.MAX_TEXT))
    assert s.handled == 1 and controls.take_brain_request() == "c" * server.MAX_TEXT


# -- one address table everywhere ---------------------------------------------------------
def test_every_patch_and_the_readme_carry_every_address() -> None:
    pd = CONTROL_PD.read_text()
    mx = json.loads(CONTROL_MAX.read_text())
    max_texts = " ".join(b["box"].get("text", "") for b in mx["patcher"]["boxes"])
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- section:osc -->")[1].split("<!-- /section:osc -->")[0]
    for r in server.ROUTES:
        parts = r.address.strip("/").split("/")
        assert f"oscformat {' '.join(parts)};" in pd, r.address
        assert r.address in max_texts, r.address
        assert f"`{r.address}`" in section, r.address
    for a, _, _ in messages.ANALYSIS:
        assert a in max_texts and f"`{a}`" in section
    assert "netsend -u -b" in pd and "netreceive -u -b" in pd and "oscparse" in pd
    assert "udpsend 127.0.0.1 9000" in max_texts and "udpreceive" in max_texts


# -- the one message builder and the grain wire format ---------------------------------------
def test_message_builder_types_read_back_by_python_osc() -> None:
    m = OscMessage(messages.message("/a/b", 7, -(2**31), 2**40, 1.5, "héllo", "", b"abc",
                                    b"", True, np.int64(3), np.float32(0.25)))
    assert m.address == "/a/b"
    assert m.params == [7, -(2**31), 2**40, 1.5, "héllo", "", b"abc", b"", 1, 3, 0.25]
    assert OscMessage(messages.message("/x")).params == []
    with pytest.raises(ValueError, match="must start with"):
        messages.message("x")
    with pytest.raises(ValueError, match="NUL"):
        messages.message("/x", "a\0b")
    with pytest.raises(TypeError, match="cannot send"):
        messages.message("/x", [1, 2])


def test_status_and_analysis_messages() -> None:
    m = OscMessage(messages.status_message("brain", "tone"))
    assert (m.address, m.params) == ("/liveframe/status/brain", ["tone"])
    got = [OscMessage(d) for d in messages.analysis_messages(
        level=-6.0, brightness=0.5, motion=0.25, tick=9)]
    assert [g.address for g in got] == [a for a, _, _ in messages.ANALYSIS]
    assert [g.params[0] for g in got] == [-6.0, 0.5, 0.25, 9]


def test_grain_message_layout_and_parse() -> None:
    x = np.linspace(-1, 1, 10, dtype=np.float32)
    data = messages.grain_message(735, x, sr=22050, amp=0.5, env=1)
    m = OscMessage(data)  # an independent reader
    assert m.address == "/liveframe/grain"
    pos, n, sr, amp, env, blob = m.params
    assert (pos, n, sr, amp, env) == (735, 10, 22050, 0.5, 1)
    np.testing.assert_array_equal(np.frombuffer(blob, "<f8"), x.astype(np.float64))
    g = messages.parse_grain(data)
    assert (g.position, g.sr, g.amp, g.env) == (735, 22050, 0.5, 1)
    np.testing.assert_array_equal(g.samples, x.astype(np.float64))
    np.testing.assert_allclose(g.rendered(), 0.5 * x * messages.grain_envelope(10))
    big = messages.grain_message(0, np.zeros(10000), sr=22050, amp=1.0, env=0)
    assert len(big) < 32768 and OscMessage(big).params[1] == messages.GRAIN_MAX_SAMPLES
    assert messages.parse_grain(messages.grain_message(2**31 + 5, x, sr=1, amp=1, env=0)
                                ).position == -(2**31) + 5  # wraps, as documented
    with pytest.raises(ValueError, match="not a /liveframe/grain"):
        messages.parse_grain(msg("/liveframe/gain", 1.0))
    with pytest.raises(ValueError, match="blob"):
        messages.parse_grain(data[:-8])


def test_grain_envelope_is_the_granular_synths() -> None:
    from liveframe.core.synth import GranularSynth

    # what GranularSynth plays for one lone grain with an envelope: a block of ones,
    # density 0 (the parent only), framing block (so the parent is shaped)
    synth = GranularSynth(hop=100, framing="block", density=0.0, spread=0.0)
    synth.process(np.ones(100, np.float32))
    (p,) = synth.last_placements
    assert p.envelope and p.duration == 100 and p.gain == 1.0
    played = np.concatenate([np.zeros(100, np.float32), synth.flush()])[p.start:][:100]
    np.testing.assert_allclose(played, messages.grain_envelope(100), atol=1e-6)


# -- the Csound bridge sends exactly what GranularSynth plays -------------------------------
def _frames(n: int, seed: int) -> np.ndarray:
    """``n`` pictures of varying brightness: with a brightness brain, every block differs."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 1, 64, 64), dtype=np.uint8)


@pytest.mark.parametrize(
    ("mode", "framing", "density", "spread"),
    [("granular", "grain", 1.0, 1.0), ("granular", "block", 1.0, 1.0),
     ("granular", "grain", 4.0, 4.0), ("granular", "grain", 0.0, 0.0),
     ("ola", "grain", 1.0, 1.0), ("raw", "block", 1.0, 1.0)],
)
def test_csound_bridge_sends_what_the_synth_plays(
    tmp_path: Path, mode: str, framing: str, density: float, spread: float
) -> None:
    """Rebuild the signal from the ``/liveframe/grain`` datagrams as Csound does (each
    grain at its position, shaped when env is 1, times amp) and compare it, from tick 0,
    with the pipeline's own output: the same grains, sample for sample."""
    brain = Brain.load(make_brain(tmp_path / "b.onnx", brightness=True, framing=framing))
    pipe = TickPipeline(brain, mode=mode, seed=7, density=density, spread=spread)
    controls = Controls(gain=0.5)
    n = 40
    hop = pipe.hop
    with udp_socket(rcvbuf=1 << 22) as rx:
        closer = start_osc(osc_args(osc_port=0, osc_out="none",
                                    csound=f"127.0.0.1:{rx.getsockname()[1]}"),
                           PipelineEngine(pipe, controls))
        assert closer is not None
        (bridge,) = pipe.listeners
        grains = []
        out = []
        sent_by_tick = []
        try:
            for pixels in _frames(n, seed=1):
                before = bridge.sent
                out.append(pipe.step(pixels).copy())
                sent_by_tick.append(bridge.sent - before)
                # drain after every tick: a granular tick at density 4 sends ~80 grains
                grains += [messages.parse_grain(d) for d in receive(rx, bridge.sent - before)]
        finally:
            closer()
    assert bridge.dropped == 0 and len(grains) == bridge.sent >= n
    played = np.concatenate(out).astype(np.float64)
    if mode == "granular":
        played = np.concatenate([played, pipe.flush()])
    rebuilt = np.zeros(played.shape[0] + 8 * C.HOP)
    for g in grains:
        assert g.sr == brain.spec.sample_rate and 0 <= g.position
        x = g.rendered()
        rebuilt[g.position : g.position + x.shape[0]] += x
    assert not rebuilt[played.shape[0]:].any()  # nothing lands after what the synth plays
    np.testing.assert_allclose(rebuilt[: played.shape[0]], 0.5 * played, atol=1e-6)
    # from tick 0: its grains were sent, and the first ticks are compared, not silent
    assert sent_by_tick[0] >= 1 and np.abs(played[: 4 * hop]).max() > 0.01
    if mode == "granular":
        # a grain brain's whole parent is already windowed (env 0), every other grain
        # is shaped (env 1); density 0: parents only
        want = {1} if framing == "block" else ({0} if density == 0 else {0, 1})
        assert {g.env for g in grains} == want
    else:
        assert [g.position for g in grains] == [k * hop for k in range(n)]


def test_the_bridge_follows_mute_and_gain(tmp_path: Path) -> None:
    brain = Brain.load(make_brain(tmp_path / "b.onnx"))
    pipe = TickPipeline(brain, mode="granular", seed=1)
    controls = Controls()
    with udp_socket() as rx:
        bridge = CsoundBridge(*rx.getsockname(), sr=brain.spec.sample_rate, controls=controls)
        pipe.listeners.append(bridge)
        frame = np.zeros((1, 64, 64), np.uint8)
        for setting, gain in ((lambda: controls.set_gain(1.5), 1.5),
                              (lambda: controls.set_mute(True), 0.0), (controls.panic, 0.0),
                              (lambda: controls.set_mute(False), 1.5),
                              (lambda: controls.set_gain(0.25), 0.25)):
            setting()
            before = bridge.sent
            pipe.step(frame)
            got = [messages.parse_grain(d) for d in receive(rx, bridge.sent - before)]
            want = [gain * p.gain for p in pipe.tick.placements]
            np.testing.assert_allclose([g.amp for g in got], want, rtol=1e-6)
        bridge.close()


# -- analysis out -------------------------------------------------------------------------
def _tick(index: int, frame: np.ndarray, out: np.ndarray) -> Tick:
    return Tick(index=index, position=index * out.shape[0], frame=frame, block=out, out=out)


def test_analysis_out_sends_level_brightness_motion_tick() -> None:
    with udp_socket() as rx:
        sender = AnalysisSender(*rx.getsockname())
        n = np.arange(C.HOP)
        out = (0.3 * np.sin(2 * np.pi * 441 * n / C.SAMPLE_RATE)).astype(np.float32)
        dark = np.full((1, 64, 64), 51, np.uint8)
        light = np.full((1, 64, 64), 204, np.uint8)
        sender(_tick(7, dark, out))
        sender(_tick(8, light, np.zeros_like(out)))
        got = [OscMessage(d) for d in receive(rx, 8, timeout=2.0)]
        sender.close()
    v = [(m.address, m.params[0]) for m in got]
    assert [a for a, _ in v[:4]] == [a for a, _, _ in messages.ANALYSIS]
    assert v[0][1] == pytest.approx(20 * math.log10(0.3 / math.sqrt(2)), abs=0.05)
    # mean grey 0.2, 0.8 and a change of 0.6, on the analysis out's scales
    assert v[1][1] == pytest.approx(scale_brightness(0.2), abs=1e-3) and v[1][1] > 0.2
    assert v[2][1] == 0.0 and v[3][1] == 7
    assert v[4][1] == -120.0 and v[5][1] == pytest.approx(0.8 / 0.9, abs=1e-3)
    assert v[6][1] == pytest.approx(scale_motion(0.6), abs=1e-3) == 1.0 and v[7][1] == 8


def test_senders_drop_instead_of_raising() -> None:
    """Every datagram is counted as sent or dropped, and a send that fails (here: to the
    broadcast address without SO_BROADCAST, refused by the kernel) is dropped, not
    raised into the producer."""
    frame = np.zeros((1, 64, 64), np.uint8)
    out = np.zeros(C.HOP, np.float32)
    port = free_udp_port()  # closed: nobody listens
    for host, failing in (("127.0.0.1", False), ("255.255.255.255", True)):
        sender = AnalysisSender(host, port)
        bridge = CsoundBridge(host, port, sr=C.SAMPLE_RATE)
        for k in range(50):
            sender(_tick(k, frame, out))
            bridge(_tick(k, frame, out))
        sender.close()
        bridge.close()
        assert sender.sent + sender.dropped == 200 and bridge.sent + bridge.dropped == 50
        if failing:
            assert sender.dropped == 200 and bridge.dropped == 50
        else:  # nobody listens: the ICMP port-unreachable fails every other send
            assert sender.dropped == sender.refused >= 50 and sender.sent >= 50
            assert bridge.dropped == bridge.refused >= 10 and bridge.sent >= 10


# -- the command line -----------------------------------------------------------------------
def test_command_line_flags() -> None:
    a = osc_args()
    assert (a.osc_port, a.osc_host, a.osc_out, a.csound) == (9000, "127.0.0.1", None, None)
    p = argparse.ArgumentParser()
    add_osc_arguments(p)
    a = p.parse_args(["--csound", "--osc-port", "0"])
    assert a.csound == "start" and a.osc_port == 0  # alone: liveframe starts Csound
    assert parse_hostport("10.0.0.2:7000", flag="--csound") == ("10.0.0.2", 7000)
    assert parse_hostport("9001", flag="--osc-out") == ("127.0.0.1", 9001)
    with pytest.raises(UsageError, match="--osc-out"):
        parse_hostport("host:99999", flag="--osc-out")


@pytest.mark.parametrize(
    ("flags", "flag"),
    [({"osc_port": 70000}, "--osc-port"), ({"osc_port": 0, "osc_out": "nope"}, "--osc-out"),
     ({"osc_port": 0, "csound": "no.such.host.invalid:7770"}, "--csound")],
)
def test_start_osc_names_the_flag_and_leaves_nothing_open(tmp_path: Path, flags, flag) -> None:
    brain = Brain.load(make_brain(tmp_path / "b.onnx"))
    pipe = TickPipeline(brain)
    with pytest.raises(UsageError, match=flag) as e:
        start_osc(osc_args(**flags), PipelineEngine(pipe, Controls()))
    assert "\n" not in str(e.value)
    assert pipe.listeners == []


def test_a_busy_port_is_one_clear_error(running: ControlServer, tmp_path: Path) -> None:
    port = running.address[1]
    with pytest.raises(UsageError, match=f"127.0.0.1:{port}") as e:
        ControlServer(Controls(), port=port)
    assert "--" not in str(e.value)  # the library names the value, not a flag
    pipe = TickPipeline(Brain.load(make_brain(tmp_path / "b.onnx")))
    with pytest.raises(UsageError, match="--osc-port"):
        start_osc(osc_args(osc_port=port), PipelineEngine(pipe, Controls()))


def test_start_osc_answers_status_with_the_engines_stats(tmp_path: Path) -> None:
    pipe = TickPipeline(Brain.load(make_brain(tmp_path / "b.onnx")))
    engine = PipelineEngine(pipe, Controls())
    port = free_udp_port()
    closer = start_osc(osc_args(osc_port=port), engine)
    assert closer is not None
    assert start_osc(osc_args(osc_port=0, osc_out="none"), engine) is None
    try:
        pipe.step(np.zeros((1, 64, 64), np.uint8))
        with udp_socket() as tx:
            got = {}

            def ask() -> None:
                tx.sendto(msg("/liveframe/status"), ("127.0.0.1", port))

            def answered() -> bool:
                tx.settimeout(0.1)
                try:
                    while True:
                        m = OscMessage(tx.recv(65536))
                        got[m.address.rsplit("/", 1)[1]] = m.params[0]
                except TimeoutError:
                    pass
                return "brain" in got

            assert wait_for(answered, timeout=5, every=ask)
    finally:
        closer()
    assert got["ticks"] == 1 and got["brain"] == "b" and got["gain"] == 1.0


def test_library_code_never_names_a_flag() -> None:
    """Only liveframe/cli/ speaks of flags: no string in liveframe/control/ holds one."""
    found = []
    for path in sorted((REPO / "liveframe" / "control").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.search(r"(^|\s)--[a-z]", node.value):
                    found.append(f"{path.name}:{node.lineno}: {node.value[:60]!r}")
    assert found == []


# -- real peers ---------------------------------------------------------------------------
def test_oscsend_plays_the_controls(running: ControlServer, controls: Controls) -> None:
    host, port = running.address
    for args in (["/liveframe/gain", "f", "1.75"], ["/liveframe/mode", "s", "raw"],
                 ["/liveframe/freeze", "i", "1"], ["/liveframe/brain", "s", "other"]):
        subprocess.run(["oscsend", host, str(port), *args], check=True, timeout=10)
    assert wait_for(lambda: running.handled == 4)
    assert controls.gain == 1.75 and controls.mode == "raw" and controls.freeze
    assert controls.take_brain_request() == "other"


PD_PROBE = """#N canvas 0 0 400 300 12;
#X obj 10 10 r liveframe-level;
#X obj 10 40 print probe-level;
#X obj 10 70 r liveframe-brightness;
#X obj 10 100 print probe-brightness;
#X obj 10 130 r liveframe-motion;
#X obj 10 160 print probe-motion;
#X obj 10 190 r liveframe-tick;
#X obj 10 220 print probe-tick;
#X connect 0 0 1 0;
#X connect 2 0 3 0;
#X connect 4 0 5 0;
#X connect 6 0 7 0;
"""


def test_pd_control_patch_plays_the_controls_and_gets_status(
    running: ControlServer, controls: Controls, tmp_path: Path
) -> None:
    """The patch's controls reach the server, the status replies come back into Pd, and
    the analysis out reaches the patch's [s liveframe-*] sends (a probe patch prints them)."""
    probe = tmp_path / "probe.pd"
    probe.write_text(PD_PROBE)
    port = running.address[1]
    pd_port = free_udp_port()
    sends = [f"connect 127.0.0.1 {port}", f"listen {pd_port}", "gain 1.5", "mute 1",
             "mode symbol granular", "grain/density 2.5", "grain/spread 0.5",
             "freeze 1", "brain symbol tone", "source symbol clip.mkv", "panic",
             f"status {pd_port}"]
    cmd = ["pd", "-nogui", "-nosound", "-nomidi", "-noprefs", "-stderr", "-open", str(CONTROL_PD),
           "-open", str(probe)]
    for s in sends:
        cmd += ["-send", f"liveframe-ctl {s}"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reader = LineReader(p.stdout)
    try:
        assert wait_for(lambda: running.handled >= 10, timeout=15), reader.text()
        # the status replies travel back into Pd, which prints them
        assert wait_for(lambda: reader.has("liveframe-status: source"), timeout=10), reader.text()
        # the analysis out, as liveframe sends it, into the patch's listening port
        with udp_socket() as tx:
            for d in messages.analysis_messages(level=-6.5, brightness=0.25, motion=0.75,
                                                tick=42):
                tx.sendto(d, ("127.0.0.1", pd_port))
            assert wait_for(lambda: reader.has("probe-tick: 42"), timeout=10), reader.text()
    finally:
        p.terminate()
        p.wait(timeout=10)
        reader.join()
    out = reader.text()
    assert running.refused == 0 and running.malformed == 0 and running.unknown == 0, out
    assert controls.gain == 1.5 and controls.mute and controls.freeze
    assert controls.mode == "granular" and controls.source == "clip.mkv"
    assert (controls.density, controls.spread) == (2.5, 0.5)
    assert controls.panic_count == 1 and controls.take_brain_request() == "tone"
    assert "liveframe-status: gain 1.5" in out, out
    assert "liveframe-status: mode granular" in out, out
    for line in ("probe-level: -6.5", "probe-brightness: 0.25", "probe-motion: 0.75"):
        assert line in out, out
    assert "couldn't create" not in out and "error" not in out.lower(), out


# -- Csound, the real binary --------------------------------------------------------------
def _feed_pipeline(port: int, brain: Brain, mode: str, *, seconds: float) -> int:
    """Play ``brain`` through a pipeline at the brain's clock, as the live producer does,
    with the bridge as its tick listener; return the datagrams sent."""
    pipe = TickPipeline(brain, mode=mode, seed=1)
    bridge = CsoundBridge("127.0.0.1", port, sr=brain.spec.sample_rate)
    pipe.listeners.append(bridge)
    frame = np.full((1, 64, 64), 128, np.uint8)
    t0 = time.monotonic()
    for k in range(int(seconds * brain.spec.fps)):
        pipe.step(frame)
        time.sleep(max(0.0, t0 + (k + 1) / brain.spec.fps - time.monotonic()))  # the clock
    bridge.close()
    return bridge.sent


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pcm", "spectrum"])
@pytest.mark.parametrize("mode", ["ola", "granular"])
def test_csound_plays_the_bridged_tone(tmp_path: Path, mode: str, kind: str) -> None:
    # 450 Hz: a whole number of cycles per hop (15), so the overlap-added tone is pure; a
    # spectrum brain sends its decoded hops (ola) or grains cut from them (granular)
    brain = Brain.load(make_brain(tmp_path / "tone.onnx", freq=450.0, amp=0.3,
                                  spec_overrides={"kind": kind}))
    sent = []
    x = run_csound_with(
        lambda port: sent.append(_feed_pipeline(port, brain, mode, seconds=1.2)), tmp_path)
    assert sent[0] >= 36
    peak, rms, share = spectrum_peak(x)
    granular = mode == "granular"
    # granular: short grains cut from the tone spread its line, the tone still dominates
    assert abs(peak - 450.0) < (10.0 if granular else 2.0), peak
    assert share > (0.5 if granular else 0.95), share
    assert np.count_nonzero(np.abs(x) > 0.01) > 44100 * 0.8  # about 1.2 s of sound
    if not granular:
        # the hops join without gaps: the level is steady (a 0.3 sine: RMS 0.212)
        assert rms == pytest.approx(0.3 / math.sqrt(2), rel=0.1)


@pytest.mark.slow
def test_csound_shapes_a_grain_as_granular_synth_does(tmp_path: Path) -> None:
    """The patch applies GranularSynth's symmetric Hann, sample for sample: a short flat
    grain (env 0) marks the timeline, a flat grain with env 1 follows ``gap`` brain
    samples later; both are scheduled from the same anchor, so the second one's shape
    can be read at exact brain positions (Csound plays at 44100 Hz, twice the brain
    rate, interpolating linearly)."""
    n, gap, amp, sr = 735, 1000, 0.4, 22050  # amp: below the patch's output clipper

    def feed(port: int) -> None:
        with udp_socket() as tx:
            for pos, x, env in ((0, np.ones(8), 0), (gap, np.ones(n), 1)):
                tx.sendto(messages.grain_message(pos, x, sr=sr, amp=amp, env=env),
                          ("127.0.0.1", port))

    y = run_csound_with(feed, tmp_path, seconds=1.5)
    j = int(np.nonzero(y > 1e-3)[0][0])  # the marker's rising edge: amp * (position + 1)
    position = y[j] / amp - 1 + 0.5 * (np.arange(y.shape[0]) - j)  # brain samples, at 2x
    u = position - gap  # read position in the second grain
    inside = (u >= 0) & (u <= n - 1)
    assert np.count_nonzero(inside) >= 2 * n - 2
    want = amp * (0.5 - 0.5 * np.cos(2 * np.pi * (u[inside] + 0.5) / n))
    np.testing.assert_allclose(y[inside], want, atol=2e-4)
    # a periodic Hann (k / n instead of (k + 0.5) / n) is half a sample off: it fails here
    assert np.abs(y[inside] - amp * (0.5 - 0.5 * np.cos(2 * np.pi * u[inside] / n))).max() > 5e-4


# -- robustness ---------------------------------------------------------------------------
def test_fuzz_and_flood_leave_the_server_working(
    running: ControlServer, controls: Controls, thread_errors: list
) -> None:
    host, port = running.address
    proc = psutil.Process()
    # random bytes, wrong types, huge strings, about 5,000 a second
    sent = send_all(host, port, fuzz_datagrams(np.random.default_rng(5), 2000), rate=5000)
    rss0 = proc.memory_info().rss
    # valid messages, about 10,000 a second for 2 s
    flooded, _ = flood(host, port, seconds=2.0, rate=10000)
    rss1 = proc.memory_info().rss
    # still working afterwards (resent: the flood may still fill the socket buffer)
    with udp_socket() as tx:
        assert wait_for(lambda: abs(controls.gain - 0.123) < 1e-6, timeout=10,
                        every=lambda: tx.sendto(msg("/liveframe/gain", 0.123), (host, port)))
        # the status request too may meet the flood's tail (or the rate limit): resend
        replies: list[bytes] = []

        def answered() -> bool:
            tx.sendto(msg("/liveframe/status"), (host, port))
            try:
                replies.extend(receive(tx, 1, timeout=0.5))
            except TimeoutError:
                return False
            return True

        assert wait_for(answered, timeout=10)
        reply = OscMessage(replies[0])
        assert reply.address.startswith("/liveframe/status/")
    assert thread_errors == []
    assert sent == 2000 and flooded > 15000
    assert running.handled > 1000 and running.malformed + running.refused + running.unknown > 500
    assert rss1 - rss0 < 50 * 2**20


def test_a_flood_beyond_max_rate_is_throttled_not_fatal(controls: Controls) -> None:
    # a server that reads 2,000 datagrams a second at most, sent 6,000 as fast as possible
    with ControlServer(controls, port=0, max_rate=2000) as s, udp_socket() as tx:
        for i in range(6000):
            tx.sendto(msg("/liveframe/grain/density", (i % 40) / 10), s.address)
        assert wait_for(lambda: s.throttled > 0)
        assert wait_for(lambda: abs(controls.gain - 0.321) < 1e-6, timeout=10,
                        every=lambda: tx.sendto(msg("/liveframe/gain", 0.321), s.address))
    assert 0 < s.handled <= 6000 + 100
    with pytest.raises(ValueError, match="max_rate"):
        ControlServer(controls, port=0, max_rate=0)


def test_the_csound_bridge_never_sends_a_blast_or_a_nan() -> None:
    """Grains leave before liveframe's own guard and limiter: the bridge bounds them
    itself (NaN and infinities as silence, sample times amp within the ceiling)."""
    from liveframe.control.out import GRAIN_CEILING, _bounded

    wild = np.array([np.nan, np.inf, -np.inf, 50.0, -50.0, 0.1], np.float32)
    for amp in (0.0, 0.5, 1.0, 2.0):
        x = _bounded(wild, amp)
        assert np.all(np.isfinite(x)) and x[:3].tolist() == [0.0, 0.0, 0.0]
        if amp > 0:
            assert np.max(np.abs(x)) * amp <= GRAIN_CEILING + 1e-9
            assert x[5] == pytest.approx(0.1)  # a sound sample is untouched
    with udp_socket() as rx:  # and what really goes out, over a real socket
        controls = Controls(gain=2.0)
        bridge = CsoundBridge(*rx.getsockname(), sr=22050, controls=controls)
        try:
            tick = Tick.__new__(Tick)
            tick.position, tick.out, tick.placements = 0, wild, None
            bridge(tick)
            m = messages.parse_grain(receive(rx, 1, timeout=5)[0])
        finally:
            bridge.close()
    assert m.amp == 2.0 and np.all(np.isfinite(m.samples))
    assert np.max(np.abs(m.samples)) * m.amp <= GRAIN_CEILING + 1e-6
