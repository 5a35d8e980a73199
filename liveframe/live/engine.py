"""The live instrument: a slim engine that assembles capture, pipeline, producer and sound.

Threads and what they share
---------------------------
::

    capture thread --Capture.take--> producer thread --RingBuffer--> audio callback --> DAC
                                       |   TickPipeline.step             ^
                                       |                                 |
                                       +------- StreamState -------------+
                                                (gain, panic, counting, timing log, stats)

- capture (:class:`~liveframe.live.capture.Capture`): decodes and scales pictures.
- producer (:class:`~liveframe.live.producer.Producer`): the brain clock: controls,
  :class:`~liveframe.core.pipeline.TickPipeline`, resampling, the ring, just in time.
- audio callback (:class:`~liveframe.live.audio.AudioOutput`): copy, gain, guard, limit.
  It shares only the ring and one :class:`~liveframe.live.shared.StreamState` with the
  producer (whose table says who writes and who reads each field).
- worker (:class:`~liveframe.live.worker.Worker`): loads brains, opens sources, stops
  retired captures, releases retired brains, and stops the engine when its source ended.
- recorder (:class:`~liveframe.live.recorder.Recorder`): writes what was played.

Every thread is started and joined by the object that owns it; :meth:`Engine.stop` joins
them all (the one exception: a stream close that hangs in PortAudio is abandoned after
1 s, 0.3 s for a lost device, see
:meth:`AudioOutput.close <liveframe.live.audio.AudioOutput.close>`).

While it plays, the engine lowers the interpreter's GIL switch interval
(:data:`SWITCH_INTERVAL`) so that the Python callback never waits long behind another
thread; :meth:`Engine.stop` restores the value it found, unless someone changed it
meanwhile (two engines that overlap: the first to stop restores, the second leaves it).

Latency is measured by PortAudio's own timing (see :mod:`liveframe.live.producer`).

What it reports is what plays: the meter (:meth:`Engine.output_level`, the snapshot's
``level_dbfs``, the stats' ``level_dbfs``, a level-reporting tick listener's
``/liveframe/level``) is what the callback output, after the gain, mute, panic and the
limiter; the brain's own level is ``brain_level_dbfs``. The stats name the brain and the
source that play, not the ones asked for; a refused request leaves them as they were and
says why in ``controls.last_error`` (cleared when a later request is accepted).

Requests while playing: the last one wins. Brain requests are numbered; the worker loads
only the newest, drops a load that a newer request overtook, and the producer swaps in
only the newest (:mod:`liveframe.live.producer`). A brain that stops playing, or never
will, is released on the worker, which then gives the freed heap back to the system
(:func:`~liveframe.live.worker.release_memory`), so a storm of swaps leaves the process
about as large as it found it.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.control.params import Controls, Snapshot
from liveframe.core.brain import Brain, resolve_brain_path
from liveframe.core.pipeline import TickListener, TickPipeline
from liveframe.core.spec import BrainSpec
from liveframe.errors import DeviceError, LiveframeError, ParamError
from liveframe.live.audio import AudioOutput, OutputDevice, find_output
from liveframe.live.capture import Capture, OpenCVReader, PyAVReader, open_capture
from liveframe.live.producer import DEFAULT_MARGIN_S, BrainBox, Hooks, Producer
from liveframe.live.recorder import Recorder
from liveframe.live.ringbuffer import RingBuffer
from liveframe.live.shared import StreamState
from liveframe.live.worker import Worker, release_memory

log = logging.getLogger(__name__)

__all__ = ["SWITCH_INTERVAL", "Capture", "Engine", "OpenCVReader", "PyAVReader"]

SWITCH_INTERVAL = 0.0005
"""``sys.setswitchinterval`` while an engine plays (s). The audio callback is Python and
needs the GIL; a thread waiting for it gets it only after the holder has run this long
(Python's default is 5 ms, about one JACK period at 256 / 48 kHz), so a busy capture, GUI
or OSC thread could make the callback late."""

FIRST_FRAME_S = 5.0
"""Seconds a source may take to deliver its first picture."""

LEVEL_FLOOR_DBFS = -120.0
"""What the meter reads for silence (and before the first buffer, and once stopped)."""

FADE_OUT_S = 0.5
"""The most :meth:`Engine.stop` waits for the callback's gain to fade to silence (s; ~80 ms
when callbacks run on time)."""

MAX_BUFFER_S = 0.2
"""The longest audio buffer (``--blocksize`` at the device's rate) the engine plays: a
live instrument's buffer is milliseconds; 8192 frames at 8000 Hz (a second) would hold
a whole second of sound back and outrun the ring."""


class Engine:
    """A brain played live from a Capture to an audio device.

    Parameters
    ----------
    brain : Brain
    source : Capture
        Not started yet, or started for ``brain``'s spec.
    controls : Controls, optional
    mode : {"ola", "raw", "granular"}
    device : int or str, optional
        Output device index or (part of) its name; default: JACK's, else the system's.
    samplerate : int, optional
        Device rate; default the device's own (JACK's rate on JACK).
    blocksize : int
        Frames per audio callback (0: the host chooses).
    latency : "low", "high" or float seconds
        PortAudio's suggested output latency.
    margin : int, optional
        Safety lead in samples (device rate): each tick is written at least this long
        before the callback buffer that needs it. Default
        :data:`~liveframe.live.producer.REALTIME_MARGIN_S` (256 samples at 48 kHz) once the
        producer has real-time scheduling, else
        :data:`~liveframe.live.producer.DEFAULT_MARGIN_S` (768).
    record : path-like, optional
        A float32 WAV of what was played, written as it plays, finalised on stop.
    seed : int
        Seed of the granular synth.
    adaptive : bool
        After an underrun, raise the margin by one block.
    realtime : bool
        Ask for real-time scheduling of the producer thread; where the system refuses, it
        runs at normal priority and says so once.

    Raises
    ------
    ParamError
        A bad ``mode``, ``blocksize``, ``samplerate`` or ``margin`` (the value named).
    DeviceError
        No such output device.
    """

    def __init__(
        self,
        brain: Brain,
        source: Capture,
        *,
        controls: Controls | None = None,
        mode: str = "ola",
        device: int | str | None = None,
        samplerate: int | None = None,
        blocksize: int = 256,
        latency: str | float = "low",
        margin: int | None = None,
        record: str | os.PathLike[str] | None = None,
        seed: int = 0,
        phase: str | None = None,
        adaptive: bool = True,
        realtime: bool = True,
    ) -> None:
        if mode not in C.MODES:
            raise ParamError("mode", mode, f"must be one of {', '.join(C.MODES)}")
        if not 0 <= blocksize <= 8192:
            raise ParamError("blocksize", blocksize, "must be 0..8192")
        if samplerate is not None and samplerate <= 0:
            raise ParamError("samplerate", samplerate, "must be positive")
        if margin is not None and margin < 0:
            raise ParamError("margin", margin, "must be >= 0 samples")
        if not source.started:
            source.set_spec(brain.spec)
        self.controls = controls if controls is not None else Controls(mode=mode)
        self.controls.mode = mode
        self.blocksize = int(blocksize)
        self.latency_setting = latency
        self.device: OutputDevice = find_output(device)
        self.samplerate = int(samplerate or self.device.samplerate)
        if self.blocksize > MAX_BUFFER_S * self.samplerate:
            raise ParamError("blocksize", blocksize,
                             f"is {self.blocksize / self.samplerate:.2f} s a buffer at "
                             f"{self.samplerate} Hz; at most {MAX_BUFFER_S:g} s "
                             f"({int(MAX_BUFFER_S * self.samplerate)} frames) here")
        self.record_path = Path(record) if record is not None else None
        if phase is not None and phase not in C.PHASES:
            raise ParamError("phase", phase, f"must be one of {', '.join(C.PHASES)}")
        self.pipeline = TickPipeline(brain, mode=mode, seed=seed, phase=phase,
                                     density=self.controls.density, spread=self.controls.spread)
        spec = brain.spec
        tick_dev = int(np.ceil(spec.hop * self.samplerate / spec.sample_rate)) + 64
        lead = margin if margin is not None else round(DEFAULT_MARGIN_S * self.samplerate)
        # a second at least, and room for the largest margin the producer may adapt to
        # (Producer.max_margin: 8 buffers, 4096 samples at least) plus a few ticks
        self.ring = RingBuffer(max(self.samplerate, 4 * (lead + tick_dev),
                                   max(8 * self.blocksize, 4096) + 4 * tick_dev))
        self.shared = StreamState()
        self.worker = Worker()
        self.producer = Producer(
            self.pipeline, source, self.ring, self.shared, self.controls,
            Hooks(load_brain=self._request_brain, open_source=self._request_source,
                  retire_source=self._retire_source, ended=self._ended,
                  retire_brain=self._retire_brain),
            sr=self.samplerate, blocksize=self.blocksize, margin=margin, adaptive=adaptive,
            realtime=realtime)
        self.audio: AudioOutput | None = None
        self.recorder: Recorder | None = None
        self.record_error: str | None = None  # why --record stopped (a full disk), or None
        self.running = False
        self._stream_latency_ms = 0.0
        self._source_gen = 0  # bumped per source request: an older, slower open is dropped
        self._brain_gen = 0  # bumped per brain request: the newest is the one that counts
        self._brain_lock = threading.Lock()  # numbers a request, hands a brain over (never
        # on the audio path)
        self._tick_samples = int(np.ceil(spec.hop * self.samplerate / spec.sample_rate))
        self._switch: tuple[float, float] | None = None  # (found, set) switch intervals
        self._done = threading.Event()
        self._stop_lock = threading.Lock()
        self._started = False
        self._stopped = False

    # -- facts ---------------------------------------------------------------------------
    @property
    def brain(self) -> Brain:
        return self.pipeline.brain

    @property
    def spec(self) -> BrainSpec:
        return self.pipeline.spec

    @property
    def mode(self) -> str:
        return self.pipeline.mode

    @property
    def error(self) -> str | None:
        """Why the producer failed (a bug), or None."""
        return self.producer.error

    @property
    def hop(self) -> int:
        """Samples per tick at the brain rate."""
        return self.pipeline.hop

    @property
    def tick(self) -> int:
        """Ticks made so far."""
        return self.pipeline.ticks

    @property
    def ratio(self) -> float:
        """Device samples per brain sample."""
        return self.producer.ratio

    @property
    def source(self) -> Capture:
        """The capture playing now."""
        return self.producer.source

    @property
    def source_path(self) -> str:
        """What plays now, as a source is asked for: a file's path (as given, also for the
        clip given on the command line) or a camera's index."""
        return source_label(self.source)

    @property
    def source_start_tick(self) -> int:
        """The tick at which the current source came in (its crossfade tick)."""
        return self.producer.source_start_tick

    @property
    def source_switches(self) -> int:
        return self.producer.source_switches

    @property
    def source_ended(self) -> bool:
        return self.producer.source_ended

    # -- public API ----------------------------------------------------------------------
    def add_tick_listener(self, fn: TickListener) -> None:
        """Call ``fn(tick)`` on the producer thread after every tick.

        ``tick`` is the pipeline's :class:`~liveframe.core.pipeline.Tick` (reused: copy what
        you keep). A listener must not block; an exception in one is counted
        (``stats()["listener_errors"]``), logged at most once a second, and never stops
        the producer. Add listeners before :meth:`start`.

        A listener that reports a level (one with a ``level`` attribute that is None, such
        as :class:`~liveframe.control.out.AnalysisSender`) is given
        :meth:`output_rms_dbfs` as its ``level``: it reports what reaches the output, not
        the brain's output before the gain, mute and limiter.
        """
        if hasattr(fn, "level") and fn.level is None:
            fn.level = self.output_rms_dbfs
        self.pipeline.listeners.append(fn)

    def swap_brain(self, path: str | os.PathLike[str]) -> None:
        """Load a brain here and crossfade to it over one tick.

        It counts as the newest brain request: one asked for before and still loading
        is dropped.

        Raises
        ------
        BrainError
            The brain is unreadable, or plays at another rate, fps, framing or kind, or
            sees other pictures; the old brain keeps playing.
        """
        gen = self._next_brain_gen()
        self._offer_brain(self._load_brain(str(path)), gen)

    def start(self) -> Engine:
        """Start capture, prefill the ring, open the stream and the producer."""
        if self._started:
            return self
        self._started = True
        try:
            # OpenCV is imported now, before the stream runs: importing it holds the GIL
            # for tens of ms, which the callback must not wait behind when a camera is
            # switched in or the monitor takes its first snapshot
            import cv2  # noqa: F401

            source = self.source
            if not source.started:
                source.start()
            if not source.wait_first(FIRST_FRAME_S):
                raise DeviceError(f"{source.name}: no frame within {FIRST_FRAME_S:g} s")
            if self.record_path is not None:
                self.recorder = Recorder(self.record_path, sr=self.samplerate)
            self.audio = AudioOutput(self.ring, self.device, sr=self.samplerate,
                                     blocksize=self.blocksize, latency=self.latency_setting,
                                     shared=self.shared, recorder=self.recorder)
            self._stream_latency_ms = self.audio.latency * 1000
            self.producer.prefill(self.producer.margin + max(self.blocksize, 256))
            c = self.controls
            self.shared.target_gain = 0.0 if c.mute else c.gain
            self.shared.own_output = bool(c.own_output)
            self.worker.start()
            self._lower_switch_interval()
            self.producer.stream_time = self.audio.time
            self.audio.start(on_lost=self._device_lost)
            self.shared.counting = True
            self.running = True
            self.producer.start()
        except BaseException:
            self._teardown(fade=False)
            raise
        log.info("playing %s through %s (%s) on %s, %d Hz, blocksize %d, margin %d",
                 self.source.name, self.brain.name, self.mode, self.device.name,
                 self.samplerate, self.blocksize, self.producer.margin)
        return self

    def stop(self) -> None:
        """Fade the tail, stop the threads, close the stream, finalise the recording.

        Idempotent; any thread but the producer's.
        """
        with self._stop_lock:
            stopped, self._stopped = self._stopped, True
        if not stopped:
            self._teardown(fade=True)
        elif self._done.is_set():  # stopped by itself (its worker ran the teardown)
            self.worker.close()

    def run(self, seconds: float | None = None,
            interrupted: threading.Event | None = None) -> None:
        """Play until stopped, the source ends, ``seconds`` pass, ``interrupted`` is set or
        Ctrl-C; then stop."""
        if not self._started:
            self.start()
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            while not self._done.wait(0.05):
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if interrupted is not None and interrupted.is_set():
                    break
        except KeyboardInterrupt:
            log.info("interrupted: stopping")
        finally:
            self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the engine has stopped (and its threads are joined)."""
        if not self._done.wait(timeout):
            return False
        self.worker.close()
        return True

    # -- stopping ------------------------------------------------------------------------
    def _teardown(self, *, fade: bool) -> None:
        self._stopped = True
        audio = self.audio
        try:
            if fade and audio is not None and self.running:
                self.producer.fading = True
                self.shared.target_gain = 0.0
                deadline = time.monotonic() + FADE_OUT_S
                while (self.shared.gain > 1e-3 and time.monotonic() < deadline
                       and self.running):  # a lost device clears running: no fade to wait for
                    time.sleep(0.01)  # polling the callback's gain, with a deadline
            self.producer.stop()
            if audio is not None:
                self.shared.counting = False
                audio.close()
                self.shared.collect_stats(self.producer.totals)  # no callback runs now
            self.worker.close()
            pending = self.producer.sources.put(None)
            for cap in (self.producer.source, pending):
                if cap is not None:
                    cap.stop()
        finally:
            self.running = False
            self._restore_switch_interval()
            if self.recorder is not None:
                try:
                    done = self.recorder.close()
                    if done is not None:
                        log.info("recorded %s", done)
                    self.record_error = self.recorder.error  # said in one line already
                finally:
                    self.recorder = None
            self._done.set()

    def _ended(self) -> None:
        """Producer hook: it stopped by itself; stop the engine from the worker."""
        self.worker.submit(self.stop)

    # -- a lost audio device (see liveframe.live.audio) ---------------------------------
    @property
    def device_lost(self) -> str | None:
        """Why the audio device was lost while playing (it said so in one log line), or
        None."""
        return self.audio.lost if self.audio is not None else None

    def _device_lost(self, why: str) -> None:
        """Audio watchdog hook: the device went away. Stop from the worker, as at the end
        of a source, with no fade (no callback would play it)."""
        self.running = False
        self.worker.submit(self.stop)

    def _lower_switch_interval(self) -> None:
        found = sys.getswitchinterval()
        sys.setswitchinterval(min(SWITCH_INTERVAL, found))
        self._switch = (found, sys.getswitchinterval())

    def _restore_switch_interval(self) -> None:
        if self._switch is not None:
            found, ours = self._switch
            self._switch = None
            if sys.getswitchinterval() == ours:  # nobody changed it since
                sys.setswitchinterval(found)

    # -- brains and sources asked for while playing ------------------------------------
    def _next_brain_gen(self) -> int:
        """Number a brain request: the newest (any thread; the lock is held for a store)."""
        with self._brain_lock:
            self._brain_gen += 1
            self.producer.brain_wanted = self._brain_gen
            return self._brain_gen

    def _load_brain(self, req: str) -> BrainBox:
        """Load and check a brain in the calling thread, boxed (see :data:`BrainBox`)."""
        new = Brain.load(resolve_brain_path(req))
        self.pipeline.check_brain(new)
        return [0, new]

    def _offer_brain(self, box: BrainBox, gen: int) -> bool:
        """Hand a loaded brain to the producer if ``gen`` is still the newest request;
        otherwise release it. Whether it was handed over."""
        with self._brain_lock:  # the check and the hand-over at once: no newer one between
            newest = not self._stopped and gen == self._brain_gen
            if newest:
                box[0] = gen
                old = self.producer.brains.put(box)
        if not newest:
            self._retire_brain(box)
            return False
        if old is not None:  # offered before, never taken: overtaken by this one
            self._retire_brain(old)
        return True

    def _request_brain(self, req: str) -> None:
        """Producer hook: number the request, load it on the worker."""
        self.worker.submit(self._load_requested, req, self._next_brain_gen())

    def _load_requested(self, req: str, gen: int) -> None:
        """Worker: load the brain of request ``gen`` unless a newer one was made."""
        if self._stopped or gen != self._brain_gen:
            return  # overtaken: the newer request is queued behind this one
        try:
            box = self._load_brain(req)
        except LiveframeError as e:
            if gen == self._brain_gen:  # an overtaken request's refusal is old news
                self._refuse(str(e))
            return
        if self._offer_brain(box, gen):
            self.controls.last_error = None  # accepted: an earlier refusal is past

    def _refuse(self, why: str) -> None:
        # a name sent over OSC may hold newlines or terminal escapes: shown escaped, it
        # can neither forge a log line nor drive the performer's terminal
        why = "".join(c if c.isprintable() else repr(c)[1:-1] for c in why)
        self.controls.last_error = why
        log.warning("%s", why)

    def _retire_brain(self, box: BrainBox) -> None:
        """Release a brain that no longer plays (or never will) on the worker: its box is
        emptied there, then the freed heap is given back to the system."""
        if not self.worker.submit(_release, box):
            box.clear()  # stopped: no worker; release here

    def open_source(self, source: str | int) -> Capture:
        """Open and start a source as ``controls.source`` names it, in the calling thread
        (:func:`~liveframe.live.capture.open_capture`: it waits for the first picture, so
        never on the producer thread).

        Raises
        ------
        LiveframeError
            The source is refused; the message ends with what keeps playing.
        """
        return open_capture(source, current=self.source, spec=self.spec,
                            first_frame_s=FIRST_FRAME_S)

    def _request_source(self, source: str) -> None:
        self._source_gen += 1
        self.worker.submit(self._open_requested, source, self._source_gen)

    def _open_requested(self, source: str, gen: int) -> None:
        """Worker: open ``source`` and hand it to the producer (or refuse it)."""
        if self._stopped or gen != self._source_gen:
            return  # stopping, or a newer request is queued behind this one
        try:
            cap = self.open_source(source)
        except LiveframeError as e:
            if gen == self._source_gen:  # an overtaken request's refusal is old news
                self._refuse(str(e))
            return
        if self._stopped or gen != self._source_gen:
            cap.stop()
            return
        old = self.producer.sources.put(cap)
        self.controls.last_error = None  # accepted: an earlier refusal is past
        if old is not None:  # offered before, never taken
            old.stop()

    def _retire_source(self, cap: Capture) -> None:
        self.worker.submit(cap.stop)

    # -- reading out -------------------------------------------------------------------
    def output_level(self) -> tuple[float, float]:
        """``(peak, rms)`` in dBFS of what the callback output over the last tick's worth
        of buffers (after the gain, mute, panic and the limiter); the floor
        (:data:`LEVEL_FLOOR_DBFS`) for silence, before the first buffer and once stopped.
        Any thread; never blocks the callback."""
        if not self.running:
            return LEVEL_FLOOR_DBFS, LEVEL_FLOOR_DBFS
        peak, rms = self.shared.output_level(self._tick_samples)
        return _dbfs(peak), _dbfs(rms)

    def output_rms_dbfs(self) -> float:
        """The RMS of :meth:`output_level` (what ``/liveframe/level`` sends)."""
        return self.output_level()[1]

    def latencies(self) -> npt.NDArray[np.float64]:
        """Frame-to-DAC latencies measured so far (seconds, newest 65536)."""
        return self.producer.latencies()

    def stats(self) -> dict[str, Any]:
        """What the play reports: ``underruns, ticks, latency_ms {median, p99},
        device_latency_ms, samplerate, blocksize`` (the stats file's schema) plus extras."""
        p = self.producer
        lat = p.latencies() * 1000
        cost = p.costs() * 1000
        tot = p.totals
        dac_offset = self.shared.dac_offset() * 1000
        return {
            "underruns": int(tot.underruns),
            "ticks": int(self.tick),
            "latency_ms": _median_p99(lat),
            # the output latency the running stream reports (PortAudio's callback timing:
            # outputBufferDacTime - currentTime); before the first callback, stream.latency
            "device_latency_ms": dac_offset if dac_offset > 0 else self._stream_latency_ms,
            "samplerate": int(self.samplerate),
            "blocksize": int(self.blocksize),
            "producer_ms": _median_p99(cost),
            "dac_offset_ms": dac_offset,  # outputBufferDacTime - currentTime, median
            # PortAudio's stream.latency, fixed when the stream opened; on JACK it is read
            # before the ports are connected and is one period short of the running figure
            "stream_latency_ms": self._stream_latency_ms,
            "realtime": bool(p.realtime),
            "producer_policy": p.policy,  # os.SCHED_*, as the OS reports it (None: unknown)
            "xruns": int(tot.xruns),
            "peak": float(tot.peak),
            "nan_blocks": int(tot.nan_blocks),  # device blocks the safety chain silenced
            "bad_blocks": int(self.pipeline.bad_blocks),  # brain blocks with NaN: silence
            "limited_blocks": int(tot.limited_blocks),
            "listener_errors": int(self.pipeline.listener_errors),
            "late_frames": int(self.source.late),
            "brain": self.brain.name,  # the brain that plays
            "source": self.source_path,  # the source that plays
            "level_dbfs": self.output_level()[0],  # peak of what is output, last tick
            "brain_level_dbfs": float(p.brain_level_dbfs),  # the brain's own, before gain
            "mode": self.mode,
            "device": self.device.name,
            "margin": int(p.margin),
            "initial_margin": int(p.initial_margin),
        }

    def snapshot(self, out: Snapshot) -> Snapshot:
        """Fill the monitor's preallocated snapshot (copies only; never blocks audio)."""
        import cv2

        t = self.pipeline.tick
        fr = t.frame
        g = fr[0] if fr.ndim == 3 else fr
        if g.shape == out.frame.shape:
            out.frame[...] = g
        else:
            cv2.resize(g, out.frame.shape[::-1], dst=out.frame, interpolation=cv2.INTER_NEAREST)
        size = self.source.preview_into(out.source_frame)  # the source, reduced, RGB
        if size is not None:
            out.source_size = size
        _copy_into(out.block, t.block)
        _copy_into(out.output, t.out)
        p = self.producer
        out.tick = self.tick
        out.level_dbfs = self.output_level()[0]  # what is output: after gain, mute, limiter
        out.brain_level_dbfs = float(p.brain_level_dbfs)
        out.source_fps = float(self.source.source_fps)
        out.brain_fps = p.brain_fps()
        out.inference_ms = float(self.pipeline.inference_s * 1000)
        recent = p.recent_latency()
        if recent is not None:
            out.latency_ms = recent * 1000
        out.underruns = int(p.totals.underruns)
        out.ring_fill = self.ring.fill / self.samplerate * 1000  # ms queued
        out.brain_name = self.brain.name
        out.mode = self.mode
        out.running = self.running
        return out


def source_label(cap: Capture) -> str:
    """A capture as a source is asked for: a file's path as given, or a camera's index."""
    reader = cap.reader
    if isinstance(reader, PyAVReader):
        return str(reader.path)
    if isinstance(reader, OpenCVReader):
        return str(reader.source)
    return cap.name


def _release(box: BrainBox) -> None:
    """Worker: drop the brain in ``box`` (its last reference), then return the freed heap."""
    box.clear()
    release_memory()


def _dbfs(x: float) -> float:
    return 20 * math.log10(x) if x > 1e-6 and math.isfinite(x) else LEVEL_FLOOR_DBFS


def _median_p99(x: npt.NDArray[np.float64]) -> dict[str, float]:
    if not x.size:
        return {"median": 0.0, "p99": 0.0}
    return {"median": float(np.median(x)), "p99": float(np.percentile(x, 99))}


def _copy_into(dst: npt.NDArray[np.float32], src: npt.NDArray[np.float32]) -> None:
    n = min(src.shape[0], dst.shape[0])
    dst[:n] = src[:n]
    dst[n:] = 0
