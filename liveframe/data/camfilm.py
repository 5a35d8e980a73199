"""The camera film: real pictures moved like a camera, with a designed soundtrack (issue 14).

The registries hold about a minute of real film with sound, so the default brain learns
from a film whose *pictures* are real (photos and silent clips, ``../shared/FOOTAGE.md``)
and whose *sound* is designed: a musical function of what the brain sees. The mapping is
the instrument's voice; ``docs/VOICE.md`` describes it for performers.

Pictures (:func:`make_film`)
    Shots of a source picture or clip, moved like a camera: pans, zooms, a slow roll,
    handheld shake, motion blur when the camera moves fast; exposure and white-balance
    drift, stage-light flicker, sensor noise, a JPEG round trip at a random quality; things
    moving in front (dark or bright silhouettes: hands, bodies, objects crossing, at several
    heights). Shots are cut together into reels; each reel runs at one frame rate of
    :data:`RATES` or at a variable rate. Stills (a fixed picture, nothing moving), black
    stretches (a covered lens) and near-white stretches are mixed in.

Sound (:func:`design_sound`)
    Computed per brain tick from what the brain sees: the 64x64 grey picture of the tick
    and its context picture (:class:`liveframe.core.context.ContextStack` with one context
    picture, exactly as the tick pipeline builds it). Movement plays (level and onsets
    follow the motion energy), the height of the motion sets the register on a pentatonic
    scale, the picture's texture and contrast set the colour, a still picture settles to a
    quiet bed, a black one is silent. Controls are smoothed at four steps per tick and
    interpolated per sample; oscillators and noise run freely, so nothing in the sound is
    locked to the brain clock or to the source's rate.

Everything is drawn from ``numpy.random.default_rng(seed)``: one seed, one film.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.core.context import ContextStack
from liveframe.core.media import BrainClock, MediaReader
from liveframe.data.clips import write_clip
from liveframe.errors import MediaError, ParamError
from liveframe.util.files import atomic_path

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

SIZE = (256, 192)
"""Picture (width, height) of the film."""

RATES = (10, 12, 15, 24, 25, 30, 60)
"""Frame rates a reel may run at (besides a variable rate)."""

PHOTO_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
VIDEO_EXT = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v")

MAX_FRAMES = 600
"""Pictures kept in memory per reel (a 60 fps reel is at most 10 s)."""

CLIP_SHARE = 0.4
"""Share of the shots taken from clips (real movement) when photos are given too."""

VIDEO_FRAMES = 300
"""Pictures kept per source clip (decoded once, at about 1.25 times the film's size)."""

# -- the voice --------------------------------------------------------------------------

SUB = 4
"""Control steps per brain tick (envelopes and glides run at 120 Hz)."""

FUNDAMENTAL_HZ = 27.56
"""The common fundamental (a low A): every note of the voice and of the bed is one of its
harmonics, so any two notes beat only at multiples of it, and 27.56 Hz was chosen so those
stay clear (2.4 Hz or more) of k * 10, k * 25 and k * 30 Hz for the lowest multiples. No
note is a multiple of 30 Hz."""

SCALE = (4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 24, 28, 32)
"""Harmonics of :data:`FUNDAMENTAL_HZ` the motion voice plays, bottom of the picture to top:
an overtone scale over three octaves, 110 Hz (A2) to 882 Hz (A5): A C# E G(7th) in the
lowest octave, A B C# E G(7th) above (the natural horn's and overtone singer's notes)."""

BED_NOTES = (4, 6, 8, 12, 16)
"""The bed's drone, harmonics of :data:`FUNDAMENTAL_HZ`: A2 E3 A3 E4 A4 (open fifths); the
picture's brightness picks which sound."""

BED_DB = -38.0
"""Level of the bed (RMS, dBFS): a still, lit picture."""

LOUD_DB = -15.0
"""Level of the motion voice at full motion (RMS, dBFS)."""

RANGE_DB = 30.0
"""The motion voice rises from ``LOUD_DB - RANGE_DB`` to ``LOUD_DB`` as motion grows."""

MOTION_FLOOR = 2 / 255
"""Per-pixel change ignored as sensor noise and compression (of |P0 - context|)."""

M_LO, M_HI = 0.0004, 0.04
"""Motion energy (mean of ``max(|P0 - context| - MOTION_FLOOR, 0)``, pictures in [0, 1])
where the motion voice starts to sound, and where it is at full level (log scale)."""

G_LO, G_HI = 0.015, 0.2
"""Texture (mean gradient of the 64x64 picture) from pure (smooth) to bright (busy)."""

BLACK_MEAN = (3 / 255, 6 / 255)
"""Mean grey where the gate opens (fully from the second value): a covered lens is silent."""

BLACK_BLOCK = (12 / 255, 24 / 255)
"""...or the brightest 8x8 block's mean: a small light in the dark still sounds."""

ATTACK_S, RELEASE_S = 0.02, 0.22
"""Motion envelope: fast attack, slower release (a still picture is quiet within 1 s)."""

ONSET_S = 0.15
"""Time constant of the slow follower whose lag is the onset accent."""

GLIDE_S = 0.06
"""Pitch glide time constant."""

COLOUR_S = 0.12
"""Smoothing of the colour (texture, contrast, brightness) controls."""

GATE_OPEN_S, GATE_CLOSE_S = 0.03, 0.08
"""Linear ramps of the black gate: closing reaches exact zero within 80 ms."""

PARTIALS = 10
"""Harmonics of the main motion voice (fewer for the side voices and the bed)."""

NYQ_SAFE = 9000.0
"""Partials above this frequency fade out (no aliasing at 22050 Hz)."""

MOTION_NOISE = (0.02, 0.2, 0.2)
"""Share of the motion voices' energy in their breath band: a + b * texture**2 + c * onset."""

BED_NOISE = (0.03, 0.15)
"""Share of the bed's energy in its air band: a + b * texture**2."""

NOISE_N, NOISE_HOP = 512, 128
"""Frame and hop of the overlap-added band noise (Hann, 75 % overlap: constant power)."""


def _ss(x: F64 | float, lo: float, hi: float) -> Any:
    """Smoothstep from 0 at ``lo`` to 1 at ``hi``."""
    t = np.clip((np.asarray(x, np.float64) - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


# -- what the brain sees ------------------------------------------------------------------


def _grey64(pic: U8, side: int = C.FRAME_SIZE) -> U8:
    """A film picture (H, W, 3) RGB or (H, W) grey as the brain's (side, side) grey."""
    import cv2

    g = pic if pic.ndim == 2 else cv2.cvtColor(pic, cv2.COLOR_RGB2GRAY)
    return cv2.resize(g, (side, side), interpolation=cv2.INTER_AREA)


@dataclass
class _Timed:
    time: float
    index: int


def brain_ticks(times: Sequence[float], *, fps: float = C.FPS,
                end_time: float | None = None) -> npt.NDArray[np.int64]:
    """Index of the picture each brain tick shows (:class:`BrainClock`'s rule).

    Parameters
    ----------
    times : sequence of float
        Picture timestamps in seconds, increasing (as written in the clip).
    fps : float
        Brain clock.
    end_time : float, optional
        End of the source (default: last time plus the median spacing).
    """
    clock = BrainClock(fps=fps, end_time=end_time)
    return np.array([f.index for _, f in clock.run(_Timed(t, i) for i, t in enumerate(times))],
                    np.int64)


@dataclass
class Features:
    """Per-tick features of what the brain sees (all arrays of shape (T,))."""

    motion: F64  # mean of max(|P0 - context| - MOTION_FLOOR, 0)
    height: F64  # centroid of the motion, 0 = bottom, 1 = top
    low: F64  # 80 % of the motion lies above this height
    high: F64  # ... and 80 % below this one
    spread: F64  # standard deviation of the motion's height
    texture: F64  # mean gradient magnitude of P0
    contrast: F64  # standard deviation of P0
    brightness: F64  # mean of P0
    block: F64  # brightest 8x8 block mean of P0


def picture_features(pictures: npt.ArrayLike) -> Features:
    """Features of each tick's picture and its context picture.

    Parameters
    ----------
    pictures : array, shape (T, H, W) or (T, 1, H, W), uint8
        One grey picture per brain tick (a picture held over several ticks repeated), as
        the brain gets it (64x64).
    """
    px = np.asarray(pictures)
    if px.ndim == 4:
        px = px[:, 0]
    if px.ndim != 3 or px.dtype != np.uint8:
        raise ParamError("pictures", getattr(px, "shape", None),
                         "must be uint8 of shape (T, H, W) or (T, 1, H, W)")
    T, H, W = px.shape
    out = {k: np.zeros(T) for k in Features.__dataclass_fields__}
    stack = ContextStack(1)
    buf = np.empty((2, H, W), np.float32)
    ys = 1.0 - (np.arange(H) + 0.5) / H  # height of each row, top = 1
    bh, bw = max(H // 8, 1), max(W // 8, 1)
    for k in range(T):
        p = px[k][None]
        stack.stack(p, out=buf)
        ctx, p0 = buf[0], buf[1]
        d = np.maximum(np.abs(p0 - ctx) - MOTION_FLOOR, 0)
        m = float(d.mean())
        rows = d.mean(axis=1).astype(np.float64)
        tot = rows.sum()
        if tot > 1e-9:
            w = rows / tot
            hc = float(w @ ys)
            sp = float(np.sqrt(w @ (ys - hc) ** 2))
            cum = np.cumsum(w)  # from the top row down
            hi = float(np.interp(0.2, cum, ys))
            lo = float(np.interp(0.8, cum, ys))
        else:
            hc, sp, lo, hi = 0.5, 0.0, 0.5, 0.5
        gx = np.abs(np.diff(p0, axis=1)).mean()
        gy = np.abs(np.diff(p0, axis=0)).mean()
        blocks = p0[: bh * 8, : bw * 8].reshape(8, bh, 8, bw).mean(axis=(1, 3))
        vals = (m, hc, lo, hi, sp, float(gx + gy), float(p0.std()), float(p0.mean()),
                float(blocks.max()))
        for name, v in zip(out, vals):
            out[name][k] = v
    return Features(**out)


# -- controls ---------------------------------------------------------------------------


@dataclass
class Controls:
    """Control curves at :data:`SUB` steps per tick (arrays of shape (T * SUB,))."""

    gate: F64
    motion: F64  # RMS amplitude of the motion voices
    accent: F64  # 0..1 onset accent
    f_main: F64
    f_low: F64
    f_high: F64
    side: F64  # share of the side voices' energy
    colour: F64  # 0 pure .. 1 bright (texture)
    hollow: F64  # 0 .. 1 odd-harmonic emphasis (contrast)
    light: F64  # 0 dark .. 1 bright picture (bed voicing)
    vibrato: F64  # depth in semitones


def note_hz(height: F64 | float) -> Any:
    """Fundamental (Hz) for a height in the picture (0 bottom, 1 top): the notes of
    :data:`SCALE` with soft snapping (flat near each note, steep between: continuous)."""
    x = np.clip(np.asarray(height, np.float64), 0.0, 1.0) * (len(SCALE) - 1)
    n = np.minimum(np.floor(x), len(SCALE) - 2)
    fr = x - n
    g = fr**4 / (fr**4 + (1 - fr) ** 4)
    logf = np.interp(n + g, np.arange(len(SCALE)), np.log(np.asarray(SCALE, np.float64)))
    return FUNDAMENTAL_HZ * np.exp(logf)


def _coef(tau: float, dt: float) -> float:
    return float(1.0 - np.exp(-dt / tau))


def _targets(feat: Features) -> dict[str, F64]:
    """Per-tick targets of the mapping (before smoothing)."""
    u = np.clip(np.log(np.maximum(feat.motion, 1e-9) / M_LO) / np.log(M_HI / M_LO), 0, 1)
    gate = np.maximum(_ss(feat.brightness, *BLACK_MEAN), _ss(feat.block, *BLACK_BLOCK))
    # side voices only where the motion spreads over at least two scale steps each way
    # (a fourth or more): a compact thing moving is one clean note, never a cluster
    apart = np.minimum(feat.height - feat.low, feat.high - feat.height) * (len(SCALE) - 1)
    return {
        "u": u,
        "gate": gate,
        "amp": 10 ** ((LOUD_DB - RANGE_DB * (1 - u)) / 20) * _ss(u, 0.0, 0.3) * gate,
        "colour": np.clip(np.log(np.maximum(feat.texture, 1e-9) / G_LO) / np.log(G_HI / G_LO),
                          0, 1),
        "hollow": np.clip(feat.contrast / 0.28, 0, 1),
        "light": feat.brightness,
        "side": np.clip(feat.spread / 0.22, 0, 1) * _ss(apart, 1.5, 2.5),
    }


def _ramped(v: F64) -> F64:
    """A per-tick target at SUB steps per tick: reaching each value linearly by the end of
    its tick (a staircase would put a sawtooth at the tick rate into every moving control),
    then a one-tick moving average (the asymmetric envelope must not rectify tick-to-tick
    jitter into a pulse at the tick rate)."""
    T = v.shape[0]
    pos = np.arange(T * SUB) / SUB - (SUB - 1) / SUB
    r = np.interp(pos, np.arange(T), v)
    return np.convolve(np.concatenate([np.full(SUB - 1, r[0]), r]), np.ones(SUB) / SUB, "valid")


def controls(feat: Features, *, fps: float = C.FPS) -> Controls:
    """The mapping: features per tick -> smoothed control curves at :data:`SUB` per tick."""
    T = feat.motion.shape[0]
    dt = 1.0 / (fps * SUB)
    tg = _targets(feat)
    amp, rc, rh, rl, rs = (_ramped(tg[k]) for k in ("amp", "colour", "hollow", "light", "side"))
    c = {k: np.zeros(T * SUB) for k in ("gate", "motion", "accent", "f_main", "f_low",
                                        "f_high", "side", "colour", "hollow", "light")}
    a_att, a_rel, a_on = _coef(ATTACK_S, dt), _coef(RELEASE_S, dt), _coef(ONSET_S, dt)
    a_gl, a_col = _coef(GLIDE_S, dt), _coef(COLOUR_S, dt)
    up, down = dt / GATE_OPEN_S, dt / GATE_CLOSE_S
    g = env = slow = sd = 0.0
    col, hol, lit = rc[0], rh[0], rl[0]
    # the pitch follows the motion; with none it holds (the release tails keep their note)
    heights = np.stack([feat.height, feat.low, feat.high])
    moving = np.maximum.accumulate(np.where(tg["u"] > 0.08, np.arange(T), 0))
    logf = np.log(note_hz(heights[:, moving]))
    pitch = np.stack([_ramped(v) for v in logf], axis=1)
    lp = pitch[0].copy()
    for k in range(T):
        gate = 1.0 if tg["gate"][k] >= 0.5 else 0.0
        for i in range(k * SUB, (k + 1) * SUB):
            g = min(g + up, gate) if gate > g else max(g - down, gate)
            env += (amp[i] - env) * (a_att if amp[i] > env else a_rel)
            slow += (amp[i] - slow) * a_on
            col += (rc[i] - col) * a_col
            hol += (rh[i] - hol) * a_col
            lit += (rl[i] - lit) * a_col
            sd += (rs[i] - sd) * a_col
            lp += (pitch[i] - lp) * a_gl
            c["gate"][i], c["motion"][i] = g, env
            c["accent"][i] = min(max(env - slow, 0.0) / (env + 1e-6), 1.0)
            c["f_main"][i], c["f_low"][i], c["f_high"][i] = np.exp(lp)
            c["side"][i], c["colour"][i], c["hollow"][i], c["light"][i] = sd, col, hol, lit
    vibrato = 0.12 * np.clip(c["motion"] / 10 ** (LOUD_DB / 20), 0, 1)
    return Controls(**c, vibrato=vibrato)


# -- synthesis ----------------------------------------------------------------------------


def _per_sample(curve: F64, n: int, hop: float) -> F64:
    """Control curve at SUB steps per tick, linearly interpolated per sample."""
    pos = np.arange(curve.shape[0]) * (hop / SUB)
    return np.interp(np.arange(n, dtype=np.float64), pos, curve)


def _weights(colour: F64, hollow: F64, f0: F64, count: int) -> F64:
    """Partial amplitudes (count, S): tilt n^-alpha (alpha 2.8 smooth .. 0.9 bright), even
    partials softened by contrast, fade above :data:`NYQ_SAFE`; unit total energy."""
    nn = np.arange(1, count + 1, dtype=np.float64)[:, None]
    alpha = 2.8 - 1.9 * colour[None]
    w = np.exp(-alpha * np.log(nn))
    even = (nn % 2 == 0)
    w = np.where(even, w * (1 - 0.65 * hollow[None]), w)
    w *= 1.0 - _ss(nn * f0[None], 0.7 * NYQ_SAFE, NYQ_SAFE)
    return w / np.sqrt(np.maximum((w**2).sum(axis=0, keepdims=True), 1e-12))


def _tone(f: F64, amp: F64, colour: F64, hollow: F64, count: int, sr: int, phase0: float
          ) -> F64:
    """A harmonic tone with per-sample frequency and amplitude (RMS = amp).

    The partials' weights vary slowly: they are computed every ``STEP`` samples and ramped
    linearly between; partial n is ``sin(n * phase)`` by the Chebyshev recurrence
    ``sin((n + 1) x) = 2 cos(x) sin(n x) - sin((n - 1) x)``."""
    n = f.shape[0]
    if not np.any(amp > 0):
        return np.zeros(n)
    step = 1024
    blocks = -(-n // step)
    m = blocks * step
    pad = (0, m - n)
    ph = (phase0 + np.cumsum(2 * np.pi * f / sr)) % (2 * np.pi)
    idx = np.minimum(np.arange(blocks + 1) * step, n - 1)
    w = _weights(colour[idx], hollow[idx], f[idx], count)
    r = np.arange(step) / step
    a = np.pad(amp * np.sqrt(2.0), pad).reshape(blocks, step)
    s1 = np.pad(np.sin(ph), pad).reshape(blocks, step)
    c2 = 2 * np.pad(np.cos(ph), pad).reshape(blocks, step)
    s0 = np.zeros_like(s1)
    out = np.zeros((blocks, step))
    for j in range(count):
        w0, w1 = w[j, :-1, None], w[j, 1:, None]
        if np.any(w0 > 1e-4) or np.any(w1 > 1e-4):
            out += s1 * (w0 + (w1 - w0) * r)
        s0, s1 = s1, c2 * s1 - s0
    out *= a
    return out.reshape(-1)[:n]


def _band_noise(length: int, centres: list[F64], widths: list[F64], gains: list[F64],
                sr: int, rng: np.random.Generator) -> F64:
    """Sum of noise bands (Gaussian in log frequency), each of RMS ``gains`` (per noise
    frame), overlap-added from random-phase frames (Hann, 75 % overlap: constant power)."""
    n, hop = NOISE_N, NOISE_HOP
    frames = length // hop + 4
    f = np.fft.rfftfreq(n, 1 / sr)
    lf = np.log2(np.maximum(f, 1.0))[None]
    mag = np.zeros((frames, f.size))
    for c, w, g in zip(centres, widths, gains):
        if not np.any(g > 0):
            continue
        bump = np.exp(-0.5 * ((lf - np.log2(c)[:, None]) / w[:, None]) ** 2)
        bump[:, 0] = 0.0
        norm = np.sqrt(3.0 * (bump**2).sum(axis=1, keepdims=True)) / n
        mag += bump * (g[:, None] / np.maximum(norm, 1e-12))
    if not np.any(mag):
        return np.zeros(length)
    spec = mag * np.exp(2j * np.pi * rng.random(mag.shape))
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    x = np.fft.irfft(spec, n=n, axis=1) * win
    out = np.zeros((frames + n // hop) * hop)
    for q in range(n // hop):  # overlap-add: frame i starts at (i - 3) * hop
        seg = x[:, q * hop:(q + 1) * hop].reshape(-1)
        out[q * hop: q * hop + seg.size] += seg
    start = (n // hop - 1) * hop
    return out[start:start + length]


def _at_frames(curve: F64, length: int, hop: float) -> F64:
    """A control curve at the noise frames' centres."""
    frames = length // NOISE_HOP + 4
    centres = (np.arange(frames) - (NOISE_N // NOISE_HOP - 1)) * NOISE_HOP + NOISE_N / 2
    pos = np.arange(curve.shape[0]) * (hop / SUB)
    return np.interp(centres, pos, curve)


def _drift(n: int, sr: int, rng: np.random.Generator, rate: float) -> F64:
    """A slow smooth random curve in [-1, 1] (per sample)."""
    knots = int(n / sr * rate) + 4
    v = rng.uniform(-1, 1, knots)
    return np.interp(np.arange(n) / sr * rate, np.arange(knots), v)


KNEE, PEAK = 0.5, 0.7
"""Soft clipping: samples pass unchanged up to KNEE (-6 dBFS) and never exceed PEAK (-3 dBFS)."""

ACCENT_GAIN = 0.8
"""An onset lifts the motion voices' amplitude by up to this share (about +5 dB)."""


def _noise_share(colour: F64, accent: F64) -> F64:
    a, b, c = MOTION_NOISE
    return a + b * colour**2 + c * accent


def _motion_voices(ps: dict[str, F64], sr: int, rng: np.random.Generator) -> F64:
    """The main voice at the motion's height, and two side voices at its low and high
    quantiles when the motion spreads (a chord)."""
    n = ps["gate"].shape[0]
    t = np.arange(n) / sr
    vib = 2.0 ** (ps["vibrato"] * np.sin(2 * np.pi * 5.3 * t + rng.uniform(0, 6.3)) / 12)
    lift = ps["motion"] * (1 + ACCENT_GAIN * ps["accent"])
    tone = np.sqrt(np.clip(1 - _noise_share(ps["colour"], ps["accent"]), 0, 1))
    main_a = lift * tone * np.sqrt(1 - 0.5 * ps["side"])
    side_a = lift * tone * np.sqrt(0.25 * ps["side"])
    bright = np.clip(ps["colour"] + 0.5 * ps["accent"], 0, 1)
    out = _tone(ps["f_main"] * vib, main_a, bright, ps["hollow"], PARTIALS, sr,
                rng.uniform(0, 6.3))
    for key in ("f_low", "f_high"):
        f = ps[key] * vib * (1 + 0.002 * _drift(n, sr, rng, 0.3))
        out += _tone(f, side_a, bright, ps["hollow"], 6, sr, rng.uniform(0, 6.3))
    return out


def _bed(ps: dict[str, F64], sr: int, rng: np.random.Generator) -> F64:
    """The drone: open fifths voiced by the picture's brightness (dark low, bright high),
    coloured by its texture, each note drifting a few cents (a living chorus)."""
    n = ps["gate"].shape[0]
    rms = 10 ** (BED_DB / 20)
    pos = 0.3 + 3.4 * ps["light"]
    ws = [np.exp(-0.5 * ((i - pos) / 0.9) ** 2) for i in range(len(BED_NOTES))]
    norm = np.sqrt(sum(w**2 for w in ws))
    tone = np.sqrt(1 - (BED_NOISE[0] + BED_NOISE[1] * ps["colour"] ** 2))
    out = np.zeros(n)
    for note, w in zip(BED_NOTES, ws):
        f = note * FUNDAMENTAL_HZ * (1 + 0.0025 * _drift(n, sr, rng, 0.25))
        out += _tone(f, rms * tone * w / norm, ps["colour"], ps["hollow"], 5, sr,
                     rng.uniform(0, 6.3))
    return out


def _noises(ctl: Controls, n: int, hop: float, sr: int, rng: np.random.Generator) -> F64:
    """A breath band over the main voice (wider and brighter on onsets and busy pictures),
    and the bed's air band (higher for brighter, busier pictures)."""
    fr = {k: _at_frames(getattr(ctl, k), n, hop) for k in
          ("motion", "accent", "f_main", "colour", "light", "gate")}
    col, acc = fr["colour"], fr["accent"]
    bed = 10 ** (BED_DB / 20) * np.sqrt(BED_NOISE[0] + BED_NOISE[1] * col**2)
    gains = [fr["motion"] * (1 + ACCENT_GAIN * acc) * np.sqrt(_noise_share(col, acc)),
             np.where(fr["gate"] > 0, bed, 0.0)]
    centres = [fr["f_main"] * (2.0 + 4.0 * col), 700.0 * 2 ** (1.5 * col + fr["light"])]
    widths = [0.35 + 0.5 * acc + 0.3 * col, np.full_like(col, 0.8)]
    return _band_noise(n, centres, widths, gains, sr, rng)


def synthesize(ctl: Controls, *, sr: int = C.SAMPLE_RATE, fps: float = C.FPS, seed: int = 0
               ) -> F32:
    """Render control curves to audio (float32, ``round(T * sr / fps)`` samples), the
    controls interpolated linearly per sample, every phase running freely."""
    rng = np.random.default_rng(seed)
    hop = sr / fps
    n = int(round(ctl.gate.shape[0] // SUB * hop))
    ps = {k: _per_sample(getattr(ctl, k), n, hop) for k in
          ("gate", "motion", "accent", "f_main", "f_low", "f_high", "side", "colour",
           "hollow", "light", "vibrato")}
    out = _motion_voices(ps, sr, rng) + _bed(ps, sr, rng) + _noises(ctl, n, hop, sr, rng)
    out *= ps["gate"]
    return _soft_clip(out).astype(np.float32)


def _soft_clip(x: F64) -> F64:
    """Linear below :data:`KNEE`, then bending smoothly towards :data:`PEAK` (rare peaks of
    loud onsets: the brain's imitation then stays well under the limiter's ceiling)."""
    a = np.abs(x)
    over = a > KNEE
    if np.any(over):
        x = x.copy()
        x[over] = np.sign(x[over]) * (KNEE + (PEAK - KNEE) * np.tanh((a[over] - KNEE)
                                                                       / (PEAK - KNEE)))
    return x


def design_sound(pictures: npt.ArrayLike, *, sr: int = C.SAMPLE_RATE, fps: float = C.FPS,
                 seed: int = 0) -> F32:
    """The designed soundtrack of a run of brain ticks.

    Parameters
    ----------
    pictures : array, shape (T, 64, 64) or (T, 1, 64, 64), uint8
        The grey picture of each brain tick, as the brain sees it; a source slower than
        the clock repeats its pictures. Context pictures are built from them exactly as
        the tick pipeline does (:class:`ContextStack` with one context picture).
    sr : int
        Sample rate of the result.
    fps : float
        The brain clock.
    seed : int
        Seeds the noise and the slow drifts (the same pictures and seed give the same
        samples).

    Returns
    -------
    ndarray, shape (round(T * sr / fps),), float32
        Sample 0 is tick 0. Exact zeros where the picture is black (and 80 ms after).
    """
    if sr <= 0:
        raise ParamError("sr", sr, "must be a positive sample rate")
    if fps <= 0:
        raise ParamError("fps", fps, "must be a positive frame rate")
    feat = picture_features(pictures)
    if feat.motion.shape[0] == 0:
        return np.zeros(0, np.float32)
    return synthesize(controls(feat, fps=fps), sr=sr, fps=fps, seed=seed)


# -- sources --------------------------------------------------------------------------------


@dataclass
class Source:
    """A source picture (one frame) or clip (its pictures, RGB (H, W, 3) uint8)."""

    name: str
    frames: list[U8]
    fps: float = 0.0  # the clip's rate; 0 for a photo


def _expand(sources: Sequence[str | os.PathLike[str]]) -> list[Path]:
    files: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.is_file()
                            and q.suffix.lower() in PHOTO_EXT + VIDEO_EXT)
        elif p.is_file():
            files.append(p)
        else:
            raise MediaError(f"{p}: no such file or folder")
    return files


def _cover(w: int, h: int, size: tuple[int, int], factor: float) -> tuple[int, int]:
    """(w, h) scaled to cover ``factor`` times ``size`` (never more than needed)."""
    s = max(factor * size[0] / w, factor * size[1] / h)
    return max(int(round(w * s)) // 2 * 2, 2), max(int(round(h * s)) // 2 * 2, 2)


def _load_photo(p: Path, size: tuple[int, int]) -> Source:
    import cv2

    img = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if img is None:
        raise MediaError(f"{p}: not a readable picture")
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    tw, th = _cover(w, h, size, 2.0)
    interp = cv2.INTER_AREA if tw < w else cv2.INTER_CUBIC
    return Source(p.name, [cv2.resize(img, (tw, th), interpolation=interp)])


def _load_clip(p: Path, size: tuple[int, int]) -> Source:
    with MediaReader(p) as r:
        vs = r.size
        if vs is None:
            raise MediaError(f"{p}: has no video stream")
        tw, th = _cover(vs[0], vs[1], size, 1.25)
        frames = []
        for kind, _t, px in r.decode(size=(tw, th), channels=3):
            if kind == "video":
                frames.append(np.ascontiguousarray(px.transpose(1, 2, 0)))
                if len(frames) >= VIDEO_FRAMES:
                    break
        fps = r.frame_rate or 25.0
    if not frames:
        raise MediaError(f"{p}: no pictures could be decoded")
    return Source(p.name, frames, float(fps))


def load_sources(sources: Sequence[str | os.PathLike[str]], *, size: tuple[int, int] = SIZE
                 ) -> list[Source]:
    """Photos and clips from files or folders (folders are searched for
    :data:`PHOTO_EXT` and :data:`VIDEO_EXT` files), sized to about twice ``size``."""
    files = _expand(sources)
    if not files:
        raise ParamError("sources", [os.fspath(s) for s in sources],
                         f"hold no pictures or clips ({' '.join(PHOTO_EXT + VIDEO_EXT)})")
    out = []
    for p in files:
        suf = p.suffix.lower()
        if suf in PHOTO_EXT:
            out.append(_load_photo(p, size))
        elif suf in VIDEO_EXT:
            out.append(_load_clip(p, size))
        else:
            raise MediaError(f"{p}: not a picture or clip ({' '.join(PHOTO_EXT + VIDEO_EXT)})")
    return out


# -- shots ------------------------------------------------------------------------------------


def _ease(x: F64 | float) -> Any:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _wobble(rng: np.random.Generator, amp: float, lo: float, hi: float, n: int = 3
            ) -> Any:
    """A smooth random function of time (sum of ``n`` sines) with peak about ``amp``."""
    f = rng.uniform(lo, hi, n)
    ph = rng.uniform(0, 2 * np.pi, n)
    a = rng.uniform(0.3, 1.0, n)
    a *= amp / a.sum()
    return lambda t: float(np.sum(a * np.sin(2 * np.pi * f * t + ph)))


def _draw_thing(mask: Any, kind: str, cx: float, cy: float, r: float, ang: float) -> None:
    """Draw one moving thing, centred (cx, cy) with scale r (pixels), into ``mask``."""
    import cv2

    def ell(x: float, y: float, a: float, b: float, deg: float) -> None:
        cv2.ellipse(mask, (int(x * 16), int(y * 16)), (max(int(a * 16), 16), max(int(b * 16), 16)),
                    deg, 0, 360, 1.0, -1, cv2.LINE_AA, 4)

    d = np.degrees(ang)
    if kind == "hand":
        ell(cx, cy, 0.45 * r, 0.55 * r, d)
        for i, off in enumerate((-0.3, -0.1, 0.1, 0.3)):
            a = ang + off - np.pi / 2
            L = r * (0.75 + 0.1 * (i in (1, 2)))
            ell(cx + np.cos(a) * (0.55 * r + L / 2), cy + np.sin(a) * (0.55 * r + L / 2),
                0.09 * r, L / 2, np.degrees(a) + 90)
        a = ang + 0.9
        ell(cx + np.cos(a) * 0.6 * r, cy + np.sin(a) * 0.6 * r, 0.1 * r, 0.35 * r,
            np.degrees(a) + 60)
    elif kind == "body":
        ell(cx, cy - 1.15 * r, 0.22 * r, 0.27 * r, 0)  # head
        ell(cx, cy, 0.38 * r, 0.85 * r, d * 0.2)  # torso
        for side in (-1, 1):  # arms swing
            a = np.pi / 2 + side * (0.3 + 0.5 * np.sin(ang))
            ell(cx + side * 0.35 * r + np.cos(a) * 0.4 * r, cy - 0.3 * r + np.sin(a) * 0.4 * r,
                0.09 * r, 0.45 * r, np.degrees(a) - 90)
        ell(cx, cy + 1.2 * r, 0.3 * r, 0.6 * r, 0)  # legs
    elif kind == "bar":
        ell(cx, cy, 0.12 * r, 1.0 * r, d)
    else:  # blob
        ell(cx, cy, 0.6 * r, 0.45 * r, d)


@dataclass
class _Thing:
    kind: str
    colour: npt.NDArray[np.float64]
    alpha: float
    r: float
    path: Any  # t -> (x, y, angle), in output pixels


def _plan_things(rng: np.random.Generator, dur: float, W: int, H: int) -> list[_Thing]:
    n = int(rng.choice([0, 1, 1, 2, 2, 3]))
    things = []
    for _ in range(n):
        kind = str(rng.choice(["hand", "hand", "body", "blob", "blob", "bar"]))
        r = H * (rng.uniform(0.25, 0.45) if kind == "body" else rng.uniform(0.06, 0.22))
        tone = rng.choice(["dark", "bright", "colour"], p=[0.45, 0.35, 0.2])
        colour = (rng.uniform(0, 45, 3) if tone == "dark" else rng.uniform(200, 255, 3)
                  if tone == "bright" else rng.uniform(0, 255, 3))
        y0 = rng.uniform(0.1, 0.9) * H
        if kind in ("body", "blob", "bar") and rng.random() < 0.6:  # crosses the picture
            x0, x1 = (-0.3 * W, 1.3 * W) if rng.random() < 0.5 else (1.3 * W, -0.3 * W)
            t0 = rng.uniform(-0.3, 0.5) * dur
            span = rng.uniform(1.5, 6.0)
            yw = _wobble(rng, rng.uniform(0, 0.15) * H, 0.3, 2.0)
            spin = rng.uniform(-3, 3)

            def path(t: float, x0: float = x0, x1: float = x1, t0: float = t0,
                     span: float = span, y0: float = y0, yw: Any = yw, spin: float = spin
                     ) -> tuple[float, float, float]:
                q = (t - t0) / span
                return x0 + (x1 - x0) * q, y0 + yw(t), spin * t
        else:  # waves, sways, bobs around a place
            x0 = rng.uniform(0.15, 0.85) * W
            xw = _wobble(rng, rng.uniform(0.03, 0.3) * W, 0.2, 3.0)
            yw = _wobble(rng, rng.uniform(0.03, 0.3) * H, 0.2, 3.0)
            aw = _wobble(rng, rng.uniform(0.1, 0.8), 0.3, 3.0)

            def path(t: float, x0: float = x0, y0: float = y0, xw: Any = xw, yw: Any = yw,
                     aw: Any = aw) -> tuple[float, float, float]:
                return x0 + xw(t), y0 + yw(t), aw(t)
        things.append(_Thing(kind, colour, float(rng.uniform(0.8, 1.0)), float(r), path))
    return things


@dataclass
class Shot:
    """One shot of a reel: what it shows and how the camera moves (drawn by :func:`plan_shot`)."""

    kind: str  # "move", "still", "black", "white"
    duration: float
    source: int = 0
    params: dict[str, Any] = field(default_factory=dict)


def plan_shot(rng: np.random.Generator, sources: list[Source], size: tuple[int, int]) -> Shot:
    """Draw a shot: kind, length, source, camera, look, things in front."""
    W, H = size
    kind = str(rng.choice(["move", "still", "black", "white"], p=[0.74, 0.12, 0.1, 0.04]))
    dur = {"move": rng.uniform(2.0, 8.0), "still": rng.uniform(2.0, 5.0),
           "black": rng.uniform(1.0, 4.0), "white": rng.uniform(1.0, 3.0)}[kind]
    clips = [i for i, x in enumerate(sources) if len(x.frames) > 1]
    stills = [i for i, x in enumerate(sources) if len(x.frames) == 1]
    pool = clips if clips and (not stills or rng.random() < CLIP_SHARE) else stills
    src = int(pool[int(rng.integers(len(pool)))])
    p: dict[str, Any] = {}
    camera = str(rng.choice(["fixed", "glide", "handheld"], p=[0.35, 0.35, 0.3]))
    if kind != "move":
        camera = "fixed"
    p["camera"] = camera
    p["zoom"] = (rng.uniform(1.0, 1.6), rng.uniform(1.0, 1.6) if camera == "glide" else None)
    p["centre"] = (rng.uniform(0.3, 0.7, 2), rng.uniform(0.25, 0.75, 2))
    p["roll"] = (rng.uniform(-3, 3), rng.uniform(-3, 3))
    shake = rng.uniform(2, 8) if camera == "handheld" else 0.0
    p["shake"] = [_wobble(rng, shake, 0.4, 6.0) for _ in range(2)]
    p["shake_roll"] = _wobble(rng, 0.4 * shake, 0.3, 4.0)
    p["gain"] = (rng.uniform(-0.5, 0.35), rng.uniform(-0.5, 0.35))
    p["wb"] = (rng.uniform(-0.12, 0.12, 3), rng.uniform(-0.12, 0.12, 3))
    p["noise"] = float(rng.choice([0.5, 1.0, 2.0, 3.0, 5.0, 8.0]))
    p["jpeg"] = int(rng.integers(20, 95)) if rng.random() < 0.7 else 0
    p["flicker"] = _wobble(rng, rng.uniform(0.1, 0.4), 2.0, 12.0, 5) \
        if kind == "move" and rng.random() < 0.2 else None
    p["clip_speed"] = rng.uniform(0.5, 1.5)
    p["clip_start"] = int(rng.integers(max(len(sources[src].frames), 1)))
    p["things"] = _plan_things(rng, dur, W, H) if kind == "move" else []
    p["exact_black"] = bool(rng.random() < 0.5)
    p["seed"] = int(rng.integers(1 << 31))
    return Shot(kind, float(dur), src, p)


def _source_frame(src: Source, t: float, p: dict[str, Any]) -> U8:
    n = len(src.frames)
    if n == 1:
        return src.frames[0]
    i = p["clip_start"] + int(t * src.fps * p["clip_speed"])
    i %= 2 * n - 2  # ping-pong through the clip
    return src.frames[i if i < n else 2 * n - 2 - i]


def _matrix(shape: tuple[int, ...], t: float, dur: float, p: dict[str, Any],
            size: tuple[int, int]) -> Any:
    """The camera's affine map from source pixels to film pixels at time ``t``."""
    import cv2

    W, H = size
    h, w = shape[:2]
    q = _ease(t / dur) if dur > 0 else 0.0
    z0, z1 = p["zoom"]
    zoom = z0 if z1 is None else z0 + (z1 - z0) * q
    c0, c1 = p["centre"]
    cx, cy = (c0 + (c1 - c0) * q) * (w, h) if p["camera"] == "glide" else c0 * (w, h)
    s = max(W / w, H / h) * zoom
    # keep the framed part inside the source where possible (reflection beyond)
    cx = float(np.clip(cx, W / (2 * s), w - W / (2 * s))) if w * s > W else w / 2
    cy = float(np.clip(cy, H / (2 * s), h - H / (2 * s))) if h * s > H else h / 2
    r0, r1 = p["roll"]
    roll = (r0 + (r1 - r0) * q if p["camera"] == "glide" else r0 * 0.3) + p["shake_roll"](t)
    M = cv2.getRotationMatrix2D((cx, cy), roll, s)
    M[0, 2] += W / 2 - cx + p["shake"][0](t)
    M[1, 2] += H / 2 - cy + p["shake"][1](t)
    return M


def _camera(src: U8, t: float, dur: float, p: dict[str, Any], size: tuple[int, int]) -> U8:
    """The source as the camera frames it at time ``t`` of the shot."""
    import cv2

    M = _matrix(src.shape, t, dur, p, size)
    return cv2.warpAffine(src, M, size, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT101)


def _velocity(shape: tuple[int, ...], t: float, dur: float, p: dict[str, Any],
              size: tuple[int, int]) -> tuple[float, float]:
    """Film pixels the picture's centre moves in one brain tick (for motion blur)."""
    import cv2

    W, H = size
    m0 = _matrix(shape, t, dur, p, size)
    m1 = _matrix(shape, t + 1 / C.FPS, dur, p, size)
    src_pt = cv2.invertAffineTransform(m0) @ np.array([W / 2, H / 2, 1.0])
    moved = m1 @ np.array([src_pt[0], src_pt[1], 1.0])
    return float(moved[0] - W / 2), float(moved[1] - H / 2)


def _blur_kernel(vx: float, vy: float) -> Any:
    import cv2

    """A line kernel along (vx, vy), as long as the movement (at most 15 pixels)."""
    v = max(float(np.hypot(vx, vy)), 1e-6)
    L = int(min(v, 15)) | 1
    k = np.zeros((L, L), np.float32)
    c = L // 2
    dx, dy = vx / v * L / 2, vy / v * L / 2
    cv2.line(k, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))),
             1.0, 1)
    return k / max(float(k.sum()), 1e-6)


def render_shot(shot: Shot, sources: list[Source], times: F64, size: tuple[int, int]
                ) -> list[U8]:
    """The shot's pictures (H, W, 3) RGB uint8 at ``times`` (seconds from its start)."""
    import cv2

    W, H = size
    p = shot.params
    rng = np.random.default_rng(p["seed"])
    src = sources[shot.source]
    out: list[U8] = []
    if shot.kind == "black":
        base = np.zeros((H, W, 1), np.float32)
        for _ in times:
            if p["exact_black"]:
                out.append(np.zeros((H, W, 3), np.uint8))
            else:
                n = base + 1.0 + rng.standard_normal((H, W, 1), np.float32) * 1.2
                out.append(np.clip(n, 0, 255).astype(np.uint8).repeat(3, axis=2))
        return out
    if shot.kind == "white":
        pic = _camera(_source_frame(src, 0.0, p), 0.0, shot.duration, p, size)
        lit = np.clip(pic.astype(np.float32) * rng.uniform(3.0, 6.0) + 60, 0, 255)
    frozen = None
    for t in times:
        if shot.kind == "still" and frozen is not None:
            out.append(frozen)
            continue
        if shot.kind == "white":
            img = lit.copy()
        else:
            img = _camera(_source_frame(src, t, p), t, shot.duration, p, size
                          ).astype(np.float32)
            if p["camera"] != "fixed":  # motion blur along the camera's movement
                vx, vy = _velocity(src.frames[0].shape, t, shot.duration, p, size)
                if np.hypot(vx, vy) >= 2.0:
                    img = cv2.filter2D(img, -1, _blur_kernel(vx, vy))
            for th in p["things"]:
                x, y, a = th.path(t)
                if -th.r * 2 < x < W + th.r * 2:
                    mask = np.zeros((H, W), np.float32)
                    _draw_thing(mask, th.kind, x, y, th.r, a)
                    mask = cv2.GaussianBlur(mask, (0, 0), 1.0)[..., None] * th.alpha
                    img = img * (1 - mask) + th.colour.astype(np.float32) * mask
        q = _ease(t / shot.duration)
        g0, g1 = p["gain"]
        gain = float(np.exp(g0 + (g1 - g0) * q))
        if p["flicker"] is not None:
            gain *= 1.0 + p["flicker"](t)
        w0, w1 = p["wb"]
        wb = (1.0 + w0 + (w1 - w0) * q).astype(np.float32)
        img = img * (gain * wb)
        img += rng.standard_normal((H, W, 1), np.float32) * p["noise"]
        pic = np.clip(img, 0, 255).astype(np.uint8)
        if p["jpeg"]:
            ok, buf = cv2.imencode(".jpg", pic[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, p["jpeg"]])
            pic = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()
        if shot.kind == "still":
            frozen = pic
        out.append(pic)
    return out


# -- reels and the film -----------------------------------------------------------------------

RATE_WEIGHTS = {10: 1.0, 12: 1.0, 15: 1.5, 24: 2.0, 25: 2.0, 30: 3.0, 60: 1.0, 0: 1.5}
"""How often each reel rate is drawn; 0 is a variable rate (15-30 fps, jittered)."""


def _frame_times(rng: np.random.Generator, rate: int, duration: float) -> tuple[F64, float]:
    """Picture times (ms-rounded, as the clip stores them) and the nominal rate."""
    if rate:
        n = max(int(duration * rate), 2)
        return np.round(np.arange(n) / rate, 3), float(rate)
    base = rng.uniform(15, 30)
    steps = np.maximum(np.round(rng.uniform(0.65, 1.35, int(duration * base) + 2) / base, 3),
                       0.001)
    t = np.concatenate([[0.0], np.cumsum(steps)])
    return np.round(t[t < duration], 3), float(base)


def _draw_rate(rng: np.random.Generator) -> int:
    w = np.array(list(RATE_WEIGHTS.values()))
    return int(rng.choice(list(RATE_WEIGHTS), p=w / w.sum()))


def render_reel(rng: np.random.Generator, sources: list[Source], duration: float, rate: int,
                size: tuple[int, int] = SIZE) -> tuple[F64, list[U8], float]:
    """A reel: shots cut together at ``rate`` fps (0: variable). Returns (times, pictures,
    nominal fps)."""
    times, fps = _frame_times(rng, rate, duration)
    pics: list[U8] = []
    i = 0
    while i < times.size:
        shot = plan_shot(rng, sources, size)
        j = max(int(np.searchsorted(times, times[i] + shot.duration)), i + 1)
        pics += render_shot(shot, sources, times[i:j] - times[i], size)
        i = j
    return times, pics, fps


def reel_sound(times: F64, pics: list[U8], *, seed: int) -> tuple[F32, int]:
    """The designed sound of a reel: its pictures on the brain clock, 64x64 grey, through
    :func:`design_sound`. Returns (audio, ticks)."""
    idx = brain_ticks(times)
    grey = [_grey64(p) for p in pics]
    ticks = np.stack([grey[i] for i in idx])
    return design_sound(ticks, seed=seed), int(idx.size)


@dataclass(frozen=True)
class Reel:
    """What one reel is, drawn before any is made (so workers can make them in any order)."""

    path: Path
    duration: float
    rate: int
    seed: int


def plan_film(out_dir: Path, minutes: float, seed: int,
              reel_seconds: tuple[float, float]) -> list[Reel]:
    """The reels of a film: length, rate and seed of each, until ``minutes`` are filled."""
    rng = np.random.default_rng(seed)
    reels: list[Reel] = []
    total = 0.0
    while total < minutes * 60:
        dur = float(rng.uniform(*reel_seconds))
        rate = _draw_rate(rng)
        if rate:
            dur = min(dur, MAX_FRAMES / rate)
        reels.append(Reel(out_dir / f"reel{len(reels):03d}.mkv", dur, rate,
                          int(rng.integers(1 << 31))))
        total += dur
    return reels


_SOURCES: list[Source] = []
_SIZE: tuple[int, int] = SIZE


def _init_worker(sources: list[str], size: tuple[int, int]) -> None:
    global _SOURCES, _SIZE
    _SOURCES, _SIZE = load_sources(sources, size=size), size


def make_reel(reel: Reel, sources: list[Source] | None = None,
              size: tuple[int, int] | None = None) -> Path:
    """Render, design the sound of and write one reel (a temporary file renamed into place)."""
    srcs = _SOURCES if sources is None else sources
    size = _SIZE if size is None else size
    rng = np.random.default_rng(reel.seed)
    times, pics, fps = render_reel(rng, srcs, reel.duration, reel.rate, size)
    audio, _ = reel_sound(times, pics, seed=int(rng.integers(1 << 31)))
    with atomic_path(reel.path) as tmp:  # named for this process: swept if it is killed
        write_clip(tmp, zip(times.tolist(), pics), audio=audio, sr=C.SAMPLE_RATE, fps=fps)
    return reel.path


def make_film(sources: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
              minutes: float, seed: int, size: tuple[int, int] = SIZE,
              reel_seconds: tuple[float, float] = (20.0, 45.0), workers: int = 1
              ) -> list[Path]:
    """Write the camera film: reels of camera-moved shots with the designed soundtrack.

    Parameters
    ----------
    sources : sequence of path-like
        Photos and clips, or folders holding them.
    out_dir : path-like
        Folder for ``reel000.mkv``, ``reel001.mkv``, ... (created if missing).
    minutes : float
        Length of the film (at least; the last reel is whole).
    seed : int
        One seed, one film (whatever ``workers``).
    size : (width, height)
        Picture size of the film.
    reel_seconds : (float, float)
        Range of the reel lengths (a 60 fps reel is cut at :data:`MAX_FRAMES` pictures).
    workers : int
        Processes making reels side by side.

    Returns
    -------
    list of Path
        The clips written (H.264 pictures, FLAC sound at 22050 Hz). ``liveframe pickle
        DIR/*.mkv -o data.npz`` makes the training data.
    """
    if not (isinstance(minutes, (int, float)) and minutes > 0):
        raise ParamError("minutes", minutes, "must be a positive number of minutes")
    if len(size) != 2 or min(size) < 16:
        raise ParamError("size", size, "must be (width, height) of at least 16 pixels each")
    if not 0 < reel_seconds[0] <= reel_seconds[1]:
        raise ParamError("reel_seconds", reel_seconds, "must be 0 < low <= high seconds")
    if int(workers) < 1:
        raise ParamError("workers", workers, "must be a positive number of processes")
    size = (int(size[0]), int(size[1]))
    srcs = load_sources(sources, size=size)  # fails here, before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    reels = plan_film(out, float(minutes), int(seed), reel_seconds)
    if int(workers) == 1 or len(reels) == 1:
        return [make_reel(r, srcs, size) for r in reels]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    del srcs
    names = [os.fspath(s) for s in sources]
    with ProcessPoolExecutor(int(workers), mp_context=mp.get_context("spawn"),
                             initializer=_init_worker, initargs=(names, size)) as ex:
        return list(ex.map(make_reel, reels))
