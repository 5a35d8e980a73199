"""OSC test helpers, once for tests/test_osc.py and tests/test_osc_live.py.

Messages sent *to* the instrument are built with python-osc here (not with the package's
own builder), so the server is tested against an independent implementation. The fuzz
datagrams come from :mod:`liveframe.control.fuzz` (the benchmark uses them too).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from liveframe.core.pipeline import TickListener, TickPipeline

REPO = Path(__file__).resolve().parent.parent
GRAINS_CSD = REPO / "patches" / "liveframe-grains.csd"


def msg(address: str, *args: object, types: str | None = None) -> bytes:
    """One OSC message built by python-osc; ``types`` forces the type tags (e.g. "i")."""
    b = OscMessageBuilder(address)
    for i, a in enumerate(args):
        b.add_arg(a, types[i] if types else None)
    return b.build().dgram


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], bool], timeout: float = 5.0, *,
             every: Callable[[], object] | None = None) -> bool:
    """Poll ``cond`` until it holds or ``timeout`` seconds pass; return whether it held.

    ``every``, when given, is called before each poll (e.g. to resend a UDP datagram that
    a full socket buffer may have dropped).
    """
    end = time.monotonic() + timeout
    while True:
        if every is not None:
            every()
        if cond():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.02 if every is None else 0.1)


def udp_socket(*, rcvbuf: int = 1 << 20) -> socket.socket:
    """A UDP socket bound to a free port on 127.0.0.1, with a large receive buffer."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind(("127.0.0.1", 0))
    return s


def receive_pending(sock: socket.socket) -> list[bytes]:
    """Every datagram already waiting on ``sock``, without waiting for more."""
    sock.setblocking(False)
    out = []
    try:
        while True:
            out.append(sock.recv(65536))
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
    return out


def receive(sock: socket.socket, n: int, *, timeout: float = 5.0) -> list[bytes]:
    """Exactly ``n`` datagrams from ``sock`` (TimeoutError if they do not all come)."""
    sock.settimeout(timeout)
    try:
        return [sock.recv(65536) for _ in range(n)]
    finally:
        sock.settimeout(None)


def read_status(sock: socket.socket, to: tuple[str, int], *, timeout: float = 2.0) -> dict:
    """Ask ``to`` for ``/liveframe/status``; the replies as ``{key: value}``.

    Reads until the reply's last key (the controls come first, then the extras; the
    reply ends when no datagram follows within 0.2 s).
    """
    sock.sendto(msg("/liveframe/status"), to)
    got: dict[str, Any] = {}
    sock.settimeout(timeout)
    try:
        while True:
            m = OscMessage(sock.recv(65536))
            got[m.address.rsplit("/", 1)[1]] = m.params[0]
            sock.settimeout(0.2)
    except TimeoutError:
        pass
    finally:
        sock.settimeout(None)
    return got


class PipelineEngine:
    """The part of an engine that :func:`liveframe.cli.osc.start_osc` uses, on a real
    :class:`TickPipeline` driven by the test (no audio device): ``controls``, ``spec``,
    ``add_tick_listener`` and ``stats``."""

    def __init__(self, pipeline: TickPipeline, controls: Any) -> None:
        self.pipeline = pipeline
        self.controls = controls
        self.spec = pipeline.spec

    def add_tick_listener(self, fn: TickListener) -> None:
        self.pipeline.listeners.append(fn)

    def stats(self) -> dict[str, Any]:
        return {"ticks": self.pipeline.ticks, "brain": self.pipeline.brain.name}


class LineReader:
    """Reads a process's text output in a thread, so a test can wait for a line."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    def has(self, text: str) -> bool:
        return any(text in ln for ln in list(self.lines))

    def text(self) -> str:
        return "".join(self.lines)

    def join(self, timeout: float = 10.0) -> None:
        self._thread.join(timeout)


# -- real Csound --------------------------------------------------------------------------
def run_csound_with(feed: Callable[[int], object], tmp_path: Path,
                    seconds: float = 3.0) -> np.ndarray:
    """Start csound on the shipped instrument writing a WAV, call ``feed(port)`` once it
    listens, and return what it played (mono, 44100 Hz, float64)."""
    port = free_udp_port()
    wav = tmp_path / "csound.wav"
    cmd = ["csound", str(GRAINS_CSD), "-+rtaudio=null", "-odac", "-m4", f"--omacro:PORT={port}",
           f"--omacro:WAV={wav}", f"--smacro:DUR={seconds}"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert p.stdout is not None
        # wait until OSClisten has registered its address (grains sent before are lost):
        # the instrument says so once it has
        ready = "liveframe-grains: listening"
        for line in p.stdout:
            lines.append(line)
            if ready in line:
                break
        assert any(ready in ln for ln in lines), "".join(lines)
        feed(port)
        out = p.communicate(timeout=seconds + 10)[0]
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, "".join(lines) + out
    with wave.open(str(wav)) as w:
        sr = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768
        assert w.getnchannels() == 1 and sr == 44100
    return x


def spectrum_peak(x: np.ndarray, sr: int = 44100, *, freq: float = 450.0
                  ) -> tuple[float, float, float]:
    """Peak frequency, RMS, and the share of energy within 40 Hz of ``freq``, over the
    part of ``x`` louder than 0.01."""
    loud = np.nonzero(np.abs(x) > 1e-2)[0]
    assert loud.size, "silence"
    active = x[loud[0] : loud[-1] + 1]
    power = np.abs(np.fft.rfft(active * np.hanning(active.size))) ** 2
    f = np.fft.rfftfreq(active.size, 1 / sr)
    share = float(power[np.abs(f - freq) < 40].sum() / power.sum())
    return float(f[np.argmax(power)]), float(np.sqrt(np.mean(active**2))), share
