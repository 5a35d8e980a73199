"""Real footage: what a spectral brain learns from the registries' real films.

    .venv/bin/python -m benchmarks.bench_realfootage [--held-out 0.3] [--epochs N]
        [--threads N] [--footage DIR] [--work DIR] [--out benchmarks/results/realfootage.md]

The two clips of ``../shared/FOOTAGE.md`` with a real soundtrack (a rocket launch, a man
talking), fetched and checksummed by ``tools/fetch_footage.py``. Each is cut with ffmpeg
(lossless FFV1 pictures, FLAC sound) into a training part and a held-out contiguous
stretch, its last ``--held-out`` share. Then, through the project's own commands, each a
subprocess of this venv's ``liveframe``, as a user would run them:

1. ``liveframe pickle`` of both training parts into one dataset (default options), and
   ``liveframe pickle --framing block`` (the 2015 framing);
2. ``liveframe train``: (a) the spectrum brain with default flags (``--kind spectrum``),
   (b) the 2015 recipe (``--kind pcm --arch shallow --loss mse`` on the block dataset);
   ``--epochs``/``--threads`` only when given; then ``liveframe export``;
3. (c) a baseline that plays the training set's average spectrum at every tick: a tiny
   ONNX spectrum brain (:func:`liveframe.data.toybrain.make_brain`) whose output is the
   mean log-magnitude row of the training targets (the grain dataset's soundtrack per
   source, through :func:`liveframe.core.spectral.spectral_targets`);
4. on each held-out stretch: ``liveframe eval --json`` (mel distance, envelope correlation,
   frame-rate line, and the true soundtrack's own line as ``reference``), ``liveframe
   render`` for ``level_db`` (output RMS minus the true soundtrack's RMS) where eval does not
   give it, and ``../shared/tools/realworld.py`` (median 0.2 s level, peak, picture-motion
   follow, line at 30 Hz and the source rate) for every brain.
"""

from __future__ import annotations

import argparse
import importlib.util
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

from benchmarks.bench_freefilm import checkpoint_epochs, checkpoint_val_share, options, train_flags

REPO = Path(__file__).resolve().parent.parent
RESULT = REPO / "benchmarks" / "results" / "realfootage.md"
REALWORLD = REPO.parent / "shared" / "tools" / "realworld.py"
BIN = Path(sys.executable).parent
CLIPS = ("sound/oa4_launch.webm", "sound/testMovie.mp4")


@dataclass(frozen=True)
class Recipe:
    """One brain of the table: name, dataset framing, train flags (None: the baseline,
    built without training) and the eval mode."""

    name: str
    framing: str
    flags: tuple[str, ...] | None
    mode: str


RECIPES = (
    Recipe("spectrum brain (default flags)", "grain", ("--kind", "spectrum"), "ola"),
    Recipe("waveform brain, 2015 recipe", "block",
           ("--kind", "pcm", "--arch", "shallow", "--loss", "mse"), "raw"),
    Recipe("baseline: mean training spectrum", "grain", None, "ola"),
)


def liveframe(*args: str, log: Path) -> str:
    """Run ``liveframe ARGS`` (this venv's), logging command and output to ``log``;
    return stdout, raise with the command and the output's tail on failure."""
    return run_logged([str(BIN / "liveframe"), *args], log=log)


