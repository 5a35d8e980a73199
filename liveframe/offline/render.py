"""Offline render: the live tick pipeline fed from a file, without a real-time clock.

A video is decoded on the brain clock (:class:`~liveframe.core.media.ClockedFrames`, any
input frame rate) into each tick's picture, and the pictures go, in batches, through
:meth:`TickPipeline.step_batch <liveframe.core.pipeline.TickPipeline.step_batch>`: the
very object live play steps once per tick, so live equals offline by construction. The
signal's first ``pipeline.latency`` samples are trimmed (sample 0 of the output is time 0
of the video), :meth:`~liveframe.core.pipeline.TickPipeline.flush` gives its tail, and the
output lasts the video's duration (last frame time plus one frame), to the sample. Then it
is guarded (:class:`~liveframe.core.safety.BlockGuard`, one step per brain hop, as live
play's producer guards) and written by a sink (:mod:`liveframe.offline.sinks`):

- ``.wav`` (16-bit PCM) or ``.flac`` (16-bit) at the brain rate: the soundtrack alone;
- ``.mkv`` (FLAC at the brain rate), ``.mp4`` (AAC at 48 kHz) or ``.webm`` (Opus at 48 kHz):
  the ORIGINAL video packets copied (never re-encoded) with the rendered soundtrack.

Modes: ``raw`` (2015 concatenation), ``ola`` (default), ``granular`` (the 2015 granular
scheme in numpy), ``csound`` (the same grains as a Csound score, played by the real
``csound``: :mod:`liveframe.offline.csound`). Nothing is half-written: every output goes to
a temporary name beside it and is renamed at the end.

Cost: the input is opened and demuxed once, for the checks, the decoding and (at the brain
rate) the copy of its video packets. While a producer thread decodes (FFmpeg's slice
threads: :data:`DECODER_THREADS`), the caller's thread runs the pipeline and, at the brain
rate, guards, encodes and muxes each stretch of the soundtrack as soon as no later frame
can change it, so little is left to do when the last frame is decoded; the file is byte for
byte what writing the finished signal gives.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.core.brain import Brain, resolve_brain_path
from liveframe.core.media import MediaReader
from liveframe.core.pipeline import TickPipeline
from liveframe.errors import MediaError, UsageError
from liveframe.offline.csound import csound_executable, synthesize_csound
from liveframe.offline.pictures import BATCH, DECODER_THREADS, PictureStream
from liveframe.offline.sinks import (
    AUDIO_SUFFIXES,
    CONTAINERS,
    VIDEO_SUFFIXES,
    WEBM_VIDEO,
    AudioSink,
    GuardedOutput,
    MuxSink,
    PacketFeed,
    ResampledSink,
    fit,
    write_error,
)
from liveframe.util.files import atomic_path
from liveframe.util.progress import Progress

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

RENDER_MODES = (*C.MODES, "csound")

# -- the pipeline over pictures -----------------------------------------------------------


def load_brain(brain: Brain | str | os.PathLike[str] | None) -> Brain:
    """``brain`` itself, or the brain file it names (None: the default brain)."""
    if isinstance(brain, Brain):
        return brain
    return Brain.load(resolve_brain_path(brain))


def check_mode(mode: str) -> None:
    """Refuse a mode that is not one of :data:`RENDER_MODES`."""
    if mode not in RENDER_MODES:
        raise UsageError(f"mode={mode!r} must be one of {', '.join(RENDER_MODES)}")


def make_pipeline(brain: Brain, *, mode: str, seed: int = 0, density: float = 1.0,
                  spread: float = 1.0, phase: str | None = None) -> TickPipeline:
    """The pipeline of a render mode (``csound`` plays a granular pipeline's grains).

    ``phase`` picks a spectrum brain's phase method (None: its spec's); a pcm brain
    ignores it.
    """
    check_mode(mode)
    if phase is not None and phase not in C.PHASES:
        raise UsageError(f"phase={phase!r} must be one of {', '.join(C.PHASES)}")
    return TickPipeline(brain, mode="granular" if mode == "csound" else mode, seed=seed,
                        density=density, spread=spread, phase=phase)


class _Trim:
    """Drops the first ``n`` samples of a signal that arrives in pieces."""

    def __init__(self, n: int) -> None:
        self.left = n

    def __call__(self, x: F32) -> F32:
        if self.left:
            k = min(self.left, x.shape[0])
            self.left -= k
            return x[k:]
        return x


def render_pictures(
    brain: Brain,
    pictures: Iterable[U8],
    *,
    mode: str = "ola",
    seed: int = 0,
    density: float = 1.0,
    spread: float = 1.0,
    phase: str | None = None,
    n_out: int | None = None,
    trim: bool = True,
    progress: Progress | None = None,
) -> F32:
    """Pictures through a fresh :class:`~liveframe.core.pipeline.TickPipeline`: one signal.

    Parameters
    ----------
    brain : Brain
    pictures : iterable of ndarray, shape (n, channels, height, width), uint8
        Each tick's picture, in batches (one inference call per batch).
    mode : {"ola", "raw", "granular", "csound"}
    seed, density, spread :
        Granular parameters (``granular`` and ``csound``).
    phase : str, optional
        A spectrum brain's phase method (default: its spec's).
    n_out : int, optional
        Cut or zero-pad the result to this many samples.
    trim : bool
        Drop the pipeline's ``latency`` samples from the start, so sample 0 is tick 0's
        time; False keeps every sample (what a live producer emits; not for ``csound``).

    Returns
    -------
    ndarray, shape (n_out,) or (ticks * hop + flush [- latency],), float32
        At the brain rate, before the output guard.
    """
    pipe = make_pipeline(brain, mode=mode, seed=seed, density=density, spread=spread,
                         phase=phase)
    if mode == "csound":
        if not trim:
            raise ValueError("csound mode renders trimmed signals only")
        return synthesize_csound(pipe, pictures, n_out=n_out, progress=progress)
    parts = []
    for px in pictures:
        parts.append(pipe.step_batch(px))
        if progress is not None:
            progress.update(px.shape[0])
    parts.append(pipe.flush())
    sig = np.concatenate(parts)
    return fit(sig[pipe.latency :] if trim else sig, n_out)


def render_signal(
    video: str | os.PathLike[str],
    brain: Brain | str | os.PathLike[str] | None,
    *,
    mode: str = "ola",
    seed: int = 0,
    density: float = 1.0,
    spread: float = 1.0,
    phase: str | None = None,
    batch: int = BATCH,
    progress: Progress | None = None,
    trim: bool = True,
) -> F32:
    """Render a video through a brain: the signal at the brain rate, before the output guard.

    Parameters
    ----------
    video : path-like
    brain : Brain, path or name (None: the default brain)
    mode : {"ola", "raw", "granular", "csound"}
    seed, density, spread :
        Granular parameters (``granular`` and ``csound``).
    phase : str, optional
        A spectrum brain's phase method (default: its spec's).
    batch : int
        Ticks per inference call (does not change the result).
    trim : bool
        True (default): drop the pipeline's latency and cut/pad to the video's duration,
        so sample ``n`` is time ``n / sr``. False: every sample the pipeline emitted,
        tick 0 first, latency included (what a live producer emits), then its flush.

    Returns
    -------
    ndarray, shape (round(duration * sr),), float32
        At ``brain.spec.sample_rate``; exactly what the pipeline produces (no NaN guard,
        DC blocker or limiter yet).
    """
    check_mode(mode)
    b = load_brain(brain)
    stream = PictureStream(video, b.spec, batch=batch)
    with contextlib.closing(iter(stream)) as pictures:  # stops the decoder on error
        sig = render_pictures(b, pictures, mode=mode, seed=seed, density=density,
                              spread=spread, phase=phase, trim=trim, progress=progress)
    if not trim:
        return sig
    return fit(sig, duration_samples(stream.end_time, b.spec.sample_rate))


def duration_samples(seconds: float, sr: int) -> int:
    """Samples in ``seconds`` (rounded; container timestamps carry about 1 ms of jitter)."""
    return round(float(max(seconds, 0.0)) * sr)


# -- the whole render -------------------------------------------------------------------


def check_output(out: Path) -> tuple[str, str, int | None]:
    """Refuse an output that cannot be written; its (format, audio codec, rate or None)."""
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


def open_input(video: Path, out: Path) -> tuple[MediaReader, tuple[str, str, int | None]]:
    """Refuse, before any work, what cannot be rendered; open ``video`` once for the render.

    Returns
    -------
    (MediaReader, (format, audio codec, rate or None))
        The caller closes the reader (or hands it to :class:`PictureStream`, which does).
    """
    container = check_output(out)
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


def render(
    video: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    brain: Brain | str | os.PathLike[str] | None = None,
    mode: str = "ola",
    seed: int = 0,
    density: float = 1.0,
    spread: float = 1.0,
    phase: str | None = None,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> Path:
    """Render ``video`` through ``brain`` into ``out`` (audio file or muxed video).

    The signal of :func:`render_signal` is guarded at the brain rate, resampled to 48 kHz
    where the codec needs it (AAC in MP4, Opus in WebM) and written to a temporary name
    beside ``out``, renamed into place only when complete. The input is opened once (its
    checks and the decoding share it, and ``.mkv`` copies the packets the decoder demuxes);
    at the brain rate (``.wav``, ``.flac``, ``.mkv``) the soundtrack is guarded, encoded and
    muxed while the video still decodes, and the file is byte for byte what writing the
    finished signal would give.

    Returns
    -------
    Path
        ``out``.
    """
    check_mode(mode)
    video, out = Path(video), Path(out)
    reader, container = open_input(video, out)
    try:
        pipe = make_pipeline(load_brain(brain), mode=mode, seed=seed, density=density,
                             spread=spread, phase=phase)
        return render_opened(reader, out, pipe, container, csound=mode == "csound",
                             batch=batch, progress=progress)
    finally:
        reader.close()


def render_opened(
    reader: MediaReader,
    out: Path,
    pipe: TickPipeline,
    container: tuple[str, str, int | None],
    *,
    csound: bool = False,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> Path:
    """:func:`render` from a reader that :func:`open_input` opened and checked, through a
    fresh ``pipe`` (:func:`make_pipeline`)."""
    fmt, codec, rate = container
    spec = pipe.spec
    sr = spec.sample_rate
    rate = rate or sr
    if codec == "flac" and rate > 655350:
        raise UsageError(f"brain rate {sr} Hz is beyond FLAC; write .wav")
    if csound:
        csound_executable()  # refused before any work
    video = reader.path
    muxed = out.suffix.lower() not in AUDIO_SUFFIXES
    # at the brain rate a muxed output copies the packets the decoder demuxes as the
    # soundtrack streams in; a signal complete only at the end (csound) or resampled (MP4,
    # WebM) is muxed with packets read again, never held in memory
    packets = PacketFeed() if muxed and rate == sr and not csound else None
    template = reader.video
    stream = PictureStream(video, spec, batch=batch, reader=reader, packets=packets)
    try:
        with atomic_path(out) as tmp:

            def make_sink() -> Any:
                if rate != sr:
                    return ResampledSink(tmp, video, sr=sr, rate=rate, fmt=fmt, codec=codec,
                                         muxed=muxed)
                if packets is not None:
                    return MuxSink(tmp, template, packets, sr=sr, fmt=fmt, codec=codec,
                                   origin=reader.start_time)
                if muxed:
                    return MuxSink.reading(tmp, video, sr=sr, fmt=fmt, codec=codec)
                return AudioSink(tmp, sr=sr, fmt=fmt, codec=codec)

            guarded = GuardedOutput(make_sink, out, sr=sr, block=spec.hop)
            try:
                guarded.open()  # before decoding: the muxer copies the video stream's parameters
                _stream_into(guarded, stream, pipe, csound=csound, progress=progress)
            except BaseException:
                guarded.close()
                raise
    except OSError as e:  # the temporary name or the rename
        raise write_error(out, e) from None
    return out


def _stream_into(guarded: GuardedOutput, stream: PictureStream, pipe: TickPipeline, *,
                 csound: bool, progress: Progress | None) -> None:
    """Run ``stream`` through ``pipe`` into ``guarded``, each stretch as soon as it is final."""
    sr = pipe.spec.sample_rate
    if csound:
        sig = synthesize_csound(pipe, stream, progress=progress)
        guarded.finish(sig, duration_samples(stream.end_time, sr))
        return
    trim = _Trim(pipe.latency)
    with contextlib.closing(iter(stream)) as batches:  # stops the decoder on error
        for px in batches:
            x = trim(pipe.step_batch(px))
            if progress is not None:
                progress.update(px.shape[0])
            # everything before the newest decoded frame's time is inside the render
            guarded.add(x, math.floor(stream.known_end * sr))
    guarded.finish(trim(pipe.flush()), duration_samples(stream.end_time, sr))
