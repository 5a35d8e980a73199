"""Command-line options shared by several commands, and the ``type=`` checks of every
number a command takes.

Every numeric option is checked when it is parsed: finite, whole where it must be, and in
a range the instrument can honour, so a value like ``--batch 100000000`` or ``--gain nan``
is one line naming the flag (argparse's ``argument --gain: ...``) before anything opens or
allocates, never a traceback from deep inside.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

from liveframe import constants as C

SEED_MAX = 2**32 - 1
"""Seeds are what numpy's and torch's generators take: 0..2**32-1."""


def _show(x: float) -> str:
    return f"{x:g}"


def bounded_int(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse ``type=``: a whole number in ``lo..hi`` (inclusive)."""

    def parse(text: str) -> int:
        try:
            v = int(text.strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} must be a whole number in {lo}..{hi}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{v} must be {lo} or more (at most {hi})")
        if v > hi:
            raise argparse.ArgumentTypeError(f"{v} must be at most {hi} (and {lo} or more)")
        return v

    parse.__name__ = "whole number"
    return parse


def bounded_float(lo: float, hi: float, *, lo_open: bool = False,
                  hi_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type=``: a finite number in ``[lo, hi]`` (either end open on request)."""
    rng = f"{'(' if lo_open else '['}{_show(lo)}, {_show(hi)}{')' if hi_open else ']'}"

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} must be a number in {rng}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{v} must be a finite number in {rng}")
        if not (v > lo if lo_open else v >= lo):
            low = f"more than {_show(lo)}" if lo_open else f"{_show(lo)} or more"
            raise argparse.ArgumentTypeError(f"{v} must be {low} (in {rng})")
        if not (v < hi if hi_open else v <= hi):
            high = f"less than {_show(hi)}" if hi_open else f"at most {_show(hi)}"
            raise argparse.ArgumentTypeError(f"{v} must be {high} (in {rng})")
        return v

    parse.__name__ = "number"
    return parse


seed_arg = bounded_int(0, SEED_MAX)
"""``--seed``: 0..2**32-1."""

sample_rate_arg = bounded_int(1000, 384000)
"""A rate in Hz that a brain spec accepts (1000..384000)."""

fps_arg = bounded_float(1.0, 1000.0)
"""A brain clock in ticks per second that a brain spec accepts (1..1000)."""

grain_arg = bounded_float(0.0, 4.0)
"""``--grain-density``, ``--grain-spread``: 0..4."""

_VIDEO_DEVICE = re.compile(r"^/dev/video(\d+)$")


def camera_arg(text: str) -> int:
    """An argparse ``type=``: a camera index (0..63) or its ``/dev/videoN`` path."""
    m = _VIDEO_DEVICE.match(text.strip())
    s = m.group(1) if m else text.strip()
    try:
        v = int(s, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} must be a camera index (0, 1, ...) or /dev/videoN") from None
    if not 0 <= v <= 63:
        raise argparse.ArgumentTypeError(f"{text!r} must be a camera index in 0..63")
    return v


def add_phase_argument(parser: argparse.ArgumentParser) -> None:
    """``--phase``: a spectrum brain's phase reconstruction (a pcm brain ignores it)."""
    parser.add_argument(
        "--phase", choices=C.PHASES, default=None,
        help="spectrum brains: phase reconstruction, rtpghi (phase-gradient integration), "
        "pv (peak-locked phase vocoder), random, steal (a noise donor's phase); "
        "default: the one the brain's spec names")


def add_grain_arguments(parser: argparse.ArgumentParser) -> None:
    """``--seed``, ``--grain-density``, ``--grain-spread`` (render and eval)."""
    parser.add_argument("--seed", type=seed_arg, default=0,
                        help="granular random seed, 0..2**32-1 (default 0)")
    parser.add_argument("--grain-density", type=grain_arg, default=1.0, metavar="X",
                        help="scales the children per grain, 0..4 (default 1)")
    parser.add_argument("--grain-spread", type=grain_arg, default=1.0, metavar="X",
                        help="scales the onset jitter, 0..4 (default 1)")
