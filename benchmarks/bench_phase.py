"""Phase methods side by side on the same magnitudes: quality and cost per tick.

    .venv/bin/python -m benchmarks.bench_phase [--seconds 30] [--footage DIR]
        [--brain X.onnx --clip CLIP ...] [--ticks 2000] [--out FILE]

For each signal, the log-magnitudes a spectrum brain would be trained on
(:func:`liveframe.core.spectral.spectral_targets`, the default spec: n_fft 1024, 3 frames
per tick) are turned back into sound by every causal phase method of
:class:`~liveframe.core.spectral.SpectralDecoder`, by stealing the true soundtrack's own
phase (the oracle: what a perfect phase would give) and by 32 iterations of fast
Griffin-Lim (offline, the quality ceiling). Each row: mel distance to the true sound (dB),
envelope correlation, level (output RMS minus true RMS, dB) and the frame-rate line
(:func:`~liveframe.offline.metrics.frame_artifact_db`) beside the true sound's own.

Signals: a free-phase film's soundtrack (:mod:`liveframe.data.freefilm`, seed 1) and a
synthetic mixture (gliding partials, clicks, noise); with ``--footage DIR`` (what
``tools/fetch_footage.py DIR`` fetched) the two real soundtracks too. ``--brain B --clip C``
(repeatable pairs) adds the brain's own predicted magnitudes of clip C (true = C's sound).

Cost: :meth:`SpectralDecoder.process` per tick for each method, ``--ticks`` ticks of the
film's magnitudes, the methods interleaved in rounds of 100 ticks; median and p99 (ms).
Writes benchmarks/results/phase.md (or ``--out``).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from liveframe import constants as C
from liveframe.core.spec import BrainSpec
from liveframe.core.spectral import SpectralDecoder, decode, griffin_lim, spectral_targets
from liveframe.offline.metrics import envelope_corr, frame_artifact_db, mel_distance_db, rms_dbfs

SPEC = BrainSpec(kind="spectrum")
SR, H = SPEC.sample_rate, SPEC.hop
REAL = {"launch": "oa4_launch.webm", "talk": "testMovie.mp4"}


def free_film(seconds: float) -> np.ndarray:
    from liveframe.data.freefilm import scene, soundtrack

    return soundtrack(scene(seconds, 1), seconds, seed=1)


def mixture(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * SR)) / SR
    f = 300 * 2 ** np.sin(2 * np.pi * 0.3 * t)
    x = 0.2 * np.sin(2 * np.pi * np.cumsum(f) / SR) + 0.1 * np.sin(2 * np.pi * np.cumsum(2.7 * f) / SR)
    clicks = np.zeros_like(t)
    clicks[:: SR // 3] = 1
    burst = np.exp(-np.arange(2000) / 200) * rng.standard_normal(2000) * 0.3
    x += np.convolve(clicks, burst)[: t.shape[0]] + 0.02 * rng.standard_normal(t.shape[0])
    return x.astype(np.float32)


def soundtrack_of(path: Path, seconds: float | None = None) -> np.ndarray:
    from liveframe.core.media import MediaReader

    with MediaReader(path, need_audio=True) as r:
        t0, x = r.read_audio(sample_rate=SR)
    s0 = round(float(t0) * SR)
    x = np.concatenate([np.zeros(max(s0, 0), np.float32), x[max(-s0, 0):]])
    return x if seconds is None else x[: int(seconds * SR)]


def predicted(brain_path: Path, clip: Path) -> tuple[np.ndarray, np.ndarray]:
    """The brain's log-magnitudes for each tick of ``clip``, and the clip's true sound."""
    from liveframe.core.brain import Brain
    from liveframe.core.pipeline import TickPipeline
    from liveframe.offline.pictures import PictureStream

    brain = Brain.load(brain_path)
    if not brain.spec.spectral:
        raise SystemExit(f"{brain_path}: not a spectrum brain")
    pipe = TickPipeline(brain)
    rows: list[np.ndarray] = []
    pipe.listeners.append(lambda t: rows.append(np.array(t.spectrum)))
    for px in PictureStream(clip, brain.spec):
        pipe.step_batch(px)
    true = soundtrack_of(clip)[: len(rows) * H]
    return np.stack(rows), true


def quality(z: np.ndarray, true: np.ndarray, spec: BrainSpec) -> list[dict[str, Any]]:
    n = z.shape[0] * spec.hop
    true = np.pad(true, (0, max(0, n - true.shape[0])))[:n]
    donor = np.concatenate([np.zeros(spec.n_fft // 2 + ((spec.frames - 1) * (spec.hop // spec.frames)) // 2,
                                     np.float32), true])
    cands: list[tuple[str, np.ndarray]] = [(m, decode(z, spec, phase=m)) for m in C.PHASES]
    cands.append(("true phase (oracle)", decode(z, spec, phase="steal", donor=donor)))
    cands.append(("griffin-lim 32 (offline)", griffin_lim(z, spec, n_iter=32)))
    ref_line = frame_artifact_db(true, sr=SR)
    rows = []
    for name, y in cands:
        rows.append({"method": name, "mel_db": mel_distance_db(y, true, sr=SR),
                     "env": envelope_corr(y, true, sr=SR), "level_db": rms_dbfs(y) - rms_dbfs(true),
                     "line_db": frame_artifact_db(y, sr=SR), "true_line_db": ref_line})
    return rows


def cost(z: np.ndarray, ticks: int, rounds: int = 100) -> dict[str, tuple[float, float]]:
    decs = {m: SpectralDecoder(SPEC, phase=m) for m in C.PHASES}
    times: dict[str, list[float]] = {m: [] for m in C.PHASES}
    rows = np.resize(z, (ticks, z.shape[1]))
    out = np.empty(H, np.float32)
    for lo in range(0, ticks, rounds):
        for m, dec in decs.items():
            for row in rows[lo:lo + rounds]:
                t0 = time.perf_counter()
                dec.process(row, out)
                times[m].append(time.perf_counter() - t0)
    return {m: (float(np.median(v) * 1e3), float(np.percentile(v, 99) * 1e3))
            for m, v in times.items()}


def sweep(signals: list[tuple[str, np.ndarray, np.ndarray]]) -> list[str]:
    """The framing choice: n_fft and frames per tick, rtpghi on true magnitudes."""
    from dataclasses import replace

    lines = ["### Framing: n_fft and frames per tick (rtpghi, true magnitudes)", "",
             "| n_fft | frames | STFT hop | outputs per tick | "
             + " | ".join(f"{n.split(' (')[0]}: mel dB / env" for n, _, _ in signals)
             + " | median ms per tick |", "|---" * (5 + len(signals)) + "|"]
    for n_fft in (512, 1024, 2048):
        for frames in (1, 3, 5, 7):
            spec = replace(SPEC, n_fft=n_fft, frames=frames)
            a = spec.hop // frames
            if n_fft < 2 * a:
                continue
            cells = []
            for _, _, x in signals:
                ticks = x.shape[0] // H
                y = decode(spectral_targets(x, spec, ticks), spec)
                t = x[: y.shape[0]]
                cells.append(f"{mel_distance_db(y, t, sr=SR):.2f} / {envelope_corr(y, t, sr=SR):.3f}")
            dec = SpectralDecoder(spec)
            z = spectral_targets(signals[0][2], spec, 200)
            ts = []
            for row in z:
                t0 = time.perf_counter()
                dec.process(row)
                ts.append(time.perf_counter() - t0)
            lines.append(f"| {n_fft} | {frames} | {a} | {spec.length} | " + " | ".join(cells)
                         + f" | {np.median(ts) * 1e3:.3f} |")
            print(lines[-1], flush=True)
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--footage", type=Path, default=None)
    ap.add_argument("--brain", type=Path, action="append", default=[])
    ap.add_argument("--clip", type=Path, action="append", default=[])
    ap.add_argument("--ticks", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/phase.md"))
    args = ap.parse_args()
    if len(args.brain) != len(args.clip):
        raise SystemExit("give --brain and --clip in pairs")
    signals: list[tuple[str, np.ndarray, np.ndarray]] = []
    for name, x in (("free-phase film (true magnitudes)", free_film(args.seconds)),
                    ("glides+clicks+noise (true magnitudes)", mixture(args.seconds))):
        signals.append((name, spectral_targets(x, SPEC, x.shape[0] // H), x))
    if args.footage is not None:
        for name, file in REAL.items():
            hits = list(args.footage.rglob(file))
            if hits:
                x = soundtrack_of(hits[0])
                signals.append((f"real: {name} (true magnitudes)",
                                spectral_targets(x, SPEC, x.shape[0] // H), x))
    for b, c in zip(args.brain, args.clip):
        z, true = predicted(b, c)
        signals.append((f"{b.stem} on {c.name} (predicted magnitudes)", z, true))
    lines = ["## Phase methods side by side", "",
             f"`.venv/bin/python -m benchmarks.bench_phase --seconds {args.seconds:g}"
             + (f" --footage {args.footage}" if args.footage else "")
             + "".join(f" --brain {b} --clip {c}" for b, c in zip(args.brain, args.clip)) + "`",
             "", f"Machine: {platform.machine()}, {platform.python_version()}; spec: n_fft "
             f"{SPEC.n_fft}, {SPEC.frames} frames per tick (hop {H // SPEC.frames}), "
             f"{SR} Hz / {SPEC.fps:g} fps.", ""]
    for name, z, true in signals:
        print(name, flush=True)
        lines += [f"### {name}", "",
                  "| method | mel distance dB | envelope corr | level dB | frame line dB (true's) |",
                  "|---|---|---|---|---|"]
        for r in quality(z, true, SPEC):
            lines.append(f"| {r['method']} | {r['mel_db']:.2f} | {r['env']:.3f} | "
                         f"{r['level_db']:+.2f} | {r['line_db']:.2f} ({r['true_line_db']:.2f}) |")
            print(lines[-1], flush=True)
        lines.append("")
    lines += sweep(signals[:2])
    c = cost(signals[0][1], args.ticks)
    lines += ["### Cost per tick (SpectralDecoder.process, 3 frames)", "",
              "| method | median ms | p99 ms |", "|---|---|---|"]
    for m, (med, p99) in c.items():
        lines.append(f"| {m} | {med:.3f} | {p99:.3f} |")
    print("\n".join(lines[-len(c) - 2:]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
