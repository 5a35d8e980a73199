"""Frames in: decoding with PyAV, the 64x64 preprocessing and the brain clock.

Everything that turns a video into what a brain sees lives here, so training, offline
render and live play see exactly the same pixels.

- :func:`preprocess` turns any frame (grey, BGR or RGB, any size) into the brain's input.
- :class:`MediaReader` opens a file with PyAV and decodes video frames (already scaled by
  swscale, so a 1080p picture is never held at full size longer than one frame) and audio
  (downmixed to mono and resampled to the brain rate) with their timestamps.
- :class:`BrainClock` (and :func:`on_brain_clock`) turns timestamped frames into one frame
  per brain tick: at tick k the newest frame whose timestamp is <= k/fps. 24, 25, 29.97,
  60 fps and variable frame rate sources all give one frame per tick.
- :class:`ClockedFrames` is the decode loop on the brain clock, written once: a file's
  pictures, scaled, one per tick, with the source's end time (render, eval, play, pickle).
- :func:`with_context` stacks a tick's picture with the ones before it (the tick pipeline
  calls it).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.errors import MediaError

log = logging.getLogger(__name__)

PTS_TOLERANCE = 1e-3
"""Seconds by which a frame timestamp may trail a tick and still count as <= it.

Containers round timestamps (Matroska to 1 ms): a 30 fps frame stamped 0.067 s is the
frame for the tick at 0.0667 s.
"""

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


def preprocess(
    frame: npt.NDArray[Any],
    *,
    size: tuple[int, int] = (C.FRAME_SIZE, C.FRAME_SIZE),
    channels: int = 1,
    bgr: bool = True,
    out: U8 | None = None,
) -> U8:
    """Scale a picture to the brain's input, as uint8 planes.

    Parameters
    ----------
    frame : ndarray, shape (H, W) or (H, W, 3) or (H, W, 4)
        A grey or colour picture, uint8.
    size : (width, height)
    channels : 1 or 3
        1 gives grey (ITU-R BT.601 luma, as OpenCV and swscale compute it), 3 gives RGB.
    bgr : bool
        Colour order of a 3-channel ``frame`` (OpenCV's is BGR).
    out : ndarray, shape (channels, height, width), uint8, optional

    Returns
    -------
    ndarray, shape (channels, height, width), uint8
    """
    import cv2

    a = np.asarray(frame)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    w, h = size
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if channels == 1:
        if a.ndim == 3:
            a = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY)
        small = cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)[None]
    elif channels == 3:
        if a.ndim == 2:
            a = cv2.cvtColor(a, cv2.COLOR_GRAY2RGB)
        elif bgr:
            a = cv2.cvtColor(a, cv2.COLOR_BGR2RGB)
        small = cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
    else:
        raise ValueError(f"channels={channels} must be 1 or 3")
    if out is None:
        return np.ascontiguousarray(small)
    out[...] = small
    return out


@dataclass(frozen=True)
class VideoFrame:
    """A decoded, preprocessed frame: ``time`` in seconds, ``pixels`` (C, H, W) uint8."""

    time: float
    pixels: U8


def frame_time(frame: Any) -> float | None:
    """Presentation time of a decoded PyAV frame in seconds (None if it has none)."""
    if frame.pts is None or frame.time_base is None:
        return frame.time  # type: ignore[no-any-return]
    return float(frame.pts * frame.time_base)


class Scaler:
    """swscale area scaling to the brain's input, with one cached scaling context.

    ``frame.reformat`` builds a new context (filters, thread pool) on every call, ten times
    the cost of the scaling itself for 1080p to 64x64; one :class:`VideoReformatter` per
    file gives the same pixels. OpenCV's ``INTER_AREA`` is 5-30x slower at non-integer
    ratios, so it is not used.

    Parameters
    ----------
    size : (width, height)
    channels : 1 (grey) or 3 (RGB)
    """

    def __init__(self, size: tuple[int, int], channels: int) -> None:
        from av.video.reformatter import VideoReformatter

        self.width, self.height = size
        self.format = "gray" if channels == 1 else "rgb24"
        self.channels = channels
        self._r = VideoReformatter()

    def __call__(self, frame: Any) -> U8:
        """``frame`` (av.VideoFrame) as (channels, height, width) uint8."""
        # threads=1: a 64x64 output is too little work to share out (same pixels either way)
        small = self._r.reformat(frame, width=self.width, height=self.height,
                                 format=self.format, interpolation="AREA", threads=1)
        # the plane read directly (to_ndarray's format dispatch costs as much as a copy)
        plane = small.planes[0]
        h, w, c = self.height, self.width, self.channels
        rows = np.frombuffer(plane, np.uint8, count=h * plane.line_size)
        px = rows.reshape(h, plane.line_size)[:, : w * c].reshape(h, w, c).transpose(2, 0, 1)
        return px.copy()  # (C, H, W), C-contiguous, owning its memory


def check_source_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a regular, non-empty file that can be read, checked without opening it
    (a FIFO would block an open, a device would stream forever).

    Raises
    ------
    MediaError
        One line naming the file and what it is instead.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise MediaError(f"{p}: no such file") from None
    except OSError as e:
        raise MediaError(f"{p}: cannot read it ({e.strerror or e})") from None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise MediaError(f"{p}: is a directory, not a video file")
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        raise MediaError(f"{p}: is a pipe or socket, not a video file; save the stream to a "
                         "file first")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        hint = (" for a camera use `liveframe live --camera " + str(p) + "`"
                if p.name.startswith("video") else " give a video file")
        raise MediaError(f"{p}: is a device, not a video file;{hint}")
    if not stat.S_ISREG(mode):
        raise MediaError(f"{p}: is not a regular file")
    if st.st_size == 0:
        raise MediaError(f"{p}: file is empty")
    if not os.access(p, os.R_OK):
        raise MediaError(f"{p}: cannot read it (permission denied)")
    return p


def _open(path: Path) -> Any:
    import av

    check_source_file(path)
    try:
        return av.open(str(path), "r")
    except av.error.FFmpegError as e:
        raise MediaError(f"{path}: not a readable video file ({_ffmsg(e)})") from None


STILL_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe",
                 "gif_pipe", "ppm_pipe", "pgm_pipe", "pgmyuv_pipe", "qoi_pipe", "svg_pipe")
"""FFmpeg demuxers of still pictures (``container.format.name``, comma-separated names)."""


def check_clip(path: str | os.PathLike[str], *, still: bool = False) -> None:
    """Refuse, before playing, a file that is no clip: not a regular file, no video
    stream, a still picture, or no picture that decodes.

    A still picture (``.png``, ``.jpg``) would play one tick and stop: a clip of it is one
    ffmpeg line away, and the message gives it. ``still=True`` lets one through (render
    makes one tick of it).

    Raises
    ------
    MediaError
        One line naming the file.
    """
    with MediaReader(path, need_video=True, threads=False) as r:
        names = set(str(r.container.format.name).split(","))
        if not still and names & set(STILL_FORMATS):
            raise MediaError(
                f"{r.path}: is a still picture, not a clip; make one that holds it, e.g. "
                f"`ffmpeg -loop 1 -i {r.path} -t 60 -r 30 still.mkv`")
        for kind, _, _ in r.demux(audio=False):
            if kind == "video":
                return
    raise MediaError(f"{r.path}: no picture in it could be decoded (corrupt or empty video "
                     "stream)")


def _ffmsg(e: Exception) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    return str(msg).splitlines()[0] if msg else type(e).__name__


class MediaReader:
    """A video file opened with PyAV, decoded a frame at a time.

    Parameters
    ----------
    path : path-like
    need_video, need_audio : bool
        Refuse, with one :class:`MediaError` line, a file without that stream.
    threads : bool
        FFmpeg's threads for the video decoder: True (frame and slice threading,
        ``thread_type`` AUTO, as many threads as FFmpeg picks: one per core, plus one) or
        False (FFmpeg's default: slice threading only). The pictures are the same.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        need_video: bool = True,
        need_audio: bool = False,
        threads: bool = True,
    ) -> None:
        self.path = Path(path)
        self.container = _open(self.path)
        self.video = self.container.streams.video[0] if self.container.streams.video else None
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
        if need_video and self.video is None:
            self.close()
            raise MediaError(f"{self.path}: has no video stream")
        if need_audio and self.audio is None:
            self.close()
            raise MediaError(
                f"{self.path}: has no audio track; a brain learns from a video's soundtrack"
            )
        if self.video is not None and threads:
            self.video.thread_type = "AUTO"

    # -- facts -----------------------------------------------------------------------
    @property
    def duration(self) -> float | None:
        """Seconds, from the container (may be None or approximate)."""
        if self.video is not None and self.video.duration is not None and self.video.time_base:
            return float(self.video.duration * self.video.time_base)
        if self.container.duration is not None:
            return self.container.duration / 1_000_000
        return None

    @property
    def start_time(self) -> float:
        """Seconds of the file's clock where the file starts: the container's start time
        when positive (a stream cut from a longer one, ``-output_ts_offset``), else 0.
        Tick 0 of the brain clock is there."""
        st = self.container.start_time
        return max(st / 1_000_000, 0.0) if st is not None else 0.0

    @property
    def frame_rate(self) -> float | None:
        if self.video is None:
            return None
        r = self.video.average_rate or self.video.guessed_rate
        return float(r) if r else None

    @property
    def size(self) -> tuple[int, int] | None:
        if self.video is None:
            return None
        return (self.video.codec_context.width, self.video.codec_context.height)

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # closing a broken container must never mask the real error
            pass

    def __enter__(self) -> MediaReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- decoding ----------------------------------------------------------------------
    def _audio_resampler(self, sample_rate: int) -> Any:
        import av

        return av.AudioResampler(format="flt", layout="mono", rate=sample_rate)

    def demux(
        self,
        *,
        video: bool = True,
        audio: bool = True,
        resample: int | None = C.SAMPLE_RATE,
        on_packet: Callable[[Any], None] | None = None,
    ) -> Iterator[tuple[str, float, Any]]:
        """One demux pass over the video and audio, decoded but not converted.

        Yields ``("video", time, av.VideoFrame)`` and, with ``resample`` set,
        ``("audio", time, samples)`` where samples are mono float32 at ``resample`` Hz
        (libswresample) and ``time`` is that of their first sample; with
        ``resample=None``, ``("audio", time, av.AudioFrame)``. Corrupt packets are skipped
        and counted in the log; a demuxer failure is one :class:`MediaError` line.

        ``on_packet``, if given, is called with every packet of the video stream (an
        ``av.Packet``, corrupt ones and the final empty one included) in file order, before
        it is decoded: a muxer can copy the packets without reading the file again.
        """
        import av

        # frame times as the exact int ratio pts * num / den (correctly rounded, so the
        # same float as float(pts * time_base)) without a Fraction per frame
        tb = self.video.time_base if self.video is not None else None
        num, den = (tb.numerator, tb.denominator) if tb else (0, 0)
        streams = []
        if video and self.video is not None:
            streams.append(self.video)
        if audio and self.audio is not None:
            streams.append(self.audio)
        if not streams:
            return
        resampler = self._audio_resampler(resample) if (audio and resample) else None
        audio_t: float | None = None
        audio_n = 0
        bad = 0
        try:
            for packet in self.container.demux(streams):
                kind = packet.stream.type
                if on_packet is not None and kind == "video":
                    on_packet(packet)
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    bad += 1
                    continue  # a corrupt packet: skip it, keep going
                for frame in frames:
                    if kind == "video":
                        # a decoded frame's time base is its stream's (PyAV sets it so)
                        pts = frame.pts
                        t = pts * num / den if pts is not None and den else frame_time(frame)
                        if t is not None:
                            yield ("video", t, frame)
                    elif resampler is None:
                        yield ("audio", float(frame.time or 0.0), frame)
                    else:
                        if audio_t is None:
                            audio_t = float(frame.pts * frame.time_base) if frame.pts else 0.0
                        for rf in resampler.resample(frame):
                            s = rf.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                            yield ("audio", audio_t + audio_n / resample, s)  # type: ignore[operator]
                            audio_n += s.size
            if resampler is not None and audio_t is not None:
                for rf in resampler.resample(None):
                    s = rf.to_ndarray().reshape(-1).astype(np.float32, copy=False)
                    yield ("audio", audio_t + audio_n / resample, s)  # type: ignore[operator]
                    audio_n += s.size
        except av.error.FFmpegError as e:
            raise MediaError(f"{self.path}: corrupt or unreadable ({_ffmsg(e)})") from None
        if bad:
            log.warning("%s: skipped %d corrupt packet(s)", self.path, bad)

    def decode(
        self,
        *,
        video: bool = True,
        audio: bool = False,
        size: tuple[int, int] = (C.FRAME_SIZE, C.FRAME_SIZE),
        channels: int = 1,
        sample_rate: int = C.SAMPLE_RATE,
    ) -> Iterator[tuple[str, float, npt.NDArray[Any]]]:
        """Demux once and decode the chosen streams in file order.

        Yields ``("video", time, pixels)`` with pixels (C, H, W) uint8 and
        ``("audio", time, samples)`` with mono float32 samples at ``sample_rate`` whose
        first sample is at ``time`` seconds. Corrupt packets are skipped.
        """
        scale = Scaler(size, channels)
        for kind, t, item in self.demux(video=video, audio=audio, resample=sample_rate):
            yield (kind, t, scale(item) if kind == "video" else item)

    def frames(
        self, *, size: tuple[int, int] = (C.FRAME_SIZE, C.FRAME_SIZE), channels: int = 1
    ) -> Iterator[VideoFrame]:
        """Decoded video frames in presentation order."""
        for _, t, px in self.decode(video=True, audio=False, size=size, channels=channels):
            yield VideoFrame(t, px)

    def read_audio(self, *, sample_rate: int = C.SAMPLE_RATE) -> tuple[float, F32]:
        """The whole soundtrack, mono at ``sample_rate``: (start time in s, samples).

        For evaluation and tests; the dataset builder streams instead.
        """
        if self.audio is None:
            raise MediaError(f"{self.path}: has no audio track")
        chunks: list[F32] = []
        t0: float | None = None
        for _, t, s in self.decode(video=False, audio=True, sample_rate=sample_rate):
            if t0 is None:
                t0 = t
            chunks.append(s)
        if not chunks:
            raise MediaError(f"{self.path}: audio track decodes to nothing")
        return (t0 or 0.0), np.concatenate(chunks)


