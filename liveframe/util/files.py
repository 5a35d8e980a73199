"""Writing files so that nothing half-written is ever left under the real name.

- :func:`atomic_write` and :func:`atomic_path` write through a temporary beside the target,
  renamed over it at the end. Every temporary that liveframe makes carries its owner's
  process id in its name (:func:`temp_prefix`: ``.NAME.lftmp-PID-HOST-RANDOM``), so a
  later run can tell a temporary whose writer was killed (SIGKILL, power loss) from one
  being written now: :func:`sweep_stale` removes the first kind, and every writer calls it
  first. Only names of that exact shape, made on this machine since its last boot, are
  ever removed: a user's ``.photos.tmp-2024`` folder is not liveframe's.
- :func:`check_outputs` checks, before any work, that every output of a command can be
  written and overwrites none of its inputs nor another of its outputs.
- :func:`disk_error` turns a full disk (ENOSPC, EDQUOT), an I/O error or a read-only file
  system into one line naming the file.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import socket
import stat
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from liveframe.errors import LiveframeError, OutputError, UsageError

log = logging.getLogger(__name__)

DISK_ERRNOS = frozenset(
    e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EIO, errno.EROFS,
                errno.EFBIG) if e is not None
)
"""Errors of the disk rather than of the program: full, over quota, failing, read-only,
file too large."""

_STALE = re.compile(r"^\..+\.lftmp-(?P<pid>\d+)-(?P<host>[0-9a-f]{6})-[a-z0-9_]{8}"
                    r"(?:\.[A-Za-z0-9]+)?$")
"""A liveframe temporary: ``.NAME.lftmp-PID-HOST-RANDOM`` and an optional suffix (the
marker ``lftmp``, the writer's process id, :func:`host_tag`, 8 random characters)."""


def host_tag() -> str:
    """6 hex digits naming this machine and boot (host name and kernel boot id): a process
    id means something only on the machine, and since the boot, that gave it. A folder
    shared with another machine (NFS, a container's bind mount) holds temporaries whose
    writer this machine cannot see: they are never swept from here."""
    boot = ""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        pass
    return hashlib.sha1(f"{socket.gethostname()}|{boot}".encode()).hexdigest()[:6]


_HOST = host_tag()


def temp_prefix(name: str, *, pid: int | None = None) -> str:
    """The start of a temporary's name for the target ``name``:
    ``.NAME.lftmp-PID-HOST-`` (then 8 random characters, then any suffix)."""
    return f".{name}.lftmp-{os.getpid() if pid is None else pid}-{_HOST}-"


def random_tail() -> str:
    """The 8 random characters that end a temporary's name (as ``mkstemp`` makes them)."""
    return os.urandom(4).hex()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a process of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """liveframe temporaries in ``folder`` whose owner process is gone."""
    d = Path(folder) if str(folder) else Path(".")
    try:
        names = os.listdir(d)
    except OSError:
        return []
    me = os.getpid()
    out = []
    for n in names:
        m = _STALE.match(n)
        if m is None or m["host"] != _HOST:  # not ours, or another machine's
            continue
        pid = int(m["pid"])
        if pid != me and not pid_alive(pid):
            out.append(d / n)
    return out


def sweep_stale(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries that killed runs left in ``folder`` (see
    :func:`stale_temporaries`); returns what was removed. Never raises."""
    removed = []
    for p in stale_temporaries(folder):
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        except OSError:
            continue
        log.debug("removed %s, left by a run that was killed", p)
        removed.append(p)
    return removed


def disk_error(path: str | os.PathLike[str], e: OSError) -> OutputError:
    """``e``, raised while writing ``path``, as one line naming ``path``."""
    why = e.strerror or str(e).splitlines()[0] if (e.strerror or str(e)) else type(e).__name__
    hint = ""
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        hint = "; free some space or write elsewhere (nothing was written)"
    elif e.errno == errno.EROFS:
        hint = "; write elsewhere"
    return OutputError(f"{os.fspath(path)}: cannot write ({why}){hint}")


def is_disk_error(e: BaseException) -> bool:
    """Whether ``e`` is an :class:`OSError` of the disk (:data:`DISK_ERRNOS`)."""
    return isinstance(e, OSError) and e.errno in DISK_ERRNOS


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[tuple[IO[Any], Path]]:
    """Write ``path`` through a temporary file in the same folder, renamed at the end.

    Yields ``(file, tmp_path)``: the caller writes to ``file`` (and may check ``tmp_path``
    once it is flushed; raising inside the block abandons the write). On success the data
    is flushed, fsynced and renamed over ``path``; on any exception the temporary file is
    removed and ``path`` is left as it was. A full disk or an I/O error (in the block or
    here) is one :class:`~liveframe.errors.OutputError` line naming ``path``.
    """
    p = Path(path)
    sweep_stale(p.parent)
    try:
        fd, name = tempfile.mkstemp(prefix=temp_prefix(p.name), suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise disk_error(p, e) if is_disk_error(e) else e from None
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these are ordinary files
        f = os.fdopen(fd, mode)
        try:
            yield f, tmp
            f.flush()
            os.fsync(f.fileno())
        finally:
            try:
                f.close()
            except OSError:  # a failed flush of what is being abandoned anyway
                if not f.closed:
                    os.close(f.fileno())
        os.replace(tmp, p)
    except OSError as e:
        if is_disk_error(e):
            raise disk_error(p, e) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary name beside ``path`` for a writer that wants a path, not a file object
    (PyAV, OpenCV); renamed over ``path`` when the block ends without an exception.

    The temporary keeps ``path``'s suffix (some writers choose the format by it). On any
    exception it is removed and ``path`` is left as it was; a failed rename raises the
    ``OSError`` (a full disk as one :class:`~liveframe.errors.OutputError` line).
    """
    p = Path(path)
    sweep_stale(p.parent)
    try:
        fd, name = tempfile.mkstemp(prefix=temp_prefix(p.stem), suffix=p.suffix, dir=p.parent)
    except OSError as e:
        raise disk_error(p, e) if is_disk_error(e) else e from None
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these are ordinary files
        yield tmp
        os.replace(tmp, p)
    except OSError as e:
        if is_disk_error(e):
            raise disk_error(p, e) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def temp_dir(path: str | os.PathLike[str]) -> Path:
    """A scratch folder beside ``path`` named for it and this process (swept like the
    temporary files once this process is gone); the caller removes it."""
    p = Path(path)
    sweep_stale(p.parent)
    try:
        return Path(tempfile.mkdtemp(prefix=temp_prefix(p.name), dir=p.parent))
    except OSError as e:
        raise disk_error(p, e) if is_disk_error(e) else e from None


# ------------------------------------------------------------------------------ checks
def zip_input(path: str | os.PathLike[str], error: type[LiveframeError], *, what: str,
              made_by: str, archive: str) -> Path:
    """``path`` if it is a regular, non-empty zip archive (a numpy ``.npz``, a
    ``torch.save`` file), judged from ``stat`` and the zip's directory before anything
    reads it (a FIFO or a device is never opened); else one ``error`` line naming it.

    ``what`` names the file's kind ("dataset"), ``made_by`` the command that makes one,
    ``archive`` what a file of that kind is ("an .npz archive").
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError:
        raise error(f"{p}: no such {what} (make one with {made_by})") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{p}: is not a regular file; give a {what} made by {made_by}")
    if st.st_size == 0:
        raise error(f"{p}: is empty, not a liveframe {what} (make one with {made_by})")
    try:
        ok = zipfile.is_zipfile(p)
    except OSError as e:
        raise error(f"{p}: cannot read it ({e.strerror or e})") from None
    if not ok:
        raise error(f"{p}: not a liveframe {what} (not {archive}); make one with {made_by}")
    return p



def _same(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name the same file (hard links and symlinks included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


TEMP_NAME_EXTRA = 40
"""What a temporary's name adds to its target's (``.`` + ``.lftmp-PID-HOST-RANDOM`` and a
suffix, with room)."""


def _check_name_length(flag: str, p: Path) -> None:
    """Refuse a name the file system cannot hold with its temporary's extra characters
    (checked without touching the name: ``stat`` of it would fail with ENAMETOOLONG)."""
    try:
        name_max = os.pathconf(p.parent if str(p.parent) else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    try:
        path_max = os.pathconf(p.parent if str(p.parent) else ".", "PC_PATH_MAX")
    except (OSError, ValueError):
        path_max = 4096
    n = len(os.fsencode(p.name))
    if n + TEMP_NAME_EXTRA > name_max or len(os.fsencode(p)) + TEMP_NAME_EXTRA > path_max:
        s = str(p)
        short = s if len(s) <= 60 else f"{s[:40]}...{s[-17:]}"
        raise OutputError(f"{flag} {short}: the name is too long ({n} bytes; at most "
                          f"{name_max - TEMP_NAME_EXTRA} here); choose a shorter one")


def check_outputs(
    outputs: Mapping[str, str | os.PathLike[str] | None],
    inputs: Iterable[str | os.PathLike[str] | None] = (),
) -> None:
    """Refuse, before any work, outputs that cannot be written or would destroy something.

    Each output must not be a folder, its folder must exist and be writable, and it must
    be neither one of ``inputs`` (same file: the same path, a symlink or a hard link to it)
    nor another output. The one-line message names the option.

    Parameters
    ----------
    outputs : mapping of str to path-like or None
        The flag (``-o``, ``--record``) to the path it names; None entries are skipped.
    inputs : iterable of path-like or None
        The files the command reads (None entries are skipped).

    Raises
    ------
    UsageError
        An output that is an input or another output.
    OutputError
        An output that is a folder, or whose folder is missing or not writable.
    """
    ins = [Path(i) for i in inputs if i is not None]
    seen: list[tuple[str, Path]] = []
    for flag, out in outputs.items():
        if out is None:
            continue
        p = Path(out)
        _check_name_length(flag, p)
        if p.is_dir():
            raise OutputError(f"{flag} {p} is a directory; give a file name")
        parent = p.parent
        if not parent.is_dir():
            raise OutputError(f"{flag} {p} cannot be written: folder {parent} does not exist; "
                              "create it first")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"{flag} {p} cannot be written: folder {parent} is not writable")
        if p.exists() and not os.access(p, os.W_OK):
            raise OutputError(f"{flag} {p} cannot be written: it is read-only")
        for i in ins:
            if _same(p, i):
                raise UsageError(f"{flag} {p}: is an input of this command; writing it would "
                                 "destroy it, choose another name")
        for other_flag, other in seen:
            if _same(p, other):
                raise UsageError(f"{flag} {p}: is also {other_flag}; give each output its own "
                                 "name")
        seen.append((flag, p))
