"""Offline render: the live pipeline fed from a file, without a real-time clock.

A video is decoded with :class:`~liveframe.core.media.MediaReader`, put on the brain clock with
:func:`~liveframe.core.media.on_brain_clock` (any input frame rate), run through the brain in
batches, and synthesised by the very objects live play uses (:func:`liveframe.core.synth.make_synth`),
then guarded by :class:`~liveframe.core.synth.SafetyChain` and written:

- ``.wav`` (16-bit PCM) or ``.flac`` (16-bit) at the brain rate: the soundtrack alone;
- ``.mkv`` (FLAC at the brain rate), ``.mp4`` (AAC at 48 kHz) or ``.webm`` (Opus at 48 kHz):
  the ORIGINAL video packets copied (never re-encoded) with the rendered soundtrack.

Modes: ``raw`` (2015 concatenation), ``ola`` (default), ``granular`` (the 2015 granular
scheme in numpy), ``csound`` (the same grains as a Csound score, rendered by the real
``csound`` with ``patches/liveframe-render.csd``).

Time: tick k is at k/fps; sample 0 of the output is time 0 of the video; the output lasts
the video's duration (last frame time plus one frame), to the sample. Nothing is
half-written: every output goes to a temporary name beside it and is renamed at the end.

Cost: the input is opened and demuxed once, for the checks, the decoding and (at the brain
rate) the copy of its video packets. While a producer thread decodes (FFmpeg's slice
threads: :data:`DECODER_THREADS`), the caller's thread runs the brain and the synth and,
at the brain rate, guards, encodes and muxes each stretch of the soundtrack as soon as no
later frame can change it (:meth:`SafetyChain.process_blocks` does its work many blocks
per numpy call), so little is left to do when the last frame is decoded; the file is byte
for byte what writing the finished signal gives.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.core.brain import Brain, resolve_brain_path
from liveframe.core.media import (
    PTS_TOLERANCE,
    MediaReader,
    Scaler,
    VideoFrame,
    on_brain_clock,
    with_context,
)
from liveframe.core.safety import BlockGuard
from liveframe.core.synth import GranularSynth, make_synth
from liveframe.errors import LiveframeError, MediaError, ToolMissingError, UsageError
from liveframe.util.progress import Progress

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]

RENDER_MODES = (*C.MODES, "csound")
AUDIO_SUFFIXES = (".wav", ".flac")
VIDEO_SUFFIXES = (".mkv", ".mp4", ".webm")
CSOUND_PATCH = C.PATCHES_DIR / "liveframe-render.csd"

# container suffix -> (format, audio codec, sample rate or None for the brain's rate)
CONTAINERS: dict[str, tuple[str, str, int | None]] = {
    ".wav": ("wav", "pcm_s16le", None),
    ".flac": ("flac", "flac", None),
    ".mkv": ("matroska", "flac", None),
    ".mp4": ("mp4", "aac", 48000),
    ".webm": ("webm", "libopus", 48000),
}
WEBM_VIDEO = ("vp8", "vp9", "av1")


# -- inference on the brain clock -------------------------------------------------------


DECODER_THREADS = False
"""FFmpeg threading of a decode that feeds a brain (``MediaReader(threads=...)``): FFmpeg's
default, slice threads, not frame threads.

A render is two busy threads, the decoder's and the brain's (which also synthesises and
writes). Frame threads (``thread_type`` AUTO: a picture in flight per core, plus one) leave
no core for the brain, and on two cores the render was slower than decode-only by a third;
slice threads finish each picture before the next, so decoding and the brain take turns
on the cores. Measured side by side against frame-threaded decode-only (the benchmark's
baseline then; BENCHMARKS.md now takes the faster decoder): 60 s 640x360, 0.80 of
decode-only against 0.78 with frame threads and 0.69 with one decoding thread; 10 s
1280x720, 1.06 against 0.90 and 0.65. The pictures are the same with any threading.
"""


BATCH = 256
"""Ticks per inference call in a render (the blocks are the same with any batch). Against 64,
measured interleaved (5 rounds, ratio of medians to frame-threaded decode-only): 60 s 640x360,
render_signal 0.86 against 0.75 and .mkv 0.77 against 0.66; 10 s 1280x720 the same or
better. Fewer, larger hand-overs between the decoding thread and the brain's."""


