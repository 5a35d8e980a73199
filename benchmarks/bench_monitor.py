"""The monitor's cost: underruns with the window open, and its own share of the CPU.

One run, one engine: the real :class:`liveframe.live.engine.Engine` plays a looping clip
through a brain to a JACK dummy server (48 kHz, period 256, engine blocksize 256: the live
instrument's benchmark set-up), optionally with a CPU hog keeping a core busy. The run is
cut into alternating segments, monitor hidden (its timer stopped: the engine alone) and
monitor open (offscreen, pulling at 30 Hz), so both conditions see the same machine load.
Per condition it reports underruns and JACK xruns, the process's CPU share, the GUI
thread's CPU share (``time.thread_time`` of the main thread: the timer slot, painting and
event handling), the timer slot's own share, the refresh rate achieved, the slot's wall
time (median, p99) and the frame-to-sound latency (median); then the ratio of process CPU
with and without the window.

    .venv/bin/python -m benchmarks.bench_monitor                # 60 s monitor open + 60 s hidden
    .venv/bin/python -m benchmarks.bench_monitor --minutes 10   # the issue's 10-minute figure
    options: --seconds S (monitor-open time), --segments N, --no-hog, --no-baseline,
             --brain PATH, --clip PATH, --screenshot PNG (the window at the end)
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from liveframe.util.files import atomic_write

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULT = HERE / "results" / "monitor.md"

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _hog() -> subprocess.Popen[bytes]:
    """A busy loop in another process (keeps one core busy, as in the live benchmark)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _clip(d: Path) -> Path:
    from liveframe import constants as C
    from liveframe.data.clips import write_clip

    if C.DEMO_CLIP.exists():
        return C.DEMO_CLIP
    yy, xx = np.mgrid[0:240, 0:320]
    frames = [(k / 30, ((2 * xx + yy + 4 * k) % 256).astype(np.uint8)) for k in range(300)]
    return write_clip(d / "gradient.mkv", frames)


class Segment:
    def __init__(self, monitor_on: bool) -> None:
        self.on = monitor_on
        self.wall = 0.0
        self.proc_cpu = 0.0
        self.gui_cpu = 0.0
        self.slot_cpu = 0.0
        self.updates = 0
        self.underruns = 0
        self.xruns = 0
        self.ticks = 0
        self.slot_ms: list[float] = []
        self.latency_ms: list[float] = []


def run_segment(app: Any, win: Any, engine: Any, seconds: float, on: bool) -> Segment:
    import psutil
    from PySide6 import QtCore

    seg = Segment(on)
    proc = psutil.Process()
    if on:
        win.show()
        win.timer.start()
    else:
        win.timer.stop()
        win.hide()
    app.processEvents()
    a = engine.audio
    u0, x0, t0 = a.underruns, a.xruns, engine.tick
    n_lat0 = len(engine.latencies())
    upd0, slot0, sc0 = win.updates, win.slot_seconds, win.slot_count
    c0 = proc.cpu_times()
    g0, w0 = time.thread_time(), time.perf_counter()
    QtCore.QTimer.singleShot(int(seconds * 1000), app.quit)
    app.exec()
    seg.wall = time.perf_counter() - w0
    seg.gui_cpu = time.thread_time() - g0
    c1 = proc.cpu_times()
    seg.proc_cpu = (c1.user - c0.user) + (c1.system - c0.system)
    seg.slot_cpu = win.slot_seconds - slot0
    seg.updates = win.updates - upd0
    seg.underruns, seg.xruns = a.underruns - u0, a.xruns - x0
    seg.ticks = engine.tick - t0
    if not engine.running:
        raise RuntimeError(f"the engine stopped during the run ({engine.error or 'no error'})")
    if seg.ticks < 0.5 * seg.wall * engine.spec.fps:
        # seen on the loaded shared machine: JACK stops calling a client whose callbacks ran
        # late too often; the ring never drains, the producer waits, the figures are void
        raise RuntimeError(
            f"the audio stalled: {seg.ticks} brain ticks in {seg.wall:.0f} s "
            f"({a.callbacks} callbacks in all); JACK probably dropped the client"
        )
    n = win.slot_count - sc0
    size = win.slot_times.shape[0]
    idx = (sc0 + np.arange(max(0, n - size), n)) % size
    seg.slot_ms = list(win.slot_times[idx] * 1000)
    lat = engine.latencies()  # the newest 65536; once full, count this segment's ticks
    new = len(lat) - n_lat0 if len(lat) < 65536 else int(seg.wall * engine.spec.fps)
    seg.latency_ms = list(lat[len(lat) - max(new, 0):] * 1000)
    return seg


