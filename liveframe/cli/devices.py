"""``liveframe devices``: the audio outputs and cameras this machine offers."""

from __future__ import annotations

import argparse
import dataclasses
import json

from liveframe.live.audio import NO_DEVICE_HELP, host_apis, list_cameras, list_outputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print as JSON")


def run(args: argparse.Namespace) -> int:
    outs = list_outputs()
    cams = list_cameras()
    if args.json:
        print(json.dumps({
            "outputs": [dataclasses.asdict(o) for o in outs],
            "cameras": cams,
            "host_apis": host_apis(),
        }, indent=2))
        return 0
    print("audio outputs:")
    if outs:
        for o in outs:
            print(f"  {o.describe()}")
    else:
        print(f"  none (host APIs: {', '.join(host_apis())}); {NO_DEVICE_HELP}")
    print("cameras:")
    print("  " + (", ".join(f"[{c}]" for c in cams) if cams else "none found"))
    return 0
