"""Writing files so that nothing half-written is ever left under the real name."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[tuple[IO[Any], Path]]:
    """Write ``path`` through a temporary file in the same folder, renamed at the end.

    Yields ``(file, tmp_path)``: the caller writes to ``file`` (and may check ``tmp_path``
    once it is flushed; raising inside the block abandons the write). On success the data
    is flushed, fsynced and renamed over ``path``; on any exception the temporary file is
    removed and ``path`` is left as it was.
    """
    p = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these are ordinary files
        with os.fdopen(fd, mode) as f:
            yield f, tmp
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary name beside ``path`` for a writer that wants a path, not a file object
    (PyAV, OpenCV); renamed over ``path`` when the block ends without an exception.

    The temporary keeps ``path``'s suffix (some writers choose the format by it). On any
    exception it is removed and ``path`` is left as it was; a failed rename raises the
    ``OSError``.
    """
    p = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".tmp{p.suffix}", dir=p.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these are ordinary files
        yield tmp
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
