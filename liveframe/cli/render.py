"""``liveframe render``: its options and their checks (the library never names a flag)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from liveframe.cli.options import add_phase_argument
from liveframe.core.media import PTS_TOLERANCE
from liveframe.errors import UsageError
from liveframe.offline.pictures import BATCH
from liveframe.offline.render import (
    RENDER_MODES,
    load_brain,
    make_pipeline,
    open_input,
    render_opened,
)
from liveframe.util.progress import Progress

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="input video (any frame rate)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output: .wav/.flac (audio) or .mkv/.mp4/.webm (video copied, rendered soundtrack)",
    )
    parser.add_argument(
        "--brain", default=None,
        help="brain file, or a name in ./brains/ or the shipped brains (default: default)",
    )
    parser.add_argument(
        "--mode",
        choices=RENDER_MODES,
        default="ola",
        help="synthesis: raw (2015 concatenation), ola (default), granular, "
        "csound (the granular score through the real csound)",
    )
    parser.add_argument("--seed", type=int, default=0, help="granular random seed (default 0)")
    add_phase_argument(parser)
    parser.add_argument(
        "--grain-density",
        type=float,
        default=1.0,
        metavar="X",
        help="scales the children per grain, 0..4 (default 1)",
    )
    parser.add_argument(
        "--grain-spread",
        type=float,
        default=1.0,
        metavar="X",
        help="scales the onset jitter, 0..4 (default 1)",
    )
    parser.add_argument("--batch", type=int, default=BATCH,
                        help=f"frames per inference call (default {BATCH})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def check_grain_options(args: argparse.Namespace) -> None:
    """``--grain-density`` and ``--grain-spread`` are numbers >= 0 (render and eval)."""
    for name in ("grain_density", "grain_spread"):
        v = getattr(args, name)
        if not np.isfinite(v) or v < 0:
            raise UsageError(f"--{name.replace('_', '-')}={v} must be a number >= 0")


def run(args: argparse.Namespace) -> int:
    check_grain_options(args)
    if args.batch <= 0:
        raise UsageError(f"--batch={args.batch} must be a positive integer")
    out = Path(args.output)
    reader, container = open_input(Path(args.video), out)
    try:
        pipe = make_pipeline(load_brain(args.brain), mode=args.mode, seed=args.seed,
                             density=args.grain_density, spread=args.grain_spread,
                             phase=args.phase)
        est = reader.duration
        total = int(np.ceil(est * pipe.spec.fps - PTS_TOLERANCE)) if est else None
        with Progress(total, f"render {args.mode}", unit="ticks", enabled=not args.quiet) as prog:
            render_opened(reader, out, pipe, container, csound=args.mode == "csound",
                          batch=args.batch, progress=prog)
    finally:
        reader.close()
    log.info("wrote %s", out)
    return 0
