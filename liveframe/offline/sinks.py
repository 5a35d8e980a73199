"""Where a render's soundtrack goes: audio files, and videos whose packets are copied.

- :class:`AudioSink`: ``.wav`` (16-bit PCM) or ``.flac`` (16-bit) at the brain rate,
  encoded as the signal arrives.
- :class:`MuxSink`: ``.mkv`` (FLAC at the brain rate): the ORIGINAL video packets copied
  (never re-encoded), the soundtrack encoded just ahead of them as it arrives.
- :class:`ResampledSink`: ``.mp4`` (AAC) and ``.webm`` (Opus) at 48 kHz: the whole signal
  kept, resampled at the end (soxr) and written.
- :class:`GuardedOutput`: the output guard (:class:`~liveframe.core.safety.BlockGuard`) in
  front of any of them, guarding each stretch of signal once no later tick can change it.

The file is byte for byte what writing the finished signal gives, however the signal and
the packets arrive. :func:`write_audio`, :func:`write_muxed` write a finished signal;
:func:`read_audio_file` reads any audio back.
"""

from __future__ import annotations

import errno
import os
from collections import deque
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe.core.safety import BlockGuard
from liveframe.errors import LiveframeError, MediaError

F32 = npt.NDArray[np.float32]

AUDIO_SUFFIXES = (".wav", ".flac")
VIDEO_SUFFIXES = (".mkv", ".mp4", ".webm")

# container suffix -> (format, audio codec, sample rate or None for the brain's rate)
CONTAINERS: dict[str, tuple[str, str, int | None]] = {
    ".wav": ("wav", "pcm_s16le", None),
    ".flac": ("flac", "flac", None),
    ".mkv": ("matroska", "flac", None),
    ".mp4": ("mp4", "aac", 48000),
    ".webm": ("webm", "libopus", 48000),
}
WEBM_VIDEO = ("vp8", "vp9", "av1")
"""Video codecs a WebM file can hold (a stream copy of anything else is refused)."""


class PacketFeed:
    """Video packets in demux order, from a decoder to a muxer on the same thread.

    :class:`~liveframe.offline.render.PictureStream` puts the packets it demuxed before
    each batch's pictures and sets :attr:`done` after the last; :func:`write_muxed` pulls
    them from a file it opened.

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


def resample(x: F32, sr_in: int, sr_out: int) -> F32:
    """``x`` from ``sr_in`` to ``sr_out`` Hz (soxr, high quality)."""
    if sr_in == sr_out:
        return x
    import soxr

    return np.asarray(soxr.resample(x, sr_in, sr_out, quality="HQ"), dtype=np.float32)


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
    sink = AudioSink(path, sr=sr, fmt=fmt, codec=codec)
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
    sink = MuxSink.reading(path, video, sr=sr, fmt=fmt, codec=codec)
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

    def __init__(self, stream: Any, sr: int, start: int = 0) -> None:
        self.fmt = stream.codec_context.format.name
        self.sr = sr
        self.buf = np.zeros(0, np.float32)
        self.pts = start
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


class AudioSink:
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


class MuxSink(AudioSink):
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
    origin : float
        Seconds of the video's clock where its first picture (the signal's sample 0)
        is: the input's start time, so a clip cut from a longer stream keeps its sound
        under its pictures.
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
        origin: float = 0.0,
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
        self.frames = _FrameQueue(self.ast, sr, start=round(origin * sr))
        self.packets = packets
        self.waiting: Any = None  # a video packet whose audio is not there yet
        self.video_done = False
        self.audio_t = float(origin)

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
    def reading(cls, path: Path, video: Path, *, sr: int, fmt: str, codec: str) -> MuxSink:
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
            st = inp.start_time
            origin = max(st / 1_000_000, 0.0) if st is not None else 0.0
            return cls(path, vin, packets, sr=sr, fmt=fmt, codec=codec, source=inp,
                       origin=origin)
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


class ResampledSink:
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
        x = resample(np.concatenate(self.parts), self.sr, self.rate)
        if self.muxed:
            write_muxed(self.path, self.video, x, sr=self.rate, fmt=self.fmt, codec=self.codec)
        else:
            write_audio(self.path, x, sr=self.rate, fmt=self.fmt, codec=self.codec)

    def close(self) -> None:
        pass


class GuardedOutput:
    """Guard and write a signal that arrives in pieces, as each piece is final.

    Samples are guarded in ``block``-sample steps from sample 0 (the same steps as
    :func:`~liveframe.core.safety.guard` on the whole signal) once the render is known to
    reach past them, so the file is sample for sample what guarding and writing the
    finished signal gives.

    Parameters
    ----------
    make_sink : callable
        Opens the sink (an ``AudioSink``, ``MuxSink`` or ``ResampledSink``): at
        :meth:`open`, or else when the first samples are ready.
    out : Path
        The output named in errors.
    sr : int
    block : int
        Samples per guard step: the brain's hop, as in live play's producer.
    """

    def __init__(self, make_sink: Callable[[], Any], out: Path, *, sr: int, block: int) -> None:
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
        self._emit(fit(np.concatenate([self.pending, tail]), n_out - self.n))
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
            raise write_error(self.out, e) from None


def write_error(out: Path, e: Exception) -> MediaError:
    """A writer's failure as one line naming ``out``."""
    msg = getattr(e, "strerror", None) or (str(e).splitlines()[0] if str(e) else "")
    msg = msg or type(e).__name__
    hint = ("; free some space or write elsewhere (nothing was written)"
            if getattr(e, "errno", None) in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)) else "")
    return MediaError(f"{out}: cannot write ({msg}){hint}")


def fit(sig: F32, n_out: int | None) -> F32:
    """``sig`` cut or zero-padded to ``n_out`` samples (unchanged for None)."""
    if n_out is None:
        return sig
    if sig.shape[0] >= n_out:
        return sig[:n_out]
    return np.concatenate([sig, np.zeros(n_out - sig.shape[0], np.float32)])

