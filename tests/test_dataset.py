"""`liveframe pickle`: frames on the brain clock with audio targets aligned by timestamps.

Every clip is a real file written by :func:`liveframe.data.clips.write_clip` with explicit
timestamps and lossless (FLAC) audio, so where a click lands is exact.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from liveframe import constants as C
from liveframe.core.media import PTS_TOLERANCE, MediaReader
from liveframe.core.spec import Framing
from liveframe.core.synth import hann
from liveframe.data.clips import write_clip
from liveframe.data.dataset import load_dataset, read_meta
from liveframe.data.pickle import AudioWindow, build_dataset
from liveframe.errors import DatasetError, MediaError, ParamError

H = C.HOP
REPO = Path(__file__).resolve().parent.parent


def frame_times(kind: str, n: int) -> list[float]:
    """Frame timestamps as Matroska stores them (1 ms)."""
    if kind == "vfr":
        rng = np.random.default_rng(7)
        steps = rng.choice([1 / 60, 1 / 30, 1 / 24, 0.07, 0.013], size=n - 1)
        t = np.concatenate([[0.0], np.cumsum(steps)])
    else:
        rate = {"25": 25.0, "29.97": 30000 / 1001, "60": 60.0, "24": 24.0, "30": 30.0}[kind]
        t = np.arange(n) / rate
    return [round(float(x), 3) for x in t]


def level(i: int) -> int:
    """Brightness that encodes frame index ``i`` (survives H.264 within +-2)."""
    return 10 + 4 * (i % 60)


def make_clip(
    path: Path,
    times: list[float],
    *,
    audio: np.ndarray | None,
    sr: int = 48000,
    fps: float = 30.0,
    audio_start: float = 0.0,
    shape: tuple[int, int] = (48, 64),
) -> Path:
    yy, xx = np.mgrid[0: shape[0], 0: shape[1]]
    texture = ((xx // 3 + yy // 5) % 2) * 16 - 8  # zero mean: the level stays readable
    pics = ((t, (level(i) + texture).astype(np.uint8)) for i, t in enumerate(times))
    return write_clip(path, pics, audio=audio, sr=sr, fps=fps, audio_start=audio_start)


def expected_frame(times: list[float], k: int, fps: float = C.FPS) -> int:
    """Index of the newest frame with time <= k / fps (the brain clock's rule)."""
    i = 0
    for j, t in enumerate(times):
        if t <= k / fps + PTS_TOLERANCE:
            i = j
    return i


# -- timing: a click at a frame's timestamp lands in the right tick at the right sample --

CLICK_CASES = [
    # source frame rate, audio channels, audio rate, framing, audio start (s)
    ("25", 1, 48000, "block", 0.0),
    ("29.97", 2, 44100, "grain", 0.0),
    ("60", 6, 48000, "block", 0.0),
    ("vfr", 2, 48000, "grain", 0.0),
    ("vfr", 1, 44100, "block", 0.0),
    ("25", 6, 44100, "grain", 0.0),
    ("29.97", 1, 48000, "block", 0.25),
]


@pytest.mark.parametrize("rate,channels,sr,framing,audio_start", CLICK_CASES)
def test_click_at_frame_time_lands_in_its_tick(
    tmp_path: Path, rate: str, channels: int, sr: int, framing: str, audio_start: float
) -> None:
    times = frame_times(rate, 70 if rate != "60" else 110)
    dur = times[-1] + 0.05
    audio = np.zeros((int(dur * sr), channels), np.float32)
    clicks = [j for j in (9, 27, 48) if times[j] >= audio_start + 0.01]
    for j in clicks:
        audio[round((times[j] - audio_start) * sr)] = 0.9
    clip = make_clip(tmp_path / "c.mkv", times, audio=audio, sr=sr, audio_start=audio_start)
    ds = load_dataset(build_dataset([clip], tmp_path / "d.npz", framing=framing,
                                    progress=False))
    assert ds.targets.shape[1] == (2 * H if framing == "grain" else H)
    assert ds.meta["sources"][0]["audio_start"] == pytest.approx(audio_start, abs=1e-3)
    peaks = []
    for j in clicks:
        n_click = times[j] * C.SAMPLE_RATE  # where the click is at the brain rate
        k_tick = int(n_click // H)  # the tick whose block holds it
        # look only near the click: the two ticks whose targets can hold it
        ks = [k for k in (k_tick - 1, k_tick, k_tick + 1, k_tick + 2) if 0 <= k < len(ds)]
        best = max(ks, key=lambda k: np.abs(ds.targets[k]).max())
        o = int(np.argmax(np.abs(ds.targets[best])))
        lo, _ = Framing(framing, H).span(best)
        peaks.append(lo + o)
        assert abs(lo + o - n_click) <= 1.0, (j, best, o, n_click)
        if framing == "block":
            assert best == k_tick or abs(n_click - H * round(n_click / H)) <= 1.0
        else:  # the grain centred nearer the click holds it more strongly
            assert abs(best * H - n_click) <= H / 2 + 1
        # and that tick shows the newest frame at or before its time
        assert abs(int(ds.frames[best].mean()) - level(expected_frame(times, best))) <= 3
    # silence elsewhere: nothing but the clicks (and their resampling ringing)
    quiet = np.ones(len(ds), bool)
    for n in peaks:
        quiet[max(n // H - 2, 0): n // H + 3] = False
    assert np.abs(ds.targets[quiet]).max() < 1e-3
    if audio_start:  # before the soundtrack starts, targets are zeros
        first = int(audio_start * C.FPS) - 2
        assert not ds.targets[:first].any()


# -- grain framing: overlap-add gives the soundtrack back -------------------------------

@pytest.mark.parametrize("channels,sr,rate", [(2, 44100, "29.97"), (6, 48000, "vfr"),
                                              (1, 48000, "25")])
def test_grain_overlap_add_reconstructs_soundtrack(
    tmp_path: Path, rng: np.random.Generator, channels: int, sr: int, rate: str
) -> None:
    times = frame_times(rate, 60)
    audio = (0.2 * rng.standard_normal((int((times[-1] + 0.04) * sr), channels)))
    clip = make_clip(tmp_path / "c.mkv", times, audio=audio.astype(np.float32), sr=sr)
    ds = load_dataset(build_dataset([clip], tmp_path / "d.npz", progress=False))
    with MediaReader(clip, need_audio=True) as r:
        t0, x = r.read_audio(sample_rate=C.SAMPLE_RATE)
    assert t0 == 0.0
    T = len(ds)
    y = np.zeros((T + 1) * H)
    for k in range(T):  # target k covers samples [kH - H, kH + H): shift by H
        y[k * H: k * H + 2 * H] += ds.targets[k]
    n = min((T - 1) * H, x.size)  # the last tick's second half has no partner
    assert n > 1.5 * C.SAMPLE_RATE
    np.testing.assert_allclose(y[H: H + n], x[:n], atol=1e-5, rtol=0)
    # each target is exactly the windowed stretch of the soundtrack
    k = T // 2
    np.testing.assert_allclose(ds.targets[k], x[k * H - H: k * H + H] * hann(2 * H), atol=1e-7)


def test_block_framing_is_the_soundtrack_cut_at_the_ticks(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    times = frame_times("24", 40)
    audio = (0.2 * rng.standard_normal(int((times[-1] + 0.05) * 44100))).astype(np.float32)
    clip = make_clip(tmp_path / "c.mkv", times, audio=audio, sr=44100)
    ds = load_dataset(build_dataset([clip], tmp_path / "d.npz", framing="block",
                                    progress=False))
    _, x = MediaReader(clip).read_audio()
    n = min(len(ds) * H, x.size) // H * H
    np.testing.assert_array_equal(ds.targets.reshape(-1)[:n], x[:n])
    assert not ds.targets.reshape(-1)[x.size:].any()  # past the soundtrack: zeros
    assert ds.meta["framing"] == "block" and ds.meta["length"] == H


# -- frames: the right picture on every tick ---------------------------------------------

@pytest.mark.parametrize("rate", ["25", "29.97", "60", "vfr"])
def test_each_tick_shows_the_newest_frame(tmp_path: Path, rate: str) -> None:
    times = frame_times(rate, 60)
    audio = np.zeros(int((times[-1] + 0.1) * 48000), np.float32)
    # larger than 64x64, so swscale really averages areas down
    clip = make_clip(tmp_path / "c.mkv", times, audio=audio, shape=(144, 192))
    ds = load_dataset(build_dataset([clip], tmp_path / "d.npz", progress=False))
    spacing = float(np.median(np.diff(times)))
    end = times[-1] + spacing
    assert len(ds) == sum(1 for k in range(10_000) if k / C.FPS < end - PTS_TOLERANCE)
    with MediaReader(clip) as r:
        pixels = [f.pixels for f in r.frames()]
    assert len(pixels) == len(times)
    for k in range(len(ds)):
        i = expected_frame(times, k)
        assert abs(int(ds.frames[k].mean()) - level(i)) <= 3, (k, i)
        # exactly the pixels MediaReader gives for that frame (same swscale path)
        np.testing.assert_array_equal(ds.frames[k], pixels[i])
    assert ds.frames.shape[1:] == (1, 64, 64) and ds.frames.dtype == np.uint8


def test_colour_stores_three_channels(tmp_path: Path) -> None:
    times = frame_times("30", 20)
    pics = [(t, np.dstack([np.full((48, 64), 200, np.uint8), np.full((48, 64), 40, np.uint8),
                           np.full((48, 64), 90, np.uint8)])) for t in times]
    clip = write_clip(tmp_path / "c.mkv", pics, audio=np.zeros(48000, np.float32))
    ds = load_dataset(build_dataset([clip], tmp_path / "d.npz", channels=3, progress=False))
    assert ds.frames.shape[1:] == (3, 64, 64) and ds.meta["channels"] == 3
    r, g, b = (int(ds.frames[5, c].mean()) for c in range(3))
    assert abs(r - 200) <= 4 and abs(g - 40) <= 4 and abs(b - 90) <= 4


# -- several videos and calibration -------------------------------------------------------

def test_videos_concatenate_with_boundaries_and_calibration(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    t1, t2 = frame_times("25", 30), frame_times("60", 50)
    a1 = (0.3 * rng.standard_normal(int(1.3 * 48000))).astype(np.float32)
    a2 = (0.3 * rng.standard_normal((int(0.9 * 44100), 2))).astype(np.float32)
    c1 = make_clip(tmp_path / "one.mkv", t1, audio=a1, sr=48000)
    c2 = make_clip(tmp_path / "two.mkv", t2, audio=a2, sr=44100)
    ds = load_dataset(build_dataset([c1, c2], tmp_path / "d.npz", calibrate_silence=1.0,
                                    progress=False))
    one = load_dataset(build_dataset([c1], tmp_path / "1.npz", progress=False))
    two = load_dataset(build_dataset([c2], tmp_path / "2.npz", progress=False))
    n1, n2 = len(one), len(two)
    src = ds.meta["sources"]
    assert [s["kind"] for s in src] == ["video", "video", "calibration", "calibration"]
    assert [s["path"] for s in src[:2]] == [str(c1), str(c2)]
    assert [s["ticks"] for s in src] == [n1, n2, 15, 15]
    assert ds.boundaries.tolist() == [0, n1, n1 + n2, n1 + n2 + 15, n1 + n2 + 30]
    assert ds.segments[1] == (n1, n1 + n2)
    # each source is pickled exactly as on its own, starting from its own tick 0
    np.testing.assert_array_equal(ds.frames[:n1], one.frames)
    np.testing.assert_array_equal(ds.targets[n1: n1 + n2], two.targets)
    assert abs(int(ds.frames[n1].mean()) - level(0)) <= 3
    # calibration: black then white, silent
    cal = slice(n1 + n2, None)
    assert (ds.frames[n1 + n2: n1 + n2 + 15] == 0).all()
    assert (ds.frames[n1 + n2 + 15:] == 255).all()
    assert not ds.targets[cal].any()
    assert ds.targets[: n1 + n2].any()
    m = ds.meta
    assert (m["sample_rate"], m["fps"], m["hop"], m["length"], m["framing"]) == (
        22050, 30, 735, 1470, "grain")
    assert (m["width"], m["height"], m["channels"]) == (64, 64, 1)


def test_other_brain_rates(tmp_path: Path) -> None:
    times = frame_times("25", 25)
    audio = np.zeros(48000, np.float32)
    clip = make_clip(tmp_path / "c.mkv", times, audio=audio)
    ds = load_dataset(build_dataset([clip], tmp_path / "d.npz", fps=25, sr=16000,
                                    progress=False))
    assert ds.meta["hop"] == 640 and ds.targets.shape[1] == 1280 and len(ds) == 25
    assert read_meta(tmp_path / "d.npz") == ds.meta
    with pytest.raises(ParamError, match=r"^fps=29\.97 gives .* whole number") as e:
        build_dataset([clip], tmp_path / "e.npz", fps=29.97, progress=False)
    assert "--" not in str(e.value), "the library names parameters, never flags"
    with pytest.raises(ParamError, match="^framing='blob' must be one of grain, block"):
        build_dataset([clip], tmp_path / "e.npz", framing="blob", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mkv", "d.npz"]


# -- bad input, through the real command ---------------------------------------------------

def _pickle_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "liveframe", "pickle", *args, "--quiet"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.fixture(scope="module")
def good_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("good")
    times = frame_times("25", 25)
    return make_clip(d / "good.mkv", times, audio=0.1 * np.ones((48000, 2), np.float32))


def _bad(kind: str, folder: Path, good: Path) -> tuple[list[str], str]:
    """Arguments for one bad case, and the name the error line must contain."""
    data = good.read_bytes()
    if kind == "missing":
        return ["nothere.mkv", "-o", "d.npz"], "nothere.mkv"
    if kind == "text":
        (folder / "notes.mp4").write_text("not a video at all\n" * 20)
        return ["notes.mp4", "-o", "d.npz"], "notes.mp4"
    if kind == "audio_only":
        import av

        with av.open(str(folder / "song.flac"), "w") as out:
            s = out.add_stream("flac", rate=44100, layout="mono")
            f = av.AudioFrame.from_ndarray(np.zeros((1, 4410), np.int16), format="s16",
                                           layout="mono")
            f.sample_rate = 44100
            for p in [*s.encode(f), *s.encode(None)]:
                out.mux(p)
        return ["song.flac", "-o", "d.npz"], "song.flac"
    if kind == "empty":
        (folder / "empty.mkv").write_bytes(b"")
        return ["empty.mkv", "-o", "d.npz"], "empty.mkv"
    if kind == "corrupt":
        rng = np.random.default_rng(3)
        (folder / "broken.mkv").write_bytes(data[:400] + rng.bytes(len(data) - 400))
        return ["broken.mkv", "-o", "d.npz"], "broken.mkv"
    if kind == "no_audio":
        make_clip(folder / "silent.mkv", frame_times("25", 10), audio=None)
        return ["silent.mkv", "-o", "d.npz"], "silent.mkv"
    if kind == "later_bad":  # opens fine, fails while decoding, after good.mkv is done
        (folder / "good.mkv").write_bytes(data)
        cluster = data.find(b"\x1f\x43\xb6\x75")  # Matroska's first Cluster: no packets
        assert cluster > 0
        (folder / "half.mkv").write_bytes(data[: cluster + 8])
        return ["good.mkv", "half.mkv", "-o", "d.npz"], "half.mkv"
    if kind == "later_missing":
        (folder / "good.mkv").write_bytes(data)
        return ["good.mkv", "gone.mkv", "-o", "d.npz"], "gone.mkv"
    if kind == "no_folder":
        (folder / "good.mkv").write_bytes(data)
        return ["good.mkv", "-o", "nofolder/d.npz"], "nofolder/d.npz"
    if kind == "output_is_folder":
        (folder / "good.mkv").write_bytes(data)
        (folder / "out").mkdir()
        return ["good.mkv", "-o", "out"], "out"
    if kind == "fps_not_whole":  # the library's ParamError, in the command line's words
        (folder / "good.mkv").write_bytes(data)
        return ["good.mkv", "-o", "d.npz", "--fps", "29.97"], "--fps 29.97 gives"
    if kind == "bad_rate":
        (folder / "good.mkv").write_bytes(data)
        return ["good.mkv", "-o", "d.npz", "--sample-rate", "0"], "--sample-rate 0 must be"
    raise AssertionError(kind)


BAD = ["missing", "text", "audio_only", "empty", "corrupt", "no_audio", "later_bad",
       "later_missing", "no_folder", "output_is_folder", "fps_not_whole", "bad_rate"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_is_one_line_exit_2_nothing_left(
    tmp_path: Path, good_clip: Path, kind: str
) -> None:
    args, name = _bad(kind, tmp_path, good_clip)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    res = _pickle_cli(*args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert name in lines[0] and "Traceback" not in res.stderr
    assert lines[0].startswith("liveframe pickle: ")
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before  # neither the dataset nor a temporary


def test_cli_writes_a_dataset(tmp_path: Path, good_clip: Path) -> None:
    res = _pickle_cli(str(good_clip), str(good_clip), "-o", "d.npz", "--framing", "block",
                      "--colour", "--calibrate-silence", "0.5", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    ds = load_dataset(tmp_path / "d.npz")
    assert ds.meta["framing"] == "block" and ds.frames.shape[1] == 3
    assert ds.boundaries.tolist() == [0, 30, 60, 68, 75]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]


def test_library_errors_are_liveframe_errors(tmp_path: Path, good_clip: Path) -> None:
    with pytest.raises(MediaError, match="nothere.mkv"):
        build_dataset([good_clip, tmp_path / "nothere.mkv"], tmp_path / "d.npz",
                      progress=False)
    with pytest.raises(DatasetError, match="nofolder"):
        build_dataset([good_clip], tmp_path / "nofolder" / "d.npz", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_audio_window_keeps_only_what_pending_ticks_need(rng: np.random.Generator) -> None:
    x = rng.standard_normal(50_000).astype(np.float32)
    w = AudioWindow(capacity=1024)
    start, pos, k = 300, 0, 0  # the soundtrack starts at global sample 300
    out = np.empty(2 * 100, np.float32)
    while k * 100 < start + x.size + 100:
        if pos < x.size:  # chunks of odd sizes, as decoders give them
            m = int(rng.integers(1, 700))
            w.push(start + pos, x[pos: pos + m])
            pos += m
        while k * 100 + 100 <= w.end or pos >= x.size:  # tick k's span is now complete
            lo, hi = Framing("grain", 100).span(k)
            w.keep_from = lo
            w.take(lo, hi, out)
            ref = np.zeros(hi - lo, np.float32)
            a, b = max(lo, start), min(hi, start + x.size)
            if b > a:
                ref[a - lo: b - lo] = x[a - start: b - start]
            np.testing.assert_array_equal(out, ref)
            k += 1
            if k * 100 >= start + x.size + 100:
                break
    assert w.buf.size <= 2048  # it never grew beyond what the ticks needed
    assert w.off > 40_000  # and dropped what they no longer do
