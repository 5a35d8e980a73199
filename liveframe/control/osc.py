"""OSC: the control server, the analysis out and the grain bridge to Csound.

- :class:`ControlServer` listens on UDP (127.0.0.1:9000 by default) for the addresses of
  :data:`ROUTES`, the one table of the instrument's address space (the README table and
  every patch in ``patches/`` follow it). Handlers only validate, clamp and store into
  :class:`~liveframe.control.params.Controls`; the producer reads the values once per tick.
  Unknown addresses, wrong types and malformed packets are counted, logged (rate-limited)
  and ignored: no exception leaves the server thread. Datagrams over
  :data:`MAX_DATAGRAM` bytes are refused unread, and the thread reads at most
  :data:`MAX_DATAGRAMS_PER_SECOND`, so a flood takes a bounded share of the interpreter
  from the producer and the audio callback (``benchmarks/bench_osc.py`` measures the
  underruns of a playing engine under it).
- :class:`AnalysisSender` is a tick listener that sends ``/liveframe/level``,
  ``/liveframe/frame/brightness``, ``/liveframe/frame/motion`` and ``/liveframe/tick``
  every tick to ``--osc-out HOST:PORT``.
- :class:`CsoundBridge` is a tick listener that sends every grain (granular mode) or every
  tick's output hop (ola, raw) as ``/liveframe/grain`` to a running Csound that plays
  ``patches/liveframe-grains.csd``.

Both senders use a non-blocking UDP socket and drop a datagram rather than wait: they run
in the producer thread, which must never block.
"""

from __future__ import annotations

import argparse
import logging
import math
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from pythonosc import osc_packet
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import BlockingOSCUDPServer

from liveframe.control.params import Controls
from liveframe.errors import UsageError
from liveframe.util.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
DEFAULT_CSOUND = "127.0.0.1:7770"
PREFIX = "/liveframe"
MAX_TEXT = 4096
"""Longest string accepted for a brain, mode or source (characters)."""
MAX_DATAGRAM = 8192
"""Largest datagram parsed (bytes): every valid message fits (a MAX_TEXT path is ~4.1 KB).
Bigger ones are refused unread, because python-osc scans strings byte by byte in Python: a
60 KB string holds the interpreter for ~5 ms, longer than a JACK period."""
GRAIN_MAX_SAMPLES = 4000
"""Most samples in one ``/liveframe/grain`` blob: liblo (Csound's OSC) reads 32 KiB."""
STATUS_REPLIES_PER_SECOND = 20.0
"""Status queries answered per second at most, so a flood is never reflected."""
MAX_DATAGRAMS_PER_SECOND = 20000
"""Datagrams the server thread reads per second at most. Beyond it the thread sleeps (and
lets go of the GIL) and the kernel drops the excess, so a flood as fast as a sender can go
takes a bounded share of the interpreter from the producer and the audio callback."""

Args = tuple[Any, ...]


# -- argument validation ------------------------------------------------------------------
def _one(args: Args, what: str) -> Any:
    if len(args) != 1:
        raise TypeError(f"takes one {what}, got {len(args)} arguments")
    return args[0]


def _number(args: Args) -> float:
    v = _one(args, "number")
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"takes a number, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{v!r} is not a finite number")
    return v


def _flag(args: Args) -> bool:
    v = _one(args, "0 or 1")
    if isinstance(v, bool):
        return v
    if not isinstance(v, int | float) or not math.isfinite(v):
        raise TypeError(f"takes 0 or 1, got {v!r}")
    return v != 0


def _text(args: Args) -> str:
    v = _one(args, "string")
    if not isinstance(v, str):
        raise TypeError(f"takes a string, got {type(v).__name__}")
    if not v or len(v) > MAX_TEXT or "\x00" in v:
        raise ValueError(f"string of {len(v)} characters must be 1..{MAX_TEXT}")
    return v


def _source(args: Args) -> str:
    v = _one(args, "path or camera index")
    if isinstance(v, int | float) and not isinstance(v, bool):
        if not (math.isfinite(v) and v >= 0 and v == int(v)):
            raise ValueError(f"camera index {v!r} must be a whole number >= 0")
        return str(int(v))
    return _text(args)


