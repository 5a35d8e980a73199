"""Synthesis: brain blocks in, a continuous signal out, H samples per tick.

The same objects serve live play and offline render (DESIGN.md). Each synth takes one
block per tick and returns exactly ``hop`` samples at the brain rate; ``latency`` says how
many samples its output trails the tick (offline render trims it, live play lives with it).

- :class:`OlaSynth` (``ola``, the default): grain brains are overlap-added at hop H (their
  Hann-windowed blocks sum back to a continuous signal); block brains are joined with a
  predictive crossfade: the previous block is continued by linear prediction and faded
  into the new one over a few milliseconds, so no click lands on the frame boundary and a
  continuous signal passes.
- :class:`RawSynth` (``raw``): the 2015 framing, blocks cut and concatenated (for a grain
  brain, the middle H samples of each grain), kept for comparison: it carries the
  frame-rate artefact.
- :class:`GranularSynth` (``granular``): the 2015 Csound granular scheme in numpy.

"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.core.spec import Framing

F32 = npt.NDArray[np.float32]


def hann(n: int, *, dtype: Any = np.float32) -> npt.NDArray[Any]:
    """Periodic Hann window of length ``n``: copies at hop ``n/2`` sum to exactly 1."""
    if n <= 0:
        raise ValueError(f"n={n} must be a positive integer")
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(dtype)


def _check(block: F32, length: int) -> None:
    if block.shape != (length,):
        raise ValueError(f"block shape {block.shape} must be ({length},)")


class OlaSynth:
    """Windowed overlap-add (grain framing) or predictive crossfade (block framing).

    Parameters
    ----------
    hop : int
        Samples per tick (H).
    framing : {"grain", "block"}
        ``grain`` blocks are 2H long and already Hann-windowed by the brain's training
        target; ``block`` blocks are H long.
    crossfade : int
        Samples of crossfade at a ``block`` join between the previous block's predicted
        continuation and the new block (default 128, 5.8 ms at 22050 Hz).
    order : int
        Order of the linear predictor that continues the previous block.
    """

    def __init__(
        self, *, hop: int = C.HOP, framing: str = "grain", crossfade: int = 128, order: int = 16
    ) -> None:
        if hop <= 0:
            raise ValueError(f"hop={hop} must be a positive integer")
        if framing not in C.FRAMINGS:
            raise ValueError(f"framing={framing!r} must be one of {', '.join(C.FRAMINGS)}")
        frame = Framing(framing, hop)
        self.hop = hop
        self.framing = framing
        self.length = frame.length
        self.latency = frame.lead  # a grain's first half lands one hop before its tick
        self.crossfade = int(min(max(crossfade, 1), hop // 2))
        self.order = int(min(max(order, 1), hop // 4))
        t = (np.arange(self.crossfade, dtype=np.float64) + 0.5) / self.crossfade
        self._fade_in = np.sin(0.5 * np.pi * t).astype(np.float32) ** 2
        self._fade_out = (1 - self._fade_in).astype(np.float32)
        self._tail = np.zeros(hop, np.float32)
        self._started = False

    def process(self, block: F32, out: F32 | None = None) -> F32:
        """One tick: ``block`` (length,) in, ``hop`` samples out (into ``out`` if given)."""
        _check(block, self.length)
        H = self.hop
        if out is None:
            out = np.empty(H, np.float32)
        if self.framing == "grain":
            np.add(self._tail, block[:H], out=out)
            self._tail[:] = block[H:]
            return out
        out[:] = block
        if self._started:
            # Predictive crossfade: continue the previous block by linear prediction (what
            # packet-loss concealment does) and crossfade that continuation into the new
            # block. A continuous signal passes almost untouched; a jump in value or phase
            # becomes a smooth crossfade instead of a click on every frame boundary.
            cont = lpc_continue(self._tail, self.crossfade, order=self.order)
            out[: self.crossfade] = block[: self.crossfade] * self._fade_in + cont * self._fade_out
        self._tail[:] = block
        self._started = True
        return out

    def flush(self) -> F32:
        """What is still pending after the last tick (the second half of the last grain)."""
        if self.framing == "grain":
            return self._tail.copy()
        return np.zeros(0, np.float32)


def lpc_continue(x: F32, n: int, *, order: int = 16, context: int = 512) -> F32:
    """Continue ``x`` by ``n`` samples with a linear predictor fitted to its end.

    Covariance method: the ``order`` coefficients that best predict each of the last
    ``context`` samples from the ones before it (least squares, lightly regularised), so a
    sum of up to order/2 sinusoids is continued exactly. The continuation is bounded by
    twice the segment's peak, so a poor fit can never grow into a blast.

    Parameters
    ----------
    x : ndarray, shape (m,), float32
    n : int
        Samples to predict.
    order : int
    context : int

    Returns
    -------
    ndarray, shape (n,), float32
    """
    seg = np.asarray(x[-context:], dtype=np.float64)
    m = seg.shape[0]
    p = min(order, m // 4)
    if p < 1 or not np.any(seg):
        return np.zeros(n, np.float32)
    rows = np.lib.stride_tricks.sliding_window_view(seg[:-1], p)  # (m - p, p), oldest first
    target = seg[p:]
    gram = rows.T @ rows
    gram[np.diag_indices(p)] += 1e-9 * (np.trace(gram) / p + 1e-12)
    coef = np.linalg.solve(gram, rows.T @ target)
    buf = np.empty(p + n)
    buf[:p] = seg[-p:]
    peak = 2.0 * float(np.max(np.abs(seg)))
    for i in range(n):
        v = float(coef @ buf[i : i + p])
        buf[p + i] = peak if v > peak else (-peak if v < -peak else v)
    return buf[p:].astype(np.float32)


class RawSynth:
    """The 2015 framing: blocks concatenated, no window, no crossfade."""

    def __init__(self, *, hop: int = C.HOP, framing: str = "grain") -> None:
        frame = Framing(framing, hop)
        self.hop = hop
        self.framing = framing
        self.length = frame.length
        # the middle hop of a grain (centred on the tick), the whole of a block
        self._start = hop // 2 if frame.windowed else 0
        self.latency = frame.lead - self._start

    def process(self, block: F32, out: F32 | None = None) -> F32:
        _check(block, self.length)
        if out is None:
            out = np.empty(self.hop, np.float32)
        out[:] = block[self._start : self._start + self.hop]
        return out

    def flush(self) -> F32:
        return np.zeros(0, np.float32)


@dataclass
class GrainParams:
    """Parameters of one granular tick, for the Csound score and the OSC grain bridge."""

    onset: int  # samples, relative to the parent's nominal position
    offset: int  # read position in the parent block
    duration: int  # samples
    amplitude: float


@dataclass
class GrainPlacement:
    """One grain as :class:`GranularSynth` plays it, relative to the tick that drew it."""

    start: int  # samples after the first sample the tick emits
    offset: int  # read position in the parent block
    duration: int  # samples
    gain: float  # amplitude times the tick's normalisation
    envelope: bool  # shaped by a symmetric Hann (False: a grain brain's parent, windowed)


class GranularSynth:
    """The 2015 granular scheme: each block is a parent grain with children.

    Every block is a parent grain whose onset is jittered between -1 and +2 blocks
    (times ``spread``), with 1 to 20 children (times ``density``) whose durations shrink to
    25-99 % of the previous one and whose amplitudes fall as 1/(i+1), each read from a
    random place in the parent and shaped by a Hann envelope. Seeded: the same seed and
    blocks give the same samples.

    Parameters
    ----------
    hop : int
    framing : {"grain", "block"}
    seed : int
    density : float
        Scales the number of children (0 gives parents only).
    spread : float
        Scales the onset jitter (0 puts every grain on its tick).
    """

    MAX_CHILDREN = 20

    def __init__(
        self,
        *,
        hop: int = C.HOP,
        framing: str = "grain",
        seed: int = 0,
        density: float = 1.0,
        spread: float = 1.0,
    ) -> None:
        self.hop = hop
        self.framing = framing
        self.length = Framing(framing, hop).length
        self.latency = 2 * hop  # room for a parent drawn up to one hop early
        self.seed = seed
        self.density = float(density)
        self.spread = float(spread)
        # room for the latest grain at spread 4: H + 8 H + 4 H + 2 H of origin, onsets, length
        self._acc = np.zeros(16 * hop + self.length, np.float32)
        self._env_cache: dict[int, F32] = {}
        self._rng = np.random.default_rng(seed)
        self.last_placements: list[GrainPlacement] = []  # the last tick's, as played

    def _env(self, n: int) -> F32:
        e = self._env_cache.get(n)
        if e is None:
            # Symmetric Hann (zero at both ends): a smooth envelope for a lone grain.
            e = (0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)
            if len(self._env_cache) < 4096:
                self._env_cache[n] = e
        return e

    def grains(self) -> list[GrainParams]:
        """Draw the grains of one parent block (advances the random state)."""
        rng = self._rng
        L, H = self.length, self.hop
        spread = min(max(self.spread, 0.0), 4.0)
        density = min(max(self.density, 0.0), 4.0)
        jitter = rng.uniform(-1.0, 2.0)
        base = int(round(jitter * spread * H))
        out = [GrainParams(onset=base, offset=0, duration=L, amplitude=1.0)]
        n_children = int(round(rng.integers(1, self.MAX_CHILDREN + 1) * density))
        dur = float(L)
        for i in range(1, n_children + 1):
            dur = max(16.0, dur * rng.uniform(0.25, 0.99))
            d = int(dur)
            offset = int(rng.integers(0, max(1, L - d + 1)))
            onset = base + int(round(rng.uniform(-1.0, 2.0) * spread * H * 0.5)) + offset
            out.append(GrainParams(onset=onset, offset=offset, duration=d, amplitude=1 / (i + 1)))
        return out

    def placements(self, grains: list[GrainParams]) -> list[GrainPlacement]:
        """Where and how loud each grain of one tick lands (what :meth:`process` plays).

        ``start`` counts samples after the first sample this tick emits; a grain that would
        start in the past is moved to ``start = 0`` whole (never cut, so never a click).
        The Csound render path writes its score from these, so both play the same grains.
        """
        H, L = self.hop, self.length
        norm = 1.0 / float(np.sqrt(sum(g.amplitude**2 for g in grains)))
        # The accumulator starts at the sample emitted now; the parent's nominal start
        # (Framing.lead before the tick) sits `origin` later.
        origin = self.latency - Framing(self.framing, H).lead
        out = []
        for i, g in enumerate(grains):
            # a grain brain's whole block is already windowed; every other grain gets one
            envelope = not (i == 0 and self.framing == "grain" and g.duration == L)
            out.append(
                GrainPlacement(
                    start=max(0, origin + g.onset),
                    offset=g.offset,
                    duration=g.duration,
                    gain=float(np.float32(g.amplitude) * np.float32(norm)),
                    envelope=envelope,
                )
            )
        return out

    def process(self, block: F32, out: F32 | None = None) -> F32:
        _check(block, self.length)
        H = self.hop
        if out is None:
            out = np.empty(H, np.float32)
        placements = self.placements(self.grains())
        self.last_placements = placements
        acc = self._acc
        for p in placements:
            seg = block[p.offset : p.offset + p.duration]
            if p.envelope:
                seg = seg * self._env(seg.shape[0])
            end = min(p.start + seg.shape[0], acc.shape[0])
            if end > p.start:
                acc[p.start : end] += seg[: end - p.start] * np.float32(p.gain)
        out[:] = acc[:H]
        acc[:-H] = acc[H:]
        acc[-H:] = 0
        return out

    def flush(self) -> F32:
        """Everything still pending after the last tick (the tails of the last grains).

        Always ``16 * hop + length`` samples (zeros after the last grain), whatever the seed.
        """
        rest = self._acc.copy()
        self._acc[:] = 0
        return rest


def make_synth(
    mode: str,
    *,
    hop: int = C.HOP,
    framing: str = "grain",
    seed: int = 0,
    density: float = 1.0,
    spread: float = 1.0,
) -> OlaSynth | RawSynth | GranularSynth:
    """The synth for ``mode`` (``ola``, ``raw`` or ``granular``)."""
    if mode == "ola":
        return OlaSynth(hop=hop, framing=framing)
    if mode == "raw":
        return RawSynth(hop=hop, framing=framing)
    if mode == "granular":
        return GranularSynth(hop=hop, framing=framing, seed=seed, density=density, spread=spread)
    raise ValueError(f"mode={mode!r} must be one of {', '.join(C.MODES)}")


def synthesize(
    blocks: Iterable[F32],
    *,
    mode: str = "ola",
    hop: int = C.HOP,
    framing: str = "grain",
    seed: int = 0,
    density: float = 1.0,
    spread: float = 1.0,
) -> F32:
    """Blocks that no brain made (e.g. a dataset's targets) through the synth of ``mode``.

    Parameters
    ----------
    blocks : iterable of ndarray, shape (n, length), float32
        One block per tick, in tick order.
    mode : {"ola", "raw", "granular"}

    Returns
    -------
    ndarray, shape (ticks * hop + flush - latency,), float32
        The synth's output with its ``latency`` trimmed (sample 0 is tick 0's time) and its
        tail flushed. A brain's blocks go through :class:`~liveframe.core.pipeline.TickPipeline`.
    """
    synth = make_synth(mode, hop=hop, framing=framing, seed=seed, density=density,
                       spread=spread)
    parts = [synth.process(b) for batch in blocks for b in batch]
    parts.append(synth.flush())
    return np.concatenate(parts)[synth.latency :]
