"""Render throughput against decode-only throughput of the same file (issue 3 target: >= 0.8).

    .venv/bin/python -m benchmarks.bench_render [--seconds 10,60] [--sizes 640x360,1280x720]
        [--repeats 5] [--brain FILE] [--no-stages] [--repo PATH] [--out FILE]

``--repo PATH`` measures another checkout of liveframe (its package first on ``sys.path``,
this venv's libraries; the layered package or the flat one before it) and ``--out`` says
where its table goes, so two checkouts can be compared with the same script and brain.
Writes benchmarks/results/render.md (or ``--out``): per clip, the timed cases and (unless --no-stages) each
stage of a render timed alone on one thread, per tick, against decoding. The brain is brains/default.onnx when it exists,
otherwise a random dense brain of the 2015 default shape (4096-1000-1470, grain framing).
Decode-only is timed two ways, FFmpeg's frame and slice threads (thread_type AUTO, FFmpeg's
thread count: one per core, plus one) and FFmpeg's default (slice threads only), and the
baseline of each round is the faster of the two (on this 2-core machine frame threads cost
more than they give, at every size measured). Every render decodes as `liveframe render` does (render.DECODER_THREADS:
slice threads), except one informative render_signal row that decodes with frame threads.
The contention table times decoding alone and next to a busy process: where two busy cores
slow each other (whatever they share on the host), what a render adds to decoding cannot
hide behind it.
Every clip length and size is its own set of interleaved rounds: a ratio is always between
runs of the same round.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np


def api() -> SimpleNamespace:
    """What this benchmark calls, from the liveframe first on ``sys.path``: the layered
    package (``liveframe.core``, ``liveframe.offline``) or the flat one before it."""
    import importlib.util

    from liveframe import constants as C

    if importlib.util.find_spec("liveframe.offline") is None:  # the flat package
        from liveframe.clips import write_clip

        from liveframe import brain, frames, render, synth

        def inline(clip: Path, b: Any) -> None:
            render.synthesize(render.BlockStream(clip, b, threaded=False), mode="ola")

        def all_cores(clip: Path, b: Any) -> None:
            reader = frames.MediaReader(clip, threads=True)
            render.synthesize(render.BlockStream(clip, b, reader=reader), mode="ola")

        return SimpleNamespace(
            brain_module="liveframe.brain", default_brain=C.DEFAULT_BRAIN,
            Brain=brain.Brain, BrainSpec=brain.BrainSpec, attach_spec=brain.attach_spec,
            MediaReader=frames.MediaReader, Scaler=frames.Scaler,
            on_brain_clock=frames.on_brain_clock, with_context=frames.with_context,
            make_synth=synth.make_synth, BlockGuard=render.BlockGuard, BATCH=render.BATCH,
            CONTAINERS=render.CONTAINERS, write_audio=render.write_audio,
            write_muxed=render.write_muxed, render=render.render,
            render_signal=render.render_signal, write_clip=write_clip,
            inline=inline, all_cores=all_cores,
        )
    from liveframe.core import brain, media, safety, shipped, spec, synth
    from liveframe.data.clips import write_clip
    from liveframe.offline import pictures, render, sinks

    def inline_(clip: Path, b: Any) -> None:
        render.render_pictures(b, pictures.PictureStream(clip, b.spec, threaded=False))

    def all_cores_(clip: Path, b: Any) -> None:
        reader = media.MediaReader(clip, threads=True)
        render.render_pictures(b, pictures.PictureStream(clip, b.spec, reader=reader))

    return SimpleNamespace(
        brain_module="liveframe.core.brain",
        default_brain=shipped.shipped_file("brains/default.onnx"),
        Brain=brain.Brain, BrainSpec=spec.BrainSpec, attach_spec=brain.attach_spec,
        MediaReader=media.MediaReader, Scaler=media.Scaler,
        on_brain_clock=media.on_brain_clock, with_context=media.with_context,
        make_synth=synth.make_synth, BlockGuard=safety.BlockGuard, BATCH=pictures.BATCH,
        CONTAINERS=sinks.CONTAINERS, write_audio=sinks.write_audio,
        write_muxed=sinks.write_muxed, render=render.render,
        render_signal=render.render_signal, write_clip=write_clip,
        inline=inline_, all_cores=all_cores_,
    )


def dense_brain(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from liveframe import constants as C

    lf = api()
    BrainSpec, attach_spec = lf.BrainSpec, lf.attach_spec

    spec = BrainSpec(arch="shallow", layers=(4096, 1000, 1470))
    rng = np.random.default_rng(0)
    w1 = (rng.standard_normal((4096, 1000)) / 64).astype(np.float32)
    w2 = (rng.standard_normal((1000, 1470)) / 100).astype(np.float32)
    nodes = [
        helper.make_node("Flatten", [C.INPUT_NAME], ["x"], axis=1),
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["o"]),
        helper.make_node("Tanh", ["o"], [C.OUTPUT_NAME]),
    ]
    g = helper.make_graph(
        nodes, "dense",
        [helper.make_tensor_value_info(C.INPUT_NAME, TensorProto.FLOAT, ["N", 1, 64, 64])],
        [helper.make_tensor_value_info(C.OUTPUT_NAME, TensorProto.FLOAT, ["N", 1470])],
        initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 8
    attach_spec(m, spec)
    onnx.save(m, str(path))
    return path


def decode_all(clip: Path, frame_threads: bool = True) -> None:
    """Decode-only: every picture, with FFmpeg's frame and slice threads (AUTO) or with its
    default (slice threads only)."""
    import av

    with av.open(str(clip)) as c:
        st = c.streams.video[0]
        if frame_threads:
            st.thread_type = "AUTO"
        for _ in c.decode(st):
            pass


def make_clip(path: Path, seconds: float, size: tuple[int, int]) -> Path:
    write_clip = api().write_clip
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    sr = 48000

    def frames():
        for i in range(int(seconds * 30)):
            t = i / 30
            pic = (127 + 100 * np.sin(xx / 17 + 3 * t) * np.cos(yy / 23 - 2 * t)).astype(np.uint8)
            yield t, pic

    tt = np.arange(int(seconds * sr)) / sr
    return write_clip(path, frames(), audio=0.2 * np.sin(2 * np.pi * 220 * tt), sr=sr)


CASES = (
    "decode only, frame + slice threads (PyAV decode, no scaling)",
    "decode only, slice threads (FFmpeg's default)",
    "decode + 64x64 grey (MediaReader.frames)",
    "render_signal ola, inline (no decode thread)",
    "render_signal ola (decode thread, brain, synth)",
    "render_signal ola, brain on 2 ort threads",
    "render_signal ola, decoder threads on every core (as decode only)",
    "render ola -> .wav",
    "render ola -> .mkv (stream copy + flac)",
    "render granular -> .wav",
    "render csound -> .wav",
)
DECODE_ONLY = (CASES[0], CASES[1])
"""The baseline of a round is the faster of these."""
BASE = "decode only (the faster of the two)"
TARGET_ROWS = (CASES[4], CASES[7], CASES[8])


def bench_clip(
    clip: Path, d: Path, brain_path: Path, repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Per case on ``clip``: median seconds, and the median over rounds of decode-only
    seconds (the faster decode-only of the round, :data:`BASE`) over the case's seconds in
    the same round (runs interleaved, one warm-up round first)."""

    lf = api()
    Brain, MediaReader, render, render_signal = lf.Brain, lf.MediaReader, lf.render, lf.render_signal

    brain = Brain.load(brain_path)  # what `liveframe render` loads: 1 onnxruntime thread
    brain2 = Brain.load(brain_path, threads=2)

    def decode_raw() -> None:
        decode_all(clip)

    def decode_slice() -> None:
        decode_all(clip, frame_threads=False)

    def decode_64() -> None:
        with MediaReader(clip) as r:
            for _ in r.frames():
                pass

    def inline() -> None:
        lf.inline(clip, brain)

    def all_cores() -> None:
        # FFmpeg's own thread count, as decode only: no core left to the brain
        lf.all_cores(clip, brain)

    fns = {
        CASES[0]: decode_raw,
        CASES[1]: decode_slice,
        CASES[2]: decode_64,
        CASES[3]: inline,
        CASES[4]: lambda: render_signal(clip, brain),
        CASES[5]: lambda: render_signal(clip, brain2),
        CASES[6]: all_cores,
        CASES[7]: lambda: render(clip, d / "o.wav", brain=brain),
        CASES[8]: lambda: render(clip, d / "o.mkv", brain=brain),
        CASES[9]: lambda: render(clip, d / "g.wav", brain=brain, mode="granular"),
        CASES[10]: lambda: render(clip, d / "c.wav", brain=brain, mode="csound"),
    }
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(repeats + 1):  # interleaved, so load drifts hit every case alike
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if r:  # round 0 warms caches and is not counted
                times[k].append(time.perf_counter() - t0)
    times[BASE] = [min(a, b) for a, b in zip(*(times[k] for k in DECODE_ONLY))]
    med = {k: statistics.median(v) for k, v in times.items()}
    paired = {
        k: statistics.median(b / t for b, t in zip(times[BASE], v)) for k, v in times.items()
    }
    return med, paired


