"""Pickling: videos with soundtracks -> a dataset on the brain clock (``liveframe pickle``).

Each video is decoded in one demux pass. Tick ``k`` gets the newest picture whose
timestamp is <= ``k / fps`` (:func:`liveframe.core.media.on_brain_clock`, the clock live
play and render use too) and the audio of :meth:`liveframe.core.spec.Framing.span` around
it, placed by the audio's own timestamps. The file format is :mod:`liveframe.data.dataset`.
"""

from __future__ import annotations

import logging
import os
import time as _time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.core.spec import Framing, hop_length
from liveframe.data.dataset import DatasetWriter
from liveframe.errors import DatasetError, MediaError, ParamError, UsageError

log = logging.getLogger(__name__)


class AudioWindow:
    """The soundtrack at the brain rate, kept only from ``keep_from`` on.

    Samples are addressed by their global index (``round(time * sr)`` after the source's
    origin); everything outside what was pushed reads as zeros.

    Parameters
    ----------
    capacity : int
        Initial buffer size in samples; it grows only if the ticks still waiting need more.
    """

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.buf = np.zeros(capacity, np.float32)
        self.off = 0  # global index of buf[0]
        self.n = 0  # valid samples in buf
        self.started = False
        self.keep_from = -(1 << 62)

    @property
    def end(self) -> int:
        """Global index one past the last sample received (valid once ``started``)."""
        return self.off + self.n

    def push(self, index: int, samples: npt.NDArray[np.float32]) -> None:
        """Append ``samples`` (n,) whose first is global sample ``index``."""
        if not self.started:
            self.off, self.n, self.started = index, 0, True
        elif index > self.end:  # a gap: silence
            self.push(self.end, np.zeros(index - self.end, np.float32))
        elif index < self.end:  # an overlap: keep what came first
            samples = samples[self.end - index:]
        m = samples.size
        if self.n + m > self.buf.size:
            drop = min(max(self.keep_from - self.off, 0), self.n)
            if drop:
                self.buf[: self.n - drop] = self.buf[drop: self.n]
                self.off += drop
                self.n -= drop
            if self.n + m > self.buf.size:
                grown = np.zeros(max(2 * self.buf.size, self.n + m), np.float32)
                grown[: self.n] = self.buf[: self.n]
                self.buf = grown
        self.buf[self.n: self.n + m] = samples
        self.n += m

    def take(self, lo: int, hi: int, out: npt.NDArray[np.float32]) -> None:
        """``out[:] = x[lo:hi]``, zeros where nothing was pushed; ``out`` is (hi - lo,)."""
        out[:] = 0.0
        if not self.started:
            return
        a, b = max(lo, self.off), min(hi, self.end)
        if b > a:
            out[a - lo: b - lo] = self.buf[a - self.off: b - self.off]


class LazyFrame:
    """A decoded picture with its ``time`` (s); scaled only if a tick uses it.

    Parameters
    ----------
    time : float
    raw : av.VideoFrame
    convert : callable
        ``raw`` -> (C, H, W) uint8, e.g. a :class:`liveframe.core.media.Scaler`.
    """

    __slots__ = ("_convert", "_px", "_raw", "time")

    def __init__(self, time: float, raw: Any, convert: Callable[[Any], npt.NDArray[np.uint8]],
                 ) -> None:
        self.time = time
        self._raw = raw
        self._convert = convert
        self._px: npt.NDArray[np.uint8] | None = None

    @property
    def pixels(self) -> npt.NDArray[np.uint8]:
        """(C, H, W) uint8."""
        if self._px is None:
            self._px = self._convert(self._raw)
            self._raw = None
        return self._px


def check_settings(*, fps: float, sr: int, framing: str, channels: int,
                   calibrate_silence: float) -> Framing:
    """The framing of these settings; a bad value is one :class:`ParamError`."""
    if not fps > 0:
        raise ParamError("fps", fps, "must be positive")
    if not (isinstance(sr, (int, np.integer)) and sr > 0):
        raise ParamError("sr", sr, "must be a positive whole number of Hz")
    if framing not in C.FRAMINGS:
        raise ParamError("framing", framing, f"must be one of {', '.join(C.FRAMINGS)}")
    if channels not in (1, 3):
        raise ParamError("channels", channels, "must be 1 (grey) or 3 (colour)")
    if not calibrate_silence >= 0:
        raise ParamError("calibrate_silence", calibrate_silence, "must be >= 0 seconds")
    try:
        hop = hop_length(int(sr), fps)
    except ValueError:
        raise ParamError("fps", fps, f"gives {sr / fps:g} samples per tick at {sr} Hz; it must "
                         "be a whole number (e.g. 22050 Hz at 30, 25 or 50 fps)") from None
    return Framing(framing, hop)


