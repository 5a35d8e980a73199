"""``liveframe eval``: its options and their checks (the library never names a flag)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from liveframe.cli.options import add_grain_arguments, add_phase_argument
from liveframe.cli.render import check_grain_options
from liveframe.core.brain import resolve_brain_path
from liveframe.errors import UsageError
from liveframe.offline.csound import csound_available, csound_executable
from liveframe.offline.evaluate import evaluate, format_table
from liveframe.offline.render import RENDER_MODES
from liveframe.util.files import check_outputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("brain", help="brain file, or a name in ./brains/ or the shipped brains")
    parser.add_argument("video", help="a video with its true soundtrack")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", metavar="FILE.png", default=None,
                        help="write true and rendered spectrograms side by side")
    parser.add_argument("--modes", default=None,
                        help="comma-separated modes (default raw,ola,granular,csound; csound "
                        "only when installed)")
    add_grain_arguments(parser)
    add_phase_argument(parser)


def run(args: argparse.Namespace) -> int:
    check_grain_options(args)
    modes = None
    if args.modes is not None:
        modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
        if not modes:
            raise UsageError(f"--modes {args.modes!r} names no mode; give one or more of "
                             f"{', '.join(RENDER_MODES)}, separated by commas")
        for m in modes:
            if m not in RENDER_MODES:
                raise UsageError(f"--modes: {m!r} must be one of {', '.join(RENDER_MODES)}")
        if "csound" in modes and not csound_available():
            csound_executable()  # its one line says how to install it
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        raise UsageError(f"--plot {args.plot}: must be a .png file")
    brain = resolve_brain_path(args.brain)
    check_outputs({"--plot": args.plot}, [args.video, brain])
    res = evaluate(brain, args.video, modes=modes, seed=args.seed,
                   density=args.grain_density, spread=args.grain_spread, phase=args.phase,
                   plot=args.plot)
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_table(res))
    return 0
