"""Where a spectrum brain's mel distance on the free-phase film comes from.

Run after ``benchmarks.bench_freefilm`` (its ``--work`` folder holds the held-out stretch
and the brain): ``python -m benchmarks.freefilm_errors --work /tmp/lf-freefilm``. It
pickles the held-out stretch, runs the brain on every picture, and measures, on the
magnitudes played offline through the spectrum decoder:

- oracle substitutions: the true magnitudes, the brain's output moved by a constant level,
  the brain's output with each tick's true energy, the true magnitudes blurred along
  frequency (what a brain that places peaks a bin or two off scores);
- per object of the scene (known from its seed): the median error, in cents, of the
  strongest peak near a tone's fundamental, and its level against the truth's.

Writes ``benchmarks/results/freefilm_errors.md`` (assembled after the free-phase film's
section).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "freefilm_errors.md"
BIN = Path(sys.executable).parent
DB = 20 / np.log(10)  # nepers of magnitude to dB


def _blur(z: np.ndarray, bins: int, sigma: float) -> np.ndarray:
    k = np.exp(-0.5 * (np.arange(-4, 5) / sigma) ** 2)
    k /= k.sum()
    zz = np.pad(z.reshape(len(z), -1, bins), ((0, 0), (0, 0), (4, 4)), mode="edge")
    return sum(k[i] * zz[:, :, i:i + bins] for i in range(9)).reshape(len(z), -1)


def _peak(s: np.ndarray, i: int) -> float:
    """Parabolic interpolation of a peak at bin ``i``."""
    if 0 < i < s.shape[0] - 1:
        a, b, c = s[i - 1], s[i], s[i + 1]
        den = a - 2 * b + c
        return i + (0.5 * (a - c) / den if den < 0 else 0.0)
    return float(i)


def measure(brain_path: Path, film: Path, work: Path, *, seconds: float, seed: int,
            start: float) -> list[str]:
    from liveframe.core.brain import Brain
    from liveframe.core.spectral import decode
    from liveframe.data import freefilm as ff
    from liveframe.data.dataset import load_dataset
    from liveframe.offline.metrics import mel_distance_db
    from liveframe.train.data import Framing, soundtrack, spectrum_targets

    ds_path = work / "heldout-grain.npz"
    subprocess.run([str(BIN / "liveframe"), "pickle", str(film), "-o", str(ds_path), "-q"],
                   check=True)
    brain, ds = Brain.load(brain_path), load_dataset(ds_path)
    spec = brain.spec
    y = spectrum_targets(ds, spec)
    pred = np.concatenate([brain.run(ds.frames[i:i + 64]) for i in range(0, len(ds), 64)])
    true = soundtrack(ds.targets, Framing(str(ds.meta["framing"]), spec.hop))
    true = true[: len(ds) * spec.hop]

    def mel(z: np.ndarray) -> float:
        return mel_distance_db(decode(z, spec), true, sr=spec.sample_rate)

    energy = 0.5 * np.log(np.sum(np.exp(2.0 * y), axis=1, keepdims=True))
    penergy = 0.5 * np.log(np.sum(np.exp(2.0 * pred), axis=1, keepdims=True))
    rows = [("the true magnitudes", mel(y)), ("the brain", mel(pred))]
    rows += [(f"the brain {g:+d} dB", mel(pred + g / DB)) for g in (2, 4, 6)]
    rows += [("the brain with each tick's true energy", mel(pred - penergy + energy))]
    rows += [(f"the true magnitudes blurred by {s:g} bins (sigma)", mel(_blur(y, spec.bins, s)))
             for s in (0.5, 1.0, 2.0)]
    lines = ["| magnitudes played (rtpghi) | mel distance dB |", "|---|---:|"]
    lines += [f"| {name} | {v:.2f} |" for name, v in rows]

    bins = spec.bins
    mid = slice(bins * (spec.frames // 2), bins * (spec.frames // 2 + 1))
    P, T = pred[:, mid], y[:, mid]
    freqs = np.fft.rfftfreq(spec.n_fft, 1 / spec.sample_rate)
    t = start + np.arange(len(ds)) / spec.fps
    lines += ["", "| object | sound | ticks heard | fundamental's peak: median error (cents) "
              "| p90 | its level against the truth's, median dB |", "|---|---|---:|---:|---:|---:|"]
    for obj in ff.scene(seconds, seed):
        if obj.sound != "tone":
            continue
        amp = ff.loudness(obj, t)
        f0 = ff.fundamental(obj.at(t)[1])
        cents, level = [], []
        for k in np.flatnonzero(amp > 0.3 * amp.max()):
            lo, hi = np.searchsorted(freqs, [f0[k] / 1.15, f0[k] * 1.15])
            if hi - lo < 2:
                continue
            pk, tk = lo + int(np.argmax(P[k, lo:hi])), lo + int(np.argmax(T[k, lo:hi]))
            cents.append(1200 * np.log2(max(_peak(P[k], pk), 0.5) / max(_peak(T[k], tk), 0.5)))
            level.append(DB * (P[k, pk] - T[k, tk]))
        c = np.abs(np.asarray(cents))
        lines.append(f"| {obj.shape} | tone | {len(cents)} | {np.median(c):.0f} | "
                     f"{np.quantile(c, 0.9):.0f} | {np.median(level):+.1f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/lf-freefilm", help="bench_freefilm's --work")
    ap.add_argument("--brain", default=None, help="default: WORK/spectrum.onnx")
    ap.add_argument("--train-seconds", type=float, default=180.0)
    ap.add_argument("--test-seconds", type=float, default=60.0)
    ap.add_argument("--train-seed", type=int, default=2026)
    ap.add_argument("--out", default=str(RESULT))
    ap.add_argument("--no-write", action="store_true", help="print only")
    a = ap.parse_args(argv)
    work = Path(a.work)
    total = a.train_seconds + a.test_seconds
    film = work / f"free-{a.train_seed}-{total:g}s-heldout.mkv"
    brain = Path(a.brain) if a.brain else work / "spectrum.onnx"
    for p in (film, brain):
        if not p.is_file():
            print(f"{p}: not there; run python -m benchmarks.bench_freefilm --work {work} "
                  "first", file=sys.stderr)
            return 2
    lines = measure(brain, film, work, seconds=total, seed=a.train_seed, start=a.train_seconds)
    cmd = " ".join(["python -m benchmarks.freefilm_errors", *(sys.argv[1:] if argv is None
                                                                else argv)])
    text = "\n".join([
        "### Where the free-phase brain's mel distance comes from", "",
        f"The spectrum brain `{brain.name}` on the held-out stretch `{film.name}`, its "
        "magnitudes played offline through the default decoder (rtpghi) and measured "
        "against the true soundtrack; then each tone's pitch as the brain plays it (the "
        "strongest peak within 15 % of the scene's true fundamental, centre frame, ticks "
        "where the object is at least 30 % of its loudest), against the true magnitudes'. "
        "(`liveframe eval` renders the film itself through the instrument's ola path, so "
        "its mel distance for the same brain differs a little from the brain's row here.)",
        "", *lines, "", "Reproduce (after the free-phase benchmark):", "", f"    {cmd}", ""])
    print(text)
    if not a.no_write:
        Path(a.out).write_text(text)
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
