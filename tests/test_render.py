"""Offline render: modes, determinism, the frame-rate artefact, muxing, csound, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from liveframe.core.brain import Brain
from liveframe.core.safety import BlockGuard, guard
from liveframe.data.clips import write_clip
from liveframe.errors import MediaError
from liveframe.offline import render as R
from liveframe.offline import sinks as S
from liveframe.offline.metrics import frame_artifact_db
from liveframe.offline.pictures import PictureStream
from liveframe.util.wav import read_wav
from tests.helpers import count_opens, make_brain

SR = 22050
needs_csound = pytest.mark.skipif(shutil.which("csound") is None, reason="csound not installed")
FREQ = 450.0  # 15 cycles per hop: a tone whose grains are phase-continuous tick to tick
SECONDS = 2.0


def _clip(path: Path, *, fps: float = 30.0, seconds: float = SECONDS, codec: str = "libx264",
          audio_codec: str = "flac", sr: int = 48000) -> Path:
    n = round(seconds * fps)
    frames = [(i / fps, np.full((48, 64), (40 + 7 * i) % 256, np.uint8)) for i in range(n)]
    t = np.arange(int(seconds * sr)) / sr
    return write_clip(path, frames, fps=fps, video_codec=codec, audio_codec=audio_codec,
                      audio=0.3 * np.sin(2 * np.pi * FREQ * t), sr=sr)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("render")
    return {
        "dir": d,
        "clip": _clip(d / "clip.mkv"),
        "tone": Brain.load(make_brain(d / "tone.onnx", freq=FREQ)),
        "tone_path": d / "tone.onnx",
        "spectrum": Brain.load(make_brain(d / "spectone.onnx", freq=FREQ,
                                          spec_overrides={"kind": "spectrum"})),
    }


def _cli(*args: str, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run([sys.executable, "-m", "liveframe", *map(str, args)],
                          check=False, capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)


@pytest.mark.parametrize("mode", ["raw", "ola", "granular",
                                  pytest.param("csound", marks=needs_csound)])
def test_each_mode_deterministic_and_video_length(media, mode):
    a = R.render_signal(media["clip"], media["tone"], mode=mode, seed=7)
    b = R.render_signal(media["clip"], media["tone"], mode=mode, seed=7, batch=5)
    assert a.dtype == np.float32 and a.shape == (int(SECONDS * SR),)
    np.testing.assert_array_equal(a, b)  # same seed, any batch size: same samples
    assert np.abs(a).max() > 0.1
    if mode in ("granular", "csound"):
        c = R.render_signal(media["clip"], media["tone"], mode=mode, seed=8)
        assert not np.allclose(a, c)


def test_ola_is_the_steady_tone_and_raw_carries_frame_rate_modulation(media):
    ola = R.render_signal(media["clip"], media["tone"], mode="ola")
    raw = R.render_signal(media["clip"], media["tone"], mode="raw")
    n = np.arange(ola.shape[0])
    # grain framing overlap-adds back to the continuous tone, sample for sample (the last
    # hop is the last grain's fade-out: no tick after the video's end)
    tone = 0.3 * np.sin(2 * np.pi * FREQ * n / SR)
    np.testing.assert_allclose(ola[:-735], tone[:-735], atol=2e-6)
    # raw: every block is the middle of a windowed grain -> the loudness (peak over one
    # 49-sample period of the tone) swings at each tick; ola's stays flat
    def swing(x: np.ndarray) -> float:
        peaks = np.abs(x[735 : 735 * 50]).reshape(-1, 49).max(axis=1)
        return float(peaks.max() / peaks.min())

    assert swing(raw) > 1.5 and swing(ola) < 1.01
    a_raw, a_ola = frame_artifact_db(raw, sr=SR), frame_artifact_db(ola, sr=SR)
    assert a_raw > 40 and a_ola < 3
    assert a_raw - a_ola >= 20


@needs_csound
@pytest.mark.parametrize("brain", ["tone", "spectrum"])
def test_granular_through_csound_plays_the_same_grains(media, brain):
    g = R.render_signal(media["clip"], media[brain], mode="granular", seed=3)
    c = R.render_signal(media["clip"], media[brain], mode="csound", seed=3)
    np.testing.assert_allclose(c, g, atol=2e-3)
    power = np.abs(np.fft.rfft(c)) ** 2
    f = np.fft.rfftfreq(c.shape[0], 1 / SR)
    assert power[(f > FREQ - 50) & (f < FREQ + 50)].sum() > 0.8 * power.sum()  # the tone


def test_a_spectrum_brain_renders_its_tone_with_each_phase_method(media, tmp_path):
    out = tmp_path / "s.wav"
    for phase in ("rtpghi", "pv", "random", "steal"):
        r = _cli("render", media["clip"], "-o", out, "--brain", media["dir"] / "spectone.onnx",
                 "--phase", phase)
        assert r.returncode == 0, r.stderr
        sr, y = read_wav(out)
        y = y[sr // 4: -sr // 4]
        power = np.abs(np.fft.rfft(y)) ** 2
        f = np.fft.rfftfreq(y.shape[0], 1 / sr)
        share = power[(f > FREQ - 30) & (f < FREQ + 30)].sum() / power.sum()
        assert share > (0.5 if phase in ("random", "steal") else 0.95), (phase, share)
    r = _cli("render", media["clip"], "-o", out, "--brain", media["dir"] / "spectone.onnx",
             "--phase", "nope")
    assert r.returncode == 2 and "--phase" in r.stderr


def test_any_frame_rate_goes_through_the_brain_clock(tmp_path):
    clip = _clip(tmp_path / "c25.mkv", fps=25, seconds=1.2)
    brain = Brain.load(make_brain(tmp_path / "b.onnx", brightness=True, freq=FREQ))
    sig = R.render_signal(clip, brain, mode="ola")
    assert sig.shape == (round(1.2 * SR),)
    assert np.abs(sig).max() > 0.01


def _packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def _ffprobe(path: Path) -> dict:
    r = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json",
                        str(path)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


@pytest.mark.parametrize("suffix, acodec, rate", [(".mkv", "flac", 22050), (".mp4", "aac", 48000),
                                                 (".webm", "opus", 48000)])
def test_muxed_file_copies_video_and_adds_soundtrack(media, tmp_path, suffix, acodec, rate):
    src = media["clip"]
    if suffix == ".webm":
        src = _clip(tmp_path / "src.webm", codec="libvpx-vp9", audio_codec="libopus")
    out = tmp_path / f"out{suffix}"
    assert R.render(src, out, brain=media["tone"], mode="ola") == out
    assert [p.name for p in tmp_path.iterdir() if ".lftmp-" in p.name] == []
    assert _packets(out) == _packets(src)  # stream copy: the very same packets
    probe = _ffprobe(out)
    kinds = {s["codec_type"]: s for s in probe["streams"]}
    assert set(kinds) == {"video", "audio"}
    assert kinds["audio"]["codec_name"] == acodec and int(kinds["audio"]["sample_rate"]) == rate
    assert abs(float(probe["format"]["duration"]) - SECONDS) <= 735 / SR
    sr, back = S.read_audio_file(out)
    assert sr == rate and abs(back.shape[0] / sr - SECONDS) <= 735 / SR
    spec = np.abs(np.fft.rfft(back[: 2 * sr // 2 * 2]))
    assert abs(np.argmax(spec) * sr / (2 * sr // 2 * 2) - FREQ) < 2
    if acodec == "flac":  # lossless: exactly the guarded render, to 16 bits
        want = guard(R.render_signal(src, media["tone"], mode="ola"), sr=SR)
        np.testing.assert_allclose(back, want, atol=1.5 / 32767)


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_audio_files_read_back(media, tmp_path, suffix):
    out = tmp_path / f"x{suffix}"
    R.render(media["clip"], out, brain=media["tone"], mode="raw")
    sr, back = S.read_audio_file(out)
    want = guard(R.render_signal(media["clip"], media["tone"], mode="raw"), sr=SR)
    assert sr == SR and back.shape == want.shape
    np.testing.assert_allclose(back, want, atol=1.5 / 32767)


def test_cli_render_shows_progress_and_writes(media, tmp_path):
    out = tmp_path / "o.wav"
    r = _cli("render", media["clip"], "--brain", media["tone_path"], "-o", out, "--mode",
             "granular", "--seed", "3", "--grain-density", "0.5", "--grain-spread", "2")
    assert r.returncode == 0, r.stderr
    assert "render granular" in r.stderr and out.exists()


def _assert_one_line_exit_2(r, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_bad_inputs_one_line_exit_2_nothing_written(media, tmp_path):
    d = tmp_path / "outdir"
    d.mkdir()
    brain = media["tone_path"]
    # no video stream
    wav = tmp_path / "sound.wav"
    S.write_audio(wav, np.zeros(22050, np.float32), sr=SR, fmt="wav", codec="pcm_s16le")
    _assert_one_line_exit_2(_cli("render", wav, "--brain", brain, "-o", d / "a.mkv"),
                            "no video stream")
    # corrupt file
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    _assert_one_line_exit_2(_cli("render", bad, "--brain", brain, "-o", d / "b.wav"), "bad.mkv")
    # unwritable output path
    _assert_one_line_exit_2(
        _cli("render", media["clip"], "--brain", brain, "-o", tmp_path / "nope" / "c.wav"),
        "does not exist")
    _assert_one_line_exit_2(_cli("render", media["clip"], "--brain", brain, "-o", d / "c.ogg"),
                            "unknown output type")
    # a brain whose spec does not fit its model
    import onnx

    from liveframe.core.brain import attach_spec
    from liveframe.core.spec import BrainSpec

    model = onnx.load(str(brain))
    attach_spec(model, BrainSpec(framing="block"))
    misfit = tmp_path / "misfit.onnx"
    onnx.save(model, str(misfit))
    _assert_one_line_exit_2(_cli("render", media["clip"], "--brain", misfit, "-o", d / "d.wav"),
                            "misfit.onnx")
    # h264 cannot be copied into WebM
    _assert_one_line_exit_2(_cli("render", media["clip"], "--brain", brain, "-o", d / "e.webm"),
                            "WebM")
    assert list(d.iterdir()) == []


def test_csound_missing_is_one_line(media, tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # nothing on PATH: no csound
    assert shutil.which("csound", path=env["PATH"]) is None
    r = _cli("render", media["clip"], "--brain", media["tone_path"], "-o", tmp_path / "x.wav",
             "--mode", "csound", "--quiet", env=env, cwd=Path(__file__).resolve().parents[1])
    _assert_one_line_exit_2(r, "apt-get install csound")
    assert not (tmp_path / "x.wav").exists()


# -- the decode thread --------------------------------------------------------------------


def test_decode_thread_gives_the_same_pictures_as_inline(media):
    spec = media["tone"].spec
    threaded = PictureStream(media["clip"], spec, batch=7)
    inline = PictureStream(media["clip"], spec, batch=7, threaded=False)
    a, b = np.concatenate(list(threaded)), np.concatenate(list(inline))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (int(SECONDS * 30), 1, 64, 64) and a.dtype == np.uint8
    assert len(np.unique(a.mean(axis=(1, 2, 3)))) > 30  # the frames differ
    assert (threaded.ticks, threaded.end_time) == (inline.ticks, inline.end_time) == (60, 2.0)


def test_decode_thread_stops_with_its_consumer_and_passes_errors_on(media, tmp_path):
    import threading

    def decoders() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "liveframe-decode"]

    spec = media["tone"].spec
    stream = iter(PictureStream(media["clip"], spec, batch=2, prefetch=1))
    next(stream)
    assert decoders()  # the producer runs ahead
    stream.close()  # the consumer stops early: the producer is told and joined
    assert decoders() == []
    wav = tmp_path / "sound.wav"
    S.write_audio(wav, np.zeros(22050, np.float32), sr=SR, fmt="wav", codec="pcm_s16le")
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(np.random.default_rng(1).bytes(5000))
    for path, words in ((wav, "no video stream"), (bad, "bad.mkv")):
        with pytest.raises(MediaError, match=words):
            list(PictureStream(path, spec))
        assert decoders() == []


def test_decoded_pixels_are_swscale_area_of_each_frame(tmp_path):
    # MediaReader keeps one scaling context for the whole file: the pixels must be exactly
    # what a fresh frame.reformat(..., AREA) gives (non-integer ratio, textured pictures)
    from liveframe.core.media import MediaReader

    yy, xx = np.mgrid[0:120, 0:160]
    frames = [(i / 30, ((xx * 3 + yy * 5 + 11 * i) % 256).astype(np.uint8)) for i in range(8)]
    clip = write_clip(tmp_path / "tex.mkv", frames)
    with MediaReader(clip) as r:
        got = [vf.pixels[0] for vf in r.frames()]
    with av.open(str(clip)) as c:
        want = [f.reformat(width=64, height=64, format="gray", interpolation="AREA").to_ndarray()
                for f in c.decode(video=0)]
    assert len(got) == len(want) == 8 and np.ptp(want[0]) > 50
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


# -- ola on block brains ------------------------------------------------------------------


def _block_modes(media, tmp_path, freq: float) -> dict[str, np.ndarray]:
    brain = Brain.load(make_brain(tmp_path / f"block{freq:g}.onnx", freq=freq, framing="block"))
    return {m: R.render_signal(media["clip"], brain, mode=m) for m in ("raw", "ola")}


def test_ola_on_a_seamless_block_brain_is_nearly_the_tone(media, tmp_path):
    # 450 Hz is 15 whole cycles per block: raw is already the continuous tone, and the
    # predictive crossfade should leave it alone (within -50 dB of its amplitude)
    sig = _block_modes(media, tmp_path, FREQ)
    n = np.arange(sig["raw"].shape[0])
    tone = 0.3 * np.sin(2 * np.pi * FREQ * n / SR)
    np.testing.assert_allclose(sig["raw"], tone, atol=2e-6)
    assert np.abs(sig["ola"] - sig["raw"]).max() < 1e-3
    assert frame_artifact_db(sig["raw"], sr=SR) < 3


def test_ola_adds_no_frame_artifact_on_a_seamless_block_brain(media, tmp_path):
    sig = _block_modes(media, tmp_path, FREQ)
    assert frame_artifact_db(sig["ola"], sr=SR) <= frame_artifact_db(sig["raw"], sr=SR) + 3


def test_ola_removes_the_clicks_of_a_discontinuous_block_brain(media, tmp_path):
    # 441 Hz is 14.7 cycles per block: every join is a jump in value and phase. ola's
    # predictive crossfade removes the jump (no sample step beyond the tone's own slope);
    # the phase change itself still shows as a smooth dip at the frame rate, which
    # frame_artifact_db reads (a known limit of block framing: grain brains have none).
    sig = _block_modes(media, tmp_path, 441.0)
    tone_step = 0.3 * 2 * np.pi * 441.0 / SR  # the largest step of the tone itself
    raw_step = np.abs(np.diff(sig["raw"])).max()
    ola_step = np.abs(np.diff(sig["ola"])).max()
    assert raw_step > 4 * tone_step
    assert ola_step < 1.3 * tone_step
    assert frame_artifact_db(sig["ola"], sr=SR) <= frame_artifact_db(sig["raw"], sr=SR)


# -- streamed writing -----------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN/overflow trials warn in both
def test_block_guard_is_safety_chain_sample_for_sample():
    # render guards many blocks per numpy call: it must be SafetyChain's arithmetic exactly,
    # NaN/inf blocks, sums that overflow, blasts, DC and a short last block included
    from liveframe.core.safety import SafetyChain

    rng = np.random.default_rng(0)
    for trial in range(60):
        sr, block = [(SR, 735), (48000, 512), (16000, 7)][trial % 3]
        n = int(rng.integers(1, 9000))
        x = (rng.standard_normal(n) * [0.01, 0.5, 3.0, 20.0][trial % 4]).astype(np.float32)
        x += np.float32(0.7 * (trial % 5 == 1))
        if trial % 5 == 2:
            x[rng.integers(0, n, 3)] = [np.nan, np.inf, -np.inf]
        if trial % 5 == 3:
            x[rng.integers(0, n, 40)] = 3e38  # finite samples whose sum overflows
        want = x.copy()
        sc = SafetyChain(sr=sr, max_block=block)
        for i in range(0, n, block):
            sc.process(want[i : i + block])
        got = x.copy()
        bg = BlockGuard(sr=sr, block=block)
        i = 0
        while i < n:  # in pieces of whole blocks, as a render hands them on
            k = min(int(rng.integers(0, 4)) * block, n - i) or n - i
            bg.process(got[i : i + k])
            i += k
        assert got.tobytes() == want.tobytes(), trial
        assert (bg.nan_blocks, bg.limited_blocks) == (sc.nan_blocks, sc.limited_blocks)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mkv"])
def test_streamed_render_is_the_file_of_the_finished_signal(media, tmp_path, suffix):
    # render guards and writes while decoding; the file must be what guarding and writing
    # the finished signal gives: the same samples, the same packets in the same order
    loud = Brain.load(make_brain(tmp_path / "loud.onnx", brightness=True, freq=441.0, amp=3.0))
    clip = _clip(tmp_path / "c25.mkv", fps=25, seconds=2.3)
    fmt, codec, _ = S.CONTAINERS[suffix]
    for brain, batch in ((media["tone"], 5), (loud, 64)):  # loud: the limiter works
        out = tmp_path / f"streamed{suffix}"
        R.render(clip, out, brain=brain, mode="ola", batch=batch)
        ref = tmp_path / f"ref{suffix}"
        sig = R.render_signal(clip, brain, mode="ola")
        assert (np.abs(sig).max() > 1) == (brain is loud)
        guard(sig, sr=SR)
        if suffix == ".mkv":
            S.write_muxed(ref, clip, sig, sr=SR, fmt=fmt, codec=codec)
        else:
            S.write_audio(ref, sig, sr=SR, fmt=fmt, codec=codec)

        def layout(p: Path) -> list[tuple]:
            with av.open(str(p)) as c:
                return [(k.stream.type, k.pts, k.dts, k.pos, bytes(k)) for k in c.demux() if k.size]

        assert layout(out) == layout(ref)
        if suffix != ".mkv":  # (Matroska writes a random segment UID)
            assert out.read_bytes() == ref.read_bytes()


@pytest.mark.parametrize("suffix, opens", [(".wav", 1), (".mkv", 1)])
def test_render_opens_the_input_once_to_decode(media, tmp_path, monkeypatch, suffix, opens):
    # the checks before any work, the decoding and (.mkv) the copy of the video packets
    # share one open
    out = tmp_path / f"o{suffix}"
    run = lambda: R.render(media["clip"], out, brain=media["tone"])  # noqa: E731
    assert count_opens(monkeypatch, media["clip"], run) == opens


def test_render_guards_in_steps_of_the_brains_hop(tmp_path):
    # a 16 kHz / 25 fps brain has a hop of 640, not 735: the written file is the signal
    # guarded 640 samples at a time (as live play's producer guards it), and the limiter
    # makes the step visible
    loud = Brain.load(make_brain(tmp_path / "b16k.onnx", brightness=True, freq=400.0, amp=3.0,
                                 spec_overrides={"sample_rate": 16000, "fps": 25}))
    assert loud.spec.hop == 640
    clip = _clip(tmp_path / "c25.mkv", fps=25, seconds=1.6)
    out = tmp_path / "o.wav"
    R.render(clip, out, brain=loud, mode="ola")
    sr, back = S.read_audio_file(out)
    sig = R.render_signal(clip, loud, mode="ola")
    by_hop, by_735 = guard(sig.copy(), sr=16000, block=640), guard(sig.copy(), sr=16000, block=735)
    assert sr == 16000 and back.shape == sig.shape
    np.testing.assert_allclose(back, by_hop, atol=1.5 / 32767)
    assert np.abs(by_735 - by_hop).max() > 10 / 32767


def _play_score(score: str, table: np.ndarray, n: int) -> np.ndarray:
    """The Csound render instrument in numpy: every note of the score, summed."""
    out = np.zeros(n, np.float64)
    for line in score.splitlines():
        if not line.startswith("i1 "):
            continue
        _, t, d, gain, off, env = line.split()
        start, dur = round(float(t) * SR), round(float(d) * SR)
        seg = table[int(off) : int(off) + dur].astype(np.float64)
        if int(env):
            seg = seg * (0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(dur) + 0.5) / dur))
        out[start : start + dur] += seg * float(gain)
    return out


def test_csound_score_holds_the_granular_synths_grains_from_the_first_tick(tmp_path):
    # the score writer listens to a granular pipeline: played back, its notes are the
    # pipeline's own signal, sample for sample, the first ticks (grains moved to the
    # present) included
    import io

    from liveframe.core.pipeline import TickPipeline
    from liveframe.offline.csound import ScoreWriter
    from liveframe.util.wav import WavWriter, read_wav

    brain = Brain.load(make_brain(tmp_path / "b.onnx", brightness=True, freq=FREQ))
    rng = np.random.default_rng(4)
    px = (np.cumsum(rng.uniform(-30, 30, 40)) % 255).astype(np.uint8)
    px = np.broadcast_to(px[:, None, None, None], (40, 1, 64, 64))
    pipe = TickPipeline(brain, mode="granular", seed=11, density=2.0, spread=3.0)
    table, score = WavWriter(tmp_path / "t.wav", sr=SR), io.StringIO()
    writer = ScoreWriter(table, score, sr=SR, length=brain.spec.length)
    pipe.listeners.append(writer)
    sig = np.concatenate([pipe.step_batch(px[:15]), pipe.step(px[15]).copy(),
                          pipe.step_batch(px[16:]), pipe.flush()])
    table.close()
    assert writer.ticks == 40 and writer.error is None
    first = [ln for ln in score.getvalue().splitlines() if ln.startswith("i1 0.000000000 ")]
    assert first  # grains of the first ticks, clamped to the start
    played = _play_score(score.getvalue(), read_wav(tmp_path / "t.wav")[1], sig.shape[0])
    assert np.abs(sig).max() > 0.1 and writer.end <= sig.shape[0]
    np.testing.assert_allclose(played, sig, atol=1e-5)


def test_a_clip_that_starts_late_renders_its_own_duration_in_place(media, tmp_path):
    # a stream cut from a longer one: its clock starts at 3600 s
    late = tmp_path / "late.mkv"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(media["clip"]), "-c", "copy",
                    "-output_ts_offset", "3600", str(late)], check=True, timeout=60)
    sig = R.render_signal(late, media["tone"])
    assert sig.shape == (round(SECONDS * SR),)
    np.testing.assert_array_equal(sig, R.render_signal(media["clip"], media["tone"]))
    out = tmp_path / "late-out.mkv"
    R.render(late, out, brain=media["tone"])
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        starts = [float(s.start_time * s.time_base) for s in (v, a)]
    assert abs(starts[0] - 3600) < 0.05 and abs(starts[1] - starts[0]) < 0.05
