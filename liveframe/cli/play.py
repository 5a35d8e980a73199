"""``liveframe play`` and ``liveframe live``: options, checks, and the play loop.

Both commands build a :class:`~liveframe.live.engine.Engine` (a file on the brain clock,
or a camera), start the OSC options (:mod:`liveframe.cli.osc`), show the monitor when
there is a display, and play until the source ends, ``--seconds`` pass, the window closes
or a stop signal comes. Ctrl-C and SIGTERM set a flag that is read where stopping is safe,
so the recording is finalised and the device closed; a second Ctrl-C raises as usual.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from liveframe import constants as C
from liveframe.cli.options import (
    add_phase_argument,
    bounded_float,
    bounded_int,
    camera_arg,
    seed_arg,
)
from liveframe.cli.osc import add_osc_arguments, start_osc
from liveframe.control.params import GAIN_MAX, Controls
from liveframe.core.brain import Brain, resolve_brain_path
from liveframe.core.media import check_clip
from liveframe.errors import ParamError, UsageError
from liveframe.live.capture import Capture, OpenCVReader, PyAVReader, Reader
from liveframe.live.engine import Engine
from liveframe.ui import monitor
from liveframe.util import signals
from liveframe.util.files import atomic_write, check_outputs

log = logging.getLogger(__name__)

STATS_KEYS = ("underruns", "xruns", "ticks", "latency_ms", "device_latency_ms", "samplerate",
              "blocksize")
"""What ``--stats-json`` writes (a subset of :meth:`Engine.stats`; what ``xruns`` counts is
in :mod:`liveframe.live.audio`)."""

MAX_MARGIN = 480_000
"""Most samples of ``--margin``: 10 s at 48 kHz."""


# ------------------------------------------------------------------------------ options
def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--brain", default=None,
                        help="brain file, or a name in ./brains/ or the shipped brains "
                        "(default: default)")
    parser.add_argument("--mode", choices=C.MODES, default="ola", help="synthesis (default ola)")
    parser.add_argument("--device", default=None, help="audio output: index or part of its name")
    parser.add_argument("--samplerate", type=bounded_int(8000, 384000), default=None,
                        help="device rate in Hz (default: the device's own; JACK's on JACK)")
    parser.add_argument("--blocksize", type=bounded_int(16, 8192), default=256,
                        help="frames per callback, 16..8192 (256)")
    parser.add_argument("--latency", default="low",
                        help="PortAudio output latency: low, high or seconds in 0..10 "
                        "(default low)")
    parser.add_argument("--margin", type=bounded_int(0, MAX_MARGIN), default=None,
                        help="safety lead in samples: each tick is written this long before "
                        "the callback needs it, 0..480000 (default: 256 at 48 kHz with a "
                        "real-time producer, 768 without)")
    parser.add_argument("--no-realtime", action="store_true",
                        help="keep the producer at normal priority (by default it asks for "
                        "real-time scheduling where the system allows it)")
    parser.add_argument("--seconds", type=bounded_float(0.0, 1e7, lo_open=True), default=None,
                        help="stop after N seconds")
    parser.add_argument("--record", default=None, metavar="FILE.wav",
                        help="write what is played to a float WAV, finalised on stop")
    parser.add_argument("--stats-json", default=None, metavar="FILE",
                        help="write underruns, xruns, ticks, latency and the device on stop (JSON)")
    parser.add_argument("--seed", type=seed_arg, default=0,
                        help="granular seed, 0..2**32-1 (default 0)")
    add_phase_argument(parser)
    parser.add_argument("--gain", type=bounded_float(0.0, GAIN_MAX), default=1.0,
                        help=f"output gain, 0..{GAIN_MAX:g}; OSC /gain changes it while "
                        "playing (default 1)")
    parser.add_argument("--no-gui", action="store_true", help="no monitor window")
    parser.add_argument("--fullscreen", action="store_true", help="monitor full screen")
    add_osc_arguments(parser)


def add_play_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clip", help="video file")
    parser.add_argument("--loop", action="store_true", help="start again at the end")
    parser.add_argument("--speed", type=bounded_float(0.0, 16.0, lo_open=True), default=1.0,
                        help="media seconds per real second, in (0, 16]: 2 plays twice as "
                        "fast, 0.5 at half speed (default 1)")
    _common_arguments(parser)


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--camera", type=camera_arg, default=0,
                        help="camera: an index (0, 1, ...) or /dev/videoN (default 0)")
    _common_arguments(parser)


def _latency_arg(v: str) -> str | float:
    if v in ("low", "high"):
        return v
    try:
        f = float(v)
    except ValueError:
        raise UsageError(f"--latency {v!r} must be low, high or seconds") from None
    if not 0 <= f <= 10:
        raise UsageError(f"--latency {v!r} must be low, high or seconds in 0..10")
    return f


def _check(args: argparse.Namespace) -> None:
    """The option values the library cannot judge, before anything opens: the outputs
    (``--record``, ``--stats-json``) can be written and destroy no input, and a clip is
    a regular file with at least one picture that decodes."""
    if args.record is not None and not str(args.record).lower().endswith(".wav"):
        raise UsageError(f"--record {args.record}: must be a .wav file")
    if args.seconds is not None and not (args.seconds > 0 and math.isfinite(args.seconds)):
        raise UsageError(f"--seconds {args.seconds} must be a positive number")
    args.latency = _latency_arg(str(args.latency))
    clip = getattr(args, "clip", None)
    brain = resolve_brain_path(args.brain)
    outputs = {"--record": args.record, "--stats-json": args.stats_json}
    if args.record is not None and getattr(args, "csound", None) == "start":
        from liveframe.live.csound import grains_wav_for

        outputs["--csound's recording (beside --record)"] = grains_wav_for(args.record)
    check_outputs(outputs, [clip, brain])
    if clip is not None:
        check_clip(clip)


def write_stats_json(path: str | os.PathLike[str], stats: dict[str, Any]) -> Path:
    """Write the ``--stats-json`` schema (:data:`STATS_KEYS` of ``stats``) atomically."""
    p = Path(path)
    with atomic_write(p, "w") as (f, _):
        f.write(json.dumps({k: stats[k] for k in STATS_KEYS}, indent=2) + "\n")
    return p


# ------------------------------------------------------------------------------ playing
class _StopRequest:
    """A signal handler (:func:`liveframe.util.signals.handling`) that sets :attr:`event`
    instead of raising where the signal lands.

    A KeyboardInterrupt raised at an arbitrary line (while the engine opens the stream,
    prefills the ring or tears down) can leave a thread or a device half-started and the
    process hanging on exit; the flag is read where stopping is safe, and the recording is
    finalised. A second Ctrl-C raises KeyboardInterrupt as usual, should a stop ever hang.
    Every wait of a stop is bounded (a device that went away included: see
    :mod:`liveframe.live.audio`), so one Ctrl-C ends the play within about a second.
    """

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, signum: int, frame: Any) -> None:
        if self.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.event.set()
        log.info("%s: stopping", signal.Signals(signum).name)


def _play(args: argparse.Namespace, make_reader: Callable[[], Reader]) -> int:
    stop = _StopRequest()
    try:
        with signals.handling(stop):
            return _play_until(args, make_reader, stop.event)
    except ParamError as e:
        raise e.for_flag() from None


def _make_engine(args: argparse.Namespace, make_reader: Callable[[], Reader]) -> Engine:
    controls = Controls(gain=args.gain, mode=args.mode)
    brain = Brain.load(resolve_brain_path(args.brain))
    capture = Capture(make_reader(), spec=brain.spec)
    try:
        return Engine(brain, capture, controls=controls, mode=args.mode, device=args.device,
                      samplerate=args.samplerate, blocksize=args.blocksize,
                      latency=args.latency, margin=args.margin, record=args.record,
                      seed=args.seed, phase=args.phase, realtime=not args.no_realtime)
    except BaseException:
        capture.stop()
        raise


def _play_until(args: argparse.Namespace, make_reader: Callable[[], Reader],
                interrupted: threading.Event) -> int:
    _check(args)
    engine = _make_engine(args, make_reader)
    closer = None
    try:
        closer = start_osc(args, engine)
        _play_engine(engine, args, interrupted)
    finally:
        engine.stop()
        # a stop the engine began by itself (its source ended, its device went away) runs
        # on its worker: the recording and the stats are whole only once it is done
        engine.wait(10.0)  # each of its steps is bounded: this never waits that long
        if closer is not None:
            closer()
        if args.stats_json:
            write_stats_json(args.stats_json, engine.stats())
    st = engine.stats()
    log.info("played %d ticks, %d underruns, %d xruns, frame-to-DAC latency median %.1f ms "
             "(p99 %.1f), the device reports %.1f ms of it", st["ticks"], st["underruns"],
             st["xruns"], st["latency_ms"]["median"], st["latency_ms"]["p99"],
             st["device_latency_ms"])
    from liveframe.live.audio import LOST_EXIT_STATUS

    status = 0
    if engine.device_lost:  # it said so in one line when it happened
        status = LOST_EXIT_STATUS
    elif engine.error:
        log.error("the producer failed: %s", engine.error)
        status = 1
    elif engine.record_error:  # --record's disk filled: said in one line when it did
        status = 2
    if engine.audio is not None and engine.audio.wedged:
        # PortAudio could not stop the stream of a device that went away, and would wait
        # for it for ever at exit (Pa_Terminate in sounddevice's exit handler, libjack's
        # threads): the recording and the stats are written, so leave now
        import sys

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _play_engine(engine: Engine, args: argparse.Namespace,
                 interrupted: threading.Event) -> None:
    """Start ``engine`` and play it, with the monitor when there is a display."""
    win = None
    if not args.no_gui:
        if monitor.display_available():
            # built and shown before the audio starts: Qt's first show holds the GIL
            spec = engine.spec
            win = monitor.open_monitor(engine, args, sr=spec.sample_rate, fps=spec.fps)
        elif monitor.display_refused() is None:  # a display that failed its probe said why
            log.info("no display: running headless (Ctrl-C stops)")
    try:
        engine.start()
    except BaseException:
        if win is not None:
            win.close()
            monitor.release_window(win)  # Qt's connections would keep it (and the engine)
        raise
    if win is None or interrupted.is_set():
        if win is not None:
            win.close()
            monitor.release_window(win)
        engine.run(args.seconds, interrupted)  # at once when a signal came while starting
        return
    timer = None
    if args.seconds is not None:
        timer = threading.Timer(args.seconds, engine.stop)
        timer.daemon = True
        timer.start()
    try:
        monitor.run_monitor(engine, args, win=win)
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()
        engine.stop()


def run_play(args: argparse.Namespace) -> int:
    return _play(args, lambda: PyAVReader(args.clip, loop=args.loop, speed=args.speed))


def run_live(args: argparse.Namespace) -> int:
    return _play(args, lambda: OpenCVReader(args.camera))
