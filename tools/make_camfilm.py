#!/usr/bin/env python3
"""Build the camera film of the default brain: real pictures moved like a camera, with the
designed soundtrack (:mod:`liveframe.data.camfilm`, issue 14).

    python tools/make_camfilm.py --sources DIR [DIR ...] -o FILM_DIR --minutes M --seed S

Writes ``FILM_DIR/reel000.mkv``, ``reel001.mkv``, ... (H.264 pictures at 10-60 fps or a
variable rate, FLAC sound at 22050 Hz: the designed voice, ``docs/VOICE.md``). Then
``liveframe pickle FILM_DIR/*.mkv -o data.npz`` makes the training data. The sources are
photos (.jpg .png ...) and clips without sound (.avi .mp4 ...), or folders holding them
(``tools/fetch_footage.py DEST photos silent``). One seed, one film, whatever --workers.

Exit status: 0 done, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from liveframe.errors import LiveframeError, ParamError, UsageError  # noqa: E402


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT (e.g. 256x192)") from None
    return w, h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make_camfilm.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources", nargs="+", required=True, metavar="PATH",
                    help="photos, clips, or folders holding them")
    ap.add_argument("-o", "--out", required=True, metavar="FILM_DIR", help="folder for the reels")
    ap.add_argument("--minutes", type=float, required=True, help="length of the film")
    ap.add_argument("--seed", type=int, default=0, help="one seed, one film (default 0)")
    ap.add_argument("--size", type=_size, default=None, metavar="WxH",
                    help="picture size (default 256x192)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                    help="processes making reels side by side (default: up to 2)")
    a = ap.parse_args(argv)
    from liveframe.data import camfilm

    t0 = time.monotonic()
    try:
        paths = camfilm.make_film(a.sources, a.out, minutes=a.minutes, seed=a.seed,
                                  size=a.size or camfilm.SIZE, workers=a.workers)
    except ParamError as e:
        err: UsageError = e.for_flag({"out_dir": "-o"}.get(e.param))
        print(f"make_camfilm: {err}", file=sys.stderr)
        return err.exit_status
    except LiveframeError as e:
        print(f"make_camfilm: {e}", file=sys.stderr)
        return e.exit_status
    print(f"{len(paths)} reels in {a.out} ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
