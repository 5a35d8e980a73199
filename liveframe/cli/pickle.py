"""``liveframe pickle VIDEO... -o DATASET``: videos with soundtracks -> a training dataset."""

from __future__ import annotations

import argparse
import logging
import time

from liveframe import constants as C
from liveframe.cli.options import bounded_float, fps_arg, sample_rate_arg
from liveframe.data.dataset import read_meta
from liveframe.data.pickle import build_dataset
from liveframe.errors import ParamError
from liveframe.util.files import check_outputs

log = logging.getLogger(__name__)

FLAGS = {"sr": "--sample-rate"}
"""Library parameters whose flag is not ``--`` + the name with dashes."""

MAX_CALIBRATION = 3600.0
"""Most seconds of ``--calibrate-silence`` (an hour of frames is 300 MB of grey pixels)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="+", metavar="VIDEO",
                        help="videos with a soundtrack, concatenated in order")
    parser.add_argument("-o", "--output", required=True, metavar="DATASET",
                        help="dataset file to write (.npz), written atomically")
    parser.add_argument("--fps", type=fps_arg, default=C.FPS,
                        help=f"brain clock in ticks per second (default {C.FPS})")
    parser.add_argument("--sample-rate", type=sample_rate_arg, default=C.SAMPLE_RATE,
                        help=f"brain audio rate in Hz (default {C.SAMPLE_RATE})")
    parser.add_argument("--framing", choices=C.FRAMINGS, default="grain",
                        help="grain: 2H Hann-windowed samples centred on the tick (default); "
                        "block: H samples from the tick (the 2015 framing)")
    parser.add_argument("--colour", "--color", action="store_true",
                        help="store RGB frames (3 channels) instead of grey")
    parser.add_argument("--calibrate-silence", type=bounded_float(0.0, MAX_CALIBRATION),
                        default=0.0, metavar="SECONDS",
                        help="append SECONDS of black and white frames (half each) with "
                        "silent targets, so dark and blank screens stay quiet "
                        f"(0..{MAX_CALIBRATION:g})")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    check_outputs({"-o": args.output}, args.videos)
    try:
        path = build_dataset(
            args.videos, args.output, fps=args.fps, sr=args.sample_rate,
            framing=args.framing, channels=3 if args.colour else 1,
            calibrate_silence=args.calibrate_silence, progress=not args.quiet,
        )
    except ParamError as e:
        raise e.for_flag(FLAGS.get(e.param)) from None
    if not args.quiet:
        sources = read_meta(path)["sources"]
        log.info("wrote %s: %d ticks from %d source(s) in %.1f s", path,
                 sum(s["ticks"] for s in sources), len(sources), time.monotonic() - t0)
    return 0
