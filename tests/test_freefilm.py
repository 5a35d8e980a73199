"""The free-phase film: deterministic, not locked to the frame rate, its level follows the
picture, and it reads back as a real clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liveframe.core.media import MediaReader
from liveframe.data import freefilm as F
from liveframe.errors import ParamError

SR, FPS = 22050, 30
H = SR // FPS


def _comb_share(x: np.ndarray, *, sr: int = SR, fps: float = FPS, width: float = 1.0) -> float:
    """Share of the power (1 Hz resolution, 1 s Hann segments) within ``width`` Hz of a
    multiple of ``fps``, from 40 Hz up: 3 bins in 30, 0.1, for sound spread evenly."""
    seg = sr
    w = np.hanning(seg)
    p = sum(np.abs(np.fft.rfft(x[i : i + seg] * w)) ** 2
            for i in range(0, x.shape[0] - seg + 1, seg // 2))
    f = np.fft.rfftfreq(seg, 1 / sr)
    keep = f >= 40
    d = np.abs(f - fps * np.round(f / fps))
    return float(p[keep & (d <= width)].sum() / p[keep].sum())


def _tick_rms(x: np.ndarray, ticks: int) -> np.ndarray:
    return np.sqrt(np.mean(x[: ticks * H].astype(np.float64).reshape(ticks, H) ** 2, axis=1))


def test_same_seed_same_film_other_seed_other_film() -> None:
    a = F.soundtrack(F.scene(4.0, 7), 4.0, seed=7)
    b = F.soundtrack(F.scene(4.0, 7), 4.0, seed=7)
    c = F.soundtrack(F.scene(4.0, 8), 4.0, seed=8)
    assert a.dtype == np.float32 and a.shape == (4 * SR,)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    pa = np.stack(list(F.pictures(F.scene(4.0, 7), 20, seed=7)))
    pb = np.stack(list(F.pictures(F.scene(4.0, 7), 20, seed=7)))
    np.testing.assert_array_equal(pa, pb)
    assert pa.shape == (20, F.SIZE[1], F.SIZE[0])


def test_spectrum_is_not_on_the_frame_rate_harmonics() -> None:
    x = F.soundtrack(F.scene(20.0, 3), 20.0, seed=3)
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) > 0.01
    assert _comb_share(x) < 0.2
    # the measure can fail: the demo film's kind of sound (a partial at 8 * 30 Hz) is all
    # on the comb
    t = np.arange(x.shape[0]) / SR
    assert _comb_share(0.1 * np.sin(2 * np.pi * 240 * t)) > 0.9


def test_partials_glide_continuously_with_the_height() -> None:
    objs = [o for o in F.scene(6.0, 5) if o.sound == "tone"]
    t = np.arange(6 * SR) / SR
    f0 = F.fundamental(objs[0].at(t)[1])
    assert F.F_LO <= f0.min() and f0.max() <= F.F_HI
    assert np.max(np.abs(np.diff(f0))) < 0.05  # Hz per sample: a glide, never a step
    assert np.ptp(f0) > 20


def test_level_follows_the_picture() -> None:
    seconds, seed = 40.0, 11
    objs = F.scene(seconds, seed)
    x = F.soundtrack(objs, seconds, seed=seed)
    ticks = round(seconds * FPS)
    t = np.arange(ticks) / FPS + 0.5 / FPS  # the middle of each tick's hop
    seen = sum(F.visible(o, t) for o in objs)
    rms = _tick_rms(x, ticks)
    # a hop whose whole span has nothing in the picture is exactly silent
    edge = sum(F.visible(o, t - 0.5 / FPS) + F.visible(o, t + 0.5 / FPS) for o in objs)
    empty = (seen == 0) & (edge == 0)
    assert empty.sum() > 10, "the film should have a stretch with nothing in the picture"
    assert rms[empty].max() == 0.0
    assert np.median(rms[seen > 0.5]) > 0.01
    # and the level follows the objects' loudness
    power = sum(F.loudness(o, t) ** 2 * (np.sum(np.square(F.PARTIALS)) / 2
                                         if o.sound == "tone" else 1.0) for o in objs)
    lit = seen > 0.3
    assert np.corrcoef(np.sqrt(power[lit]), rms[lit])[0, 1] > 0.9


def test_written_film_reads_back(tmp_path: Path) -> None:
    film = F.write_free_film(tmp_path / "free.mkv", 3.0, seed=2)
    assert film.ticks == 90 and film.seconds == pytest.approx(3.0)
    true = F.soundtrack(F.scene(3.0, 2), 3.0, seed=2)
    assert film.rms == pytest.approx(np.sqrt(np.mean(true.astype(np.float64) ** 2)))
    with MediaReader(film.path, need_audio=True) as r:
        assert r.size == F.SIZE
        frames = list(r.frames(size=F.SIZE))
    with MediaReader(film.path, need_audio=True) as r:
        t0, audio = r.read_audio(sample_rate=SR)
    assert len(frames) == 90
    assert frames[1].time == pytest.approx(1 / FPS, abs=1e-3)
    assert t0 == pytest.approx(0.0, abs=1e-3)
    assert abs(audio.shape[0] - true.shape[0]) < H
    n = min(audio.shape[0], true.shape[0])
    np.testing.assert_allclose(audio[:n], true[:n], atol=1e-3)  # FLAC: lossless to 16 bits
    pics = np.stack(list(F.pictures(F.scene(3.0, 2), 90, seed=2)))
    got = np.stack([f.pixels[0] for f in frames]).astype(np.float64)
    assert np.mean(np.abs(got - pics)) < 4  # H.264 at crf 18


@pytest.mark.parametrize("kwargs", [{"seconds": 0.0}, {"seconds": float("nan")},
                                    {"seconds": 1.0, "fps": 0.0},
                                    {"seconds": 1.0, "size": (161, 120)}])
def test_bad_arguments_are_one_line_errors(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ParamError) as e:
        F.write_free_film(tmp_path / "x.mkv", seed=0, **kwargs)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "x.mkv").exists()
