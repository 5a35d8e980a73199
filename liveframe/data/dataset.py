"""The dataset file: frames on the brain clock with their aligned audio targets.

File format (one uncompressed ``.npz``, readable with ``numpy.load``):

- ``frames``: uint8 ``[T, C, H, W]``, the frame of each tick (C = 1 grey or 3 RGB);
- ``targets``: float32 ``[T, length]``, the audio of each tick in the brain's framing
  (:class:`liveframe.core.spec.Framing`: ``grain``, 2 hop samples centred on the tick,
  Hann-windowed; ``block``, hop samples from it);
- ``boundaries``: int64 ``[S + 1]``, where each source's ticks start (and T at the end):
  context frames and validation stretches never cross a boundary;
- ``meta``: a JSON string: sample_rate, fps, hop, length, framing, channels, width, height,
  sources (path, ticks, kind ``video`` or ``calibration``), created.

:class:`DatasetWriter` streams ticks to temporary files and assembles the ``.npz`` at the
end, so a long film never sits in memory; the output appears under its name only when it is
complete. Building one from videos is :mod:`liveframe.data.pickle`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe.errors import DatasetError
from liveframe.util.files import atomic_write, disk_error, is_disk_error, temp_dir, zip_input

FORMAT = "liveframe-dataset"
VERSION = 1


@dataclass
class Dataset:
    """A dataset in memory.

    Attributes
    ----------
    frames : ndarray, shape (T, C, H, W), uint8
    targets : ndarray, shape (T, length), float32
    boundaries : ndarray, shape (S + 1,), int64
    meta : dict
    """

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


def _npy_header(shape: tuple[int, ...], dtype: np.dtype[Any]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_2_0(
        buf, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": shape}
    )
    return buf.getvalue()


class DatasetWriter:
    """Append ticks one at a time; :meth:`close` writes ``path`` atomically.

    Parameters
    ----------
    path : path-like
        The ``.npz`` to write. Nothing appears there until :meth:`close` succeeds; on
        :meth:`abort` (or an exception inside ``with``) every temporary file is removed.
    frame_shape : (C, H, W)
    length : int
        Samples per target.
    meta : dict
        Stored as JSON; ``sources`` is filled by :meth:`end_source`.

    Raises
    ------
    DatasetError
        The output folder does not exist or is not writable.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        frame_shape: tuple[int, int, int],
        length: int,
        meta: dict[str, Any],
    ) -> None:
        self.path = Path(path)
        self.frame_shape = tuple(frame_shape)
        self.length = int(length)
        self.meta = dict(meta)
        self.meta.setdefault("sources", [])
        parent = self.path.parent
        if not parent.is_dir():
            raise DatasetError(f"{self.path}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise DatasetError(f"{self.path}: folder {parent} is not writable")
        # the ticks stream to raw files in a scratch folder beside the output, named for
        # this process (a later run removes it if this one is killed)
        self._tmpdir = temp_dir(self.path)
        try:
            self._frames = open(self._tmpdir / "frames.raw", "wb")  # noqa: SIM115
            self._targets = open(self._tmpdir / "targets.raw", "wb")  # noqa: SIM115
        except OSError as e:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise disk_error(self.path, e) if is_disk_error(e) else e from None
        self.count = 0
        self._boundaries = [0]
        self._source_start = 0
        self._closed = False

    def append(self, frame: npt.NDArray[np.uint8], target: npt.NDArray[np.float32]) -> None:
        """Add one tick: ``frame`` (C, H, W) uint8 and ``target`` (length,) float32."""
        if frame.shape != self.frame_shape or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame.shape} {frame.dtype} must be {self.frame_shape} uint8")
        if target.shape != (self.length,):
            raise ValueError(f"target {target.shape} must be ({self.length},)")
        try:
            self._frames.write(np.ascontiguousarray(frame).tobytes())
            self._targets.write(np.ascontiguousarray(target, dtype=np.float32).tobytes())
        except OSError as e:
            self.abort()
            raise disk_error(self.path, e) if is_disk_error(e) else e from None
        self.count += 1

    def end_source(self, **info: Any) -> None:
        """Close the current source (a video or a calibration stretch); ``info`` goes to meta."""
        ticks = self.count - self._source_start
        self.meta["sources"].append({**info, "start": self._source_start, "ticks": ticks})
        self._boundaries.append(self.count)
        self._source_start = self.count

    def close(self) -> Path:
        """Assemble the ``.npz`` under its name and remove the temporary files.

        Raises
        ------
        DatasetError
            No tick was appended (nothing is written).
        """
        if self._closed:
            return self.path
        try:
            self._frames.close()
            self._targets.close()
        except OSError as e:  # the last buffered ticks did not fit
            self.abort()
            raise disk_error(self.path, e) if is_disk_error(e) else e from None
        if self._source_start != self.count:
            self.end_source(kind="unnamed")
        if self.count == 0:
            self.abort()
            raise DatasetError(f"{self.path}: no frames to write")
        try:
            with atomic_write(self.path) as (f, _):
                self._write_npz(f)
        except BaseException:
            self.abort()
            raise
        shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._closed = True
        return self.path

    def _write_npz(self, f: Any) -> None:
        meta = {"format": FORMAT, "version": VERSION, **self.meta}
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
            for name, raw, dtype, shape in (
                ("frames", "frames.raw", np.dtype(np.uint8), self.frame_shape),
                ("targets", "targets.raw", np.dtype(np.float32), (self.length,)),
            ):
                with z.open(f"{name}.npy", "w", force_zip64=True) as member:
                    member.write(_npy_header((self.count, *shape), dtype))
                    with open(self._tmpdir / raw, "rb") as src:
                        shutil.copyfileobj(src, member, 1 << 20)
                os.remove(self._tmpdir / raw)  # free the disk as we go
            for name, arr in (
                ("boundaries", np.asarray(self._boundaries, np.int64)),
                ("meta", np.asarray(json.dumps(meta, sort_keys=True))),
            ):
                with z.open(f"{name}.npy", "w") as member:
                    np.lib.format.write_array(member, arr, allow_pickle=False)

    def abort(self) -> None:
        """Remove everything written so far; the output path is left untouched."""
        for f in (self._frames, self._targets):
            try:
                f.close()
            except OSError:  # a full disk fails the last flush: the data goes anyway
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
    """Write an in-memory dataset (small ones: tests, calibration) atomically.

    Parameters
    ----------
    path : path-like
    frames : ndarray, shape (T, C, H, W), uint8
    targets : ndarray, shape (T, length), float32
    boundaries : array-like of int, shape (S + 1,), optional
        Where each source starts, and T; by default one source.
    meta : dict
    """
    b = [int(x) for x in boundaries] if boundaries is not None else [0, len(frames)]
    with DatasetWriter(path, frame_shape=frames.shape[1:], length=targets.shape[1],
                       meta=meta) as w:
        for i in range(len(b) - 1):
            for k in range(b[i], b[i + 1]):
                w.append(frames[k], targets[k])
            w.end_source(kind="video", path=f"source{i}")
        return w.close()


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read a dataset; a missing, foreign or inconsistent file is one :class:`DatasetError`
    line (nothing in the file is trusted: arrays, meta and boundaries are all checked)."""
    p = _dataset_file(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            missing = [k for k in ("frames", "targets", "boundaries", "meta") if k not in z]
            if missing:
                raise DatasetError(f"{p}: not a liveframe dataset (no {', '.join(missing)} "
                                   "array; make one with `liveframe pickle`)")
            frames = z["frames"]
            targets = z["targets"]
            boundaries = z["boundaries"]
            meta = _meta(p, z["meta"])
    except DatasetError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise DatasetError(f"{p}: not a liveframe dataset ({_why(e)}); make one with "
                           "`liveframe pickle`") from None
    b = _check_layout(p, (frames.shape, frames.dtype), (targets.shape, targets.dtype),
                      boundaries)
    if len(frames) == 0:
        raise DatasetError(f"{p}: holds no ticks")
    return Dataset(frames, targets, b, meta)


def check_dataset(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checks of :func:`load_dataset` that need no array read: the file, its arrays'
    types and shapes (from their headers), the meta and the boundaries. Returns the meta.

    ``liveframe train`` runs it before importing torch, so a bad dataset is refused at once.
    """
    p = _dataset_file(path)
    try:
        with zipfile.ZipFile(p) as z:
            names = set(z.namelist())
            missing = [k for k in ("frames", "targets", "boundaries", "meta")
                       if f"{k}.npy" not in names]
            if missing:
                raise DatasetError(f"{p}: not a liveframe dataset (no {', '.join(missing)} "
                                   "array; make one with `liveframe pickle`)")
            heads = {}
            for k in ("frames", "targets"):
                with z.open(f"{k}.npy") as f:
                    version = np.lib.format.read_magic(f)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(f)
                    heads[k] = (shape, dtype)
        with np.load(p, allow_pickle=False) as z:
            meta = _meta(p, z["meta"])
            b = z["boundaries"]
    except DatasetError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise DatasetError(f"{p}: not a liveframe dataset ({_why(e)}); make one with "
                           "`liveframe pickle`") from None
    _check_layout(p, heads["frames"], heads["targets"], b)
    return meta


