"""A film whose sound runs freely: nothing in it is phase-locked to the frames.

The demo's training film (``tools/make_film.py``) sounds only multiples of the frame rate,
so that a waveform brain can learn it. A real soundtrack is not like that, and this film
is the test bench of brains that learn what a real one is like (issue 13): a few objects
move on smooth random paths over a textured grey background with mild camera noise, and
each drives one sound whose parameters follow what is seen:

- a **tone object** (a disc, a bar) sounds harmonic partials (``PARTIALS``) whose
  fundamental follows its height, ``F_LO`` at the bottom to ``F_HI`` at the top on a log
  scale; the height glides continuously, and every partial's phase is the integral of its
  instantaneous frequency, sample by sample, so no partial is locked to the frame clock;
- a **noise object** (a square) sounds band-passed noise whose centre follows its
  horizontal position, ``NB_LO`` at the left edge to ``NB_HI`` at the right (log scale);
- **loudness** follows what is seen: ``A * b * sqrt(r / R_MAX) * v`` with ``b`` the
  object's brightness, ``r`` its size and ``v`` the share of it inside the picture.
  Objects leave the picture and come back (they drift out on their nearest side), and
  every ``SILENCE_EVERY`` seconds or so all of them leave together: the sound is then
  exactly silent.

Every parameter is a uniform cubic B-spline through random control points (``STEP``
seconds apart), evaluated at each sample for the sound and at each tick for the pictures:
the same curve, so the sound follows the picture within a sample. Everything is drawn from
``numpy.random.default_rng(seed)``: one seed, one film, bit for bit.

:func:`write_free_film` writes it (H.264 pictures, FLAC sound at ``SAMPLE_RATE``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.data.clips import write_clip
from liveframe.errors import ParamError
from liveframe.util.files import atomic_path

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

SIZE = (160, 120)
"""Picture (width, height)."""

OBJECTS = (("disc", "tone"), ("bar", "tone"), ("square", "noise"))
"""Each object's shape and the sound it drives."""

F_LO, F_HI = 110.0, 880.0
"""Fundamental (Hz) of a tone object at the bottom and at the top of the picture."""

PARTIALS = (1.0, 0.5, 0.33, 0.25)
"""Relative amplitude of harmonics 1, 2, 3, 4 of a tone object's fundamental."""

NB_LO, NB_HI = 300.0, 4000.0
"""Centre (Hz) of a noise object's band at the left and at the right edge."""

NB_WIDTH = 0.2
"""Standard deviation (octaves) of a noise band's Gaussian spectral shape."""

A_TONE, A_NOISE = 0.12, 0.08
"""Amplitude of a tone object's fundamental, and RMS of a noise object's band, when it is
full white, of radius ``R_MAX`` and wholly in the picture."""

R_MIN, R_MAX = 0.06, 0.16
"""Object size range (half height of a disc or square, fraction of the picture height)."""

B_MIN = 0.5
"""Dimmest object (grey level 0..1); the background is darker (``BG_LEVEL``)."""

Y_RANGE = (0.12, 0.88)
"""Heights (0 bottom, 1 top) between which control points of a path are drawn."""

X_IN = (0.15, 0.85)
"""Horizontal positions of control points while an object is in the picture."""

X_OUT = 0.9
"""How far beyond an edge (fraction of the width) an object's control points lie while it
is out: the widest object (a bar) is then wholly outside."""

STEP = (0.8, 1.6)
"""Range of the seconds between two control points of an object's paths."""

RUN_IN, RUN_OUT = (4, 12), (1, 3)
"""Control points an object stays in, then out, of the picture (uniform, end excluded)."""

SILENCE_EVERY, SILENCE_LENGTH = (15.0, 30.0), (1.0, 2.5)
"""Seconds between the starts of the stretches where every object is out, and their
length."""

BG_LEVEL, BG_TEXTURE, BG_NOISE = 0.25, 0.06, 2.0
"""Background mean grey (0..1), its texture's amplitude (0..1), and the camera noise (grey
levels, standard deviation, drawn anew each frame)."""

NOISE_FFT = 1024
"""Frame of the noise bands' time-varying filter (Hann, hop a quarter)."""