class BlockStream:
    """The brain's blocks for a video, one per tick, in batches.

    Iterating yields float32 arrays ``(n, spec.length)`` (n <= ``batch``); afterwards
    :attr:`ticks` and :attr:`end_time` (seconds: last frame's time plus its duration, the
    same rule :func:`~liveframe.core.media.on_brain_clock` uses) are set. A brain with
    ``context`` frames sees the previous ticks' frames first and the current one last
    (the first frame repeated before the start).

    Decoding (PyAV/FFmpeg threaded as :data:`DECODER_THREADS` says, swscale, the clock)
    runs in a producer thread that hands the frame of each tick, a batch at a time, through
    a bounded queue to the caller's thread, which stacks them with their context and runs
    the brain (and, downstream, the synth): both release the GIL for their heavy work, so
    inference and synthesis overlap decoding instead of adding to it. The blocks are the
    same, sample for sample, as with ``threaded=False``.

    Parameters
    ----------
    video : path-like
    brain : Brain
    batch : int
        Frames per inference call (does not change the blocks).
    progress : Progress, optional
        Updated once per batch with its ticks.
    threaded : bool
        Decode in a producer thread (default) or inline.
    prefetch : int
        Ticks the producer may run ahead.
    reader : MediaReader, optional
        ``video`` already opened (e.g. to check it before any work): the first pass decodes
        from it (with its own ``threads``) instead of opening the file again, and closes it.
    packets : PacketFeed, optional
        Receives the video packets the decoder demuxes, on the caller's thread (each
        chunk's packets before the blocks of its ticks), and is marked done after the last
        batch: a muxer copies them instead of reading the file a second time.
    """

    def __init__(
        self,
        video: str | os.PathLike[str],
        brain: Brain,
        *,
        batch: int = BATCH,
        progress: Progress | None = None,
        threaded: bool = True,
        prefetch: int = 256,
        reader: MediaReader | None = None,
        packets: PacketFeed | None = None,
    ) -> None:
        if batch <= 0:
            raise ValueError(f"batch={batch} must be a positive integer")
        if prefetch <= 0:
            raise ValueError(f"prefetch={prefetch} must be a positive integer")
        self.video = Path(video)
        self.brain = brain
        self.batch = batch
        self.progress = progress
        self.threaded = threaded
        self.prefetch = prefetch
        self.ticks = 0
        self.end_time = 0.0
        self._first: list[float] = []
        self._last: float | None = None
        self.frame_rate: float | None = None
        self.duration_hint: float | None = None
        self._reader = reader
        self.packets = packets

    @property
    def known_end(self) -> float:
        """While iterating, seconds the video lasts at least: the newest frame time decoded.

        It only grows, and :attr:`end_time` ends up strictly beyond it, so samples before
        ``known_end * sample_rate`` are inside the render whatever is still to come.
        """
        last = self._last
        return 0.0 if last is None else last

    def _frames(
        self, reader: MediaReader, on_packet: Callable[[Any], None] | None
    ) -> Iterator[VideoFrame]:
        """The decoded frames in file order, scaled as soon as decoded."""
        spec = self.brain.spec
        scale = Scaler((spec.width, spec.height), spec.channels)
        first = self._first
        for _, t, frame in reader.demux(audio=False, on_packet=on_packet):
            if self._last is None or t >= self._last:
                if len(first) < 65:
                    first.append(t)
                self._last = t
            yield VideoFrame(t, scale(frame))

    def _tick_chunks(
        self, reader: MediaReader, chunk: int
    ) -> Iterator[tuple[list[VideoFrame], list[Any]]]:
        """Each tick's frame, ``chunk`` ticks at a time, with the video packets demuxed
        since the previous chunk (with :attr:`packets`).

        The last chunk may have no ticks (packets demuxed after the last tick's frame)."""
        spec = self.brain.spec
        pending: list[Any] = []

        def take() -> list[Any]:
            out = pending[:]
            pending.clear()
            return out

        with reader:
            self.frame_rate = reader.frame_rate
            self.duration_hint = reader.duration
            self._first = []
            self._last = None
            frames = self._frames(reader, pending.append if self.packets is not None else None)
            ticks: list[VideoFrame] = []
            k = -1
            for k, vf in on_brain_clock(frames, fps=spec.fps):  # noqa: B007
                ticks.append(vf)
                if len(ticks) == chunk:
                    yield ticks, take()
                    ticks = []
            if ticks or pending:
                yield ticks, take()
            if k < 0:
                raise MediaError(f"{self.video}: no decodable video frames")
            self.ticks = k + 1
            # on_brain_clock's rule: the last frame lasts the median spacing of the first 64
            spacing = [b - a for a, b in zip(self._first[:-1], self._first[1:]) if b > a]
            d = float(np.median(spacing)) if spacing else 1 / spec.fps
            self.end_time = (self._last if self._last is not None else 0.0) + d

    def _prefetched(self, reader: MediaReader) -> Iterator[tuple[list[VideoFrame], list[Any]]]:
        """:meth:`_tick_chunks` run ahead in a producer thread, through a bounded queue."""
        chunk = min(self.batch, self.prefetch)
        q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(1, self.prefetch // chunk))
        stop = threading.Event()

        def put(item: tuple[str, Any]) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            end: tuple[str, Any] = ("done", None)
            chunks = self._tick_chunks(reader, chunk)
            try:
                for item in chunks:
                    if not put(("chunk", item)):
                        return
            except Exception as e:  # noqa: BLE001 - any error is handed to the consumer
                end = ("error", e)
            finally:
                chunks.close()  # closes the reader, on this thread
                put(end)

        worker = threading.Thread(target=produce, name="liveframe-decode", daemon=True)
        worker.start()
        try:
            while True:
                kind, item = q.get()
                if kind == "chunk":
                    yield item
                elif kind == "error":
                    raise item
                else:
                    return
        finally:
            stop.set()
            worker.join()

    def _pixel_batches(self) -> Iterator[npt.NDArray[np.uint8]]:
        """The ticks' pixels with their context, ``(n, C, H, W)`` uint8 batches (a fresh
        array each), made on the caller's thread; packets go to :attr:`packets`."""
        spec = self.brain.spec
        reader, self._reader = self._reader, None  # a reader given is good for one pass
        if reader is None:
            reader = MediaReader(self.video, threads=DECODER_THREADS)
        if self.threaded:
            chunks = self._prefetched(reader)
        else:
            chunks = self._tick_chunks(reader, self.batch)
        feed = self.packets
        ctx = spec.context
        shape = (self.batch, spec.in_channels, spec.height, spec.width)
        buf = np.empty(shape, np.uint8)
        hist: list[npt.NDArray[np.uint8]] = []
        n = 0
        with contextlib.closing(chunks):  # stops the decoder
            for ticks, packets in chunks:
                if feed is not None:
                    feed.put(packets)
                for vf in ticks:
                    with_context(vf.pixels, hist, ctx, out=buf[n])
                    n += 1
                    if n == self.batch:
                        yield buf
                        buf = np.empty(shape, np.uint8)
                        n = 0
        if n:
            yield buf[:n]
        if feed is not None:
            feed.done = True

    def __iter__(self) -> Iterator[F32]:
        with contextlib.closing(self._pixel_batches()) as batches:
            for px in batches:
                yield self.brain.run(px)
                if self.progress is not None:
                    self.progress.update(px.shape[0])


class PacketFeed:
    """Video packets in demux order, from a decoder to a muxer on the same thread.

    :class:`BlockStream` puts the packets it demuxed before each batch's blocks and sets
    :attr:`done` after the last; :func:`write_muxed` pulls them from a file it opened.

    Parameters
    ----------
    source : iterable of av.Packet, optional
        Pulled from when nothing was put: packets read on demand.
    """

    def __init__(self, source: Iterable[Any] | None = None) -> None:
        self.queue: deque[Any] = deque()
        self._source = iter(source) if source is not None else None
        self.done = False

    def put(self, packets: Iterable[Any]) -> None:
        self.queue.extend(packets)

    def get(self) -> Any:
        """The next packet, or None: none demuxed yet, or (once :attr:`done`) none left."""
        if self.queue:
            return self.queue.popleft()
        if self._source is not None and not self.done:
            packet = next(self._source, None)
            if packet is None:
                self.done = True
            return packet
        return None


def constant_blocks(block: F32, ticks: int, *, batch: int = 256) -> Iterator[F32]:
    """The same block for ``ticks`` ticks, in batches (e.g. a brain's answer to black)."""
    full = np.broadcast_to(block, (batch, block.shape[-1]))
    for i in range(0, ticks, batch):
        yield np.ascontiguousarray(full[: min(batch, ticks - i)])


# -- synthesis ----------------------------------------------------------------------------


def synthesize(
    batches: Iterable[F32],
    *,
    mode: str = "ola",
    hop: int = C.HOP,
    framing: str = "grain",
    seed: int = 0,
    density: float = 1.0,
    spread: float = 1.0,
    n_out: int | None = None,
    trim: bool = True,
) -> F32:
    """Blocks through the live synth objects into one signal at the brain rate.

    Parameters
    ----------
    batches : iterable of ndarray, shape (n, length)
        The brain's blocks, one per tick, in tick order.
    mode : {"ola", "raw", "granular"}
    n_out : int, optional
        Cut or zero-pad the result to this many samples (after trimming).
    trim : bool
        Drop the synth's ``latency`` samples from the start, so sample 0 is tick 0's time.

    Returns
    -------
    ndarray, shape (n_out,) or (ticks * hop + flush - latency,), float32
        Before any safety processing: exactly what the synth produced.
    """
    ss = SynthStream(
        mode, hop=hop, framing=framing, seed=seed, density=density, spread=spread, trim=trim
    )
    chunks = [ss.process(blocks) for blocks in batches]
    chunks.append(ss.flush())
    return _fit(np.concatenate(chunks), n_out)


class SynthStream:
    """:func:`synthesize` a batch at a time: each call returns the samples it adds.

    The concatenation of every :meth:`process` result and then :meth:`flush` is exactly
    what :func:`synthesize` returns (before ``n_out``), so a render can guard and write
    the signal while the video is still decoding.

    Parameters
    ----------
    mode, hop, framing, seed, density, spread, trim :
        As for :func:`synthesize`.
    """

    def __init__(
        self,
        mode: str = "ola",
        *,
        hop: int = C.HOP,
        framing: str = "grain",
        seed: int = 0,
        density: float = 1.0,
        spread: float = 1.0,
        trim: bool = True,
    ) -> None:
        self.synth = make_synth(
            mode, hop=hop, framing=framing, seed=seed, density=density, spread=spread
        )
        self.hop = hop
        self._skip = self.synth.latency if trim else 0

    def _trimmed(self, x: F32) -> F32:
        if self._skip:
            k = min(self._skip, x.shape[0])
            self._skip -= k
            return x[k:]
        return x

    def process(self, blocks: F32) -> F32:
        """The samples of ``blocks`` (n, length): ``n * hop`` less any latency still owed."""
        hop = self.hop
        out = np.empty(blocks.shape[0] * hop, np.float32)
        for i in range(blocks.shape[0]):
            self.synth.process(blocks[i], out=out[i * hop : (i + 1) * hop])
        return self._trimmed(out)

    def flush(self) -> F32:
        """What the synth still holds after the last tick."""
        return self._trimmed(np.asarray(self.synth.flush(), np.float32))


def _fit(sig: F32, n_out: int | None) -> F32:
    if n_out is None:
        return sig
    if sig.shape[0] >= n_out:
        return sig[:n_out]
    return np.concatenate([sig, np.zeros(n_out - sig.shape[0], np.float32)])


def synthesize_csound(
    batches: Iterable[F32],
    *,
    hop: int = C.HOP,
    framing: str = "grain",
    sample_rate: int = C.SAMPLE_RATE,
    seed: int = 0,
    density: float = 1.0,
    spread: float = 1.0,
    n_out: int | None = None,
    workdir: str | os.PathLike[str] | None = None,
    patch: str | os.PathLike[str] = CSOUND_PATCH,
) -> F32:
    """The granular grains as a Csound score, rendered by the real ``csound``.

    The blocks go, one after another, into a float WAV that the instrument reads as a
    GEN01 table; the score has one note per grain, placed and scaled exactly as
    :class:`~liveframe.core.synth.GranularSynth` places them (same seed, same grains). The
    instrument (``patches/liveframe-render.csd``) gives each grain a Hann envelope
    (except a grain brain's parent, already windowed).

    Returns
    -------
    ndarray, shape (n_out,), float32
        Trimmed like :func:`synthesize` (sample 0 is tick 0's time).
    """
    exe = shutil.which("csound")
    if exe is None:
        raise ToolMissingError(
            "csound is not installed; install it with `sudo apt-get install csound`"
        )
    patch = Path(patch)
    if not patch.exists():
        raise ToolMissingError(f"{patch}: the Csound render instrument is missing")
    gs = GranularSynth(hop=hop, framing=framing, seed=seed, density=density, spread=spread)
    L = gs.length
    with tempfile.TemporaryDirectory(prefix="liveframe-csound-", dir=workdir) as tmp:
        tmpd = Path(tmp)
        table = tmpd / "blocks.wav"
        score = tmpd / "grains.sco"
        out_wav = tmpd / "out.wav"
        k = 0
        last_end = 0
        with _FloatWavWriter(table, sample_rate) as tw, open(score, "w") as sco:
            sco.write(
                f"; liveframe granular score: seed {seed}, density {density}, "
                f"spread {spread}, hop {hop}, block {L}\n"
            )
            sco.write("; p4 gain  p5 table offset (samples)  p6 envelope (1 hann, 0 none)\n")
            for blocks in batches:
                tw.write(blocks.reshape(-1))
                for _ in range(blocks.shape[0]):
                    grains = gs.grains()
                    for p in gs.placements(grains):
                        # the untrimmed timeline (always >= 0); the latency is cut after
                        start = k * hop + p.start
                        dur, off = p.duration, k * L + p.offset
                        if dur <= 0 or p.gain == 0:
                            continue
                        last_end = max(last_end, start + dur)
                        sco.write(
                            f"i1 {start / sample_rate:.9f} {dur / sample_rate:.9f} "
                            f"{p.gain:.9g} {off} {int(p.envelope)}\n"
                        )
                    k += 1
            total = (n_out if n_out is not None else last_end - gs.latency) + gs.latency
            sco.write(f"f0 {total / sample_rate + 0.01:.6f}\ne\n")
        if k == 0:
            return np.zeros(n_out or 0, np.float32)
        cmd = [
            exe,
            "-d",
            "-m0",
            "--nodisplays",
            "-f",
            "-W",
            f"--sample-rate={sample_rate}",
            f"--omacro:TABLE={table}",
            "-o",
            str(out_wav),
            str(patch),
        ]
        r = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=tmp)
        if r.returncode != 0 or not out_wav.exists():
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise LiveframeError(f"csound failed on {patch.name}: {' | '.join(tail)}")
        sig = read_audio_file(out_wav)[1][gs.latency :]
    return _fit(sig, n_out if n_out is not None else total - gs.latency)


