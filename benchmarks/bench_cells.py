"""The cells' sum in an exported spectrum brain: onnxruntime's ReduceLogSumExp against the
same sum spelt out.

    .venv/bin/python -m benchmarks.bench_cells [--rounds 300] [--checkpoint X.pt] [--out FILE]

``sources``, ``partials`` and ``tones`` brains add their 64 cells' magnitudes with a
log-sum-exp over the cells (1539 values each). :func:`liveframe.train.model._sum_cells`
exports it as max plus the log of the summed exps; ``torch.logsumexp`` exports as one
``ReduceLogSumExp`` node, the form it replaced, kept here as the reference. The same net
(``--checkpoint``: a trained one's best weights; default: the ``tones`` and ``sources``
nets at their default sizes, seeded) is exported both ways with the exporter's opset and
names, and one picture goes through each graph with the instrument's own session options
(one thread), the two interleaved picture by picture: median and p99 of ``--rounds``, and
the largest difference of the two graphs' outputs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_lobes import onnx_session

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "cells.md"


def reduce_node(x):  # type: ignore[no-untyped-def]
    """``torch.logsumexp`` over the cells: one ReduceLogSumExp node in the graph."""
    import torch

    return torch.logsumexp(x, dim=2)


def nets(checkpoint: Path | None) -> dict:  # type: ignore[type-arg]
    """{name: net} to export: the checkpoint's, or seeded ``tones`` and ``sources``."""
    import torch

    import liveframe.train.model as M
    from liveframe.train import ARCHS

    if checkpoint is not None:
        from liveframe.train.checkpoint import state_from_checkpoint
        from liveframe.train.trainer import load_checkpoint

        ck = load_checkpoint(checkpoint)
        _, net = state_from_checkpoint(ck)  # the net as `liveframe export` rebuilds it
        return {f"{checkpoint.name} ({ck['config']['arch']})": net}
    out = {}
    for name, partials, harmonics in (("tones", M.TONES, M.HARMONICS), ("sources", 0, 1)):
        torch.manual_seed(0)
        sizes = (64 * 64, *ARCHS[name], 3 * 513)
        out[name] = M.DenseBrain(sizes, ceiling=0.0, conv_shape=(1, 64, 64), sources=True,
                                 partials=partials, frames=3, harmonics=harmonics).eval()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_cells")
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="a trained spectrum brain's checkpoint (default: seeded nets)")
    ap.add_argument("--out", type=Path, default=RESULT)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)

    import torch

    import liveframe.train.model as M

    torch.set_num_threads(1)
    spelt = M._sum_cells
    forms = {"spelt out": spelt, "ReduceLogSumExp": reduce_node}
    x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    pics = np.random.default_rng(2).random((8, 1, 64, 64), dtype=np.float32)
    load = os.getloadavg()[0]
    rows = []
    for name, net in nets(a.checkpoint).items():
        sessions = {}
        try:
            for form, fn in forms.items():
                M._sum_cells = fn
                sessions[form] = onnx_session(net, x)
        finally:
            M._sum_cells = spelt
        inp = sessions["spelt out"].get_inputs()[0].name
        outs = {f: np.concatenate([s.run(None, {inp: p[None]})[0] for p in pics])
                for f, s in sessions.items()}
        worst = float(np.abs(outs["spelt out"] - outs["ReduceLogSumExp"]).max())
        one = pics[:1]
        times: dict[str, list[float]] = {f: [] for f in forms}
        for s in sessions.values():  # warm-up
            for _ in range(20):
                s.run(None, {inp: one})
        for _ in range(a.rounds):
            for f, s in sessions.items():
                t0 = time.perf_counter()
                s.run(None, {inp: one})
                times[f].append((time.perf_counter() - t0) * 1e3)
        med = {f: statistics.median(v) for f, v in times.items()}
        p99 = {f: float(np.percentile(v, 99)) for f, v in times.items()}
        rows += [f"| {name} | {f} | {med[f]:.3f} | {p99[f]:.3f} | |" for f in forms]
        rows.append(f"| {name} | ReduceLogSumExp / spelt out | "
                    f"{med['ReduceLogSumExp'] / med['spelt out']:.2f}x | | {worst:.2g} |")
    what = (f"`--checkpoint {a.checkpoint}`" if a.checkpoint is not None
            else "the `tones` and `sources` nets at their default sizes, seeded")
    cmd = "    .venv/bin/python -m benchmarks.bench_cells --rounds " + str(a.rounds) + (
        f" --checkpoint {a.checkpoint}" if a.checkpoint is not None else "")
    text = "\n".join([
        "## The cells' sum in an exported spectrum brain",
        "",
        f"The same net ({what}) exported to ONNX twice: the cells' log-sum-exp spelt out "
        "(max, exp, sum, log: what `liveframe export` writes now) and as one "
        "`ReduceLogSumExp` node (what it wrote before). One picture through each graph, "
        "onnxruntime with the instrument's session options (one thread), the two "
        f"interleaved picture by picture; median and p99 of {a.rounds}. The last column is "
        "the largest difference of the two graphs' log-magnitudes on 8 random pictures.",
        "",
        "| net | cells' sum | one picture, median ms | p99 ms | largest difference |",
        "|---|---|---:|---:|---:|",
        *rows,
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}; 1-minute load average {load:.1f} when it began.",
        "",
        "Reproduce:",
        "",
        cmd,
        "",
    ])
    print(text)
    if not a.no_write:
        a.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
