"""Datasets: frames on the brain clock with their aligned audio targets.

File format (one uncompressed ``.npz``, readable with ``numpy.load``):

- ``frames``: uint8 ``[T, C, H, W]``, the frame of each tick (C = 1 grey or 3 RGB);
- ``targets``: float32 ``[T, L]``, the audio of each tick in the brain's framing
  (``grain``: 2H samples centred on the tick, Hann-windowed; ``block``: H samples from it);
- ``boundaries``: int64 ``[S + 1]``, where each source's ticks start (and T at the end):
  context frames and validation stretches never cross a boundary;
- ``meta``: a JSON string: sample_rate, fps, hop, length, framing, channels, width, height,
  sources (path, ticks, kind ``video`` or ``calibration``), created.

:class:`DatasetWriter` streams ticks to temporary files and assembles the ``.npz`` at the
end, so a long film never sits in memory; the output appears under its name only when it is
complete.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time as _time
import zipfile
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.errors import DatasetError, MediaError, UsageError

log = logging.getLogger(__name__)

FORMAT = "liveframe-dataset"
VERSION = 1


@dataclass
class Dataset:
    frames: npt.NDArray[np.uint8]
    targets: npt.NDArray[np.float32]
    boundaries: npt.NDArray[np.int64]
    meta: dict[str, Any]

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def segments(self) -> list[tuple[int, int]]:
        """(start, stop) tick ranges of each source."""
        b = self.boundaries
        return [(int(b[i]), int(b[i + 1])) for i in range(len(b) - 1)]


def _npy_header(arr_shape: tuple[int, ...], dtype: np.dtype[Any]) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_2_0(
        buf, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": arr_shape}
    )
    return buf.getvalue()


class DatasetWriter:
    """Append ticks one at a time; ``close()`` writes ``path`` atomically.

    Parameters
    ----------
    path : path-like
        The ``.npz`` to write. Nothing appears there until :meth:`close` succeeds; on
        :meth:`abort` (or an exception inside ``with``) every temporary file is removed.
    frame_shape : (C, H, W)
    target_length : int
    meta : dict
        Stored as JSON; ``sources`` is filled by :meth:`end_source`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        frame_shape: tuple[int, int, int],
        target_length: int,
        meta: dict[str, Any],
    ) -> None:
        self.path = Path(path)
        self.frame_shape = tuple(frame_shape)
        self.target_length = int(target_length)
        self.meta = dict(meta)
        self.meta.setdefault("sources", [])
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise DatasetError(f"{self.path}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise DatasetError(f"{self.path}: folder {parent} is not writable")
        self._tmpdir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.tmp", dir=parent))
        self._frames = open(self._tmpdir / "frames.raw", "wb")
        self._targets = open(self._tmpdir / "targets.raw", "wb")
        self.count = 0
        self._boundaries = [0]
        self._source_start = 0
        self._closed = False

    def append(self, frame: npt.NDArray[np.uint8], target: npt.NDArray[np.float32]) -> None:
        if frame.shape != self.frame_shape or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame.shape} {frame.dtype} must be {self.frame_shape} uint8")
        if target.shape != (self.target_length,):
            raise ValueError(f"target {target.shape} must be ({self.target_length},)")
        self._frames.write(np.ascontiguousarray(frame).tobytes())
        self._targets.write(np.ascontiguousarray(target, dtype=np.float32).tobytes())
        self.count += 1

    def end_source(self, **info: Any) -> None:
        """Close the current source (a video or a calibration stretch)."""
        ticks = self.count - self._source_start
        self.meta["sources"].append({**info, "start": self._source_start, "ticks": ticks})
        self._boundaries.append(self.count)
        self._source_start = self.count

    def close(self) -> Path:
        if self._closed:
            return self.path
        self._frames.close()
        self._targets.close()
        if self._source_start != self.count:
            self.end_source(kind="unnamed")
        if self.count == 0:
            self.abort()
            raise DatasetError(f"{self.path}: no frames to write")
        meta = {"format": FORMAT, "version": VERSION, **self.meta}
        tmp = self._tmpdir / "out.npz"
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
                for name, raw, dtype, shape in (
                    ("frames", "frames.raw", np.dtype(np.uint8), self.frame_shape),
                    ("targets", "targets.raw", np.dtype(np.float32), (self.target_length,)),
                ):
                    with z.open(f"{name}.npy", "w", force_zip64=True) as f:
                        f.write(_npy_header((self.count, *shape), dtype))
                        with open(self._tmpdir / raw, "rb") as src:
                            shutil.copyfileobj(src, f, 1 << 20)
                    os.remove(self._tmpdir / raw)  # free the disk as we go
                for name, arr in (
                    ("boundaries", np.asarray(self._boundaries, np.int64)),
                    ("meta", np.asarray(json.dumps(meta, sort_keys=True))),
                ):
                    with z.open(f"{name}.npy", "w") as f:
                        np.lib.format.write_array(f, arr, allow_pickle=False)
            os.replace(tmp, self.path)
        except BaseException:
            self.abort()
            raise
        shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Remove everything written so far; the output path is left untouched."""
        for f in (self._frames, self._targets):
            try:
                f.close()
            except Exception:
                pass
        shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._closed = True

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()


def save_dataset(
    path: str | os.PathLike[str],
    frames: npt.NDArray[np.uint8],
    targets: npt.NDArray[np.float32],
    *,
    boundaries: npt.ArrayLike | None = None,
    meta: dict[str, Any],
) -> Path:
    """Write an in-memory dataset (small ones: tests, calibration) atomically."""
    w = DatasetWriter(
        path, frame_shape=frames.shape[1:], target_length=targets.shape[1], meta=meta
    )
    try:
        b = list(boundaries) if boundaries is not None else [0, len(frames)]
        for i in range(len(b) - 1):
            for k in range(int(b[i]), int(b[i + 1])):
                w.append(frames[k], targets[k])
            w.end_source(kind="video", path=f"source{i}")
        return w.close()
    except BaseException:
        w.abort()
        raise


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read a dataset; a missing or inconsistent file is one :class:`DatasetError` line."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p}: no such dataset (make one with `liveframe pickle`)")
    try:
        with np.load(p, allow_pickle=False) as z:
            frames = z["frames"]
            targets = z["targets"]
            boundaries = z["boundaries"]
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise DatasetError(f"{p}: not a liveframe dataset ({type(e).__name__}: {e})") from None
    if meta.get("format") != FORMAT:
        raise DatasetError(f"{p}: not a liveframe dataset (format {meta.get('format')!r})")
    if len(frames) != len(targets) or boundaries[-1] != len(frames):
        raise DatasetError(f"{p}: inconsistent dataset ({len(frames)} frames, "
                           f"{len(targets)} targets, boundaries end at {boundaries[-1]})")
    return Dataset(frames, targets, boundaries, meta)


# ---------------------------------------------------------------------------------------
# Building a dataset from videos: `liveframe pickle`
# ---------------------------------------------------------------------------------------



def target_span(k: int, *, hop: int, framing: str) -> tuple[int, int]:
    """Sample range ``[lo, hi)`` at the brain rate of tick ``k``'s target.

    ``grain``: ``[kH - H, kH + H)`` (2H samples centred on the tick, Hann-windowed);
    ``block``: ``[kH, kH + H)``. Sample ``n`` is at time ``n / sample_rate`` after the
    source's origin, tick ``k`` at ``k / fps``.
    """
    if framing == "grain":
        return k * hop - hop, k * hop + hop
    return k * hop, k * hop + hop


class _AudioWindow:
    """The soundtrack at the brain rate, kept only from ``keep_from`` on.

    Samples are addressed by their global index (``round(time * sample_rate)`` after the
    source's origin); everything outside what was pushed reads as zeros.
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
        if not self.started:
            self.off, self.n, self.started = index, 0, True
        elif index != self.end:  # never happens with contiguous counting; be safe
            if index > self.end:
                self.push(self.end, np.zeros(index - self.end, np.float32))
            else:
                skip = self.end - index
                samples = samples[skip:]
        m = samples.size
        if self.n + m > self.buf.size:
            drop = min(max(self.keep_from - self.off, 0), self.n)
            if drop:
                self.buf[: self.n - drop] = self.buf[drop : self.n]
                self.off += drop
                self.n -= drop
            if self.n + m > self.buf.size:
                grown = np.zeros(max(2 * self.buf.size, self.n + m), np.float32)
                grown[: self.n] = self.buf[: self.n]
                self.buf = grown
        self.buf[self.n : self.n + m] = samples
        self.n += m

    def take(self, lo: int, hi: int, out: npt.NDArray[np.float32]) -> None:
        """``out[:] = x[lo:hi]``, zeros where nothing was pushed."""
        out[:] = 0.0
        if not self.started:
            return
        a, b = max(lo, self.off), min(hi, self.end)
        if b > a:
            out[a - lo : b - lo] = self.buf[a - self.off : b - self.off]


class _LazyFrame:
    """A decoded picture with its time; scaled (swscale) only if a tick uses it."""

    __slots__ = ("_convert", "_px", "_raw", "time")

    def __init__(self, time: float, raw: Any, convert: Any) -> None:
        self.time = time
        self._raw = raw
        self._convert = convert
        self._px: npt.NDArray[np.uint8] | None = None

    @property
    def pixels(self) -> npt.NDArray[np.uint8]:
        if self._px is None:
            self._px = self._convert(self._raw)
            self._raw = None
        return self._px


def _origin(reader: Any) -> float:
    """Time (s) of tick 0: the container's start time when positive, else 0."""
    st = reader.container.start_time
    return max(st / 1_000_000, 0.0) if st is not None else 0.0


def _check_settings(fps: float, sample_rate: int, framing: str, channels: int,
                    calibrate_silence: float) -> int:
    if not fps > 0:
        raise UsageError(f"--fps {fps} must be positive")
    if not (isinstance(sample_rate, (int, np.integer)) and sample_rate > 0):
        raise UsageError(f"--sample-rate {sample_rate} must be a positive whole number of Hz")
    hop = sample_rate / fps
    if abs(hop - round(hop)) > 1e-9 or round(hop) < 1:
        raise UsageError(
            f"--sample-rate {sample_rate} / --fps {fps} = {hop:g} samples per tick must be a "
            "whole number (e.g. 22050 Hz at 30, 25 or 50 fps)"
        )
    if framing not in C.FRAMINGS:
        raise UsageError(f"--framing {framing!r} must be one of {', '.join(C.FRAMINGS)}")
    if channels not in (1, 3):
        raise UsageError(f"channels={channels} must be 1 (grey) or 3 (colour)")
    if not calibrate_silence >= 0:
        raise UsageError(f"--calibrate-silence {calibrate_silence} must be >= 0 seconds")
    return round(hop)


def _open_all(videos: Sequence[Path]) -> list[tuple[float | None, float | None]]:
    """Open every input once (video and audio streams must exist) before any decoding.

    Returns each file's (duration in s, frame rate), for the progress bar and the meta.
    """
    from liveframe.core.media import MediaReader

    facts = []
    for v in videos:
        with MediaReader(v, need_video=True, need_audio=True) as r:
            facts.append((r.duration, r.frame_rate))
    return facts


def _pickle_video(
    path: Path,
    writer: DatasetWriter,
    *,
    fps: float,
    sample_rate: int,
    hop: int,
    framing: str,
    size: tuple[int, int],
    channels: int,
    bar: Any,
) -> dict[str, Any]:
    """Append one video's ticks to ``writer``; returns the source's facts for the meta."""
    from liveframe.core.media import MediaReader, Scaler, on_brain_clock
    from liveframe.core.synth import hann

    length = 2 * hop if framing == "grain" else hop
    window = hann(2 * hop) if framing == "grain" else None
    audio = _AudioWindow(capacity=max(1 << 16, 8 * length))
    pending: deque[tuple[int, npt.NDArray[np.uint8]]] = deque()
    target = np.zeros(length, np.float32)
    stats = {"video_frames": 0, "audio_samples": 0}

    with MediaReader(path, need_video=True, need_audio=True, threads=True) as reader:
        origin = _origin(reader)
        first_audio: list[float] = []

        convert = Scaler(size, channels)

        def video_frames() -> Iterator[_LazyFrame]:
            # audio is pushed into the window as a side effect, in file order
            for kind, t, item in reader.demux(resample=sample_rate):
                if kind == "video":
                    stats["video_frames"] += 1
                    yield _LazyFrame(t - origin, item, convert)
                else:
                    if not first_audio:
                        first_audio.append(t)
                        base = round((t - origin) * sample_rate)
                        audio.push(base, item)
                    else:
                        audio.push(audio.end, item)
                    stats["audio_samples"] += item.size

        def flush(done: bool) -> None:
            while pending:
                k, px = pending[0]
                lo, hi = target_span(k, hop=hop, framing=framing)
                if not done and not (audio.started and audio.end >= hi):
                    break
                audio.take(lo, hi, target)
                if window is not None:
                    np.multiply(target, window, out=target)
                writer.append(px, target)
                pending.popleft()
                bar.update(1)
            nxt = pending[0][0] if pending else None
            if nxt is not None:
                audio.keep_from = target_span(nxt, hop=hop, framing=framing)[0]

        last_k = -1
        for k, vf in on_brain_clock(video_frames(), fps=fps):
            pending.append((k, vf.pixels))
            last_k = k
            audio.keep_from = target_span(pending[0][0], hop=hop, framing=framing)[0]
            flush(False)
        if stats["video_frames"] == 0:
            raise MediaError(f"{path}: no video frame could be decoded (corrupt file?)")
        if stats["audio_samples"] == 0:
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
        "video_frames": stats["video_frames"],
        "last_tick": last_k,
    }


