"""Csound started by liveframe: ``patches/liveframe-grains.csd`` on the instrument's device.

:class:`CsoundProcess` runs the real ``csound`` on the shipped grain instrument, on the
same audio backend as liveframe's own output and at the device's rate (JACK when
liveframe plays on JACK: ``-+rtaudio=jack``, whose ports Csound connects to the system
playback ports), listening for grains on a UDP port of 127.0.0.1 that was free a moment
before. :meth:`~CsoundProcess.start` returns once the instrument says it listens (grains
sent before would be lost); :meth:`~CsoundProcess.stop` ends it with SIGTERM (Csound then
closes its output and its WAV cleanly), kills it if it does not end, and reaps it, so no
Csound process outlives the play. Csound runs in a session of its own (a terminal's
Ctrl-C reaches liveframe, which stops Csound after fading out) and, on Linux, gets SIGKILL
should liveframe itself die.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from liveframe.core.shipped import shipped_file
from liveframe.errors import DeviceError, ToolMissingError
from liveframe.util.files import random_tail, sweep_stale, temp_prefix
from liveframe.util.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

GRAINS_PATCH = shipped_file("patches/liveframe-grains.csd")
"""The real-time grain instrument (shipped with the package)."""

READY = "liveframe-grains: listening"
"""What the instrument prints once its OSC listener is registered."""


def csound_available() -> bool:
    """True when the ``csound`` program is on the PATH."""
    return shutil.which("csound") is not None


def csound_executable() -> str:
    """The ``csound`` program's path; :class:`ToolMissingError` when it is not installed."""
    exe = shutil.which("csound")
    if exe is None:
        raise ToolMissingError(
            "csound is not installed; install it with `sudo apt-get install csound`"
        )
    return exe