class _FloatWavWriter:
    """A mono 32-bit float WAV written incrementally (for Csound's GEN01)."""

    def __init__(self, path: Path, sr: int) -> None:
        self.path, self.sr, self.n = path, sr, 0
        self.f: Any = None

    def write(self, x: F32) -> None:
        self.f.write(np.asarray(x, "<f4").tobytes())
        self.n += x.shape[0]

    def __enter__(self) -> Self:
        self.f = self.path.open("wb")  # closed by __exit__
        self.f.write(b"\0" * 58)
        return self

    def __exit__(self, *exc: object) -> None:
        import struct

        data = self.n * 4
        self.f.seek(0)
        self.f.write(b"RIFF" + struct.pack("<I", 50 + data) + b"WAVE")
        self.f.write(b"fmt " + struct.pack("<IHHIIHHH", 18, 3, 1, self.sr, self.sr * 4, 4, 32, 0))
        self.f.write(b"fact" + struct.pack("<II", 4, self.n))
        self.f.write(b"data" + struct.pack("<I", data))
        self.f.close()


def read_audio_file(
    path: str | os.PathLike[str], *, sample_rate: int | None = None
) -> tuple[int, F32]:
    """A whole audio file, mono float32: (sample rate, samples)."""
    import av

    with av.open(str(path)) as c:
        if not c.streams.audio:
            raise MediaError(f"{path}: has no audio stream")
        st = c.streams.audio[0]
        rate = sample_rate or st.codec_context.sample_rate
        rs = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts = []
        for frame in c.decode(st):
            for f in rs.resample(frame):
                parts.append(f.to_ndarray().reshape(-1))
        for f in rs.resample(None):
            parts.append(f.to_ndarray().reshape(-1))
    return rate, (np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32))


