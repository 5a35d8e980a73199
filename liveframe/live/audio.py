"""Sound out: device discovery and the audio callback.

- :func:`find_output` picks an output device (a JACK server's first, then the system
  default, then any output); with none it raises one :class:`DeviceError` line that says
  how to fix it. :func:`rescan` re-reads PortAudio's device list (PortAudio only sees a
  JACK server that was running when it was initialised). :func:`list_outputs`,
  :func:`host_apis` and :func:`list_cameras` are what ``liveframe devices`` prints.
- :class:`AudioOutput` owns the sounddevice ``OutputStream`` and its callback (the
  contract is in :meth:`AudioOutput.callback`'s docstring). It talks to the producer only
  through the ring buffer and a :class:`~liveframe.live.shared.StreamState`.

A lost device
-------------
A device can go away while it plays: the JACK server dies or drops this client, a USB
card is unplugged. PortAudio then stops calling back and says nothing. The
:class:`AudioOutput` watches its stream from a thread of its own (``liveframe-audio-watch``,
every :data:`WATCH_EVERY_S`) and reports a lost device, once, in one log line and to its
``on_lost`` callable, when

- the stream is no longer active although nobody stopped it (PortAudio's JACK host marks
  it inactive as soon as libjack reports the server gone: a tenth of a second or so), or
  PortAudio's ``finished_callback`` ran (the stream ended by itself);
- or no callback came for :data:`LOST_SILENCE_S`, or four of the stream's own buffers if
  that is longer (a server or device that hangs without a word). The silence is timed by
  the callback count on the monotonic clock, not by the stream's clock: after a JACK
  server dies, PortAudio's stream time runs on.

PortAudio cannot stop a stream whose device went away (``Pa_StopStream`` waits for a
callback that never comes), so :meth:`AudioOutput.close` gives up after a short timeout
and leaves that stop behind on a daemon thread; from then on :func:`backend_wedged` is
true and every other PortAudio call may wait for ever, including ``Pa_Terminate`` in
sounddevice's exit handler, which is therefore skipped at exit (:func:`_exit_guard`).
``liveframe play`` leaves with ``os._exit`` once everything is written
(:data:`LOST_EXIT_STATUS`).

Xruns
-----
The callback counts every buffer whose status carries PortAudio's output-underflow flag
(``xruns`` in the stats). On JACK, PortAudio registers an xrun callback with the server
and sets that flag on the next buffer after the server reported one or more xruns (a
burst between two buffers counts once); on ALSA it is PortAudio's own underrun detection.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from liveframe.core.safety import SafetyChain
from liveframe.errors import DeviceError
from liveframe.live.recorder import Recorder
from liveframe.live.ringbuffer import RingBuffer
from liveframe.live.shared import StreamState

log = logging.getLogger(__name__)

NO_DEVICE_HELP = (
    "render to a file with `liveframe render CLIP` instead, or start a JACK server "
    "(e.g. `jackd -d dummy -r 48000 -p 256`, or `jackd -d alsa` on a sound card)"
)

LOST_EXIT_STATUS = 3
"""Exit status of ``liveframe play`` and ``liveframe live`` when the audio device went away
while playing (the recording and stats are written first). Distinct from 1 (a failure, a
bug) and 2 (a usage error: bad file, value or device at start)."""

WATCH_EVERY_S = 0.1
"""How often the watchdog looks at a playing stream (s)."""

LOST_SILENCE_S = 1.0
"""A started stream that has not called back for this long (s) is lost, even if PortAudio
still calls it active: a server or device that hangs without a word (a JACK period is
5.3 ms at 256 / 48 kHz; a healthy stream is never silent for 190 of them). A stream of
long buffers waits four of them (``AudioOutput.lost_silence_s``): 8192 frames at 8000 Hz
come a second apart."""

SILENT_S = 0.25
"""A stream that has not called back for this long (s) is not waited for long on close."""

CLOSE_TIMEOUT_S = 1.0
"""How long :meth:`AudioOutput.close` waits for PortAudio to stop a healthy stream (s)."""

LOST_CLOSE_TIMEOUT_S = 0.3
"""How long :meth:`AudioOutput.close` waits for PortAudio to stop a lost or silent stream
(s): on a dead JACK server it never returns."""

_stops: list[threading.Thread] = []  # every stream stop started; those alive never returned
_open: weakref.WeakSet[AudioOutput] = weakref.WeakSet()  # streams started, not yet closed


def backend_wedged() -> bool:
    """Whether a stream stop is still stuck in PortAudio (its device went away).

    Any further PortAudio call may then wait for ever, ``Pa_Terminate`` at exit included.
    """
    return any(t.is_alive() for t in list(_stops))


def _exit_guard() -> None:
    """At interpreter exit, before sounddevice's own handler (atexit runs the last
    registered first): skip that handler's ``Pa_Terminate`` while a stop is stuck, or a
    started stream was never closed (a second Ctrl-C cut its stop short): it would close
    the stream, and wait for ever if the device is gone. The system closes the device of
    a process that exits."""
    if backend_wedged() or any(o.stream is not None for o in list(_open)):
        sd = sys.modules.get("sounddevice")
        handler = getattr(sd, "_exit_handler", None)
        if handler is not None:
            atexit.unregister(handler)


# ---------------------------------------------------------------------------- devices
def _sd() -> Any:
    try:
        import sounddevice as sd
    except OSError as e:  # PortAudio library missing
        raise DeviceError(f"PortAudio is not installed ({e}); install libportaudio2") from None
    global _guarding
    if not _guarding:  # after sounddevice's import: the guard runs before its handler
        _guarding = True
        atexit.register(_exit_guard)
    return sd


_guarding = False


def rescan() -> None:
    """Re-initialise PortAudio so it sees JACK servers started (or stopped) since import.

    Only call this while no stream is open.
    """
    sd = _sd()
    sd._terminate()
    sd._initialize()


@dataclass(frozen=True)
class OutputDevice:
    """An audio output as PortAudio sees it."""

    index: int
    name: str
    hostapi: str
    channels: int
    samplerate: float
    low_latency: float  # seconds, PortAudio's default low output latency

    def describe(self) -> str:
        return (
            f"[{self.index}] {self.name} ({self.hostapi}, {self.channels} out, "
            f"{self.samplerate:g} Hz, {self.low_latency * 1000:.1f} ms low latency)"
        )


def list_outputs() -> list[OutputDevice]:
    """Every device with output channels, JACK devices first."""
    sd = _sd()
    apis = sd.query_hostapis()
    found = []
    for i, d in enumerate(sd.query_devices()):
        if d["max_output_channels"] > 0:
            found.append(
                OutputDevice(
                    index=i,
                    name=d["name"],
                    hostapi=apis[d["hostapi"]]["name"],
                    channels=int(d["max_output_channels"]),
                    samplerate=float(d["default_samplerate"]),
                    low_latency=float(d["default_low_output_latency"]),
                )
            )
    found.sort(key=lambda o: (0 if "JACK" in o.hostapi else 1, o.index))
    return found


def host_apis() -> list[str]:
    return [a["name"] for a in _sd().query_hostapis()]


def find_output(device: int | str | None = None) -> OutputDevice:
    """The output to play on: by index, by (part of) its name, or the best default.

    Raises
    ------
    DeviceError
        No output at all (with how to fix it), or none matching ``device``.
    """
    outs = list_outputs()
    if not outs:
        raise DeviceError(
            f"no audio output device (PortAudio sees host APIs: {', '.join(host_apis())}, "
            f"none with outputs); {NO_DEVICE_HELP}"
        )
    if device is None or device == "":
        sd = _sd()
        default = sd.default.device[1] if isinstance(sd.default.device, (list, tuple)) else -1
        jack = [o for o in outs if "JACK" in o.hostapi]
        if jack:
            return jack[0]
        for o in outs:
            if o.index == default:
                return o
        return outs[0]
    if isinstance(device, int) or str(device).isdigit():
        idx = int(device)
        for o in outs:
            if o.index == idx:
                return o
    else:
        needle = str(device).lower()
        for o in outs:
            if needle in o.name.lower() or needle in f"{o.hostapi} {o.name}".lower():
                return o
    raise DeviceError(
        f"audio output {device!r} not found; outputs: "
        + "; ".join(o.describe() for o in outs)
    )


# ---------------------------------------------------------------------------- cameras
def list_cameras(max_index: int = 10) -> list[int]:
    """Indices of cameras OpenCV can open (on Linux only /dev/videoN that exist are tried)."""
    import cv2

    found = []
    linux = sys.platform.startswith("linux")
    for i in range(max_index):
        if linux and not os.path.exists(f"/dev/video{i}"):
            continue
        cap = cv2.VideoCapture(i)
        try:
            if cap.isOpened():
                found.append(i)
        finally:
            cap.release()
    return found


# ---------------------------------------------------------------------------- output
class AudioOutput:
    """The sounddevice output stream and its real-time callback.

    Parameters
    ----------
    ring : RingBuffer
        Mono samples at the device rate, written by the producer.
    device : OutputDevice
    sr : int
        The device's rate (JACK's rate on JACK).
    blocksize : int
        Frames per callback (0 lets the host choose).
    latency : str or float
        sounddevice's ``latency`` ("low", "high" or seconds).
    shared : StreamState, optional
        The contract with the producer (gain, panic, counting, timing log, stats); a new
        one by default.
    recorder : Recorder, optional
        Receives every sample the callback outputs (after gain and safety).
    gain_seconds : float
        Time constant of the gain smoothing.

    Attributes
    ----------
    lost : str or None
        Why the device was lost while playing (see the module's docstring), or None.

    Raises
    ------
    DeviceError
        The device refuses the rate or block size.
    """

    def __init__(
        self,
        ring: RingBuffer,
        device: OutputDevice,
        *,
        sr: int,
        blocksize: int = 256,
        latency: str | float = "low",
        shared: StreamState | None = None,
        recorder: Recorder | None = None,
        gain_seconds: float = 0.01,
    ) -> None:
        self.ring = ring
        self.device = device
        self.sr = int(sr)
        self.blocksize = int(blocksize)
        self.shared = shared if shared is not None else StreamState()
        self.recorder = recorder
        maxb = max(8192, 4 * self.blocksize)
        self.safety = SafetyChain(sr=self.sr, max_block=maxb)
        # preallocated: the callback works in views of these
        self._mono = np.zeros(maxb, np.float32)
        self._ramp = np.zeros(maxb, np.float32)
        self._unit = np.arange(1, maxb + 1, dtype=np.float32)
        self._gain_a = gain_seconds * self.sr
        self.stream: Any = None
        self.lost: str | None = None
        self._on_lost: Callable[[str], None] | None = None
        self._playing = False  # started, not yet closing: the watchdog's business
        self._finished = False  # PortAudio's finished_callback ran
        self._silent_s = 0.0  # seconds without a callback, as the watchdog last saw
        self._watch_stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._stopper: threading.Thread | None = None  # close's helper thread
        sd = _sd()
        try:
            self.stream = sd.OutputStream(
                samplerate=self.sr,
                blocksize=self.blocksize,
                device=device.index,
                channels=min(2, device.channels),
                dtype="float32",
                latency=latency,
                callback=self.callback,
                finished_callback=self._stream_finished,
            )
        except sd.PortAudioError as e:
            raise DeviceError(
                f"audio output {device.name!r} ({device.hostapi}) refuses "
                f"{self.sr} Hz / blocksize {self.blocksize}: {e}; "
                f"its own rate is {device.samplerate:g} Hz"
            ) from None
        self._stream_latency = float(self.stream.latency)
        # the watchdog's thresholds, never under a few of this stream's own buffers (8192
        # frames at 8000 Hz come a second apart: a healthy stream, not a lost one)
        buf_s = max(self.blocksize / self.sr, self._stream_latency)
        self.lost_silence_s = max(LOST_SILENCE_S, 4 * buf_s)
        self.silent_s = max(SILENT_S, 2 * buf_s)
        self.close_timeout_s = max(CLOSE_TIMEOUT_S, 3 * buf_s)  # a stop drains a buffer

    def callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        """The real-time contract (runs on PortAudio's thread).

        Copies ``frames`` samples from the ring buffer, applies the smoothed gain and the
        safety chain (NaN guard, DC blocker, limiter), fills every channel of the whole
        buffer (zeros on underrun) and counts what went wrong in the
        :class:`~liveframe.live.shared.StreamState`'s stats record. It allocates no sample
        buffers (only preallocated arrays and views), takes no lock, never logs, decodes,
        runs a model, touches files or Qt. It logs the ring position and PortAudio's
        ``currentTime`` and ``outputBufferDacTime`` of every buffer, from which the
        producer paces itself and measures frame-to-sound latency.
        """
        sh = self.shared
        now = time_info.currentTime
        dac = time_info.outputBufferDacTime
        rec = sh.begin_buffer(self.ring.read, frames, now,
                              dac if dac > 0 else now + self._stream_latency)
        if status.output_underflow:
            rec.xruns += 1
        out = self._mono[:frames]
        n = self.ring.read_into(out)
        if n < frames:
            out[n:] = 0
            if sh.counting:
                rec.underruns += 1
        silent = sh.silent
        if silent:
            out[:] = 0
            sh.gain = 0.0
        else:
            g0 = sh.gain
            target = sh.target_gain
            if g0 != target:
                g1 = target + (g0 - target) * math.exp(-frames / self._gain_a)
                if abs(g1 - target) < 1e-4:
                    g1 = target
                ramp = self._ramp[:frames]
                np.multiply(self._unit[:frames], (g1 - g0) / frames, out=ramp)
                ramp += g0
                out *= ramp
                sh.gain = g1
            elif g0 != 1.0:
                out *= g0
        safety = self.safety
        nan0, lim0 = safety.nan_blocks, safety.limited_blocks
        safety.process(out)
        rec.nan_blocks += safety.nan_blocks - nan0
        rec.limited_blocks += safety.limited_blocks - lim0
        if silent or sh.gain == 0.0:  # panic, or muted and faded out: true zeros, whatever
            out[:] = 0  # the DC tracker still holds (the meter then reads silence)
        p = float(np.max(out)) if frames else 0.0
        q = -float(np.min(out)) if frames else 0.0
        # the meter's level of what is output (np.dot: a sum of squares, no temporary)
        sh.end_buffer(max(p, q), float(np.dot(out, out)) if frames else 0.0)
        if not sh.own_output:  # --route csound: the level is metered, Csound plays it
            out[:] = 0  # and this output stays silent (its stats peak too)
        elif p > rec.peak or q > rec.peak:
            rec.peak = max(p, q)
        outdata[:] = out[:, None]
        if self.recorder is not None:
            self.recorder.push(out)

    @property
    def latency(self) -> float:
        """The output latency PortAudio reported when the stream opened (seconds)."""
        return self._stream_latency

    def start(self, on_lost: Callable[[str], None] | None = None) -> None:
        """Start the stream and its watchdog.

        Parameters
        ----------
        on_lost : callable(str), optional
            Called once, from the watchdog's thread (or from :meth:`close`), with why the
            device was lost, after the one log line that says so. It must return at once.
        """
        self._on_lost = on_lost
        self.stream.start()
        _open.add(self)
        self._playing = True
        self._watchdog = threading.Thread(target=self._watch, name="liveframe-audio-watch",
                                          daemon=True)
        self._watchdog.start()

    # -- the watchdog ------------------------------------------------------------------
    def _stream_finished(self) -> None:
        """PortAudio's finished_callback: the stream became inactive (a flag, nothing more)."""
        self._finished = True

    def _watch(self) -> None:
        """Every :data:`WATCH_EVERY_S`: has the stream stopped or gone silent?"""
        seen = self.shared.callbacks
        last = time.monotonic()
        while not self._watch_stop.wait(WATCH_EVERY_S):
            now = time.monotonic()
            # a watchdog that itself waited long for the CPU or the GIL (which the
            # callback needs too) counts at most two of its periods: a stall of the whole
            # process is no silence of the device
            step, last = min(now - last, 2 * WATCH_EVERY_S), now
            n = self.shared.callbacks
            if n != seen:
                seen, self._silent_s = n, 0.0
            else:
                self._silent_s += step
            why = self._lost_why(self.stream)
            if why is not None:
                self._report(why)
                return

    def _lost_why(self, stream: Any) -> str | None:
        """Why ``stream`` counts as lost now, or None (only while it plays)."""
        if not self._playing or stream is None:
            return None
        if self._finished:
            return "the stream stopped by itself"
        try:
            active = bool(stream.active)
        except Exception:  # noqa: BLE001 -- PortAudio's error on a broken stream
            active = False
        if not active:
            return "the audio server or the device went away"
        if self._silent_s >= self.lost_silence_s:
            return f"no callback for {self._silent_s:.1f} s"
        return None

    def _report(self, why: str) -> None:
        """Say once, in one line, that the device was lost; tell ``on_lost``."""
        if self.lost is not None:
            return
        self.lost = why
        d = self.device
        log.error("audio output %r (%s) lost: %s; stopping. Restart the audio server or "
                  "reconnect the device, then play again", d.name, d.hostapi, why)
        if self._on_lost is not None:
            try:
                self._on_lost(why)
            except Exception:  # a bug in the owner's hook: say so, never kill the caller
                log.exception("on_lost failed")

    @property
    def wedged(self) -> bool:
        """Whether :meth:`close` left this stream's stop stuck in PortAudio (its device went
        away): see :func:`backend_wedged`."""
        return self._stopper is not None and self._stopper.is_alive()

    # -- reading out ---------------------------------------------------------------------
    def time(self) -> float:
        """The stream's clock (seconds), the clock of ``outputBufferDacTime``.

        Raises
        ------
        DeviceError
            The stream is closed (or closing).
        """
        stream = self.stream
        if stream is None:
            raise DeviceError("audio output: the stream is closed")
        try:
            return float(stream.time)
        except Exception as e:  # noqa: BLE001 -- PortAudio's errors while it closes
            raise DeviceError(f"audio output: no stream time ({e})") from None

    def close(self, *, timeout: float | None = None) -> None:
        """Stop the watchdog, stop and close the stream; never hang.

        A device that went away or stopped calling back (a JACK server that died or dropped
        this client, an unplugged card) blocks PortAudio's stop for ever: the stop runs on
        a helper thread, joined for ``timeout`` seconds and then abandoned (the one thread
        that is deliberately left behind: joining it could hang the process's exit; see
        :func:`backend_wedged`). A stream found lost here (or that does not stop in time)
        is reported like the watchdog's (:attr:`lost`, the log line, ``on_lost``).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the stop; default :data:`LOST_CLOSE_TIMEOUT_S` for a stream
            that is lost or has been silent for :attr:`silent_s`, else
            :attr:`close_timeout_s` (:data:`CLOSE_TIMEOUT_S`, or three of the stream's
            buffers if that is longer).
        """
        stream, self.stream = self.stream, None
        if stream is None:
            return
        _open.discard(self)
        self._watch_stop.set()
        w = self._watchdog
        if w is not None and w is not threading.current_thread():
            w.join()
        why = self._lost_why(stream)  # the watchdog may not have had its turn yet
        if why is not None:
            self._report(why)
        playing, self._playing = self._playing, False
        if timeout is None:
            dead = self.lost is not None or (playing and self._silent_s >= self.silent_s)
            # a stop drains what the device holds: three of its buffers, or of the latency
            # the running stream showed (a JACK period of 4096 at 8000 Hz: 1.2 s), at least
            timeout = LOST_CLOSE_TIMEOUT_S if dead else max(self.close_timeout_s,
                                                            3 * self.shared.dac_offset())

        def _close() -> None:
            try:
                stream.stop()
            finally:
                stream.close()

        t = threading.Thread(target=_close, name="liveframe-stream-close", daemon=True)
        _stops.append(t)
        self._stopper = t
        t.start()
        t.join(timeout)
        if t.is_alive():
            if playing and self.lost is None:
                self._report(f"it did not stop within {timeout:g} s")
            elif self.lost is None:
                log.warning("audio device did not stop within %g s; left it behind", timeout)
            else:  # lost: said so already
                log.debug("audio stream stop stuck after %g s; left it behind", timeout)