def rtaudio_for(hostapi: str) -> list[str]:
    """Csound's real-time audio options for a PortAudio host API name.

    JACK plays through Csound's own JACK module (``-+rtaudio=jack``), its outputs
    connected to ``system:playback_1``, ``_2`` (``-odac:system:playback_``: with a bare
    ``-odac`` Csound 6.18 connects only its first output, and the right speaker stays
    silent); Core Audio through ``auhal``; anything else through Csound's PortAudio module
    on the system's default output (``-+rtaudio=pa_cb``).
    """
    if "JACK" in hostapi:
        return ["-+rtaudio=jack", "-odac:system:playback_"]
    if "Core Audio" in hostapi:
        return ["-+rtaudio=auhal", "-odac"]
    return ["-+rtaudio=pa_cb", "-odac"]


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """In the child: SIGKILL when the parent dies (Linux ``PR_SET_PDEATHSIG``).

    SIGKILL, not SIGTERM: Csound's own SIGTERM handling closes its JACK client and its WAV
    and could take over 10 s on a loaded machine (seen in the tests); an orphaned Csound
    has nothing left to play, so it ends at once (its half-written recording is a
    temporary named after the dead liveframe's PID, removed by the next run)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class CsoundProcess:
    """``csound`` playing :data:`GRAINS_PATCH` in real time, owned by liveframe.

    Parameters
    ----------
    samplerate : int
        The device's rate in Hz (``--sample-rate``: the instrument has no rate of its own).
    hostapi : str
        The PortAudio host API liveframe plays on (``"JACK Audio Connection Kit"``,
        ``"ALSA"``, ...): Csound plays on the same backend (:func:`rtaudio_for`).
    port : int, optional
        UDP port for the grains (default: a free one).
    record : path, optional
        Also write what Csound plays to this WAV (16-bit mono, at ``samplerate``): written
        under a temporary name beside it and renamed once Csound has ended cleanly.
    client : str, optional
        JACK client name (default ``liveframe-csound-PID``).
    patch : path
        The instrument.

    Attributes
    ----------
    host, port : str, int
        Where to send the grains.
    command : list of str
        The command line (also logged).
    """

    def __init__(
        self,
        *,
        samplerate: int,
        hostapi: str,
        port: int | None = None,
        record: str | os.PathLike[str] | None = None,
        client: str | None = None,
        patch: str | os.PathLike[str] = GRAINS_PATCH,
    ) -> None:
        exe = csound_executable()
        self.patch = Path(patch)
        if not self.patch.is_file():
            raise ToolMissingError(f"{self.patch}: the Csound grain instrument is missing")
        if not samplerate > 0:
            raise ValueError(f"samplerate={samplerate!r} must be positive")
        self.samplerate = int(samplerate)
        self.hostapi = hostapi
        self.host = "127.0.0.1"
        self.port = int(port) if port else free_udp_port(self.host)
        self.record = Path(record) if record is not None else None
        self._tmp_record: Path | None = None
        self._warn = RateLimitedLog(log)  # Csound's complaints, one a second per kind
        if self.record is not None:
            r = self.record
            sweep_stale(r.parent)  # a killed run's half-written recording
            self._tmp_record = r.with_name(f"{temp_prefix(r.name)}{random_tail()}{r.suffix}")
        self.client = client or f"liveframe-csound-{os.getpid()}"
        cmd = [exe, *rtaudio_for(hostapi), f"--sample-rate={self.samplerate}", "-d",
               "-m0", f"--omacro:PORT={self.port}"]
        if "JACK" in hostapi:
            cmd.append(f"-+jack_client={self.client}")
        if self._tmp_record is not None:
            cmd.append(f"--omacro:WAV={self._tmp_record}")
        cmd.append(str(self.patch))
        self.command = cmd
        self._proc: subprocess.Popen[str] | None = None
        self._lines: collections.deque[str] = collections.deque(maxlen=40)
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    # ------------------------------------------------------------------------ lifetime
    @property
    def running(self) -> bool:
        """True while the process lives."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id (None before :meth:`start`)."""
        return self._proc.pid if self._proc is not None else None

    def output(self) -> str:
        """Csound's last lines of output."""
        return "".join(self._lines)

    def start(self, timeout: float = 15.0) -> CsoundProcess:
        """Start csound and wait until the instrument listens for grains.

        Raises
        ------
        DeviceError
            Csound ended or did not listen within ``timeout`` seconds (with its last
            lines: a rate JACK refuses, no sound card, a port in use); nothing is left
            running and no recording is left on disk.
        """
        log.info("starting Csound: %s", " ".join(self.command))
        self._proc = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        assert self._proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self._proc.stdout,),
                                        name="liveframe-csound-out", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._reader.join(2.0)
                why = (f"exited with status {self._proc.returncode}"
                       if self._proc.poll() is not None
                       else f"did not listen within {timeout:g} s")
                self.stop(keep_record=False)
                raise DeviceError(f"csound on {self.patch.name} {why} "
                                  f"({self.hostapi}, {self.samplerate} Hz): {self._why()}")
        return self

    def stop(self, timeout: float = 5.0, *, keep_record: bool = True) -> int | None:
        """End csound (SIGTERM, then SIGKILL after ``timeout`` s), reap it, finalise the
        recording; return its exit status (None if it never started). Idempotent."""
        p = self._proc
        if p is None:
            return None
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)  # its own session: csound and any child
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("csound did not end within %g s: killed", timeout)
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
                keep_record = False
        if self._reader is not None:
            self._reader.join(2.0)
        if p.stdout is not None:
            p.stdout.close()
        self._finish_record(keep_record)
        return p.returncode

    def _finish_record(self, keep: bool) -> None:
        tmp, self._tmp_record = self._tmp_record, None
        if tmp is None or self.record is None:
            return
        try:
            if keep and tmp.exists() and tmp.stat().st_size > 44:
                os.replace(tmp, self.record)
                log.info("Csound's output written to %s", self.record)
        finally:
            tmp.unlink(missing_ok=True)

    def __enter__(self) -> CsoundProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------ output
    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.append(line)
            if READY in line:
                self._ready.set()
            elif not self._ready.is_set():
                continue
            elif _trouble(line):  # e.g. "rtjack: xrun in real time audio", once an xrun
                text = _strip_ansi(line.strip())
                self._warn.warning(text[:24], f"csound: {text}")

    def _why(self) -> str:
        """The lines of Csound's output that say what went wrong, on one line."""
        lines = [ln.strip() for ln in self._lines if ln.strip()]
        picked = [ln for ln in lines if any(w in ln.lower() for w in
                                            ("error", "fail", "rtjack", "cannot", "unable",
                                             "not ", "could"))]
        text = " | ".join((picked or lines)[-3:])
        return _strip_ansi(text) or "no output"


def _trouble(line: str) -> bool:
    """A line of Csound's output worth a warning while it plays (not its closing tally)."""
    low = _strip_ansi(line).strip().lower()
    if low.startswith("0 errors in performance"):
        return False
    return "error" in low or "rtjack" in low


def _strip_ansi(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\x1b":
            j = text.find("m", i)
            i = j + 1 if j != -1 else len(text)
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def grains_wav_for(record: str | os.PathLike[str]) -> Path:
    """Where Csound's recording goes beside liveframe's own ``record``:
    ``played.wav`` -> ``played.csound.wav``."""
    r = Path(record)
    return r.with_name(f"{r.stem}.csound{r.suffix or '.wav'}")