# -- the whole render -------------------------------------------------------------------


def _load_brain(brain: Brain | str | os.PathLike[str] | None) -> Brain:
    if isinstance(brain, Brain):
        return brain
    return Brain.load(resolve_brain_path(brain))


def _check_mode(mode: str) -> None:
    if mode not in RENDER_MODES:
        raise UsageError(f"mode={mode!r} must be one of {', '.join(RENDER_MODES)}")


def render_signal(
    video: str | os.PathLike[str],
    brain: Brain | str | os.PathLike[str] | None,
    *,
    mode: str = "ola",
    seed: int = 0,
    density: float = 1.0,
    spread: float = 1.0,
    batch: int = BATCH,
    progress: Progress | None = None,
    trim: bool = True,
) -> F32:
    """Render a video through a brain: the signal at the brain rate, before SafetyChain.

    Parameters
    ----------
    video : path-like
    brain : Brain, path or name (None: the default brain)
    mode : {"ola", "raw", "granular", "csound"}
    seed, density, spread :
        Granular parameters (``granular`` and ``csound``).
    batch : int
        Frames per inference call (does not change the result).
    trim : bool
        True (default): drop the synth latency and cut/pad to the video's duration, so
        sample ``n`` is time ``n / sample_rate``. False: every sample the synth emitted,
        tick 0 first, latency included (what a live producer emits), then its flush.

    Returns
    -------
    ndarray, shape (round(duration * sample_rate),), float32
        At ``brain.spec.sample_rate``; exactly what the synth objects produce (no NaN
        guard, DC blocker or limiter yet).
    """
    _check_mode(mode)
    b = _load_brain(brain)
    spec = b.spec
    stream = BlockStream(video, b, batch=batch, progress=progress)
    if mode == "csound":
        if not trim:
            raise ValueError("csound mode renders trimmed signals only")
        sig = synthesize_csound(
            stream,
            hop=spec.hop,
            framing=spec.framing,
            sample_rate=spec.sample_rate,
            seed=seed,
            density=density,
            spread=spread,
            n_out=None,
        )
    else:
        sig = synthesize(
            stream,
            mode=mode,
            hop=spec.hop,
            framing=spec.framing,
            seed=seed,
            density=density,
            spread=spread,
            trim=trim,
        )
    if not trim:
        return sig
    return _fit(sig, duration_samples(stream.end_time, spec.sample_rate))


