"""The camera film and its designed voice (liveframe.data.camfilm, issue 14).

Scenes are drawn at a source rate, written to real clips and decoded back the way the brain
gets them (64x64 grey on the 30 fps brain clock) before the voice is designed from them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from liveframe import constants as C
from liveframe.core.media import MediaReader
from liveframe.data import camfilm as cf
from liveframe.data.clips import write_clip
from liveframe.errors import MediaError, ParamError
from liveframe.offline.metrics import frame_artifact_db, rms_dbfs

SR = C.SAMPLE_RATE
HOP = C.HOP
ROOT = Path(__file__).resolve().parent.parent


def _background(rng: np.random.Generator, level: float = 90.0) -> np.ndarray:
    """A textured grey background (H, W) like a wall or a curtain, 256x192."""
    import cv2

    tex = cv2.GaussianBlur(rng.uniform(-1, 1, (192, 256)), (0, 0), 3) * 300
    return np.clip(level + tex, 0, 255).astype(np.uint8)


def _blob(bg: np.ndarray, x: float, y: float, r: float = 18, value: int = 235) -> np.ndarray:
    import cv2

    p = bg.copy()
    cv2.circle(p, (int(x * 16), int(y * 16)), int(r * 16), value, -1, cv2.LINE_AA, 4)
    return p


def _ticks(tmp: Path, name: str, times: np.ndarray, pics: list[np.ndarray]) -> np.ndarray:
    """Write the pictures at ``times`` to a clip, read it back as the brain does: (T, 64, 64)."""
    path = write_clip(tmp / f"{name}.mkv", zip(times.tolist(), pics),
                      fps=float(1 / np.median(np.diff(times))))
    with MediaReader(path) as r:
        frames = [(t, px[0]) for kind, t, px in r.decode(size=(64, 64), channels=1)]
    idx = cf.brain_ticks([t for t, _ in frames])
    return np.stack([frames[i][1] for i in idx])


def _windows_db(x: np.ndarray, win: float = 0.2) -> np.ndarray:
    w = int(win * SR)
    n = x.size // w
    return 10 * np.log10((x[: n * w].astype(np.float64).reshape(n, w) ** 2).mean(1) + 1e-15)


def _ranks(a: np.ndarray) -> np.ndarray:
    """Ranks, ties sharing their mean rank."""
    order = np.argsort(a, kind="stable")
    r = np.empty(a.size)
    r[order] = np.arange(a.size)
    for v in np.unique(a):
        same = a == v
        r[same] = r[same].mean()
    return r


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def _moving_scene(fps: float, seconds: float = 8.0) -> tuple[np.ndarray, list[np.ndarray]]:
    bg = _background(np.random.default_rng(3))
    times = np.round(np.arange(int(seconds * fps)) / fps, 3)
    pics = [_blob(bg, 128 + 90 * np.sin(2 * np.pi * 0.5 * t),
                  96 + 60 * np.sin(2 * np.pi * 0.23 * t)) for t in times]
    return times, pics


# -- the voice ------------------------------------------------------------------------------


def test_black_is_exact_silence(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    bg = _background(rng)
    fps = 30
    lit = [bg] * fps
    black = [np.zeros_like(bg)] * fps
    covered = [np.clip(1.0 + rng.standard_normal(bg.shape) * 1.2, 0, 255).astype(np.uint8)
               for _ in range(fps)]
    pics = lit + black + covered
    ticks = _ticks(tmp_path, "black", np.round(np.arange(len(pics)) / fps, 3), pics)
    x = cf.design_sound(ticks)
    assert x.dtype == np.float32 and x.size == ticks.shape[0] * HOP
    assert rms_dbfs(x[: SR // 2]) > -45  # the lit picture sounds
    after = int(1.1 * SR)  # black from 1.0 s: silent within 100 ms, and stays so
    assert not np.any(x[after:]), "a black or covered picture must give exact zeros"
    assert np.all(np.diff(np.nonzero(x)[0][-50:]) >= 0)
    assert not np.any(cf.design_sound(np.zeros((20, 64, 64), np.uint8)))


def test_still_settles_to_quiet_bed(tmp_path: Path) -> None:
    times, pics = _moving_scene(30, 3.0)
    still = [pics[-1]] * 90
    allp = pics + still
    ticks = _ticks(tmp_path, "still", np.round(np.arange(len(allp)) / 30, 3), allp)
    x = cf.design_sound(ticks)
    moving = rms_dbfs(x[SR: 3 * SR])
    settled = rms_dbfs(x[4 * SR: 6 * SR - HOP])  # from 1 s after the picture stops
    assert -45 < settled < -30, settled  # a quiet bed, not silence
    assert moving > settled + 6, (moving, settled)


def test_motion_raises_level(tmp_path: Path) -> None:
    bg = _background(np.random.default_rng(5))
    fps = 30
    times = np.round(np.arange(12 * fps) / fps, 3)
    # speed swells and fades (pauses included): position is the integral of speed
    speed = 0.5 + np.clip(np.sin(2 * np.pi * times / 4.0), 0, None) ** 2 * 6.0
    travel = np.cumsum(speed) % 352
    x_pos = 40 + np.where(travel < 176, travel, 352 - travel)  # to and fro
    pics = [_blob(bg, x, 96) for x in x_pos]
    ticks = _ticks(tmp_path, "motion", times, pics)
    audio = cf.design_sound(ticks)
    level = _windows_db(audio)
    g = np.stack(pics).astype(np.float64) / 255  # motion of the source, as the issue measures
    diff = np.abs(np.diff(g, axis=0)).mean(axis=(1, 2))
    per = int(0.2 * fps)
    motion = np.array([diff[max(i * per - 1, 0): (i + 1) * per - 1].mean()
                       for i in range(level.size)])
    rho = _spearman(motion, level)
    assert rho >= 0.8, (rho, np.round(motion * 1000, 2), np.round(level, 1))


def test_register_follows_height(tmp_path: Path) -> None:
    bg = _background(np.random.default_rng(7))
    fps = 30
    heights = (170, 133, 96, 59, 22)  # bottom to top (y grows downwards)
    centroids = []
    for k, y in enumerate(heights):
        times = np.round(np.arange(3 * fps) / fps, 3)
        pics = [_blob(bg, 128 + 80 * np.sin(2 * np.pi * 0.8 * t), y, r=14) for t in times]
        x = cf.design_sound(_ticks(tmp_path, f"h{k}", times, pics))[SR:]
        spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
        f = np.fft.rfftfreq(x.size, 1 / SR)
        centroids.append(float((f * spec).sum() / spec.sum()))
    assert np.all(np.diff(centroids) > 0), centroids


@pytest.mark.parametrize("fps", [10, 25, 30])
def test_no_line_at_clock_or_source_rate(tmp_path: Path, fps: int) -> None:
    times, pics = _moving_scene(fps, 8.0)
    x = cf.design_sound(_ticks(tmp_path, f"r{fps}", times, pics))
    assert rms_dbfs(x) > -35
    for rate in sorted({30, fps}):
        line = frame_artifact_db(x, sr=SR, fps=rate)
        assert line < 3.0, (rate, line)


def test_same_pictures_same_sound() -> None:
    times, pics = _moving_scene(15, 2.0)
    ticks = np.stack([cf._grey64(pics[i]) for i in cf.brain_ticks(times)])
    a, b = cf.design_sound(ticks, seed=4), cf.design_sound(ticks, seed=4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, cf.design_sound(ticks, seed=5))


def test_note_hz_scale() -> None:
    f = cf.note_hz(np.linspace(0, 1, 101))
    assert np.all(np.diff(f) >= 0)
    assert f[0] == pytest.approx(4 * cf.FUNDAMENTAL_HZ) and f[-1] == pytest.approx(
        32 * cf.FUNDAMENTAL_HZ)
    notes = cf.FUNDAMENTAL_HZ * np.array(cf.SCALE + cf.BED_NOTES)
    assert np.all(np.abs(notes - 30 * np.round(notes / 30)) > 0.5)  # never a multiple of 30 Hz


def test_design_sound_refuses_bad_pictures() -> None:
    with pytest.raises(ParamError, match="pictures"):
        cf.design_sound(np.zeros((4, 64, 64), np.float32))
    with pytest.raises(ParamError, match="pictures"):
        cf.design_sound(np.zeros((64, 64), np.uint8))


# -- the film -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two textured photos and a short silent clip."""
    import cv2

    d = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(11)
    for i in range(2):
        img = cv2.GaussianBlur(rng.uniform(0, 255, (240, 320, 3)), (0, 0), 2 + 3 * i)
        cv2.imwrite(str(d / f"photo{i}.png"), np.clip(img, 0, 255).astype(np.uint8))
    bg = cv2.cvtColor(_background(rng), cv2.COLOR_GRAY2RGB)
    write_clip(d / "walk.mkv", ((t / 15, _blob(bg, 40 + 8 * t, 100)) for t in range(20)),
               fps=15)
    return d