def _check_layout(p: Path, frames: tuple[tuple[int, ...], Any],
                  targets: tuple[tuple[int, ...], Any], boundaries: npt.NDArray[Any]
                  ) -> npt.NDArray[np.int64]:
    """The arrays' types and shapes (``(shape, dtype)`` of frames and targets, from the
    arrays or from their headers) and the boundaries, which are returned as int64."""
    (fs, fd), (ts, td) = frames, targets
    if fd != np.uint8 or len(fs) != 4:
        raise DatasetError(f"{p}: frames are {fd} {fs}, a dataset's are "
                           "uint8 [ticks, channels, height, width]")
    if td != np.float32 or len(ts) != 2:
        raise DatasetError(f"{p}: targets are {td} {ts}, a dataset's are float32 "
                           "[ticks, samples]")
    if boundaries.dtype.kind not in "iu" or boundaries.ndim != 1 or boundaries.size < 2:
        raise DatasetError(f"{p}: boundaries are {boundaries.dtype} {boundaries.shape}, a "
                           "dataset's are whole numbers [sources + 1]")
    b = boundaries.astype(np.int64)
    if fs[0] != ts[0] or b[0] != 0 or b[-1] != fs[0] or np.any(np.diff(b) < 0):
        raise DatasetError(f"{p}: inconsistent dataset ({fs[0]} frames, {ts[0]} targets, "
                           f"boundaries {_short(b)}); make it again with `liveframe pickle`")
    return b


