"""Frames in, live: the file and camera readers and the capture thread.

One :class:`Capture` class serves files and cameras. Its thread decodes, scales to the
brain's input (``(C, H, W)`` uint8), timestamps and publishes; the producer takes one
picture per tick with :meth:`Capture.take`. Every picture, from a file or a camera, is
scaled by the same :class:`~liveframe.core.media.Scaler` (swscale, area) as offline render
and the dataset use, so identical pictures give identical pixels in pickle, render and
live.

- :class:`PyAVReader` (``liveframe play``): a file decoded with PyAV and put on the brain
  clock by the decode loop offline render uses (:class:`~liveframe.core.media.ClockedFrames`:
  at tick k the newest frame with ``time <= k * speed / fps``), so live play equals render
  sample for sample. Paced by the producer (i.e. by the audio device) through a small
  bounded queue; ``loop`` restarts it; ``speed`` scales media time.
- :class:`OpenCVReader` (``liveframe live``): a camera index, or a file paced by its
  timestamps as a camera would deliver it. The newest picture is published; the producer
  takes the newest at every tick (a stalled camera repeats its last picture, a 60 fps one
  is sampled).

A corrupt frame is skipped; a source that ends loops (``loop=True``) or ends the play
cleanly.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe.core.media import ClockedFrames, MediaReader, Scaler
from liveframe.core.spec import BrainSpec
from liveframe.errors import DeviceError, LiveframeError, MediaError, ParamError
from liveframe.live.audio import list_cameras
from liveframe.util.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]

_PICTURE_FORMATS = {2: "gray", 3: "bgr24", 4: "bgra"}  # ndim/channels -> PyAV format


def scale_picture(img: npt.NDArray[np.uint8], scaler: Scaler) -> U8:
    """An OpenCV picture scaled to the brain's input by the files' own scaler.

    Parameters
    ----------
    img : ndarray, shape (height, width), (height, width, 3) or (height, width, 4), uint8
        Grey, BGR or BGRA, as OpenCV delivers it.
    scaler : Scaler

    Returns
    -------
    ndarray, shape (channels, height, width), uint8
    """
    import av

    key = img.ndim if img.ndim == 2 else img.shape[2]
    fmt = _PICTURE_FORMATS.get(key)
    if fmt is None or img.dtype != np.uint8:
        raise MediaError(f"a picture of shape {img.shape} and type {img.dtype} is not grey, "
                         "BGR or BGRA bytes")
    return scaler(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format=fmt))


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

    Raises
    ------
    MediaError
        The file is missing or not a readable video (checked now, in one line).
    ParamError
        ``speed`` is not a positive number.
    """

    clocked = True

    def __init__(self, path: str | os.PathLike[str], *, loop: bool = False,
                 speed: float = 1.0) -> None:
        if not speed > 0 or not np.isfinite(speed):
            raise ParamError("speed", speed, "must be a positive number")
        self.path = Path(path)
        self.loop = loop
        self.speed = float(speed)
        MediaReader(self.path).close()
        self.name = self.path.name

    def ticks(self, *, fps: float, size: tuple[int, int],
              channels: int) -> Iterator[tuple[int, U8]]:
        """``(tick, pixels)`` for every tick, pass after pass when looping."""
        offset = 0
        while True:
            n = 0
            with MediaReader(self.path) as r:
                for k, vf in ClockedFrames(r, fps=fps / self.speed, size=size,
                                           channels=channels):
                    n = k + 1
                    yield offset + k, vf.pixels
            if not self.loop or n == 0:
                return
            offset += n

    def close(self) -> None:
        """Nothing to release: each pass opens and closes its own file."""


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

    Raises
    ------
    DeviceError
        No camera with that index (the message lists the cameras found).
    MediaError
        The file is missing or OpenCV cannot open it.
    """

    clocked = False

    def __init__(self, source: int | str | os.PathLike[str], *, loop: bool = False,
                 speed: float = 1.0) -> None:
        import cv2

        self.is_camera = isinstance(source, int)
        self.source = source
        self.loop = loop
        self.speed = float(speed)
        self.name = f"camera {source}" if self.is_camera else Path(source).name
        if self.is_camera:
            cams = list_cameras()
            if source not in cams:
                found = ", ".join(str(c) for c in cams) if cams else "none"
                raise DeviceError(
                    f"camera {source} not found (cameras found: {found}); plug one in, "
                    "pick another, or play a file with `liveframe play CLIP`")
        elif not Path(source).exists():
            raise MediaError(f"{source}: no such file")
        self.cap = cv2.VideoCapture(source if self.is_camera else str(source))
        if not self.cap.isOpened():
            self.cap.release()
            raise (DeviceError if self.is_camera else MediaError)(
                f"{self.name}: OpenCV cannot open it")
        self._t0: float | None = None

    def read(self) -> tuple[bool, Any, float]:
        """``(ok, picture, time)``: a BGR picture and its ``perf_counter`` time (s);
        blocks until the next picture is due."""
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
            time.sleep(due - now)  # pacing a file like a camera, not synchronisation
        return True, img, max(due, now)

    def rewind(self) -> bool:
        """Start a file again (False for a camera, or where OpenCV cannot seek)."""
        import cv2

        if self.is_camera:
            return False
        self._t0 = None
        return bool(self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0))

    def close(self) -> None:
        self.cap.release()


Reader = PyAVReader | OpenCVReader


# ------------------------------------------------------------------------------ capture
class Capture:
    """The capture thread: decode, scale, timestamp, publish (files and cameras).

    The thread is started by :meth:`start` and joined by :meth:`stop`.

    Parameters
    ----------
    reader : PyAVReader or OpenCVReader
    spec : BrainSpec, optional
        The brain's input geometry and clock (defaults: 64x64 grey, 30 fps); settable
        with :meth:`set_spec` until started.
    ahead : int
        Ticks a clocked (file) reader may decode ahead of the brain clock.

    Attributes
    ----------
    frames, corrupt, late : int
        Pictures published, corrupt ones skipped, ticks that repeated a picture because
        decoding lagged (written by the capture thread and the producer; counters only).
    ended : bool
        The source has no more pictures.
    error : str or None
        Why the capture stopped early.
    """

    def __init__(self, reader: Reader, *, spec: BrainSpec | None = None, ahead: int = 8) -> None:
        self.reader = reader
        self.spec = spec or BrainSpec()
        self.clocked = reader.clocked
        self.name = reader.name
        self._q: queue.Queue[tuple[int, U8] | None] = queue.Queue(maxsize=max(2, ahead))
        self._latest: tuple[U8, float] | None = None
        self._current: tuple[int, U8] | None = None
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None
        self.ended = False
        self.frames = 0
        self.corrupt = 0
        self.late = 0
        self.error: str | None = None
        self._fps_t: deque[float] = deque(maxlen=32)

    @property
    def started(self) -> bool:
        return self._thread is not None

    def set_spec(self, spec: BrainSpec) -> None:
        """The brain whose pictures to make; before :meth:`start` only."""
        if self.started:
            raise RuntimeError("set_spec before start()")
        self.spec = spec

    @property
    def source_fps(self) -> float:
        """Pictures per second the source delivered lately (0 before two)."""
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
        """Wait until the first picture is published (or the source ended)."""
        return self._first.wait(timeout)

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop and join the thread, release the reader. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._drain()  # unblock a put() waiting on a full queue
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: the capture thread did not stop within %.0f s (a camera "
                            "read that hangs?)", self.name, timeout)
        self.reader.close()

    def _drain(self) -> None:
        try:
            while True:
                self._q.get_nowait()
        except queue.Empty:
            pass

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
            for k, px in reader.ticks(fps=spec.fps, size=(spec.width, spec.height),
                                      channels=spec.channels):
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
        scaler = Scaler((spec.width, spec.height), spec.channels)
        warn = RateLimitedLog(log, interval=2.0)
        try:
            while not self._stop.is_set():
                ok, img, t = reader.read()
                if not ok:
                    if not reader.is_camera:
                        if reader.loop and self.frames and reader.rewind():
                            continue
                        break  # the file ended
                    warn.warning("stall", f"{self.name}: no picture (stalled?); "
                                 "repeating the last one")
                    self._stop.wait(0.01)  # a camera that gives nothing: do not spin
                    continue
                try:
                    px = scale_picture(img, scaler)
                except Exception as e:  # noqa: BLE001 -- a corrupt picture: skip it, keep playing
                    self.corrupt += 1
                    warn.warning("corrupt", f"{self.name}: skipped a corrupt picture ({e})")
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
        """The picture for ``tick`` and when it became available (``perf_counter`` s).

        Clocked sources: the picture the brain clock assigns to ``tick`` (waiting at most
        ``wait`` s for the decoder, then repeating the previous picture); live sources:
        the newest picture. None once the source has ended (or before its first picture).
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


