"""Where a spectrum brain's mel distance on the free-phase film comes from.

Run after ``benchmarks.bench_freefilm`` (its ``--work`` folder holds the held-out stretch
and the brain): ``python -m benchmarks.freefilm_errors --work /tmp/lf-freefilm``. It
pickles the held-out stretch, runs the brain on every picture, and measures, on the
magnitudes played offline through the spectrum decoder:

- oracle substitutions: the true magnitudes, the brain's output moved by a constant level,
  the brain's output with each tick's true energy, the true magnitudes blurred along
  frequency (what a brain that places peaks a bin or two off scores);
- the brain on the training film's first minute (what it fits, against what it
  generalises to);
- the true soundtrack with every tone's pitch off by a known median error (the film's
  generator run again with each height path moved by Gaussian noise): what a brain that
  reads heights that well, and gets all else right, would score;
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


def pitch_oracle(seconds: float, seed: int, start: float, sr: int,
                 cents: tuple[int, ...] = (15, 30, 45, 60)) -> list[tuple[int, float]]:
    """Mel distance of the held-out stretch's soundtrack with every tone's pitch off by a
    median of ``cents``, against the true one: each tone object's height control points
    moved by Gaussian noise (a median absolute error of ``cents``; 3600 cents span the
    heights 0 to 1), the noise bands drawn from the same seed."""
    import dataclasses

    from liveframe.data import freefilm as ff
    from liveframe.offline.metrics import mel_distance_db

    objs = ff.scene(seconds, seed)
    lo = round(start * sr)
    true = ff.soundtrack(objs, seconds, seed=seed, sr=sr)[lo:]
    rng = np.random.default_rng(0)
    sigma = 1.0 / (1200 * np.log2(ff.F_HI / ff.F_LO)) / 0.6745  # per cent of median error
    out = []
    for c in cents:
        moved = [dataclasses.replace(o, y=o.y + rng.normal(0.0, c * sigma, o.y.shape))
                 if o.sound == "tone" else o for o in objs]
        out.append((c, mel_distance_db(ff.soundtrack(moved, seconds, seed=seed, sr=sr)[lo:],
                                       true, sr=sr)))
    return out


def by_objects(rendered: np.ndarray, true: np.ndarray, spec, seconds: float, seed: int,
               start: float) -> list[tuple[str, int, float]]:
    """The mel distance (as :func:`~liveframe.offline.metrics.mel_distance_db`: RMS over
    the bands per frame, averaged) over the frames of the ticks where each set of objects
    is heard (louder than 0.005)."""
    from liveframe.data import freefilm as ff
    from liveframe.offline.metrics import HOP_LENGTH, TOP_DB, log_mel

    sr = spec.sample_rate
    n = min(len(rendered), len(true))
    lt = log_mel(true[:n], sr=sr)
    ref = float(lt.max())
    lr = np.maximum(log_mel(rendered[:n], sr=sr, ref=ref), ref - TOP_DB)
    err = np.sqrt(np.mean((lr - np.maximum(lt, ref - TOP_DB)) ** 2, axis=1))
    tick = np.minimum(np.arange(len(err)) * HOP_LENGTH // spec.hop, n // spec.hop - 1)
    t = start + np.arange(n // spec.hop) / spec.fps
    objs = ff.scene(seconds, seed)
    heard = np.array([ff.loudness(o, t) > 0.005 for o in objs])[:, tick]  # [objects, frames]
    groups = [("nothing", ~heard.any(axis=0))]
    for o, h in zip(objs, heard, strict=True):
        groups.append((f"the {o.shape} ({o.sound}) alone", h & (heard.sum(axis=0) == 1)))
    groups.append(("two objects or more", heard.sum(axis=0) >= 2))
    return [(name, len(np.unique(tick[m])), float(err[m].mean()))
            for name, m in groups if m.any()]


def measure(brain_path: Path, film: Path, work: Path, *, seconds: float, seed: int,
            start: float) -> list[str]:
    from liveframe.core.brain import Brain
    from liveframe.core.spectral import decode
    from liveframe.data import freefilm as ff
    from liveframe.data.dataset import load_dataset
    from liveframe.offline.metrics import mel_distance_db
    from liveframe.train.data import Framing, soundtrack, spectrum_targets

    ds_path = work / "heldout-grain.npz"
    fit_path = work / "train-grain.npz"
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
    played = decode(pred, spec)  # the brain's magnitudes, played once for both tables
    rows = [("the true magnitudes", mel(y)),
            ("the brain", mel_distance_db(played, true, sr=spec.sample_rate))]
    rows += [(f"the brain {g:+d} dB", mel(pred + g / DB)) for g in (2, 4, 6)]
    rows += [("the brain with each tick's true energy", mel(pred - penergy + energy))]
    rows += [(f"the true magnitudes blurred by {s:g} bins (sigma)", mel(_blur(y, spec.bins, s)))
             for s in (0.5, 1.0, 2.0)]
    if fit_path.is_file():  # the training film's first minute, as the brain plays it
        fit = load_dataset(fit_path)
        n = min(len(fit), round(60 * spec.fps))
        fpred = np.concatenate([brain.run(fit.frames[i:min(i + 64, n)]) for i in range(0, n, 64)])
        ftrue = soundtrack(fit.targets[:n], Framing(str(fit.meta["framing"]), spec.hop))
        rows += [("the brain on the training film's first minute (trained on)",
                  mel_distance_db(decode(fpred, spec), ftrue[: n * spec.hop],
                                  sr=spec.sample_rate))]
    lines = ["| magnitudes played (rtpghi) | mel distance dB |", "|---|---:|"]
    lines += [f"| {name} | {v:.2f} |" for name, v in rows]
    lines += ["", "| the true soundtrack, every tone's pitch off by a median of | mel distance dB |",
              "|---|---:|"]
    lines += [f"| {c} cents | {v:.2f} |" for c, v in pitch_oracle(seconds, seed, start,
                                                                  spec.sample_rate)]

    lines += ["", "| what is heard (the held-out stretch) | ticks | the brain's mel distance dB |",
              "|---|---:|---:|"]
    lines += [f"| {name} | {n} | {v:.2f} |"
              for name, n, v in by_objects(played, true, spec, seconds, seed, start)]

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
