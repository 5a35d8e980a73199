"""WAV I/O in one place: float32 WAV written in pieces, and a small reader.

:class:`WavWriter` streams mono or multichannel float32 samples to a temporary file beside
the target and renames it into place on :meth:`WavWriter.close` (nothing half-written under
the real name). :func:`read_wav` reads those files and 16-bit PCM WAVs.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt

from liveframe.errors import LiveframeError
from liveframe.util.files import random_tail, sweep_stale, temp_prefix

F32 = npt.NDArray[np.float32]


class WavWriter:
    """A float32 WAV file written in pieces; the header is patched on :meth:`close`.

    Writes to a temporary beside the target (:func:`~liveframe.util.files.temp_prefix`,
    swept by a later run should this one be killed) and renames on close; :meth:`abort`
    removes the temporary.
    """

    def __init__(self, path: str | os.PathLike[str], *, sr: int, channels: int = 1) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            raise LiveframeError(f"{self.path}: folder {self.path.parent} does not exist")
        self.sr = int(sr)
        self.channels = int(channels)
        sweep_stale(self.path.parent)  # a killed recording's temporary
        self.tmp = self.path.with_name(temp_prefix(self.path.name) + random_tail())
        self._f = open(self.tmp, "wb")  # noqa: SIM115 (closed in close()/abort())
        self.frames = 0
        self._f.write(self._header(0))

    def _header(self, nbytes: int) -> bytes:
        block_align = 4 * self.channels
        fmt = struct.pack(
            "<HHIIHH", 3, self.channels, self.sr, self.sr * block_align, block_align, 32
        )
        fact = struct.pack("<I", nbytes // block_align)
        return (
            b"RIFF" + struct.pack("<I", 4 + (8 + 16) + (8 + 4) + (8 + nbytes)) + b"WAVE"
            + b"fmt " + struct.pack("<I", 16) + fmt
            + b"fact" + struct.pack("<I", 4) + fact
            + b"data" + struct.pack("<I", nbytes)
        )

    def write(self, x: F32) -> None:
        a = np.ascontiguousarray(x, dtype="<f4")
        self._f.write(a.tobytes())
        self.frames += a.shape[0]

    def close(self) -> Path:
        nbytes = self.frames * 4 * self.channels
        self._f.seek(0)
        self._f.write(self._header(nbytes))
        self._f.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        try:
            self._f.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def read_wav(path: str | os.PathLike[str]) -> tuple[int, F32]:
    """Read a WAV written by :class:`WavWriter` (float32) or 16-bit PCM: (sr, samples)."""
    data = Path(path).read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise LiveframeError(f"{path}: not a WAV file")
    pos, fmt, sr, ch = 12, 1, 0, 1
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt, ch, sr, _, _, _bits = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            if fmt == 3:
                a = np.frombuffer(body, "<f4").astype(np.float32)
            else:
                a = np.frombuffer(body, "<i2").astype(np.float32) / 32768
            return sr, a.reshape(-1, ch)[:, 0].copy() if ch > 1 else a
        pos += 8 + size + (size & 1)
    raise LiveframeError(f"{path}: WAV file has no data")
