"""The ``tones`` net's partial lobes: cut off near their peaks against every lobe over every bin.

    .venv/bin/python -m benchmarks.bench_lobes [--steps 30] [--threads 1] [--out FILE]

:func:`liveframe.train.model._lobes` computes each main lobe only within
:data:`~liveframe.train.model.LOBE_REACH` of its peak and scatters it into the frame; the
whole-spectrum form (every lobe over every bin, then a log-sum-exp over the lobes) is what
it replaced, kept here as the reference. Both run the same ``tones`` net (the default
sizes: 4096-128-1539, 4 harmonic sources of 8 harmonics, 3 frames of 513 bins), side by
side in one run, interleaved step by step: a training step (batch 64: forward, backward,
AdamW), and one picture's forward pass (what a live tick asks of torch; the live
instrument runs the exported ONNX graph). Also the largest difference of the two forms'
outputs on the batch. Medians of ``--steps``; the ratio is whole over cut.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "lobes.md"


def whole_lobes(freq, level, *, bins: int, var: float):  # type: ignore[no-untyped-def]
    """Every lobe over every bin, log-summed over the lobes: the form that was replaced."""
    import torch

    d = torch.arange(bins, dtype=freq.dtype).view(1, 1, 1, bins) - freq.unsqueeze(3)
    n, k, f = freq.shape
    lobes = level.unsqueeze(3) - d * d * (0.5 / var)
    return torch.logsumexp(lobes.reshape(n, k, f * bins), dim=1).float()


def onnx_session(net, x):  # type: ignore[no-untyped-def]
    """The net, as it is now, exported to ONNX (the exporter's opset and names) and loaded
    by onnxruntime with the instrument's own session options (one thread)."""
    import io
    import warnings

    import onnxruntime as ort
    import torch

    from liveframe import constants as C
    from liveframe.core.brain import session_options
    from liveframe.train.export import OPSET

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), buf, input_names=[C.INPUT_NAME],
                          output_names=[C.OUTPUT_NAME], opset_version=OPSET, dynamo=False)
    return ort.InferenceSession(buf.getvalue(), sess_options=session_options(threads=1),
                                providers=["CPUExecutionProvider"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_lobes")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULT)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)

    import torch

    import liveframe.train.model as M
    from liveframe.train import ARCHS

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    sizes = (64 * 64, *ARCHS["tones"], 3 * 513)
    net = M.DenseBrain(sizes, ceiling=0.0, conv_shape=(1, 64, 64), sources=True,
                       partials=M.TONES, frames=3, harmonics=M.HARMONICS)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(64, 1, 64, 64, generator=g)
    y = torch.randn(64, 3 * 513, generator=g) - 8.0
    forms = {"cut": M._lobes, "whole": whole_lobes}

    sessions = {}
    for form in forms:
        M._lobes = forms[form]
        sessions[form] = onnx_session(net, x[:1])
    one = x[:1].numpy()
    input_name = sessions["cut"].get_inputs()[0].name

    def run(form: str) -> tuple[float, float, float]:
        M._lobes = forms[form]
        t0 = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
        t1 = time.perf_counter()
        with torch.inference_mode():
            net(x[:1])
        t2 = time.perf_counter()
        sessions[form].run(None, {input_name: one})
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3, (time.perf_counter() - t2) * 1e3

    try:
        with torch.no_grad():
            diff = {}
            for form in forms:
                M._lobes = forms[form]
                diff[form] = net(x)
            worst = float((diff["cut"] - diff["whole"]).abs().max())
        load = os.getloadavg()[0]
        times: dict[str, list[tuple[float, float, float]]] = {f: [] for f in forms}
        for form in forms:  # warm-up
            run(form)
        for _ in range(a.steps):
            for form in forms:
                times[form].append(run(form))
    finally:
        M._lobes = forms["cut"]
    med = {f: [statistics.median(t[i] for t in v) for i in range(3)] for f, v in times.items()}
    rows = [f"| {f} | {med[f][0]:.0f} | {med[f][1]:.2f} | {med[f][2]:.2f} |" for f in forms]
    text = "\n".join([
        "## The `tones` net's partial lobes: cut off near their peaks, or over every bin",
        "",
        f"The `tones` net {'-'.join(map(str, sizes))} ({M.TONES} sources of {M.HARMONICS} "
        "harmonics, 3 frames of 513 bins), the same weights, the two forms of its lobes "
        f"interleaved step by step in one run; medians of {a.steps}; {a.threads} torch "
        "thread(s). A training step is batch 64: forward, backward, AdamW; a picture is one "
        "forward pass, in torch and through the graph exported to ONNX (onnxruntime, one "
        "thread).",
        "",
        "| lobes | training step ms | one picture, torch ms | one picture, onnxruntime ms |",
        "|---|---:|---:|---:|",
        *rows,
        "| whole / cut | " + " | ".join(f"{med['whole'][i] / med['cut'][i]:.2f}x"
                                       for i in range(3)) + " |",
        "",
        f"Largest difference of the two forms' log-magnitudes on the batch: {worst:.3g}.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}; 1-minute load average {load:.1f} when it began.",
        "",
        "Reproduce:",
        "",
        f"    .venv/bin/python -m benchmarks.bench_lobes --steps {a.steps} --threads {a.threads}",
        "",
    ])
    print(text)
    if not a.no_write:
        a.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
