"""The live instrument: capture, the brain clock, synthesis and the audio stream.

API (other modules build on these names)
----------------------------------------
``Capture(reader, *, spec=None, size=(64, 64), channels=1)``
    One class for files and cameras. A capture thread decodes, preprocesses to the brain's
    input (``(C, H, W)`` uint8, the same pixels offline render sees), timestamps and
    publishes. Readers:

    - :class:`PyAVReader` (``liveframe play``): a file decoded with PyAV and put on the
      brain clock exactly as offline render does (:func:`~liveframe.core.media.on_brain_clock`:
      at tick k the newest frame with ``time <= k * speed / fps``), so live play equals
      render sample for sample. Paced by the brain clock, i.e. by the audio device, through
      a small bounded queue; ``loop`` restarts it; ``speed`` scales media time.
    - :class:`OpenCVReader` (``liveframe live``): a camera index, or a file (paced by its
      timestamps, as a camera would deliver it). The newest frame is published; the
      producer takes the newest at every tick (a stalled camera repeats its last frame, a
      60 fps one is sampled).

    A corrupt frame is skipped; a source that ends loops (``loop=True``) or ends the play
    cleanly. ``Capture.take(tick)`` -> ``(pixels, available_at)`` or None once ended.

``Engine(brain, source, *, controls=None, mode="ola", device=None, samplerate=None,
blocksize=256, latency="low", margin=None, record=None, seed=0, adaptive=True)``
    - ``.start()``; ``.stop()`` (fades the tail, closes the stream, finalises the
      recording; idempotent, any thread but the producer's); ``.run(seconds=None)`` (starts
      if needed, blocks until stopped / the source ended / Ctrl-C, then stops).
    - ``.controls`` (:class:`~liveframe.control.params.Controls`, read once per tick),
      ``.brain``, ``.mode``, ``.samplerate`` (the device's), ``.running``.
    - ``.stats() -> dict``: ``underruns, ticks, latency_ms {median, p99},
      device_latency_ms, samplerate, blocksize`` (the ``--stats-json`` schema) plus extras
      (``producer_ms``, ``xruns``, ``peak``, ``nan_blocks``, ``limited_blocks``, ...).
    - ``.snapshot(out: Snapshot) -> Snapshot``: fills the monitor's preallocated arrays
      (copies only; never blocks the producer).
    - ``.swap_brain(path) -> None``: loads in the calling thread, refuses (``BrainError``,
      the old brain keeps playing) a brain whose rate, fps, framing, kind or input
      geometry differ; otherwise the producer crossfades to it over one tick. Also
      triggered by ``controls.request_brain(path)`` (loaded on a helper thread; a refusal
      lands in ``controls.last_error``).
    - ``.open_source(source) -> Capture`` and ``controls.set_source(...)``: a source
      switch. The producer notices ``controls.source`` changing (once per tick), a helper
      thread opens it (a file path: :class:`PyAVReader`, looping when the play loops; an
      int or digit string: camera :class:`OpenCVReader`) and waits for its first frame;
      the producer swaps it in at a tick boundary with the one-tick crossfade and stops
      the old capture on another thread. A clocked file starts at its own tick 0. A
      missing or unreadable source is refused (one warning line, ``controls.last_error``)
      and the old one keeps playing. ``.source`` is the current Capture,
      ``.source_start_tick`` the tick it came in at (the crossfade tick),
      ``.source_switches`` how many switches happened.
    - ``.add_tick_listener(fn)``: ``fn(tick, frame, block, out, grains)`` is called by the
      producer every tick with ``frame`` ``(C, H, W)`` uint8, ``block`` the brain output
      (float32), ``out`` the hop at the brain rate after synthesis (before resampling and
      safety), ``grains`` a list of GrainParams (granular mode) or None. The arrays are
      reused: copy what you keep. Listeners must not block; an exception in one is counted
      (``stats()["listener_errors"]``) and logged at most once a second; it never stops
      the producer.

Threads
-------
capture thread -> producer thread (the brain clock: inference, synthesis, soxr streaming
resampling to the device rate, written into a preallocated SPSC ring buffer just in time,
``margin`` samples' time before the callback buffer that needs it) -> audio callback
(:class:`~liveframe.live.audio.AudioOutput`: copy, smoothed gain, NaN guard, DC blocker,
limiter). The producer is paced by the ring's fill and the callback's own timing
(:meth:`Engine._due_in`), i.e. by the device clock, so the brain clock never drifts from
the audio clock. While an engine plays, the GIL switch interval is lowered
(:data:`SWITCH_INTERVAL`) so the Python callback never waits long behind another thread.

Latency is measured by PortAudio's own timing: the producer notes where in the stream the
first sample of tick k lands and the stream time at which tick k's frame became available
(camera: when it arrived; file: when its tick came due); the callback logs each buffer's
position and ``outputBufferDacTime``; the producer matches them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.control.params import Controls, Snapshot
from liveframe.core.brain import Brain, resolve_brain_path
from liveframe.core.media import MediaReader, on_brain_clock, preprocess, with_context
from liveframe.core.spec import BrainSpec
from liveframe.core.synth import GrainParams, GranularSynth, make_synth
from liveframe.errors import BrainError, DeviceError, LiveframeError, MediaError, UsageError
from liveframe.live.audio import AudioOutput, OutputDevice, Recorder, find_output
from liveframe.live.ringbuffer import RingBuffer
from liveframe.util import signals
from liveframe.util.files import atomic_write

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
TickListener = Callable[[int, U8, F32, F32, "list[GrainParams] | None"], None]

RESAMPLE_QUALITY = "LQ"
"""soxr quality of the live resampler. 'LQ' (16-bit precision) holds back ~45 samples at
22050 -> 48000 Hz and returns the same count every tick; 'HQ' holds back ~310 (6.5 ms) in
uneven chunks, which costs latency for nothing a 22 kHz brain can use."""


class _RateLimitedLog:
    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last = 0.0

    def warning(self, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            log.warning(msg, *args)


DEFAULT_MARGIN_S = 0.016
"""Default safety lead of a normal-priority producer (s): the lowest that played with no
underruns in benchmarks/bench_live.py's fixed-margin sweep under a CPU hog on a loaded
2-core machine (see benchmarks/results/live.md); ``adaptive`` raises it after an underrun."""

REALTIME_MARGIN_S = 256 / 48000
"""Default safety lead of a real-time producer (s; 256 samples at 48 kHz, one JACK period):
it wakes on time under load, so the lead only covers its own cost and the GIL hand-over
(benchmarks/bench_live.py: 10 minutes under a CPU hog, and with the monitor open)."""

SWITCH_INTERVAL = 0.0005
"""``sys.setswitchinterval`` while an engine plays (s). The audio callback is Python and
needs the GIL; a thread waiting for it gets it only after the holder has run this long
(Python's default is 5 ms, about one JACK period at 256 / 48 kHz), so a busy capture, GUI
or OSC thread could make the callback late. Restored when the last engine stops."""

PRODUCER_RT_PRIORITY = 5
"""SCHED_FIFO priority the producer asks for (``realtime=True``, where the system allows
it: root, or an ``rtprio`` limit as audio users get with JACK). Below JACK's own real-time
threads (jackd's default is 10, its clients run just under it), above every normal thread:
on a loaded machine a normal-priority producer can wait several ms for a core, which is
what the margin otherwise has to cover. The producer sleeps between ticks (a fraction of a
percent of a core), and Linux keeps 5 % of every second for normal threads regardless."""


def _request_realtime(priority: int = PRODUCER_RT_PRIORITY) -> bool:
    """Give the calling thread SCHED_FIFO ``priority``; False where not permitted."""
    setter = getattr(os, "sched_setscheduler", None)
    if setter is None:
        return False
    try:
        # a thread id: on Linux sched_setscheduler acts on that one thread
        setter(threading.get_native_id(), os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, ValueError):
        return False
    return True


_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.005


def _hold_switch_interval(on: bool) -> None:
    """Lower the GIL switch interval while at least one engine plays; restore it after."""
    global _switch_users, _switch_saved
    with _switch_lock:
        if on:
            if _switch_users == 0:
                _switch_saved = sys.getswitchinterval()
                sys.setswitchinterval(min(SWITCH_INTERVAL, _switch_saved))
            _switch_users += 1
        elif _switch_users > 0:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


# ------------------------------------------------------------------------------ readers
class PyAVReader:
    """A video file, decoded with PyAV and put on the brain clock (``liveframe play``).

    Parameters
    ----------
    path : path-like
    loop : bool
        Start again at the end.
    speed : float
        Media seconds per real second (2 plays twice as fast).
    """

    clocked = True

    def __init__(self, path: str | os.PathLike[str], *, loop: bool = False, speed: float = 1.0):
        if not speed > 0 or not np.isfinite(speed):
            raise UsageError(f"--speed {speed} must be a positive number")
        self.path = Path(path)
        self.loop = loop
        self.speed = float(speed)
        MediaReader(self.path).close()  # a bad file is refused now, in one line
        self.name = self.path.name

    def ticks(self, spec_fps: float, size: tuple[int, int],
              channels: int) -> Iterator[tuple[int, U8]]:
        """``(tick, pixels)`` for every tick, pass after pass when looping."""
        offset = 0
        while True:
            n = 0
            with MediaReader(self.path) as r:
                for k, vf in on_brain_clock(
                    r.frames(size=size, channels=channels), fps=spec_fps / self.speed
                ):
                    n = k + 1
                    yield offset + k, vf.pixels
            if not self.loop or n == 0:
                return
            offset += n


class OpenCVReader:
    """A camera (by index) or a file, read with OpenCV (``liveframe live``).

    A file is paced by its timestamps, the way a camera delivers frames.

    Parameters
    ----------
    source : int or path-like
    loop : bool
        For a file: start again at the end.
    speed : float
        For a file: pacing speed.
    """

    clocked = False

    def __init__(
        self, source: int | str | os.PathLike[str], *, loop: bool = False, speed: float = 1.0
    ) -> None:
        import cv2

        self.is_camera = isinstance(source, int)
        self.source = source
        self.loop = loop
        self.speed = float(speed)
        self.name = f"camera {source}" if self.is_camera else Path(source).name
        if self.is_camera:
            from liveframe.live.audio import list_cameras

            cams = list_cameras()
            if source not in cams:
                found = ", ".join(str(c) for c in cams) if cams else "none"
                raise DeviceError(
                    f"camera {source} not found (cameras found: {found}); "
                    "plug one in, pick another with --camera N, or play a file with "
                    "`liveframe play CLIP`"
                )
        else:
            p = Path(source)
            if not p.exists():
                raise MediaError(f"{p}: no such file")
        self.cap = cv2.VideoCapture(source if self.is_camera else str(source))
        if not self.cap.isOpened():
            self.cap.release()
            raise (DeviceError if self.is_camera else MediaError)(
                f"{self.name}: OpenCV cannot open it"
            )
        self._t0: float | None = None

    def read(self) -> tuple[bool, Any, float]:
        """``(ok, BGR picture, timestamp in s)``; blocks until the next frame is due."""
        import cv2

        ok, img = self.cap.read()
        if not ok:
            return False, None, 0.0
        now = time.perf_counter()
        if self.is_camera:
            return True, img, now
        t = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if self._t0 is None:
            self._t0 = now - t / self.speed
        due = self._t0 + t / self.speed
        if due > now:
            time.sleep(due - now)
        return True, img, max(due, now)

    def rewind(self) -> bool:
        import cv2

        if self.is_camera:
            return False
        self._t0 = None
        return bool(self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0))

    def close(self) -> None:
        self.cap.release()


# ------------------------------------------------------------------------------ capture
class Capture:
    """The capture thread: decode, preprocess, timestamp, publish (files and cameras).

    Parameters
    ----------
    reader : PyAVReader or OpenCVReader
    spec : BrainSpec, optional
        The brain's input geometry and clock (defaults: 64x64 grey, 30 fps).
    ahead : int
        Ticks a clocked (file) reader may decode ahead of the brain clock.
    """

    def __init__(self, reader: PyAVReader | OpenCVReader, *, spec: BrainSpec | None = None,
                 ahead: int = 8) -> None:
        self.reader = reader
        self.spec = spec or BrainSpec()
        self.clocked = bool(getattr(reader, "clocked", False))
        self.name = getattr(reader, "name", "source")
        self._q: queue.Queue[tuple[int, U8] | None] = queue.Queue(maxsize=max(2, ahead))
        self._latest: tuple[U8, float] | None = None
        self._current: tuple[int, U8] | None = None
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None
        self.ended = False  # the source has no more frames
        self.frames = 0  # frames published
        self.corrupt = 0  # frames skipped
        self.late = 0  # ticks that had to repeat a frame because decoding lagged
        self.error: str | None = None
        self._fps_t: deque[float] = deque(maxlen=32)

    def set_spec(self, spec: BrainSpec) -> None:
        if self._thread is not None:
            raise RuntimeError("set_spec before start()")
        self.spec = spec

    @property
    def source_fps(self) -> float:
        t = self._fps_t
        if len(t) < 2 or t[-1] <= t[0]:
            return 0.0
        return (len(t) - 1) / (t[-1] - t[0])

    def start(self) -> Capture:
        target = self._run_clocked if self.clocked else self._run_live
        self._thread = threading.Thread(target=target, name="liveframe-capture", daemon=True)
        self._thread.start()
        return self

    def wait_first(self, timeout: float = 5.0) -> bool:
        """Wait until the first frame is published (or the source ended)."""
        return self._first.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # unblock a put() waiting on a full queue
            try:
                while True:
                    self._q.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=5)
        close = getattr(self.reader, "close", None)
        if close is not None:
            close()

    # -- capture thread bodies ----------------------------------------------------------
    def _put(self, item: tuple[int, U8] | None) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run_clocked(self) -> None:
        spec = self.spec
        reader = self.reader
        assert isinstance(reader, PyAVReader)
        try:
            for k, px in reader.ticks(spec.fps, (spec.width, spec.height), spec.channels):
                self.frames += 1
                self._fps_t.append(time.perf_counter())
                if not self._put((k, px)):
                    return
                self._first.set()
        except MediaError as e:
            self.error = str(e)
            log.warning("%s", e)
        except Exception as e:  # noqa: BLE001 -- a decoder failure must end the source, not hang the play
            self.error = f"{self.name}: {type(e).__name__}: {e}"
            log.warning("capture stopped: %s", self.error)
        finally:
            self._put(None)
            self._first.set()

    def _run_live(self) -> None:
        reader = self.reader
        assert isinstance(reader, OpenCVReader)
        spec = self.spec
        warn = _RateLimitedLog(2.0)
        failures = 0
        try:
            while not self._stop.is_set():
                ok, img, t = reader.read()
                if not ok:
                    if not reader.is_camera:
                        if reader.loop and self.frames and reader.rewind():
                            continue
                        break  # the file ended
                    failures += 1
                    if failures % 100 == 1:
                        warn.warning("%s: no frame (stalled?); repeating the last one", self.name)
                    time.sleep(0.01)
                    continue
                failures = 0
                try:
                    px = preprocess(img, size=(spec.width, spec.height), channels=spec.channels)
                except Exception as e:  # noqa: BLE001 -- a corrupt picture: skip it, keep playing
                    self.corrupt += 1
                    warn.warning("%s: skipped a corrupt frame (%s)", self.name, e)
                    continue
                self._latest = (px, t)  # one reference store: atomic
                self.frames += 1
                self._fps_t.append(t)
                self._first.set()
        except Exception as e:  # noqa: BLE001
            self.error = f"{self.name}: {type(e).__name__}: {e}"
            log.warning("capture stopped: %s", self.error)
        finally:
            self.ended = True
            self._first.set()

    # -- producer side -----------------------------------------------------------------
    def take(self, tick: int, *, wait: float = 0.02) -> tuple[U8, float] | None:
        """The frame for ``tick`` and when it became available (``perf_counter`` s).

        Clocked sources: the frame the brain clock assigns to ``tick`` (waiting at most
        ``wait`` s for the decoder, then repeating the previous frame); live sources: the
        newest frame. None once the source has ended.
        """
        if not self.clocked:
            if self.ended:
                return None
            return self._latest
        now = time.perf_counter()
        cur = self._current
        while cur is None or cur[0] < tick:
            if self.ended:
                return None
            try:
                item = self._q.get(timeout=wait)
            except queue.Empty:
                if cur is None:
                    return None
                self.late += 1
                return cur[1], now
            if item is None:
                self.ended = True
                return None
            cur = item
            self._current = cur
        return cur[1], now


# ------------------------------------------------------------------------------ engine
class Engine:
    """A brain played live from a Capture to an audio device.

    Parameters
    ----------
    brain : Brain
    source : Capture
    controls : Controls, optional
    mode : {"ola", "raw", "granular"}
    device : int or str, optional
        Output device index or (part of) its name; default: JACK's, else the system's.
    samplerate : int, optional
        Device rate; default the device's own (JACK's rate on JACK).
    blocksize : int
        Frames per audio callback.
    latency : "low", "high" or float seconds
        PortAudio's suggested output latency.
    margin : int, optional
        Safety lead in samples (device rate): each tick is written at least this long
        before the callback buffer that needs it. Default :data:`REALTIME_MARGIN_S` (256
        samples at 48 kHz) once the producer has real-time scheduling, else
        :data:`DEFAULT_MARGIN_S` (768), from benchmarks/bench_live.py's sweeps.
    record : path-like, optional
        A float32 WAV of what was played, written as it plays, finalised on stop.
    seed : int
        Seed of the granular synth.
    adaptive : bool
        After an underrun, raise the margin by one block (up to ``8 * blocksize`` or
        4096 samples, whichever is larger).
    realtime : bool
        Ask for real-time scheduling of the producer thread (:data:`PRODUCER_RT_PRIORITY`);
        where the system refuses, it runs at normal priority and says so once.
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
        adaptive: bool = True,
        realtime: bool = True,
    ) -> None:
        if mode not in C.MODES:
            raise UsageError(f"--mode {mode!r} must be one of {', '.join(C.MODES)}")
        if blocksize < 0 or blocksize > 8192:
            raise UsageError(f"--blocksize {blocksize} must be 0..8192")
        self.brain = brain
        self.spec = brain.spec
        self.source = source
        if source._thread is None:
            source.set_spec(brain.spec)
        self.controls = controls if controls is not None else Controls(mode=mode)
        self.controls.mode = mode
        self.mode = mode
        self.seed = seed
        self.blocksize = int(blocksize)
        self.latency_setting = latency
        self.device: OutputDevice = find_output(device)
        self.samplerate = int(samplerate or self.device.samplerate)
        if self.samplerate <= 0:
            raise UsageError(f"--samplerate {samplerate} must be positive")
        if margin is not None and margin < 0:
            raise UsageError(f"--margin {margin} must be >= 0 samples")
        self._margin_given = margin is not None
        self.margin = int(margin if margin is not None
                          else round(DEFAULT_MARGIN_S * self.samplerate))
        self.initial_margin = self.margin
        self.adaptive = bool(adaptive)
        self.realtime_requested = bool(realtime)
        self.realtime = False  # whether the producer got real-time scheduling
        self._producer_policy: int | None = None  # its scheduling policy, as the OS reports it
        self.max_margin = max(self.margin, 8 * self.blocksize, 4096)
        self.record_path = Path(record) if record is not None else None
        self.hop = self.spec.hop
        self.ratio = self.samplerate / self.spec.sample_rate
        tick_dev = int(np.ceil(self.hop * self.ratio)) + 64
        self.ring = RingBuffer(max(self.samplerate, 4 * (self.margin + tick_dev)))
        self.synth = self._new_synth(mode)
        self._rs = self._new_resampler()
        self._listeners: list[TickListener] = []
        self.listener_errors = 0
        self._listener_log = _RateLimitedLog(1.0)
        # producer state
        self.tick = 0
        self._brain_pos = 0  # brain-rate samples emitted
        self._hist: list[U8] = []
        self._frozen: U8 | None = None
        self._pending_brain: Brain | None = None
        # (brain, synth, history, frame or None): what the one-tick crossfade fades out
        self._xfade: tuple[Brain, Any, list[U8], U8 | None] | None = None
        # source switching: the producer notices controls.source changing, a helper thread
        # opens the new Capture and hands it over here; the producer swaps it in
        self._source_seen = self.controls.source
        self._source_gen = 0  # bumped per request: a slower, older open is discarded
        self._source_lock = threading.Lock()  # hand-over only; the producer never waits on it
        self._pending_source: Capture | None = None
        self.source_start_tick = 0  # engine tick at which the current source came in (its tick 0)
        self.source_switches = 0
        t = (np.arange(self.hop, dtype=np.float64) + 0.5) / self.hop
        self._fade_in = (np.sin(0.5 * np.pi * t) ** 2).astype(np.float32)
        self._fade_out = (1 - self._fade_in).astype(np.float32)
        self._out = np.zeros(self.hop, np.float32)
        self._last_frame: U8 = np.zeros(
            (self.spec.channels, self.spec.height, self.spec.width), np.uint8)
        self._last_block = np.zeros(self.spec.length, np.float32)
        self._panic_seen = self.controls.panic_count
        self._level_dbfs = -120.0
        self._inference_ms = 0.0
        self._cost = np.zeros(1 << 16, np.float64)  # producer seconds per tick, circular
        self._cost_n = 0
        self._cost_est = 0.0  # producer seconds per tick, smoothed (scheduling)
        self._lat = np.zeros(1 << 16, np.float64)  # frame-to-DAC seconds, circular
        self._lat_n = 0
        self._pending_lat: deque[tuple[int, float]] = deque()
        self._log_seen = 0
        self._tick_times: deque[float] = deque(maxlen=32)
        # lifecycle
        self.audio: AudioOutput | None = None
        self.recorder: Recorder | None = None
        self._producer: threading.Thread | None = None
        self._stop_evt = threading.Event()
        self._done = threading.Event()
        self._stop_lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._switch_held = False  # this engine lowered the GIL switch interval
        self._fading = False
        self.source_ended = False
        self.running = False
        self.error: str | None = None

    # -- construction helpers ----------------------------------------------------------
    def _new_synth(self, mode: str) -> Any:
        s = make_synth(mode, hop=self.spec.hop, framing=self.spec.framing, seed=self.seed,
                       density=self.controls.density, spread=self.controls.spread)
        return s

    def _new_resampler(self) -> Any:
        if self.samplerate == self.spec.sample_rate:
            return None
        import soxr

        return soxr.ResampleStream(self.spec.sample_rate, self.samplerate, 1,
                                   dtype="float32", quality=RESAMPLE_QUALITY)

    # -- public API ----------------------------------------------------------------------
    def add_tick_listener(self, fn: TickListener) -> None:
        """Call ``fn(tick, frame, block, out, grains)`` from the producer every tick."""
        self._listeners.append(fn)

    def remove_tick_listener(self, fn: TickListener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def swap_brain(self, path: str | os.PathLike[str]) -> None:
        """Load a brain and crossfade to it; refuse (BrainError) one that does not fit."""
        new = Brain.load(resolve_brain_path(str(path)))
        old = self.brain.spec
        s = new.spec
        if not old.compatible_with(s):
            raise BrainError(
                f"{new.path}: refused, it plays {s.framing} {s.kind} at {s.sample_rate} Hz / "
                f"{s.fps:g} fps but {self.brain.name} plays {old.framing} {old.kind} at "
                f"{old.sample_rate} Hz / {old.fps:g} fps; {self.brain.name} keeps playing"
            )
        if (s.width, s.height, s.channels) != (old.width, old.height, old.channels):
            raise BrainError(
                f"{new.path}: refused, it sees {s.width}x{s.height}x{s.channels} frames but "
                f"the source is captured at {old.width}x{old.height}x{old.channels}; "
                f"{self.brain.name} keeps playing"
            )
        self._pending_brain = new
        log.info("brain %s: crossfading in", new.name)

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

            if self.source._thread is None:
                self.source.start()
            if not self.source.wait_first(5.0):
                raise DeviceError(f"{self.source.name}: no frame within 5 s")
            if self.record_path is not None:
                self.recorder = Recorder(self.record_path, sr=self.samplerate)
            self.audio = AudioOutput(self.ring, self.device, samplerate=self.samplerate,
                                     blocksize=self.blocksize, latency=self.latency_setting,
                                     recorder=self.recorder)
            while self.ring.fill < self.margin + max(self.blocksize, 256):
                if not self._tick(prefill=True):
                    break
            self.audio.target_gain = 0.0 if self.controls.mute else self.controls.gain
            self._device_latency_ms = self.audio.latency * 1000
            _hold_switch_interval(True)
            self._switch_held = True
            self.audio.start()
            self.audio.counting = True
            self.running = True
            self._producer = threading.Thread(target=self._produce, name="liveframe-producer",
                                              daemon=True)
            self._producer.start()
        except BaseException:
            self._teardown(fade=False)
            raise
        log.info("playing %s through %s (%s) on %s, %d Hz, blocksize %d, margin %d",
                 self.source.name, self.brain.name, self.mode, self.device.name,
                 self.samplerate, self.blocksize, self.margin)
        return self

    def stop(self) -> None:
        """Fade the tail, stop the producer, close the stream, finalise the recording."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._teardown(fade=True)

    def _teardown(self, *, fade: bool) -> None:
        self._stopped = True
        try:
            if fade and self.audio is not None and self.audio.stream is not None:
                self._fading = True
                self.audio.target_gain = 0.0
                # wait until the callback's smoothed gain has reached silence (~8 time
                # constants, 80 ms, when callbacks run on time)
                deadline = time.monotonic() + 0.5
                while self.audio.gain > 1e-3 and time.monotonic() < deadline:
                    time.sleep(0.01)
            self._stop_evt.set()
            if self._producer is not None and self._producer is not threading.current_thread():
                self._producer.join(timeout=5)
            if self.audio is not None:
                self.audio.counting = False
                self.audio.close()
            self.source.stop()
            with self._source_lock:
                pending, self._pending_source = self._pending_source, None
            if pending is not None:
                pending.stop()
        finally:
            self.running = False
            if self._switch_held:
                self._switch_held = False
                _hold_switch_interval(False)
            if self.recorder is not None:
                try:
                    path = self.recorder.close()
                    log.info("recorded %s", path)
                finally:
                    self.recorder = None
            self._done.set()

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
        """Wait until the engine has stopped."""
        return self._done.wait(timeout)

    # -- the producer ------------------------------------------------------------------
    def _produce(self) -> None:
        seen = self.audio.underruns if self.audio is not None else 0
        if self.realtime_requested:
            self.realtime = _request_realtime()
        if hasattr(os, "sched_getscheduler"):
            self._producer_policy = os.sched_getscheduler(threading.get_native_id())
            if self.realtime:
                if not self._margin_given:
                    # the ring was prefilled for the larger lead; the just-in-time schedule
                    # lets the surplus play out
                    self.margin = self.initial_margin = round(REALTIME_MARGIN_S * self.samplerate)
                log.info("producer: real-time scheduling (SCHED_FIFO %d), margin %d",
                         PRODUCER_RT_PRIORITY, self.margin)
            else:
                log.info("producer: normal scheduling (real-time not permitted: run as a user "
                         "with an rtprio limit, as JACK's audio group has, for a smaller "
                         "safe --margin)")
        try:
            while not self._stop_evt.is_set():
                if self.adaptive and self.audio is not None and self.audio.underruns != seen:
                    # the callback ran dry: keep more queued (a dropout costs more on stage
                    # than a few ms of latency)
                    seen = self.audio.underruns
                    if self.margin < self.max_margin:
                        self.margin = min(self.margin + max(self.blocksize, 128), self.max_margin)
                        log.info("underrun: margin raised to %d samples", self.margin)
                wait = self._due_in()
                if wait > 0.0002:
                    time.sleep(min(wait, 0.02))
                    continue
                if not self._tick():
                    break
                self._cost_est += 0.1 * (self._cost[(self._cost_n - 1) % self._cost.shape[0]]
                                         - self._cost_est)
            else:
                return
            # the source ended: let the callback play out the queued tail, then stop
            if self.audio is not None:
                self.audio.counting = False
            self.source_ended = True
            while not self._stop_evt.is_set() and self.ring.fill > 0:
                time.sleep(0.005)
        except Exception as e:  # a bug: report it, stop the play cleanly
            self.error = f"{type(e).__name__}: {e}"
            log.exception("producer failed")
        if not self._stop_evt.is_set():
            threading.Thread(target=self.stop, name="liveframe-stop", daemon=True).start()

    def _due_in(self) -> float:
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
        audio = self.audio
        sr = self.samplerate
        if audio is not None and audio.stream is not None:
            size = audio.log_now.shape[0]
            for _ in range(3):
                n = audio.callbacks
                if n == 0:
                    break
                i = (n - 1) % size
                last = float(audio.log_now[i])
                frames = int(audio.log_frames[i]) or max(self.blocksize, 1)
                fill = self.ring.fill
                if audio.callbacks != n:
                    continue  # a callback ran meanwhile: read again
                if last <= 0:
                    break
                try:
                    now = audio.time()
                except Exception:  # noqa: BLE001 -- stream closing under us
                    break
                dry = last + (fill // frames + 1) * frames / sr  # the buffer that runs short
                return dry - now - self.margin / sr - self._cost_est
        return (self.ring.fill - self.margin + 1) / sr

    def _tick(self, *, prefill: bool = False) -> bool:
        """One brain tick; False when the source has ended."""
        t0 = time.perf_counter()
        c = self.controls
        audio = self.audio
        # -- controls, read once per tick
        if audio is not None:
            if c.panic_count != self._panic_seen:
                self._panic_seen = c.panic_count
                audio.silent = True
            elif audio.silent and not c.mute:
                audio.silent = False
            if not self._fading:
                audio.target_gain = 0.0 if c.mute else float(c.gain)
        req = c.take_brain_request()
        if req is not None:
            threading.Thread(target=self._load_requested, args=(req,), daemon=True,
                             name="liveframe-brain-loader").start()
        if c.source != self._source_seen:
            self._source_seen = c.source
            if c.source is not None and not prefill:
                self._source_gen += 1
                threading.Thread(target=self._open_requested, args=(c.source, self._source_gen),
                                 daemon=True, name="liveframe-source-opener").start()
        new_brain = self._pending_brain
        if new_brain is not None and self._xfade is None:
            self._pending_brain = None
            self._xfade = (self.brain, self.synth, self._hist, None)
            self.brain, self.spec = new_brain, new_brain.spec
            self.synth = self._new_synth(self.mode)
            self._hist = []
        elif c.mode != self.mode and c.mode in C.MODES and self._xfade is None:
            self._xfade = (self.brain, self.synth, list(self._hist), None)
            self.mode = c.mode
            self.synth = self._new_synth(self.mode)
        elif (self._pending_source is not None and self._xfade is None
              and self._source_lock.acquire(blocking=False)):
            try:
                new_source, self._pending_source = self._pending_source, None
            finally:
                self._source_lock.release()
            if new_source is not None:
                self._swap_in_source(new_source)
        synth = self.synth
        if isinstance(synth, GranularSynth):
            synth.density = float(c.density)
            synth.spread = float(c.spread)
        # -- frame
        item = self.source.take(self.tick - self.source_start_tick)
        if item is None:
            if self.source.ended:
                self._flush_tail()
                return False
            px, avail = self._last_frame, t0  # nothing yet: hold
        else:
            px, avail = item
        if c.freeze and self._frozen is not None:
            px = self._frozen
        else:
            self._frozen = px
        self._last_frame = px
        # -- inference and synthesis
        ti = time.perf_counter()
        x = with_context(px, self._hist, self.spec.context)
        block = self.brain.run(x)[0]
        self._inference_ms = (time.perf_counter() - ti) * 1000
        out = synth.process(block, self._out)
        if self._xfade is not None:
            ob, osynth, ohist, opx = self._xfade
            self._xfade = None
            xo = with_context(px if opx is None else opx, ohist, ob.spec.context)
            old = osynth.process(ob.run(xo)[0])
            out *= self._fade_in
            out += old * self._fade_out
        self._last_block = block
        grains = synth.last_grains if isinstance(synth, GranularSynth) else None
        for fn in self._listeners:
            try:
                fn(self.tick, px, block, out, grains)
            except Exception as e:  # noqa: BLE001 -- a listener never kills the producer
                self.listener_errors += 1
                self._listener_log.warning("tick listener %r failed: %s", fn, e)
        # -- resampling and the ring
        y = self._rs.resample_chunk(out) if self._rs is not None else out
        if audio is not None and not prefill:
            pos = round(self._brain_pos * self.ratio)
            try:
                off = audio.time() - time.perf_counter()
            except Exception:  # noqa: BLE001 -- stream closing under us
                off = 0.0
            self._pending_lat.append((pos, avail + off))
        n = self.ring.write(y)
        if n < y.shape[0]:
            log.debug("ring full: dropped %d samples", y.shape[0] - n)
        self._brain_pos += self.hop
        peak = float(np.max(np.abs(out))) if out.size else 0.0
        self._level_dbfs = 20 * np.log10(peak) if peak > 1e-6 and np.isfinite(peak) else -120.0
        self.tick += 1
        self._tick_times.append(t0)
        self._cost[self._cost_n % self._cost.shape[0]] = time.perf_counter() - t0
        self._cost_n += 1
        self._match_latency()
        return True

    def _flush_tail(self) -> None:
        tail = self.synth.flush()
        if self._rs is not None:
            tail = self._rs.resample_chunk(tail, last=True)
        if tail.size:
            n = min(tail.shape[0], int(0.05 * self.samplerate))
            t = tail.astype(np.float32, copy=True)
            t[-n:] *= np.linspace(1, 0, n, dtype=np.float32)
            self.ring.write(t)

    def _match_latency(self) -> None:
        audio = self.audio
        if audio is None:
            return
        size = audio.log_pos.shape[0]
        n = audio.callbacks
        start = max(self._log_seen, n - size + 1)
        pend = self._pending_lat
        for j in range(start, n):
            i = j % size
            pos, frames, dac = int(audio.log_pos[i]), int(audio.log_frames[i]), audio.log_dac[i]
            while pend and pend[0][0] < pos + frames:
                p, avail = pend.popleft()
                if p >= pos and dac > 0:
                    lat = dac + (p - pos) / self.samplerate - avail
                    self._lat[self._lat_n % self._lat.shape[0]] = lat
                    self._lat_n += 1
        self._log_seen = n

    def _load_requested(self, req: str) -> None:
        try:
            self.swap_brain(req)
        except LiveframeError as e:
            self.controls.last_error = str(e)
            log.warning("%s", e)

    def open_source(self, source: str | int) -> Capture:
        """Open a source as :attr:`controls.source <liveframe.control.params.Controls.source>` names it.

        A file path plays on the brain clock (:class:`PyAVReader`, looping when the current
        play loops, at its speed); an int or a digit string is a camera
        (:class:`OpenCVReader`). Starts the capture and waits (at most 5 s) for its first
        frame: call it off the producer thread.

        Raises
        ------
        LiveframeError
            The file is missing or unreadable, the camera absent, or no frame came; the
            message ends with what keeps playing.
        """
        cur = self.source.reader
        keeps = f"{self.source.name} keeps playing"
        try:
            if isinstance(source, int) or str(source).strip().isdigit():
                reader: PyAVReader | OpenCVReader = OpenCVReader(int(source))
            else:
                # a file loops when the play loops; a camera play has no end, so a file
                # switched in from a camera loops too
                loop = bool(getattr(cur, "loop", False)) or bool(getattr(cur, "is_camera", False))
                speed = float(getattr(cur, "speed", 1.0))
                reader = PyAVReader(str(source), loop=loop, speed=speed)
        except LiveframeError as e:
            raise type(e)(f"source refused: {e}; {keeps}") from None
        except Exception as e:  # noqa: BLE001 -- any decoder failure is a refused source
            raise MediaError(
                f"source refused: {source}: {type(e).__name__}: {e}; {keeps}") from None
        cap = Capture(reader, spec=self.spec)
        cap.start()
        if not cap.wait_first(5.0) or cap.frames == 0:
            why = cap.error or ("no frame within 5 s" if not cap.ended else "it has no frames")
            threading.Thread(target=cap.stop, daemon=True, name="liveframe-source-stop").start()
            raise MediaError(f"source refused: {cap.name}: {why}; {keeps}")
        return cap

    def _open_requested(self, source: str, gen: int) -> None:
        """Helper thread: open ``source``, hand it to the producer (or refuse it)."""
        try:
            cap = self.open_source(source)
        except LiveframeError as e:
            self.controls.last_error = str(e)
            log.warning("%s", e)
            return
        with self._source_lock:
            stale = self._stopped or gen != self._source_gen
            if not stale:
                old, self._pending_source = self._pending_source, cap
            else:
                old = cap
        if old is not None:  # a newer request won, or the engine stopped meanwhile
            old.stop()

    def _swap_in_source(self, new: Capture) -> None:
        """Producer, at a tick boundary: make ``new`` the source, crossfade one tick."""
        old = self.source
        self._xfade = (self.brain, self.synth, self._hist, self._last_frame)
        self.synth = self._new_synth(self.mode)
        self._hist = []
        self._frozen = None
        self.source = new
        self.source_start_tick = self.tick  # a clocked file starts at its own tick 0
        self.source_switches += 1
        threading.Thread(target=old.stop, daemon=True, name="liveframe-source-stop").start()
        log.info("source %s: crossfading in (was %s)", new.name, old.name)

    # -- reading out -------------------------------------------------------------------
    def latencies(self) -> F32:
        """Frame-to-DAC latencies measured so far (seconds, newest 65536)."""
        n = min(self._lat_n, self._lat.shape[0])
        return self._lat[:n].copy()

    def producer_costs(self) -> F32:
        """Producer seconds per tick (inference + synthesis + resampling), newest 65536."""
        n = min(self._cost_n, self._cost.shape[0])
        return self._cost[:n].copy()

    def stats(self) -> dict[str, Any]:
        """The ``--stats-json`` content, plus extras."""
        lat = self.latencies() * 1000
        cost = self.producer_costs() * 1000
        audio = self.audio
        dac_offset = 0.0
        if audio is not None and audio.callbacks:
            k = min(audio.callbacks, audio.log_pos.shape[0])
            d = audio.log_dac[:k] - audio.log_now[:k]
            dac_offset = float(np.median(d)) * 1000
        return {
            "underruns": int(audio.underruns) if audio else 0,
            "ticks": int(self.tick),
            "latency_ms": {
                "median": float(np.median(lat)) if lat.size else 0.0,
                "p99": float(np.percentile(lat, 99)) if lat.size else 0.0,
            },
            # the output latency the running stream reports (PortAudio's callback timing:
            # outputBufferDacTime - currentTime); before the first callback, stream.latency
            "device_latency_ms": dac_offset if dac_offset > 0 else float(self._device_latency_ms),
            "samplerate": int(self.samplerate),
            "blocksize": int(self.blocksize),
            "producer_ms": {
                "median": float(np.median(cost)) if cost.size else 0.0,
                "p99": float(np.percentile(cost, 99)) if cost.size else 0.0,
            },
            "dac_offset_ms": dac_offset,  # outputBufferDacTime - currentTime, median
            # PortAudio's stream.latency, fixed when the stream opened; on JACK it is read
            # before the ports are connected and is one period short of the running figure
            "stream_latency_ms": float(self._device_latency_ms),
            "realtime": bool(self.realtime),
            "xruns": int(audio.xruns) if audio else 0,
            "peak": float(audio.peak) if audio else 0.0,
            "nan_blocks": int(audio.safety.nan_blocks) if audio else 0,
            "limited_blocks": int(audio.safety.limited_blocks) if audio else 0,
            "listener_errors": int(self.listener_errors),
            "late_frames": int(self.source.late),
            "brain": self.brain.name,
            "mode": self.mode,
            "device": self.device.name,
            "margin": int(self.margin),
            "initial_margin": int(self.initial_margin),
        }

    _device_latency_ms = 0.0

    def snapshot(self, out: Snapshot) -> Snapshot:
        """Fill the monitor's preallocated snapshot (copies only; never blocks audio)."""
        import cv2

        fr = self._last_frame
        g = fr[0] if fr.ndim == 3 else fr
        if g.shape == out.frame.shape:
            out.frame[...] = g
        else:
            cv2.resize(g, out.frame.shape[::-1], dst=out.frame, interpolation=cv2.INTER_NEAREST)
        cv2.resize(g, out.source_frame.shape[::-1], dst=out.source_frame,
                   interpolation=cv2.INTER_NEAREST)
        b = self._last_block
        n = min(b.shape[0], out.block.shape[0])
        out.block[:n] = b[:n]
        out.block[n:] = 0
        o = self._out
        n = min(o.shape[0], out.output.shape[0])
        out.output[:n] = o[:n]
        out.output[n:] = 0
        out.tick = self.tick
        out.level_dbfs = float(self._level_dbfs)
        out.source_fps = float(self.source.source_fps)
        tt = self._tick_times
        out.brain_fps = (len(tt) - 1) / (tt[-1] - tt[0]) if len(tt) > 1 and tt[-1] > tt[0] else 0.0
        out.inference_ms = float(self._inference_ms)
        k = min(self._lat_n, 64)
        if k:
            idx = (self._lat_n - k + np.arange(k)) % self._lat.shape[0]
            out.latency_ms = float(np.median(self._lat[idx]) * 1000)
        out.underruns = int(self.audio.underruns) if self.audio else 0
        out.ring_fill = self.ring.fill / self.samplerate * 1000  # ms queued
        out.brain_name = self.brain.name
        out.mode = self.mode
        out.running = self.running
        return out


# ------------------------------------------------------------------------------ commands
def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--brain", default=None,
                        help="brain file or name in brains/ (default: default)")
    parser.add_argument("--mode", choices=C.MODES, default="ola", help="synthesis (default ola)")
    parser.add_argument("--device", default=None, help="audio output: index or part of its name")
    parser.add_argument("--samplerate", type=int, default=None,
                        help="device rate in Hz (default: the device's own; JACK's on JACK)")
    parser.add_argument("--blocksize", type=int, default=256, help="frames per callback (256)")
    parser.add_argument("--latency", default="low",
                        help="PortAudio output latency: low, high or seconds (default low)")
    parser.add_argument("--margin", type=int, default=None,
                        help="safety lead in samples: each tick is written this long before "
                        "the callback needs it (default: 256 at 48 kHz with a real-time producer, "
                        "768 without)")
    parser.add_argument("--no-realtime", action="store_true",
                        help="keep the producer at normal priority (by default it asks for "
                        "real-time scheduling where the system allows it)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after N seconds")
    parser.add_argument("--record", default=None, metavar="FILE.wav",
                        help="write what is played to a float WAV, finalised on stop")
    parser.add_argument("--stats-json", default=None, metavar="FILE",
                        help="write underruns, ticks, latency on stop")
    parser.add_argument("--seed", type=int, default=0, help="granular seed")
    parser.add_argument("--gain", type=float, default=1.0, help="output gain (0..2)")
    parser.add_argument("--no-gui", action="store_true", help="no monitor window")
    parser.add_argument("--fullscreen", action="store_true", help="monitor full screen")
    try:
        from liveframe.control.osc import add_osc_arguments
    except ImportError:
        return
    add_osc_arguments(parser)


