"""`make bench`: run every benchmark at its default size, then rebuild BENCHMARKS.md.

Each ``benchmarks/bench_<topic>.py`` measures side by side in one run (medians, ratios) and
writes ``benchmarks/results/<topic>.md`` with the command that reproduces it;
BENCHMARKS.md is those sections in order. ``python -m benchmarks --only train,render``
runs some; ``--assemble`` only rebuilds BENCHMARKS.md from the results already there.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ORDER = ["live", "render", "train", "pickle", "osc", "monitor", "freefilm", "realfootage",
         "phase", "compare"]
SUMMARY = HERE / "summary.md"
"""The one-screen summary a performer reads first (written by hand from the sections'
figures: update it when they change)."""

HEADER = """# Benchmarks

Measured on this project's machines (2 cores, no sound card, shared and noisy), so every
figure is a median of repeated runs, and every comparison is a ratio measured side by side
in one run. Each section gives the command that reproduces it. `make bench` re-measures
every benchmark at its default (short) size, rewriting its section in
`benchmarks/results/`, and rebuilds this file: the full-size figures below (the 10-minute
live and monitor runs, the 30-minute pickling) come from the commands their sections give.
"""


def topics() -> list[str]:
    found = [m.name[len("bench_"):] for m in pkgutil.iter_modules([str(HERE)])
             if m.name.startswith("bench_")]
    return sorted(found, key=lambda t: (ORDER.index(t) if t in ORDER else len(ORDER), t))


def assemble() -> Path:
    parts = [HEADER]
    if SUMMARY.exists():
        parts.append(SUMMARY.read_text().strip() + "\n")
    for t in topics():  # a topic's own file, then its variants (live_spectrum.md)
        for f in [RESULTS / f"{t}.md", *sorted(RESULTS.glob(f"{t}_*.md"))]:
            if f.exists():
                parts.append(f.read_text().strip() + "\n")
    out = HERE.parent / "BENCHMARKS.md"
    out.write_text("\n".join(parts))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks")
    ap.add_argument("--only", default="", help="comma-separated topics")
    ap.add_argument("--assemble", action="store_true", help="only rebuild BENCHMARKS.md")
    a = ap.parse_args(argv)
    if not a.assemble:
        chosen = [t for t in topics() if not a.only or t in a.only.split(",")]
        for t in chosen:
            if t == "compare":  # needs a second checkout: see its section's command
                print("== bench_compare: run `python -m benchmarks.bench_compare --old PATH`")
                continue
            print(f"== bench_{t}", flush=True)
            t0 = time.monotonic()
            mod = importlib.import_module(f"benchmarks.bench_{t}")
            rc = mod.main([]) if mod.main.__code__.co_argcount else mod.main()
            print(f"== bench_{t} done in {time.monotonic() - t0:.0f} s (rc={rc or 0})")
    print(f"wrote {assemble()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