def _dataset_file(path: str | os.PathLike[str]) -> Path:
    return zip_input(path, DatasetError, what="dataset", made_by="`liveframe pickle`",
                     archive="an .npz archive")


def _why(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "allow_pickle" in msg or "pickled" in msg:
        msg = "it holds Python objects, not plain arrays"
    return msg[:120]


def _short(b: npt.NDArray[np.int64]) -> str:
    s = ", ".join(str(int(x)) for x in b[:6])
    return f"[{s}{', ...' if b.size > 6 else ''}]"


def _meta(p: Path, arr: npt.NDArray[Any]) -> dict[str, Any]:
    """The ``meta`` array as a dict, checked: a liveframe dataset of a version we read."""
    if arr.dtype.kind != "U" or arr.ndim != 0:
        raise DatasetError(f"{p}: meta is {arr.dtype} {arr.shape}, not a JSON string")
    try:
        meta = json.loads(str(arr))
    except ValueError as e:
        raise DatasetError(f"{p}: meta is not JSON ({_why(e)})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{p}: meta is a JSON {type(meta).__name__}, not an object")
    if meta.get("format") != FORMAT:
        raise DatasetError(f"{p}: not a liveframe dataset (format {meta.get('format')!r})")
    v = meta.get("version")
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise DatasetError(f"{p}: dataset version {v!r} is not a version number")
    if v > VERSION:
        raise DatasetError(f"{p}: dataset version {v} is newer than this liveframe reads "
                           f"({VERSION}); upgrade liveframe")
    for key, kind in (("sample_rate", (int, float)), ("fps", (int, float)),
                      ("framing", str), ("channels", int), ("width", int), ("height", int),
                      ("sources", list)):
        if key in meta and (not isinstance(meta[key], kind) or isinstance(meta[key], bool)):
            raise DatasetError(f"{p}: meta {key}={meta[key]!r} has the wrong type")
    if any(not isinstance(s, dict) for s in meta.get("sources", [])):
        raise DatasetError(f"{p}: meta sources must be objects")
    return meta


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A dataset's ``meta`` alone, without reading its frames and targets."""
    p = _dataset_file(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            return _meta(p, z["meta"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise DatasetError(f"{p}: not a liveframe dataset ({_why(e)})") from None