@dataclass(frozen=True)
class FreeObject:
    """One object: its look, its sound and the control points of its paths.

    Control point ``j`` of every path belongs to time ``(j - 1) * step`` seconds.
    """

    shape: str
    sound: str
    step: float
    x: F64
    y: F64
    r: F64
    b: F64
    phase: float

    def at(self, t: F64) -> tuple[F64, F64, F64, F64]:
        """Centre x, y (0..1, y up), size r and brightness b at times ``t`` (seconds)."""
        i, w = _basis(self.step, t, self.x.shape[0])
        x, y, r, b = (sum(w[q] * c[i + q] for q in range(4)) for c in (self.x, self.y, self.r,
                                                                        self.b))
        return x, y, r, b

    def half_size(self, r: F64, aspect: float) -> tuple[F64, F64]:
        """Half width and half height (fractions of the picture) at size ``r``.

        ``aspect`` is the picture's width over its height.
        """
        if self.shape == "bar":
            return 2.5 * r / aspect, 0.35 * r
        return r / aspect, r


@dataclass(frozen=True)
class FreeFilm:
    """What :func:`write_free_film` wrote."""

    path: Path
    seconds: float
    ticks: int
    rms: float
    peak: float
    silent_ticks: int


def _basis(step: float, t: F64, n: int) -> tuple[npt.NDArray[np.int64], list[F64]]:
    """First control point and the four weights of a uniform cubic B-spline at ``t``.

    Point ``j`` belongs to time ``(j - 1) * step``; the curve is smooth (two continuous
    derivatives), never outside its points' range, and its ends are held. Evaluated at any
    times ``t`` (seconds), so the sound (every sample) and the pictures (every tick) read the
    same curve.
    """
    u = np.asarray(t, np.float64) / step
    i = np.clip(np.floor(u).astype(np.int64), 0, n - 4)
    f = np.clip(u - i, 0.0, 1.0)
    f2, f3 = f * f, f * f * f
    return i, [(1 - f) ** 3 / 6, (3 * f3 - 6 * f2 + 4) / 6, (-3 * f3 + 3 * f2 + 3 * f + 1) / 6,
               f3 / 6]