def _open_all(videos: Sequence[Path]) -> list[float | None]:
    """Open every input once (video and audio streams must exist) before any decoding.

    Returns each file's duration in seconds (None if unknown), for the progress bar.
    """
    from liveframe.core.media import MediaReader, check_clip

    durations = []
    for v in videos:
        with MediaReader(v, need_video=True, need_audio=True) as r:
            durations.append(r.duration)
        check_clip(v)  # a picture decodes (and it is no still picture)
    return durations


def _origin(reader: Any) -> float:
    """Time (s) of tick 0: the container's start time when positive, else 0."""
    return float(reader.start_time)


def _pickle_video(path: Path, writer: DatasetWriter, *, fps: float, sr: int, frame: Framing,
                  size: tuple[int, int], channels: int, bar: Any) -> dict[str, Any]:
    """Append one video's ticks to ``writer``; returns the source's facts for the meta."""
    from liveframe.core.media import MediaReader, Scaler, on_brain_clock
    from liveframe.core.synth import hann

    window = hann(frame.length) if frame.windowed else None
    audio = AudioWindow(capacity=max(1 << 16, 8 * frame.length))
    pending: deque[tuple[int, npt.NDArray[np.uint8]]] = deque()
    target = np.zeros(frame.length, np.float32)
    counts = {"video": 0, "audio": 0}
    first_audio: list[float] = []

    def flush(done: bool) -> None:
        """Write every waiting tick whose audio is complete (all of them when ``done``)."""
        while pending:
            k, px = pending[0]
            lo, hi = frame.span(k)
            if not done and not (audio.started and audio.end >= hi):
                break
            audio.take(lo, hi, target)
            if window is not None:
                np.multiply(target, window, out=target)
            writer.append(px, target)
            pending.popleft()
            bar.update(1)
        if pending:
            audio.keep_from = frame.span(pending[0][0])[0]

    with MediaReader(path, need_video=True, need_audio=True, threads=True) as reader:
        origin = _origin(reader)
        convert = Scaler(size, channels)

        def video_frames() -> Iterator[LazyFrame]:
            # audio is pushed into the window as a side effect, in file order
            for kind, t, item in reader.demux(resample=sr):
                if kind == "video":
                    counts["video"] += 1
                    yield LazyFrame(t - origin, item, convert)
                else:
                    if not first_audio:
                        first_audio.append(t)
                        audio.push(round((t - origin) * sr), item)
                    else:
                        audio.push(audio.end, item)
                    counts["audio"] += item.size

        last_k = -1
        for k, vf in on_brain_clock(video_frames(), fps=fps):
            pending.append((k, vf.pixels))
            last_k = k
            audio.keep_from = frame.span(pending[0][0])[0]
            flush(False)
        if counts["video"] == 0:
            raise MediaError(f"{path}: no video frame could be decoded (corrupt file?)")
        if counts["audio"] == 0:
            raise MediaError(f"{path}: the audio track decodes to nothing (corrupt file?)")
        flush(True)
        duration, rate = reader.duration, reader.frame_rate
    return {
        "kind": "video",
        "path": str(path),
        "origin": origin,
        "audio_start": (first_audio[0] - origin) if first_audio else None,
        "source_fps": rate,
        "duration": duration,
        "video_frames": counts["video"],
        "last_tick": last_k,
    }