def duration_samples(seconds: float, sr: int) -> int:
    """Samples in ``seconds`` (rounded; container timestamps carry about 1 ms of jitter)."""
    return round(float(max(seconds, 0.0)) * sr)


def _resample(x: F32, sr_in: int, sr_out: int) -> F32:
    if sr_in == sr_out:
        return x
    import soxr

    return np.asarray(soxr.resample(x, sr_in, sr_out, quality="HQ"), dtype=np.float32)


def _check_output(out: Path) -> tuple[str, str, int | None]:
    suffix = out.suffix.lower()
    if suffix not in CONTAINERS:
        raise UsageError(
            f"{out}: unknown output type {suffix or '(none)'}; use "
            f"{', '.join(AUDIO_SUFFIXES + VIDEO_SUFFIXES)}"
        )
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise MediaError(f"{out}: is a directory; give an output file name")
    if not parent.is_dir():
        raise MediaError(f"{out}: cannot write, folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise MediaError(f"{out}: cannot write there (permission denied)")
    return CONTAINERS[suffix]


def _open_input(video: Path, out: Path) -> tuple[MediaReader, tuple[str, str, int | None]]:
    """Refuse, before any work, what cannot be rendered; open ``video`` once for the render.

    Returns
    -------
    (MediaReader, (format, audio codec, rate or None))
        The caller closes the reader (or hands it to :class:`BlockStream`, which does).
    """
    container = _check_output(out)
    if out.resolve() == video.resolve():
        raise UsageError(f"{out}: would overwrite the input video; choose another name")
    reader = MediaReader(video, threads=DECODER_THREADS)
    vcodec = reader.video.codec_context.name if reader.video is not None else None
    if container[0] == "webm" and vcodec not in WEBM_VIDEO:
        reader.close()
        raise MediaError(
            f"{out}: WebM holds VP8/VP9/AV1 video, {video} is {vcodec}; "
            "write .mkv (or .mp4) to copy it"
        )
    return reader, container


def _tmp_name(out: Path) -> Path:
    return out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix}")


AUDIO_CHUNK = 4096
"""Samples per audio frame handed to the encoder (the last one may be shorter)."""