# -- the address table --------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    """One OSC address: its argument (as documented), what it does, and its handler.

    ``apply(controls, args)`` validates and stores; it raises ``TypeError`` or
    ``ValueError`` for a value it refuses (the server logs and ignores it).
    """

    address: str
    args: str
    help: str
    apply: Callable[[Controls, Args], Any]


ROUTES: tuple[Route, ...] = (
    Route(f"{PREFIX}/gain", "f", "output gain, 0..2 (clamped), smoothed",
          lambda c, a: c.set_gain(_number(a))),
    Route(f"{PREFIX}/mute", "i", "1 mutes, 0 unmutes (also after a panic)",
          lambda c, a: c.set_mute(_flag(a))),
    Route(f"{PREFIX}/panic", "", "mute at once (any arguments are ignored)",
          lambda c, a: c.panic()),
    Route(f"{PREFIX}/brain", "s", "hot-swap to a brain by name in brains/ or by path, "
          "crossfaded; an incompatible or unreadable one is refused",
          lambda c, a: c.request_brain(_text(a))),
    Route(f"{PREFIX}/mode", "s", "synthesis mode: ola, raw or granular",
          lambda c, a: c.set_mode(_text(a))),
    Route(f"{PREFIX}/freeze", "i", "1 holds the current frame, 0 follows the source",
          lambda c, a: c.set_freeze(_flag(a))),
    Route(f"{PREFIX}/source", "s|i", "switch the video source: a file path, or a camera "
          "index", lambda c, a: c.set_source(_source(a))),
    Route(f"{PREFIX}/grain/density", "f", "granular: children per grain, 0..4 (clamped)",
          lambda c, a: c.set_density(_number(a))),
    Route(f"{PREFIX}/grain/spread", "f", "granular: onset jitter, 0..4 (clamped)",
          lambda c, a: c.set_spread(_number(a))),
    Route(f"{PREFIX}/status", "[i]", "reply with one /liveframe/status/KEY VALUE message "
          "per setting, to the sender, or to the sender's host at port i if given",
          lambda c, a: _status_port(a)),
)
"""Every address the control server answers, in README order."""

DISPATCH: dict[str, Route] = {r.address: r for r in ROUTES}
STATUS = f"{PREFIX}/status"

ANALYSIS: tuple[tuple[str, str, str], ...] = (
    (f"{PREFIX}/level", "f", "RMS level of the tick's output in dBFS (-120..0)"),
    (f"{PREFIX}/frame/brightness", "f", "mean brightness of the frame the brain sees, 0..1"),
    (f"{PREFIX}/frame/motion", "f", "mean absolute change from the previous frame, 0..1"),
    (f"{PREFIX}/tick", "i", "the brain tick number"),
)
"""What ``--osc-out`` sends every tick."""


def _status_port(args: Args) -> int | None:
    if not args:
        return None
    v = _one(args, "port")
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 65536:
        raise ValueError(f"reply port {v!r} must be 1..65535")
    return int(v)


# -- the control server -------------------------------------------------------------------
def _build(address: str, *values: Any) -> bytes:
    b = OscMessageBuilder(address)
    for v in values:
        b.add_arg(v)
    return b.build().dgram


class _Server(BlockingOSCUDPServer):
    """python-osc's blocking UDP server, with our own datagram handling.

    One thread reads datagrams one at a time (a flood never spawns threads); every
    datagram goes to :meth:`ControlServer.handle_datagram`, which never raises.
    """

    owner: ControlServer
    max_packet_size = 65536  # socketserver reads 8192 bytes by default and truncates

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return True  # malformed packets are counted and logged by handle_datagram

    def finish_request(self, request: Any, client_address: Any) -> None:
        data, sock = request
        self.owner._throttle()
        for reply, to in self.owner.handle_datagram(data, client_address):
            try:
                sock.sendto(reply, to)
            except OSError as e:
                self.owner._log.warning("reply", f"OSC: reply to {to} failed: {e}")

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.owner._log.warning("bug", f"OSC: error handling a packet from {client_address}")
        log.debug("OSC handler error", exc_info=True)  # noqa: LOG014 - called from socketserver's except


class ControlServer:
    """Receive OSC controls on UDP and store them into ``controls``.

    Parameters
    ----------
    controls : Controls
        Where every handler writes.
    host, port : str, int
        Where to listen; port 0 picks a free port (see :attr:`address`).
    status : callable, optional
        Returns extra ``{key: value}`` for ``/liveframe/status`` (e.g. the engine's
        brain name, tick and underruns); errors in it are logged and ignored.
    max_rate : float
        Datagrams read per second at most (:data:`MAX_DATAGRAMS_PER_SECOND`); the excess
        waits in, and overflows from, the kernel's socket buffer.
    """

    def __init__(
        self,
        controls: Controls,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        status: Callable[[], dict[str, Any]] | None = None,
        max_rate: float = MAX_DATAGRAMS_PER_SECOND,
    ) -> None:
        if not max_rate > 0:
            raise ValueError(f"max_rate={max_rate!r} must be positive")
        self.controls = controls
        self.max_rate = float(max_rate)
        self.throttled = 0  # times the thread paused because datagrams came too fast
        self._window_end = 0.0
        self._window_n = 0
        self.status = status
        self._log = RateLimitedLog(log)
        self.handled = 0  # messages applied
        self.refused = 0  # known address, bad arguments
        self.unknown = 0  # address not in ROUTES
        self.malformed = 0  # datagrams that are not OSC
        self._status_tokens = STATUS_REPLIES_PER_SECOND
        self._status_time = time.monotonic()
        try:
            self._server = _Server((host, port), None)  # type: ignore[arg-type]
        except OSError as e:
            raise UsageError(
                f"OSC control port {host}:{port} cannot be opened ({e.strerror or e}); "
                "pick another with --osc-port"
            ) from e
        self._server.owner = self
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name="liveframe-osc", daemon=True,
        )
        self._thread.start()
        log.info("OSC control on %s:%d", *self.address)
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=2.0)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _throttle(self) -> None:
        """Called by the server thread before each datagram: at most ``max_rate`` a second,
        counted in 10 ms windows; over it, sleep to the window's end."""
        now = time.monotonic()
        if now >= self._window_end:
            self._window_end = now + 0.01
            self._window_n = 0
        self._window_n += 1
        if self._window_n > self.max_rate * 0.01:
            self.throttled += 1
            self._log.warning("flood", f"OSC: more than {self.max_rate:,.0f} datagrams a "
                              "second; the excess is dropped")
            time.sleep(max(0.0, self._window_end - now))
            self._window_end = time.monotonic() + 0.01
            self._window_n = 1

    # -- the one entry point for a datagram, unit-testable with raw bytes ------------------
    def handle_datagram(
        self, data: bytes, client: tuple[str, int] = ("127.0.0.1", 0)
    ) -> list[tuple[bytes, tuple[str, int]]]:
        """Apply every message of one datagram; return the replies to send.

        Never raises: bad input is counted, logged (rate-limited) and ignored. Bundle
        time tags are ignored (messages apply at once). A datagram over
        :data:`MAX_DATAGRAM` bytes is counted as malformed without being parsed.
        """
        if len(data) > MAX_DATAGRAM:
            self.malformed += 1
            self._log.warning("too-big", f"OSC: ignored a datagram of {len(data)} bytes from "
                              f"{client[0]}:{client[1]} (at most {MAX_DATAGRAM})")
            return []
        try:
            messages = [m.message for m in osc_packet.OscPacket(data).messages]
        except Exception as e:  # noqa: BLE001 - any parse failure: a malformed datagram
            self.malformed += 1
            self._log.warning("malformed", f"OSC: ignored a malformed packet of {len(data)} "
                              f"bytes from {client[0]}:{client[1]} ({type(e).__name__})")
            return []
        replies: list[tuple[bytes, tuple[str, int]]] = []
        for msg in messages:
            try:
                address, args = msg.address, tuple(msg.params)
            except Exception as e:  # noqa: BLE001 - python-osc parses lazily in places
                self.malformed += 1
                self._log.warning("malformed", f"OSC: ignored a malformed message ({e})")
                continue
            route = DISPATCH.get(address)
            if route is None:
                self.unknown += 1
                self._log.warning("unknown", f"OSC: ignored unknown address {address[:80]!r}")
                continue
            try:
                result = route.apply(self.controls, args)
            except (TypeError, ValueError) as e:
                self.refused += 1
                self._log.warning(address, f"OSC: {address} refused: {e}")
                continue
            except Exception as e:
                self.refused += 1
                self._log.warning("bug", f"OSC: {address} failed: {type(e).__name__}: {e}")
                log.debug("OSC handler failure", exc_info=True)
                continue
            self.handled += 1
            if address == STATUS:
                to = client if result is None else (client[0], result)
                replies.extend((d, to) for d in self._status_replies())
        return replies

    def _status_replies(self) -> list[bytes]:
        now = time.monotonic()
        self._status_tokens = min(
            STATUS_REPLIES_PER_SECOND,
            self._status_tokens + (now - self._status_time) * STATUS_REPLIES_PER_SECOND,
        )
        self._status_time = now
        if self._status_tokens < 1:
            self._log.warning("status", "OSC: status queries come too fast; some ignored")
            return []
        self._status_tokens -= 1
        return [_build(f"{STATUS}/{k}", v) for k, v in self.state().items()]

    def state(self) -> dict[str, Any]:
        """What ``/liveframe/status`` reports: the controls, then the status extras."""
        st: dict[str, Any] = dict(self.controls.state())
        err = getattr(self.controls, "last_error", None)
        st["refused"] = str(err)[:MAX_TEXT] if err else ""  # why a brain swap was refused
        st["osc_handled"] = self.handled
        st["osc_ignored"] = self.refused + self.unknown + self.malformed
        if self.status is not None:
            try:
                extra = self.status()
            except Exception as e:  # noqa: BLE001 - status is a courtesy, never fatal
                self._log.warning("status-extra", f"OSC: status failed: {e}")
                extra = {}
            for k, v in extra.items():
                if isinstance(v, bool):
                    v = int(v)
                if isinstance(v, int | float | str):
                    st[k] = v
        return st


