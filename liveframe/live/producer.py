"""The producer: the brain clock, paced by the audio device.

Once per tick the producer reads the controls, takes the tick's picture from the
:class:`~liveframe.live.capture.Capture`, calls
:meth:`TickPipeline.step <liveframe.core.pipeline.TickPipeline.step>` (which alone knows
how a tick is made), resamples the hop to the device rate (soxr, streaming) and writes
it into the ring buffer just in time: ``margin`` samples' time before the callback buffer
that needs it (:meth:`Producer.due_in`). It measures what each tick cost and, by
PortAudio's own timing, how long each tick's picture took to reach the DAC.

It talks to the callback only through the ring and the
:class:`~liveframe.live.shared.StreamState`, and it is the one reader of the callback's
stats (:meth:`~liveframe.live.shared.StreamState.fetch_and_reset_stats`, once a tick, into
:attr:`Producer.totals`). Work it must not wait for (loading a brain, opening a source,
stopping a capture or the engine, releasing a brain) goes to the engine through
:class:`Hooks`; what comes back (a loaded brain, an opened source) waits in a
:class:`Mailbox` until a tick boundary.

Brain swaps: the last request wins. The engine numbers every brain request
(:attr:`Producer.brain_wanted` is the newest number); a loaded brain comes back in a
:data:`BrainBox` ``[number, brain]`` and is swapped in only while its number is still the
newest, otherwise handed back to be released. The producer never drops the last reference
to a brain itself (freeing an onnxruntime session takes time it does not have): a brain
it no longer plays, or never will, goes back to the engine in its box
(:attr:`Hooks.retire_brain`), which empties the box on its worker thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.control.params import Controls
from liveframe.core.pipeline import TickPipeline
from liveframe.errors import BrainError, DeviceError
from liveframe.live.capture import Capture
from liveframe.live.ringbuffer import RingBuffer
from liveframe.live.shared import CallbackStats, StreamState

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
T = TypeVar("T")

BrainBox = list[Any]
"""``[request number, Brain]`` while it travels between threads; whoever releases the brain
empties the box, so the brain's last reference goes where the box is emptied."""

RESAMPLE_QUALITY = "LQ"
"""soxr quality of the live resampler. 'LQ' (16-bit precision) holds back ~45 samples at
22050 -> 48000 Hz and returns the same count every tick; 'HQ' holds back ~310 (6.5 ms) in
uneven chunks, which costs latency for nothing a 22 kHz brain can use."""

DEFAULT_MARGIN_S = 0.016
"""Default safety lead of a normal-priority producer (s): the lowest that played with no
underruns in benchmarks/bench_live.py's fixed-margin sweep under a CPU hog on a loaded
2-core machine (see benchmarks/results/live.md); ``adaptive`` raises it after an underrun."""

REALTIME_MARGIN_S = 256 / 48000
"""Default safety lead of a real-time producer (s; 256 samples at 48 kHz, one JACK period):
it wakes on time under load, so the lead only covers its own cost and the GIL hand-over
(benchmarks/bench_live.py: 10 minutes under a CPU hog, and with the monitor open)."""

PRODUCER_RT_PRIORITY = 5
"""SCHED_FIFO priority the producer asks for (``realtime=True``, where the system allows
it: root, or an ``rtprio`` limit as audio users get with JACK). Below JACK's own real-time
threads (jackd's default is 10, its clients run just under it), above every normal thread:
on a loaded machine a normal-priority producer can wait several ms for a core, which is
what the margin otherwise has to cover. The producer sleeps between ticks (a fraction of a
percent of a core), and Linux keeps 5 % of every second for normal threads regardless."""

TAIL_FADE_S = 0.05
"""Fade-out over the end of the synth's tail when the source ends (s)."""


def request_realtime(priority: int = PRODUCER_RT_PRIORITY) -> bool:
    """Give the calling thread SCHED_FIFO ``priority``; False where not permitted."""
    if not hasattr(os, "sched_setscheduler"):  # not on macOS or Windows
        return False
    try:
        # a thread id: on Linux sched_setscheduler acts on that one thread
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_FIFO,
                              os.sched_param(priority))
    except (OSError, ValueError):
        return False
    return True


