"""Context pictures at fixed time offsets, whatever the source's frame rate.

A brain with ``context = N`` sees, besides the tick's picture, the pictures of the N ticks
before it, so it can see motion. The brain clock runs at 30 fps; a 10 fps source holds
each picture for three ticks, and "the picture one tick ago" would be the same picture on
two ticks of three: motion would be seen on one tick in three, and the sound would pulse
at the source's rate. So the context is not the pictures the previous ticks *showed* but
the pictures the source *would have shown* one, two ... ticks ago, had it run at the
brain's rate: linear interpolation in time between the distinct pictures the source gave.

The rule, in ticks. The tick's picture P0 counts as "now". The distinct pictures before it,
P1, P2, ..., came every Δ ticks, Δ being the mean run (ticks each was held) of the last
:data:`RUNS` complete pictures: they sit at ``now - Δ``, ``now - 2Δ``, ...; context
picture j is the interpolation at ``now - j`` (beyond the oldest kept picture, the
oldest). A source at 30 fps or more gives Δ = 1, so context j is exactly the picture of
tick k - j (bit for bit what a plain history gives); at 10 fps Δ = 3, and every tick of a
held picture sees a third of the step from P1 to P0: steady motion, at the same size per
second as at 30 fps; at 24 fps runs of 1, 1, 1, 2 ticks average to Δ = 1.25, the true
interval (one picture's run alone would swing between 1 and 2). When P0 has been held for
more than twice Δ (the source stalled, or a still picture was given), the scene is
still: every context picture is P0. At the start of a source P0 stands in for everything
before it, as in training.

:class:`ContextStack` applies the rule tick by tick (the tick pipeline, live and offline);
:func:`context_plan` computes the same for a whole dataset at once (training), and
``tests/test_context.py`` proves they agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

SCALE = np.float32(1 / 255)

RUNS = 4
"""Complete runs averaged into the interval between distinct pictures."""


def _interp(times: list[float], at: float) -> tuple[int, int, float]:
    """Indices (a, b) and weight w of ``at`` between ``times`` (newest first, descending):
    the value is ``w * item[a] + (1 - w) * item[b]``."""
    for i in range(len(times) - 1):
        t_new, t_old = times[i], times[i + 1]
        if at >= t_old:
            w = (at - t_old) / (t_new - t_old)
            return i, i + 1, float(w)
    last = len(times) - 1
    return last, last, 1.0


class ContextStack:
    """The brain's input for each tick: context pictures at fixed time offsets, then the
    tick's picture, as float32 in [0, 1].

    Parameters
    ----------
    context : int
        Context pictures before the current one (``spec.context``).
    """

    def __init__(self, context: int) -> None:
        self.context = int(context)
        self.pictures: list[U8] = []  # distinct pictures, newest first (P0, P1, ...)
        self.runs: list[int] = []  # ticks each was held (P0: so far)

    def copy(self) -> ContextStack:
        """A stack with the same history (a mode swap keeps what the brain has seen)."""
        c = ContextStack(self.context)
        c.pictures, c.runs = list(self.pictures), list(self.runs)
        return c

    def reset(self) -> None:
        """A new source: its first picture stands in for everything before it."""
        self.pictures.clear()
        self.runs.clear()

    def push(self, px: U8) -> None:
        """Register this tick's picture (a repeat of P0, or a new distinct picture)."""
        if self.pictures and (px is self.pictures[0] or np.array_equal(px, self.pictures[0])):
            self.runs[0] += 1
            return
        self.pictures.insert(0, px)
        self.runs.insert(0, 1)
        keep = self.keep
        del self.pictures[keep:], self.runs[keep:]

    @property
    def keep(self) -> int:
        """Distinct pictures kept: what the oldest offset can reach, and RUNS runs."""
        return max(self.context + 2, RUNS + 1)

    def plan(self) -> list[tuple[int, int, float]]:
        """For each context picture j = context .. 1 (oldest first): (a, b, w) into
        :attr:`pictures`."""
        n = self.context
        if not self.pictures:
            return []
        if len(self.pictures) == 1:
            return [(0, 0, 1.0)] * n  # the first picture: nothing before it
        delta = float(np.mean(self.runs[1:1 + RUNS]))
        if self.runs[0] > 2 * delta:
            return [(0, 0, 1.0)] * n  # still
        times = [-i * delta for i in range(len(self.pictures))]
        return [_interp(times, -float(j)) for j in range(n, 0, -1)]

    def stack(self, px: U8, *, out: F32 | None = None) -> F32:
        """Push ``px`` and return the input ``(channels * (context + 1), H, W)`` float32."""
        self.push(px)
        c = px.shape[0]
        if out is None:
            out = np.empty((c * (self.context + 1), *px.shape[1:]), np.float32)
        for j, (a, b, w) in enumerate(self.plan()):
            dst = out[j * c:(j + 1) * c]
            pa, pb = self.pictures[a], self.pictures[b]
            if w == 1.0 or a == b:
                np.multiply(pa, SCALE, out=dst, casting="unsafe")
            else:
                np.multiply(pa, np.float32(w) * SCALE, out=dst, casting="unsafe")
                dst += pb * (np.float32(1.0 - w) * SCALE)
        np.multiply(px, SCALE, out=out[self.context * c:], casting="unsafe")
        return out


def context_plan(frames: npt.NDArray[Any], segments: list[tuple[int, int]], context: int
                 ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The rule of :class:`ContextStack` for every tick of a dataset at once.

    Parameters
    ----------
    frames : ndarray, shape (T, C, H, W), uint8
        One picture per brain tick (repeats where the source ran slower than the clock).
    segments : list of (start, stop)
        Each source's ticks; the context never reaches across a boundary.
    context : int

    Returns
    -------
    (a, b, w) : ndarrays, shape (T, context)
        Context picture j (oldest first) of tick k is ``w * frames[a] + (1 - w) *
        frames[b]`` (in [0, 1] after scaling by 1/255).
    """
    T = frames.shape[0]
    a = np.zeros((T, context), np.int64)
    b = np.zeros((T, context), np.int64)
    w = np.ones((T, context), np.float32)
    if context == 0:
        return a, b, w
    flat = frames.reshape(T, -1)
    for lo, hi in segments:
        stack = ContextStack(context)
        idx: list[int] = []  # dataset index of each distinct picture, newest first
        for k in range(lo, hi):
            was_repeat = bool(stack.pictures) and np.array_equal(flat[k], flat[idx[0]])
            if was_repeat:
                stack.runs[0] += 1
            else:
                stack.pictures.insert(0, frames[k])
                stack.runs.insert(0, 1)
                idx.insert(0, k)
                keep = stack.keep
                del stack.pictures[keep:], stack.runs[keep:], idx[keep:]
            for j, (pa, pb, pw) in enumerate(stack.plan()):
                a[k, j], b[k, j], w[k, j] = idx[pa], idx[pb], pw
    return a, b, w
