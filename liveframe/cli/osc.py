"""The OSC and Csound options of ``liveframe play`` and ``liveframe live``, and what they
start.

``--osc-port``/``--osc-host`` start the control server
(:class:`~liveframe.control.server.ControlServer`), ``--osc-out`` the analysis out
(:class:`~liveframe.control.out.AnalysisSender`, on by default to 127.0.0.1:9001),
``--csound`` the grain bridge (:class:`~liveframe.control.out.CsoundBridge`): alone, to a
Csound that liveframe starts on its own device (:class:`~liveframe.live.csound.CsoundProcess`);
with ``HOST:PORT``, to a Csound already running there. ``--route`` says which outputs are
heard. Bad values become one-line usage errors that name the flag.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from liveframe.control.out import AnalysisSender, CsoundBridge
from liveframe.control.params import Controls
from liveframe.control.server import DEFAULT_HOST, DEFAULT_PORT, ControlServer
from liveframe.core.pipeline import TickListener
from liveframe.core.spec import BrainSpec
from liveframe.errors import UsageError
from liveframe.live.csound import CsoundProcess, grains_wav_for

log = logging.getLogger(__name__)

DEFAULT_CSOUND = "127.0.0.1:7770"
"""``patches/liveframe-grains.csd``'s own port, where a Csound started by hand listens."""

START_CSOUND = "start"
"""``--csound`` without a value: liveframe starts Csound itself."""

DEFAULT_OSC_OUT = "127.0.0.1:9001"
"""Where the analysis goes unless ``--osc-out`` says otherwise (the patches listen there)."""

ROUTES = ("own", "csound", "both")
"""``--route``: liveframe's own output, Csound's, or both."""


class OscEngine(Protocol):
    """What :func:`start_osc` needs of an engine (``--csound`` alone also reads its
    ``device.hostapi`` and ``samplerate`` where it has them)."""

    controls: Controls

    @property
    def spec(self) -> BrainSpec: ...

    def add_tick_listener(self, fn: TickListener) -> None: ...

    def stats(self) -> dict[str, Any]: ...


def add_osc_arguments(parser: argparse.ArgumentParser) -> None:
    """The OSC and Csound flags of ``liveframe play`` and ``liveframe live``."""
    g = parser.add_argument_group("OSC")
    g.add_argument("--osc-port", type=int, default=DEFAULT_PORT, metavar="PORT",
                   help=f"OSC control port (default {DEFAULT_PORT}; 0 turns the server off)")
    g.add_argument("--osc-host", default=DEFAULT_HOST, metavar="HOST",
                   help="address the control server listens on (default 127.0.0.1, this "
                   "machine only; 0.0.0.0 opens it to the network)")
    g.add_argument("--media-dir", action="append", default=None, metavar="DIR",
                   help="with --osc-host open to a network: a folder whose files /liveframe/"
                   "source and /liveframe/brain may open (repeatable; none: no files over "
                   "the network)")
    g.add_argument("--osc-out", metavar="HOST:PORT", default=None,
                   help="send level, brightness, motion and tick (0..1) every tick to "
                   f"HOST:PORT (default {DEFAULT_OSC_OUT}, where the patches listen; "
                   "none turns it off)")
    c = parser.add_argument_group("Csound")
    c.add_argument("--csound", metavar="HOST:PORT", nargs="?", const=START_CSOUND,
                   default=None,
                   help="play the grains through Csound: alone, liveframe starts csound with "
                   "patches/liveframe-grains.csd on its own audio device (JACK's rate on "
                   "JACK) and stops it on exit; with HOST:PORT, send them to a Csound "
                   f"already running that instrument there (its default: {DEFAULT_CSOUND})")
    c.add_argument("--route", choices=ROUTES, default=None,
                   help="what is heard: own (liveframe's output), csound, or both (default: "
                   "csound when liveframe starts Csound, both with --csound HOST:PORT, own "
                   "without --csound)")


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


def osc_out_target(args: argparse.Namespace) -> tuple[str, int] | None:
    """Where ``--osc-out`` sends the analysis: its ``HOST:PORT``, :data:`DEFAULT_OSC_OUT`
    when not given, None for ``none``."""
    text = args.osc_out if args.osc_out is not None else DEFAULT_OSC_OUT
    if text.strip().lower() in ("none", "off", "0"):
        return None
    return parse_hostport(text, flag="--osc-out")