def run_logged(cmd: list[str], *, log: Path, env: dict[str, str] | None = None) -> str:
    """Run ``cmd`` from the repository root, appending it and its stderr to ``log``."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **(env or {}))
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    with log.open("a") as f:
        f.write(f"$ {shlex.join(cmd)}  # {time.monotonic() - t0:.0f} s, rc {p.returncode}\n")
        f.write(p.stderr[-4000:] + "\n")
    if p.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed (rc {p.returncode}):\n{p.stderr[-2000:]}")
    print(f"  {shlex.join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))[:150]}: "
          f"{time.monotonic() - t0:.0f} s", flush=True)
    return p.stdout


def fetcher():
    """``tools/fetch_footage.py`` as a module (registered, as dataclasses need)."""
    if "fetch_footage" in sys.modules:
        return sys.modules["fetch_footage"]
    spec = importlib.util.spec_from_file_location("fetch_footage", REPO / "tools" / "fetch_footage.py")
    assert spec is not None and spec.loader is not None
    mod = sys.modules["fetch_footage"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def duration(path: Path) -> float:
    """Length of a media file in seconds (ffprobe)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def cut(clip: Path, work: Path, held_out: float, log: Path) -> tuple[Path, Path, float]:
    """(training part, held-out stretch, cut time in s): the clip before and after the cut,
    re-encoded losslessly (FFV1 pictures at the clip's own rate, FLAC sound)."""
    total = duration(clip)
    t = round(total * (1.0 - held_out), 3)
    train, held = work / f"{clip.stem}-train.mkv", work / f"{clip.stem}-heldout.mkv"
    enc = ["-c:v", "ffv1", "-c:a", "flac"]
    run_logged(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-t", f"{t}", *enc,
                str(train)], log=log)
    run_logged(["ffmpeg", "-v", "error", "-y", "-ss", f"{t}", "-i", str(clip), *enc,
                str(held)], log=log)
    return train, held, t


def soundtracks(dataset: Path) -> list[np.ndarray]:
    """Each source's continuous soundtrack, sample 0 at its tick 0, from a grain dataset
    (its 2*hop Hann grains overlap-added at hop, the first hop dropped)."""
    from liveframe.data.dataset import load_dataset

    ds = load_dataset(dataset)
    out = []
    for s, e in ds.segments:
        g = ds.targets[s:e].astype(np.float64)
        hop = g.shape[1] // 2
        x = np.zeros((e - s + 1) * hop)
        for k in range(e - s):
            x[k * hop : k * hop + 2 * hop] += g[k]
        out.append(x[hop:])
    return out


