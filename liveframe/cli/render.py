"""``liveframe render``: its options and their checks (the library never names a flag)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from liveframe.cli.options import add_grain_arguments, add_phase_argument, bounded_int
from liveframe.core.brain import resolve_brain_path
from liveframe.core.media import PTS_TOLERANCE, check_clip
from liveframe.errors import UsageError
from liveframe.offline.pictures import BATCH
from liveframe.offline.render import (
    RENDER_MODES,
    load_brain,
    make_pipeline,
    open_input,
    render_opened,
)
from liveframe.util.files import check_outputs
from liveframe.util.progress import Progress

log = logging.getLogger(__name__)

MAX_BATCH = 4096
"""Most frames per inference call (a batch of 64x64 grey frames is 16 KB each)."""


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
    add_grain_arguments(parser)
    add_phase_argument(parser)
    parser.add_argument("--batch", type=bounded_int(1, MAX_BATCH), default=BATCH,
                        help=f"frames per inference call, 1..{MAX_BATCH} (default {BATCH})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def check_grain_options(args: argparse.Namespace) -> None:
    """``--grain-density`` and ``--grain-spread`` are numbers in 0..4 (render and eval;
    the parser checks them too, this guards callers that build a Namespace)."""
    for name in ("grain_density", "grain_spread"):
        v = getattr(args, name)
        if not np.isfinite(v) or not 0 <= v <= 4:
            raise UsageError(f"--{name.replace('_', '-')} {v} must be a finite number in [0, 4]")


def run(args: argparse.Namespace) -> int:
    check_grain_options(args)
    out = Path(args.output)
    brain = None if args.brain is None else resolve_brain_path(args.brain)
    check_outputs({"-o": out}, [args.video, brain])
    check_clip(args.video, still=True)  # before the progress bar: a clip with no picture
    reader, container = open_input(Path(args.video), out)
    try:
        pipe = make_pipeline(load_brain(brain), mode=args.mode, seed=args.seed,
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
