"""Pickling throughput against decoding alone, and the pickler's peak memory.

Generates a 1080p H.264 clip with a 48 kHz stereo AAC soundtrack (the kind of file a
phone or camera gives), then, side by side and alternating:

- ``decode``: one demux pass over video and audio with PyAV, FFmpeg's own threads on
  (``MediaReader(threads=True)``), every packet decoded and nothing converted;
- ``pickle``: :func:`liveframe.data.pickle.build_dataset` of the same file with the same
  thread settings (64x64 grey, grain framing, 22050 Hz at 30 fps).

Each run is a fresh child process (timed inside it, imports excluded) that reports its own
peak RSS, so memory figures are the pickler's alone. ``--minutes 30`` builds the full-size
clip by remuxing the short one end to end (no re-encoding) for the 1.5 GB RSS target.

Run: ``.venv/bin/python -m benchmarks.bench_pickle [--seconds 40] [--runs 3] [--minutes 30]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "pickle.md"
W, H = 1920, 1080


def make_clip(path: Path, seconds: float, fps: int = 30, sr: int = 48000) -> Path:
    """A 1080p clip: moving gradients and shapes, with a stereo tone-and-noise soundtrack."""
    from liveframe.data.clips import write_clip

    n = round(seconds * fps)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    base = np.stack([xx / W * 255, yy / H * 255, (xx + yy) / (W + H) * 255], -1)
    rng = np.random.default_rng(0)
    grain = rng.integers(0, 12, (H, W, 1), dtype=np.uint8)

    def pictures():
        for i in range(n):
            pic = np.roll(base, 8 * i, axis=1).astype(np.uint8)
            pic += grain
            cx = int(W / 2 + 600 * np.sin(i / 20))
            cy = int(H / 2 + 300 * np.cos(i / 31))
            pic[max(cy - 120, 0): cy + 120, max(cx - 120, 0): cx + 120] = (255, 240, 40)
            yield i / fps, pic

    t = np.arange(int(seconds * sr)) / sr
    left = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(t.size)
    right = 0.2 * np.sin(2 * np.pi * 330 * t) + 0.02 * rng.standard_normal(t.size)
    audio = np.stack([left, right], 1).astype(np.float32)
    return write_clip(path, pictures(), audio=audio, sr=sr, fps=fps, audio_codec="aac",
                      time_base=Fraction(1, 15360))


def loop_clip(src: Path, dst: Path, minutes: float) -> Path:
    """Remux ``src`` end to end (stream copy, timestamps shifted) to about ``minutes``."""
    import av

    with av.open(str(src)) as inp:
        packets: dict[int, list] = {s.index: [] for s in inp.streams}
        ends = []
        for p in inp.demux():
            if p.dts is None:
                continue
            packets[p.stream.index].append(p)
        for s in inp.streams:
            last = max(packets[s.index], key=lambda p: p.pts)
            ends.append(float((last.pts + (last.duration or 0)) * s.time_base))
        period = float(np.ceil(max(ends) * 30) / 30) + 1 / 30
        loops = int(np.ceil(minutes * 60 / period))
        with av.open(str(dst), "w") as out:
            omap = {s.index: out.add_stream_from_template(s) for s in inp.streams}
            # interleave by time: the streams' packets in dts order
            merged = sorted(
                ((float(p.dts * p.stream.time_base), p) for ps in packets.values() for p in ps),
                key=lambda tp: tp[0],
            )
            for j in range(loops):
                for _, p in merged:
                    tb = p.stream.time_base
                    off = round(j * period / tb)
                    q = av.Packet(bytes(p))
                    q.pts = p.pts + off
                    q.dts = p.dts + off
                    q.duration = p.duration
                    q.is_keyframe = p.is_keyframe
                    q.time_base = tb
                    q.stream = omap[p.stream.index]
                    out.mux(q)
    return dst


# -- children: one measurement each ---------------------------------------------------------

def child_decode(path: str) -> dict:
    from liveframe.core.media import MediaReader

    t0 = time.perf_counter()
    nv = na = 0
    with MediaReader(path, need_audio=True, threads=True) as r:
        for kind, _, _ in r.demux(resample=None):
            if kind == "video":
                nv += 1
            else:
                na += 1
    return {"seconds": time.perf_counter() - t0, "video_frames": nv, "audio_frames": na}


def child_pickle(path: str, out: str) -> dict:
    from liveframe.data.pickle import build_dataset

    t0 = time.perf_counter()
    build_dataset([path], out, progress=False)
    dt = time.perf_counter() - t0
    with np.load(out, allow_pickle=False) as z:  # the boundaries only: frames stay on disk
        ticks = int(z["boundaries"][-1])
    return {"seconds": dt, "ticks": ticks}


def run_child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_pickle", "--child", *args],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    import av

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, PyAV {av.__version__} "
            f"(FFmpeg {av.ffmpeg_version_info}), load average {os.getloadavg()[0]:.2f} at start")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_pickle", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=40.0, help="length of the 1080p clip")
    ap.add_argument("--runs", type=int, default=3, help="runs of each, alternating")
    ap.add_argument("--minutes", type=float, default=None,
                    help="also pickle a clip this long (remuxed loops) for peak RSS")
    ap.add_argument("--workdir", default=None, help="where to keep the clips (default: temp)")
    ap.add_argument("--no-write", action="store_true", help="do not write results/pickle.md")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.child:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        cpu0 = ru.ru_utime + ru.ru_stime
        res = child_decode(a.child[1]) if a.child[0] == "decode" else child_pickle(*a.child[1:])
        ru = resource.getrusage(resource.RUSAGE_SELF)
        res["cpu_seconds"] = ru.ru_utime + ru.ru_stime - cpu0
        res["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(res))
        return 0

    note = machine()
    tmp = tempfile.TemporaryDirectory(prefix="bench_pickle.")
    work = Path(a.workdir) if a.workdir else Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    clip = work / f"clip_{int(a.seconds)}s.mp4"
    if not clip.exists():
        t = time.perf_counter()
        make_clip(clip, a.seconds)
        print(f"made {clip} ({clip.stat().st_size / 1e6:.1f} MB) in "
              f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
    dec, pic = [], []
    for i in range(a.runs):
        dec.append(run_child(["decode", str(clip)]))
        pic.append(run_child(["pickle", str(clip), str(work / "out.npz")]))
        print(f"run {i + 1}: decode {dec[-1]['seconds']:.2f} s ({dec[-1]['cpu_seconds']:.2f} "
              f"CPU s), pickle {pic[-1]['seconds']:.2f} s ({pic[-1]['cpu_seconds']:.2f} CPU s)",
              file=sys.stderr)
    nframes = dec[0]["video_frames"]
    d_med = statistics.median(r["seconds"] for r in dec)
    p_med = statistics.median(r["seconds"] for r in pic)
    ratios = [d["seconds"] / p["seconds"] for d, p in zip(dec, pic)]
    d_cpu = statistics.median(r["cpu_seconds"] for r in dec)
    p_cpu = statistics.median(r["cpu_seconds"] for r in pic)
    lines = [
        "## Pickling throughput (`liveframe pickle`)",
        "",
        (f"Clip: {a.seconds:g} s of 1920x1080 H.264 (libx264 ultrafast, 30 fps, {nframes} "
         "frames) with 48 kHz stereo AAC, in MP4. Pickle: 64x64 grey, grain framing, "
         f"22050 Hz at 30 fps ({pic[0]['ticks']} ticks). Both with FFmpeg threads on. "
         f"Median of {a.runs} runs, alternating, each in a fresh process."),
        "",
        "| | median wall s | source frames/s | median CPU s | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
        (f"| decode only (demux + decode video and audio) | {d_med:.2f} | {nframes / d_med:.0f} "
         f"| {d_cpu:.2f} | {max(r['max_rss_mb'] for r in dec):.0f} |"),
        (f"| pickle (`build_dataset`) | {p_med:.2f} | {nframes / p_med:.0f} "
         f"| {p_cpu:.2f} | {max(r['max_rss_mb'] for r in pic):.0f} |"),
        "",
        (f"Pickling throughput / decode-only throughput: **{d_med / p_med:.2f}** by wall time "
         f"(per-run pairs: {', '.join(f'{r:.2f}' for r in ratios)}), **{d_cpu / p_cpu:.2f}** by "
         "CPU time of the whole process, threads included (the figure to trust when other "
         "work shares the machine: wall times then swing by half); target >= 0.8."),
    ]
    if a.minutes:
        long = work / f"clip_{a.minutes:g}min.mp4"
        if not long.exists():
            t = time.perf_counter()
            loop_clip(clip, long, a.minutes)
            print(f"made {long} ({long.stat().st_size / 1e6:.0f} MB) in "
                  f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
        r = run_child(["pickle", str(long), str(work / "long.npz")])
        (work / "long.npz").unlink(missing_ok=True)
        lines += [
            "",
            (f"Full size: {a.minutes:g} minutes of the same 1080p clip remuxed end to end "
             f"({r['ticks']} ticks): pickled in {r['seconds']:.0f} s "
             f"({r['ticks'] / r['seconds']:.0f} ticks/s), **peak RSS {r['max_rss_mb']:.0f} MB** "
             "(target < 1500 MB)."),
        ]
    cmd = ".venv/bin/python -m benchmarks.bench_pickle" + (
        f" --seconds {a.seconds:g}" if a.seconds != 40 else "") + (
        f" --runs {a.runs}" if a.runs != 3 else "") + (
        f" --minutes {a.minutes:g}" if a.minutes else "")
    lines += ["", f"Command: `{cmd}`", "", f"Machine: {note}.", ""]
    text = "\n".join(lines)
    print(text)
    if not a.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
    (work / "out.npz").unlink(missing_ok=True)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
