"""Sound out: device discovery and the audio callback.

- :func:`find_output` picks an output device (a JACK server's first, then the system
  default, then any output); with none it raises one :class:`DeviceError` line that says
  how to fix it. :func:`rescan` re-reads PortAudio's device list (PortAudio only sees a
  JACK server that was running when it was initialised). :func:`list_outputs`,
  :func:`host_apis` and :func:`list_cameras` are what ``liveframe devices`` prints.
- :class:`AudioOutput` owns the sounddevice ``OutputStream`` and its callback (the
  contract is in :meth:`AudioOutput.callback`'s docstring). It talks to the producer only
  through the ring buffer and a :class:`~liveframe.live.shared.StreamState`.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
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


# ---------------------------------------------------------------------------- devices
def _sd() -> Any:
    try:
        import sounddevice as sd
    except OSError as e:  # PortAudio library missing
        raise DeviceError(f"PortAudio is not installed ({e}); install libportaudio2") from None
    return sd


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
            )
        except sd.PortAudioError as e:
            raise DeviceError(
                f"audio output {device.name!r} ({device.hostapi}) refuses "
                f"{self.sr} Hz / blocksize {self.blocksize}: {e}; "
                f"its own rate is {device.samplerate:g} Hz"
            ) from None
        self._stream_latency = float(self.stream.latency)

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
        if silent:  # panic: true zeros, whatever the DC tracker still holds
            out[:] = 0
        p = float(np.max(out)) if frames else 0.0
        q = -float(np.min(out)) if frames else 0.0
        if p > rec.peak or q > rec.peak:
            rec.peak = max(p, q)
        outdata[:] = out[:, None]
        if self.recorder is not None:
            self.recorder.push(out)

    @property
    def latency(self) -> float:
        """The output latency PortAudio reported when the stream opened (seconds)."""
        return self._stream_latency

    def start(self) -> None:
        self.stream.start()

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

    def close(self, *, timeout: float = 3.0) -> None:
        """Stop and close the stream; never hang.

        A device that stopped calling back (a JACK server that dropped this client as too
        slow, an unplugged card) can block PortAudio's stop for ever: the stop runs on a
        helper thread, joined for ``timeout`` seconds and then abandoned with a warning
        (the one thread that is deliberately left behind: joining it could hang the
        process's exit).
        """
        stream, self.stream = self.stream, None
        if stream is None:
            return

        def _close() -> None:
            try:
                stream.stop()
            finally:
                stream.close()

        t = threading.Thread(target=_close, name="liveframe-stream-close", daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            log.warning("audio device did not stop within %.0f s (it stopped calling back?); "
                        "left it behind", timeout)
