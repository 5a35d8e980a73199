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

For the monitor, the capture thread also keeps a reduced colour copy of the source picture
(:class:`Previews`: at most :data:`PREVIEW_MAX`, aspect kept, into preallocated slots),
once a monitor has asked for one (:meth:`Capture.preview_into`); the audio thread never
sees it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
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

PREVIEW_MAX = (320, 240)
"""(width, height) the monitor's copy of the source picture fits in (aspect kept, never
enlarged)."""


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


def preview_size(width: int, height: int) -> tuple[int, int]:
    """``(width, height)`` of the monitor's copy of a ``width`` x ``height`` picture.

    The picture scaled to fit :data:`PREVIEW_MAX`, aspect kept, never enlarged, at least
    one pixel each way.
    """
    mw, mh = PREVIEW_MAX
    s = min(mw / max(width, 1), mh / max(height, 1), 1.0)
    return max(1, min(mw, round(width * s))), max(1, min(mh, round(height * s)))


class Previews:
    """Reduced RGB copies of the source pictures, for the monitor.

    Written by the capture thread only, into a ring of preallocated slots (allocated at
    the first picture, never again); a slot is published by storing its index
    (:attr:`shown`), and read by :meth:`copy_into` from the GUI thread. The ring holds
    more slots than pictures can be in flight (queued ahead, taken, being written), so the
    slot being read is never the one being written.

    Parameters
    ----------
    slots : int
        Ring length.

    Attributes
    ----------
    wanted : bool
        Set by the first :meth:`copy_into`; until then no copy is made (a headless play
        pays nothing).
    shown : int
        The slot published for the monitor, -1 before the first.
    made : int
        Copies made so far.
    """

    def __init__(self, slots: int) -> None:
        self.slots = max(2, int(slots))
        self.wanted = False
        self.shown = -1
        self.made = 0
        self._buf: U8 | None = None
        self._sizes: list[tuple[int, int]] = [(0, 0)] * self.slots  # (height, width)
        self._reformatter: Any = None

    def _slot(self, width: int, height: int) -> tuple[int, U8]:
        """The next slot and its ``(ph, pw, 3)`` view for a ``width`` x ``height`` picture."""
        if self._buf is None:
            mw, mh = PREVIEW_MAX
            self._buf = np.zeros((self.slots, mh, mw, 3), np.uint8)
        pw, ph = preview_size(width, height)
        i = self.made % self.slots
        self._sizes[i] = (ph, pw)
        return i, self._buf[i, :ph, :pw]

    def from_av(self, frame: Any) -> int:
        """Copy a decoded PyAV frame; returns its slot (swscale, area, to RGB)."""
        if self._reformatter is None:
            from av.video.reformatter import VideoReformatter

            self._reformatter = VideoReformatter()
        i, view = self._slot(frame.width, frame.height)
        ph, pw = view.shape[:2]
        small = self._reformatter.reformat(frame, width=pw, height=ph, format="rgb24",
                                           interpolation="AREA", threads=1)
        plane = small.planes[0]
        rows = np.frombuffer(plane, np.uint8, count=ph * plane.line_size)
        np.copyto(view, rows.reshape(ph, plane.line_size)[:, : pw * 3].reshape(ph, pw, 3))
        self.made += 1
        return i

    def from_cv(self, img: U8) -> int:
        """Copy an OpenCV picture (grey, BGR or BGRA); returns its slot (area, to RGB)."""
        import cv2

        i, view = self._slot(img.shape[1], img.shape[0])
        ph, pw = view.shape[:2]
        if img.ndim == 2 or img.shape[2] == 1:
            small = cv2.resize(img, (pw, ph), interpolation=cv2.INTER_AREA)
            cv2.cvtColor(small, cv2.COLOR_GRAY2RGB, dst=view)
        else:
            cv2.resize(img[:, :, :3], (pw, ph), dst=view, interpolation=cv2.INTER_AREA)
            cv2.cvtColor(view, cv2.COLOR_BGR2RGB, dst=view)
        self.made += 1
        return i

    def copy_into(self, out: U8) -> tuple[int, int] | None:
        """Copy the published picture into ``out[:h, :w]``; returns ``(h, w)``, or None
        when there is none yet (the first call also starts the copying).

        Parameters
        ----------
        out : ndarray, shape (height, width, 3), uint8
            Clipped to its size if smaller than the picture.
        """
        self.wanted = True
        i = self.shown
        if i < 0 or self._buf is None:
            return None
        ph, pw = self._sizes[i]
        h, w = min(ph, out.shape[0]), min(pw, out.shape[1])
        np.copyto(out[:h, :w], self._buf[i, :h, :w])
        return h, w


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

    def ticks(self, *, fps: float, size: tuple[int, int], channels: int,
              on_picture: Callable[[Any], None] | None = None,
              ) -> Iterator[tuple[int, U8]]:
        """``(tick, pixels)`` for every tick, pass after pass when looping.

        ``on_picture`` is called with every decoded PyAV frame a tick uses, once, just
        before its first tick is yielded (the capture thread's preview for the monitor).
        """
        offset = 0
        while True:
            n = 0
            with MediaReader(self.path) as r:
                frames = ClockedFrames(r, fps=fps / self.speed, size=size, channels=channels)
                if on_picture is not None:
                    frames.scale = _Tapped(frames.scale, on_picture)
                for k, vf in frames:
                    n = k + 1
                    yield offset + k, vf.pixels
            if not self.loop or n == 0:
                return
            offset += n

    def close(self) -> None:
        """Nothing to release: each pass opens and closes its own file."""