STAGE_SAMPLE = 60
"""Decoded pictures kept in memory to time the scaling on (the cost per picture is flat)."""


def stage_costs(clip: Path, d: Path, brain_path: Path, repeats: int = 3) -> dict[str, float]:
    """Each stage of a render alone, on this thread, in microseconds per tick (median of
    ``repeats``): what render spends besides decoding, to compare with the decode row."""
    import av

    lf = api()
    Brain, MediaReader, Scaler = lf.Brain, lf.MediaReader, lf.Scaler
    on_brain_clock, with_context, BATCH = lf.on_brain_clock, lf.with_context, lf.BATCH
    BlockGuard, CONTAINERS = lf.BlockGuard, lf.CONTAINERS
    write_audio, write_muxed = lf.write_audio, lf.write_muxed

    def run_synth(blocks: list[np.ndarray]) -> np.ndarray:
        """ola, one synth step a tick (what render's synthesis does), latency trimmed."""
        if getattr(spec, "spectral", False):  # the decoder (rtpghi phase), as render plays it
            from liveframe.core.spectral import SpectralSynth
            s = SpectralSynth(spec, "ola")
        else:
            s = lf.make_synth("ola", hop=spec.hop, framing=spec.framing)
        out = [s.process(b) for batch in blocks for b in batch]
        out.append(s.flush())
        return np.concatenate(out)[s.latency :]

    brain = Brain.load(brain_path)
    spec = brain.spec
    hist: list[np.ndarray] = []
    with MediaReader(clip) as r:  # the brain's inputs, as a render makes them (not timed)
        frames = r.frames(size=(spec.width, spec.height), channels=spec.channels)
        inputs = [with_context(vf.pixels, hist, spec.context)
                  for _, vf in on_brain_clock(frames, fps=spec.fps)]
    ticks = len(inputs)
    pixels = [np.stack(inputs[i : i + BATCH]) for i in range(0, ticks, BATCH)]
    blocks = [brain.run(px) for px in pixels]
    signal = run_synth(blocks)
    with av.open(str(clip)) as c:
        st = c.streams.video[0]
        st.thread_type = "AUTO"
        sample = [f for _, f in zip(range(STAGE_SAMPLE), c.decode(st))]

    def decode() -> None:
        decode_all(clip, frame_threads=False)

    def scale() -> None:
        sc = Scaler((spec.width, spec.height), spec.channels)
        for f in sample:
            sc(f)

    def context() -> None:
        hist: list[np.ndarray] = []
        out = np.empty((BATCH, *spec.input_shape), np.uint8)
        for px in pixels:
            for i in range(px.shape[0]):
                with_context(px[i, -spec.channels :], hist, spec.context, out=out[i % BATCH])

    def infer() -> None:
        for px in pixels:
            brain.run(px)

    def synth() -> None:
        run_synth(blocks)

    def guard() -> None:
        BlockGuard(sr=spec.sample_rate, block=spec.hop).process(signal.copy())

    def write(suffix: str) -> Any:
        fmt, codec, _ = CONTAINERS[suffix]
        if suffix == ".mkv":
            return lambda: write_muxed(d / "s.mkv", clip, signal, sr=spec.sample_rate,
                                       fmt=fmt, codec=codec)
        return lambda: write_audio(d / f"s{suffix}", signal, sr=spec.sample_rate, fmt=fmt,
                                   codec=codec)

    stages: dict[str, tuple[Any, int]] = {
        "decode (PyAV, slice threads, as a render decodes)": (decode, ticks),
        "scale to 64x64 grey (swscale AREA)": (scale, len(sample)),
        "context stacking (with_context)": (context, ticks),
        f"brain ({'-'.join(map(str, spec.layers or ())) or spec.arch}, batches of {BATCH})":
            (infer, ticks),
        ("synth ola (spectral decoder, rtpghi phase, one step a tick)"
         if getattr(spec, "spectral", False) else "synth ola (the synth, one step a tick)"):
            (synth, ticks),
        "guard (BlockGuard)": (guard, ticks),
        "encode .wav": (write(".wav"), ticks),
        "encode .flac": (write(".flac"), ticks),
        "write .mkv from the finished signal (open, packet copy, flac)": (write(".mkv"), ticks),
    }
    out = {}
    for name, (fn, n) in stages.items():
        fn()  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times) / n * 1e6
    return out


