"""Training throughput of the ``shallow`` brain against this machine's fp32 matmul rate.

In one run: (a) the roofline, the median rate of large fp32 matrix multiplies with torch at
the training thread count (the shallow net's own first-layer shape, 256x4096 @ 4096x1000,
and a larger 1024x4096 @ 4096x1024; the better median is the roofline), measured before,
between and after the training epochs (the machine is shared: the same minutes);
(b) ``liveframe.train.trainer.train`` on a synthetic dataset of 27,000 frames
(15 minutes at 30 fps, 64x64 grey, grain targets), epochs of the real trainer
(validation included), reported as frames/s, seconds per epoch, achieved GFLOP/s and the
fraction of the roofline.

FLOPs per training frame are counted two ways: the usual ``3 x forward`` matmul FLOPs, and
the exact count, which leaves out the first layer's input gradient (never computed).

    .venv/bin/python -m benchmarks.bench_train [--frames 27000] [--epochs 3] [--threads N]
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

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "train.md"


def sgemm_rate(m: int, k: int, n: int, *, repeats: int) -> list[float]:
    """GFLOP/s of ``repeats`` timed ``[m, k] @ [k, n]`` fp32 multiplies (after warm-up)."""
    import torch

    g = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=g)
    b = torch.randn(k, n, generator=g)
    out = torch.empty(m, n)
    for _ in range(3):
        torch.mm(a, b, out=out)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        rates.append(2 * m * k * n / (time.perf_counter() - t0) / 1e9)
    return rates


def make_dataset(path: Path, frames: int, seed: int = 0) -> None:
    """Synthetic 64x64 grey frames with grain targets: brightness-scaled noise bursts."""
    from liveframe import constants as C
    from liveframe.data.dataset import DatasetWriter

    rng = np.random.default_rng(seed)
    length = 2 * C.HOP
    meta = dict(sample_rate=C.SAMPLE_RATE, fps=C.FPS, framing="grain", hop=C.HOP,
                length=length, channels=1, width=C.FRAME_SIZE, height=C.FRAME_SIZE)
    base = rng.standard_normal(length).astype(np.float32) * np.float32(0.05)
    with DatasetWriter(path, frame_shape=(1, C.FRAME_SIZE, C.FRAME_SIZE),
                       length=length, meta=meta) as w:
        for start in range(0, frames, 1000):
            n = min(1000, frames - start)
            f = rng.integers(0, 256, (n, 1, C.FRAME_SIZE, C.FRAME_SIZE), dtype=np.uint8)
            bright = f.mean(axis=(1, 2, 3)) / 255.0
            for i in range(n):
                w.append(f[i], (base * np.float32(bright[i])).astype(np.float32))
        w.end_source(kind="video", path="synthetic")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_train")
    ap.add_argument("--frames", type=int, default=27000, help="dataset size (default 27000)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs timed (default 3, median)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeats", type=int, default=15, help="timed matmuls per shape and round")
    ap.add_argument("--no-write", action="store_true", help="do not write results/train.md")
    a = ap.parse_args(argv)

    import torch

    from liveframe.train import ARCHS
    from liveframe.train.model import train_flops
    from liveframe.train.trainer import TrainConfig, train

    torch.set_num_threads(a.threads)
    shapes = [(a.batch_size, 4096, ARCHS["shallow"][0]), (1024, 4096, 1024)]
    rates: dict[tuple[int, int, int], list[float]] = {s: [] for s in shapes}
    for s in shapes:
        rates[s] += sgemm_rate(*s, repeats=a.repeats)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_train") as tmp:
        ds = Path(tmp) / "synthetic.npz"
        t0 = time.perf_counter()
        make_dataset(ds, a.frames)
        print(f"dataset: {a.frames} frames in {time.perf_counter() - t0:.1f} s", flush=True)
        cfg = TrainConfig(kind="pcm", arch="shallow", epochs=a.epochs, batch_size=a.batch_size,
                          patience=a.epochs + 1, seed=0)
        t0 = time.perf_counter()

        def between_epochs(_: dict[str, float]) -> None:
            for s in shapes:  # the roofline, in the same minutes as the training it rates
                rates[s] += sgemm_rate(*s, repeats=max(a.repeats // 3, 3))

        res = train(ds, Path(tmp) / "ck.pt", cfg, threads=a.threads, quiet=True,
                    on_epoch=between_epochs)
        wall = time.perf_counter() - t0
        import liveframe.train.checkpoint as tr

        ck = tr.load_checkpoint(Path(tmp) / "ck.pt")
        sizes = ck["spec"]["layers"]
        n_train = ck["spec"]["provenance"]["train_ticks"]
        n_val = ck["spec"]["provenance"]["val_ticks"]

    for s in shapes:  # and again after training: the machine is shared and noisy
        rates[s] += sgemm_rate(*s, repeats=a.repeats)
    med = {s: statistics.median(r) for s, r in rates.items()}
    roof_shape = max(med, key=lambda s: med[s])
    roof = med[roof_shape]

    secs = [h["seconds"] for h in res.history]
    epoch_s = statistics.median(secs)
    fps = n_train / epoch_s
    conv, exact = train_flops(sizes)
    gf_conv = fps * conv / 1e9
    # validation is a forward pass over the held-out frames, also inside each epoch
    from liveframe.train.model import forward_flops

    gf_all = (n_train * exact + n_val * forward_flops(sizes)) / epoch_s / 1e9

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    cmd = "  .venv/bin/python -m benchmarks.bench_train" + (
        f" --frames {a.frames}" if a.frames != 27000 else "") + (
        f" --epochs {a.epochs}" if a.epochs != 3 else "") + (
        f" --threads {a.threads}" if a.threads != len(os.sched_getaffinity(0)) else "")
    lines = [
        "## Training throughput (`liveframe train`, shallow brain)",
        "",
        f"`shallow` {'-'.join(map(str, sizes))} (64x64 grey, grain framing), batch "
        f"{a.batch_size}, Adam, MSE, fp32, {a.threads} torch threads; synthetic dataset of "
        f"{a.frames} frames ({a.frames / 30 / 60:.1f} min at 30 fps), {n_train} trained and "
        f"{n_val} held out per epoch; median of {len(secs)} epochs of the real trainer "
        "(validation included in the epoch time).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| roofline: fp32 matmul, median of {len(rates[shapes[0]])} | "
        + ", ".join(f"{m}x{k} @ {k}x{n}: {med[(m, k, n)]:.1f} GFLOP/s" for m, k, n in shapes)
        + f" (roofline {roof:.1f}) |",
        f"| seconds per epoch (median; all: {', '.join(f'{s:.1f}' for s in secs)}) "
        f"| {epoch_s:.1f} s |",
        f"| training throughput | {fps:.0f} frames/s |",
        f"| achieved, 3 x forward FLOPs ({conv / 1e6:.1f} MFLOP/frame) | {gf_conv:.1f} GFLOP/s "
        f"= **{gf_conv / roof:.0%} of the roofline** |",
        f"| achieved, exact matmul FLOPs ({exact / 1e6:.1f} MFLOP/frame, + validation) | "
        f"{gf_all:.1f} GFLOP/s = {gf_all / roof:.0%} of the roofline |",
        f"| whole run ({len(secs)} epochs, incl. loading and checkpoints) | {wall:.1f} s |",
        "",
        f"Target: at least 40% of the roofline. The 2015 experiment needed 2000-7000 minutes "
        f"per brain; here one epoch over {a.frames / 30 / 60:.1f} minutes of video takes "
        f"{epoch_s:.0f} s.",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, shared with "
        f"other jobs (1-minute load average {load_before:.1f} when training began; figures "
        "are medians; the roofline is measured before, between and after the epochs).",
        "",
        "Reproduce:",
        "",
        cmd,
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not a.no_write:
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(text)
        print(f"wrote {RESULT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