def baseline_brain(dataset: Path, like: Path | None, out: Path) -> Path:
    """The mean-spectrum baseline: a spectrum brain that outputs the mean log-magnitude row
    of the dataset's spectral targets whatever it sees (spec as ``like``'s, if given)."""
    from liveframe.core.spec import BrainSpec
    from liveframe.core.spectral import spectral_targets
    from liveframe.data.toybrain import make_brain

    overrides: dict = {"kind": "spectrum"}
    if like is not None:
        from liveframe.core.brain import Brain

        s = Brain.load(like).spec
        overrides.update(n_fft=s.n_fft, frames=s.frames, window=s.window, phase=s.phase)
    spec = BrainSpec(framing="grain", arch="test", **overrides)
    rows = [spectral_targets(x, spec, len(x) // spec.hop) for x in soundtracks(dataset)]
    mean = np.concatenate(rows).astype(np.float64).mean(axis=0).astype(np.float32)
    return make_brain(out, block=mean, spec_overrides=overrides)


def true_audio(video: Path, sr: int) -> np.ndarray:
    """A clip's soundtrack, mono at ``sr``."""
    from liveframe.core.media import MediaReader

    with MediaReader(video, need_audio=True) as r:
        _, x = r.read_audio(sample_rate=sr)
    return x.astype(np.float64)


def rendered(brain: Path, video: Path, mode: str, work: Path, log: Path) -> np.ndarray:
    """``liveframe render --mode MODE`` of ``video`` through ``brain``, as samples."""
    from liveframe.core.brain import Brain

    wav = work / f"{brain.stem}-{video.stem}-{mode}.mkv"  # pictures copied: MediaReader reads it
    liveframe("render", str(video), "--brain", str(brain), "--mode", mode, "-o", str(wav),
              "--quiet", log=log)
    return true_audio(wav, Brain.load(brain).spec.sample_rate)


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(max(float(np.sqrt(np.mean(x**2))), 1e-12)))


def median_level(x: np.ndarray, sr: int) -> float:
    """realworld.py's level: median RMS of 0.2 s windows, dBFS."""
    win = int(0.2 * sr)
    n = len(x) // win
    r = np.sqrt((x[: n * win].reshape(n, win) ** 2).mean(axis=1))
    return float(np.median(20 * np.log10(r + 1e-12)))


def realworld(brain: Path, clips: list[Path], work: Path, log: Path) -> dict[str, dict]:
    """``../shared/tools/realworld.py`` on ``clips`` through ``brain``: {clip stem: figures}."""
    out = work / f"realworld-{brain.stem}"
    out.mkdir(exist_ok=True)
    text = run_logged([sys.executable, str(REALWORLD), str(BIN / "liveframe"), str(out),
                       *map(str, clips)], log=log, env={"LIVEFRAME_BRAIN": str(brain)})
    res = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return {r["clip"]: r for r in res}


def build(a: argparse.Namespace, work: Path, log: Path
          ) -> tuple[dict, list[Path], list[Path], dict]:
    """Footage, cuts, datasets and brains: ({recipe name: brain}, training parts, held-out
    stretches, facts)."""
    ff = fetcher()
    paths = ff.fetch(Path(a.footage or work / "footage"), ff.select(CLIPS), log=sys.stderr)
    trains, helds, facts = [], [], {}
    for name in CLIPS:
        clip = paths[name]
        tr, he, t = cut(clip, work, a.held_out, log)
        trains.append(tr)
        helds.append(he)
        facts[he.stem] = dict(clip=Path(name).name, total=duration(clip), cut=t)
    have = options("train")
    datasets: dict[str, Path] = {}
    brains: dict[str, Path] = {}
    for r in RECIPES:
        if r.framing not in datasets:
            ds = datasets[r.framing] = work / f"train-{r.framing}.npz"
            extra = [] if r.framing == "grain" else ["--framing", r.framing]
            liveframe("pickle", *map(str, trains), "-o", str(ds), "-q", *extra, log=log)
        if r.flags is None:
            continue
        tag = "-".join(w for w in r.flags if not w.startswith("--"))
        ckpt, brain = work / f"{tag}.pt", work / f"{tag}.onnx"
        ckpt.unlink(missing_ok=True)  # a fresh run, never a resume
        t0 = time.monotonic()
        liveframe("train", str(datasets[r.framing]), "-o", str(ckpt), "--quiet",
                  *train_flags(r.flags, a, have), log=log)
        facts[r.name] = dict(train_s=time.monotonic() - t0, epochs=checkpoint_epochs(ckpt),
                             val_share=checkpoint_val_share(ckpt),
                             flags=train_flags(r.flags, a, have))
        liveframe("export", str(ckpt), "-o", str(brain), log=log)
        brains[r.name] = brain
    like = brains.get(RECIPES[0].name)
    brains[RECIPES[2].name] = baseline_brain(datasets["grain"], like, work / "baseline.onnx")
    return brains, trains, helds, facts


def measure(brains: dict, clips: list[Path], helds: list[Path], work: Path, log: Path
            ) -> tuple[list, dict, dict]:
    """(table rows, {clip: true figures}, {brain name: realworld figures on ``helds``}):
    the rows of every brain on every clip of ``clips`` (training parts and held-out)."""
    from liveframe.core.brain import Brain

    rows, truth, world = [], {}, {}
    for r in RECIPES:
        brain = brains[r.name]
        sr = Brain.load(brain).spec.sample_rate
        for held in clips:
            res = json.loads(liveframe("eval", str(brain), str(held), "--json", "--modes",
                                       r.mode, log=log))
            m = dict(res["modes"][r.mode])
            true = true_audio(held, sr)
            if "level_db" not in m:
                m["level_db"] = rms_db(rendered(brain, held, r.mode, work, log)) - rms_db(true)
            truth[held.stem] = dict(rms_dbfs=rms_db(true), level_dbfs=median_level(true, sr),
                                    line=res["reference"]["frame_artifact_db"])
            rows.append(dict(brain=r.name, clip=held.stem, mode=r.mode, **m))
        world[r.name] = realworld(brain, helds, work, log)
    return rows, truth, world


def phases(brains: dict, helds: list[Path], work: Path, log: Path) -> list[dict]:
    """Each spectrum brain rendered with every phase method on the held-out stretches:
    mel distance, envelope correlation, frame-rate line and level against the true."""
    from liveframe import constants as C
    from liveframe.core.brain import Brain
    from liveframe.offline.metrics import envelope_corr, frame_artifact_db, mel_distance_db

    out = []
    for name, brain in brains.items():
        spec = Brain.load(brain).spec
        if not spec.spectral:
            continue
        sr, fps = spec.sample_rate, spec.fps
        for ph in C.PHASES:
            for held in helds:
                wav = work / f"{brain.stem}-{held.stem}-{ph}.mkv"
                liveframe("render", str(held), "--brain", str(brain), "--phase", ph, "-o",
                          str(wav), "--quiet", log=log)
                x, true = true_audio(wav, sr), true_audio(held, sr)
                out.append(dict(brain=name, phase=ph, clip=held.stem,
                                mel=mel_distance_db(x.astype(np.float32), true.astype(np.float32), sr=sr),
                                env=envelope_corr(x.astype(np.float32), true.astype(np.float32), sr=sr, fps=fps),
                                line=frame_artifact_db(x.astype(np.float32), sr=sr, fps=fps),
                                level=rms_db(x) - rms_db(true)))
    return out


def phase_table(res: list[dict]) -> str:
    lines = ["| brain | phase | held-out clip | level_db | mel_distance_db | envelope_corr "
             "| frame_artifact_db |", "|---|---|---|---|---|---|---|"]
    for r in res:
        lines.append(f"| {r['brain']} | {r['phase']} | {r['clip']} | {r['level']:+.1f} | "
                     f"{r['mel']:.2f} | {r['env']:.3f} | {r['line']:.2f} |")
    return "\n".join(lines)


def table(rows: list[dict], truth: dict) -> str:
    lines = ["| clip | brain | eval mode | level_db | mel_distance_db | envelope_corr "
             "| frame_artifact_db | black_level_dbfs |", "|---|---|---|---|---|---|---|---|"]
    for clip in truth:
        for r in (r for r in rows if r["clip"] == clip):
            lines.append(f"| {clip} | {r['brain']} | {r['mode']} | {r['level_db']:+.1f} | "
                         f"{r['mel_distance_db']:.2f} | {r['envelope_corr']:.3f} | "
                         f"{r['frame_artifact_db']:.2f} | {r['black_level_dbfs']:.1f} |")
        t = truth[clip]
        lines.append(f"| {clip} | true soundtrack ({t['rms_dbfs']:.1f} dBFS RMS) | | 0 | 0 | 1 "
                     f"| {t['line']:.2f} | |")
    return "\n".join(lines)


def world_table(world: dict, truth: dict) -> str:
    lines = ["| held-out clip | brain | level_dbfs (median 0.2 s) | peak | follow | line_db "
             "| source fps |", "|---|---|---|---|---|---|---|"]
    for clip in truth:
        for name, res in world.items():
            w = res.get(clip, {})
            if "error" in w or not w:
                lines.append(f"| {clip} | {name} | {w.get('error', 'no result')} | | | | |")
                continue
            lines.append(f"| {clip} | {name} | {w['level_dbfs']:.1f} | {w['peak']:.3f} | "
                         f"{w['follow']:.2f} | {w['line_db']:.1f} | {w['source_fps']:g} |")
        lines.append(f"| {clip} | true soundtrack | {truth[clip]['level_dbfs']:.1f} | | | | |")
    return "\n".join(lines)


def report(a: argparse.Namespace, argv: list[str], rows: list, truth: dict, world: dict,
           ph: list[dict], facts: dict, seconds: float) -> str:
    cuts = "; ".join(f"{f['clip']} {f['total']:.2f} s, held out from {f['cut']:.2f} s"
                     for k, f in facts.items() if "clip" in f)
    trained = "; ".join(f"{name}: `liveframe train DATA {shlex.join(f['flags'])}`, "
                        f"{f['epochs']} epochs, {f['train_s']:.0f} s"
                        for name, f in facts.items() if "train_s" in f)
    cmd = ["python", "-m", "benchmarks.bench_realfootage"] + [x for x in argv if x != "--no-write"]
    return "\n".join([
        "## Real footage: a spectral brain on the registries' real films", "",
        "The two clips of `../shared/FOOTAGE.md` with a real soundtrack (fetched by "
        "`tools/fetch_footage.py`, checksummed), each cut into a training part and a held-out "
        f"contiguous stretch, its last {a.held_out:.0%} ({cuts}). Both training parts in "
        "one dataset (`liveframe pickle`, default options; `--framing block` for the 2015 "
        "recipe); trained, exported and evaluated with the `liveframe` commands. The "
        "baseline plays the mean log-magnitude row of the training targets at every tick. "
        "`level_db` is the output RMS minus the true soundtrack's; `frame_artifact_db` is "
        "eval's frame-rate line (the true soundtrack's own on its row). The `-train` rows "
        "are the training parts themselves (seen in training, less the trainer's own "
        "validation tail): what the brain can fit, against the `-heldout` rows: what it "
        "learned.", "",
        table(rows, truth), "",
        "`../shared/tools/realworld.py` on the same held-out stretches (rendered in the "
        "default mode; the true soundtrack's median level by the same measure):", "",
        world_table(world, {k: v for k, v in truth.items() if k.endswith("-heldout")}), "",
        "The spectrum brains rendered with each phase method (`liveframe render --phase`), "
        "measured with `liveframe.offline.metrics` against the true soundtrack:", "",
        phase_table(ph), "",
        f"Trained: {trained}. Whole run {seconds:.0f} s on {platform.node()}, "
        f"{os.cpu_count()} cores.", "",
        "Reproduce:", "", f"    {shlex.join(cmd)}", "", reading(rows, ph, facts), ""])


def phase_sentence(brain: float, baseline: float, free: float, pv: float) -> str:
    """What the phase table says about the frame-rate line of the default phase."""
    if baseline > free + 1.0:
        return (f"With the default rtpghi phase even the constant-spectrum baseline carries a "
                f"frame-rate line of {baseline:.1f} dB (the brain {brain:.1f} dB), where "
                f"random or stolen phase give at most {free:.1f} dB: on broad, noisy spectra "
                "like these the phase method itself makes that line.")
    if brain > free + 1.0:
        return (f"A steady spectrum plays without a frame-rate line ({baseline:.1f} dB), but "
                f"the brain's tick-to-tick changes through rtpghi leave up to {brain:.1f} dB "
                f"({pv:.1f} with pv), where random or stolen phase give at most {free:.1f} dB.")
    return (f"The default rtpghi phase adds no frame-rate line beyond random or stolen "
            f"phase's ({brain:.1f} and {baseline:.1f} dB against {free:.1f} dB).")


def when_sentence(talk: dict, talk_mean: dict, launch: dict, lo: float, hi: float) -> str:
    """What the envelope correlations say about *when* things sound (``talk``, ``launch``:
    the spectral brain's held-out rows; ``talk_mean``: the average spectrum's)."""
    if talk["envelope_corr"] >= 0.5:
        return (f"It can teach when the man talks: on his held-out stretch the brain's "
                f"loudness follows the true soundtrack's (envelope correlation "
                f"{talk['envelope_corr']:.2f}) and it is {talk['mel_distance_db']:.1f} dB mel "
                f"from the truth against {talk_mean['mel_distance_db']:.1f} for the average "
                f"spectrum; on the launch it does not follow the loudness "
                f"({launch['envelope_corr']:+.2f}).")
    return ("It cannot teach when things sound: the spectral brain's envelope correlation "
            f"stays between {lo:+.2f} and {hi:+.2f}, even on the parts it trained on, and on "
            "the talking man it is no better than the average spectrum "
            f"({talk['mel_distance_db']:.1f} against {talk_mean['mel_distance_db']:.1f} dB): "
            "speech is not in the pictures.")


def reading(rows: list[dict], ph: list[dict], facts: dict) -> str:
    """The honest paragraph under the tables, with this run's figures."""
    def row(brain: int, clip: str) -> dict:
        return next(r for r in rows if r["brain"] == RECIPES[brain].name and r["clip"] == clip)

    def line(brain: int, phase: str) -> float:
        return max(r["line"] for r in ph if r["brain"] == RECIPES[brain].name
                   and r["phase"] == phase)

    launch, talk = "oa4_launch-heldout", "testMovie-heldout"
    spec_rows = [r for r in rows if r["brain"] == RECIPES[0].name]
    env = [r["envelope_corr"] for r in spec_rows]
    ep = facts.get(RECIPES[0].name, {}).get("epochs", "?")
    return " ".join([
        "**What a minute of film can and cannot teach** (this run's figures).",
        "It can teach which film the camera is looking at, and that film's colour: on the "
        f"held-out launch the spectral brain is {row(0, launch)['mel_distance_db']:.1f} dB "
        f"mel from the truth against {row(2, launch)['mel_distance_db']:.1f} for the average "
        f"spectrum of both films, and it plays {row(0, launch)['level_db']:+.1f} dB from the "
        f"true level where the 2015 recipe plays {row(1, launch)['level_db']:+.1f} dB with a "
        f"{row(1, launch)['frame_artifact_db']:.0f} dB frame-rate line.",
        when_sentence(row(0, talk), row(2, talk), row(0, launch), min(env), max(env)),
        "About 11 s of two scenes (both clips' training parts together) are two examples of "
        "a picture-to-sound map, not a map. The spectral brain trained "
        f"{ep} epochs, judged on the trainer's own contiguous validation stretches "
        f"({facts.get(RECIPES[0].name, {}).get('val_share', '?')} of each part).",
        "Black pictures play at "
        f"{row(0, launch)['black_level_dbfs']:.0f} dBFS, not silence: neither film has any.",
        phase_sentence(line(0, "rtpghi"), line(2, "rtpghi"),
                       max(line(i, p) for i in (0, 2) for p in ("random", "steal")),
                       line(0, "pv")),
        "So these clips are a held-out check of a pipeline that learns from a performer's "
        "own films, not a source of a brain that plays any camera.",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_realfootage",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--held-out", type=float, default=0.3,
                    help="share of each clip held out, at its end (default 0.3)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="cap the brains' epochs (default: train's own default)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads for train")
    ap.add_argument("--arch", default=None,
                    help="the spectrum brain's topology (e.g. partials; default: train's)")
    ap.add_argument("--seed", type=int, default=None,
                    help="the spectrum brain's training seed (default: train's)")
    ap.add_argument("--train-flags", default=None, metavar="FLAGS",
                    help='more train flags for the spectrum brain, given with =: '
                         '--train-flags="--ema 0.999 --starts 3" (the rows keep their names, as '
                         'with --arch)')
    ap.add_argument("--footage", default=None, help="footage folder (default WORK/footage)")
    ap.add_argument("--work", default="/tmp/lf-realfootage", help="cuts, datasets and brains")
    ap.add_argument("--out", default=str(RESULT))
    ap.add_argument("--no-write", action="store_true", help="print only")
    argv = list(sys.argv[1:] if argv is None else argv)
    a = ap.parse_args(argv)
    if not 0.05 <= a.held_out <= 0.5:
        ap.error(f"--held-out {a.held_out} must be in [0.05, 0.5]")
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    t0 = time.monotonic()
    brains, trains, helds, facts = build(a, work, log)
    rows, truth, world = measure(brains, trains + helds, helds, work, log)
    ph = phases(brains, helds, work, log)
    text = report(a, argv, rows, truth, world, ph, facts, time.monotonic() - t0)
    print(text)
    if not a.no_write:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