def add_play_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", help="video file")
    parser.add_argument("--loop", action="store_true", help="start again at the end")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed (1)")
    _common_arguments(parser)


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--camera", type=int, default=0, help="camera index (0)")
    _common_arguments(parser)


def _latency_arg(v: str) -> str | float:
    if v in ("low", "high"):
        return v
    try:
        f = float(v)
    except ValueError:
        raise UsageError(f"--latency {v!r} must be low, high or seconds") from None
    if not f >= 0:
        raise UsageError(f"--latency {v!r} must be low, high or seconds")
    return f


def write_stats_json(path: str | os.PathLike[str], stats: dict[str, Any]) -> Path:
    """Write the ``--stats-json`` schema atomically."""
    p = Path(path)
    keys = ("underruns", "ticks", "latency_ms", "device_latency_ms", "samplerate", "blocksize")
    with atomic_write(p, "w") as (f, _):
        f.write(json.dumps({k: stats[k] for k in keys}, indent=2) + "\n")
    return p


class _StopRequest:
    """A signal handler (:func:`liveframe.util.signals.handling`) that sets :attr:`event`
    instead of raising where the signal lands.

    A KeyboardInterrupt raised at an arbitrary line (while the engine opens the stream,
    prefills the ring or tears down) can leave a thread or a device half-started and the
    process hanging on exit; the flag is read where stopping is safe, and the recording is
    finalised. A second Ctrl-C raises KeyboardInterrupt as usual, should a stop ever hang.
    """

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, signum: int, frame: Any) -> None:
        if self.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.event.set()
        log.info("%s: stopping", signal.Signals(signum).name)


