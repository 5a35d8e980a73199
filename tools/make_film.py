"""Generate the training film of the default brain, and the demo clip, reproducibly.

``python tools/make_film.py OUT.mkv [--seconds S] [--seed N]`` writes a Matroska clip
(H.264 pictures, lossless FLAC sound at the brain rate) of visual events paired with
synthesised sounds:

- shapes (discs and squares) appear, move, grow and brighten at different heights on a
  black screen, **one at a time**; each sounds while it is visible; a shape rests (holds
  its height) near the middle of a pitch band and crosses band edges only while it moves;
- **loudness** follows brightness and size: amplitude ``A = A_MAX * b * sqrt(r / R_MAX)``
  (``b`` in [0, 1] the shape's grey level, ``r`` its radius as a fraction of the picture
  height), times :func:`fret_gain`, which silences a shape on the edge between two pitch
  bands (``FRET``);
- **pitch** follows height: the heights ``Y_LO`` to ``Y_HI`` are cut into ``len(LADDER)``
  equal bands, bottom to top, and a shape whose centre is in band ``i`` sounds harmonic
  ``m = LADDER[i]`` of the frame rate, i.e. ``m * 30`` Hz: 240, 360, 480, 720 or 960 Hz
  (see :func:`harmonic`, :func:`pitch_hz`); the sound is that **one sinusoid**, nothing
  else;
- loudness changes are smooth: shapes fade in and out (0.2 to 0.8 s, smoothstep) and every
  brightness or size change is eased;
- blank stretches (black, white, flat grey, with or without camera-like noise) are silent.

Why only multiples of the frame rate: a brain regresses each tick's grain (the audio
centred on the tick) from one picture with a mean-squared error. A sound whose phase
relative to the tick is random has a best MSE prediction of zero: the brain would learn
silence. A partial at ``m * fps`` Hz has the same phase at every tick, so the same picture
always maps to the same grain and a small dense net can learn it.

Why one sinusoid and one shape at a time: two partials at multiples of the frame rate beat
at a multiple of the frame rate, so a richer sound (harmonics, chords) has a power envelope
that is itself modulated at 30 Hz, and no synthesis mode could be told apart from the
content by ``frame_artifact_db``. A lone sinusoid with a smooth amplitude has a flat
envelope. Its sign is ``(-1)**m`` (:func:`partial`): then every harmonic has phase 0 half
way between two ticks, where overlapping grains of neighbouring pitches (a shape moving up)
cross-fade, so a pitch step fades through instead of cancelling in the middle of the hop.

The soundtrack is continuous in time, as a real film's is (:func:`soundtrack`): each
sinusoid's amplitude follows a smooth curve (a cubic B-spline) through its per-tick values,
so nothing in the sound happens at the frame rate.

Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed gives the same
pictures and the same samples.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from liveframe import constants as C
from liveframe.data.clips import write_clip

log = logging.getLogger("make_film")

SIZE = (160, 120)
"""Picture (width, height) of the film; the brain sees it scaled to 64x64."""

LADDER = (8, 12, 16, 24, 32)
"""Harmonic numbers of the frame rate, one per height band, bottom to top (240-960 Hz).

Five wide bands rather than every harmonic from 8 to 32: a brain regressing grains
averages the grains of neighbouring pitches where it is unsure of a shape's band, and
two averaged partials beat at the frame rate. Wide bands (about 10 of the 64 rows the
brain sees) keep it sure, and a moving shape steps pitch rarely.
"""

FRET = (0.03, 0.055)
"""A shape whose centre is within ``FRET[0]`` (fraction of the picture height) of the edge
between two pitch bands is silent, and it fades back in (smoothstep) up to ``FRET[1]``:
a rising shape sounds a scale of separate notes. A brain cannot place a shape exactly on
an edge; unsure there, it plays both pitches at once, which beat at the frame rate; with
the frets such a mixture is near silent."""

EDGE_REST = 0.15
"""Share of resting heights drawn on a fret (the shape is then silent there)."""

INTRO_RISE = 3.0
"""Seconds the demo's opening disc takes from the bottom to the top (through every note)."""
INTRO_SINK = True
"""Whether a grey square then sinks back down before the random events."""

