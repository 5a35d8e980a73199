"""The output guard: NaN guard, DC blocker and limiter, so no brain can blast the PA.

:class:`SafetyChain` runs in place and allocation-free in the audio callback (at the device
rate); offline render runs the same chain over the whole soundtrack at the brain rate with
:class:`BlockGuard`, many blocks per numpy call, sample for sample what one
:meth:`SafetyChain.process` per block gives.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from liveframe import constants as C

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]


CEILING = 0.89
"""The limiter's absolute peak: -1 dBFS (liveframe's output, and every grain it sends)."""


class SafetyChain:
    """NaN guard, DC blocker and limiter, in place and allocation-free.

    Used by the audio callback (at the device rate) and by offline render, so nothing a
    brain outputs can blast the PA or a file.

    Parameters
    ----------
    sr : int
        Sample rate of the signal it guards.
    ceiling : float
        Absolute peak the output never exceeds (default 0.89, -1 dBFS).
    dc_seconds : float
        Time constant of the DC tracker.
    release_seconds : float
        Time constant with which the limiter's gain recovers.
    max_block : int
        Largest block it will be given (its scratch buffer is allocated once here).
    """

    def __init__(
        self,
        *,
        sr: int,
        ceiling: float = CEILING,
        dc_seconds: float = 0.05,
        release_seconds: float = 0.25,
        max_block: int = 8192,
    ) -> None:
        self.sr = sr
        self.ceiling = np.float32(ceiling)
        self.dc_seconds = dc_seconds
        self.release_seconds = release_seconds
        self._dc = np.float32(0)
        self._gain = np.float32(1)
        self._ramp = np.zeros(max_block, np.float32)
        self._unit = np.arange(1, max_block + 1, dtype=np.float32)
        self.nan_blocks = 0
        self.limited_blocks = 0

    def reset(self) -> None:
        self._dc = np.float32(0)
        self._gain = np.float32(1)

    def process(self, x: F32) -> F32:
        """Guard ``x`` in place and return it."""
        n = x.shape[0]
        if n == 0:
            return x
        if n > self._ramp.shape[0]:
            raise ValueError(f"block of {n} samples exceeds max_block={self._ramp.shape[0]}")
        # NaN / inf guard: a block that carries any is silenced whole and the trackers
        # restart; anything beyond +-8 is a blast and is clipped before it can skew them.
        if not np.isfinite(np.sum(x)):
            x[:] = 0
            self.nan_blocks += 1
            self._dc = np.float32(0)
        np.clip(x, -8.0, 8.0, out=x)
        # DC blocker: a one-pole tracker of the block mean, removed with a per-block ramp.
        mean = np.float32(np.mean(x))
        a = np.float32(1.0 - np.exp(-n / (self.dc_seconds * self.sr)))
        new_dc = self._dc + a * (mean - self._dc)
        ramp = self._ramp[:n]
        np.multiply(self._unit[:n], np.float32((new_dc - self._dc) / n), out=ramp)
        ramp += self._dc
        x -= ramp
        self._dc = new_dc
        # Limiter: the gain falls at once to what keeps this block under the ceiling and
        # recovers with release_seconds; a ramp between blocks avoids zipper noise; a final
        # clip makes the ceiling absolute.
        peak = np.float32(max(np.max(x), -np.min(x)))  # no |x| temporary
        target = np.float32(1.0)
        if peak * self._gain > self.ceiling:
            target = self.ceiling / peak
            self.limited_blocks += 1
        if target < self._gain:
            g1 = target
        else:
            r = np.float32(1.0 - np.exp(-n / (self.release_seconds * self.sr)))
            g1 = self._gain + r * (target - self._gain)
        np.multiply(self._unit[:n], np.float32((g1 - self._gain) / n), out=ramp)
        ramp += self._gain
        x *= ramp
        self._gain = np.float32(g1)
        np.clip(x, -self.ceiling, self.ceiling, out=x)
        return x

    def process_blocks(self, xs: F32) -> F32:
        """:meth:`process` on each row of ``xs`` ``(blocks, n)``, in order, in place.

        The same samples as one :meth:`process` call per row, for offline render: the NaN
        guard, clips, means, peaks and ramps run over all rows per numpy call; only the two
        one-pole recursions (DC tracker, limiter gain) step through the rows, with the same
        float32 scalar arithmetic. Allocates; never for the audio callback.
        """
        nb, n = xs.shape
        if nb == 0 or n == 0:
            return xs
        if n > self._unit.shape[0]:
            raise ValueError(f"block of {n} samples exceeds max_block={self._unit.shape[0]}")
        bad = ~np.isfinite(np.sum(xs, axis=1))
        if bad.any():
            xs[bad] = 0
        np.clip(xs, -8.0, 8.0, out=xs)
        means = np.mean(xs, axis=1)
        a = np.float32(1.0 - np.exp(-n / (self.dc_seconds * self.sr)))
        start = np.empty(nb, np.float32)
        step = np.empty(nb, np.float32)
        dc = self._dc
        for i in range(nb):
            if bad[i]:
                self.nan_blocks += 1
                dc = np.float32(0)
            new_dc = dc + a * (means[i] - dc)
            start[i] = dc
            step[i] = np.float32((new_dc - dc) / n)
            dc = new_dc
        self._dc = dc
        unit = self._unit[:n]
        ramp = unit * step[:, None]
        ramp += start[:, None]
        xs -= ramp
        peaks = np.maximum(np.max(xs, axis=1), -np.min(xs, axis=1))
        r = np.float32(1.0 - np.exp(-n / (self.release_seconds * self.sr)))
        gain = self._gain
        for i in range(nb):
            peak = peaks[i]
            target = np.float32(1.0)
            if peak * gain > self.ceiling:
                target = self.ceiling / peak
                self.limited_blocks += 1
            g1 = target if target < gain else gain + r * (target - gain)
            start[i] = gain
            step[i] = np.float32((g1 - gain) / n)
            gain = np.float32(g1)
        self._gain = gain
        np.multiply(unit, step[:, None], out=ramp)
        ramp += start[:, None]
        xs *= ramp
        np.clip(xs, -self.ceiling, self.ceiling, out=xs)
        return xs


def guard(signal: F32, *, sr: int, block: int = C.HOP) -> F32:
    """:class:`SafetyChain` over ``signal`` (in place), ``block`` at a time.

    Computed by :class:`BlockGuard`: the same samples, many blocks per numpy call.
    """
    bg = BlockGuard(sr=sr, block=block)
    bg.process(signal)
    bg.log_counts()
    return signal


class BlockGuard:
    """:class:`SafetyChain` over consecutive ``block``-sample blocks of a
    signal, many blocks per call (:meth:`SafetyChain.process_blocks
    <SafetyChain.process_blocks>`): the same samples as one
    ``SafetyChain.process`` per block, which makes about fifteen numpy calls a block (some
    45 us for 735 samples, a sixth of what decoding a 640x360 frame costs).

    Parameters
    ----------
    sr : int
    block : int
        Samples per SafetyChain block; :meth:`process` cuts blocks from the start of each
        signal it is given, so every piece but the last must be a whole number of blocks.
    """

    def __init__(self, *, sr: int, block: int = C.HOP) -> None:
        self.block = max(block, 1)
        self.chain = SafetyChain(sr=sr, max_block=self.block)

    @property
    def nan_blocks(self) -> int:
        return self.chain.nan_blocks

    @property
    def limited_blocks(self) -> int:
        return self.chain.limited_blocks

    def process(self, x: F32) -> F32:
        """Guard ``x`` in place, ``block`` samples at a time from its start; return it."""
        if not x.flags.c_contiguous:  # the block views below must share x's memory
            x[...] = self.process(np.ascontiguousarray(x))
            return x
        b = self.block
        whole = x.shape[0] // b * b
        if whole:
            self.chain.process_blocks(x[:whole].reshape(-1, b))
        if whole < x.shape[0]:
            self.chain.process_blocks(x[whole:].reshape(1, -1))
        return x

    def log_counts(self) -> None:
        if self.nan_blocks or self.limited_blocks:
            log.info(
                "safety: %d blocks silenced (NaN/inf), %d limited",
                self.nan_blocks,
                self.limited_blocks,
            )