def _silences(seconds: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Stretches (start, stop in seconds) where every object is out of the picture."""
    out: list[tuple[float, float]] = []
    t = rng.uniform(*SILENCE_EVERY) / 2
    while t < seconds:
        out.append((t, t + rng.uniform(*SILENCE_LENGTH)))
        t += rng.uniform(*SILENCE_EVERY)
    return out


def _in_picture(n: int, step: float, silences: list[tuple[float, float]],
                rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    """Whether each of ``n`` control points is in the picture: runs in and out, and out
    around every silence: the two middle points of the four a time depends on (the outer
    two weigh 1/6 at most together, too little to bring an object in from ``X_OUT``)."""
    inside = np.zeros(n, bool)
    j = 0
    while j < n:
        k = int(rng.integers(*RUN_IN))
        inside[j : j + k] = True
        j += k + int(rng.integers(*RUN_OUT))
    for t0, t1 in silences:  # the two middle points of every time in the stretch: enough
        lo, hi = int(np.floor(t0 / step)) + 1, int(np.floor(t1 / step)) + 2
        inside[max(lo, 0) : min(hi + 1, n)] = False
    return inside


def _x_path(inside: npt.NDArray[np.bool_], rng: np.random.Generator) -> F64:
    """Control points of x: random in ``X_IN`` while in; ``X_OUT`` beyond the edge
    nearest to the last point in while out (one side for the whole run)."""
    x = rng.uniform(*X_IN, inside.shape[0])
    last = 0.5
    for j in range(inside.shape[0]):
        if inside[j]:
            last = float(x[j])
        else:
            x[j] = -X_OUT if last < 0.5 else 1.0 + X_OUT
    return x


def scene(seconds: float, seed: int, *, objects: tuple[tuple[str, str], ...] = OBJECTS
          ) -> list[FreeObject]:
    """Draw the film's objects and their paths.

    Parameters
    ----------
    seconds : float
        Length of the film; the paths reach a little beyond it.
    seed : int
        Seed of ``numpy.random.default_rng``.
    objects : tuple of (shape, sound)
        Shapes ``disc``, ``bar``, ``square``; sounds ``tone``, ``noise``.
    """
    if not np.isfinite(seconds) or seconds <= 0:
        raise ParamError("seconds", seconds, "must be a positive number")
    for shape, sound in objects:
        if shape not in ("disc", "bar", "square") or sound not in ("tone", "noise"):
            raise ParamError("objects", (shape, sound), "must be a disc, bar or square "
                             "sounding a tone or noise")
    rng = np.random.default_rng(seed)
    silences = _silences(seconds, rng)
    out = []
    for shape, sound in objects:
        step = float(rng.uniform(*STEP))
        n = int(np.ceil(seconds / step)) + 5
        inside = _in_picture(n, step, silences, rng)
        out.append(FreeObject(
            shape, sound, step, _x_path(inside, rng), rng.uniform(*Y_RANGE, n),
            rng.uniform(R_MIN, R_MAX, n), rng.uniform(B_MIN, 1.0, n),
            float(rng.uniform(0, 2 * np.pi))))
    return out


def visible(obj: FreeObject, t: F64, *, aspect: float = SIZE[0] / SIZE[1]) -> F64:
    """Share (0..1) of the object's bounding box inside the picture at times ``t``."""
    x, y, r, _ = obj.at(t)
    return _share(obj, x, y, r, aspect)


def _share(obj: FreeObject, x: F64, y: F64, r: F64, aspect: float) -> F64:
    hw, hh = obj.half_size(r, aspect)

    def share(c: F64, h: F64) -> F64:
        return np.clip(np.minimum(c + h, 1.0) - np.maximum(c - h, 0.0), 0.0, None) / (2 * h)

    return share(x, hw) * share(y, hh)


def loudness(obj: FreeObject, t: F64, *, aspect: float = SIZE[0] / SIZE[1]) -> F64:
    """The object's amplitude at times ``t``: ``A * b * sqrt(r / R_MAX) * visible``."""
    return _loudness(obj, *obj.at(t), aspect)


def _loudness(obj: FreeObject, x: F64, y: F64, r: F64, b: F64, aspect: float) -> F64:
    a = A_TONE if obj.sound == "tone" else A_NOISE
    return a * b * np.sqrt(np.clip(r, 0, None) / R_MAX) * _share(obj, x, y, r, aspect)


def fundamental(y: F64) -> F64:
    """A tone object's fundamental (Hz) at height ``y`` (0 bottom, 1 top), log scale."""
    return F_LO * (F_HI / F_LO) ** np.asarray(y, np.float64)


def band_centre(x: F64) -> F64:
    """A noise object's band centre (Hz) at horizontal position ``x`` (clipped to 0..1)."""
    return NB_LO * (NB_HI / NB_LO) ** np.clip(np.asarray(x, np.float64), 0.0, 1.0)


def _tone(obj: FreeObject, y: F64, sr: int) -> F64:
    """Harmonic partials whose phase integrates the gliding fundamental sample by sample
    (``y``: the object's height at every sample)."""
    f0 = fundamental(y)
    phase = obj.phase + 2 * np.pi * np.cumsum(f0) / sr
    out = np.zeros_like(y)
    for k, a in enumerate(PARTIALS, start=1):
        out += a * np.sin(k * phase) * (k * f0 < 0.45 * sr)
    return out


def _noise_band(obj: FreeObject, n: int, sr: int, rng: np.random.Generator) -> F64:
    """Unit-RMS white noise filtered by a Gaussian band (in log frequency) whose centre
    follows the object's x: Hann-windowed frames at a quarter hop, filtered, overlap-added."""
    N, hop = NOISE_FFT, NOISE_FFT // 4
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N) / N)
    frames = n // hop + 5  # frame m starts at time (m * hop - N) / sr
    noise = rng.standard_normal((frames + 3) * hop)
    octs = np.log2(np.maximum(np.fft.rfftfreq(N, 1 / sr), 1.0))
    blocks = np.zeros((frames + 3, hop))
    for lo in range(0, frames, 512):
        m = np.arange(lo, min(lo + 512, frames))
        centre = band_centre(obj.at((m * hop - N / 2) / sr)[0])
        mask = np.exp(-0.5 * ((octs[None, :] - np.log2(centre)[:, None]) / NB_WIDTH) ** 2)
        mask /= np.sqrt(np.mean(mask**2, axis=1, keepdims=True))
        seg = noise[(m * hop)[:, None] + np.arange(N)[None, :]] * w
        y = np.fft.irfft(np.fft.rfft(seg, axis=1) * mask, n=N, axis=1) * w
        for q in range(4):  # frames of one chunk never share a block at the same q
            blocks[m + q] += y[:, q * hop : (q + 1) * hop]
    # periodic Hann squared sums to 1.5 at a quarter hop, from sample N on
    return blocks.reshape(-1)[N : N + n] / 1.5


def soundtrack(objects: list[FreeObject], seconds: float, *, seed: int,
               sr: int = C.SAMPLE_RATE, size: tuple[int, int] = SIZE) -> F32:
    """The film's sound: ``round(seconds * sr)`` float32 samples, sample 0 at time 0.

    Parameters
    ----------
    objects : list of FreeObject
        From :func:`scene`.
    seconds : float
    seed : int
        Seed of the noise bands' noise.
    sr : int
        Sample rate in Hz.
    size : (int, int)
        Picture (width, height): its aspect decides what share of an object is seen.
    """
    if sr <= 0:
        raise ParamError("sr", sr, "must be a positive integer")
    n = round(seconds * sr)
    t = np.arange(n, dtype=np.float64) / sr
    rng = np.random.default_rng([seed, 0x5EED])
    out = np.zeros(n)
    aspect = size[0] / size[1]
    for obj in objects:
        x, y, r, b = obj.at(t)
        amp = _loudness(obj, x, y, r, b, aspect)
        if obj.sound == "tone":
            out += amp * _tone(obj, y, sr)
        else:
            out += amp * _noise_band(obj, n, sr, rng)
    return out.astype(np.float32)