def with_context(px: U8, hist: list[U8], context: int, *, out: U8 | None = None) -> U8:
    """The brain's input for a tick: the last ``context`` frames and ``px``, current last.

    ``hist`` is the caller's history (updated in place); at the start of a source the first
    frame stands in for the frames before it, as in training.

    Parameters
    ----------
    px : ndarray, shape (channels, H, W), uint8
    hist : list of ndarray
    context : int
    out : ndarray, shape (channels * (context + 1), H, W), uint8, optional
        Written and returned instead of a new array (e.g. a row of a batch).

    Returns
    -------
    ndarray, shape (channels * (context + 1), H, W), uint8
    """
    if not context:
        if out is None:
            return px
        out[...] = px
        return out
    hist.append(px)
    if len(hist) == 1:
        hist[:] = [px] * (context + 1)
    del hist[: len(hist) - (context + 1)]
    return np.concatenate(hist, axis=0, out=out)


class Timed(Protocol):
    """A frame with a ``time`` in seconds, e.g. a :class:`VideoFrame`."""

    @property
    def time(self) -> float: ...


TimedT = TypeVar("TimedT", bound=Timed)


class BrainClock:
    """The brain clock over timestamped frames: at tick k, the newest frame with
    ``time <= k / fps``. The one place this rule is written (:func:`on_brain_clock` and
    :class:`ClockedFrames` run it).

    Parameters
    ----------
    fps : float
        The brain clock.
    end_time : float, optional
        Seconds at which the source ends; by default the last frame's time plus
        ``last_duration`` (or the median spacing of the first 64 frames, or one tick).

    Attributes
    ----------
    ticks : int
        Ticks yielded so far.
    known_end : float
        While running: the newest frame time seen (0 before the first). It only grows,
        and :attr:`end_time` ends up strictly beyond it.
    end_time : float or None
        Seconds the source lasts; set once the frames are exhausted (None before).
    """

    def __init__(
        self,
        *,
        fps: float = C.FPS,
        end_time: float | None = None,
        last_duration: float | None = None,
    ) -> None:
        self.fps = fps
        self._end_time = end_time
        self.last_duration = last_duration
        self.ticks = 0
        self.known_end = 0.0
        self.end_time: float | None = None

    def run(self, frames: Iterable[TimedT]) -> Iterator[tuple[int, TimedT]]:
        """``(k, frame)`` for k = 0, 1, ... while ``k / fps`` is before the source's end.

        ``frames`` come in presentation order; a frame whose timestamp goes back is
        dropped; ticks before the first frame get the first frame.
        """
        fps = self.fps
        k = 0
        prev: TimedT | None = None
        spacing: list[float] = []
        for vf in frames:
            t = vf.time
            if prev is not None and t < prev.time:
                continue
            if prev is None:
                prev = vf
            elif len(spacing) < 64 and t > prev.time:
                spacing.append(t - prev.time)
            self.known_end = t
            while k / fps < t - PTS_TOLERANCE:
                self.ticks = k + 1
                yield k, prev
                k += 1
            prev = vf
        if prev is None:
            self.end_time = 0.0 if self._end_time is None else self._end_time
            return
        end_time = self._end_time
        if end_time is None:
            d = self.last_duration or (float(np.median(spacing)) if spacing else 1 / fps)
            end_time = prev.time + d
        self.end_time = end_time
        while k / fps < end_time - PTS_TOLERANCE:
            self.ticks = k + 1
            yield k, prev
            k += 1