class Mailbox(Generic[T]):
    """One slot handed from a helper thread to the producer, which never waits for it."""

    def __init__(self) -> None:
        self._item: T | None = None
        self._lock = threading.Lock()

    def put(self, item: T | None) -> T | None:
        """Leave ``item`` (any thread); returns the item it replaced, not yet taken."""
        with self._lock:
            old, self._item = self._item, item
        return old

    def take(self) -> T | None:
        """The item, if there is one and the slot is free right now (never blocks)."""
        if self._item is None or not self._lock.acquire(blocking=False):
            return None
        try:
            item, self._item = self._item, None
        finally:
            self._lock.release()
        return item


@dataclass
class Hooks:
    """What the producer asks of its owner (each must return at once).

    Attributes
    ----------
    load_brain : callable(str)
        A brain was asked for by name or path (``controls.request_brain``); the owner
        numbers the request and sets :attr:`Producer.brain_wanted`.
    open_source : callable(str)
        ``controls.source`` changed to this.
    retire_source : callable(Capture)
        This capture was swapped out: stop it.
    ended : callable()
        The producer has stopped by itself (the source ended and played out, or it
        failed): stop the engine.
    retire_brain : callable(BrainBox)
        A brain this producer no longer plays, or will never play (superseded or
        refused): release it off this thread (empty the box there).
    """

    load_brain: Callable[[str], None]
    open_source: Callable[[str], None]
    retire_source: Callable[[Capture], None]
    ended: Callable[[], None]
    retire_brain: Callable[[BrainBox], None]


