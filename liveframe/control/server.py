"""The OSC control server: one address table, handlers that only validate and store.

:class:`ControlServer` listens on UDP (127.0.0.1:9000 by default) for the addresses of
:data:`ROUTES`, the one table of the instrument's address space (the README table and
every patch in ``patches/`` follow it). Handlers only validate, clamp and store into
:class:`~liveframe.control.params.Controls`; the producer reads the values once per tick.
Unknown addresses, wrong types and malformed packets are counted, logged (rate-limited)
and ignored: no exception leaves the server thread. Datagrams over :data:`MAX_DATAGRAM`
bytes are refused unread, and the thread reads at most :data:`MAX_DATAGRAMS_PER_SECOND`,
so a flood takes a bounded share of the interpreter from the producer and the audio
callback (``benchmarks/bench_osc.py`` measures the underruns of a playing engine under it).

Threads: the server owns one thread (started by :meth:`ControlServer.start`, joined by
:meth:`ControlServer.close`); it writes only into ``controls`` and its own counters.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from pythonosc import osc_packet
from pythonosc.osc_server import BlockingOSCUDPServer

from liveframe.control.messages import PREFIX, STATUS, status_message
from liveframe.control.params import Controls
from liveframe.errors import UsageError
from liveframe.util.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
MAX_TEXT = 4096
"""Longest string accepted for a brain, mode or source (characters)."""
MAX_DATAGRAM = 8192
"""Largest datagram parsed (bytes): every valid message fits (a MAX_TEXT path is ~4.1 KB).
Bigger ones are refused unread, because python-osc scans strings byte by byte in Python: a
60 KB string holds the interpreter for ~5 ms, longer than a JACK period."""
STATUS_REPLIES_PER_SECOND = 20.0
"""Status queries answered per second at most, so a flood is never reflected."""
MAX_DATAGRAMS_PER_SECOND = 20000
"""Datagrams the server thread reads per second at most. Beyond it the thread sleeps (and
lets go of the GIL) and the kernel drops the excess, so a flood as fast as a sender can go
takes a bounded share of the interpreter from the producer and the audio callback."""

Args = tuple[Any, ...]
Reply = tuple[bytes, tuple[str, int]]


# -- argument checks: each returns the value or raises TypeError/ValueError naming it -------
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


def _status_port(args: Args) -> int | None:
    if not args:
        return None
    v = _one(args, "port")
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 65536:
        raise ValueError(f"reply port {v!r} must be 1..65535")
    return int(v)


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
    Route(STATUS, "[i]", "reply with one /liveframe/status/KEY VALUE message per setting, "
          "to the sender, or to the sender's host at port i if given",
          lambda c, a: _status_port(a)),
)
"""Every address the control server answers, in README order."""

DISPATCH: dict[str, Route] = {r.address: r for r in ROUTES}


# -- the server -------------------------------------------------------------------------
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
        owner = self.owner
        owner._throttle()
        for reply, to in owner.handle_datagram(data, client_address):
            try:
                sock.sendto(reply, to)
            except OSError as e:
                owner._log.warning("reply", f"OSC: reply to {to} failed: {e}")

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
        ``stats()``: brain name, ticks, underruns); only its int, float, str and bool
        values are sent, and errors in it are logged and ignored.
    max_rate : float
        Datagrams read per second at most (:data:`MAX_DATAGRAMS_PER_SECOND`); the excess
        waits in, and overflows from, the kernel's socket buffer.

    Raises
    ------
    UsageError
        ``host:port`` cannot be opened (taken, or not this machine's address).
    ValueError
        ``max_rate`` is not positive.

    Attributes
    ----------
    handled, refused, unknown, malformed, throttled : int
        Messages applied; refused (known address, bad arguments); with an address not in
        :data:`ROUTES`; datagrams that are not OSC (or too big); times the thread paused
        because datagrams came too fast. Written by the server thread only.
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
        self.status = status
        self.max_rate = float(max_rate)
        self.handled = 0
        self.refused = 0
        self.unknown = 0
        self.malformed = 0
        self.throttled = 0
        self._window_end = 0.0
        self._window_n = 0
        self._log = RateLimitedLog(log)
        self._status_tokens = STATUS_REPLIES_PER_SECOND
        self._status_time = time.monotonic()
        try:
            self._server = _Server((host, port), None)  # type: ignore[arg-type]
        except OSError as e:
            raise UsageError(
                f"OSC control port {host}:{port} cannot be opened ({e.strerror or e})"
            ) from e
        self._server.owner = self
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> Self:
        """Start the server thread (:meth:`close` joins it)."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name="liveframe-osc", daemon=True,
        )
        self._thread.start()
        log.info("OSC control on %s:%d", *self.address)
        return self

    def close(self) -> None:
        """Stop and join the server thread, and close the socket."""
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
    ) -> list[Reply]:
        """Apply every message of one datagram; return the replies to send.

        Never raises: bad input is counted, logged (rate-limited) and ignored. Bundle
        time tags are ignored (messages apply at once). A datagram over
        :data:`MAX_DATAGRAM` bytes is counted as malformed without being parsed.

        Parameters
        ----------
        data : bytes
            One UDP datagram: a message or a bundle.
        client : (str, int)
            Its sender, where status replies go.

        Returns
        -------
        list of (bytes, (str, int))
            Datagrams to send, and where to.
        """
        where = f"{client[0]}:{client[1]}"
        if len(data) > MAX_DATAGRAM:
            self.malformed += 1
            self._log.warning("too-big", f"OSC: ignored a datagram of {len(data)} bytes from "
                              f"{where} (at most {MAX_DATAGRAM})")
            return []
        try:
            messages = [m.message for m in osc_packet.OscPacket(data).messages]
        except Exception as e:  # noqa: BLE001 - any parse failure: a malformed datagram
            self.malformed += 1
            self._log.warning("malformed", f"OSC: ignored a malformed packet of {len(data)} "
                              f"bytes from {where} ({type(e).__name__})")
            return []
        replies: list[Reply] = []
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
        return [status_message(k, v) for k, v in self.state().items()]

    def state(self) -> dict[str, int | float | str]:
        """What ``/liveframe/status`` reports: the controls, then the status extras.

        Returns
        -------
        dict
            ``gain``, ``mute``, ``freeze``, ``mode``, ``density``, ``spread``, ``source``
            (:meth:`Controls.state <liveframe.control.params.Controls.state>`),
            ``refused`` (why the last brain swap was refused, or ""), ``osc_handled``,
            ``osc_ignored``, then the scalar values of ``status()``.
        """
        st: dict[str, int | float | str] = dict(self.controls.state())
        err = self.controls.last_error
        st["refused"] = str(err)[:MAX_TEXT] if err else ""
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