class _Tapped:
    """A :class:`Scaler` that first hands each frame it scales to ``tap``."""

    def __init__(self, scale: Scaler, tap: Callable[[Any], None]) -> None:
        self.scale = scale
        self.tap = tap

    def __call__(self, frame: Any) -> U8:
        self.tap(frame)
        return self.scale(frame)


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
    previews : Previews
        The monitor's copies of the source pictures (:meth:`preview_into`).
    """

    def __init__(self, reader: Reader, *, spec: BrainSpec | None = None, ahead: int = 8) -> None:
        self.reader = reader
        self.spec = spec or BrainSpec()
        self.clocked = reader.clocked
        self.name = reader.name
        qsize = max(2, ahead)
        # (tick, pixels, preview slot or -1); None ends the source
        self._q: queue.Queue[tuple[int, U8, int] | None] = queue.Queue(maxsize=qsize)
        # a slot per queued picture, the one taken, the one being written, one spare
        self.previews = Previews(qsize + 3 if self.clocked else 4)
        self._preview_slot = -1  # the slot of the picture being decoded (capture thread)
        self._latest: tuple[U8, float] | None = None
        self._current: tuple[int, U8, int] | None = None
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None
        self.ended = False
        self.frames = 0
        self.corrupt = 0
        self.late = 0
        self.error: str | None = None
        self._fps_t: deque[float] = deque(maxlen=32)
        self._warn = RateLimitedLog(log, interval=2.0)

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

    def preview_into(self, out: U8) -> tuple[int, int] | None:
        """Copy the source picture now playing, reduced, into ``out`` (the monitor's).

        The picture the producer took last (a file) or the newest (a camera), in RGB,
        fitted to :data:`PREVIEW_MAX` with its aspect kept, goes to ``out[:h, :w]``.
        Copies only; call from the GUI thread. The first call starts the copying, so it
        returns None, as does any call before the first picture.

        Parameters
        ----------
        out : ndarray, shape (height, width, 3), uint8

        Returns
        -------
        (h, w) or None
        """
        return self.previews.copy_into(out)

    def _preview(self, frame: Any) -> None:
        """The capture thread's copy of a picture for the monitor, once one is wanted."""
        pv = self.previews
        if not pv.wanted:
            self._preview_slot = -1
            return
        try:
            if isinstance(frame, np.ndarray):
                self._preview_slot = pv.from_cv(frame)
            else:
                self._preview_slot = pv.from_av(frame)
        except Exception as e:  # noqa: BLE001 -- the monitor's copy must never stop the source
            self._preview_slot = -1
            self._warn.warning("preview", f"{self.name}: no monitor picture ({e})")

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
    def _put(self, item: tuple[int, U8, int] | None) -> bool:
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
                                      channels=spec.channels, on_picture=self._preview):
                self.frames += 1
                self._fps_t.append(time.perf_counter())
                if not self._put((k, px, self._preview_slot)):
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
        warn = self._warn
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
                self._preview(img)
                self._latest = (px, t)  # one reference store: atomic
                if self._preview_slot >= 0:
                    self.previews.shown = self._preview_slot
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
            if cur[2] >= 0:
                self.previews.shown = cur[2]  # the monitor shows what the brain takes
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
