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

Datagrams are split into messages here (:func:`split_packet`), not by python-osc's bundle
parser: that one logs a line for every bundle element it cannot identify (an 8 KB bundle of
empty elements: 2,044 lines) and loops for ever on an element of negative size. A message
with a type tag python-osc does not read is refused whole before python-osc sees it (it
would log a line per tag). What python-osc still logs is rate-limited
(:class:`~liveframe.util.ratelog.RateLimitFilter` on the root logger, which it logs to), and
our own lines are at most one per kind a second: the log grows by a bounded number of lines
a second whatever arrives.

Path policy: a server given ``media_dirs`` (one that listens beyond loopback) opens brains
only from the brain folders and ``media_dirs``, and sources only from ``media_dirs`` (camera
indices stay allowed); every other path is refused with the same words whether or not it
exists (:class:`PathPolicy`).

Threads: the server owns one thread (started by :meth:`ControlServer.start`, joined by
:meth:`ControlServer.close`); it writes only into ``controls`` and its own counters.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import pythonosc
from pythonosc.osc_message import OscMessage
from pythonosc.osc_server import BlockingOSCUDPServer

from liveframe.control.messages import PREFIX, STATUS, status_message
from liveframe.control.params import Controls
from liveframe.errors import UsageError
from liveframe.util.ratelog import RateLimitedLog, RateLimitFilter

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

MAX_BUNDLE_DEPTH = 8
"""Bundles nested deeper than this are refused (a datagram is malformed)."""
MAX_BUNDLE_ELEMENTS = 256
"""Bundle elements (messages and bundles, all levels) one datagram may carry; more and it
is malformed whole. Max and Pd bundle a few; 8 KB could hold 1,000 tiny messages, each
parsed and dispatched in Python while the audio threads wait for the interpreter."""

Args = tuple[Any, ...]
Reply = tuple[bytes, tuple[str, int]]

_BUNDLE = b"#bundle\0"
_TAGS_READ = b"ihfdsbrmtTFN[]"  # the type tags python-osc reads (osc_message.py, 1.10)
_PYTHONOSC_DIR = os.path.dirname(pythonosc.__file__) + os.sep


# -- python-osc's own log lines, rate-limited ---------------------------------------------
def _from_pythonosc(record: logging.LogRecord) -> bool:
    return record.pathname.startswith(_PYTHONOSC_DIR)


PYTHONOSC_LOG_FILTER = RateLimitFilter(_from_pythonosc)
"""The filter on the root logger that holds python-osc's lines to one per kind a second
(python-osc logs with ``logging.warning``, on the root logger; installed by the first
:class:`ControlServer`)."""


def _limit_pythonosc_logging() -> None:
    root = logging.getLogger()
    if PYTHONOSC_LOG_FILTER not in root.filters:
        root.addFilter(PYTHONOSC_LOG_FILTER)