def _calibrate(writer: DatasetWriter, ticks: int, *, fps: float, bar: Any) -> None:
    """Append ``ticks`` of calibration: black then white frames, silent targets."""
    channels, h, w = writer.frame_shape
    zeros = np.zeros(writer.length, np.float32)
    half = ticks - ticks // 2
    for colour, n, value in (("black", half, 0), ("white", ticks // 2, 255)):
        if n == 0:
            continue
        frame = np.full((channels, h, w), value, np.uint8)
        for _ in range(n):
            writer.append(frame, zeros)
        bar.update(n)
        writer.end_source(kind="calibration", path=colour, seconds=n / fps)


def build_dataset(
    videos: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    fps: float = C.FPS,
    sr: int = C.SAMPLE_RATE,
    framing: str = "grain",
    channels: int = 1,
    size: tuple[int, int] = (C.FRAME_SIZE, C.FRAME_SIZE),
    calibrate_silence: float = 0.0,
    progress: bool = True,
) -> Path:
    """Turn videos with soundtracks into one dataset on the brain clock.

    Each video is decoded in a single demux pass (FFmpeg threads, pictures scaled by
    swscale). Tick ``k`` (time ``k / fps`` after the source's origin, its container start
    time) gets the newest frame whose timestamp is <= ``k / fps`` and the audio of
    ``Framing(framing, hop).span(k)``, placed by its own timestamps, downmixed to mono and
    resampled to ``sr`` (``grain``: ``x[kH - H : kH + H] * hann(2H)``; ``block``:
    ``x[kH : kH + H]``; ``H = sr / fps``; zeros outside the soundtrack). Memory stays
    bounded: only the audio still needed by ticks waiting for it is kept, and never a
    decoded picture beyond the current one.

    Parameters
    ----------
    videos : sequence of path-like
        Concatenated in order; each is a source with its boundary recorded.
    out : path-like
        The dataset (``.npz``), written atomically: on any error nothing is left.
    fps : float
        Brain clock in ticks per second; ``sr / fps`` must be whole.
    sr : int
        Brain audio rate in Hz.
    framing : {"grain", "block"}
    channels : {1, 3}
        Grey or RGB frames.
    size : (width, height)
    calibrate_silence : float
        Seconds of calibration appended: half black frames, half white, with all-zero
        targets, as two sources of kind ``calibration``.
    progress : bool
        Draw a progress bar on stderr.

    Returns
    -------
    Path
        The written dataset.

    Raises
    ------
    MediaError
        A missing, empty, unreadable or corrupt video, or one without an audio track
        (every input is opened before any is decoded).
    DatasetError
        An output that is a folder, or whose folder does not exist or is not writable.
    UsageError
        Bad settings (:class:`~liveframe.errors.ParamError` names the parameter), no
        video, or an output that is one of the inputs.
    """
    from liveframe.util.progress import Progress

    frame = check_settings(fps=fps, sr=sr, framing=framing, channels=channels,
                           calibrate_silence=calibrate_silence)
    if not videos:
        raise UsageError("give at least one video")
    paths = [Path(v) for v in videos]
    out = Path(out)
    if out.is_dir():
        raise DatasetError(f"{out}: is a folder; give a file name for the dataset, e.g. data.npz")
    for p in paths:
        if p.exists() and out.exists() and os.path.samefile(p, out):
            raise UsageError(f"{out}: the output would overwrite an input video")
    durations = _open_all(paths)
    w, h = size
    meta = {
        "sample_rate": int(sr), "fps": int(fps) if float(fps).is_integer() else float(fps),
        "hop": frame.hop, "length": frame.length, "framing": framing, "channels": channels,
        "width": w, "height": h, "created": _time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "sources": [],
    }
    calib = round(calibrate_silence * fps)
    total = sum(round(d * fps) for d in durations if d) + calib
    writer = DatasetWriter(out, frame_shape=(channels, h, w), length=frame.length, meta=meta)
    bar = Progress(total or None, "pickle", unit="ticks", enabled=progress)
    try:
        for p in paths:
            t0 = _time.monotonic()
            info = _pickle_video(p, writer, fps=fps, sr=int(sr), frame=frame, size=size,
                                 channels=channels, bar=bar)
            writer.end_source(**info)
            log.debug("%s: %d ticks in %.1f s", p, writer.meta["sources"][-1]["ticks"],
                      _time.monotonic() - t0)
        if calib:
            _calibrate(writer, calib, fps=fps, bar=bar)
        bar.close()
        return writer.close()
    except BaseException:
        bar.close()
        writer.abort()
        raise
