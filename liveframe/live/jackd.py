"""A private JACK server with the dummy backend: sound with no sound card.

The tests, the benchmarks and the demo play through a real ``jackd -d dummy`` under a
name of their own, so parallel runs never share a server and no hardware is needed.
PortAudio sees the server through ``JACK_DEFAULT_SERVER`` (:func:`jack_env`); one already
initialised must be re-initialised to see it (:func:`liveframe.live.audio.rescan`). A
server killed or frozen on purpose (the lost-device tests) is cleaned up after by
:func:`stop_jackd` (:func:`reclaim`).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from liveframe.errors import ToolMissingError
from liveframe.live import audio

log = logging.getLogger(__name__)

RATE = 48000
"""Sample rate of the dummy server (Hz)."""

PERIOD = 256
"""Frames per JACK period of the dummy server."""


def jack_env(name: str) -> dict[str, str]:
    """The environment that points JACK clients (and PortAudio) at server ``name``."""
    env = dict(os.environ)
    env.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1", JACK_NO_AUDIO_RESERVATION="1")
    return env


@dataclass
class JackServer:
    """A running dummy-backend ``jackd``.

    Attributes
    ----------
    name : str
        The server's name (``JACK_DEFAULT_SERVER`` of its clients).
    rate, period : int
        Sample rate (Hz) and frames per period.
    process : subprocess.Popen
    log : file
        Where its stdout and stderr go (a pipe nobody reads would fill up and stall it).
    """

    name: str
    rate: int
    period: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def log_text(self) -> str:
        """The server's output so far."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


def start_jackd(name: str, *, rate: int = RATE, period: int = PERIOD, timeout: float = 10.0,
                log: IO[bytes] | None = None) -> JackServer:
    """Start a dummy-backend, non-real-time jackd called ``name``; wait until clients can
    connect.

    Parameters
    ----------
    name : str
    rate : int
        Sample rate in Hz.
    period : int
        Frames per period.
    timeout : float
        Seconds to wait for the server.
    log : binary file, optional
        Where the server's output goes (default: an anonymous temporary file).

    Raises
    ------
    ToolMissingError
        jackd or jack_lsp is not installed.
    RuntimeError
        The server exited or did not come up within ``timeout`` seconds (with its log).
    """
    for tool in ("jackd", "jack_lsp"):
        if shutil.which(tool) is None:
            raise ToolMissingError(f"{tool} is not installed (Debian: jackd2)")
    env = jack_env(name)
    out = log if log is not None else tempfile.TemporaryFile()
    proc = subprocess.Popen(
        ["jackd", "--no-realtime", "-n", name, "-d", "dummy", "-r", str(rate), "-p", str(period)],
        env=env, stdout=out, stderr=out,
    )
    server = JackServer(name, rate, period, proc, out)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = server.log_text()
            _stop(server)
            raise RuntimeError(f"jackd {name} exited with {proc.returncode}: {err[-500:]}")
        r = subprocess.run(["jack_lsp"], env=env, capture_output=True, timeout=5)
        if r.returncode == 0 and b"system:playback" in r.stdout:
            return server
        time.sleep(0.1)  # polling: the server gives no readiness signal
    _stop(server)
    raise RuntimeError(f"jackd {name} did not come up within {timeout} s")


def stop_jackd(server: JackServer) -> None:
    """Terminate (then kill) the server and close its log; after a server that was
    killed (``kill -KILL``, as the lost-device tests do) or crashed, :func:`reclaim` its
    name."""
    _stop(server)
    if server.process.returncode != 0:
        reclaim(server.name)


def _stop(server: JackServer) -> None:
    """Terminate (then kill) the server, close its log."""
    proc = server.process
    if proc.poll() is None:
        if _stopped(proc):  # frozen (SIGSTOP): woken, it takes seconds to act on SIGTERM
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    server.log.close()


def reclaim(name: str, *, timeout: float = 10.0) -> None:
    """Free what a jackd called ``name`` that died without cleaning up left behind.

    jackd2 registers every server in one shared-memory table of 8 slots
    (``/dev/shm/jack-shm-registry``); a server that is killed keeps its slot, and a slot is
    reclaimed only when a server of the same name starts. Eight killed servers of unique
    names would leave no server able to start on the machine ("Too many servers already
    active"): so a server of the same name is started and stopped cleanly here, and the
    semaphore files of the dead server's clients are removed. Never raises (a clean-up).
    """
    try:
        _stop(start_jackd(name, timeout=timeout))
    except Exception as e:  # noqa: BLE001 -- best effort: say so, never mask the caller
        log.warning("jackd %s: could not reclaim its slot: %s", name, e)
    for f in glob.glob(f"/dev/shm/jack_sem.*_{glob.escape(name)}_*"):
        with contextlib.suppress(OSError):
            os.unlink(f)


def _stopped(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the process is stopped (SIGSTOP), from /proc (False where unknown)."""
    try:
        with open(f"/proc/{proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except (OSError, IndexError):
        return False


@contextmanager
def default_server(server: JackServer) -> Iterator[None]:
    """Make ``server`` this process's JACK server inside the block.

    Sets the environment of :func:`jack_env` and re-initialises PortAudio so that it sees
    the server's JACK host API; afterwards restores the environment and re-initialises
    PortAudio again (it must let go of a server before the server stops: terminating
    PortAudio after jackd died aborts). Call it while no stream is open.
    """
    keys = ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER", "JACK_NO_AUDIO_RESERVATION")
    saved = {k: os.environ.get(k) for k in keys}
    env = jack_env(server.name)
    os.environ.update({k: env[k] for k in keys})
    try:
        audio.rescan()
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        audio.rescan()
