"""``liveframe info``: a brain's spec, as JSON (a spectrum brain's synthesis facts too)."""

from __future__ import annotations

import argparse
import json

from liveframe.core.brain import Brain, resolve_brain_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("brain", nargs="?", default=None,
                        help="brain file, or a name in ./brains/ or the shipped brains "
                        "(default: default)")


def run(args: argparse.Namespace) -> int:
    brain = Brain.load(resolve_brain_path(args.brain))
    d = brain.spec.to_dict()
    if brain.spec.spectral:
        from liveframe.core.spectral import SpectralDecoder, synth_info

        d["synthesis"] = {**synth_info(brain.spec),
                          "latency_samples": SpectralDecoder(brain.spec).latency}
    print(json.dumps(d, indent=2, sort_keys=True))
    return 0