# -- senders ------------------------------------------------------------------------------
def _pad(b: bytes) -> bytes:
    return b + b"\0" * (4 - len(b) % 4)


def parse_hostport(text: str, *, flag: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (or ``":PORT"``, ``"PORT"``) to ``(host, port)``."""
    host, _, port = text.rpartition(":")
    try:
        p = int(port)
    except ValueError:
        p = -1
    if not 0 < p < 65536:
        raise UsageError(f"{flag} {text!r} must be HOST:PORT with a port 1..65535")
    return host or DEFAULT_HOST, p


class _UdpSender:
    """A non-blocking UDP socket that drops a datagram rather than wait."""

    def __init__(self, host: str, port: int, *, flag: str) -> None:
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except OSError as e:
            raise UsageError(f"{flag} {host}:{port}: unknown host ({e})") from e
        self.target = info[4]
        self._sock = socket.socket(info[0], socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self.sent = 0
        self.dropped = 0

    def send(self, data: bytes) -> None:
        try:
            self._sock.sendto(data, self.target)
            self.sent += 1
        except OSError:  # full buffer, nobody listening (ICMP refused), too big: drop
            self.dropped += 1

    def close(self) -> None:
        self._sock.close()


class AnalysisSender:
    """Tick listener: level, brightness, motion and tick number to ``host:port``.

    Four plain messages (not a bundle: Pd's ``[oscparse]`` reads messages) per tick.
    """

    def __init__(self, host: str, port: int) -> None:
        self._udp = _UdpSender(host, port, flag="--osc-out")
        self._addr = {a: _pad(a.encode()) for a, _, _ in ANALYSIS}
        self._prev: npt.NDArray[np.int16] | None = None

    @property
    def sent(self) -> int:
        return self._udp.sent

    def _f(self, address: str, v: float) -> None:
        self._udp.send(self._addr[address] + b",f\0\0" + struct.pack(">f", v))

    def __call__(
        self,
        tick: int,
        frame: npt.NDArray[np.uint8],
        block: npt.NDArray[np.float32],
        out: npt.NDArray[np.float32],
        grains: Sequence[Any] | None,
    ) -> None:
        rms = float(np.sqrt(np.mean(np.square(out, dtype=np.float64)))) if out.size else 0.0
        level = max(-120.0, 20 * math.log10(rms)) if rms > 1e-6 else -120.0
        f = frame.astype(np.int16)
        brightness = float(f.mean()) / 255.0 if f.size else 0.0
        if self._prev is None or self._prev.shape != f.shape:
            motion = 0.0
        else:
            motion = float(np.abs(f - self._prev).mean()) / 255.0
        self._prev = f
        self._f(f"{PREFIX}/level", level)
        self._f(f"{PREFIX}/frame/brightness", brightness)
        self._f(f"{PREFIX}/frame/motion", motion)
        self._udp.send(self._addr[f"{PREFIX}/tick"] + b",i\0\0" + struct.pack(">i", tick))

    def close(self) -> None:
        self._udp.close()


GRAIN_ADDRESS = f"{PREFIX}/grain"
_GRAIN_HEAD = _pad(GRAIN_ADDRESS.encode()) + _pad(b",iiifib")


def grain_message(
    pos: int, samples: npt.NDArray[np.floating[Any]], *, sr: int, amp: float, env: int
) -> bytes:
    """One ``/liveframe/grain i pos, i n, i sr, f amp, i env, b samples`` datagram.

    ``samples`` go as little-endian float64 (Csound's MYFLT), at most
    :data:`GRAIN_MAX_SAMPLES`. ``pos`` wraps at 2**31 samples (27 hours at 22050 Hz).
    """
    x = np.ascontiguousarray(samples[:GRAIN_MAX_SAMPLES], dtype="<f8").tobytes()
    pos = (pos + 2**31) % 2**32 - 2**31
    return _GRAIN_HEAD + struct.pack(">iiifii", pos, len(x) // 8, sr, amp, env, len(x)) + x


class CsoundBridge:
    """Tick listener: every grain (granular) or output hop (ola, raw) to a Csound.

    The grain positions reproduce :class:`~liveframe.core.synth.GranularSynth`: the parent
    starts ``(L - H) // 2`` before the tick, each grain ``onset`` samples after that; a
    grain brain's whole parent block is already windowed (``env`` 0), every other grain
    gets a Hann envelope in Csound (``env`` 1), all scaled by the synth's normalisation.
    The hop of ola/raw mode plays as is at the tick's position.

    Parameters
    ----------
    host, port : str, int
        Where Csound listens (``patches/liveframe-grains.csd``: port 7770).
    sr : int
        The brain's sample rate in Hz.
    controls : Controls, optional
        When given, grains carry the gain (0 when muted) so Csound follows mute and panic.
    """

    def __init__(
        self, host: str, port: int, *, sr: int, controls: Controls | None = None
    ) -> None:
        self._udp = _UdpSender(host, port, flag="--csound")
        self.sr = int(sr)
        self.controls = controls
        self._warned = False

    @property
    def sent(self) -> int:
        return self._udp.sent

    @property
    def dropped(self) -> int:
        return self._udp.dropped

    def _gain(self) -> float:
        c = self.controls
        if c is None:
            return 1.0
        return 0.0 if c.mute else float(c.gain)

    def __call__(
        self,
        tick: int,
        frame: npt.NDArray[np.uint8],
        block: npt.NDArray[np.float32],
        out: npt.NDArray[np.float32],
        grains: Sequence[Any] | None,
    ) -> None:
        H = out.shape[0]
        g = self._gain()
        if not grains:
            self._udp.send(grain_message(tick * H, out, sr=self.sr, amp=g, env=0))
            return
        L = block.shape[0]
        windowed = L == 2 * H  # a grain brain's block is Hann-windowed by its training
        norm = 1.0 / math.sqrt(sum(gr.amplitude**2 for gr in grains))
        start = tick * H - (L - H) // 2
        for gr in grains:
            seg = block[gr.offset : gr.offset + gr.duration]
            if seg.shape[0] > GRAIN_MAX_SAMPLES and not self._warned:
                self._warned = True
                log.warning("Csound bridge: grains longer than %d samples are cut",
                            GRAIN_MAX_SAMPLES)
            whole = gr.offset == 0 and gr.duration == L
            env = 0 if (whole and windowed) else 1
            self._udp.send(grain_message(start + gr.onset, seg, sr=self.sr,
                                         amp=g * gr.amplitude * norm, env=env))

    def close(self) -> None:
        self._udp.close()


# -- command line -------------------------------------------------------------------------
def add_osc_arguments(parser: argparse.ArgumentParser) -> None:
    """The OSC flags of ``liveframe play`` and ``liveframe live``."""
    g = parser.add_argument_group("OSC")
    g.add_argument("--osc-port", type=int, default=DEFAULT_PORT, metavar="PORT",
                   help=f"OSC control port (default {DEFAULT_PORT}; 0 turns the server off)")
    g.add_argument("--osc-host", default=DEFAULT_HOST, metavar="HOST",
                   help="address the control server listens on (default 127.0.0.1, this "
                   "machine only; 0.0.0.0 opens it to the network)")
    g.add_argument("--osc-out", metavar="HOST:PORT", default=None,
                   help="send level, brightness, motion and tick every tick to HOST:PORT")
    g.add_argument("--csound", metavar="HOST:PORT", nargs="?", const=DEFAULT_CSOUND,
                   default=None, help="send every grain to a Csound running "
                   f"patches/liveframe-grains.csd (default {DEFAULT_CSOUND})")


def start_osc(args: argparse.Namespace, engine: Any) -> Callable[[], None] | None:
    """Start what the OSC flags ask for on ``engine``; return a closer (or None).

    ``engine`` needs ``controls``, ``add_tick_listener(fn)`` and the brain's sample
    rate (``engine.brain.spec.sample_rate``); ``engine.stats()`` feeds the status reply
    when it exists.
    """
    closers: list[Callable[[], None]] = []
    controls: Controls = engine.controls
    port = getattr(args, "osc_port", DEFAULT_PORT)
    if port is not None and not 0 <= port < 65536:
        raise UsageError(f"--osc-port {port} must be 1..65535 (0 turns OSC control off)")
    try:
        if port:
            stats = getattr(engine, "stats", None)
            server = ControlServer(
                controls, host=getattr(args, "osc_host", DEFAULT_HOST), port=port,
                status=(lambda: _status_extra(stats())) if callable(stats) else None,
            ).start()
            closers.append(server.close)
        if getattr(args, "osc_out", None):
            host, p = parse_hostport(args.osc_out, flag="--osc-out")
            sender = AnalysisSender(host, p)
            engine.add_tick_listener(sender)
            closers.append(sender.close)
            log.info("OSC analysis out to %s:%d", host, p)
        if getattr(args, "csound", None):
            host, p = parse_hostport(args.csound, flag="--csound")
            bridge = CsoundBridge(host, p, sr=_brain_rate(engine), controls=controls)
            engine.add_tick_listener(bridge)
            closers.append(bridge.close)
            log.info("Csound grain bridge to %s:%d", host, p)
    except BaseException:
        for c in reversed(closers):
            c()
        raise
    if not closers:
        return None

    def close() -> None:
        for c in reversed(closers):
            c()

    return close


def _brain_rate(engine: Any) -> int:
    for path in ("brain.spec.sample_rate", "spec.sample_rate", "sample_rate"):
        obj: Any = engine
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
            return int(obj)
        except AttributeError:
            continue
    from liveframe import constants as C

    return C.SAMPLE_RATE


def _status_extra(stats: Any) -> dict[str, Any]:
    if isinstance(stats, dict):
        return stats
    if hasattr(stats, "__dict__"):
        return dict(vars(stats))
    return {}