def on_brain_clock(
    frames: Iterable[TimedT],
    *,
    fps: float = C.FPS,
    end_time: float | None = None,
    last_duration: float | None = None,
) -> Iterator[tuple[int, TimedT]]:
    """``(k, frame)`` per brain tick: :meth:`BrainClock.run` (its parameters), when the
    caller needs no end time. ``frames`` may be anything with a ``time`` in seconds."""
    return BrainClock(fps=fps, end_time=end_time, last_duration=last_duration).run(frames)


class _Decoded:
    """A decoded picture with its time, scaled (swscale) only if a tick uses it."""

    __slots__ = ("_raw", "_scale", "_vf", "time")

    def __init__(self, time: float, raw: Any, scale: Scaler) -> None:
        self.time = time
        self._raw = raw
        self._scale = scale
        self._vf: VideoFrame | None = None

    def frame(self) -> VideoFrame:
        if self._vf is None:
            self._vf = VideoFrame(self.time, self._scale(self._raw))
            self._raw = None
        return self._vf


class ClockedFrames:
    """THE brain-clock decode loop: a file's pictures, one per brain tick.

    Iterating demuxes ``reader`` once (:meth:`MediaReader.demux`), puts the decoded
    pictures on the brain clock (:class:`BrainClock`) and yields ``(k, VideoFrame)`` for
    every tick, the pixels ``(channels, height, width)`` uint8 scaled by one
    :class:`Scaler` (only the pictures a tick uses are scaled; a picture held over several
    ticks is the same object each time). Render, eval and live play of a file read their
    pictures through it; the dataset builder too, with ``on_audio``.

    Parameters
    ----------
    reader : MediaReader
        Read once from where it stands; not closed here.
    fps : float
        The brain clock.
    size : (width, height)
    channels : 1 or 3
    on_packet : callable, optional
        Called with every video packet before it is decoded (see :meth:`MediaReader.demux`).
    on_audio : callable, optional
        Called with ``(time, samples)`` for the soundtrack, mono float32 at
        ``sample_rate``, in file order (``time`` on the file's clock, ``origin`` not taken
        off). Without it the audio is not decoded.
    sample_rate : int
        Rate of the samples given to ``on_audio``.
    origin : float, optional
        Seconds of the file's clock at tick 0 (subtracted from every picture's time);
        default: the file's :attr:`MediaReader.start_time`.

    Attributes
    ----------
    frames : int
        Pictures decoded so far.
    """

    def __init__(
        self,
        reader: MediaReader,
        *,
        fps: float = C.FPS,
        size: tuple[int, int] = (C.FRAME_SIZE, C.FRAME_SIZE),
        channels: int = 1,
        on_packet: Callable[[Any], None] | None = None,
        on_audio: Callable[[float, F32], None] | None = None,
        sample_rate: int = C.SAMPLE_RATE,
        origin: float | None = None,
    ) -> None:
        self.reader = reader
        self.scale = Scaler(size, channels)
        self.on_packet = on_packet
        self.on_audio = on_audio
        self.sample_rate = sample_rate
        self.origin = float(reader.start_time if origin is None else origin)
        self.clock = BrainClock(fps=fps)
        self.frames = 0

    @property
    def ticks(self) -> int:
        """Ticks yielded so far."""
        return self.clock.ticks

    @property
    def known_end(self) -> float:
        """While iterating, seconds the source lasts at least (see :class:`BrainClock`)."""
        return self.clock.known_end

    @property
    def end_time(self) -> float | None:
        """Seconds the source lasts, once iterated to the end (None before)."""
        return self.clock.end_time

    def _decoded(self) -> Iterator[_Decoded]:
        on_audio, origin, scale = self.on_audio, self.origin, self.scale
        items = self.reader.demux(audio=on_audio is not None, resample=self.sample_rate,
                                  on_packet=self.on_packet)
        for kind, t, item in items:
            if kind == "video":
                self.frames += 1
                yield _Decoded(t - origin, item, scale)
            elif on_audio is not None:
                on_audio(t, item)

    def __iter__(self) -> Iterator[tuple[int, VideoFrame]]:
        for k, d in self.clock.run(self._decoded()):
            yield k, d.frame()