BUSY = {
    "a busy Python loop": "while True:\n    pass",
    "the brain in a loop (batches of 256)": (
        "import sys, numpy as np\n"
        "from {brain_module} import Brain\n"
        "b = Brain.load(sys.argv[1])\n"
        "x = np.random.default_rng(0).integers(0, 256, (256, *b.spec.input_shape), np.uint8)\n"
        "while True:\n    b.run(x)"
    ),
}
"""What runs in the other process of the contention table."""


def contention(clip: Path, brain_path: Path, repeats: int = 3) -> dict[str, float]:
    """Seconds to decode ``clip`` (slice threads, as a render decodes) alone and next to each
    :data:`BUSY` process (median of ``repeats``, interleaved): how much two busy threads slow
    each other on this machine, whatever they share (a physical core, caches, the host)."""
    import subprocess

    def decode() -> float:
        t0 = time.perf_counter()
        decode_all(clip, frame_threads=False)
        return time.perf_counter() - t0

    lf = api()
    root = str(Path(sys.modules["liveframe"].__file__).resolve().parent.parent)  # the checkout
    env = dict(os.environ, PYTHONPATH=root)
    times: dict[str, list[float]] = {"alone": []}
    for _ in range(repeats):
        times["alone"].append(decode())
        for name, code in BUSY.items():
            code = code.replace("{brain_module}", lf.brain_module)
            p = subprocess.Popen([sys.executable, "-c", code, str(brain_path)], cwd=root,
                                 env=env)
            try:
                time.sleep(1.0)  # started and busy (the brain loaded)
                times.setdefault(name, []).append(decode())
            finally:
                p.kill()
                p.wait()
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", default="10",
                    help="comma-separated clip lengths in seconds, e.g. 10,60")
    ap.add_argument("--sizes", default="640x360,1280x720",
                    help="comma-separated clip sizes, e.g. 640x360,1920x1080")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds (median)")
    ap.add_argument("--brain", default=None,
                    help="brain file (default: brains/default.onnx, else a random dense one)")
    ap.add_argument("--out", default="benchmarks/results/render.md",
                    help="where the table goes (default: benchmarks/results/render.md)")
    ap.add_argument("--repo", default=None, metavar="PATH",
                    help="measure the liveframe of another checkout (first on sys.path)")
    ap.add_argument("--no-stages", action="store_true",
                    help="skip the per-stage table (each stage alone, one thread)")
    a = ap.parse_args(argv)
    if a.repo:
        if "liveframe" in sys.modules:
            ap.error("--repo must be given before liveframe is imported (run this module)")
        sys.path.insert(0, str(Path(a.repo).resolve()))
    lf = api()
    Brain = lf.Brain

    lengths = [float(v) for v in a.seconds.split(",")]
    sizes = [tuple(int(v) for v in s.split("x")) for s in a.sizes.split(",")]
    load_start = os.getloadavg()[0]
    lines = ["## Render speed", ""]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        if a.brain:
            brain_path = Path(a.brain)
        elif lf.default_brain.exists():
            brain_path = lf.default_brain
        else:
            brain_path = dense_brain(d / "dense.onnx")
        spec = Brain.load(brain_path).spec
        layers = "-".join(map(str, spec.layers)) if spec.layers else spec.arch
        clips = ", ".join(f"{s:g} s ({int(s * 30)} frames)" for s in lengths)
        lines += [
            (f"Brain: `{brain_path.name}` ({spec.arch}, layers {layers}, {spec.framing} "
            f"framing; loaded as `liveframe render` loads it, 1 onnxruntime thread unless "
            f"the row says otherwise). Clips: {clips} at 30 fps, "
            "H.264 (x264 ultrafast), FLAC soundtrack. Median of "
            f"{a.repeats} interleaved rounds after one warm-up round, per clip. Decode only "
            "is timed with FFmpeg's frame and slice threads (`thread_type = AUTO`, FFmpeg's "
            "thread count: one per core, plus one) and with FFmpeg's default (slice "
            "threads); the baseline of each round is the faster of the two. Renders decode "
            "as `liveframe render` does (`render.DECODER_THREADS`: slice threads); the row "
            "that says otherwise decodes with frame threads. Clip and rendered files are in a "
            "temporary folder on the local disk; each render replaces the previous round's "
            "file."),
            "",
        ]
        results = {}
        for seconds in lengths:
            n_frames = int(seconds * 30)
            for size in sizes:
                tag = f"{seconds:g} s {size[0]}x{size[1]}"
                clip = make_clip(d / "clip.mkv", seconds, size)  # type: ignore[arg-type]
                med, paired = bench_clip(clip, d, brain_path, a.repeats)
                results[tag] = (med, paired)
                base = med[BASE]
                lines += [
                    f"### {tag}",
                    "",
                    ("| case | median s | frames/s | vs decode only (ratio of medians) "
                    "| vs decode only (median of per-round ratios) |"),
                    "|---|---:|---:|---:|---:|",
                ]
                for k in (BASE, *CASES):
                    lines.append(
                        f"| {k} | {med[k]:.3f} | {n_frames / med[k]:.0f} | "
                        f"{base / med[k]:.2f} | {paired[k]:.2f} |"
                    )
                lines.append("")
                if not a.no_stages:
                    stages = stage_costs(clip, d, brain_path)
                    dec = next(iter(stages.values()))
                    lines += [
                        (f"Each stage alone on one thread (median of 3; scaling timed on the "
                         f"first {STAGE_SAMPLE} pictures): what a render adds to decoding, "
                         "before any overlap between its two threads."),
                        "",
                        "| stage | us per tick | vs decode |",
                        "|---|---:|---:|",
                    ]
                    lines += [f"| {k} | {v:.1f} | {v / dec:.2f} |" for k, v in stages.items()]
                    lines.append("")
                    busy = contention(clip, brain_path)
                    alone = busy["alone"]
                    lines += [
                        ("Decoding alone and next to another busy process (slice threads, "
                         "median of 3): what two busy threads cost each other on this "
                         "machine."),
                        "",
                        "| decode | us per tick | time vs alone |",
                        "|---|---:|---:|",
                    ]
                    lines += [f"| {k} | {v / n_frames * 1e6:.1f} | {v / alone:.2f} |"
                              for k, v in busy.items()]
                    lines.append("")
                clip.unlink()
    lines += [
        ("Render speed as a fraction of decoding the same file alone (1.00: a render costs "
        "no more than decoding; the aim is 0.8 or more). Each cell: ratio of medians / "
        "median of per-round ratios."),
        "",
        "| clip | " + " | ".join(TARGET_ROWS) + " |",
        "|---|" + "---:|" * len(TARGET_ROWS),
    ]
    for tag, (med, paired) in results.items():
        cells = []
        for k in TARGET_ROWS:
            r, p = med[BASE] / med[k], paired[k]
            cells.append(f"{r:.2f} / {p:.2f}")
        lines.append(f"| {tag} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Command: `.venv/bin/python -m benchmarks.bench_render --seconds {a.seconds} "
        f"--sizes {a.sizes} --repeats {a.repeats}"
        + (f" --brain {a.brain}" if a.brain else "")
        + (f" --repo {a.repo}" if a.repo else "") + "`",
        "",
        f"Checkout measured: `{Path(sys.modules['liveframe'].__file__).resolve().parent.parent}`.",
        "",
        (f"Machine: {platform.machine()}, {os.cpu_count()} cores "
        f"({len(os.sched_getaffinity(0))} usable by this run), Python "
        f"{sys.version.split()[0]}, {platform.platform()}, load average "
        f"{load_start:.1f} at the start and {os.getloadavg()[0]:.1f} at the end (shared "
        "with other jobs while measured)."),
        "",
    ]
    text = "\n".join(lines)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".tmp")
    tmp_out.write_text(text)
    os.replace(tmp_out, out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