M_LO, M_HI = LADDER[0], LADDER[-1]
"""Harmonic numbers at the bottom and the top: 240 Hz and 960 Hz."""

Y_LO, Y_HI = 0.12, 0.88
"""Heights (fraction of the picture, 0 = bottom) where the bottom and top bands begin and
end; heights outside are clipped into them."""

R_MIN, R_MAX = 0.04, 0.14
"""Shape radius range, as a fraction of the picture height."""

A_MAX = 0.3
"""Amplitude of the sinusoid of a full-white shape of radius ``R_MAX``."""

FADE = (0.2, 0.8)
"""Range of a shape's fade-in and fade-out, seconds (smoothstep, never a cut)."""


def harmonic(
    y: float | npt.NDArray[np.floating], *, ladder: tuple[int, ...] = LADDER
) -> npt.NDArray[np.int64]:
    """Harmonic number of the frame rate sounded by a shape centred at height ``y``.

    Parameters
    ----------
    y : float or ndarray
        Height of the shape's centre, 0 at the bottom of the picture, 1 at the top.
    ladder : tuple of int
        Harmonic of each of the equal height bands between ``Y_LO`` and ``Y_HI``.
    """
    u = np.clip((np.asarray(y, dtype=np.float64) - Y_LO) / (Y_HI - Y_LO), 0.0, 1.0)
    band = np.minimum((u * len(ladder)).astype(np.int64), len(ladder) - 1)
    return np.asarray(ladder, np.int64)[band]