def resolve_route(args: argparse.Namespace) -> str:
    """``--route`` with its default filled in (see :func:`add_osc_arguments`).

    Raises
    ------
    UsageError
        ``--route csound|both`` without ``--csound``, or ``--route own`` with it.
    """
    csound = getattr(args, "csound", None)
    route = getattr(args, "route", None)
    if route is None:
        if csound is None:
            return "own"
        return "csound" if csound == START_CSOUND else "both"
    if csound is None and route != "own":
        raise UsageError(f"--route {route} needs --csound (alone: liveframe starts Csound; "
                         "or HOST:PORT of a running one)")
    if csound is not None and route == "own":
        raise UsageError("--route own sends nothing to Csound: drop --csound, or route "
                         "csound or both")
    return route


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except OSError:
            return False


def _server_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``media_dirs`` for a control server open to a network: the ``--media-dir`` folders,
    an empty list when none is given (no file may be opened over the network then); none
    on loopback (this machine's own users may open any file)."""
    dirs = [str(Path(d).expanduser().resolve()) for d in (getattr(args, "media_dir", None) or [])]
    for d in dirs:
        if not Path(d).is_dir():
            raise UsageError(f"--media-dir {d}: no such folder")
    if _is_loopback(args.osc_host):
        return {}
    return {"media_dirs": dirs}


def start_osc(args: argparse.Namespace, engine: OscEngine) -> Callable[[], None] | None:
    """Start what the OSC and Csound flags ask for on ``engine``; return a closer (or None).

    The control server writes into ``engine.controls`` and answers status queries with
    ``engine.stats()`` besides the controls; the senders are added with
    ``engine.add_tick_listener``. ``--csound`` alone starts csound on the engine's device
    (``engine.device.hostapi``, ``engine.samplerate``; its recording beside ``--record``'s
    as ``NAME.csound.wav``) and waits until it listens; the closer stops it. ``--route``
    sets ``engine.controls.own_output``. On an error, what was started is closed again.

    Raises
    ------
    UsageError
        A bad ``--osc-port``, ``--osc-out``, ``--csound``, ``--route`` or ``--media-dir``
        value, naming the flag.
    DeviceError
        Csound could not start (with its own words).
    """
    closers: list[Callable[[], None]] = []
    listeners: list[TickListener] = []

    def close() -> None:
        for c in reversed(closers):
            c()

    port = args.osc_port
    if not 0 <= port < 65536:
        raise UsageError(f"--osc-port {port} must be 1..65535 (0 turns OSC control off)")
    route = resolve_route(args)
    out_to = osc_out_target(args)
    csound = getattr(args, "csound", None)
    if csound not in (None, START_CSOUND) and not csound.rpartition(":")[2].isdigit():
        raise UsageError(f"--csound {csound!r} must be HOST:PORT of a running Csound (to "
                         "have liveframe start one, give --csound alone, after the clip)")
    cs_to = (None if csound in (None, START_CSOUND)
             else parse_hostport(csound, flag="--csound"))
    try:
        if port:
            kw = _server_kwargs(args)
            try:
                server = ControlServer(engine.controls, host=args.osc_host, port=port,
                                       status=engine.stats, **kw)
            except UsageError as e:
                raise UsageError(f"{e}; pick another with --osc-port") from e
            closers.append(server.start().close)
        if out_to is not None:
            sender = _flagged("--osc-out", AnalysisSender, *out_to)
            closers.append(sender.close)
            listeners.append(sender)
            log.info("OSC analysis out to %s:%d", *out_to)
        if csound == START_CSOUND:
            proc = _start_csound(args, engine)
            closers.append(proc.stop)
            cs_to = (proc.host, proc.port)
        if cs_to is not None:
            bridge = _flagged("--csound", CsoundBridge, *cs_to,
                              sr=engine.spec.sample_rate, controls=engine.controls)
            closers.append(bridge.close)
            listeners.append(bridge)
            log.info("Csound grain bridge to %s:%d (heard: %s)", *cs_to, route)
        for fn in listeners:  # only once everything started
            engine.add_tick_listener(fn)
        engine.controls.own_output = route != "csound"
    except BaseException:
        close()
        raise
    return close if closers else None


def _start_csound(args: argparse.Namespace, engine: OscEngine) -> CsoundProcess:
    device = getattr(engine, "device", None)
    hostapi = str(getattr(device, "hostapi", ""))
    rate = int(getattr(engine, "samplerate", 0) or getattr(device, "samplerate", 0) or 48000)
    record = getattr(args, "record", None)
    proc = CsoundProcess(samplerate=rate, hostapi=hostapi,
                         record=grains_wav_for(record) if record else None)
    proc.start()
    log.info("Csound plays patches/liveframe-grains.csd on %s at %d Hz (pid %d)",
             hostapi or "the default output", rate, proc.pid)
    return proc


def _flagged(flag: str, make: Callable[..., Any], *a: Any, **kw: Any) -> Any:
    try:
        return make(*a, **kw)
    except UsageError as e:
        raise UsageError(f"{flag} {e}") from e
