"""Csound started by liveframe (``liveframe play --csound``), on a real JACK dummy server
with the real ``csound`` binary: it plays on JACK at JACK's rate, as loud as liveframe's
own output, follows ``--route``, and no Csound process outlives the play (normal end,
Ctrl-C, a kill of liveframe itself). Also: a bridge to a port where nothing listens says so
once, and the analysis out (on by default) spans the 0..1 scale on a moving picture.

Every wait is on a condition (a line of output, a process ending, a datagram), never on
the wall clock."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest
from pythonosc.osc_message import OscMessage

from liveframe.cli.osc import add_osc_arguments, resolve_route, start_osc
from liveframe.control.out import CsoundBridge, scale_motion
from liveframe.control.params import Controls
from liveframe.core.brain import Brain
from liveframe.core.pipeline import Tick, TickPipeline
from liveframe.data.clips import write_clip
from liveframe.errors import DeviceError, UsageError
from liveframe.live.csound import CsoundProcess, grains_wav_for
from liveframe.live.jackd import jack_env
from liveframe.util.wav import read_wav
from tests.helpers import make_brain
from tests.oscutil import (
    LineReader,
    PipelineEngine,
    free_udp_port,
    msg,
    udp_socket,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)

AMP = 0.3
TONE = 450.0
MARGIN = 2048  # generous on a shared 2-core machine (as tests/test_osc_live.py)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("csoundlive")
    frames = [(i / 30, np.full((48, 64), 40 + i * 6, np.uint8)) for i in range(30)]
    return {
        "clip": write_clip(d / "ramp.mkv", frames, fps=30.0),
        "tone": make_brain(d / "tone.onnx", freq=TONE, amp=AMP),
        "dir": d,
    }


def _csound_processes(client: str) -> list[psutil.Process]:
    """Running csound processes whose command line names ``client``."""
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "csound" in (p.info["name"] or "") and client in cmd:
            found.append(p)
    return found


def _jack_connections(server: str) -> str:
    r = subprocess.run(["jack_lsp", "-c"], env=jack_env(server), capture_output=True,
                       text=True, timeout=10, check=False)
    return r.stdout


def _active_rms(x: np.ndarray, w: int = 512) -> float:
    """Median RMS of the ``w``-sample windows louder than -40 dBFS (where it plays)."""
    n = x.shape[0] // w
    rms = np.sqrt(np.mean(x[: n * w].reshape(n, w).astype(np.float64) ** 2, axis=1))
    loud = rms[rms > 0.01]
    assert loud.size > 20, "silence"
    return float(np.median(loud))


def _play(media: dict[str, Path], server: str, rec: Path, *extra: str,
          seconds: float = 2.5) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "liveframe", "play", str(media["clip"]), "--no-gui", "--loop",
         "--brain", str(media["tone"]), "--margin", str(MARGIN), "--seconds", str(seconds),
         "--osc-port", "0", "--osc-out", "none", "--record", str(rec), "--csound", *extra],
        env=jack_env(server), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


# -- the command ----------------------------------------------------------------------------
@pytest.mark.jack
@pytest.mark.slow
def test_play_csound_on_jack_is_as_loud_as_liveframe_and_leaves_nothing(
    jack_server, media
) -> None:
    rec = media["dir"] / "both.wav"
    p = _play(media, jack_server.name, rec, "--route", "both")
    client = f"liveframe-csound-{p.pid}"
    reader = LineReader(p.stdout)
    try:
        # while it plays: csound is a JACK client at JACK's rate, wired to the playback
        assert wait_for(lambda: reader.has("Csound plays"), timeout=30), reader.text()
        wired = _jack_connections(jack_server.name)
        rc = p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
        reader.join()
    out = reader.text()
    assert rc == 0, out
    for ch in (1, 2):  # both speakers
        assert f"{client}:output{ch}\n   system:playback_{ch}" in wired, wired
    assert "at 48000 Hz" in out and "-+rtaudio=jack" in out, out
    assert _csound_processes(client) == []
    sr, own = read_wav(rec)
    sr_cs, cs = read_wav(grains_wav_for(rec))
    assert sr == sr_cs == jack_server.rate
    own_rms, cs_rms = _active_rms(own), _active_rms(cs)
    print(f"RMS own {own_rms:.4f}, Csound {cs_rms:.4f}: "
          f"{20 * np.log10(cs_rms / own_rms):+.2f} dB")
    assert abs(20 * np.log10(cs_rms / own_rms)) < 3.0
    assert own_rms == pytest.approx(AMP / np.sqrt(2), rel=0.15)  # the tone, both ways
    # Csound played for about as long as liveframe did (its grains, not a stray click)
    assert np.count_nonzero(np.abs(cs) > 0.05) > 0.5 * np.count_nonzero(np.abs(own) > 0.05)
    leftovers = [f for f in rec.parent.iterdir() if f.name.startswith(".")]
    assert leftovers == []  # nothing half-written beside the recordings


@pytest.mark.jack
@pytest.mark.slow
def test_route_csound_silences_only_liveframe_and_ctrl_c_stops_csound(
    jack_server, media
) -> None:
    rec = media["dir"] / "csound-only.wav"
    p = _play(media, jack_server.name, rec, seconds=60)  # default route: csound
    client = f"liveframe-csound-{p.pid}"
    reader = LineReader(p.stdout)
    try:
        assert wait_for(lambda: reader.has("Csound plays"), timeout=30), reader.text()
        assert len(_csound_processes(client)) == 1
        # let it play a second's worth of the device's clock, seen from Csound's side
        assert wait_for(lambda: grains_wav_tmp_size(rec) > 2 * 48000, timeout=30)
        p.send_signal(signal.SIGINT)  # Ctrl-C
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
        reader.join()
    assert rc == 0, reader.text()
    assert "heard: csound" in reader.text()
    assert _csound_processes(client) == []
    _, own = read_wav(rec)
    _, cs = read_wav(grains_wav_for(rec))
    assert np.abs(own).max() == 0.0  # liveframe's own output: silent
    assert _active_rms(cs) == pytest.approx(AMP / np.sqrt(2), rel=0.25)  # Csound: the tone


def grains_wav_tmp_size(rec: Path) -> int:
    """Bytes Csound has written so far under its temporary name beside ``rec``."""
    wav = grains_wav_for(rec)
    sizes = [f.stat().st_size for f in rec.parent.glob(f".{wav.stem}.*")]
    return max(sizes, default=0)


@pytest.mark.jack
@pytest.mark.slow
def test_csound_dies_with_a_killed_liveframe(jack_server, media) -> None:
    rec = media["dir"] / "killed.wav"
    p = _play(media, jack_server.name, rec, seconds=60)
    client = f"liveframe-csound-{p.pid}"
    reader = LineReader(p.stdout)
    try:
        assert wait_for(lambda: reader.has("Csound plays"), timeout=30), reader.text()
        (cs,) = _csound_processes(client)
        p.kill()  # SIGKILL: no clean-up code runs in liveframe
        p.wait(timeout=10)
        cs.wait(timeout=10)  # the kernel's parent-death signal ended it
    finally:
        if p.poll() is None:
            p.kill()
        reader.join()
    assert _csound_processes(client) == []
    # Csound's half-written recording is a temporary named for the dead liveframe: the
    # next run that writes there sweeps it
    from liveframe.util.files import stale_temporaries, sweep_stale

    left = [f for f in rec.parent.iterdir() if f.name.startswith(f".{rec.stem}.csound")]
    assert left and all(f in stale_temporaries(rec.parent) for f in left), left
    sweep_stale(rec.parent)
    assert not any(f.exists() for f in left)


def test_no_jack_server_is_one_line_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"lftest-none-{os.getpid()}")  # not running
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    wav = tmp_path / "never.wav"
    proc = CsoundProcess(samplerate=48000, hostapi="JACK Audio Connection Kit", record=wav,
                         client=f"lftest-nojack-{os.getpid()}")
    with pytest.raises(DeviceError, match="JACK") as e:
        proc.start(timeout=30)
    msg = str(e.value)
    assert "\n" not in msg and "could not connect to JACK server" in msg, msg
    assert "48000 Hz" in msg and "liveframe-grains.csd" in msg
    assert not proc.running and _csound_processes(proc.client) == []
    assert list(tmp_path.iterdir()) == []  # no recording, not even half of one


@pytest.mark.jack
def test_csound_process_plays_on_jack_and_stops(jack_server, tmp_path) -> None:
    proc = CsoundProcess(samplerate=jack_server.rate, hostapi="JACK Audio Connection Kit",
                         client=f"lftest-cs-{os.getpid()}")
    with proc:
        assert proc.running
        wired = _jack_connections(jack_server.name)
        for ch in (1, 2):
            assert f"{proc.client}:output{ch}\n   system:playback_{ch}" in wired, wired
    assert not proc.running and proc.stop() is not None  # stopped, and stop is idempotent
    assert _csound_processes(proc.client) == []


# -- the flags ------------------------------------------------------------------------------
def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_osc_arguments(p)
    return p.parse_args(list(argv))


def test_route_defaults_and_refusals(tmp_path: Path) -> None:
    assert resolve_route(_args()) == "own"
    assert resolve_route(_args("--csound")) == "csound"
    assert resolve_route(_args("--csound", "10.0.0.2:7770")) == "both"
    assert resolve_route(_args("--csound", "--route", "both")) == "both"
    pipe = TickPipeline(Brain.load(make_brain(tmp_path / "b.onnx")))
    for argv, want in ((["--route", "csound"], "--route csound needs --csound"),
                       (["--csound", "--route", "own"], "--route own sends nothing"),
                       (["--csound", "clip.mkv"], "--csound 'clip.mkv' must be HOST:PORT")):
        with pytest.raises(UsageError, match=want) as e:
            start_osc(_args("--osc-port", "0", *argv), PipelineEngine(pipe, Controls()))
        assert "\n" not in str(e.value)
    assert pipe.listeners == []


def test_media_dir_must_be_a_folder(tmp_path: Path) -> None:
    brain = Brain.load(make_brain(tmp_path / "b.onnx"))
    pipe = TickPipeline(brain)
    with pytest.raises(UsageError, match="--media-dir .*nope: no such folder"):
        start_osc(_args("--osc-port", str(free_udp_port()), "--osc-host", "0.0.0.0",
                        "--media-dir", str(tmp_path / "nope")), PipelineEngine(pipe, Controls()))
    assert pipe.listeners == []


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_media_dir_limits_sources_only_off_loopback(tmp_path: Path, host: str) -> None:
    media = tmp_path / "media"
    media.mkdir()
    inside, outside = media / "in.mkv", tmp_path / "out.mkv"
    for f in (inside, outside):
        f.write_bytes(b"x")
    pipe = TickPipeline(Brain.load(make_brain(tmp_path / "b.onnx")))
    controls = Controls()
    port = free_udp_port()
    closer = start_osc(_args("--osc-port", str(port), "--osc-host", host, "--osc-out", "none",
                             "--media-dir", str(media)), PipelineEngine(pipe, controls))
    assert closer is not None
    try:
        with udp_socket() as tx:
            to = ("127.0.0.1", port)
            for path in (outside, inside):
                tx.sendto(msg("/liveframe/source", str(path)), to)
            tx.sendto(msg("/liveframe/gain", 0.5), to)  # the last one: all handled by then
            assert wait_for(lambda: controls.gain == 0.5)
    finally:
        closer()
    assert controls.source is not None and Path(controls.source).name == "in.mkv"
    if host == "127.0.0.1":  # loopback: no policy, the outside file was taken first
        assert controls.version >= 3
    else:  # open to a network: only the media folder's file is taken
        assert controls.version == 2


# -- nothing listening --------------------------------------------------------------------
def test_a_bridge_to_a_closed_port_says_so_once(caplog) -> None:
    port = free_udp_port()  # nobody listens
    bridge = CsoundBridge("127.0.0.1", port, sr=22050)
    out = np.zeros(735, np.float32)
    frame = np.zeros((1, 64, 64), np.uint8)
    with caplog.at_level(logging.WARNING, logger="liveframe.control.out"):
        for k in range(40):
            bridge(Tick(index=k, position=k * 735, frame=frame, block=out, out=out))
    bridge.close()
    said = [r.getMessage() for r in caplog.records if "nothing listens" in r.getMessage()]
    assert len(said) == 1 and f"127.0.0.1:{port}" in said[0], said
    assert bridge.refused >= 10


# -- analysis out ---------------------------------------------------------------------------
def _moving_picture(path: Path, seconds: float = 4.0, fps: float = 30.0) -> Path:
    """A textured picture that pans, fades in from black and out towards white, and cuts
    once: what a camera in a lit room gives, in a few seconds."""
    rng = np.random.default_rng(3)
    h, w = 96, 128
    tex = rng.integers(0, 256, (h, 4 * w)).astype(np.float64)
    tex = (tex + np.roll(tex, 1, 1) + np.roll(tex, 1, 0) + np.roll(tex, 2, 1)) / 4  # smoother
    n = int(seconds * fps)
    frames = []
    for i in range(n):
        t = i / n
        x0 = int(i * 3 * (1 + 2 * t))  # a pan that speeds up
        img = tex[:, x0 % (3 * w) : x0 % (3 * w) + w]
        light = min(1.0, t * 3)  # black, fading up
        img = img * light * (0.5 if t < 0.6 else 1.0) + (120 if t > 0.8 else 0)  # a cut up
        frames.append((i / fps, np.clip(img, 0, 255).astype(np.uint8)))
    return write_clip(path, frames, fps=fps)


@pytest.mark.slow
def test_analysis_out_of_a_moving_picture_spans_the_scale(tmp_path: Path) -> None:
    """``liveframe render``'s pictures through a pipeline with the analysis out on by
    default (start_osc as ``liveframe play`` calls it), received over real UDP."""
    from liveframe.offline.pictures import PictureStream

    clip = _moving_picture(tmp_path / "moving.mkv")
    brain = Brain.load(make_brain(tmp_path / "b.onnx"))
    pipe = TickPipeline(brain)
    with udp_socket() as rx:
        closer = start_osc(_args("--osc-port", "0", "--osc-out",
                                 f"127.0.0.1:{rx.getsockname()[1]}"),
                           PipelineEngine(pipe, Controls()))
        assert closer is not None
        try:
            for px in PictureStream(clip, brain.spec, threaded=False):
                for one in px:
                    pipe.step(one)
        finally:
            closer()
        got: dict[str, list[float]] = {}
        rx.settimeout(2.0)
        while sum(len(v) for v in got.values()) < 4 * pipe.ticks:
            m = OscMessage(rx.recv(65536))
            got.setdefault(m.address, []).append(m.params[0])
    b = np.array(got["/liveframe/frame/brightness"])
    mo = np.array(got["/liveframe/frame/motion"])
    print(f"brightness {b.min():.3f}..{b.max():.3f}, motion {mo.min():.3f}..{mo.max():.3f}")
    assert b.min() >= 0 and b.max() <= 1 and mo.min() >= 0 and mo.max() <= 1
    assert b.max() - b.min() >= 0.5
    assert mo.max() - mo.min() >= 0.5
    assert scale_motion(0.0) == 0.0 and scale_motion(10.0) == 1.0


# -- the README's by-hand commands -------------------------------------------------------------
def _readme_commands() -> tuple[list[str], list[str]]:
    """The Csound section's two by-hand lines: csound's, and liveframe's to it."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("**Csound.**")[1].split("<!-- /section:osc -->")[0]
    lines = [ln.strip() for ln in section.splitlines()]
    cs = next(ln for ln in lines if ln.startswith("csound -+rtaudio=jack"))
    lf = next(ln for ln in lines if ln.startswith("liveframe play CLIP --csound 127.0.0.1:"))
    return cs.split(), lf.split()


