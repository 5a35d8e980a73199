"""Writing clips with PyAV: the demo media, the training film and the tests' clips.

:func:`write_clip` takes pictures with their timestamps and a soundtrack and writes a real
container (Matroska, MP4, WebM) that every part of liveframe reads back through
:mod:`liveframe.core.media`. Timestamps are set explicitly, so constant, fractional (29.97) and
variable frame rates are all one call.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def write_clip(
    path: str | os.PathLike[str],
    frames: Iterable[tuple[float, npt.NDArray[np.uint8]]],
    *,
    audio: npt.NDArray[np.floating[Any]] | None = None,
    sr: int = 48000,
    fps: float = 30.0,
    video_codec: str = "libx264",
    audio_codec: str = "flac",
    size: tuple[int, int] | None = None,
    time_base: Fraction | None = None,
    audio_start: float = 0.0,
) -> Path:
    """Write a clip.

    Parameters
    ----------
    path : path-like
        ``.mkv``, ``.mp4`` or ``.webm``.
    frames : iterable of (time in s, picture)
        Pictures are (H, W) grey or (H, W, 3) RGB uint8, all the same size, timestamps
        increasing. Each is stamped at ``round(time / time_base)``.
    audio : ndarray, shape (n,) or (n, channels), optional
        Float samples in [-1, 1]; 1, 2 or 6 channels (mono, stereo, 5.1).
    sr : int
        Sample rate of ``audio``.
    fps : float
        Nominal frame rate written in the stream header.
    time_base : Fraction, optional
        Video time base; by default 1/1000 s, fine enough for any rate.
    audio_start : float
        Time of the first audio sample in seconds.
    """
    import av

    path = Path(path)
    tb = time_base or Fraction(1, 1000)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("write_clip needs at least one frame")
    h, w = first[1].shape[:2]
    if size is not None:
        w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream(video_codec, rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height = w - w % 2, h - h % 2
        vs.pix_fmt = "yuv420p"
        vs.time_base = tb
        if video_codec == "libx264":
            vs.options = {"preset": "ultrafast", "crf": "18"}
        vs.codec_context.time_base = tb
        astream = None
        if audio is not None:
            a = np.asarray(audio, dtype=np.float32)
            if a.ndim == 1:
                a = a[:, None]
            layout = LAYOUTS[a.shape[1]]
            astream = out.add_stream(audio_codec, rate=sr, layout=layout)
            astream.time_base = Fraction(1, sr)

        def encode_video(t: float, pic: npt.NDArray[np.uint8]) -> None:
            pic = np.asarray(pic, dtype=np.uint8)
            fmt = "gray" if pic.ndim == 2 else "rgb24"
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(pic), format=fmt)
            if (vf.width, vf.height) != (vs.width, vs.height):
                vf = vf.reformat(width=vs.width, height=vs.height)
            vf = vf.reformat(format="yuv420p")
            vf.pts = int(round(t / tb))
            vf.time_base = tb
            for packet in vs.encode(vf):
                out.mux(packet)

        encode_video(*first)
        for t, pic in frames:
            encode_video(t, pic)
        for packet in vs.encode(None):
            out.mux(packet)

        if astream is not None:
            s16 = astream.codec_context.format.name in ("s16", "s16p")
            chunk = 1024
            start = int(round(audio_start * sr))
            for i in range(0, a.shape[0], chunk):
                block = a[i : i + chunk]
                if s16:
                    data = (np.clip(block, -1, 1) * 32767).astype(np.int16)
                    af = av.AudioFrame.from_ndarray(
                        np.ascontiguousarray(data.T) if astream.codec_context.format.is_planar
                        else data.reshape(1, -1), format=astream.codec_context.format.name,
                        layout=layout,
                    )
                else:
                    fmt = astream.codec_context.format.name
                    planar = astream.codec_context.format.is_planar
                    arr = np.ascontiguousarray(block.T) if planar else block.reshape(1, -1)
                    if fmt.startswith("s32"):
                        arr = (np.clip(arr, -1, 1) * (2**31 - 1)).astype(np.int32)
                    af = av.AudioFrame.from_ndarray(arr, format=fmt, layout=layout)
                af.sample_rate = sr
                af.pts = start + i
                af.time_base = Fraction(1, sr)
                for packet in astream.encode(af):
                    out.mux(packet)
            for packet in astream.encode(None):
                out.mux(packet)
    return path
