"""Command-line options shared by several commands."""

from __future__ import annotations

import argparse

from liveframe import constants as C


def add_phase_argument(parser: argparse.ArgumentParser) -> None:
    """``--phase``: a spectrum brain's phase reconstruction (a pcm brain ignores it)."""
    parser.add_argument(
        "--phase", choices=C.PHASES, default=None,
        help="spectrum brains: phase reconstruction, rtpghi (phase-gradient integration), "
        "pv (peak-locked phase vocoder), random, steal (a noise donor's phase); "
        "default: the one the brain's spec names")