def _sum(segs: list[Segment], on: bool) -> dict[str, float]:
    ss = [s for s in segs if s.on == on]
    wall = sum(s.wall for s in ss)
    slot = [x for s in ss for x in s.slot_ms]
    lat = [x for s in ss for x in s.latency_ms]
    return {
        "seconds": wall,
        "underruns": sum(s.underruns for s in ss),
        "xruns": sum(s.xruns for s in ss),
        "tick_rate": sum(s.ticks for s in ss) / wall,
        "proc_cpu": 100 * sum(s.proc_cpu for s in ss) / wall,
        "gui_cpu": 100 * sum(s.gui_cpu for s in ss) / wall,
        "slot_cpu": 100 * sum(s.slot_cpu for s in ss) / wall,
        "refresh_hz": sum(s.updates for s in ss) / wall,
        "slot_med": float(np.median(slot)) if slot else float("nan"),
        "slot_p99": float(np.percentile(slot, 99)) if slot else float("nan"),
        "lat_med": float(np.median(lat)) if lat else float("nan"),
        "per_seg_cpu": [100 * s.proc_cpu / s.wall for s in ss],  # type: ignore[dict-item]
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_monitor")
    ap.add_argument("--seconds", type=float, default=60.0, help="monitor-open time (60)")
    ap.add_argument("--minutes", type=float, default=None, help="monitor-open time in minutes")
    ap.add_argument("--segments", type=int, default=4, help="segments per condition (4)")
    ap.add_argument("--no-baseline", action="store_true", help="monitor open all the time")
    ap.add_argument("--no-hog", action="store_true", help="no CPU hog on the other core")
    ap.add_argument("--brain", default=None, help="brain (default brains/default.onnx)")
    ap.add_argument("--clip", default=None, help="clip (default brains/demo.mkv)")
    ap.add_argument("--blocksize", type=int, default=256)
    ap.add_argument("--out", default=str(RESULT), help="where the markdown section goes")
    ap.add_argument("--screenshot", default=None, metavar="PNG",
                    help="save the window at the end (docs/monitor.png was made so)")
    a = ap.parse_args(argv)
    seconds = a.minutes * 60 if a.minutes is not None else a.seconds
    sys.path.insert(0, str(ROOT))
    from PySide6 import QtCore

    from liveframe.core.brain import Brain, resolve_brain_path
    from liveframe.live import audio
    from liveframe.live.engine import Capture, Engine, PyAVReader
    from liveframe.ui import monitor
    from tests.jack import PERIOD, RATE, jack_env, start_jackd, stop_jackd

    name = f"lfbench-monitor-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    jackd = start_jackd(name)
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER",
                                            "JACK_NO_AUDIO_RESERVATION")}
    os.environ.update(jack_env(name))
    hog = None if a.no_hog else _hog()
    engine = None
    segs: list[Segment] = []
    try:
        audio.rescan()
        with tempfile.TemporaryDirectory() as td:
            clip = Path(a.clip) if a.clip else _clip(Path(td))
            brain = Brain.load(resolve_brain_path(a.brain))
            engine = Engine(brain, Capture(PyAVReader(clip, loop=True), spec=brain.spec),
                            blocksize=a.blocksize)
            # as `liveframe play` does: the window is built and shown before the audio
            # starts (Qt's first show holds the GIL for tens of ms)
            win = monitor.open_monitor(engine, close_when_stopped=False)
            win.resize(1280, 800)
            app = monitor.ensure_app()
            engine.start()
            n = max(1, a.segments)
            seg_s = seconds / n
            order = [True] if a.no_baseline else [False, True]
            print(f"bench_monitor: {n} x {len(order)} segments of {seg_s:.0f} s "
                  f"(hog {'off' if a.no_hog else 'on'})", flush=True)
            for i in range(n):
                for on in order if i % 2 == 0 else order[::-1]:
                    segs.append(run_segment(app, win, engine, seg_s, on))
                    s = segs[-1]
                    print(f"  monitor {'open  ' if on else 'hidden'} {s.wall:5.1f} s: "
                          f"ticks {s.ticks}, underruns {s.underruns}, xruns {s.xruns}, "
                          f"process CPU {100 * s.proc_cpu / s.wall:5.1f} %, "
                          f"GUI thread {100 * s.gui_cpu / s.wall:5.1f} %", flush=True)
            if a.screenshot:
                win.show()
                win.timer.start()
                QtCore.QTimer.singleShot(300, app.quit)
                app.exec()
                shot = Path(a.screenshot)
                tmp_png = shot.with_name(f".{shot.stem}.tmp-{os.getpid()}.png")
                try:
                    if not win.grab().save(str(tmp_png)):
                        raise OSError(f"could not write {tmp_png}")
                    os.replace(tmp_png, shot)
                finally:
                    tmp_png.unlink(missing_ok=True)
                print(f"screenshot: {shot}")
            win.timer.stop()
            win.close()
            win.deleteLater()
            app.processEvents()
            stats = engine.stats()
    finally:
        if engine is not None:
            # a stalled JACK client can hang the stream's close: never hang the benchmark
            import threading

            stopper = threading.Thread(target=engine.stop, daemon=True)
            stopper.start()
            stopper.join(15)
        if hog is not None:
            hog.terminate()
            hog.wait()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        audio.rescan()  # PortAudio lets go of the server before it goes
        stop_jackd(jackd)

    on = _sum(segs, True)
    off = _sum(segs, False) if not a.no_baseline else None
    cmd = "python -m benchmarks.bench_monitor" + (
        f" --minutes {a.minutes:g}" if a.minutes is not None else
        (f" --seconds {a.seconds:g}" if a.seconds != 60 else ""))
    cmd += "".join(f" {f}" for f, v in (("--no-hog", a.no_hog), ("--no-baseline", a.no_baseline)) if v)
    rows = [("monitor open (offscreen, 30 Hz)", on)] + ([("monitor hidden (engine alone)", off)] if off else [])
    lines = [
        "## Monitor",
        "",
        (f"The real engine plays `{Path(clip).name}` through `{brain.name}` ({engine.mode}) to a "
         f"JACK dummy server ({RATE} Hz, period {PERIOD}, engine blocksize {a.blocksize}), "
         f"{'with a CPU hog on the other core' if hog is not None else 'no CPU hog'}; the run "
         f"alternates segments with the monitor window open (offscreen, pulling snapshots at "
         f"30 Hz) and hidden (timer stopped), {len(segs)} segments in all."),
        "",
        "| condition | seconds | brain ticks/s | underruns | xruns | process CPU | GUI thread CPU | timer slot CPU | refresh | slot ms median / p99 | latency median |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in rows:
        assert r is not None
        lines.append(
            f"| {label} | {r['seconds']:.0f} | {r['tick_rate']:.2f} | {r['underruns']:.0f} | {r['xruns']:.0f} | "
            f"{r['proc_cpu']:.1f} % | {r['gui_cpu']:.1f} % | {r['slot_cpu']:.1f} % | "
            f"{r['refresh_hz']:.1f} Hz | {r['slot_med']:.2f} / {r['slot_p99']:.2f} | "
            f"{r['lat_med']:.1f} ms |"
        )
    lines.append("")
    if off:
        med_on = float(np.median(on["per_seg_cpu"]))
        med_off = float(np.median(off["per_seg_cpu"]))
        lines.append(
            f"Process CPU, median over segments: {med_on:.1f} % with the monitor open, "
            f"{med_off:.1f} % without: the monitor costs {med_on - med_off:.1f} points "
            f"(ratio {med_on / max(med_off, 1e-9):.2f}x). Its own GUI thread used "
            f"{on['gui_cpu']:.1f} % of one core, the timer slot alone {on['slot_cpu']:.1f} %."
        )
    lines.append(
        f"Underruns with the monitor open: **{on['underruns']:.0f}** over {on['seconds']:.0f} s "
        f"(engine total for the whole run: {stats['underruns']} underruns, {stats['xruns']} xruns, "
        f"{stats['ticks']} ticks)."
    )
    lines += [
        "",
        f"Reproduce: `QT_QPA_PLATFORM=offscreen .venv/bin/{cmd}`",
        "",
        (f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
         f"Python {platform.python_version()}, shared with other work while measured "
         f"(noisy); {time.strftime('%Y-%m-%d')}."),
        "",
    ]
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "w") as (f, _):
        f.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