class Producer:
    """The producer thread and its schedule; started by :meth:`start`, joined by :meth:`stop`.

    Parameters
    ----------
    pipeline : TickPipeline
        From now on used by this producer's thread only.
    source : Capture
    ring : RingBuffer
        Samples at the device rate, read by the callback.
    shared : StreamState
        The contract with the callback.
    controls : Controls
        Read once per tick.
    hooks : Hooks
    sr : int
        The device's rate.
    blocksize : int
        Frames per callback (0: the host chooses).
    margin : int, optional
        Safety lead in samples at the device rate; default :data:`REALTIME_MARGIN_S` once
        the thread has real-time scheduling, else :data:`DEFAULT_MARGIN_S`.
    adaptive : bool
        After an underrun, raise the margin by one block (up to ``8 * blocksize`` or 4096
        samples, whichever is larger).
    realtime : bool
        Ask for real-time scheduling (:data:`PRODUCER_RT_PRIORITY`).

    Attributes
    ----------
    totals : CallbackStats
        The callback's counts, fetched once a tick (at most one tick old).
    source_start_tick : int
        The tick at which the current source came in (a clocked file's tick 0).
    source_switches : int
    source_ended : bool
        The source ended and its tail was queued.
    fading : bool
        Set by the owner while it fades out: the producer leaves the gain alone.
    error : str or None
        Why the producer failed (a bug).
    brains : Mailbox of BrainBox
        A loaded brain waiting for a tick boundary.
    brain_wanted : int
        The number of the newest brain request (written by the owner): only a brain of
        that number is swapped in.
    brain_level_dbfs : float
        Peak level of the brain's own output over the last tick (before the gain, mute,
        panic and the limiter; the level that reaches the output is the callback's, see
        :meth:`~liveframe.live.shared.StreamState.output_level`).
    """

    def __init__(self, pipeline: TickPipeline, source: Capture, ring: RingBuffer,
                 shared: StreamState, controls: Controls, hooks: Hooks, *, sr: int,
                 blocksize: int, margin: int | None = None, adaptive: bool = True,
                 realtime: bool = True) -> None:
        self.pipeline = pipeline
        self.source = source
        self.ring = ring
        self.shared = shared
        self.controls = controls
        self.hooks = hooks
        self.sr = int(sr)
        self.blocksize = int(blocksize)
        self.margin_given = margin is not None
        self.margin = int(margin if margin is not None else round(DEFAULT_MARGIN_S * self.sr))
        self.initial_margin = self.margin
        self.max_margin = max(self.margin, 8 * self.blocksize, 4096)
        self.adaptive = bool(adaptive)
        self.realtime_requested = bool(realtime)
        self.realtime = False  # whether the thread got real-time scheduling
        self.policy: int | None = None  # its scheduling policy, as the OS reports it
        self.brains: Mailbox[BrainBox] = Mailbox()
        self.brain_wanted = 0
        self._outgoing: BrainBox | None = None  # the brain being crossfaded out
        self.sources: Mailbox[Capture] = Mailbox()
        self.stream_time: Callable[[], float] | None = None  # the stream's clock, once open
        self.totals = CallbackStats()
        self.ratio = self.sr / pipeline.spec.sample_rate
        # a callback counts as silent after two of its own buffers at least
        self.silent_after_s = max(type(self).silent_after_s, 2 * self.blocksize / self.sr)
        self._rs = self._new_resampler()
        self.source_start_tick = 0
        self.source_switches = 0
        self.source_ended = False
        self.fading = False
        self.error: str | None = None
        self.brain_level_dbfs = -120.0
        self._brain_pos = 0  # brain-rate samples emitted
        self._panic_seen = controls.panic_count
        self._source_seen = controls.source
        self._cost = np.zeros(1 << 16, np.float64)  # seconds per tick, circular
        self._cost_n = 0
        self._cost_est = 0.0  # seconds per tick, smoothed (scheduling)
        self._lat = np.zeros(1 << 16, np.float64)  # frame-to-DAC seconds, circular
        self._lat_n = 0
        self._pending_lat: deque[tuple[int, float]] = deque()
        self._log_seen = 0
        self.tick_times: deque[float] = deque(maxlen=32)  # perf_counter at each tick's start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _new_resampler(self) -> Any:
        if self.sr == self.pipeline.spec.sample_rate:
            return None
        import soxr

        return soxr.ResampleStream(self.pipeline.spec.sample_rate, self.sr, 1,
                                   dtype="float32", quality=RESAMPLE_QUALITY)

    # -- lifecycle -----------------------------------------------------------------------
    def prefill(self, samples: int) -> None:
        """Tick in the calling thread until ``samples`` are queued (before the stream
        starts) or the source has ended."""
        while self.ring.fill < samples:
            if not self.tick(prefill=True):
                break

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="liveframe-producer",
                                        daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop the thread and join it (unless called from it)."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
            if t.is_alive():
                log.warning("producer did not stop within %.0f s", timeout)

    def _run(self) -> None:
        self._schedule()
        seen = self.totals.underruns
        stop = self._stop
        try:
            while not stop.is_set():
                self.shared.fetch_and_reset_stats(self.totals)
                if self.adaptive and self.totals.underruns != seen:
                    # the callback ran dry: keep more queued (a dropout costs more on stage
                    # than a few ms of latency)
                    seen = self.totals.underruns
                    if self.margin < self.max_margin:
                        self.margin = min(self.margin + max(self.blocksize, 128),
                                          self.max_margin)
                        log.info("underrun: margin raised to %d samples", self.margin)
                wait = self.due_in()
                if wait > 0.0002:
                    stop.wait(min(wait, 0.02))  # the next tick's time, or a stop
                    continue
                if not self.tick():
                    break
                self._cost_est += 0.1 * (self._cost[(self._cost_n - 1) % self._cost.shape[0]]
                                         - self._cost_est)
            else:
                return
            # the source ended: let the callback play out the queued tail, then stop
            self.shared.counting = False
            self.source_ended = True
            while not stop.is_set() and self.ring.fill > 0:
                stop.wait(0.005)
        except Exception as e:  # a bug: report it, stop the play cleanly
            self.error = f"{type(e).__name__}: {e}"
            log.exception("producer failed")
        if not stop.is_set():
            self.hooks.ended()

    def _schedule(self) -> None:
        """Ask for real-time scheduling; the default margin follows what was granted."""
        if self.realtime_requested:
            self.realtime = request_realtime()
        if not hasattr(os, "sched_getscheduler"):
            return
        self.policy = os.sched_getscheduler(threading.get_native_id())
        if self.realtime:
            if not self.margin_given:
                # the ring was prefilled for the larger lead; the just-in-time schedule
                # lets the surplus play out
                self.margin = self.initial_margin = round(REALTIME_MARGIN_S * self.sr)
            log.info("producer: real-time scheduling (SCHED_FIFO %d), margin %d",
                     PRODUCER_RT_PRIORITY, self.margin)
        else:
            log.info("producer: normal scheduling (real-time not permitted: run as a user "
                     "with an rtprio limit, as JACK's audio group has, for a smaller safe "
                     "margin)")

    # -- the schedule --------------------------------------------------------------------
    def due_in(self) -> float:
        """Seconds until the next tick must start (<= 0: now), by the callback's clock.

        The callback takes ``frames`` samples per buffer at the times PortAudio reports
        (``currentTime``). From the last buffer's time and the ring's fill, the producer
        knows which future buffer would find the ring short and when; it starts the tick
        so that it is written ``margin`` samples' time (plus its usual cost) before that
        buffer. A tick written just in time, rather than as soon as the fill drops below
        a threshold, holds its first sample back only as long as the margin demands.
        Before the first callback (or where the host gives no time) it falls back to
        keeping ``margin`` samples queued.
        """
        sr = self.sr
        last = self.shared.last_buffer() if self.stream_time is not None else None
        if last is not None and last[1] > 0:
            n, when, frames = last
            if self._callback_silent(n):  # the device went quiet: no racing its clock
                return self._due_at_brain_rate()
            frames = frames or max(self.blocksize, 1)
            try:
                now = self.stream_time()  # type: ignore[misc]
            except DeviceError:  # the stream is closing under us
                return (self.ring.fill - self.margin + 1) / sr
            dry = when + (self.ring.fill // frames + 1) * frames / sr  # the buffer that runs short
            return dry - now - self.margin / sr - self._cost_est
        return (self.ring.fill - self.margin + 1) / sr

    # -- a silent callback (the counterpart of the audio watchdog) ----------------------
    silent_after_s = 0.25
    """Wall-clock seconds without a new callback buffer after which :meth:`due_in` no longer
    follows the stream's clock but ticks at the brain's own rate: PortAudio's stream clock
    runs on after a JACK server died, and a schedule that waits for buffers that never
    take the ring's samples would tick as fast as it can (the ring stays full)."""
    _cb_seen = -1  # the callback count due_in saw last (class defaults: set per instance)
    _cb_seen_at = 0.0  # perf_counter when it changed

    def _callback_silent(self, callbacks: int) -> bool:
        """Whether no buffer was logged for :attr:`silent_after_s` (``callbacks``: the
        count now; counted on the monotonic clock, not the stream's)."""
        t = time.perf_counter()
        if callbacks != self._cb_seen:
            self._cb_seen, self._cb_seen_at = callbacks, t
            return False
        return t - self._cb_seen_at > self.silent_after_s

    def _due_at_brain_rate(self) -> float:
        """Seconds until one brain hop of wall-clock time has passed since the last tick
        started (ticks no faster than the brain's clock)."""
        tt = self.tick_times
        if not tt:
            return 0.0
        spec = self.pipeline.spec
        return tt[-1] + spec.hop / spec.sample_rate - time.perf_counter()

    # -- one tick ------------------------------------------------------------------------
    def tick(self, *, prefill: bool = False) -> bool:
        """One brain tick into the ring; False when the source has ended (its tail queued)."""
        t0 = time.perf_counter()
        self._read_controls(prefill=prefill)
        pipeline = self.pipeline
        item = self.source.take(pipeline.ticks - self.source_start_tick)
        if item is None:
            if self.source.ended:
                self._queue_tail()
                return False
            px, avail = pipeline.tick.frame, t0  # nothing yet: hold the last picture
        else:
            px, avail = item
        out = pipeline.step(px, freeze=bool(self.controls.freeze))
        y = self._rs.resample_chunk(out) if self._rs is not None else out
        if self.stream_time is not None and not prefill:
            try:
                off = self.stream_time() - time.perf_counter()
            except DeviceError:  # the stream is closing under us
                off = 0.0
            self._pending_lat.append((round(self._brain_pos * self.ratio), avail + off))
        n = self.ring.write(y)
        if n < y.shape[0]:
            log.debug("ring full: dropped %d samples", y.shape[0] - n)
        self._brain_pos += out.shape[0]
        peak = float(np.max(np.abs(out))) if out.size else 0.0
        self.brain_level_dbfs = (20 * np.log10(peak) if peak > 1e-6 and np.isfinite(peak)
                                 else -120.0)
        self.tick_times.append(t0)
        self._cost[self._cost_n % self._cost.shape[0]] = time.perf_counter() - t0
        self._cost_n += 1
        self._match_latency()
        return True

    def _read_controls(self, *, prefill: bool) -> None:
        """The controls, once per tick: gain and panic to the callback, requests to the
        owner, swaps to the pipeline (at most one crossfade at a time: a loaded brain or
        an opened source waits while another swap crossfades)."""
        c = self.controls
        sh = self.shared
        if c.panic_count != self._panic_seen:
            self._panic_seen = c.panic_count
            sh.silent = True
        elif sh.silent and not c.mute:
            sh.silent = False
        if not self.fading:
            sh.target_gain = 0.0 if c.mute else float(c.gain)
        req = c.take_brain_request()
        if req is not None:
            self.hooks.load_brain(req)
        if c.source != self._source_seen:
            self._source_seen = c.source
            if c.source is not None and not prefill:
                self.hooks.open_source(c.source)
        pipeline = self.pipeline
        if not pipeline.pending:
            if self._outgoing is not None:  # its crossfade is over: the pipeline let go
                self.hooks.retire_brain(self._outgoing)
                self._outgoing = None
            box = self.brains.take()
            if box is not None:
                self._swap_in_brain(box)
        if c.mode != pipeline.mode and c.mode in C.MODES:
            pipeline.set_mode(c.mode)
        if not pipeline.pending:
            new = self.sources.take()
            if new is not None:
                self._swap_in_source(new)
        pipeline.set_grain(density=float(c.density), spread=float(c.spread))

    def _swap_in_brain(self, box: BrainBox) -> None:
        """At a tick boundary: the brain in ``box`` crossfades in (over one tick, once its
        synth has filled), if it is still the newest asked for; otherwise it goes back to
        be released."""
        if box[0] != self.brain_wanted:  # a newer request came after this one was made
            self.hooks.retire_brain(box)
            return
        outgoing: BrainBox = [box[0], self.pipeline.brain]
        try:
            self.pipeline.swap_brain(box[1])
        except BrainError as e:  # another swap changed the spec since it was checked
            self.controls.last_error = str(e)
            log.warning("%s", e)
            self.hooks.retire_brain(box)
            return
        box.clear()  # the pipeline holds the new brain now
        self._outgoing = outgoing

    def _swap_in_source(self, new: Capture) -> None:
        """At a tick boundary: ``new`` becomes the source, crossfaded over this tick."""
        old = self.source
        self.pipeline.switch_source()
        self.source = new
        self.source_start_tick = self.pipeline.ticks  # a clocked file starts at its tick 0
        self.source_switches += 1
        self.hooks.retire_source(old)
        log.info("source %s: crossfading in (was %s)", new.name, old.name)

    def _queue_tail(self) -> None:
        """The synth's tail after the last tick, faded out at its end, into the ring."""
        tail = self.pipeline.flush()
        if self._rs is not None:
            tail = self._rs.resample_chunk(tail, last=True)
        if tail.size:
            n = min(tail.shape[0], int(TAIL_FADE_S * self.sr))
            t = tail.astype(np.float32, copy=True)
            t[-n:] *= np.linspace(1, 0, n, dtype=np.float32)
            self.ring.write(t)

    def _match_latency(self) -> None:
        """Pair the ticks' first samples with the callback buffers that played them."""
        n = self.shared.callbacks
        pend = self._pending_lat
        for pos, frames, dac in self.shared.buffers(self._log_seen, n):
            while pend and pend[0][0] < pos + frames:
                p, avail = pend.popleft()
                if p >= pos and dac > 0:
                    self._lat[self._lat_n % self._lat.shape[0]] = (
                        dac + (p - pos) / self.sr - avail)
                    self._lat_n += 1
        self._log_seen = n

    # -- reading out (any thread; copies) -----------------------------------------------
    def latencies(self) -> F64:
        """Frame-to-DAC latencies measured so far (seconds, newest 65536)."""
        n = min(self._lat_n, self._lat.shape[0])
        return self._lat[:n].copy()

    def recent_latency(self, k: int = 64) -> float | None:
        """Median of the newest ``k`` latencies (s), None before the first."""
        k = min(self._lat_n, k)
        if not k:
            return None
        idx = (self._lat_n - k + np.arange(k)) % self._lat.shape[0]
        return float(np.median(self._lat[idx]))

    def costs(self) -> F64:
        """Seconds per tick (controls + pipeline + resampling + ring), newest 65536."""
        n = min(self._cost_n, self._cost.shape[0])
        return self._cost[:n].copy()

    def brain_fps(self) -> float:
        """Ticks per second lately (0 before two)."""
        tt = self.tick_times
        if len(tt) < 2 or tt[-1] <= tt[0]:
            return 0.0
        return (len(tt) - 1) / (tt[-1] - tt[0])
