"""Sound out: device discovery, the audio callback, and the recorder.

- :func:`find_output` picks an output device (a JACK server's first, then the system
  default, then any output); with none it raises one :class:`DeviceError` line that says
  how to fix it. :func:`rescan` re-reads PortAudio's device list (PortAudio only sees a
  JACK server that was running when it was initialised).
- :class:`AudioOutput` owns the sounddevice ``OutputStream`` and its callback (the
  contract is in :meth:`AudioOutput._callback`'s docstring).
- :class:`Recorder` writes what the callback played to a float32 WAV file from its own
  thread, fed through its own ring buffer; finalised atomically (temporary + rename).
- ``liveframe devices`` lists audio outputs and cameras.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe.core.safety import SafetyChain
from liveframe.errors import DeviceError
from liveframe.live.ringbuffer import RingBuffer
from liveframe.util.wav import WavWriter, read_wav  # noqa: F401 -- read_wav: re-exported for now

log = logging.getLogger(__name__)
F32 = npt.NDArray[np.float32]

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


class Recorder:
    """Writes what the callback played, from its own thread, through its own ring buffer.

    The callback calls :meth:`push` (a ring write: no allocation of sample buffers, no
    lock); the writer thread drains the ring to a :class:`WavWriter` every ~50 ms.
    """

    def __init__(self, path: str | os.PathLike[str], *, sr: int, seconds: float = 4.0) -> None:
        self.writer = WavWriter(path, sr=sr)
        self.ring = RingBuffer(int(sr * seconds))
        self.dropped = 0
        self._chunk = np.zeros(int(sr * seconds), np.float32)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="liveframe-recorder", daemon=True)
        self._thread.start()

    def push(self, x: F32) -> None:
        n = self.ring.write(x)
        if n < x.shape[0]:
            self.dropped += x.shape[0] - n

    def _drain(self) -> None:
        n = self.ring.read_into(self._chunk)
        if n:
            self.writer.write(self._chunk[:n])

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._drain()

    def close(self) -> Path:
        """Stop the thread, write what is left, rename into place."""
        self._stop.set()
        self._thread.join()
        self._drain()
        if self.dropped:
            log.warning("recording dropped %d samples (disk too slow)", self.dropped)
        return self.writer.close()

    def abort(self) -> None:
        self._stop.set()
        self._thread.join()
        self.writer.abort()


# ---------------------------------------------------------------------------- output
class AudioOutput:
    """The sounddevice output stream and its real-time callback.

    Parameters
    ----------
    ring : RingBuffer
        Mono samples at the device rate, written by the producer.
    device : OutputDevice
    samplerate : int
        The device's rate (JACK's rate on JACK).
    blocksize : int
        Frames per callback (0 lets the host choose).
    latency : str or float
        sounddevice's ``latency`` ("low", "high" or seconds).
    recorder : Recorder, optional
        Receives every sample the callback outputs (after gain and safety).
    gain_seconds : float
        Time constant of the gain smoothing.
    log_size : int
        Callbacks remembered for latency matching (a circular log).
    """

    def __init__(
        self,
        ring: RingBuffer,
        device: OutputDevice,
        *,
        samplerate: int,
        blocksize: int = 256,
        latency: str | float = "low",
        recorder: Recorder | None = None,
        gain_seconds: float = 0.01,
        log_size: int = 8192,
    ) -> None:
        self.ring = ring
        self.device = device
        self.samplerate = int(samplerate)
        self.blocksize = int(blocksize)
        self.recorder = recorder
        maxb = max(8192, 4 * self.blocksize)
        self.safety = SafetyChain(sr=self.samplerate, max_block=maxb)
        self._mono = np.zeros(maxb, np.float32)
        self._ramp = np.zeros(maxb, np.float32)
        self._unit = np.arange(1, maxb + 1, dtype=np.float32)
        self._gain_a = gain_seconds * self.samplerate
        # written by the producer / control side, read by the callback
        self.target_gain = 1.0
        self.silent = False  # panic: zeros at once
        self.counting = False  # underruns count once the prefilled stream runs
        # written by the callback only
        self.gain = 0.0  # starts at 0: the first callback fades in
        self.underruns = 0
        self.xruns = 0
        self.callbacks = 0
        self.peak = 0.0
        self.log_pos = np.zeros(log_size, np.int64)  # ring.read at each callback's start
        self.log_dac = np.zeros(log_size, np.float64)  # outputBufferDacTime of that callback
        self.log_frames = np.zeros(log_size, np.int64)
        self.log_now = np.zeros(log_size, np.float64)  # currentTime of that callback
        self.stream: Any = None
        sd = _sd()
        try:
            self.stream = sd.OutputStream(
                samplerate=self.samplerate,
                blocksize=self.blocksize,
                device=device.index,
                channels=min(2, device.channels),
                dtype="float32",
                latency=latency,
                callback=self._callback,
            )
        except sd.PortAudioError as e:
            raise DeviceError(
                f"audio output {device.name!r} ({device.hostapi}) refuses "
                f"{self.samplerate} Hz / blocksize {self.blocksize}: {e}; "
                f"try --samplerate {device.samplerate:g}"
            ) from None

    # The callback runs on PortAudio's thread.
    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        """The real-time contract.

        Copies ``frames`` samples from the ring buffer, applies the smoothed gain and the
        safety chain (NaN guard, DC blocker, limiter), fills every channel of the whole
        buffer (zeros on underrun) and counts what went wrong. It allocates no sample
        buffers (only preallocated arrays and views), takes no lock, never logs, decodes,
        runs a model, touches files or Qt. It records the ring position and PortAudio's
        ``outputBufferDacTime`` of this buffer in a circular log, from which the producer
        computes frame-to-sound latency.
        """
        i = self.callbacks % self.log_pos.shape[0]
        self.log_pos[i] = self.ring.read
        self.log_frames[i] = frames
        dac = time_info.outputBufferDacTime
        now = time_info.currentTime
        self.log_now[i] = now
        self.log_dac[i] = dac if dac > 0 else now + self.stream.latency
        self.callbacks += 1
        if status.output_underflow:
            self.xruns += 1
        out = self._mono[:frames]
        n = self.ring.read_into(out)
        if n < frames:
            out[n:] = 0
            if self.counting:
                self.underruns += 1
        silent = self.silent
        if silent:
            out[:] = 0
            self.gain = 0.0
        else:
            g0 = self.gain
            target = self.target_gain
            if g0 != target:
                g1 = target + (g0 - target) * math.exp(-frames / self._gain_a)
                if abs(g1 - target) < 1e-4:
                    g1 = target
                ramp = self._ramp[:frames]
                np.multiply(self._unit[:frames], (g1 - g0) / frames, out=ramp)
                ramp += g0
                out *= ramp
                self.gain = g1
            elif g0 != 1.0:
                out *= g0
        self.safety.process(out)
        if silent:  # panic: true zeros, whatever the DC tracker still holds
            out[:] = 0
        p = float(np.max(out)) if frames else 0.0
        q = -float(np.min(out)) if frames else 0.0
        if p > self.peak or q > self.peak:
            self.peak = max(p, q)
        outdata[:] = out[:, None]
        if self.recorder is not None:
            self.recorder.push(out)

    @property
    def latency(self) -> float:
        """The output latency the device reports (seconds)."""
        return float(self.stream.latency)

    def start(self) -> None:
        self.stream.start()

    def time(self) -> float:
        """The stream's clock (seconds), the clock of ``outputBufferDacTime``."""
        return float(self.stream.time)

    def close(self, *, timeout: float = 3.0) -> None:
        """Stop and close the stream; never hang.

        A device that stopped calling back (a JACK server that dropped this client as too
        slow, an unplugged card) can block PortAudio's stop for ever: the stop runs on a
        helper thread and is abandoned, with a warning, after ``timeout`` seconds.
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


# ---------------------------------------------------------------------------- command
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    outs = list_outputs()
    cams = list_cameras()
    if getattr(args, "json", False):
        print(json.dumps({
            "outputs": [o.__dict__ for o in outs],
            "cameras": cams,
            "host_apis": host_apis(),
        }, indent=2))
        return 0
    print("audio outputs:")
    if outs:
        for o in outs:
            print(f"  {o.describe()}")
    else:
        print(f"  none (host APIs: {', '.join(host_apis())}); {NO_DEVICE_HELP}")
    print("cameras:")
    print("  " + (", ".join(f"[{c}]" for c in cams) if cams else "none found"))
    return 0