def _background(size: tuple[int, int], rng: np.random.Generator) -> F64:
    """A fixed texture (grey levels): two gratings and a blurred random field."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    g = np.sin(2 * np.pi * (xx * rng.uniform(0.02, 0.05) + yy * rng.uniform(0.01, 0.04)))
    g += 0.5 * np.sin(2 * np.pi * (xx * rng.uniform(-0.06, 0.06) + yy * rng.uniform(0.05, 0.1)))
    field = rng.standard_normal((h, w))
    for axis in (0, 1):  # a 9-pixel box blur, twice
        for _ in range(2):
            field = sum(np.roll(field, s, axis=axis) for s in range(-4, 5)) / 9.0
    tex = g / 1.5 + field / (np.std(field) + 1e-12) / 2
    return 255.0 * (BG_LEVEL + BG_TEXTURE * tex)


def pictures(objects: list[FreeObject], ticks: int, *, fps: float = C.FPS,
             size: tuple[int, int] = SIZE, seed: int = 0) -> Iterator[U8]:
    """One grey (H, W) uint8 picture per tick ``k`` (time ``k / fps``), anti-aliased."""
    w, h = size
    rng = np.random.default_rng([seed, 0xF11])
    bg = _background(size, rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    t = np.arange(ticks, dtype=np.float64) / fps
    paths = [(o, *o.at(t)) for o in objects]
    for k in range(ticks):
        pic = bg + rng.normal(0.0, BG_NOISE, (h, w))
        for o, x, y, r, b in paths:
            hw, hh = o.half_size(r[k], w / h)
            cx, cy, rx, ry = x[k] * w, (1.0 - y[k]) * h, hw * w, hh * h
            if o.shape == "disc":
                cov = np.clip(rx - np.hypot(xx - cx, yy - cy) + 0.5, 0.0, 1.0)
            else:
                cov = (np.clip(rx - np.abs(xx - cx) + 0.5, 0.0, 1.0)
                       * np.clip(ry - np.abs(yy - cy) + 0.5, 0.0, 1.0))
            pic = pic * (1 - cov) + 255.0 * b[k] * cov
        yield np.clip(np.rint(pic), 0, 255).astype(np.uint8)


def write_free_film(path: str | os.PathLike[str], seconds: float, *, seed: int,
                    fps: float = C.FPS, size: tuple[int, int] = SIZE,
                    sr: int = C.SAMPLE_RATE) -> FreeFilm:
    """Write a free-phase film (Matroska: H.264 grey pictures, FLAC sound at ``sr``).

    Parameters
    ----------
    path : path-like
        ``.mkv``; written to a temporary name and renamed at the end.
    seconds : float
        Length; ``round(seconds * fps)`` pictures and ``round(seconds * sr)`` samples.
    seed : int
        Same seed, same film.
    fps : float
        Frame rate.
    size : (int, int)
        Picture (width, height), both even.
    sr : int
        Sample rate of the soundtrack.

    Returns
    -------
    FreeFilm
        Duration, ticks, the soundtrack's RMS and peak, and the ticks where nothing is seen.
    """
    if fps <= 0 or not np.isfinite(fps):
        raise ParamError("fps", fps, "must be a positive number")
    if size[0] < 8 or size[1] < 8 or size[0] % 2 or size[1] % 2:
        raise ParamError("size", size, "must be two even numbers of at least 8")
    path = Path(path)
    objs = scene(seconds, seed)
    ticks = round(seconds * fps)
    audio = soundtrack(objs, seconds, seed=seed, sr=sr, size=size)
    t = np.arange(ticks, dtype=np.float64) / fps
    seen = sum(visible(o, t, aspect=size[0] / size[1]) for o in objs)
    frames = ((k / fps, pic) for k, pic in
              enumerate(pictures(objs, ticks, fps=fps, size=size, seed=seed)))
    with atomic_path(path) as tmp:
        write_clip(tmp, frames, audio=audio, sr=sr, fps=fps, size=size)
    a64 = audio.astype(np.float64)
    return FreeFilm(path, ticks / fps, ticks, float(np.sqrt(np.mean(a64**2))) if a64.size
                    else 0.0, float(np.max(np.abs(a64))) if a64.size else 0.0,
                    int(np.sum(np.asarray(seen) == 0)))
