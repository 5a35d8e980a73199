"""The live instrument on a real JACK server (dummy backend) and real PyAV/OpenCV clips.

What these prove: live play equals offline render sample for sample; what the device
played is the producer's output through the callback's gain and safety chain; the
producer's schedule, source switches, brain swaps, panic and the end of a source behave
on a real stream; every thread the engine starts is joined when it stops; camera pictures
get the same pixels as file pictures; the play command's bad input and stop signals end
cleanly.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from liveframe.core.brain import Brain
from liveframe.core.media import MediaReader, Scaler
from liveframe.core.pipeline import Tick
from liveframe.core.safety import SafetyChain
from liveframe.data.clips import write_clip
from liveframe.errors import BrainError, DeviceError
from liveframe.live.capture import Capture, OpenCVReader, PyAVReader, scale_picture
from liveframe.live.engine import Engine
from liveframe.live.producer import DEFAULT_MARGIN_S, REALTIME_MARGIN_S
from liveframe.util.wav import read_wav

from .helpers import make_brain
from .oscutil import wait_for

MARGIN = 1024  # generous: the tests check behaviour, benchmarks/bench_live.py the latency


def _ramp_clip(path: Path, *, n: int = 30, fps: float = 30.0) -> Path:
    # brightness rises frame by frame, so a brightness-scaled brain's output tells frames apart
    frames = [(i / fps, np.full((48, 64), 40 + (i * 200) // n, np.uint8)) for i in range(n)]
    return write_clip(path, frames, fps=fps)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("live")
    return {
        "clip": _ramp_clip(d / "ramp.mkv"),
        "clip24": _ramp_clip(d / "ramp24.mkv", n=24, fps=24.0),
        "brain": make_brain(d / "bright.onnx", brightness=True),
        "tone": make_brain(d / "tone.onnx", freq=882.0),
        "nan": make_brain(d / "nan.onnx", value=math.nan),
        "huge": make_brain(d / "huge.onnx", value=1e6),
        "block": make_brain(d / "block.onnx", framing="block"),
        "spectrum": make_brain(d / "spectrum.onnx", brightness=True,
                               spec_overrides={"kind": "spectrum"}),
        "spectrum_huge": make_brain(d / "spectrum_huge.onnx", value=1e6,
                                    spec_overrides={"kind": "spectrum"}),
        "dir": d,
    }


def _engine(brain: Path, clip: Path, **kw) -> Engine:
    b = Brain.load(brain)
    loop = kw.pop("loop", False)
    return Engine(b, Capture(PyAVReader(clip, loop=loop), spec=b.spec), margin=MARGIN, **kw)


def _collect(engine: Engine) -> list[np.ndarray]:
    outs: list[np.ndarray] = []
    engine.add_tick_listener(lambda tick: outs.append(tick.out.copy()))
    return outs


def _liveframe_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("liveframe-"))


@pytest.mark.jack
@pytest.mark.parametrize(("brain", "mode"), [("brain", "ola"), ("brain", "granular"),
                                             ("spectrum", "ola"), ("spectrum", "granular")])
def test_live_equals_offline_at_the_brain_rate(jack_server, media, brain: str,
                                               mode: str) -> None:
    from liveframe.offline.render import render_signal

    clip = media["clip24"]  # 24 fps source on a 30 fps brain: the clock mapping matters
    eng = _engine(media[brain], clip, mode=mode, seed=7)
    outs = _collect(eng)
    tails: list[bool] = []
    eng.add_tick_listener(lambda tick: tails.append(tick.tail))
    eng.run(seconds=10)
    assert eng.source_ended
    live = np.concatenate(outs)
    offline = render_signal(clip, Brain.load(media[brain]), mode=mode, seed=7, trim=False)
    assert tails.count(False) == 30  # 1 s of 24 fps video = 30 ticks
    # then a spectrum brain's granular tail: the decoder's pending hops, as grains
    assert tails == [False] * 30 + [True] * (4 if (brain, mode) == ("spectrum", "granular")
                                             else 0)
    assert live.shape[0] == len(tails) * eng.hop
    np.testing.assert_array_equal(live, offline[: live.shape[0]])
    assert np.abs(live).max() > 0.02


@pytest.mark.jack
def test_played_audio_arrives_and_record_matches(jack_server, media) -> None:
    import soxr

    rec = media["dir"] / "played.wav"
    eng = _engine(media["brain"], media["clip"], record=rec)
    outs = _collect(eng)
    eng.run(seconds=10)
    st = eng.stats()
    assert st["underruns"] == 0 and st["ticks"] == 30
    sr, played = read_wav(rec)
    assert sr == jack_server.rate == eng.samplerate
    # What the engine produced, through the same streaming resampler, gain ramp and
    # safety chain the callback applies, 256 frames at a time.
    rs = soxr.ResampleStream(22050, sr, 1, dtype="float32", quality="LQ")
    want = np.concatenate([rs.resample_chunk(o) for o in outs])
    n = min(want.shape[0], played.shape[0]) - 4096  # leave the faded tail out
    assert n > 0.8 * sr
    safety = SafetyChain(sr=sr)
    g = 0.0
    exp = np.empty(n, np.float32)
    for i in range(0, n, 256):
        x = want[i : i + 256].copy()
        g1 = 1.0 + (g - 1.0) * math.exp(-x.shape[0] / (0.01 * sr))
        g1 = 1.0 if abs(g1 - 1.0) < 1e-4 else g1
        if g != 1.0:
            x *= g + (g1 - g) * np.arange(1, x.shape[0] + 1, dtype=np.float32) / x.shape[0]
        g = g1
        exp[i : i + 256] = safety.process(x)[: min(256, n - i)]
    np.testing.assert_allclose(played[:n], exp, atol=1e-5)
    assert np.abs(played).max() > 0.05


@pytest.mark.jack
@pytest.mark.parametrize("realtime", [True, False])
def test_default_margin_follows_the_producers_scheduling(jack_server, media, realtime) -> None:
    b = Brain.load(media["brain"])
    eng = Engine(b, Capture(PyAVReader(media["clip"], loop=True), spec=b.spec),
                 realtime=realtime, adaptive=False)
    eng.run(seconds=1.5)
    st = eng.stats()
    # the OS's own word on the producer thread: FIFO exactly when the engine says real-time
    # (granted to root or under an rtprio limit; elsewhere it falls back to normal)
    assert st["producer_policy"] == (os.SCHED_FIFO if st["realtime"] else os.SCHED_OTHER)
    assert realtime or not st["realtime"]
    want = REALTIME_MARGIN_S if st["realtime"] else DEFAULT_MARGIN_S
    assert st["margin"] == st["initial_margin"] == round(want * eng.samplerate)
    # the reported latency is what the running stream reports: outputBufferDacTime -
    # currentTime in the callback, which on JACK exceeds the open-time stream.latency
    assert st["device_latency_ms"] == pytest.approx(st["dac_offset_ms"])
    assert st["device_latency_ms"] >= st["stream_latency_ms"] - 1e-6 > 0
    # the measured latency includes the device's and the lead written ahead of it
    lead_ms = st["margin"] / eng.samplerate * 1000
    assert st["latency_ms"]["median"] > st["device_latency_ms"] + 0.5 * lead_ms


@pytest.mark.jack
def test_cli_play_writes_stats_and_record(jack_server, media) -> None:
    from liveframe.cli import main

    stats, rec = media["dir"] / "stats.json", media["dir"] / "cli.wav"
    rc = main(["play", str(media["clip"]), "--brain", str(media["brain"]), "--no-gui",
               "--osc-port", "0", "--margin", str(MARGIN), "--stats-json", str(stats),
               "--record", str(rec)])
    assert rc == 0
    s = json.loads(stats.read_text())
    assert set(s) == {"underruns", "xruns", "ticks", "latency_ms", "device_latency_ms",
                      "samplerate", "blocksize"}
    assert s["underruns"] == 0 and s["ticks"] == 30
    assert s["samplerate"] == 48000 and s["blocksize"] == 256
    assert 0 < s["device_latency_ms"] < 100
    assert 0 < s["latency_ms"]["median"] <= s["latency_ms"]["p99"] < 500
    sr, played = read_wav(rec)
    assert sr == 48000 and abs(played.shape[0] / sr - 1.0) < 0.3
    assert not [p for p in media["dir"].iterdir() if ".lftmp-" in p.name]


@pytest.mark.jack
@pytest.mark.parametrize("which", ["nan", "huge", "spectrum_huge"])
def test_broken_brain_never_blasts(jack_server, media, which: str) -> None:
    rec = media["dir"] / f"{which}.wav"
    eng = _engine(media[which], media["clip"], record=rec)
    eng.run(seconds=10)
    _, played = read_wav(rec)
    ceiling = float(eng.audio.safety.ceiling)
    assert np.isfinite(played).all()
    assert np.abs(played).max() <= ceiling + 1e-6
    if which == "nan":  # every block silenced where the brain made it, tick by tick
        assert np.abs(played).max() < 1e-3  # silence
        assert eng.stats()["bad_blocks"] == eng.stats()["ticks"] > 0
    else:  # spectrum_huge: every bin at e^1e6 is clipped per bin, then limited
        assert eng.stats()["limited_blocks"] > 0


@pytest.mark.jack
def test_source_that_ends_stops_cleanly_and_loop_keeps_playing(jack_server, media) -> None:
    switch = sys.getswitchinterval()
    eng = _engine(media["brain"], media["clip"])
    eng.start()
    assert sys.getswitchinterval() < switch  # lowered while it plays
    assert eng.wait(10), "the engine did not stop when the clip ended"
    assert eng.source_ended and eng.tick == 30 and not eng.running
    eng.stop()  # idempotent
    # every thread it started was joined, and the switch interval it lowered is restored
    assert _liveframe_threads() == []
    assert sys.getswitchinterval() == switch
    looped = _engine(media["brain"], media["clip"], loop=True)
    looped.start()
    try:
        assert wait_for(lambda: looped.tick > 45 or not looped.running, timeout=10)
    finally:
        looped.stop()
    assert looped.tick > 45 and not looped.source_ended  # past the clip's 30 frames
    assert _liveframe_threads() == []


@pytest.mark.jack
def test_corrupt_frames_are_skipped(jack_server, media) -> None:
    src = media["dir"] / "long.mkv"
    _ramp_clip(src, n=60)
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(3)
    for i in rng.integers(len(data) // 3, 2 * len(data) // 3, 40):
        data[i] ^= 0xFF
    bad = media["dir"] / "corrupt.mkv"
    bad.write_bytes(bytes(data))
    eng = _engine(media["brain"], bad)
    eng.run(seconds=10)
    assert eng.error is None and eng.source_ended
    assert eng.tick >= 20  # kept playing past the damage


@pytest.mark.jack
def test_incompatible_brain_is_refused_and_old_keeps_playing(jack_server, media) -> None:
    eng = _engine(media["brain"], media["clip"], loop=True)
    outs = _collect(eng)
    eng.start()
    try:
        with pytest.raises(BrainError, match="refused.*keeps playing"):
            eng.swap_brain(media["block"])
        eng.controls.request_brain(str(media["block"]))  # loaded by the engine's worker
        assert wait_for(lambda: "refused" in (eng.controls.last_error or ""))
        assert eng.brain.name == "bright" and eng.running
        n = len(outs)
        eng.swap_brain(media["tone"])  # compatible: crossfaded in
        assert wait_for(lambda: eng.brain.name == "tone")
        assert wait_for(lambda: len(outs) > n + 5)
    finally:
        eng.stop()
    # the tone brain plays 882 Hz at a constant level, the brightness brain 441 Hz
    last = outs[-1]
    spec = np.abs(np.fft.rfft(last * np.hanning(last.size)))
    assert abs(np.argmax(spec) * 22050 / last.size - 882) < 40


@pytest.mark.jack
def test_panic_silences_at_once(jack_server, media) -> None:
    rec = media["dir"] / "panic.wav"
    eng = _engine(media["tone"], media["clip"], loop=True, record=rec)
    eng.start()
    shared = eng.shared  # the producer/callback contract, public by design
    try:
        assert wait_for(lambda: shared.frames >= 0.3 * eng.samplerate)
        eng.controls.panic()
        assert wait_for(lambda: shared.silent, timeout=2)  # the producer passed it on
        at = shared.frames + 256  # the buffer being played may have read it too late
        assert wait_for(lambda: shared.frames >= at + 0.2 * eng.samplerate)
    finally:
        eng.stop()
    _, played = read_wav(rec)
    assert np.abs(played[: int(0.3 * eng.samplerate)]).max() > 0.1
    assert played.shape[0] > at and np.abs(played[at:]).max() == 0.0


@pytest.mark.jack
def test_camera_path_is_the_same_capture_with_opencv(jack_server, media) -> None:
    b = Brain.load(media["brain"])
    cap = Capture(OpenCVReader(str(media["clip"])), spec=b.spec)
    eng = Engine(b, cap, margin=MARGIN)
    means: list[float] = []
    eng.add_tick_listener(lambda t: means.append(float(t.frame.mean())))
    eng.run(seconds=10)
    assert eng.source_ended and eng.stats()["underruns"] == 0
    assert 25 <= len(means) <= 40
    # the picture brightens through the clip (40 -> 233): the ticks follow it
    assert means[0] < 60 and means[-1] > 200
    assert all(b >= a - 1 for a, b in zip(means, means[1:], strict=False))


def test_missing_camera_is_one_line(media) -> None:
    with pytest.raises(DeviceError, match=r"camera 7 not found \(cameras found: .*\)"):
        OpenCVReader(7)
    r = subprocess.run([sys.executable, "-m", "liveframe", "live", "--camera", "7", "--no-gui",
                        "--brain", str(media["brain"])], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "camera 7 not found" in r.stderr


def test_no_audio_device_is_one_line(media) -> None:
    env = dict(os.environ, JACK_DEFAULT_SERVER="lf-no-such-server", JACK_NO_START_SERVER="1")
    r = subprocess.run([sys.executable, "-m", "liveframe", "play", str(media["clip"]), "--no-gui",
                        "--brain", str(media["brain"])], capture_output=True, text=True,
                       timeout=60, env=env)
    if r.returncode == 0:
        pytest.skip("this machine has an audio output")
    assert r.returncode == 2
    line = r.stderr.strip()
    assert "\n" not in line and "no audio output device" in line and "liveframe render" in line


def _play_and_signal(media: dict, rec: Path, sig: signal.Signals, *, recorded: int,
                     poll: float) -> tuple[int, str]:
    """``liveframe play --record rec``, sent ``sig`` once the recording's temporary file
    holds ``recorded`` bytes; its exit status and stderr (stderr in the failure if it does
    not exit within 15 s)."""
    p = subprocess.Popen([sys.executable, "-m", "liveframe", "play", str(media["clip"]), "--loop",
                          "--no-gui", "--osc-port", "0", "--brain", str(media["tone"]),
                          "--record", str(rec)], stderr=subprocess.PIPE, text=True)

    def recording() -> bool:
        tmp = list(rec.parent.glob(f".{rec.name}.lftmp-*"))
        try:
            return bool(tmp) and tmp[0].stat().st_size >= recorded
        except FileNotFoundError:  # renamed into place meanwhile
            return True

    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not recording() and p.poll() is None:
            time.sleep(poll)
        p.send_signal(sig)
        try:
            rc = p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            raise AssertionError(f"no exit 15 s after {sig.name}: {p.communicate()[1]}") from None
    finally:
        if p.poll() is None:
            p.kill()
    return rc, p.stderr.read() if p.stderr else ""


@pytest.mark.jack
def test_ctrl_c_stops_cleanly_and_finalises(jack_server, media) -> None:
    rec = media["dir"] / "int.wav"
    rc, err = _play_and_signal(media, rec, signal.SIGINT, recorded=2 * 48000, poll=0.05)
    assert rc == 0, err
    sr, played = read_wav(rec)
    assert played.shape[0] > 0.4 * sr
    assert np.abs(played[-64:]).max() < 0.01  # the tail was faded


@pytest.mark.jack
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_starting_stops_cleanly(jack_server, media, sig) -> None:
    """Ctrl-C (or a launcher's SIGTERM) the moment the recording opens, while the engine is
    still opening the stream and prefilling: exit 0, the recording finalised, no temporary
    file left, no traceback."""
    d = media["dir"] / f"sig{int(sig)}"
    d.mkdir()
    rec = d / "rec.wav"
    rc, err = _play_and_signal(media, rec, sig, recorded=0, poll=0.002)
    assert rc == 0, err
    assert "Traceback" not in err
    assert rec.exists() and read_wav(rec)[0] > 0
    assert not list(d.glob(".rec.wav.lftmp-*"))


def _flat_clip(path: Path, level: int, *, n: int = 30, step: int = 0) -> Path:
    return write_clip(path, [(i / 30, np.full((48, 64), level + step * i, np.uint8))
                             for i in range(n)], fps=30.0)


@pytest.mark.jack
def test_source_switch_crossfades_to_the_new_clip(jack_server, media) -> None:
    dark = _flat_clip(media["dir"] / "dark.mkv", 20)
    bright = _flat_clip(media["dir"] / "bright.mkv", 200, n=20, step=2)  # 200, 202, .. 238
    eng = _engine(media["brain"], dark, loop=True)
    ticks: list[tuple[int, float, float]] = []  # (tick, frame mean, output peak)

    def note(t: Tick) -> None:
        ticks.append((t.index, float(t.frame.mean()), float(np.abs(t.out).max())))

    eng.add_tick_listener(note)
    eng.start()
    try:
        assert wait_for(lambda: eng.tick >= 10, timeout=10)
        eng.controls.set_source(str(bright))
        assert wait_for(lambda: eng.source_switches > 0, timeout=10)
        at = eng.source_start_tick  # the crossfade tick
        assert wait_for(lambda: eng.tick >= at + 25, timeout=10)  # past the clip's 20 frames
    finally:
        eng.stop()
    assert eng.source_switches == 1 and eng.controls.last_error is None
    assert eng.source.name == "bright.mkv" and eng.error is None
    assert eng.stats()["underruns"] == 0
    before = [p for t, m, p in ticks if t < at - 1]
    after = [(m, p) for t, m, p in ticks if t > at + 1]
    assert before and after
    assert all(m > 195 for m, _ in after)
    # a clocked file switched in plays from its own tick 0: frame k of B at tick at + k
    means = {t: m for t, m, _ in ticks}
    for k in (0, 5, 10):
        assert abs(means[at + k] - (200 + 2 * k)) < 1.5, (k, means[at + k])
    # brightness-scaled brain: the level rises with the picture (200/20 = 10x)
    assert min(p for _, p in after) > 5 * max(before)
    # the swap tick is a crossfade, not a jump: between the old and the new level
    sw = [p for t, m, p in ticks if t == at]
    assert sw and max(before) * 0.5 < sw[0] < max(p for _, p in after) * 1.05
    # a clocked file switched in plays from its own tick 0 and loops with the play
    assert len(after) > 20 and not eng.source_ended


@pytest.mark.jack
def test_bad_source_is_refused_and_old_keeps_playing(jack_server, media, caplog) -> None:
    junk = media["dir"] / "junk.mkv"
    junk.write_bytes(b"not a video at all" * 100)
    eng = _engine(media["brain"], media["clip"], loop=True)
    eng.start()
    try:
        for bad in (str(media["dir"] / "missing.mkv"), str(junk), "7"):
            eng.controls.last_error = None
            eng.controls.set_source(bad)
            assert wait_for(lambda: eng.controls.last_error is not None, timeout=10)
            err = eng.controls.last_error or ""
            assert err.startswith("source refused") and "ramp.mkv keeps playing" in err, err
        t = eng.tick
        assert wait_for(lambda: eng.tick > t + 5 or not eng.running)
        assert eng.running
    finally:
        eng.stop()
    assert eng.source_switches == 0 and eng.source.name == "ramp.mkv"
    assert eng.stats()["underruns"] == 0
    warned = [r for r in caplog.records if "source refused" in r.getMessage()]
    assert len(warned) == 3 and all("\n" not in r.getMessage() for r in warned)


# ------------------------------------------------------------------ pixels, no JACK needed
def _lossless_clip(path: Path, pictures: list[np.ndarray]) -> Path:
    """BGR pictures stored losslessly (FFV1, bgr0): what a camera would have delivered."""
    import av

    h, w = pictures[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=30)
        s.width, s.height, s.pix_fmt = w, h, "bgr0"
        for img in pictures:
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")))
        c.mux(s.encode())
    return path


@pytest.mark.parametrize("channels", [1, 3])
def test_camera_pictures_get_the_same_pixels_as_files(tmp_path, rng, channels: int) -> None:
    """A picture through the camera path (OpenCV's BGR array, :func:`scale_picture`, and the
    live Capture thread) equals the same picture decoded from a file by the file path's
    Scaler (MediaReader, as pickle and render read it), pixel for pixel."""
    pics = []
    for i in range(3):  # structure at every scale, not a flat field, and not a multiple of 64
        img = rng.integers(0, 256, (270, 350, 3), dtype=np.uint8)
        img[: 90 + 30 * i] //= 4
        pics.append(img)
    clip = _lossless_clip(tmp_path / "pics.mkv", pics)
    size = (64, 48)
    with MediaReader(clip) as r:
        from_file = [vf.pixels for vf in r.frames(size=size, channels=channels)]
    assert len(from_file) == 3
    scaler = Scaler(size, channels)
    for img, want in zip(pics, from_file, strict=True):
        np.testing.assert_array_equal(scale_picture(img, scaler), want)
    assert not np.array_equal(from_file[0], from_file[1])  # the comparison can fail
    # the capture thread of `liveframe live`, reading the file as a camera would
    spec = Brain.load(make_brain(tmp_path / "b.onnx", spec_overrides={
        "width": size[0], "height": size[1], "channels": channels})).spec
    cap = Capture(OpenCVReader(str(clip)), spec=spec).start()
    try:
        assert cap.wait_first(5)
        item = cap.take(0)  # the newest picture: whichever the pacing reached
        assert item is not None
        assert any(np.array_equal(item[0], want) for want in from_file)
    finally:
        cap.stop()
