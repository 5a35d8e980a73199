"""Spectrum brains: log-magnitude STFT frames in, one hop of audio per tick out.

A ``spectrum`` brain (:mod:`liveframe.core.spec`) predicts, per tick, ``frames``
log-magnitude spectra of the sound around the tick: frame ``j`` of tick ``k`` is centred
on sample ``k*hop + j*a - ((frames-1)*a)//2`` (``a = hop // frames``) and analysed with a
periodic Hann window of ``n_fft`` samples. Magnitudes are normalised so that a sine of
amplitude A reads about A in its peak bin, floored at :data:`~liveframe.constants.LOG_FLOOR`
and stored as natural logs. At 22050 Hz / 30 fps the defaults are ``n_fft`` 1024 (46 ms,
21.5 Hz bins) and 3 frames per tick (hop 245, 11 ms, redundancy 4.2: phase-gradient
reconstruction wants 4 or more).

:class:`SpectralDecoder` turns a tick's magnitudes into exactly one hop of audio, causally:
each frame gets a phase from the method named by the spec (or the player), is inverted and
overlap-added with the dual window; the hop that no later frame can touch is emitted.

Phase methods (:data:`~liveframe.constants.PHASES`):

- ``rtpghi``: real-time phase-gradient heap integration (Průša and Holighaus 2017), with
  no look-ahead beyond the tick: the phase's time derivative comes from the
  log-magnitude's frequency slope, its frequency derivative from the log-magnitude's time
  difference (a Gaussian-window approximation, gamma = 0.25645 n_fft^2 for Hann), centred
  between the frames of one tick (the brain gives them at once) and backward for a
  tick's last frame. Measured against the fully causal variant (backward everywhere) on
  true magnitudes: mel distance 1.07 against 1.19 dB on a free-phase film, 1.33 against
  1.88 dB on glides with clicks (``benchmarks/bench_phase.py``, before the flat-region
  rule below). Regions of the spectrum too smooth to be a partial (a brain's blurred
  prediction, :data:`FLAT_CURVATURE`) are played as noise, not locked into clicks. The heap
  is replaced by its vectorised equivalent for peaked spectra: every local maximum of the
  frame is integrated in time from its own previous phase, every other bin in frequency
  from the peak whose region it lies in (regions meet at the minima).
- ``pv``: a peak-locked phase vocoder (Laroche and Dolson 1999, identity locking): each
  peak advances by its interpolated frequency, the bins around it take its phase.
- ``random``: a fresh random phase per frame and bin (noisy, the classic baseline).
- ``steal``: the phases of a donor signal's STFT, frame after frame (the 2015 author's
  curiosity); the donor defaults to seeded white noise, which makes it a second random
  phase, and is the true soundtrack when eval compares methods on the true magnitudes.

:func:`griffin_lim` is the offline ceiling (fast Griffin-Lim from the ``rtpghi`` phase).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.core.spec import BrainSpec
from liveframe.core.synth import GrainPlacement, make_synth

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

GAMMA_HANN = 0.25645
"""gamma / n_fft^2 of a Hann window: the Gaussian that matches it (ltfat's constant)."""

LOG_MAX = float(np.log(8.0))
"""Largest log-magnitude played (a bin 18 dB over a full-scale sine): a brain's wild output
is clipped here before any exp."""

RELATIVE_TOL = 1e-5
"""Bins under this fraction of the frame's peak get a random phase (ltfat's ``tol``)."""


def hop_of(spec: BrainSpec) -> int:
    """The STFT hop ``a`` of a spectrum spec (``hop // frames``)."""
    return spec.hop // spec.frames


def frame_centers(spec: BrainSpec, ticks: int, *, first: int = 0) -> npt.NDArray[np.int64]:
    """Sample centres of the frames of ticks ``first .. first+ticks-1`` (tick 0 at 0)."""
    a = hop_of(spec)
    k = np.arange(first, first + ticks, dtype=np.int64)[:, None]
    j = np.arange(spec.frames, dtype=np.int64)[None, :]
    return (k * spec.hop + j * a - ((spec.frames - 1) * a) // 2).reshape(-1)


class Stft:
    """A Hann STFT with centred phase, normalised magnitudes and its dual-window inverse.

    Parameters
    ----------
    n_fft : int
        FFT size and window length (even).
    a : int
        Hop between frames (for the dual window of the inverse).
    """

    def __init__(self, n_fft: int = C.N_FFT, a: int = C.HOP // C.SPECTRAL_FRAMES) -> None:
        if n_fft <= 0 or n_fft % 2 or a <= 0 or a > n_fft // 2:
            raise ValueError(f"n_fft={n_fft} (even) and hop a={a} (1..n_fft/2) are needed")
        self.n_fft, self.a = n_fft, a
        self.bins = n_fft // 2 + 1
        n = np.arange(n_fft)
        self.window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)
        self.norm = 2.0 / float(self.window.sum())  # a sine of amplitude A peaks near A
        # Dual window for overlap-add at hop a: w / sum_k w(n + k a)^2 (periodic in a).
        sq = np.zeros(a)
        for off in range(0, n_fft, a):
            seg = self.window[off:off + a] ** 2
            sq[: seg.shape[0]] += seg
        self.dual = self.window / np.tile(sq, n_fft // a + 1)[:n_fft]
        # Centred phase: the frame's sample n_fft/2 is time zero, i.e. (-1)^k per bin.
        self.shift = np.where(np.arange(self.bins) % 2, -1.0, 1.0)
        self._synth = self.dual / self.norm  # the inverse's window, applied per segment

    def frames_of(self, x: npt.ArrayLike, centers: npt.ArrayLike) -> F64:
        """The windowed segments of ``x`` around ``centers`` (zeros outside ``x``)."""
        sig = np.asarray(x, np.float64).reshape(-1)
        c = np.asarray(centers, np.int64).reshape(-1)
        half = self.n_fft // 2
        lo = int(c.min()) - half if c.size else 0
        hi = int(c.max()) + half if c.size else 0
        pad_lo, pad_hi = max(0, -lo), max(0, hi - sig.shape[0])
        padded = np.pad(sig, (pad_lo, pad_hi))
        idx = (c - half + pad_lo)[:, None] + np.arange(self.n_fft)[None, :]
        return padded[idx] * self.window

    def analyze(self, x: npt.ArrayLike, centers: npt.ArrayLike) -> npt.NDArray[np.complex64]:
        """Normalised, centred-phase spectra ``(len(centers), bins)`` of ``x``."""
        spec = np.fft.rfft(self.frames_of(x, centers), axis=1) * (self.norm * self.shift)
        return spec.astype(np.complex64)

    def log_magnitude(self, x: npt.ArrayLike, centers: npt.ArrayLike) -> F32:
        """``ln(max(|X|, LOG_FLOOR))`` of :meth:`analyze`."""
        mag = np.abs(np.fft.rfft(self.frames_of(x, centers), axis=1)) * self.norm
        return np.log(np.maximum(mag, C.LOG_FLOOR)).astype(np.float32)

    def incoherent_gain(self) -> float:
        """Gain that restores the level of frames whose phases do not agree across frames.

        Coherent frames overlap-add to exactly the signal. A frame with a random phase
        spreads its energy (``sum w^2 x^2``) evenly over all ``n_fft`` samples instead of
        under the window, and frames with unrelated phases add their powers: a signal of
        power P comes out at ``P * mean(w^2) * sum(dual^2) / a``.
        """
        return float(np.sqrt(self.a / (np.mean(self.window**2) * np.sum(self.dual**2))))

    def invert_frames(self, spectra: npt.ArrayLike) -> F64:
        """Many spectra ``(n, bins)`` back to their dual-windowed segments ``(n, n_fft)``."""
        seg = np.fft.irfft(np.asarray(spectra) * self.shift, n=self.n_fft, axis=1)
        seg *= self._synth
        return seg

    def synthesize(self, spectra: npt.ArrayLike, centers: npt.ArrayLike, length: int) -> F32:
        """Overlap-add the inverse of ``spectra`` at ``centers`` into ``length`` samples."""
        s = np.asarray(spectra)
        c = np.asarray(centers, np.int64).reshape(-1)
        half = self.n_fft // 2
        segs = np.fft.irfft(s * self.shift, n=self.n_fft, axis=1) * (self.dual / self.norm)
        lo = min(0, int(c.min()) - half) if c.size else 0
        hi = max(length, int(c.max()) + half) if c.size else length
        acc = np.zeros(hi - lo)
        for seg, ci in zip(segs, c):
            start = int(ci) - half - lo
            acc[start:start + self.n_fft] += seg
        return acc[-lo:-lo + length].astype(np.float32)


TWO_PI = 2 * np.pi


def _polar(mags: F64, phases: F64) -> npt.NDArray[np.complex128]:
    """``mags * exp(1j * phases)``, with the trigonometry in float32.

    The phases are first wrapped to [-pi, pi] in float64 (an accumulated phase grows
    without bound), then the cosine and sine run in float32, numpy's vectorised loops:
    about a tenth of float64's, or of the complex exponential's, cost on this project's
    machines. The float32 phasor is within 1e-7 of the exact one, under the float32
    output's own resolution.
    """
    wrapped = phases - TWO_PI * np.rint(phases * (1 / TWO_PI))
    p32 = wrapped.astype(np.float32)
    out = np.empty(mags.shape, np.complex128)
    np.multiply(mags, np.cos(p32), out=out.real)
    np.multiply(mags, np.sin(p32), out=out.imag)
    return out


def stft_of(spec: BrainSpec) -> Stft:
    """The :class:`Stft` of a spectrum spec."""
    return Stft(spec.n_fft, hop_of(spec))


def spectral_targets(audio: npt.ArrayLike, spec: BrainSpec, ticks: int) -> F32:
    """Training targets ``(ticks, frames * bins)`` of a signal whose sample 0 is tick 0."""
    stft = stft_of(spec)
    out = np.empty((ticks, spec.length), np.float32)
    step = 512  # ticks at a time: bounded memory on a long film
    for t0 in range(0, ticks, step):
        n = min(step, ticks - t0)
        lm = stft.log_magnitude(audio, frame_centers(spec, n, first=t0))
        out[t0:t0 + n] = lm.reshape(n, spec.length)
    return out


def magnitudes(z: npt.ArrayLike, scale: float = 1.0) -> F64:
    """A brain's log-magnitudes as magnitudes: clipped, NaN-safe, exact zero near the floor."""
    zz = np.asarray(z, np.float64)
    zz = np.where(np.isfinite(zz), zz, -np.inf)  # NaN and -inf play silence
    zz = np.minimum(zz + np.log(scale), LOG_MAX)
    mag = np.exp(zz)
    mag[mag < 2 * C.LOG_FLOOR] = 0.0
    return mag


# -- phase methods -------------------------------------------------------------------------
def _peaks(s: F64, mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Local maxima along the last axis of ``s`` among ``mask`` (a plateau gives its first)."""
    left = np.ones(s.shape, bool)
    right = np.ones(s.shape, bool)
    np.greater(s[..., 1:], s[..., :-1], out=left[..., 1:])
    np.greater_equal(s[..., :-1], s[..., 1:], out=right[..., :-1])
    return left & right & mask


def _owners(s: F64, peaks: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """For every bin of every row, the flat index of the peak whose region holds it.

    A region starts at each row's first bin and at each valley (a bin not above its left
    neighbour and under its right one) and holds the peak after it; regions are numbered
    by one cumulative sum over the flattened rows, so the whole tick is a handful of
    vectorised operations. A region without a peak (all of it masked) owns its start.
    """
    rows, n = s.shape
    starts = np.zeros((rows, n), np.int64)
    starts[:, 0] = 1
    starts[:, 1:-1] = (s[:, 1:-1] <= s[:, :-2]) & (s[:, 1:-1] < s[:, 2:])
    region = np.cumsum(starts.reshape(-1)) - 1
    owner_of = np.flatnonzero(starts.reshape(-1))
    flat_peaks = np.flatnonzero(peaks.reshape(-1))
    owner_of[region[flat_peaks]] = flat_peaks
    return owner_of[region].reshape(rows, n)


FLAT_CURVATURE = -0.6
"""A peak whose log-magnitude curves less than this (nepers per bin squared) is no partial:
a Hann main lobe curves by -1.1 to -1.4, noise by about as much, but a brain's blurred,
smooth prediction hardly at all. Locked to one phase, such a region is a click at every
frame (90 Hz at the defaults: a smooth flat spectrum *is* the STFT of a pulse train), so
its bins get random phases, at the incoherent gain, like noise. Measured on a free-phase
film's brain (``benchmarks/bench_phase.py`` and the brain card): its frame-rate line fell
from 6.8 to 2.5 dB over its neighbourhood; on true magnitudes, which are rough, the mel
distance rose from 0.99 to 1.30 dB (film) and 1.33 to 2.01 dB (glides and clicks)."""


class _Phase:
    """Base of the phase methods: a tick's frames of magnitudes in, their phases out.

    ``noisy`` (after each call): the bins given a random phase as noise, which the decoder
    plays at :meth:`Stft.incoherent_gain`.
    """

    noisy: npt.NDArray[np.bool_] | None = None

    def flat_regions(self, s: F64, owner: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Bins whose peak is flat (:data:`FLAT_CURVATURE`): noise, not a partial."""
        c = np.zeros(s.shape)
        c[:, 1:-1] = s[:, :-2] - 2 * s[:, 1:-1] + s[:, 2:]
        flat = c.reshape(-1)[owner] > FLAT_CURVATURE
        self.noisy = flat
        return flat

    def __init__(self, stft: Stft, rng: np.random.Generator) -> None:
        self.stft = stft
        self.rng = rng
        self.bins = stft.bins
        self.omega = 2 * np.pi * stft.a * np.arange(self.bins) / stft.n_fft  # advance per hop
        self.prev = np.zeros(self.bins)
        # a table of random phases, read at a random offset each tick: no draw per bin
        self._table = rng.uniform(-np.pi, np.pi, 16 * self.bins)

    def random(self, shape: tuple[int, int]) -> F64:
        n = shape[0] * shape[1]
        if n * 2 > self._table.shape[0]:
            return self.rng.uniform(-np.pi, np.pi, shape)
        i = int(self.rng.integers(0, self._table.shape[0] - n))
        return self._table[i:i + n].reshape(shape).copy()

    def __call__(self, mags: F64) -> F64:
        """Phases ``(frames, bins)`` of one tick's magnitudes ``(frames, bins)``, in order."""
        raise NotImplementedError

    @staticmethod
    def _logs(mags: F64) -> tuple[F64, npt.NDArray[np.bool_]]:
        s = np.log(np.maximum(mags, C.LOG_FLOOR))
        mask = s > s.max(axis=1, keepdims=True) + np.log(RELATIVE_TOL)
        mask &= mags > 0
        return s, mask


class RtpghiPhase(_Phase):
    """Causal real-time phase-gradient integration, vectorised over peak regions."""

    def __init__(self, stft: Stft, rng: np.random.Generator) -> None:
        super().__init__(stft, rng)
        gamma = GAMMA_HANN * stft.n_fft**2
        self.t_mul = stft.a * stft.n_fft / gamma  # frequency slope of ln|X| -> phase advance
        self.f_mul = -gamma / (stft.a * stft.n_fft)  # time slope of ln|X| -> group delay
        self.hist = np.full((2, self.bins), np.log(C.LOG_FLOOR))  # ln|X| two, one frame back
        self.tgrad_prev = self.omega.copy()

    def __call__(self, mags: F64) -> F64:
        s, mask = self._logs(mags)
        f = s.shape[0]
        ext = np.concatenate([self.hist, s])  # frames -2, -1, 0 .. f-1
        tgrad = np.broadcast_to(self.omega, s.shape).copy()
        tgrad[:, 1:-1] += (0.5 * self.t_mul) * (s[:, 2:] - s[:, :-2])
        # time derivative of ln|X| -> the group delay: centred where the next frame is in
        # this tick (the brain gave all of them at once: look-ahead for free), backward
        # (second order) for the tick's last frame
        fgrad = (0.5 * self.f_mul) * (3 * s - 4 * ext[1:f + 1] + ext[:f])
        if f > 1:
            fgrad[:-1] = (0.5 * self.f_mul) * (s[1:] - ext[1:f])
        cum = np.zeros(s.shape)
        np.cumsum(0.5 * (fgrad[:, :-1] + fgrad[:, 1:]), axis=1, out=cum[:, 1:])
        peaks = _peaks(s, mask)
        owner = _owners(s, peaks)
        rnd = self.random(s.shape)
        phase = rnd.copy()
        flat = phase.reshape(-1)
        cflat = cum.reshape(-1)
        rel = cum - cflat[owner]  # frequency integral from each bin's peak
        prev, tprev = self.prev, self.tgrad_prev
        coherent = mask & ~self.flat_regions(s, owner)
        for j in range(f):
            pk = np.flatnonzero(peaks[j])
            # a peak: integrated in time from its own previous phase (trapezoid)
            flat[j * self.bins + pk] = prev[pk] + 0.5 * (tprev[pk] + tgrad[j, pk])
            row = np.where(coherent[j], flat[owner[j]] + rel[j], rnd[j])
            phase[j] = row
            prev, tprev = row, tgrad[j]
        self.hist = ext[-2:]
        self.prev, self.tgrad_prev = prev, tprev
        return phase


class PvPhase(_Phase):
    """Peak-locked phase vocoder: peaks advance by their frequency, their regions follow."""

    def __call__(self, mags: F64) -> F64:
        s, mask = self._logs(mags)
        peaks = _peaks(s, mask)
        peaks[:, 0] = peaks[:, -1] = False  # no interpolation at the edges
        owner = _owners(s, peaks)
        # quadratic interpolation of ln|X| around each peak: its true frequency
        den = s[:, :-2] - 2 * s[:, 1:-1] + s[:, 2:]
        delta = np.zeros(s.shape)
        ok = den < 0
        delta[:, 1:-1] = np.where(ok, 0.5 * (s[:, :-2] - s[:, 2:]) / np.where(ok, den, -1.0), 0)
        adv = self.omega + (2 * np.pi * self.stft.a / self.stft.n_fft) * delta
        rnd = self.random(s.shape)
        phase = rnd.copy()
        flat = phase.reshape(-1)
        prev = self.prev
        coherent = mask & ~self.flat_regions(s, owner)
        for j in range(s.shape[0]):
            pk = np.flatnonzero(peaks[j])
            flat[j * self.bins + pk] = prev[pk] + adv[j, pk]
            row = np.where(coherent[j], flat[owner[j]], rnd[j])
            phase[j] = row
            prev = row
        self.prev = prev
        return phase


class RandomPhase(_Phase):
    """A fresh random phase for every bin of every frame.

    Overlapping frames with unrelated phases add in power, not in amplitude: the decoder
    multiplies this method's frames by :meth:`Stft.incoherent_gain` to keep the level.
    """

    incoherent = True

    def __call__(self, mags: F64) -> F64:
        return self.random(mags.shape)


class StealPhase(_Phase):
    """The phases of a donor signal's STFT, frame after frame, looped."""

    def __init__(self, stft: Stft, rng: np.random.Generator,
                 donor: npt.ArrayLike | None = None) -> None:
        super().__init__(stft, rng)
        if donor is None:
            donor = rng.standard_normal(stft.a * 256 + stft.n_fft)
        x = np.asarray(donor, np.float64).reshape(-1)
        n = max(1, (x.shape[0] - stft.n_fft) // stft.a)
        centers = stft.n_fft // 2 + stft.a * np.arange(n)
        self.phases = np.angle(stft.analyze(x, centers)).astype(np.float64)
        self.i = 0

    def __call__(self, mags: F64) -> F64:
        idx = (self.i + np.arange(mags.shape[0])) % self.phases.shape[0]
        self.i += mags.shape[0]
        return self.phases[idx]


def make_phase(method: str, stft: Stft, *, seed: int = 0,
               donor: npt.ArrayLike | None = None) -> _Phase:
    """The phase method ``method`` (one of :data:`~liveframe.constants.PHASES`)."""
    rng = np.random.default_rng(seed)
    if method == "rtpghi":
        return RtpghiPhase(stft, rng)
    if method == "pv":
        return PvPhase(stft, rng)
    if method == "random":
        return RandomPhase(stft, rng)
    if method == "steal":
        return StealPhase(stft, rng, donor)
    raise ValueError(f"phase={method!r} must be one of {', '.join(C.PHASES)}")


# -- the decoder ---------------------------------------------------------------------------
class SpectralDecoder:
    """One tick's log-magnitudes in, exactly one hop of audio out, causally.

    After tick ``k`` the samples up to where tick ``k+1``'s first frame begins can no longer
    change; the hop that ends there is emitted, so the output trails the tick by
    ``latency = ((frames-1)*a)//2 + n_fft/2`` samples (757 at the defaults, 34 ms).

    Parameters
    ----------
    spec : BrainSpec
        A spectrum spec (its ``n_fft``, ``frames``, ``scale`` and default ``phase``).
    phase : str, optional
        A phase method overriding the spec's.
    seed : int
        Seed of the random phases (``rtpghi`` and ``pv`` use them for quiet bins only).
    donor : array, optional
        The ``steal`` method's donor signal at the brain rate.
    """

    def __init__(self, spec: BrainSpec, *, phase: str | None = None, seed: int = 0,
                 donor: npt.ArrayLike | None = None) -> None:
        if not spec.spectral:
            raise ValueError("SpectralDecoder needs a spectrum spec")
        self.spec = spec
        self.hop = spec.hop
        self.frames = spec.frames
        self.bins = spec.bins
        self.stft = stft_of(spec)
        self.phase_name = phase or spec.phase
        self.phase = make_phase(self.phase_name, self.stft, seed=seed, donor=donor)
        self._gain = self.stft.incoherent_gain() if getattr(self.phase, "incoherent",
                                                             False) else 1.0
        self._noise_gain = self.stft.incoherent_gain()
        a = self.stft.a
        self.latency = ((self.frames - 1) * a) // 2 + spec.n_fft // 2
        # acc[0] is the next sample to emit; frame j of the coming tick starts at acc[j*a]
        self._acc = np.zeros((self.frames - 1) * a + spec.n_fft + self.hop)
        self._grain_window = (0.5 - 0.5 * np.cos(np.pi * np.arange(2 * self.hop) / self.hop))
        self._last = np.zeros(2 * self.hop)  # the last two hops emitted
        self.grain = np.zeros(2 * self.hop, np.float32)

    def process(self, z: npt.ArrayLike, out: F32 | None = None) -> F32:
        """One tick: ``frames * bins`` log-magnitudes in, ``hop`` samples out."""
        zz = np.asarray(z)
        if zz.shape != (self.frames * self.bins,):
            raise ValueError(f"spectrum shape {zz.shape} must be ({self.frames * self.bins},)")
        mags = magnitudes(zz, self.spec.scale).reshape(self.frames, self.bins)
        if self._gain != 1.0:
            mags *= self._gain
        a, n = self.stft.a, self.spec.n_fft
        acc = self._acc
        phases = self.phase(mags)
        noisy = self.phase.noisy
        if noisy is not None and self._noise_gain != 1.0:
            mags[noisy] *= self._noise_gain
        if mags.any():
            segs = self.stft.invert_frames(_polar(mags, phases))
            for j in range(self.frames):
                acc[j * a:j * a + n] += segs[j]
        H = self.hop
        if out is None:
            out = np.empty(H, np.float32)
        return self._emit(out)

    def _emit(self, out: F32) -> F32:
        H, acc = self.hop, self._acc
        out[:] = acc[:H]
        acc[:-H] = acc[H:]
        acc[-H:] = 0.0
        self._last[:H] = self._last[H:]
        self._last[H:] = out
        np.multiply(self._last, self._grain_window, out=self.grain, casting="unsafe")
        return out

    def drain(self) -> Iterator[F32]:
        """Emit the pending tail hop by hop (no new frames), plus one hop for the last grain.

        A generator: after each hop it yields, :attr:`grain` is that hop's grain (a list
        built first would leave every consumer the last, silent grain).
        """
        pending = (self.frames - 1) * self.stft.a + self.spec.n_fft
        n = -(-pending // self.hop) + 1
        for _ in range(n):
            yield self._emit(np.empty(self.hop, np.float32))

    def flush(self) -> F32:
        """The samples still pending after the last tick (the tails of its frames)."""
        rest = self._acc[: (self.frames - 1) * self.stft.a + self.spec.n_fft].astype(np.float32)
        self._acc[:] = 0.0
        return rest


class SpectralSynth:
    """A spectrum brain's synth for one mode: the decoder, then the mode's own synth.

    ``ola`` plays the decoder's hop as it is (the lowest latency). ``raw`` and
    ``granular`` feed the decoder's grains (:attr:`SpectralDecoder.grain`, Hann-windowed
    and overlap-adding back to its output) to the pcm synth of that mode, so the granular
    scheme, its placements and the Csound bridge work on a spectrum brain's sound as on a
    pcm brain's blocks. The latency adds up: the decoder's, plus the inner synth's.

    Parameters
    ----------
    spec : BrainSpec
    mode : {"ola", "raw", "granular"}
    phase, seed, donor
        See :class:`SpectralDecoder`.
    density, spread : float
        Granular parameters.
    """

    def __init__(self, spec: BrainSpec, mode: str = "ola", *, phase: str | None = None,
                 seed: int = 0, density: float = 1.0, spread: float = 1.0,
                 donor: npt.ArrayLike | None = None) -> None:
        self.decoder = SpectralDecoder(spec, phase=phase, seed=seed, donor=donor)
        self.hop = spec.hop
        self.length = spec.length
        self.mode = mode
        self.inner = None if mode == "ola" else make_synth(
            mode, hop=spec.hop, framing="grain", seed=seed, density=density, spread=spread)
        self.latency = self.decoder.latency + (0 if self.inner is None else self.inner.latency)
        self._hop_buf = np.zeros(spec.hop, np.float32)

    @property
    def grain(self) -> F32:
        """The last tick's grain (2 hop samples, windowed): what the listeners get."""
        return self.decoder.grain

    @property
    def last_placements(self) -> list[GrainPlacement]:
        return getattr(self.inner, "last_placements", [])

    @property
    def density(self) -> float:
        return float(getattr(self.inner, "density", 1.0))

    @density.setter
    def density(self, v: float) -> None:
        if self.inner is not None and hasattr(self.inner, "density"):
            self.inner.density = v

    @property
    def spread(self) -> float:
        return float(getattr(self.inner, "spread", 1.0))

    @spread.setter
    def spread(self, v: float) -> None:
        if self.inner is not None and hasattr(self.inner, "spread"):
            self.inner.spread = v

    def process(self, z: npt.ArrayLike, out: F32 | None = None) -> F32:
        if self.inner is None:
            return self.decoder.process(z, out)
        self.decoder.process(z, self._hop_buf)
        return self.inner.process(self.decoder.grain, out)

    def flush(self, on_hop: Callable[[F32], None] | None = None) -> F32:
        """The tail after the last tick. In ``raw`` and ``granular`` the decoder's pending
        hops are grains for the inner synth: ``on_hop`` is called after each with the
        inner synth's hop (:attr:`grain` and :attr:`last_placements` are then that hop's),
        so that a tick's listeners (the Csound score) get the tail's grains too."""
        if self.inner is None:
            return self.decoder.flush()
        parts = []
        for _ in self.decoder.drain():
            parts.append(self.inner.process(self.decoder.grain))
            if on_hop is not None:
                on_hop(parts[-1])
        parts.append(self.inner.flush())
        return np.concatenate(parts)


def decode(z: npt.ArrayLike, spec: BrainSpec, *, phase: str | None = None, seed: int = 0,
           donor: npt.ArrayLike | None = None) -> F32:
    """Many ticks' log-magnitudes ``(ticks, frames*bins)`` -> audio, sample 0 = tick 0.

    The same samples :class:`SpectralDecoder` plays live, with its latency trimmed and
    its tail flushed (``ticks * hop`` samples).
    """
    dec = SpectralDecoder(spec, phase=phase, seed=seed, donor=donor)
    zz = np.asarray(z).reshape(-1, spec.length)
    parts = [dec.process(row) for row in zz]
    parts.append(dec.flush())
    sig = np.concatenate(parts)[dec.latency:]
    return sig[: zz.shape[0] * spec.hop]


def griffin_lim(z: npt.ArrayLike, spec: BrainSpec, *, n_iter: int = 32, momentum: float = 0.99,
                seed: int = 0) -> F32:
    """Offline phase retrieval: fast Griffin-Lim (Perraudin et al. 2013) from rtpghi's phase.

    Parameters
    ----------
    z : array, shape (ticks, frames * bins)
        Log-magnitudes as a brain outputs them.

    Returns
    -------
    ndarray, shape (ticks * hop,), float32
        Sample 0 is tick 0's time.
    """
    zz = np.asarray(z).reshape(-1, spec.length)
    ticks = zz.shape[0]
    stft = stft_of(spec)
    mags = magnitudes(zz, spec.scale).reshape(ticks, spec.frames, spec.bins)
    centers = frame_centers(spec, ticks)
    length = ticks * spec.hop
    ph = make_phase("rtpghi", stft, seed=seed)
    X = (mags * np.exp(1j * np.stack([ph(m) for m in mags]))).reshape(-1, spec.bins)
    mags = mags.reshape(-1, spec.bins)
    prev = X
    for _ in range(n_iter):
        x = stft.synthesize(X, centers, length)
        proj = stft.analyze(x, centers).astype(np.complex128)
        acc = proj + momentum * (proj - prev)
        prev = proj
        X = mags * np.exp(1j * np.angle(acc))
    return stft.synthesize(X, centers, length)


def synth_info(spec: BrainSpec) -> dict[str, Any]:
    """The spectral facts of a spec, for a brain card or ``liveframe info``."""
    a = hop_of(spec)
    return {"n_fft": spec.n_fft, "frames_per_tick": spec.frames, "stft_hop": a,
            "redundancy": round(spec.n_fft / a, 2), "window": spec.window,
            "phase": spec.phase, "bin_hz": round(spec.sample_rate / spec.n_fft, 2)}
