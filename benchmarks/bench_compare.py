"""Two checkouts side by side in one run: render throughput and live latency, old vs new.

    .venv/bin/python -m benchmarks.bench_compare --old PATH [--repeats 5]
        [--live-seconds 120] [--out benchmarks/results/compare.md]

``PATH`` is another checkout of liveframe (e.g. ``git worktree add /tmp/old a82640b``); both
run with this venv's packages, each with its own checkout first on ``sys.path``, so only
the package code differs. Render: per clip (10 s at 640x360 and 1280x720, written once),
``render_signal`` (ola) and ``render -> .mkv`` timed in child processes, the two checkouts
alternating round by round (old-new, new-old, ...), each child warmed up on a short clip
first; medians and the ratio new/old of the medians. Live: ``liveframe play CLIP --loop
--no-gui`` under one JACK dummy server (48 kHz, 256 frames) with another process spinning
one core, in 30-second turns that alternate between the checkouts until each has played
``--live-seconds``; from each turn's ``--stats-json``: frame-to-DAC latency median and p99
less the device's own latency, and underruns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
repo, brain_path, warm, clip, out_dir = sys.argv[1:6]
sys.path.insert(0, repo)
try:
    from liveframe.offline.render import render, render_signal
    from liveframe.core.brain import Brain
except ImportError:  # the layout before the layers
    from liveframe.render import render, render_signal
    from liveframe.brain import Brain
brain = Brain.load(brain_path)
render_signal(warm, brain, mode="ola")
times = {}
t0 = time.perf_counter(); render_signal(clip, brain, mode="ola")
times["render_signal ola"] = time.perf_counter() - t0
t0 = time.perf_counter(); render(clip, out_dir + "/out.mkv", brain=brain, mode="ola")
times["render ola -> .mkv"] = time.perf_counter() - t0
print(json.dumps(times))
"""


def _env(repo: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(repo))


def render_rounds(old: Path, new: Path, clip: Path, warm: Path, brain: Path, repeats: int,
                  tmp: Path) -> dict[str, dict[str, list[float]]]:
    times: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    for r in range(repeats):
        order = (("old", old), ("new", new)) if r % 2 == 0 else (("new", new), ("old", old))
        for name, repo in order:
            p = subprocess.run([sys.executable, "-c", CHILD, str(repo), str(brain), str(warm),
                                str(clip), str(tmp)], env=_env(repo), cwd=repo,
                               capture_output=True, text=True, check=True)
            for case, s in json.loads(p.stdout.strip().splitlines()[-1]).items():
                times[name].setdefault(case, []).append(s)
    return times


def live_turns(old: Path, new: Path, clip: Path, seconds: float, turn: float,
               tmp: Path) -> dict[str, list[dict]]:
    from liveframe.live.jackd import jack_env, start_jackd, stop_jackd

    name = f"lfcompare-{os.getpid()}"
    jack = start_jackd(name)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    stats: dict[str, list[dict]] = {"old": [], "new": []}
    try:
        played = {"old": 0.0, "new": 0.0}
        k = 0
        while min(played.values()) < seconds:
            for label, repo in ((("old", old), ("new", new)) if k % 2 == 0
                                else (("new", new), ("old", old))):
                if played[label] >= seconds:
                    continue
                js = tmp / f"{label}-{k}.json"
                env = dict(_env(repo), **jack_env(name))
                subprocess.run([sys.executable, "-m", "liveframe", "play", str(clip), "--loop",
                                "--no-gui", "--seconds", str(turn), "--osc-port", "0",
                                "--stats-json", str(js)], env=env, cwd=repo, check=True,
                               capture_output=True, timeout=turn + 60)
                stats[label].append(json.loads(js.read_text()))
                played[label] += turn
            k += 1
    finally:
        hog.kill()
        stop_jackd(jack)
    return stats


def _row(case: str, t: dict[str, dict[str, list[float]]]) -> str:
    o, n = statistics.median(t["old"][case]), statistics.median(t["new"][case])
    return f"| {case} | {o:.3f} | {n:.3f} | {n / o:.2f} |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="the other checkout (the baseline)")
    ap.add_argument("--repeats", type=int, default=5, help="render rounds per checkout")
    ap.add_argument("--seconds", type=float, default=10.0, help="render clip length")
    ap.add_argument("--live-seconds", type=float, default=120.0, help="live play per checkout")
    ap.add_argument("--turn", type=float, default=30.0, help="seconds per live turn")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "compare.md"))
    args = ap.parse_args()
    old, new = Path(args.old).resolve(), REPO
    from benchmarks.bench_render import make_clip
    from liveframe.data.clips import write_clip  # noqa: F401 -- fails early without the venv

    brain = REPO / "brains" / "default.onnx"
    cmd = (f"python -m benchmarks.bench_compare --old OLD --repeats {args.repeats} "
           f"--seconds {args.seconds:g} --live-seconds {args.live_seconds:g} --turn {args.turn:g}")
    lines = [f"## Side by side: {old} (old) against {new} (new)", "",
             f"`{cmd}` (OLD: a checkout of the baseline, e.g. `git worktree add OLD a82640b`).",
             "",
             f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
             f"brain {brain.name}.", ""]
    with tempfile.TemporaryDirectory(prefix="lfcompare-") as d:
        tmp = Path(d)
        warm = make_clip(tmp / "warm.mkv", 2.0, (640, 360))
        lines += ["### Render (seconds, median of "
                  f"{args.repeats} alternating rounds; ratio new/old, below 1 is faster)", ""]
        for size in ((640, 360), (1280, 720)):
            clip = make_clip(tmp / f"clip{size[0]}.mkv", args.seconds, size)
            t = render_rounds(old, new, clip, warm, brain, args.repeats, tmp)
            lines += [f"{args.seconds:g} s at {size[0]}x{size[1]}:", "",
                      "| case | old | new | new/old |", "|---|---|---|---|"]
            lines += [_row(c, t) for c in t["new"]]
            lines.append("")
            print("\n".join(lines[-6:]), flush=True)
        if args.live_seconds > 0:
            clip = make_clip(tmp / "live.mkv", 10.0, (640, 360))
            st = live_turns(old, new, clip, args.live_seconds, args.turn, tmp)
            lines += [f"### Live ({args.live_seconds:g} s per checkout in {args.turn:g} s turns, "
                      "JACK dummy 48 kHz / 256, one core busy)", "",
                      "| checkout | latency beyond the device's, median of turns (ms) | "
                      "p99, worst turn (ms) | device latency (ms) | underruns |",
                      "|---|---|---|---|---|"]
            for label in ("old", "new"):
                s = st[label]
                dev = statistics.median(x["device_latency_ms"] for x in s)
                med = statistics.median(x["latency_ms"]["median"] - x["device_latency_ms"]
                                        for x in s)
                p99 = max(x["latency_ms"]["p99"] - x["device_latency_ms"] for x in s)
                und = sum(x["underruns"] for x in s)
                lines.append(f"| {label} | {med:.2f} | {p99:.2f} | {dev:.2f} | {und} |")
            lines.append("")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
