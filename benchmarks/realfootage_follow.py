"""What a spectrum brain's loudness follows in a clip: the true soundtrack's, the picture's
motion, or its brightness.

    .venv/bin/python -m benchmarks.realfootage_follow BRAIN CLIP [CLIP ...] [--out FILE]

For each clip (as ``benchmarks.bench_realfootage`` cuts them: ``W/oa4_launch-heldout.mkv``
...), every picture at the brain's size goes through the brain (no context, as the
spectrum default trains), and per picture:

- the brain's loudness: the log of its summed magnitudes (all frames and bins);
- the true loudness: the log RMS of the soundtrack over the picture's share of it;
- motion: the mean absolute difference from the previous picture (grey, 0-255);
- brightness: the picture's mean.

The table gives their correlations (Pearson, over the clip's pictures). Run after the real
footage benchmark on its held-out stretches and training parts; writes
``benchmarks/results/realfootage_follow.md`` unless ``--no-write``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.bench_realfootage import true_audio

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "realfootage_follow.md"


def measures(brain_path: Path, clip: Path) -> dict[str, np.ndarray]:
    """Per picture of ``clip``: brain loudness, true loudness, motion, brightness."""
    from liveframe.core.brain import Brain
    from liveframe.core.media import MediaReader

    brain = Brain.load(brain_path)
    s = brain.spec
    with MediaReader(clip) as r:
        pics = np.stack([f.pixels for f in r.frames(size=(s.width, s.height), channels=s.channels)])
    audio = true_audio(clip, s.sample_rate)
    z = brain.run(pics)
    loud = np.log(np.exp(z.astype(np.float64)).sum(axis=1))
    edges = np.linspace(0, len(audio), len(pics) + 1).astype(int)
    true = np.log(np.array([np.sqrt(np.mean(np.square(audio[a:b], dtype=np.float64)) + 1e-12)
                            for a, b in zip(edges[:-1], edges[1:], strict=True)]))
    grey = pics.astype(np.float32).mean(axis=1)
    motion = np.r_[0.0, np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))]
    return {"brain": loud, "true": true, "motion": motion, "brightness": grey.mean(axis=(1, 2))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.realfootage_follow",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("brain", type=Path)
    ap.add_argument("clips", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, default=RESULT)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)

    def corr(u: np.ndarray, v: np.ndarray) -> float:
        return float(np.corrcoef(u, v)[0, 1])

    rows = []
    for clip in a.clips:
        m = measures(a.brain, clip)
        rows.append(f"| {clip.stem} | {len(m['brain'])} | {corr(m['brain'], m['true']):+.2f} | "
                    f"{corr(m['brain'], m['motion']):+.2f} | "
                    f"{corr(m['brain'], m['brightness']):+.2f} | "
                    f"{corr(m['true'], m['motion']):+.2f} | "
                    f"{corr(m['true'], m['brightness']):+.2f} |")
    cmd = " ".join([".venv/bin/python -m benchmarks.realfootage_follow", str(a.brain),
                    *map(str, a.clips)])
    text = "\n".join([
        "## Real footage: what the spectrum brain's loudness follows",
        "",
        f"The brain `{a.brain}` on each clip, picture by picture: the correlation of its "
        "loudness (log of its summed magnitudes) with the true soundtrack's (log RMS over "
        "the picture's share), with the picture's motion (mean absolute difference from the "
        "previous picture) and with its brightness; then the true loudness's with the same "
        "two. A few seconds of pictures each: a hint of what the brain learned, not a "
        "measurement of it.",
        "",
        "| clip | pictures | brain ~ true loudness | brain ~ motion | brain ~ brightness | "
        "true ~ motion | true ~ brightness |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Reproduce (after `python -m benchmarks.bench_realfootage --footage build/footage "
        "--threads 1 --work W`, here W = the brain's folder):",
        "",
        f"    {cmd}",
        "",
    ])
    print(text)
    if not a.no_write:
        a.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
