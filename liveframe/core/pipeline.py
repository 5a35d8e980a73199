"""The tick pipeline: how one brain tick becomes one hop of audio, written once.

A tick is: the source's picture -> context stacking (:class:`~liveframe.core.context.ContextStack`)
-> :meth:`Brain.run <liveframe.core.brain.Brain.run>` -> the synth of the current mode
(:mod:`liveframe.core.synth`) -> exactly ``hop`` samples at the brain rate, before the
safety chain. A brain, mode or source swap is crossfaded over one tick: the old path (its
brain, synth and history) plays that tick too and is faded out under the new one.

The live producer calls :meth:`TickPipeline.step` once per tick; offline render and eval
call :meth:`TickPipeline.step_batch` with many ticks' pictures (one inference call); the
Csound bridge, the analysis sender and the Csound score writer are tick listeners. The
samples are the same, sample for sample, whichever entry point made them: live equals
offline by construction (``tests/test_pipeline.py`` proves it).

Threads: a pipeline belongs to one thread (the producer, or the caller of a render). Other
threads never call it; they ask the producer, which calls :meth:`swap_brain`,
:meth:`set_mode` or :meth:`switch_source` between ticks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.core.brain import Brain
from liveframe.core.context import ContextStack
from liveframe.core.spec import BrainSpec
from liveframe.core.spectral import SpectralSynth
from liveframe.core.synth import GrainPlacement, GranularSynth, make_synth
from liveframe.errors import BrainError

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


@dataclass
class Tick:
    """What one tick made; the pipeline reuses this object and its arrays every tick.

    Attributes
    ----------
    index : int
        The pipeline's tick number (0 for the first tick it made).
    position : int
        Where ``out`` starts in the pipeline's output, in brain-rate samples
        (``index * hop``): the timeline of the Csound bridge and of the score writer.
    frame : ndarray, shape (channels, height, width), uint8
        The picture the brain saw last (the current one, without its context).
    block : ndarray, shape (frame length,), float32
        The brain's audio block: a pcm brain's output; a spectrum brain's decoded grain
        (2 hop samples, Hann-windowed, :attr:`SpectralSynth.grain
        <liveframe.core.spectral.SpectralSynth.grain>`).
    out : ndarray, shape (hop,), float32
        The hop of audio this tick emits (after any crossfade, before the safety chain).
    placements : list of GrainPlacement or None
        Granular mode: where each grain of this tick lands, ``start`` counted from
        ``position`` (what :class:`~liveframe.core.synth.GranularSynth` plays). None in
        the other modes.
    spectrum : ndarray, shape (frames * bins,), float32, or None
        A spectrum brain's output (its log-magnitudes); None for a pcm brain and on a
        tail tick.
    tail : bool
        A tick without a picture, made by :meth:`TickPipeline.flush`: a spectrum brain's
        pending hops sounded as grains in ``raw`` and ``granular``.
    """

    index: int = 0
    position: int = 0
    frame: U8 = field(default_factory=lambda: np.zeros((1, 1, 1), np.uint8))
    block: F32 = field(default_factory=lambda: np.zeros(0, np.float32))
    out: F32 = field(default_factory=lambda: np.zeros(0, np.float32))
    placements: list[GrainPlacement] | None = None
    spectrum: F32 | None = None
    tail: bool = False


TickListener = Callable[[Tick], None]
"""Called by the pipeline's thread after every tick; must not block. Copy what you keep."""


class _Path:
    """One brain with its synth and its context history: what a crossfade fades out."""

    def __init__(self, brain: Brain, synth: object, ctx: ContextStack | None = None) -> None:
        self.brain = brain
        self.synth = synth
        self.ctx = ctx if ctx is not None else ContextStack(brain.spec.context)


