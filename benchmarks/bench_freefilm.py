"""The free-phase film: a spectral brain against waveform brains, side by side.

    .venv/bin/python -m benchmarks.bench_freefilm [--train-seconds 180] [--test-seconds 60]
        [--epochs N] [--threads N] [--work DIR] [--out benchmarks/results/freefilm.md]

Two films from :mod:`liveframe.data.freefilm` (sound not phase-locked to the frames): one
to train on (seed ``--train-seed``), another, a different film, to test on (seed
``--test-seed``). Everything after the films runs through the project's own commands, as a
user would, each a subprocess of this venv's ``liveframe``:

1. ``liveframe pickle`` (default options: grain framing) and ``liveframe pickle
   --framing block`` (the 2015 framing) of the training film;
2. ``liveframe train``: the spectral brain (``--kind spectrum``, nothing else), the
   waveform brain with its defaults (``--kind pcm``), and the 2015 recipe on the block
   dataset (``--arch shallow --loss mse``); ``--epochs`` and ``--threads`` only when given;
3. ``liveframe export`` of each, and ``liveframe eval --json`` on the held-out film.

The table: each brain's ``level_db`` (output RMS minus the true soundtrack's), envelope
correlation, mel distance and frame-rate line; the last row is the true soundtrack's own
frame-rate line (eval's ``reference``). Where ``eval`` does not give ``level_db`` the
harness renders the brain (``liveframe render``) and measures it the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULT = REPO / "benchmarks" / "results" / "freefilm.md"
BIN = Path(sys.executable).parent
COLUMNS = ("level_db", "envelope_corr", "mel_distance_db", "frame_artifact_db")
TARGETS = {"level_db": "within ±3", "envelope_corr": ">= 0.9", "mel_distance_db": "<= 5",
           "frame_artifact_db": "within 3 of the true"}


@dataclass(frozen=True)
class Recipe:
    """One brain of the table: its name, dataset framing, train flags and eval mode."""

    name: str
    framing: str
    flags: tuple[str, ...]
    mode: str


RECIPES = (
    Recipe("spectrum brain (default flags)", "grain", ("--kind", "spectrum"), "ola"),
    Recipe("waveform brain (default pcm flags)", "grain", ("--kind", "pcm"), "ola"),
    Recipe("waveform brain, 2015 recipe", "block",
           ("--kind", "pcm", "--arch", "shallow", "--loss", "mse"), "raw"),
)


def liveframe(*args: str, log: Path) -> str:
    """Run ``liveframe ARGS`` (this venv's), appending its command and output to ``log``;
    its stdout is returned, a failure raises with the command and the tail of the output."""
    cmd = [str(BIN / "liveframe"), *args]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    with log.open("a") as f:
        f.write(f"$ {shlex.join(cmd)}  # {time.monotonic() - t0:.0f} s, rc {p.returncode}\n")
        f.write(p.stderr[-4000:] + "\n")
    if p.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed (rc {p.returncode}):\n{p.stderr[-2000:]}")
    print(f"  {shlex.join(args)}: {time.monotonic() - t0:.0f} s", flush=True)
    return p.stdout


def options(command: str) -> str:
    """``liveframe COMMAND --help``: which flags this checkout has."""
    p = subprocess.run([str(BIN / "liveframe"), command, "--help"], capture_output=True,
                       text=True, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    return p.stdout


def file_rms(path: Path) -> float:
    """RMS of a media file's sound."""
    from liveframe.core.media import MediaReader

    with MediaReader(path, need_audio=True) as r:
        _, x = r.read_audio()
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


def rendered_rms(brain: Path, film: Path, mode: str, work: Path, log: Path) -> float:
    """RMS of ``liveframe render --mode MODE`` of ``film`` through ``brain`` (a .flac)."""
    out = work / f"{brain.stem}-{mode}.mkv"
    liveframe("render", str(film), "--brain", str(brain), "--mode", mode, "-o", str(out),
              "--quiet", log=log)
    return file_rms(out)


def films(work: Path, a: argparse.Namespace) -> dict[str, tuple[Path, float]]:
    """The training film and the two test films: {name: (path, true RMS)}.

    One scene of ``train + test`` seconds (seed ``--train-seed``) cut losslessly at
    ``train`` seconds: its first part to train on, its last minute ("held-out stretch": the
    same background, objects on paths never seen); and a film of its own (seed
    ``--test-seed``, "another film": another background too).
    """
    from benchmarks.bench_realfootage import cut
    from liveframe.data.freefilm import write_free_film

    out = {}
    total = a.train_seconds + a.test_seconds
    t0 = time.monotonic()
    scene = work / f"free-{a.train_seed}-{total:g}s.mkv"
    film = write_free_film(scene, total, seed=a.train_seed)
    train, held, t = cut(scene, work, a.test_seconds / total, work / "commands.log")
    print(f"  scene: {total:g} s, seed {a.train_seed}, RMS {film.rms:.4f}, cut at {t:g} s "
          f"({time.monotonic() - t0:.0f} s)", flush=True)
    out["train"] = (train, file_rms(train))
    out["held-out stretch"] = (held, file_rms(held))
    other = work / f"free-{a.test_seed}-{a.test_seconds:g}s.mkv"
    film = write_free_film(other, a.test_seconds, seed=a.test_seed)
    print(f"  another film: {a.test_seconds:g} s, seed {a.test_seed}, RMS {film.rms:.4f}",
          flush=True)
    out["another film"] = (other, film.rms)
    return out


def train_flags(recipe_flags: tuple[str, ...] | None, a: argparse.Namespace,
                have: str) -> list[str]:
    """A recipe's train flags (None: none), less ``--kind`` where train has none (then pcm
    is all there is), plus ``--arch`` (and ``--seed``, where ``a`` has one) for a spectrum
    brain and ``--epochs``/``--threads`` when given (also
    :mod:`benchmarks.bench_realfootage`'s)."""
    flags = list(recipe_flags or ())
    if "--kind" not in have:
        if "spectrum" in flags:
            raise RuntimeError("liveframe train has no --kind: no spectral brain to train yet")
        i = flags.index("--kind")
        del flags[i : i + 2]
    if a.arch and "spectrum" in flags:
        flags += ["--arch", a.arch]
    if getattr(a, "train_flags", None) and "spectrum" in flags:
        flags += shlex.split(a.train_flags)
    if getattr(a, "seed", None) is not None and "spectrum" in flags:
        flags += ["--seed", str(a.seed)]
    if a.epochs:
        flags += ["--epochs", str(a.epochs)]
    if a.threads and "--threads" in have:
        flags += ["--threads", str(a.threads)]
    return flags


def run(a: argparse.Namespace) -> tuple[list[dict], dict]:
    """Films, datasets, brains, evals: one row per recipe, and the test film's reference."""
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    f = films(work, a)
    train = f["train"][0]
    tests = {k: v for k, v in f.items() if k != "train"}
    have = options("train")
    recipes = [r for r in RECIPES if a.only is None or r.name.split()[0] in a.only]
    rows, reference = [], {}
    datasets: dict[str, Path] = {}
    for r in recipes:
        if r.framing not in datasets:
            ds = datasets[r.framing] = work / f"train-{r.framing}.npz"
            extra = [] if r.framing == "grain" else ["--framing", r.framing]
            liveframe("pickle", str(train), "-o", str(ds), "-q", *extra, log=log)
        tag = "-".join(w for w in r.flags if not w.startswith("--"))
        ckpt, brain = work / f"{tag}.pt", work / f"{tag}.onnx"
        flags = train_flags(r.flags, a, have)
        ckpt.unlink(missing_ok=True)  # a fresh run, never a resume
        t0 = time.monotonic()
        liveframe("train", str(datasets[r.framing]), "-o", str(ckpt), "--quiet", *flags, log=log)
        train_s = time.monotonic() - t0
        liveframe("export", str(ckpt), "-o", str(brain), log=log)
        run_ms, run_p99 = brain_cost(brain)
        epochs = checkpoint_epochs(ckpt)
        for test_name, (test, true_rms) in tests.items():
            res = json.loads(liveframe("eval", str(brain), str(test), "--json", "--modes",
                                       r.mode, log=log))
            m = dict(res["modes"][r.mode])
            if "level_db" not in m:
                m["level_db"] = 20 * np.log10(
                    max(rendered_rms(brain, test, r.mode, work, log), 1e-12) / true_rms)
            reference[test_name] = res["reference"]
            given = " ".join(x for x in (f"--arch {a.arch}" if a.arch else "",
                                         a.train_flags or "") if x)
            name = (r.name.replace("default flags", given)
                    if given and "spectrum" in r.flags else r.name)
            rows.append(dict(name=name, test=test_name, command=f"liveframe train DATA"
                             f"{' ' if flags else ''}{shlex.join(flags)}"
                             + ("" if r.framing == "grain" else " (pickle --framing block)"),
                             mode=r.mode, train_s=train_s, epochs=epochs, run_ms=run_ms,
                             run_p99_ms=run_p99, **m))
        print(table(rows, reference), flush=True)
    return rows, reference


def brain_cost(brain: Path, ticks: int = 600) -> tuple[float, float]:
    """Median and p99 (ms) of one tick's ``Brain.run`` (one picture, the player's call),
    over ``ticks`` calls after 30 to warm up."""
    from liveframe.core.brain import Brain

    b = Brain.load(brain)
    rng = np.random.default_rng(0)
    x = (rng.random((ticks + 30, 1, *b.spec.input_shape)) * 255).astype(np.uint8)
    times = []
    for i in range(ticks + 30):
        t0 = time.perf_counter()
        b.run(x[i])
        if i >= 30:
            times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3, float(np.percentile(times, 99)) * 1e3


def checkpoint_epochs(ckpt: Path) -> str:
    """Epochs the checkpoint ran (or '?' where it does not say)."""
    try:
        import torch

        c = torch.load(ckpt, map_location="cpu", weights_only=False)
        for k in ("epoch", "epochs"):
            if isinstance(c, dict) and k in c:
                return str(c[k])
        hist = c.get("history") if isinstance(c, dict) else None
        return str(len(hist)) if hist else "?"
    except Exception:  # a figure for the table only
        return "?"


def checkpoint_val_share(ckpt: Path) -> str:
    """The share of each source the run held out for validation, as a percentage (or '?')."""
    try:
        import torch

        c = torch.load(ckpt, map_location="cpu", weights_only=False)
        return f"{100 * float(c['config']['val_fraction']):.0f} %"
    except Exception:  # a figure for the prose only
        return "?"


def table(rows: list[dict], reference: dict) -> str:
    head = ("| test | brain | train flags | eval mode | epochs | level_db | envelope_corr | "
            "mel_distance_db | frame_artifact_db | brain ms/tick (median, p99) |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for test in dict.fromkeys(r["test"] for r in rows):
        for r in (r for r in rows if r["test"] == test):
            lines.append(f"| {test} | {r['name']} | `{r['command']}` | {r['mode']} | "
                         f"{r['epochs']} | {r['level_db']:+.1f} | {r['envelope_corr']:.3f} | "
                         f"{r['mel_distance_db']:.2f} | {r['frame_artifact_db']:.2f} | "
                         f"{r['run_ms']:.2f}, {r['run_p99_ms']:.2f} |")
        if test in reference:
            lines.append(f"| {test} | true soundtrack (`reference`) | | | | 0 | 1 | 0 | "
                         f"{reference[test].get('frame_artifact_db', float('nan')):.2f} | |")
    lines.append("| | target (spectrum brain) | | | | "
                 + " | ".join(TARGETS[c] for c in COLUMNS) + " | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_freefilm",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--train-seconds", type=float, default=180.0)
    ap.add_argument("--test-seconds", type=float, default=60.0)
    ap.add_argument("--train-seed", type=int, default=2026)
    ap.add_argument("--test-seed", type=int, default=2027)
    ap.add_argument("--epochs", type=int, default=None,
                    help="cap every brain's epochs (default: train's own default)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for train")
    ap.add_argument("--train-flags", default=None, metavar="FLAGS",
                    help='more train flags for the spectrum brain, given with =: '
                         '--train-flags="--ema 0.999 --starts 3"')
    ap.add_argument("--arch", default=None,
                    help="the spectrum brain's topology (e.g. partials; default: train's)")
    ap.add_argument("--only", default=None,
                    help="comma-separated first words of the brains: spectrum,waveform")
    ap.add_argument("--work", default="/tmp/lf-freefilm", help="films, datasets and brains")
    ap.add_argument("--out", default=str(RESULT))
    ap.add_argument("--no-write", action="store_true", help="print only")
    a = ap.parse_args(argv)
    a.only = None if a.only is None else a.only.split(",")
    t0 = time.monotonic()
    rows, reference = run(a)
    cmd = ["python", "-m", "benchmarks.bench_freefilm"] + [
        x for x in (argv if argv is not None else sys.argv[1:]) if x != "--no-write"]
    text = "\n".join([
        "## The free-phase film: a spectral brain against waveform brains", "",
        f"Trained on the first {a.train_seconds:g} s of a free-phase scene "
        f"(`liveframe.data.freefilm`, seed {a.train_seed}: tones gliding with the objects' "
        "heights, noise bands with their positions, nothing a multiple of the frame rate), "
        f"tested on its held-out last {a.test_seconds:g} s (the same background, paths "
        f"never seen) and on {a.test_seconds:g} s of another film (seed {a.test_seed}: "
        "another background too). Pickled, trained, exported and evaluated with the "
        "`liveframe` commands; `level_db` is the output RMS minus the true soundtrack's; "
        "each test's last row gives the true soundtrack's own frame-rate line; brain "
        "ms/tick is one `Brain.run` of one picture (median and p99 of 600, this run's "
        "host).", "",
        table(rows, reference), "",
        "Training times (s): " + ", ".join(f"{r['name']} {r['train_s']:.0f}"
                                           for r in rows if r["test"] == rows[0]["test"])
        + f"; whole run {time.monotonic() - t0:.0f} s on {platform.node()}, "
        f"{os.cpu_count()} cores.", "",
        "Reproduce:", "", f"    {shlex.join(cmd)}", ""])
    print(text)
    if not a.no_write:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