def _read(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    with MediaReader(path, need_audio=True) as r:
        pics, audio = [], []
        for kind, _t, data in r.decode(audio=True, size=(64, 64), channels=1):
            (pics if kind == "video" else audio).append(data)
        rate = r.frame_rate or 0.0
    return np.stack(pics), np.concatenate(audio), rate


def test_film_is_reproducible_and_plays_what_it_shows(sources: Path, tmp_path: Path) -> None:
    kw = dict(minutes=0.12, seed=3, size=(128, 96), reel_seconds=(3.0, 4.0))
    a = cf.make_film([sources], tmp_path / "a", **kw)
    b = cf.make_film([sources], tmp_path / "b", **kw)
    assert len(a) >= 2 and [p.name for p in a] == [p.name for p in b]
    assert not list((tmp_path / "a").glob(".*"))  # no temporary file left
    rates = set()
    for pa, pb in zip(a, b):
        va, xa, rate = _read(pa)
        vb, xb, _ = _read(pb)
        assert np.array_equal(va, vb) and np.array_equal(xa, xb)
        rates.add(round(rate))
        with MediaReader(pa) as r:
            assert r.size == (128, 96)
        assert np.abs(xa).max() < 1.0 and np.any(xa)
    c = cf.make_film([sources], tmp_path / "c", **{**kw, "seed": 4})
    assert not np.array_equal(_read(a[0])[1], _read(c[0])[1])


def test_film_sound_is_the_voice_of_its_pictures(sources: Path, tmp_path: Path) -> None:
    (path,) = cf.make_film([sources], tmp_path, minutes=0.1, seed=8, reel_seconds=(6.0, 6.0))
    with MediaReader(path) as r:
        frames = [(t, px[0]) for kind, t, px in r.decode(size=(64, 64), channels=1)]
    idx = cf.brain_ticks([t for t, _ in frames])
    _, audio, _ = _read(path)
    assert abs(audio.size - idx.size * HOP) <= HOP
    again = cf.design_sound(np.stack([frames[i][1] for i in idx]))
    la, lb = _windows_db(audio), _windows_db(again)
    n = min(la.size, lb.size)
    assert np.max(np.abs(np.maximum(la[:n], -80) - np.maximum(lb[:n], -80))) < 3.0


def test_film_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ParamError, match="minutes"):
        cf.make_film([tmp_path], tmp_path / "o", minutes=0, seed=0)
    with pytest.raises(ParamError, match="sources"):
        cf.make_film([tmp_path], tmp_path / "o", minutes=1, seed=0)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture")
    with pytest.raises(MediaError, match="bad.png"):
        cf.make_film([bad], tmp_path / "o", minutes=1, seed=0)
    with pytest.raises(MediaError, match="no such"):
        cf.make_film([tmp_path / "missing"], tmp_path / "o", minutes=1, seed=0)
    assert not (tmp_path / "o").exists()


def test_tool_bad_input_is_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "make_camfilm.py"), "--sources",
                        str(tmp_path), "-o", str(tmp_path / "o"), "--minutes", "-1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "--minutes -1.0 must be" in r.stderr