# -- one datagram into messages -----------------------------------------------------------
def split_packet(data: bytes) -> list[bytes]:
    """The messages of one datagram (a message, or a bundle of them), in order.

    Iterative (no recursion), bounded by the datagram's size and :data:`MAX_BUNDLE_DEPTH`,
    and silent: it logs nothing.

    Raises
    ------
    ValueError
        Not a message or bundle; a bundle without its time tag, nested deeper than
        :data:`MAX_BUNDLE_DEPTH`, with an element size that is negative or runs past the
        end, or an element that is neither a message nor a bundle (an empty one, say); more
        than :data:`MAX_BUNDLE_ELEMENTS` elements; a message with a type tag python-osc
        does not read.
    """
    found: list[bytes] = []
    stack: list[tuple[bytes, int]] = [(data, 0)]
    count = 0
    while stack:
        d, depth = stack.pop()
        if d[:1] == b"/":
            _check_tags(d)
            found.append(d)
            continue
        if not d.startswith(_BUNDLE):
            raise ValueError(f"{d[:8]!r} is neither an OSC message nor a bundle")
        if depth >= MAX_BUNDLE_DEPTH:
            raise ValueError(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
        if len(d) < 16:
            raise ValueError("a bundle without its time tag")
        elements = []
        i = 16
        while i < len(d):
            if i + 4 > len(d):
                raise ValueError("a bundle element cut short")
            (size,) = struct.unpack_from(">i", d, i)
            i += 4
            if not 0 <= size <= len(d) - i:
                raise ValueError(f"a bundle element of {size} bytes at byte {i - 4} of "
                                 f"{len(d)}")
            if (d[i : i + 1] if size else b"") not in (b"/", b"#"):  # refused at once
                what = "an empty bundle element" if not size else f"{d[i : i + 8]!r}"
                raise ValueError(f"{what} is neither an OSC message nor a bundle")
            count += 1
            if count > MAX_BUNDLE_ELEMENTS:
                raise ValueError(f"more than {MAX_BUNDLE_ELEMENTS} bundle elements")
            elements.append(d[i : i + size])
            i += size
        stack.extend((e, depth + 1) for e in reversed(elements))
    return found


def _check_tags(d: bytes) -> None:
    """Refuse a message whose type tags python-osc would skip (logging a line each)."""
    end = d.find(b"\0")
    i = (end // 4 + 1) * 4 if end >= 0 else len(d)
    if i >= len(d):
        return  # no type tags: no arguments
    stop = d.find(b"\0", i)
    tags = d[i : stop if stop >= 0 else len(d)]
    if tags[:1] == b"," and tags[1:].translate(None, _TAGS_READ):
        raise ValueError(f"unknown type tag(s) {tags[1:].translate(None, _TAGS_READ)[:8]!r}")


# -- where /brain and /source may open files ------------------------------------------------
class PolicyRefusal(ValueError):
    """A path the server's :class:`PathPolicy` does not open (the same words whether or
    not it exists)."""


def _real(p: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(p))


def _inside(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


class PathPolicy:
    """Which files ``/liveframe/brain`` and ``/liveframe/source`` may name.

    Paths are compared after ``os.path.realpath`` (``..`` and symbolic links resolved),
    relative ones against the working folder. A brain is a name among
    :func:`~liveframe.core.brain.available_brains` or a path inside the brain folders (the
    shipped ``brains`` and ``./brains``, as the name lookup searches) or inside
    ``media_dirs``; a source is a camera index or a path inside ``media_dirs``. An accepted
    path is stored resolved, so the engine opens the very file that was checked.

    Parameters
    ----------
    media_dirs : sequence of path-like
        The folders a sender may name files in (none: only brains by name or in the brain
        folders, and cameras).
    """

    def __init__(self, media_dirs: Sequence[str | os.PathLike[str]]) -> None:
        from liveframe.core.shipped import shipped_folder

        self.media_dirs = tuple(_real(d) for d in media_dirs)
        self.brain_dirs = (_real(shipped_folder("brains")), _real("brains"), *self.media_dirs)

    def brain(self, v: str) -> str:
        """The brain to load for ``v``, resolved; PolicyRefusal if it is outside."""
        from liveframe.core.brain import available_brains

        if os.sep not in v and "/" not in v and not v.endswith(".onnx"):
            found = available_brains().get(v)  # a name: never a file in the working folder
            path = _real(found) if found is not None else None
        else:
            path = _real(v)
        if path is None or not _inside(path, self.brain_dirs):
            raise PolicyRefusal(f"{v[:200]!r}: refused: this server loads brains only by name or "
                                "from its brain and media folders; the current brain keeps "
                                "playing")
        return path

    def source(self, v: str) -> str:
        """The source to open for ``v`` (a camera index as it is, a path resolved);
        PolicyRefusal if it is a path outside the media folders."""
        if v.strip().isdigit():
            return v
        path = _real(v)
        if not _inside(path, self.media_dirs):
            raise PolicyRefusal(f"{v[:200]!r}: refused: this server opens sources only from its "
                                "media folders (or a camera by index); the current source "
                                "keeps playing")
        return path


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
BRAIN = f"{PREFIX}/brain"
SOURCE = f"{PREFIX}/source"


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
    media_dirs : sequence of path-like, optional
        None (the default, for a server on loopback): ``/liveframe/brain`` and
        ``/liveframe/source`` may name any file the process can read. Given (for a server
        that listens beyond loopback): only what :class:`PathPolicy` allows; a refusal is
        counted as refused, logged, and reported in the status's ``refused``.

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
        media_dirs: Sequence[str | os.PathLike[str]] | None = None,
    ) -> None:
        if not max_rate > 0:
            raise ValueError(f"max_rate={max_rate!r} must be positive")
        self.policy = PathPolicy(media_dirs) if media_dirs is not None else None
        _limit_pythonosc_logging()
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
        if self.policy is not None:
            log.info("OSC: brains only by name or from %s; sources only from %s",
                     ", ".join(self.policy.brain_dirs), ", ".join(self.policy.media_dirs)
                     or "no folder (cameras only)")
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
        time tags are ignored (messages apply at once, in the order they come). A datagram
        over :data:`MAX_DATAGRAM` bytes is counted as malformed without being parsed; one
        that :func:`split_packet` refuses is malformed whole (none of its messages apply).

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
            messages = [OscMessage(d) for d in split_packet(data)]
        except Exception as e:  # noqa: BLE001 - any parse failure: a malformed datagram
            self.malformed += 1
            self._log.warning("malformed", f"OSC: ignored a malformed packet of {len(data)} "
                              f"bytes from {where} ({type(e).__name__}: {str(e)[:120]})")
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
                if self.policy is not None:
                    args = self._police(address, args)
                result = route.apply(self.controls, args)
            except PolicyRefusal as e:
                self.refused += 1
                self.controls.last_error = str(e)
                self._log.warning(address, f"OSC: {address} {e}")
                continue
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

    def _police(self, address: str, args: Args) -> Args:
        """``args`` of a brain or source request as the policy lets them through (the path
        resolved), or PolicyRefusal; other addresses' as they are."""
        policy = self.policy
        assert policy is not None
        if address == BRAIN:
            return (policy.brain(_text(args)),)
        if address == SOURCE:
            return (policy.source(_source(args)),)
        return args

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
            ``refused`` (why the last brain or source request was refused, or "" once a
            later one was accepted), ``osc_handled``, ``osc_ignored``, then the scalar
            values of ``status()``, which override the controls' (a live engine's
            ``source`` and ``brain`` are what plays, not what was asked for).
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
