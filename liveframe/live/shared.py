"""The one object the producer and the audio callback share: who writes what, who reads it.

The producer thread and PortAudio's callback thread talk through exactly two objects: the
:class:`~liveframe.live.ringbuffer.RingBuffer` (samples) and a :class:`StreamState`
(everything else). Each field has one writer. A Python attribute store is atomic under
the GIL, and a writer publishes a counter only after the data it counts is in place, so
neither side ever takes a lock (python-rtmixer's design, in Python).

=========================  =====================  ==========================================
field                      written by             read by
=========================  =====================  ==========================================
``target_gain``            producer (controls)    callback: the gain it glides to
``silent``                 producer (panic)       callback: zeros at once while set
``counting``               engine, producer       callback: count underruns only while set
``fetch_requested``        the stats reader       callback: swap the stats records
``gain``                   callback               engine's stop: wait until faded out
``callbacks``, ``frames``  callback               producer: pacing; anyone: progress
timing log (``log_*``)     callback               producer: pacing and latency matching
stats records              callback               the stats reader, once frozen
``fetch_served``           callback               the stats reader
level log (``log_peak``,   callback               anyone: :meth:`~StreamState.output_level`
``log_sq``, ``measured``)                         (the meter, status, analysis out)
=========================  =====================  ==========================================

The engine sets ``counting`` once the prefilled stream runs and clears it on stop; the
producer clears it when the source has ended (the tail playing out is no underrun).

Stats are fetched the way python-rtmixer's ``fetch_and_reset_stats()`` works: the callback
accumulates into one of two :class:`CallbackStats` records; a reader asks for a swap, the
callback swaps at its next buffer (resetting the record it starts on), and the record it
left is frozen: the reader copies it out. The reader never reads a record the callback
may be writing. There is one stats reader: the producer (see
:class:`~liveframe.live.producer.Producer`).

The level log is what the meter reads: the callback stores each buffer's peak and sum of
squares *as output* (after gain, mute, panic and the safety chain) at the buffer's log
index, then publishes ``measured``; :meth:`StreamState.output_level` reads the newest
buffers back, any thread, without a lock.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class CallbackStats:
    """What the callback counts; accumulated by it, fetched by the reader.

    Attributes
    ----------
    callbacks : int
        Buffers played.
    underruns : int
        Buffers the ring could not fill (counted while ``counting`` is set).
    xruns : int
        Buffers the host reported as an output underflow.
    peak : float
        Largest absolute sample output (after gain and safety).
    nan_blocks, limited_blocks : int
        Buffers the safety chain found non-finite, or had to limit.
    """

    callbacks: int = 0
    underruns: int = 0
    xruns: int = 0
    peak: float = 0.0
    nan_blocks: int = 0
    limited_blocks: int = 0

    def reset(self) -> None:
        self.callbacks = self.underruns = self.xruns = 0
        self.nan_blocks = self.limited_blocks = 0
        self.peak = 0.0

    def add(self, other: CallbackStats) -> None:
        """Accumulate ``other`` into this record (counts add, the peak is the larger)."""
        self.callbacks += other.callbacks
        self.underruns += other.underruns
        self.xruns += other.xruns
        self.peak = max(self.peak, other.peak)
        self.nan_blocks += other.nan_blocks
        self.limited_blocks += other.limited_blocks


class StreamState:
    """The producer/callback contract: gain, panic, counting, timing log and stats.

    Parameters
    ----------
    log_size : int
        Callbacks remembered in the timing log (circular).
    gain : float
        The callback's smoothed gain before its first buffer (0: the first buffer fades in).
    target_gain : float
        The gain the callback glides to until the producer says otherwise.
    """

    def __init__(self, *, log_size: int = 8192, gain: float = 0.0,
                 target_gain: float = 1.0) -> None:
        # -- written by the producer (and the engine), read by the callback
        self.target_gain = float(target_gain)
        self.silent = False
        # routing (--route csound): the meter still reads the gained, limited signal, the
        # level Csound plays at, but this process outputs and records zeros (set at start)
        self.own_output = True
        self.counting = False
        self.fetch_requested = 0
        # -- written by the callback, read by the others
        self.gain = float(gain)
        self.callbacks = 0  # buffers logged; published after the log entry is written
        self.frames = 0  # samples output so far
        self.log_pos = np.zeros(log_size, np.int64)  # ring.read at the buffer's start
        self.log_frames = np.zeros(log_size, np.int64)  # frames in the buffer
        self.log_now = np.zeros(log_size, np.float64)  # PortAudio's currentTime
        self.log_dac = np.zeros(log_size, np.float64)  # outputBufferDacTime
        self.log_peak = np.zeros(log_size, np.float64)  # the buffer's output peak
        self.log_sq = np.zeros(log_size, np.float64)  # its sum of squared output samples
        self.measured = 0  # buffers whose level is logged; published after the entry
        self.fetch_served = 0
        self._records = (CallbackStats(), CallbackStats())
        self._active = 0  # the record the callback writes

    # -- callback side -------------------------------------------------------------------
    def begin_buffer(self, pos: int, frames: int, now: float, dac: float) -> CallbackStats:
        """Callback: log this buffer, serve a stats request; the record to count into.

        Allocates nothing: a few stores into preallocated arrays.
        """
        i = self.callbacks % self.log_pos.shape[0]
        self.log_pos[i] = pos
        self.log_frames[i] = frames
        self.log_now[i] = now
        self.log_dac[i] = dac
        self.callbacks += 1  # publish after the entry
        self.frames += frames
        req = self.fetch_requested
        if req != self.fetch_served:
            new = 1 - self._active
            self._records[new].reset()
            self._active = new
            self.fetch_served = req  # publish after the swap
        rec = self._records[self._active]
        rec.callbacks += 1
        return rec

    def end_buffer(self, peak: float, sumsq: float) -> None:
        """Callback: log the output level of the buffer :meth:`begin_buffer` began.

        ``peak`` and ``sumsq`` are of the samples as output (after gain and safety).
        Allocates nothing: two stores into preallocated arrays, then the publication.
        """
        n = self.callbacks
        i = (n - 1) % self.log_peak.shape[0]
        self.log_peak[i] = peak
        self.log_sq[i] = sumsq
        self.measured = n  # publish after the entry

    # -- reader side (one thread: the producer) ------------------------------------------
    def fetch_and_reset_stats(self, into: CallbackStats) -> bool:
        """Add the callback's counts since the last fetch to ``into``; ask for the next.

        Non-blocking: False (nothing added) while the callback has not yet served the
        previous request, i.e. until its next buffer. Call it from one thread only.
        """
        if self.fetch_served != self.fetch_requested:
            return False
        # the callback writes _records[_active] and swaps only on a new request: the
        # other record is frozen (and was not read before: a read is always followed by
        # a request, and a served request flips which record is frozen)
        into.add(self._records[1 - self._active])
        self.fetch_requested += 1
        return True

    def collect_stats(self, into: CallbackStats) -> None:
        """Add every count not yet fetched to ``into``; only once no callback runs any more
        (the stream is closed), so both records are frozen."""
        served = self.fetch_served == self.fetch_requested
        if served:
            into.add(self._records[1 - self._active])
        into.add(self._records[self._active])
        self._records[0].reset()
        self._records[1].reset()
        self.fetch_requested = self.fetch_served

    def last_buffer(self) -> tuple[int, float, int] | None:
        """``(callbacks, currentTime, frames)`` of the newest logged buffer, read
        consistently (None before the first buffer, or if the callback keeps racing)."""
        size = self.log_now.shape[0]
        for _ in range(3):
            n = self.callbacks
            if n == 0:
                return None
            i = (n - 1) % size
            now = float(self.log_now[i])
            frames = int(self.log_frames[i])
            if self.callbacks == n:  # no callback meanwhile: the entry is whole
                return n, now, frames
        return None

    def buffers(self, start: int, stop: int) -> Iterator[tuple[int, int, float]]:
        """``(pos, frames, dac)`` of logged buffers ``start..stop-1`` (still in the log)."""
        size = self.log_pos.shape[0]
        for j in range(max(start, stop - size + 1), stop):
            i = j % size
            yield int(self.log_pos[i]), int(self.log_frames[i]), float(self.log_dac[i])

    def output_level(self, samples: int) -> tuple[float, float]:
        """``(peak, rms)`` of what the callback output over its newest buffers that
        together hold at least ``samples`` frames (at least one buffer); ``(0, 0)`` before
        the first. Any thread; reads only entries the callback has published.
        """
        m = self.measured
        size = self.log_peak.shape[0]
        peak = sq = 0.0
        frames = 0
        j = m - 1
        while j >= max(0, m - size + 2) and (frames < samples or frames == 0):
            i = j % size
            peak = max(peak, float(self.log_peak[i]))
            sq += float(self.log_sq[i])
            frames += int(self.log_frames[i])
            j -= 1
        if frames == 0:
            return 0.0, 0.0
        return peak, math.sqrt(sq / frames)

    def dac_offset(self) -> float:
        """Median ``outputBufferDacTime - currentTime`` over the log (s; 0 before any)."""
        k = min(self.callbacks, self.log_now.shape[0])
        if k == 0:
            return 0.0
        return float(np.median(self.log_dac[:k] - self.log_now[:k]))