class TickPipeline:
    """Context stacking -> brain -> synthesis -> one hop of audio per tick.

    Parameters
    ----------
    brain : Brain
    mode : {"ola", "raw", "granular"}
    seed : int
        Seed of the granular synth (every new synth, after a swap, starts from it).
    density, spread : float
        Granular parameters (see :class:`~liveframe.core.synth.GranularSynth`); change
        them between ticks with :meth:`set_grain`.
    phase : str, optional
        Spectrum brains: the phase method (default: the one the brain's spec names); see
        :mod:`liveframe.core.spectral`.
    """

    def __init__(
        self,
        brain: Brain,
        *,
        mode: str = "ola",
        seed: int = 0,
        density: float = 1.0,
        spread: float = 1.0,
        phase: str | None = None,
    ) -> None:
        _check_mode(mode)
        if phase is not None and phase not in C.PHASES:
            raise ValueError(f"phase={phase!r} must be one of {', '.join(C.PHASES)}")
        self.phase = phase
        self.seed = int(seed)
        self.density = float(density)
        self.spread = float(spread)
        self.mode = mode
        self._path = _Path(brain, self._new_synth(brain.spec, mode))
        self._fade: _Path | None = None  # the old path, playing until it is faded out
        self._warm = 0  # ticks the old path still plays alone while the new synth fills
        self._pending_brain: Brain | None = None
        self._pending_mode: str | None = None
        self._pending_source = False
        self._frozen: U8 | None = None
        self._old_frame: U8 | None = None  # the old source's last picture (source swap)
        self.listeners: list[TickListener] = []
        self.listener_errors = 0
        self._listener_warned = -np.inf
        spec = brain.spec
        self.tick = Tick(
            frame=np.zeros((spec.channels, spec.height, spec.width), np.uint8),
            block=np.zeros(spec.frame.length, np.float32),
            out=np.zeros(spec.hop, np.float32),
        )
        # step()'s own hop buffer: tick.out may alias a caller's array after step_batch
        self._out = self.tick.out
        self.ticks = 0  # ticks made so far
        self.bad_blocks = 0  # pcm blocks with a NaN or infinity, played as silence
        self.inference_s = 0.0  # seconds the last tick's (or batch's) inference took
        h = spec.hop
        t = (np.arange(h, dtype=np.float64) + 0.5) / h
        self._fade_in = (np.sin(0.5 * np.pi * t) ** 2).astype(np.float32)
        self._fade_out = (1 - self._fade_in).astype(np.float32)

    # -- facts ---------------------------------------------------------------------------
    @property
    def brain(self) -> Brain:
        return self._path.brain

    @property
    def spec(self) -> BrainSpec:
        return self._path.brain.spec

    @property
    def hop(self) -> int:
        return self.spec.hop

    @property
    def latency(self) -> int:
        """Samples by which the output trails the tick (the current synth's latency)."""
        return int(self._path.synth.latency)  # type: ignore[attr-defined]

    @property
    def pending(self) -> bool:
        """A swap is waiting for a tick (the next tick crossfades it in)."""
        return bool(self._fade is not None or self._pending_brain is not None
                    or self._pending_mode is not None or self._pending_source)

    # -- changes between ticks -----------------------------------------------------------
    def swap_brain(self, brain: Brain) -> None:
        """Crossfade to ``brain`` (see :meth:`_begin_tick` for when).

        Raises
        ------
        BrainError
            ``brain`` plays at another rate, fps, framing or kind, or sees other pictures;
            the current brain keeps playing.
        """
        self.check_brain(brain)
        self._pending_brain = brain

    def check_brain(self, brain: Brain) -> None:
        """Raise what :meth:`swap_brain` would raise for ``brain``; change nothing.

        Reads only the current spec and name, so another thread may call it (e.g. to
        refuse a brain where it was asked for, before handing it to the pipeline's thread).
        """
        old, s = self.spec, brain.spec
        name = self.brain.name
        if not old.compatible_with(s):
            raise BrainError(
                f"{brain.path}: refused, it plays {s.framing} {s.kind} at {s.sample_rate} Hz / "
                f"{s.fps:g} fps but {name} plays {old.framing} {old.kind} at "
                f"{old.sample_rate} Hz / {old.fps:g} fps; {name} keeps playing"
            )
        if (s.width, s.height, s.channels) != (old.width, old.height, old.channels):
            raise BrainError(
                f"{brain.path}: refused, it sees {s.width}x{s.height}x{s.channels} frames but "
                f"the source is captured at {old.width}x{old.height}x{old.channels}; "
                f"{name} keeps playing"
            )

    def set_mode(self, mode: str) -> None:
        """Crossfade to another synthesis mode over the next tick (no-op if unchanged)."""
        _check_mode(mode)
        if mode != self.mode or self._pending_mode is not None:
            self._pending_mode = mode

    def switch_source(self) -> None:
        """The next picture comes from a new source: its context starts afresh, and the
        old source's last picture is faded out under it over one tick."""
        self._pending_source = True

    def set_grain(self, *, density: float, spread: float) -> None:
        """Granular parameters for the coming ticks (clamped by the synth to 0..4)."""
        self.density = float(density)
        self.spread = float(spread)
        synth = self._path.synth
        if isinstance(synth, (GranularSynth, SpectralSynth)):
            synth.density = self.density
            synth.spread = self.spread

    # -- ticks ---------------------------------------------------------------------------
    def step(self, pixels: U8, *, freeze: bool = False, out: F32 | None = None) -> F32:
        """Make one tick from the source's picture.

        Parameters
        ----------
        pixels : ndarray, shape (channels, height, width), uint8
            The picture of this tick (the brain clock chose it).
        freeze : bool
            Play the picture held since freeze began instead of ``pixels``.
        out : ndarray, shape (hop,), float32, optional
            Where to write the hop (default: a buffer of the pipeline's, reused every tick).

        Returns
        -------
        ndarray, shape (hop,), float32
            This tick's hop of audio at the brain rate, before the safety chain.
        """
        self._begin_tick()
        if freeze and self._frozen is not None:
            pixels = self._frozen
        else:
            self._frozen = pixels
        path = self._path
        t0 = time.perf_counter()
        x = path.ctx.stack(pixels)
        block = path.brain.run(x)[0]
        self.inference_s = time.perf_counter() - t0
        return self._synth_tick(pixels, block, out)

    def step_batch(self, pixels: U8, *, out: F32 | None = None) -> F32:
        """Make ``n`` ticks from ``n`` pictures, with one inference call.

        The same samples as ``n`` calls of :meth:`step` (a pending swap is made by a
        first single :meth:`step`).

        Parameters
        ----------
        pixels : ndarray, shape (n, channels, height, width), uint8
        out : ndarray, shape (n * hop,), float32, optional

        Returns
        -------
        ndarray, shape (n * hop,), float32
        """
        n = pixels.shape[0]
        hop = self.hop
        if out is None:
            out = np.empty(n * hop, np.float32)
        i = 0
        while i < n and self.pending:
            self.step(pixels[i], out=out[i * hop : (i + 1) * hop])
            i += 1
        if i == n:
            return out
        path = self._path
        spec = self.spec
        x = np.empty((n - i, spec.in_channels, spec.height, spec.width), np.float32)
        for j in range(i, n):
            path.ctx.stack(pixels[j], out=x[j - i])
        t0 = time.perf_counter()
        blocks = path.brain.run(x)
        self.inference_s = time.perf_counter() - t0
        for j in range(i, n):
            self._begin_tick()
            self._synth_tick(pixels[j], blocks[j - i], out[j * hop : (j + 1) * hop])
        self._frozen = pixels[n - 1]
        return out

    def flush(self) -> F32:
        """What the synth still holds after the last tick (offline: the tail of a render).

        A spectrum brain in ``raw`` or ``granular`` sounds its decoder's pending hops as
        grains: each is a tick without a picture for the listeners (:attr:`ticks` counts
        it), so that the Csound score plays the same tail as the synth.
        """
        synth = self._path.synth
        if isinstance(synth, SpectralSynth) and synth.inner is not None:
            return np.asarray(synth.flush(on_hop=self._tail_tick), np.float32)
        return np.asarray(synth.flush(), np.float32)  # type: ignore[attr-defined]

    def _tail_tick(self, out: F32) -> None:
        self._publish(out, self._path.synth.grain, None, tail=True)  # type: ignore[attr-defined]

    # -- inside a tick -------------------------------------------------------------------
    def _begin_tick(self) -> None:
        """Apply at most one pending swap: the old path is kept to fade out.

        A new path's synth starts empty: its first hops lack the overlap of frames before
        it (a spectrum brain's first hop plays at a fraction of its level, the second at
        93 %). So the old path plays alone for the ``ceil(latency / hop)`` ticks the new
        synth takes to fill (it is fed and its hops are dropped), then the two crossfade
        over one tick. A swap costs the old brain's inference for those ticks too.
        """
        if self._fade is not None:
            return
        path = self._path
        if self._pending_brain is not None:
            brain, self._pending_brain = self._pending_brain, None
            self._fade = path
            self._path = _Path(brain, self._new_synth(brain.spec, self.mode))
            log.info("brain %s: crossfading in", brain.name)
        elif self._pending_mode is not None:
            mode, self._pending_mode = self._pending_mode, None
            if mode != self.mode:
                self._fade = path
                self.mode = mode
                self._path = _Path(path.brain, self._new_synth(self.spec, mode), path.ctx.copy())
        elif self._pending_source:
            self._pending_source = False
            self._fade = path
            self._old_frame = self.tick.frame.copy()
            self._frozen = None
            self._path = _Path(path.brain, self._new_synth(self.spec, self.mode))
        if self._fade is not None:
            self._warm = -(-int(self._path.synth.latency) // self.hop)  # type: ignore[attr-defined]

    def _synth_tick(self, pixels: U8, block: F32, out: F32 | None) -> F32:
        tick = self.tick
        if out is None:
            out = self._out
        synth = self._path.synth
        block = self._finite(block)
        synth.process(block, out=out)  # type: ignore[attr-defined]
        old = self._fade
        if old is not None:
            opx = self._old_frame if self._old_frame is not None else pixels
            xo = old.ctx.stack(opx)
            faded = old.synth.process(  # type: ignore[attr-defined]
                self._finite(old.brain.run(xo)[0]))
            if self._warm > 0:  # the new synth is still filling: the old path alone
                self._warm -= 1
                out[:] = faded
            else:
                self._fade = None
                self._old_frame = None
                out *= self._fade_in
                out += faded * self._fade_out
        tick.frame = pixels
        if isinstance(synth, SpectralSynth):
            self._publish(out, synth.grain, block, tail=False)
        else:
            self._publish(out, block, None, tail=False)
        return out

    def _publish(self, out: F32, block: F32, spectrum: F32 | None, *, tail: bool) -> None:
        """Fill the tick (one made from a picture, or a tail tick) and call the listeners."""
        tick = self.tick
        tick.index = self.ticks
        tick.position = self.ticks * self.hop
        tick.block = block
        tick.spectrum = spectrum
        tick.tail = tail
        if out is not tick.out:
            tick.out = out
        synth = self._path.synth
        tick.placements = (synth.last_placements  # type: ignore[attr-defined]
                           if self.mode == "granular" else None)
        self.ticks += 1
        for fn in self.listeners:
            try:
                fn(tick)
            except Exception as e:  # noqa: BLE001 -- a listener never stops the pipeline
                self.listener_errors += 1
                now = time.monotonic()
                if now - self._listener_warned >= 1.0:
                    self._listener_warned = now
                    log.warning("tick listener %r failed: %s", fn, e)

    def _finite(self, block: F32) -> F32:
        """A pcm block with any NaN or infinity is silence: in the synth's overlap it
        would spoil its neighbours' samples too (the safety chain then silences every
        device block it reaches). A spectrum brain's bins are sanitised one by one
        (:func:`liveframe.core.spectral.magnitudes`)."""
        if not self.spec.spectral:
            with np.errstate(over="ignore"):  # a huge finite block sums to inf: silence too
                if not np.isfinite(np.sum(block)):
                    self.bad_blocks += 1
                    return np.zeros_like(block)
        return block

    def _new_synth(self, spec: BrainSpec, mode: str) -> object:
        if spec.spectral:
            return SpectralSynth(spec, mode, phase=self.phase, seed=self.seed,
                                 density=self.density, spread=self.spread)
        return make_synth(mode, hop=spec.hop, framing=spec.framing, seed=self.seed,
                          density=self.density, spread=self.spread)


def _check_mode(mode: str) -> None:
    if mode not in C.MODES:
        raise ValueError(f"mode={mode!r} must be one of {', '.join(C.MODES)}")