def open_capture(source: str | int, *, current: Capture, spec: BrainSpec,
                 first_frame_s: float = 5.0) -> Capture:
    """Open, start and return the capture of a source switched in while ``current`` plays.

    A file path plays on the brain clock (:class:`PyAVReader`, looping when the current
    play loops, at its speed); an int or a digit string is a camera
    (:class:`OpenCVReader`). Waits at most ``first_frame_s`` for its first picture.

    Raises
    ------
    LiveframeError
        The file is missing or unreadable, the camera absent, or no picture came; the
        message ends with what keeps playing.
    """
    cur = current.reader
    keeps = f"{current.name} keeps playing"
    try:
        reader: Reader
        if isinstance(source, int) or str(source).strip().isdigit():
            reader = OpenCVReader(int(source))
        else:
            # a file loops when the play loops; a camera play has no end, so a file
            # switched in from a camera loops too
            camera = isinstance(cur, OpenCVReader) and cur.is_camera
            reader = PyAVReader(str(source), loop=cur.loop or camera, speed=cur.speed)
    except LiveframeError as e:
        raise type(e)(f"source refused: {e}; {keeps}") from None
    except Exception as e:  # noqa: BLE001 -- any decoder failure is a refused source
        raise MediaError(f"source refused: {source}: {type(e).__name__}: {e}; {keeps}") from None
    cap = Capture(reader, spec=spec)
    cap.start()
    if not cap.wait_first(first_frame_s) or cap.frames == 0:
        why = cap.error or (f"no frame within {first_frame_s:g} s" if not cap.ended
                            else "it has no frames")
        cap.stop()
        raise MediaError(f"source refused: {cap.name}: {why}; {keeps}")
    return cap