def _audio_frame(block: F32, fmt: str, sr: int, pts: int) -> Any:
    import av

    if fmt.startswith("s16"):
        arr = np.round(np.clip(block, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
    elif fmt.startswith("s32"):
        arr = np.round(np.clip(block, -1, 1) * (2**31 - 1)).astype(np.int32).reshape(1, -1)
    else:
        arr = np.ascontiguousarray(block, np.float32).reshape(1, -1)
    af = av.AudioFrame.from_ndarray(arr, format=fmt, layout="mono")
    af.sample_rate = sr
    af.pts = pts
    af.time_base = Fraction(1, sr)
    return af


def _audio_frames(x: F32, codec_ctx: Any, sr: int, chunk: int = AUDIO_CHUNK) -> Iterator[Any]:
    fmt = codec_ctx.format.name
    for i in range(0, x.shape[0], chunk):
        yield _audio_frame(x[i : i + chunk], fmt, sr, i)


def _add_audio_stream(container: Any, codec: str, sr: int) -> Any:
    st = container.add_stream(codec, rate=sr, layout="mono")
    if codec == "flac" or codec.startswith("pcm_s16"):
        st.codec_context.format = "s16"
    elif codec == "libopus":
        st.codec_context.format = "flt"
        st.bit_rate = 96000
    elif codec == "aac":
        st.bit_rate = 128000
    st.time_base = Fraction(1, sr)
    return st


def write_audio(path: Path, x: F32, *, sr: int, fmt: str, codec: str) -> None:
    """Write mono ``x`` to ``path`` (the caller renames it into place)."""
    sink = _AudioSink(path, sr=sr, fmt=fmt, codec=codec)
    try:
        sink.add(x)
        sink.finish()
    finally:
        sink.close()


def write_muxed(path: Path, video: Path, x: F32, *, sr: int, fmt: str, codec: str) -> None:
    """Copy ``video``'s video packets (no re-encode) and add ``x`` as its soundtrack.

    Audio is encoded just ahead of the video packets' timestamps, so the file is
    interleaved as a player expects.
    """
    sink = _MuxSink.reading(path, video, sr=sr, fmt=fmt, codec=codec)
    try:
        sink.add(x)
        sink.finish()
    finally:
        sink.close()


class _FrameQueue:
    """Samples waiting to be cut into :data:`AUDIO_CHUNK` frames for one audio stream.

    Frames are cut at the same places, with the same timestamps, however the samples
    arrive: the file does not depend on how the render was paced.
    """

    def __init__(self, stream: Any, sr: int) -> None:
        self.fmt = stream.codec_context.format.name
        self.sr = sr
        self.buf = np.zeros(0, np.float32)
        self.pts = 0
        self.final = False

    def add(self, x: F32) -> None:
        self.buf = np.concatenate([self.buf, x]) if self.buf.shape[0] else x

    @property
    def exhausted(self) -> bool:
        """No frame will ever come again."""
        return self.final and not self.buf.shape[0]

    def next_frame(self) -> Any:
        """The next frame, or None when it is not complete yet (or, once final, none left)."""
        n = self.buf.shape[0]
        if n < AUDIO_CHUNK and not (self.final and n):
            return None
        k = min(n, AUDIO_CHUNK)
        af = _audio_frame(self.buf[:k], self.fmt, self.sr, self.pts)
        self.buf = self.buf[k:]
        self.pts += k
        return af


class _AudioSink:
    """An audio-only container written as the signal arrives (``.wav``, ``.flac``)."""

    def __init__(self, path: Path, *, sr: int, fmt: str, codec: str) -> None:
        import av

        self.out = av.open(str(path), "w", format=fmt)
        try:
            self.ast = _add_audio_stream(self.out, codec, sr)
        except BaseException:
            self.close()
            raise
        self.frames = _FrameQueue(self.ast, sr)

    def _encode(self, af: Any) -> None:
        for pkt in self.ast.encode(af):
            self.out.mux(pkt)

    def add(self, x: F32) -> None:
        self.frames.add(x)
        while (af := self.frames.next_frame()) is not None:
            self._encode(af)

    def finish(self) -> None:
        """The signal is complete: encode the rest and write the trailer."""
        self.frames.final = True
        self.add(np.zeros(0, np.float32))
        self._encode(None)
        self.out.close()

    def close(self) -> None:
        try:
            self.out.close()
        except Exception:  # closing after a failure must never mask the real error
            pass


class _MuxSink(_AudioSink):
    """Video packets copied, with the signal encoded just ahead of them as it arrives.

    Before each video packet, audio frames are encoded until the audio reaches
    ``LEAD`` seconds past the packet's time; a packet whose audio is not rendered yet
    waits, and so does the muxer while the feed has no packet yet. The mux order, and so
    the file, is the same however the signal and the packets arrive.

    Parameters
    ----------
    path : Path
    template : av.VideoStream
        The input's video stream, copied (codec parameters, time base) into the output;
        read only here, so the caller may go on decoding its container.
    packets : PacketFeed
        That stream's packets, in demux order.
    sr, fmt, codec :
        The soundtrack's rate, the container format and the audio codec.
    """

    LEAD = 0.5

    def __init__(
        self,
        path: Path,
        template: Any,
        packets: PacketFeed,
        *,
        sr: int,
        fmt: str,
        codec: str,
        source: Any = None,
    ) -> None:
        import av

        self.sr = sr
        self.source = source  # an input container this sink reads and closes
        self.out = av.open(str(path), "w", format=fmt)
        try:
            self.vout = self.out.add_stream_from_template(template)
            self.ast = _add_audio_stream(self.out, codec, sr)
        except BaseException:
            self.close()
            raise
        tb = template.time_base
        # packet times as int ratios: the same floats as float(dts * time_base)
        self.tb = (tb.numerator, tb.denominator) if tb else None
        self.frames = _FrameQueue(self.ast, sr)
        self.packets = packets
        self.waiting: Any = None  # a video packet whose audio is not there yet
        self.video_done = False
        self.audio_t = 0.0

    def _audio_until(self, t: float | None) -> bool:
        """Encode audio to ``t + LEAD`` (to the end for None); False: wait for more signal."""
        while t is None or self.audio_t <= t + self.LEAD:
            af = self.frames.next_frame()
            if af is None:
                if not self.frames.exhausted:
                    return False
                self._encode(None)
                self.audio_t = float("inf")
                return True
            self._encode(af)
            self.audio_t = (af.pts + af.samples) / self.sr
        return True

    def add(self, x: F32) -> None:
        self.frames.add(x)
        tb = self.tb
        while not self.video_done:
            packet = self.waiting
            if packet is None:
                packet = self.packets.get()
                if packet is None:
                    if self.packets.done:
                        self.video_done = True
                        break
                    return  # the decoder has not demuxed the next packet yet
                if packet.dts is None:
                    continue
            t = packet.dts * tb[0] / tb[1] if tb else None
            if self.audio_t != float("inf") and t is not None and not self._audio_until(t):
                self.waiting = packet
                return
            self.waiting = None
            packet.stream = self.vout
            self.out.mux(packet)
        if self.frames.final and self.audio_t != float("inf"):
            self._audio_until(None)

    @classmethod
    def reading(cls, path: Path, video: Path, *, sr: int, fmt: str, codec: str) -> _MuxSink:
        """A muxer that reads ``video``'s packets itself, as it needs them (for a signal
        that is only complete at the end: no packet is held for it in memory)."""
        import av

        inp = av.open(str(video))
        try:
            vin = inp.streams.video[0]
            if fmt == "webm" and vin.codec_context.name not in WEBM_VIDEO:
                raise MediaError(
                    f"{video}: WebM holds VP8/VP9/AV1 video, not "
                    f"{vin.codec_context.name}; write .mkv (or .mp4) to copy it"
                )
            packets = PacketFeed(inp.demux(vin))
            return cls(path, vin, packets, sr=sr, fmt=fmt, codec=codec, source=inp)
        except BaseException:
            inp.close()
            raise

    def finish(self) -> None:
        self.frames.final = True
        self.add(np.zeros(0, np.float32))
        if not self.video_done:  # the caller finished before the decoder's last packet
            raise RuntimeError("muxer finished before the last video packet")
        self.out.close()

    def close(self) -> None:
        super().close()
        try:
            if self.source is not None:
                self.source.close()
        except Exception:  # closing after a failure must never mask the real error
            pass


class _ResampledSink:
    """The whole signal kept, resampled to ``rate`` at the end and written (MP4, WebM)."""

    def __init__(
        self, path: Path, video: Path, *, sr: int, rate: int, fmt: str, codec: str, muxed: bool
    ) -> None:
        self.path, self.video, self.sr, self.rate = path, video, sr, rate
        self.fmt, self.codec, self.muxed = fmt, codec, muxed
        self.parts: list[F32] = []

    def add(self, x: F32) -> None:
        self.parts.append(x)

    def finish(self) -> None:
        x = _resample(np.concatenate(self.parts), self.sr, self.rate)
        if self.muxed:
            write_muxed(self.path, self.video, x, sr=self.rate, fmt=self.fmt, codec=self.codec)
        else:
            write_audio(self.path, x, sr=self.rate, fmt=self.fmt, codec=self.codec)

    def close(self) -> None:
        pass


class _GuardedOutput:
    """:func:`guard` and write a signal that arrives in pieces, as each piece is final.

    Samples are guarded in ``block``-sample steps from sample 0 (the same steps as
    :func:`guard` on the whole signal) once the render is known to reach past them, so
    the file is sample for sample what guarding and writing the finished signal gives.

    Parameters
    ----------
    make_sink : callable
        Opens the sink (an ``_AudioSink``, ``_MuxSink`` or ``_ResampledSink``): at
        :meth:`open`, or else when the first samples are ready.
    out : Path
        The output named in errors.
    sr : int
    block : int
    """

    def __init__(
        self, make_sink: Callable[[], Any], out: Path, *, sr: int, block: int = C.HOP
    ) -> None:
        self.make_sink, self.out, self.block = make_sink, out, block
        self.sink: Any = None
        self.chain = BlockGuard(sr=sr, block=block)
        self.pending = np.zeros(0, np.float32)
        self.n = 0  # samples guarded and handed to the sink

    def add(self, x: F32, final_until: int) -> None:
        """Append ``x``; hand on whole blocks before sample ``final_until``."""
        if x.shape[0]:
            self.pending = np.concatenate([self.pending, x]) if self.pending.shape[0] else x
        k = min(self.pending.shape[0], final_until - self.n)
        k -= k % self.block
        if k > 0:
            self._emit(self.pending[:k])
            self.pending = self.pending[k:]

    def finish(self, tail: F32, n_out: int) -> None:
        """Append ``tail``, cut or zero-pad to ``n_out`` samples, write the rest and close."""
        if n_out < self.n:  # cannot happen: final_until never passes the end
            raise RuntimeError(f"render wrote {self.n} samples, beyond its end at {n_out}")
        self._emit(_fit(np.concatenate([self.pending, tail]), n_out - self.n))
        self.pending = np.zeros(0, np.float32)
        self.chain.log_counts()
        self._write("finish")

    def open(self) -> None:
        """Open the sink now (a muxer copies the input's video stream before decoding)."""
        self._write(None)

    def close(self) -> None:
        """Close the sink's files after a failure (the caller removes the output)."""
        if self.sink is not None:
            self.sink.close()

    def _emit(self, x: F32) -> None:
        self.chain.process(x)
        self.n += x.shape[0]
        self._write("add", x)

    def _write(self, method: str | None, *args: Any) -> None:
        try:
            if self.sink is None:
                self.sink = self.make_sink()
            if method is not None:
                getattr(self.sink, method)(*args)
        except LiveframeError:
            raise
        except (OSError, ValueError) as e:  # av.error.FFmpegError is an OSError/ValueError
            raise _write_error(self.out, e) from None


def _write_error(out: Path, e: Exception) -> MediaError:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return MediaError(f"{out}: cannot write ({msg})")


def render(
    video: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    brain: Brain | str | os.PathLike[str] | None = None,
    mode: str = "ola",
    seed: int = 0,
    density: float = 1.0,
    spread: float = 1.0,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> Path:
    """Render ``video`` through ``brain`` into ``out`` (audio file or muxed video).

    The signal from :func:`render_signal` goes through SafetyChain at the brain rate, is
    resampled to 48 kHz where the codec needs it (AAC in MP4, Opus in WebM) and written to
    a temporary name beside ``out``, renamed into place only when complete.

    The input is opened once (its checks and the decoding share it, and ``.mkv`` copies
    the packets the decoder demuxes); at the brain rate (``.wav``, ``.flac``, ``.mkv``) the
    soundtrack is guarded, encoded and muxed while the video still decodes, on the thread
    that runs the brain, and the file is byte for byte what writing the finished signal
    would give.

    Returns
    -------
    Path
        ``out``.
    """
    _check_mode(mode)
    video, out = Path(video), Path(out)
    reader, container = _open_input(video, out)
    try:
        b = _load_brain(brain)
        return _render_opened(
            reader, out, b, container,
            mode=mode, seed=seed, density=density, spread=spread, batch=batch,
            progress=progress,
        )  # fmt: skip
    finally:
        reader.close()


def _render_opened(
    reader: MediaReader,
    out: Path,
    b: Brain,
    container: tuple[str, str, int | None],
    *,
    mode: str,
    seed: int,
    density: float,
    spread: float,
    batch: int,
    progress: Progress | None,
) -> Path:
    """:func:`render` from a reader that :func:`_open_input` opened and checked."""
    fmt, codec, rate = container
    spec = b.spec
    sr = spec.sample_rate
    rate = rate or sr
    if codec == "flac" and rate > 655350:
        raise UsageError(f"brain rate {sr} Hz is beyond FLAC; write .wav")
    video = reader.path
    muxed = out.suffix.lower() not in AUDIO_SUFFIXES
    # at the brain rate a muxed output copies the packets the decoder demuxes as the
    # soundtrack streams in; a signal complete only at the end (csound) or resampled (MP4,
    # WebM) is muxed with packets read again, never held in memory
    packets = PacketFeed() if muxed and rate == sr and mode != "csound" else None
    template = reader.video
    stream = BlockStream(video, b, batch=batch, progress=progress, reader=reader, packets=packets)
    tmp = _tmp_name(out)

    def make_sink() -> Any:
        if rate != sr:
            return _ResampledSink(tmp, video, sr=sr, rate=rate, fmt=fmt, codec=codec, muxed=muxed)
        if packets is not None:
            return _MuxSink(tmp, template, packets, sr=sr, fmt=fmt, codec=codec)
        if muxed:
            return _MuxSink.reading(tmp, video, sr=sr, fmt=fmt, codec=codec)
        return _AudioSink(tmp, sr=sr, fmt=fmt, codec=codec)

    guarded = _GuardedOutput(make_sink, out, sr=sr)
    try:
        guarded.open()  # before decoding: the muxer copies the video stream's parameters
        if mode == "csound":
            sig = synthesize_csound(
                stream, hop=spec.hop, framing=spec.framing, sample_rate=sr,
                seed=seed, density=density, spread=spread, n_out=None,
            )  # fmt: skip
            guarded.finish(sig, duration_samples(stream.end_time, sr))
        else:
            synth = SynthStream(
                mode, hop=spec.hop, framing=spec.framing, seed=seed, density=density,
                spread=spread,
            )  # fmt: skip
            with contextlib.closing(iter(stream)) as batches:  # stops the decoder on error
                for blocks in batches:
                    # everything before the newest decoded frame's time is inside the render
                    guarded.add(synth.process(blocks), math.floor(stream.known_end * sr))
            guarded.finish(synth.flush(), duration_samples(stream.end_time, sr))
        try:
            os.replace(tmp, out)
        except OSError as e:
            raise _write_error(out, e) from None
    except BaseException:
        guarded.close()
        tmp.unlink(missing_ok=True)
        raise
    return out


# -- command line -------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="input video (any frame rate)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output: .wav/.flac (audio) or .mkv/.mp4/.webm (video copied, rendered soundtrack)",
    )
    parser.add_argument(
        "--brain", default=None, help="brain file or name in brains/ (default: brains/default.onnx)"
    )
    parser.add_argument(
        "--mode",
        choices=RENDER_MODES,
        default="ola",
        help="synthesis: raw (2015 concatenation), ola (default), granular, "
        "csound (the granular score through the real csound)",
    )
    parser.add_argument("--seed", type=int, default=0, help="granular random seed (default 0)")
    parser.add_argument(
        "--grain-density",
        type=float,
        default=1.0,
        metavar="X",
        help="scales the children per grain, 0..4 (default 1)",
    )
    parser.add_argument(
        "--grain-spread",
        type=float,
        default=1.0,
        metavar="X",
        help="scales the onset jitter, 0..4 (default 1)",
    )
    parser.add_argument("--batch", type=int, default=BATCH,
                        help=f"frames per inference call (default {BATCH})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    for name in ("grain_density", "grain_spread"):
        v = getattr(args, name)
        if not np.isfinite(v) or v < 0:
            raise UsageError(f"--{name.replace('_', '-')}={v} must be a number >= 0")
    if args.batch <= 0:
        raise UsageError(f"--batch={args.batch} must be a positive integer")
    out = Path(args.output)
    _check_mode(args.mode)
    reader, container = _open_input(Path(args.video), out)
    try:
        brain = _load_brain(args.brain)
        est = reader.duration
        total = int(np.ceil(est * brain.spec.fps - PTS_TOLERANCE)) if est else None
        with Progress(total, f"render {args.mode}", unit="ticks", enabled=not args.quiet) as prog:
            _render_opened(
                reader, out, brain, container,
                mode=args.mode, seed=args.seed, density=args.grain_density,
                spread=args.grain_spread, batch=args.batch, progress=prog,
            )  # fmt: skip
    finally:
        reader.close()
    log.info("wrote %s", out)
    return 0