def fret_gain(y: float | npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Loudness factor of a shape centred at height ``y``: 0 on a band edge, 1 from
    ``FRET[1]`` away from it (see ``FRET``); the bottom and top of the range have no edge."""
    width = (Y_HI - Y_LO) / len(LADDER)
    edges = Y_LO + width * np.arange(1, len(LADDER))
    y = np.asarray(y, np.float64)
    d = np.min(np.abs(y[..., None] - edges), axis=-1)
    t = np.clip((d - FRET[0]) / (FRET[1] - FRET[0]), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def pitch_hz(y: float, *, fps: float = C.FPS) -> float:
    """Fundamental frequency in Hz of a shape centred at height ``y`` (0 bottom, 1 top)."""
    return float(harmonic(y)) * fps


def partial(m: int, n: npt.NDArray[np.floating], *, fps: float = C.FPS) -> npt.NDArray[np.float64]:
    """The sinusoid of harmonic ``m`` at times ``n`` (seconds from a tick): ``(-1)**m sin``.

    The sign puts every harmonic at phase 0 half way between ticks (see the module notes).
    """
    return (-1.0) ** int(m) * np.sin(2 * np.pi * int(m) * fps * np.asarray(n, np.float64))


def amplitude(
    brightness: float | npt.NDArray[np.floating], radius: float | npt.NDArray[np.floating]
) -> npt.NDArray[np.float64]:
    """Amplitude of a shape's sinusoid: ``A_MAX * brightness * sqrt(radius / R_MAX)``."""
    b = np.clip(np.asarray(brightness, np.float64), 0.0, 1.0)
    r = np.clip(np.asarray(radius, np.float64), 0.0, None)
    return A_MAX * b * np.sqrt(r / R_MAX)


@dataclass
class Track:
    """One shape's life: per-tick centre (x, y in [0, 1], y up), radius and brightness."""

    kind: str
    start: int
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    r: npt.NDArray[np.float64]
    b: npt.NDArray[np.float64]

    @property
    def stop(self) -> int:
        return self.start + len(self.x)


@dataclass
class Blank:
    """A silent stretch: a flat picture at ``level`` (0 black .. 1 white) with ``noise``."""

    start: int
    stop: int
    level: float
    noise: float


def _ease(
    n: int, a: float, b: float, rng: np.random.Generator, *, wobble: bool = True
) -> npt.NDArray[np.float64]:
    """n values from a to b along a random easing (linear, smoothstep or a wobble)."""
    t = np.linspace(0.0, 1.0, n)
    kind = rng.integers(0, 3 if wobble else 2)
    if kind == 1:
        t = t * t * (3 - 2 * t)
    v = a + (b - a) * t
    if kind == 2:
        v = v + rng.uniform(0.03, 0.12) * np.sin(
            2 * np.pi * rng.uniform(0.3, 1.5) * np.linspace(0, n / C.FPS, n)
        )
    return v


def _smoothstep(n: int) -> npt.NDArray[np.float64]:
    t = np.linspace(0.0, 1.0, n + 2)[1:-1]
    return t * t * (3 - 2 * t)


def _envelope(n: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Appear, hold, disappear: smoothstep fades of ``FADE`` seconds, at most n/3 each."""
    env = np.ones(n)
    for side in (0, 1):
        k = min(int(rng.uniform(*FADE) * C.FPS), n // 3)
        if k > 0:
            ramp = _smoothstep(k)
            if side == 0:
                env[:k] *= ramp
            else:
                env[n - k :] *= ramp[::-1]
    return env


def band_centre(i: int | npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:
    """Height of the middle of pitch band ``i`` (0 = bottom band, ``len(LADDER) - 1`` top)."""
    return Y_LO + (np.asarray(i, np.float64) + 0.5) * (Y_HI - Y_LO) / len(LADDER)


def _resting_height(rng: np.random.Generator) -> float:
    """Where a shape rests: near the middle of a random pitch band (within 0.08 of its
    width, clear of the frets), so a held shape is never ambiguous between two pitches, or
    (a share ``EDGE_REST`` of shapes) silent on a fret, so that a brain learns the frets
    as sharply as the notes."""
    width = (Y_HI - Y_LO) / len(LADDER)
    if rng.random() < EDGE_REST:
        edge = Y_LO + width * rng.integers(1, len(LADDER))
        return float(edge + rng.uniform(-FRET[0], FRET[0]))
    return float(band_centre(rng.integers(0, len(LADDER))) + rng.uniform(-0.08, 0.08) * width)


def _track(start: int, n: int, rng: np.random.Generator) -> Track:
    static = rng.random() < 0.3
    level = rng.random() < 0.4  # moves sideways only: one pitch throughout
    x0, x1 = rng.uniform(0.12, 0.88, 2)
    y0, y1 = _resting_height(rng), _resting_height(rng)
    if static:
        x1, y1 = x0, y0
    elif level:
        y1 = y0
    r0, r1 = rng.uniform(R_MIN, R_MAX, 2)
    if rng.random() < 0.4:
        r1 = r0
    b0, b1 = rng.uniform(0.2, 1.0, 2)
    if rng.random() < 0.4:
        b1 = b0
    y = np.clip(_ease(n, y0, y1, rng, wobble=False), 0.05, 0.95)
    x = np.clip(_ease(n, x0, x1, rng), 0.05, 0.95)
    r = np.clip(_ease(n, r0, r1, rng), R_MIN * 0.5, R_MAX)
    b = np.clip(_ease(n, b0, b1, rng), 0.0, 1.0) * _envelope(n, rng)
    kind = "disc" if rng.random() < 0.6 else "square"
    return Track(kind, start, x, y, r, b)


def score(
    seconds: float, seed: int, *, fps: float = C.FPS, intro: bool = False
) -> tuple[int, list[Track], list[Blank]]:
    """Draw the film's events: one shape at a time, or a silent flat stretch.

    ``intro`` (the demo clip) opens with a second of black, then a white disc fading in at
    the bottom and rising to the top, and a grey square sinking back, before the random
    events.

    Returns
    -------
    ticks : int
    tracks : list of Track
        Shapes on a black screen, never two at once.
    blanks : list of Blank
        Silent flat stretches (no shape in them).
    """
    rng = np.random.default_rng(seed)
    total = round(seconds * fps)
    tracks: list[Track] = []
    blanks: list[Blank] = []
    t = 0
    if intro:
        n = round(INTRO_RISE * fps)
        blanks.append(Blank(0, round(fps), 0.0, 0.0))
        up = np.linspace(0.1, 0.9, n)
        fade = np.ones(n)
        k = round(0.3 * fps)
        fade[:k], fade[n - k :] = _smoothstep(k), _smoothstep(k)[::-1]
        tracks.append(Track("disc", round(fps), np.full(n, 0.3), up, np.full(n, 0.1), fade))
        t = round(fps) + n
        if INTRO_SINK:
            tracks.append(Track("square", t, np.linspace(0.3, 0.7, n), up[::-1],
                                np.full(n, 0.08), 0.7 * fade))  # fmt: skip
            t += n
    while t < total:
        n = min(int(rng.uniform(1.0, 4.0) * fps), total - t)
        if rng.random() < 0.2:
            level = float(rng.choice([0.0, 0.0, 1.0, rng.uniform(0.05, 0.95)]))
            noise = float(rng.uniform(0, 4)) if rng.random() < 0.5 else 0.0
            blanks.append(Blank(t, t + n, level, noise))
        else:
            tracks.append(_track(t, n, rng))
        t += n
    return total, tracks, blanks


def _bspline(v: npt.NDArray[np.float64], step: int) -> npt.NDArray[np.float64]:
    """Uniform cubic B-spline with control points ``v[j]`` at sample ``j * step``:
    ``len(v) * step`` samples, smooth (two continuous derivatives) and never outside its
    points' range (a positive blend of four neighbours, so a level that eases into a
    plateau never overshoots it and a silent shape stays silent). It passes near, not
    through, the points: ``(v[j-1] + 4 v[j] + v[j+1]) / 6`` at ``j``. The ends are held."""
    v = np.asarray(v, np.float64)
    p = np.concatenate([v[:1], v, v[-1:], v[-1:]])
    u = (np.arange(step, dtype=np.float64) / step)[None, :]
    w0, w3 = (1 - u) ** 3 / 6, u**3 / 6
    w1, w2 = (3 * u**3 - 6 * u**2 + 4) / 6, (-3 * u**3 + 3 * u**2 + 3 * u + 1) / 6
    c = w0 * p[:-3, None] + w1 * p[1:-2, None] + w2 * p[2:-1, None] + w3 * p[3:, None]
    return c.reshape(-1)


def soundtrack(
    ticks: int, tracks: list[Track], *, sr: int = C.SAMPLE_RATE, fps: float = C.FPS
) -> npt.NDArray[np.float32]:
    """The film's sound, continuous in time as a real film's is: ``ticks * H`` samples.

    Each shape sounds one sinusoid per pitch it takes (:func:`partial`, the harmonic of its
    height, phase-locked to the brain clock). The sinusoid's amplitude is a smooth curve (a
    cubic B-spline) through the shape's amplitude at every tick (:func:`amplitude` times
    :func:`fret_gain`, zero at the ticks where the shape has another pitch), so loudness moves
    smoothly between ticks and nothing in the sound happens at the frame rate: a shape that
    changes pitch crosses a silent fret, and where it skips one between two ticks the two
    partials cross-fade over that tick.

    The film's sound used to be built the way a perfect grain brain plays: one Hann-windowed
    grain per tick, overlap-added. That bakes the grain framing into the film: wherever
    loudness moves, the Hann cross-fade between two ticks' amplitudes bends the level
    once per tick, and the demo's own soundtrack read 7.5 dB in ``frame_artifact_db``.
    Continuous, it reads below 0 dB, and a grain brain is judged against a soundtrack that,
    like a real film's, knows nothing of the frame rate.
    """
    H = round(sr / fps)
    if abs(sr / fps - H) > 1e-9:
        raise ValueError(f"sr={sr} / fps={fps} must be a whole number of samples")
    out = np.zeros(ticks * H, np.float64)
    for tr in tracks:
        ms = harmonic(tr.y)
        amps = amplitude(tr.b, tr.r) * fret_gain(tr.y)
        n = min(len(tr.x), ticks - tr.start)
        if n <= 0:
            continue
        for m in np.unique(ms[:n]):
            # this partial's amplitude at the track's ticks, with two silent ticks either
            # side (the B-spline reaches one tick out): a[j] is tick tr.start - 2 + j
            a = np.zeros(n + 4, np.float64)
            a[2 : n + 2] = np.where(ms[:n] == m, amps[:n], 0.0)
            if not a.any():
                continue
            env = _bspline(a, H)
            first = (tr.start - 2) * H  # the sample of a[0]
            lo, hi = max(first, 0), min(first + env.shape[0], ticks * H)
            if hi <= lo:
                continue
            t = np.arange(lo, hi, dtype=np.float64) / sr
            out[lo:hi] += env[lo - first : hi - first] * partial(int(m), t, fps=fps)
    return out.astype(np.float32)


def _coverage(dist: npt.NDArray[np.float64], radius: float) -> npt.NDArray[np.float64]:
    return np.clip(radius - dist + 0.5, 0.0, 1.0)


def pictures(
    ticks: int,
    tracks: list[Track],
    blanks: list[Blank],
    *,
    size: tuple[int, int] = SIZE,
    seed: int = 0,
) -> Iterator[npt.NDArray[np.uint8]]:
    """One grey (H, W) uint8 picture per tick, drawn with anti-aliased edges."""
    w, h = size
    rng = np.random.default_rng(seed + 7919)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    by_tick: dict[int, list[tuple[Track, int]]] = {}
    for tr in tracks:
        for i in range(len(tr.x)):
            by_tick.setdefault(tr.start + i, []).append((tr, i))
    blank_of = np.full(ticks, -1)
    for j, bl in enumerate(blanks):
        blank_of[bl.start : min(bl.stop, ticks)] = j
    for k in range(ticks):
        if blank_of[k] >= 0:
            bl = blanks[blank_of[k]]
            pic = np.full((h, w), bl.level * 255.0)
            if bl.noise > 0:
                pic += rng.normal(0.0, bl.noise, (h, w))
        else:
            pic = np.zeros((h, w))
            for tr, i in by_tick.get(k, ()):
                cx, cy = tr.x[i] * w, (1.0 - tr.y[i]) * h
                rad = tr.r[i] * h
                if tr.kind == "disc":
                    d = np.hypot(xx + 0.5 - cx, yy + 0.5 - cy)
                else:
                    d = np.maximum(np.abs(xx + 0.5 - cx), np.abs(yy + 0.5 - cy))
                np.maximum(pic, 255.0 * tr.b[i] * _coverage(d, rad), out=pic)
        yield np.clip(np.rint(pic), 0, 255).astype(np.uint8)


def make_film(
    path: str | os.PathLike[str],
    *,
    seconds: float,
    seed: int,
    size: tuple[int, int] = SIZE,
    sr: int = C.SAMPLE_RATE,
    fps: float = C.FPS,
    intro: bool = False,
) -> Path:
    """Write the film to ``path`` atomically (a temporary name, renamed at the end).

    ``intro`` opens with the demo's rising disc (see :func:`score`).
    """
    path = Path(path)
    ticks, tracks, blanks = score(seconds, seed, fps=fps, intro=intro)
    audio = soundtrack(ticks, tracks, sr=sr, fps=fps)
    frames = (
        (k / fps, pic)
        for k, pic in enumerate(pictures(ticks, tracks, blanks, size=size, seed=seed))
    )
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        write_clip(tmp, frames, audio=audio, sr=sr, fps=fps, size=size)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    log.info(
        "%s: %d ticks (%.1f s), %d shapes, %d silent stretches, peak %.2f",
        path,
        ticks,
        ticks / fps,
        len(tracks),
        len(blanks),
        peak,
    )
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="output clip (.mkv)")
    p.add_argument("--seconds", type=float, default=1200.0, help="length (default 1200)")
    p.add_argument("--seed", type=int, default=2015, help="random seed (default 2015)")
    p.add_argument("--width", type=int, default=SIZE[0])
    p.add_argument("--height", type=int, default=SIZE[1])
    p.add_argument("--intro", action="store_true", help="open with the demo's rising disc")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="make_film: %(message)s")
    make_film(
        args.out,
        seconds=args.seconds,
        seed=args.seed,
        size=(args.width, args.height),
        intro=args.intro,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