def _play(args: argparse.Namespace, make_reader: Callable[[], Any]) -> int:
    stop = _StopRequest()
    with signals.handling(stop):
        return _play_until(args, make_reader, stop.event)


def _play_until(args: argparse.Namespace, make_reader: Callable[[], Any],
                interrupted: threading.Event) -> int:
    if args.record is not None and not str(args.record).lower().endswith(".wav"):
        raise UsageError(f"--record {args.record}: must be a .wav file")
    if args.seconds is not None and not args.seconds > 0:
        raise UsageError(f"--seconds {args.seconds} must be positive")
    controls = Controls(gain=args.gain, mode=args.mode)
    brain = Brain.load(resolve_brain_path(args.brain))
    reader = make_reader()
    capture = Capture(reader, spec=brain.spec)
    try:
        engine = Engine(brain, capture, controls=controls, mode=args.mode, device=args.device,
                        samplerate=args.samplerate, blocksize=args.blocksize,
                        latency=_latency_arg(str(args.latency)), margin=args.margin,
                        record=args.record, seed=args.seed,
                        realtime=not getattr(args, "no_realtime", False))
    except BaseException:
        capture.stop()
        raise
    closer = None
    try:
        try:
            from liveframe.control import osc
        except ImportError:
            osc = None  # type: ignore[assignment]
        if osc is not None:
            closer = osc.start_osc(args, engine)
        win = None
        if not args.no_gui:
            try:
                from liveframe.ui import monitor
            except ImportError:
                monitor = None  # type: ignore[assignment]
            if monitor is not None and monitor.display_available():
                # built and shown before the audio starts: Qt's first show holds the GIL
                win = monitor.open_monitor(engine, args)
            else:
                log.info("no display: running headless (Ctrl-C stops)")
        try:
            engine.start()
        except BaseException:
            if win is not None:
                win.close()
            raise
        if win is not None and not interrupted.is_set():
            timer = None
            if args.seconds is not None:
                timer = threading.Timer(args.seconds, engine.stop)
                timer.daemon = True
                timer.start()
            try:
                monitor.run_monitor(engine, args, win=win)
            finally:
                if timer is not None:
                    timer.cancel()
                engine.stop()
        else:  # returns at once when a signal came while the engine started
            engine.run(args.seconds, interrupted)
    finally:
        engine.stop()
        if closer is not None:
            closer()
        if args.stats_json:
            write_stats_json(args.stats_json, engine.stats())
    st = engine.stats()
    log.info("played %d ticks, %d underruns, frame-to-DAC latency median %.1f ms "
             "(p99 %.1f), the device reports %.1f ms of it", st["ticks"], st["underruns"],
             st["latency_ms"]["median"], st["latency_ms"]["p99"], st["device_latency_ms"])
    if engine.error:
        log.error("the producer failed: %s", engine.error)
        return 1
    return 0


def run_play(args: argparse.Namespace) -> int:
    return _play(args, lambda: PyAVReader(args.clip, loop=args.loop, speed=args.speed))


def run_live(args: argparse.Namespace) -> int:
    return _play(args, lambda: OpenCVReader(args.camera))
