"""The OSC options of ``liveframe play`` and ``liveframe live``, and what they start.

``--osc-port``/``--osc-host`` start the control server
(:class:`~liveframe.control.server.ControlServer`), ``--osc-out`` the analysis out
(:class:`~liveframe.control.out.AnalysisSender`) and ``--csound`` the grain bridge
(:class:`~liveframe.control.out.CsoundBridge`). Bad values become one-line usage errors
that name the flag.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any, Protocol

from liveframe.control.out import AnalysisSender, CsoundBridge
from liveframe.control.params import Controls
from liveframe.control.server import DEFAULT_HOST, DEFAULT_PORT, ControlServer
from liveframe.core.pipeline import TickListener
from liveframe.core.spec import BrainSpec
from liveframe.errors import UsageError

log = logging.getLogger(__name__)

DEFAULT_CSOUND = "127.0.0.1:7770"
"""Where ``--csound`` without a value sends (``patches/liveframe-grains.csd``'s port)."""


class OscEngine(Protocol):
    """What :func:`start_osc` needs of an engine."""

    controls: Controls

    @property
    def spec(self) -> BrainSpec: ...

    def add_tick_listener(self, fn: TickListener) -> None: ...

    def stats(self) -> dict[str, Any]: ...


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


def parse_hostport(text: str, *, flag: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (or ``":PORT"``, ``"PORT"``) to ``(host, port)``; the host
    defaults to 127.0.0.1.

    Raises
    ------
    UsageError
        Naming ``flag``, when the port is not 1..65535.
    """
    host, _, port = text.rpartition(":")
    try:
        p = int(port)
    except ValueError:
        p = -1
    if not 0 < p < 65536:
        raise UsageError(f"{flag} {text!r} must be HOST:PORT with a port 1..65535")
    return host or DEFAULT_HOST, p


def start_osc(args: argparse.Namespace, engine: OscEngine) -> Callable[[], None] | None:
    """Start what the OSC flags ask for on ``engine``; return a closer (or None).

    The control server writes into ``engine.controls`` and answers status queries with
    ``engine.stats()`` besides the controls; the senders are added with
    ``engine.add_tick_listener``. On an error, what was started is closed again.

    Raises
    ------
    UsageError
        A bad ``--osc-port``, ``--osc-out`` or ``--csound`` value, naming the flag.
    """
    closers: list[Callable[[], None]] = []

    def close() -> None:
        for c in reversed(closers):
            c()

    port = args.osc_port
    if not 0 <= port < 65536:
        raise UsageError(f"--osc-port {port} must be 1..65535 (0 turns OSC control off)")
    try:
        if port:
            try:
                server = ControlServer(engine.controls, host=args.osc_host, port=port,
                                       status=engine.stats)
            except UsageError as e:
                raise UsageError(f"{e}; pick another with --osc-port") from e
            closers.append(server.start().close)
        if args.osc_out:
            host, p = parse_hostport(args.osc_out, flag="--osc-out")
            sender = _flagged("--osc-out", AnalysisSender, host, p)
            closers.append(sender.close)
            engine.add_tick_listener(sender)
            log.info("OSC analysis out to %s:%d", host, p)
        if args.csound:
            host, p = parse_hostport(args.csound, flag="--csound")
            bridge = _flagged("--csound", CsoundBridge, host, p,
                              sr=engine.spec.sample_rate, controls=engine.controls)
            closers.append(bridge.close)
            engine.add_tick_listener(bridge)
            log.info("Csound grain bridge to %s:%d", host, p)
    except BaseException:
        close()
        raise
    return close if closers else None


def _flagged(flag: str, make: Callable[..., Any], *a: Any, **kw: Any) -> Any:
    try:
        return make(*a, **kw)
    except UsageError as e:
        raise UsageError(f"{flag} {e}") from e