@pytest.mark.jack
@pytest.mark.slow
def test_the_readmes_csound_commands_play_on_jack(jack_server, media) -> None:
    """The README's commands, as written (plus a WAV, a duration and a test brain), on the
    JACK dummy server: Csound plays liveframe's grains as loud as liveframe's own output."""
    cs_cmd, lf_cmd = _readme_commands()
    assert cs_cmd[-1] == "patches/liveframe-grains.csd"
    assert f"--sample-rate={jack_server.rate}" in cs_cmd  # the README's rate is the JACK's
    d = media["dir"]
    cs_wav, own_wav = d / "readme-cs.wav", d / "readme-own.wav"
    repo = Path(__file__).resolve().parent.parent
    cs = subprocess.Popen(
        [*cs_cmd[:-1], f"--omacro:WAV={cs_wav}", "--smacro:DUR=30", cs_cmd[-1]],
        cwd=repo, env=jack_env(jack_server.name), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True)
    reader = LineReader(cs.stdout)
    try:
        assert wait_for(lambda: reader.has("liveframe-grains: listening"), timeout=30), \
            reader.text()
        argv = [str(media["clip"]) if a == "CLIP" else a for a in lf_cmd[1:]]
        p = subprocess.run(
            [sys.executable, "-m", "liveframe", *argv, "--no-gui", "--loop", "--brain",
             str(media["tone"]), "--margin", str(MARGIN), "--seconds", "2.5", "--osc-port",
             "0", "--osc-out", "none", "--record", str(own_wav)],
            env=jack_env(jack_server.name), capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert "nothing listens" not in p.stderr, p.stderr
        assert not grains_wav_for(own_wav).exists()  # it sent to this Csound, started none
    finally:
        os.killpg(cs.pid, signal.SIGTERM)  # csound closes its WAV on SIGTERM
        try:
            cs.wait(timeout=20)
        finally:
            if cs.poll() is None:
                os.killpg(cs.pid, signal.SIGKILL)
                cs.wait()
            reader.join()
    _, own = read_wav(own_wav)
    _, played = read_wav(cs_wav)
    own_rms, cs_rms = _active_rms(own), _active_rms(played)
    assert abs(20 * np.log10(cs_rms / own_rms)) < 3.0, (own_rms, cs_rms)
