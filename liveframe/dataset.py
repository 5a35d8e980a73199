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

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import DatasetError

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
