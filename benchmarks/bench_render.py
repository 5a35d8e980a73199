"""Render throughput against decode-only throughput of the same file (issue 3 target: >= 0.8).

    .venv/bin/python -m benchmarks.bench_render [--seconds 20] [--size 640x360] [--repeats 3]

Writes benchmarks/results/render.md. The brain is brains/default.onnx when it exists,
otherwise a random dense brain of the 2015 default shape (4096-1000-1470, grain framing),
which costs the same to run.
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

import numpy as np


def dense_brain(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from liveframe import constants as C
    from liveframe.brain import BrainSpec, attach_spec

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


def make_clip(path: Path, seconds: float, size: tuple[int, int]) -> Path:
    from liveframe.clips import write_clip

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/render.md")
    a = ap.parse_args(argv)
    import av

    from liveframe import constants as C
    from liveframe.brain import Brain
    from liveframe.frames import MediaReader
    from liveframe.render import render, render_signal

    size = tuple(int(v) for v in a.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        clip = make_clip(d / "clip.mkv", a.seconds, size)  # type: ignore[arg-type]
        brain_path = C.DEFAULT_BRAIN if C.DEFAULT_BRAIN.exists() else dense_brain(d / "dense.onnx")
        brain = Brain.load(brain_path)
        n_frames = int(a.seconds * 30)

        def decode_raw() -> None:
            with av.open(str(clip)) as c:
                st = c.streams.video[0]
                st.thread_type = "AUTO"
                for _ in c.decode(st):
                    pass

        def decode_64() -> None:
            with MediaReader(clip) as r:
                for _ in r.frames():
                    pass

        cases = {
            "decode only (PyAV decode, no scaling)": decode_raw,
            "decode + 64x64 grey (MediaReader.frames)": decode_64,
            "render_signal ola (decode, brain, synth)": lambda: render_signal(clip, brain),
            "render ola -> .wav": lambda: render(clip, d / "o.wav", brain=brain),
            "render ola -> .mkv (stream copy + flac)": lambda: render(clip, d / "o.mkv",
                                                                      brain=brain),
            "render granular -> .wav": lambda: render(clip, d / "g.wav", brain=brain,
                                                      mode="granular"),
            "render csound -> .wav": lambda: render(clip, d / "c.wav", brain=brain,
                                                    mode="csound"),
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(a.repeats):  # interleaved, so load drifts hit every case alike
            for k, fn in cases.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["decode only (PyAV decode, no scaling)"]
    lines = [
        "## Render throughput (issue 3)",
        "",
        f"Clip: {a.seconds:g} s, {size[0]}x{size[1]} H.264 (x264 ultrafast) at 30 fps, "
        f"{n_frames} frames, FLAC soundtrack. Brain: `{brain_path.name}` "
        f"({'the shipped default' if brain_path == C.DEFAULT_BRAIN else 'random dense 4096-1000-1470, the default architecture'}). "
        f"Median of {a.repeats} interleaved runs.",
        "",
        "| case | median s | frames/s | throughput vs decode only |",
        "|---|---:|---:|---:|",
    ]
    for k in cases:
        lines.append(f"| {k} | {med[k]:.3f} | {n_frames / med[k]:.0f} | {base / med[k]:.2f} |")
    lines += [
        "",
        "Target: render throughput >= 0.8 of decode-only throughput of the same file.",
        "",
        f"Command: `.venv/bin/python -m benchmarks.bench_render --seconds {a.seconds:g} "
        f"--size {a.size} --repeats {a.repeats}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}, {platform.platform()} (shared with other jobs while "
        "measured).",
        "",
    ]
    text = "\n".join(lines)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