def build_dataset(
    videos: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    fps: float = C.FPS,
    sample_rate: int = C.SAMPLE_RATE,
    framing: str = "grain",
    channels: int = 1,
    size: tuple[int, int] = (C.FRAME_SIZE, C.FRAME_SIZE),
    calibrate_silence: float = 0.0,
    progress: bool = True,
) -> Path:
    """Turn videos with soundtracks into one dataset on the brain clock.

    Each video is decoded in a single demux pass (FFmpeg threads, pictures scaled by
    swscale). Tick ``k`` (time ``k / fps`` after the source's origin, its container start
    time) gets the newest frame whose timestamp is <= ``k / fps`` (:func:`on_brain_clock`)
    and the audio around that time, placed by its own timestamps, downmixed to mono and
    resampled to ``sample_rate``: ``grain`` framing ``x[kH - H : kH + H] * hann(2H)``,
    ``block`` framing ``x[kH : kH + H]``, with ``H = sample_rate / fps`` and zeros outside
    the soundtrack. Memory stays bounded: only the audio still needed by ticks waiting for
    it is kept, and never a decoded picture beyond the current one.

    Parameters
    ----------
    videos : sequence of path-like
        Concatenated in order; each is a source with its boundary recorded.
    out : path-like
        The dataset (``.npz``), written atomically: on any error nothing is left.
    fps : float
        Brain clock in ticks per second; ``sample_rate / fps`` must be whole.
    sample_rate : int
        Brain audio rate in Hz.
    framing : {"grain", "block"}
    channels : 1 or 3
        Grey or RGB frames.
    size : (width, height)
    calibrate_silence : float
        Seconds of calibration appended: half black frames, half white, with all-zero
        targets, as two sources of kind ``calibration``.
    progress : bool
        Draw a progress bar on stderr.

    Returns
    -------
    Path of the written dataset.

    Raises
    ------
    MediaError
        A missing, empty, unreadable or corrupt video, or one without an audio track
        (every input is opened before any is decoded).
    DatasetError
        An output folder that does not exist or is not writable.
    UsageError
        Bad settings.
    """
    from liveframe.util.progress import Progress

    hop = _check_settings(fps, sample_rate, framing, channels, calibrate_silence)
    if not videos:
        raise UsageError("give at least one video")
    paths = [Path(v) for v in videos]
    out = Path(out)
    if out.is_dir():
        raise DatasetError(f"{out}: is a folder; give a file name for the dataset, e.g. data.npz")
    for p in paths:
        if p.exists() and out.exists() and os.path.samefile(p, out):
            raise UsageError(f"{out}: the output would overwrite an input video")
    facts = _open_all(paths)
    length = 2 * hop if framing == "grain" else hop
    w, h = size
    fps_out: float | int = int(fps) if float(fps).is_integer() else float(fps)
    meta = {
        "sample_rate": int(sample_rate), "fps": fps_out, "hop": hop, "length": length,
        "framing": framing, "channels": channels, "width": w, "height": h,
        "created": _time.strftime("%Y-%m-%dT%H:%M:%S%z"), "sources": [],
    }
    calib = round(calibrate_silence * fps)
    total = sum(round(d * fps) for d, _ in facts if d) + calib
    writer = DatasetWriter(out, frame_shape=(channels, h, w), target_length=length, meta=meta)
    bar = Progress(total or None, "pickle", unit="ticks", enabled=progress)
    try:
        for p in paths:
            t0 = _time.monotonic()
            info = _pickle_video(p, writer, fps=fps, sample_rate=int(sample_rate), hop=hop,
                                 framing=framing, size=size, channels=channels, bar=bar)
            writer.end_source(**info)
            log.debug("%s: %d ticks in %.1f s", p, writer.meta["sources"][-1]["ticks"],
                      _time.monotonic() - t0)
        if calib:
            zeros = np.zeros(length, np.float32)
            half = calib - calib // 2
            for colour, n, value in (("black", half, 0), ("white", calib // 2, 255)):
                if n == 0:
                    continue
                frame = np.full((channels, h, w), value, np.uint8)
                for _ in range(n):
                    writer.append(frame, zeros)
                bar.update(n)
                writer.end_source(kind="calibration", path=colour, seconds=n / fps)
        bar.close()
        return writer.close()
    except BaseException:
        bar.close()
        writer.abort()
        raise


# -- the `liveframe pickle` command -------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", metavar="VIDEO",
                        help="videos with a soundtrack, concatenated in order")
    parser.add_argument("-o", "--output", required=True, metavar="DATASET",
                        help="dataset file to write (.npz), written atomically")
    parser.add_argument("--fps", type=float, default=C.FPS,
                        help=f"brain clock in ticks per second (default {C.FPS})")
    parser.add_argument("--sample-rate", type=int, default=C.SAMPLE_RATE,
                        help=f"brain audio rate in Hz (default {C.SAMPLE_RATE})")
    parser.add_argument("--framing", choices=C.FRAMINGS, default="grain",
                        help="grain: 2H Hann-windowed samples centred on the tick (default); "
                        "block: H samples from the tick (the 2015 framing)")
    parser.add_argument("--colour", "--color", action="store_true",
                        help="store RGB frames (3 channels) instead of grey")
    parser.add_argument("--calibrate-silence", type=float, default=0.0, metavar="SECONDS",
                        help="append SECONDS of black and white frames (half each) with "
                        "silent targets, so dark and blank screens stay quiet")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    t0 = _time.monotonic()
    path = build_dataset(
        args.videos, args.output, fps=args.fps, sample_rate=args.sample_rate,
        framing=args.framing, channels=3 if args.colour else 1,
        calibrate_silence=args.calibrate_silence, progress=not args.quiet,
    )
    if not args.quiet:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
        ticks = sum(s["ticks"] for s in meta["sources"])
        log.info("wrote %s: %d ticks from %d source(s) in %.1f s", path, ticks,
                 len(meta["sources"]), _time.monotonic() - t0)
    return 0

