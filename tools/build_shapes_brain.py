"""Build the shapes brain and its demo clip from nothing (``make brains-shapes``).

The shapes brain was the shipped default until the real-world brain of issue 14
(``tools/build_brains.py``); it is kept as ``brains/shapes.onnx``.

Steps, each with the project's own command line, all seeded:

1. ``tools/make_film.py``: the training film (120 minutes, seed 2015) into ``build/brains/``;
2. ``liveframe pickle film.mkv -o data.npz --calibrate-silence 30``;
3. ``liveframe train data.npz -o shapes.pt --layers I,256,L --context 1 --loss l1
   --lr-schedule cosine --epochs 60 ... --seed 0 --threads 2``;
4. ``tools/export_onnx.py shapes.pt -o build/brains/shapes.onnx``;
5. measure the brain as a performer meets it (black, white and grey screens, a bright disc
   at several heights, as a 640x480 camera would show them, through :class:`Brain` and
   :class:`OlaSynth`), refuse to ship it when black is not quiet or pitch does not follow
   height, then copy it to ``brains/shapes.onnx`` and write ``brains/shapes.md``;
6. the demo clip ``brains/demo.mkv`` (18 s, seed 30, the same generator), and
   ``liveframe eval`` of the shipped brain on it and on a held-out minute (60 s, seed 31,
   written beside the build; raw and ola), recorded in the card.

``python tools/build_shapes_brain.py [--seconds S] [--epochs N] [--out-dir DIR]``: the
options exist for quick trials; the defaults are what ``make brains`` ships.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

import make_film

from liveframe import constants as C
from liveframe.core.brain import Brain
from liveframe.core.media import preprocess, with_context
from liveframe.core.synth import OlaSynth
from liveframe.util.files import atomic_write

log = logging.getLogger("build_shapes_brain")

BRAINS = REPO / "brains"
"""The checkout's brains folder: `make brains` rebuilds the files shipped from it."""
DEFAULT_BRAIN = BRAINS / "shapes.onnx"
DEMO_CLIP = BRAINS / "demo.mkv"

FILM_SECONDS = 7200.0
"""Length of the training film. The recipe trained on 20, 40, 60 and 120 minutes (the same
seed, so each film begins with the shorter ones) and was judged on a validation minute
(seed 32) that is neither the test's held-out minute, the demo, nor training data: of the
lengths whose ola reads at least 20 dB below raw there (all four: 27.3 / 27.3 / 28.9 /
28.4 dB), the one with the lowest mel distance (3.6 / 2.7 / 2.3 / 2.0 dB; envelope
correlation 0.907 / 0.914 / 0.925 / 0.932). The 120 minutes take about 40 minutes to build
on 2 cores."""
FILM_SEED = 2015
DEMO_SECONDS = 18.0
DEMO_SEED = 30
HELD_OUT_SECONDS = 60.0
HELD_OUT_SEED = 31
"""A minute of film no brain saw (tests/test_shapes_brain.py checks issue 3 on it too)."""
CALIBRATE_SECONDS = 30.0
LAYERS = "I,256,L"
CONTEXT = 1
LOSS = "l1"
LOSS_WHY = (
    "where the brain is unsure of a shape's pitch band, MSE averages the grains of the "
    "candidate pitches, which then beat at the frame rate; L1 takes the per-sample median, "
    "the grain of the likelier pitch, and predicts exact zeros for black"
)
"""L1, not MSE: where the brain is unsure of a shape's pitch band, MSE averages the grains of
the candidate pitches (two partials, which beat at the frame rate), while L1 takes the
per-sample median, i.e. the grain of the likelier pitch."""
EPOCHS = 60
BATCH = 64
LR_SCHEDULE = "cosine"
"""The rate anneals to zero at the last epoch: against a constant rate (40 epochs, early
stopping) it lowered the mel distance from 5.4 to 3.2 dB on the demo and from 6.0 to 3.5
on the held-out minute, and the ola frame artefact from 11.2 to 8.7 dB on that minute."""
PATIENCE = EPOCHS
"""No early stop: it would cut the anneal short. The best validation epoch still ships."""
TRAIN_SEED = 0
THREADS = 2

CAMERA = (640, 480)
"""Probe pictures are drawn at a camera's size and go through the brain's preprocessing."""

HEIGHTS = tuple(round(float(y), 3) for y in make_film.band_centre(np.arange(len(make_film.LADDER))))
"""The middle of each pitch band (a disc on a band edge is silent by design: the frets)."""
PROBE_TICKS = 30

BLACK_LIMIT_DB = -50.0
LOUD_LIMIT_DB = -30.0


# -- measuring a brain ------------------------------------------------------------------


def disc_picture(
    y: float,
    *,
    x: float = 0.5,
    radius: float = 0.1,
    level: int = 255,
    size: tuple[int, int] = CAMERA,
) -> npt.NDArray[np.uint8]:
    """A camera-sized grey picture: a disc centred at height ``y`` (0 bottom, 1 top)."""
    import cv2

    w, h = size
    pic = np.zeros((h, w), np.uint8)
    cv2.circle(
        pic,
        (round(x * w), round((1 - y) * h)),
        round(radius * h),
        int(level),
        thickness=-1,
        lineType=cv2.LINE_AA,
    )
    return pic


def play(brain: Brain, pictures: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
    """What the brain plays for these pictures, one per tick, after OLA (latency trimmed)."""
    s = brain.spec
    hist: list[npt.NDArray[np.uint8]] = []
    x = np.stack([with_context(preprocess(p, size=(s.width, s.height), channels=s.channels),
                               hist, s.context) for p in pictures])  # fmt: skip
    blocks = brain.run(x)
    synth = OlaSynth(hop=s.hop, framing=s.framing)
    out = np.concatenate([synth.process(b) for b in blocks])
    return out[synth.latency + s.hop :]  # drop the latency and the first tick's fade-in


def rms_db(x: npt.NDArray[np.floating[Any]]) -> float:
    """RMS level in dBFS (a full-scale sine is -3 dBFS)."""
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


def peak_hz(x: npt.NDArray[np.floating[Any]], sr: int) -> float:
    """Frequency of the highest FFT peak (Hann-windowed)."""
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / sr)[int(np.argmax(spec))])


def measure(brain: Brain) -> dict[str, Any]:
    """Black, white and grey levels, and level and pitch of a bright disc at ``HEIGHTS``."""
    w, h = CAMERA
    sr = brain.spec.sample_rate
    flat = {
        name: rms_db(play(brain, [np.full((h, w), v, np.uint8)] * PROBE_TICKS))
        for name, v in (("black", 0), ("white", 255), ("grey", 128))
    }
    rng = np.random.default_rng(0)
    noisy = [np.clip(rng.normal(6, 3, (h, w)), 0, 255).astype(np.uint8) for _ in range(PROBE_TICKS)]
    flat["dark noise"] = rms_db(play(brain, noisy))
    rows = []
    for y in HEIGHTS:
        out = play(brain, [disc_picture(y)] * PROBE_TICKS)
        rows.append(
            {
                "height": y,
                "rms_db": rms_db(out),
                "peak_hz": peak_hz(out, sr),
                "film_hz": make_film.pitch_hz(y, fps=brain.spec.fps),
            }
        )
    dim = rms_db(play(brain, [disc_picture(0.5, level=90)] * PROBE_TICKS))
    small = rms_db(play(brain, [disc_picture(0.5, radius=0.05)] * PROBE_TICKS))
    return {"flat": flat, "heights": rows, "dim_db": dim, "small_db": small}


def check(m: dict[str, Any]) -> list[str]:
    """What keeps a brain from shipping (empty when it is fine)."""
    problems = []
    if m["flat"]["black"] >= BLACK_LIMIT_DB:
        problems.append(f"black plays {m['flat']['black']:.1f} dBFS (needs < {BLACK_LIMIT_DB})")
    for r in m["heights"]:
        if r["rms_db"] <= LOUD_LIMIT_DB:
            problems.append(
                f"a bright disc at height {r['height']} plays only "
                f"{r['rms_db']:.1f} dBFS (needs > {LOUD_LIMIT_DB})"
            )
    hz = [r["peak_hz"] for r in m["heights"]]
    if any(b <= a for a, b in pairwise(hz)):
        problems.append(f"pitch does not rise with height: {hz}")
    return problems


# -- the build --------------------------------------------------------------------------


def _run(cmd: list[str]) -> None:
    log.info("$ %s", " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, cwd=REPO)


def _install(src: Path, dst: Path) -> None:
    with atomic_write(dst) as (f, _), open(src, "rb") as s:
        shutil.copyfileobj(s, f, 1 << 20)


def build(
    *,
    out_dir: Path,
    seconds: float,
    epochs: int,
    layers: str = LAYERS,
    context: int = CONTEXT,
    install: bool = True,
    reuse: bool = False,
) -> dict[str, Any]:
    """Run the recipe in ``out_dir``; ``reuse`` keeps a film, dataset and checkpoint there.

    ``layers`` is ``liveframe train --layers`` (default :data:`LAYERS`, what ships).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    film, data = out_dir / "film.mkv", out_dir / "data.npz"
    ckpt, onnx_out = out_dir / "shapes.pt", out_dir / "shapes.onnx"
    timings_path = out_dir / "timings.json"
    timings: dict[str, float] = {}
    if reuse and ckpt.exists() and timings_path.exists():
        timings = json.loads(timings_path.read_text())
        log.info("reusing %s (trained earlier)", ckpt)
    else:
        t0 = time.monotonic()
        make_film.make_film(film, seconds=seconds, seed=FILM_SEED)
        timings["film"] = time.monotonic() - t0
        t0 = time.monotonic()
        _run([py, "-m", "liveframe", "pickle", film, "-o", data,
              "--calibrate-silence", CALIBRATE_SECONDS])  # fmt: skip
        timings["pickle"] = time.monotonic() - t0
        timings_path.write_text(json.dumps(timings))
        if ckpt.exists():
            ckpt.unlink()  # a fresh run, never a silent resume of an older one
        _run([py, "-m", "liveframe", "train", data, "-o", ckpt, "--kind", "pcm", "--layers", layers,
              "--loss", LOSS, "--epochs", epochs, "--batch-size", BATCH, "--patience", PATIENCE,
              "--lr-schedule", LR_SCHEDULE,
              "--context", context, "--seed", TRAIN_SEED, "--threads", THREADS])  # fmt: skip
    _run([py, REPO / "tools" / "export_onnx.py", ckpt, "-o", onnx_out])
    brain = Brain.load(onnx_out)
    m = measure(brain)
    m.update(seconds=seconds, layers=layers, context=context,
             t_film=timings.get("film", float("nan")),
             t_pickle=timings.get("pickle", float("nan")), **_training_facts(ckpt))  # fmt: skip
    for line in _measure_lines(m):
        log.info("%s", line)
    problems = check(m)
    if problems:
        raise SystemExit(f"build_shapes_brain: not shipping {onnx_out}: " + "; ".join(problems))
    if install:
        _install(onnx_out, DEFAULT_BRAIN)
        demo = make_film.make_film(
            out_dir / "demo.mkv", seconds=DEMO_SECONDS, seed=DEMO_SEED, intro=True
        )
        _install(demo, DEMO_CLIP)
        m["eval"] = evaluate_demo(out_dir)
        held_out = make_film.make_film(out_dir / "held-out.mkv", seconds=HELD_OUT_SECONDS,
                                       seed=HELD_OUT_SEED)
        m["eval_held_out"] = evaluate_clip(held_out, "the held-out minute", out_dir)
        card = model_card(Brain.load(DEFAULT_BRAIN), m)
        with atomic_write(BRAINS / "shapes.md", "w") as (f, _):
            f.write(card)
        log.info("wrote %s (%.1f MB), %s (%.2f MB) and %s", DEFAULT_BRAIN,
                 DEFAULT_BRAIN.stat().st_size / 1e6, DEMO_CLIP,
                 DEMO_CLIP.stat().st_size / 1e6, BRAINS / "shapes.md")  # fmt: skip
    return m


def evaluate_demo(work: Path | None = None) -> dict[str, Any]:
    """``liveframe eval brains/shapes.onnx brains/demo.mkv --modes raw,ola``, as a dict."""
    return evaluate_clip(DEMO_CLIP, "the demo clip", work)


def true_grain_figures(clip: Path, work: Path) -> dict[str, float]:
    """``frame_artifact_db`` of the clip's true grains (``liveframe pickle``'s targets: what
    a perfect brain would output) synthesised in raw and in ola mode: the best each mode
    can read on this clip."""
    from liveframe.core.synth import synthesize
    from liveframe.data.dataset import load_dataset
    from liveframe.data.pickle import build_dataset
    from liveframe.offline.metrics import frame_artifact_db

    data = build_dataset([clip], work / f"{clip.stem}.truth.npz", progress=False)
    targets = np.asarray(load_dataset(data).targets, np.float32)
    data.unlink()
    return {mode: frame_artifact_db(synthesize([targets], mode=mode), sr=C.SAMPLE_RATE)
            for mode in ("raw", "ola")}


def evaluate_clip(clip: Path, name: str, work: Path | None = None) -> dict[str, Any]:
    """``liveframe eval brains/shapes.onnx CLIP --modes raw,ola``, as a dict, with the true
    grains' figures (:func:`true_grain_figures`) under ``"true_grains"`` when ``work`` (a
    folder for the temporary dataset) is given."""
    from liveframe.offline.evaluate import evaluate

    res = evaluate(DEFAULT_BRAIN, clip, modes=("raw", "ola"))
    if work is not None:
        res["true_grains"] = true_grain_figures(clip, work)
    raw, ola = res["modes"]["raw"], res["modes"]["ola"]
    log.info(
        "eval on %s: frame_artifact_db raw %.1f, ola %.1f (%.1f dB lower), "
        "true soundtrack %.1f; black level %.1f dBFS",
        name,
        raw["frame_artifact_db"],
        ola["frame_artifact_db"],
        raw["frame_artifact_db"] - ola["frame_artifact_db"],
        res["reference"]["frame_artifact_db"],
        ola["black_level_dbfs"],
    )
    return res


def _training_facts(ckpt: Path) -> dict[str, Any]:
    """Epochs run, seconds spent training and the validation curve, from the checkpoint."""
    import torch

    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    hist = ck["history"]
    return {
        "t_train": float(sum(h["seconds"] for h in hist)),
        "epochs_run": len(hist),
        "history": [(int(h["epoch"]), float(h["train"]), float(h["val"])) for h in hist],
    }


def _measure_lines(m: dict[str, Any]) -> list[str]:
    lines = [f"{k}: {v:.1f} dBFS" for k, v in m["flat"].items()]
    lines += [
        f"disc at height {r['height']:.2f}: {r['rms_db']:.1f} dBFS, peak "
        f"{r['peak_hz']:.0f} Hz (film {r['film_hz']:.0f} Hz)"
        for r in m["heights"]
    ]
    lines.append(
        f"dim disc (grey 90) at 0.5: {m['dim_db']:.1f} dBFS; small disc "
        f"(radius 0.05) at 0.5: {m['small_db']:.1f} dBFS"
    )
    return lines


def model_card(brain: Brain, m: dict[str, Any]) -> str:
    s = brain.spec
    p = s.provenance
    layers = "-".join(str(n) for n in s.layers)
    val = p.get("val_loss")
    val_s = f"{val:.4g}" if isinstance(val, (int, float)) else "n/a"
    size_mb = DEFAULT_BRAIN.stat().st_size / 1e6
    flat = "\n".join(f"| {k} screen | {v:.1f} |" for k, v in m["flat"].items())
    rows = "\n".join(
        f"| {r['height']:.2f} | {r['film_hz']:.0f} | {r['peak_hz']:.0f} | {r['rms_db']:.1f} |"
        for r in m["heights"]
    )
    timing = "".join(
        f" {what} took {m[key]:.0f} s,"
        for what, key in (("the film", "t_film"), ("pickling", "t_pickle"))
        if np.isfinite(m[key])
    ).rstrip(",")
    curve = "\n".join(f"| {e} | {t:.4f} | {v:.4f} |" for e, t, v in m["history"])
    return f"""# shapes: the first shipped brain (default until issue 14)

A brain that makes a clean, playable response to shapes in front of a camera: black is
silent, a bright shape sings, higher on screen is higher in pitch, bigger and brighter is
louder. It is what `make demo` and `liveframe play`/`live` use when no brain is named.

## Spec

- input: {s.width}x{s.height} grey (channels {s.channels}, context {s.context}), float in [0, 1]
- output: pcm, `{s.framing}` framing, {s.length} samples per tick at {s.sample_rate} Hz and
  {s.fps:g} fps (hop {s.hop}), scale {s.scale:.4g}
- architecture: dense {layers} with ReLU (`--layers {m.get("layers", LAYERS)}`), {size_mb:.1f} MB
- loss: {p.get("loss", "mse")} on targets divided by their RMS (the spec's scale)
  (`--loss {LOSS}`: {LOSS_WHY});
  best validation loss {val_s} at epoch {p.get("best_epoch", "?")}
  of {p.get("epochs", "?")} (`--lr-schedule {LR_SCHEDULE}`: the rate falls to zero at the
  last epoch, no early stop; validation on held-out contiguous stretches of the film)

## Training data

A synthetic film written by `tools/make_film.py` ({m["seconds"]:.0f} s, seed {FILM_SEED},
160x120 grey pictures at 30 fps, FLAC sound at 22050 Hz), pickled with
`--calibrate-silence {CALIBRATE_SECONDS:g}` (black and white frames with silent targets):

- discs and squares appear (faded in), move, grow and brighten on a black screen,
  **one at a time**, at different heights; a shape rests near the middle of a pitch band
  and crosses band edges only while it moves;
- each sounds while it is visible, as **one sinusoid**: amplitude `{make_film.A_MAX} *
  brightness * sqrt(radius / {make_film.R_MAX})` (radius as a fraction of the picture
  height), frequency a harmonic `m` of 30 Hz chosen by the height `y` of its centre (0
  bottom, 1 top): {len(make_film.LADDER)} equal bands from {make_film.Y_LO} to
  {make_film.Y_HI} (clipped), bottom to top `m` = {", ".join(map(str, make_film.LADDER))},
  i.e. {", ".join(str(30 * m) for m in make_film.LADDER)} Hz (wide bands keep the brain sure
  of the pitch: where unsure, a brain plays two pitches at once, and they beat at the frame
  rate); **frets**: a shape within {make_film.FRET[0]} of a band edge is silent and it fades
  back in (smoothstep) by {make_film.FRET[1]}, so a rising shape plays a scale of separate
  notes and never two pitches at once; sign `(-1)**m` so that neighbouring pitches agree
  in phase half way between ticks (a rising shape cross-fades instead of cancelling);
- loudness changes are smooth: fades of {make_film.FADE[0]:g} to {make_film.FADE[1]:g} s
  (smoothstep), eased changes of brightness and size;
- black, white and flat grey stretches, some with camera-like noise, are silent.

Every partial is a whole multiple of the frame rate, so a tone has the same phase at every
tick and each picture maps to one grain: a dense net regressing grains can learn it (a tone
at a random phase would average out to silence). The soundtrack is continuous in time, as
a real film's is: each sinusoid's amplitude is a smooth curve (a cubic B-spline) through
its per-tick values, so nothing in the film's sound happens at the frame rate.

Context: the brain sees the current picture and the {m.get("context", CONTEXT)} before it
(`--context {m.get("context", CONTEXT)}`). From one picture a brain cannot tell a shape
fading in from one fading out, so it plays each tick's grain at a flat level and the
Hann cross-fade bends the loudness once per tick, a ripple at 30 Hz; with the picture
before, it sees which way the loudness moves and shapes the grain with it.

One sinusoid, one shape: any two partials at multiples of 30 Hz beat at a multiple of
30 Hz, so harmonics or chords would modulate the film's own power envelope at the frame
rate and `frame_artifact_db` could not tell a synthesis artefact from the content.

## Measured behaviour

Pictures drawn at 640x480 as a camera gives them (a white disc of radius 0.1 of the height,
anti-aliased, centred horizontally), preprocessed like live play, {PROBE_TICKS} ticks each
through `Brain` and `OlaSynth`, RMS after overlap-add (the first tick trimmed):

| input | RMS (dBFS) |
|---|---|
{flat}

| disc height | film pitch (Hz) | brain's FFT peak (Hz) | RMS (dBFS) |
|---|---|---|---|
{rows}

A dim disc (grey 90 of 255) at height 0.5 plays {m["dim_db"]:.1f} dBFS, a small one (radius
0.05) {m["small_db"]:.1f} dBFS. `tests/test_shapes_brain.py` checks the shipped file:
black below {BLACK_LIMIT_DB:g} dBFS, a bright disc above {LOUD_LIMIT_DB:g} dBFS, pitch rising
with height.
{_eval_section(m)}
Limits: it knows shapes on black. A real camera's room (textured, lit, not black) is outside
what it saw; it plays whatever its weights make of it, so start from a dark background.

## Rebuild

    make brains

(`tools/build_shapes_brain.py`: film, `liveframe pickle`, `liveframe train`, export,
measurement, this card, and the demo clip `brains/demo.mkv`, {DEMO_SECONDS:g} s, seed
{DEMO_SEED}, opening with a disc rising from bottom to top.) Seeded throughout (film,
training order and initial weights): the same machine and thread count give the same
weights. On this build{timing}; training took
{m["t_train"]:.0f} s for {m["epochs_run"]} epochs on {THREADS} CPU threads (a 2-core machine
shared with other work; an idle one is faster).

| epoch | train loss | validation loss |
|---|---|---|
{curve}
"""


def _eval_rows(res: dict[str, Any]) -> str:
    return "\n".join(
        f"| {mode} | {v['frame_artifact_db']:.1f} | {v['mel_distance_db']:.1f} | "
        f"{v['envelope_corr']:.3f} | {v['black_level_dbfs']:.1f} |"
        for mode, v in res["modes"].items()
    )


def _gap(res: dict[str, Any]) -> float:
    m = res["modes"]
    return float(m["raw"]["frame_artifact_db"] - m["ola"]["frame_artifact_db"])


def _truth_lines(*results: dict[str, Any] | None) -> str:
    rows = [(name, r["true_grains"]) for name, r in zip(("demo clip", "held-out minute"), results)
            if r and "true_grains" in r]
    if not rows:
        return ""
    table = "\n".join(f"| {name} | {t['raw']:.1f} | {t['ola']:.1f} |" for name, t in rows)
    return f"""
The true grains (`liveframe pickle`'s targets for the clip: what a perfect brain would
output), synthesised the same two ways, read:

| clip | raw | ola |
|---|---|---|
{table}

A perfect brain would pass issue 3's 20 dB on both clips by a wide margin: raw plays the
middle half of each Hann-windowed grain, where the window still rises and falls every
tick, and `ola` of the true grains is the soundtrack itself. What `ola` reads above the
soundtrack's own figure is this brain's error.
"""


def _eval_section(m: dict[str, Any]) -> str:
    res = m.get("eval")
    if not res:
        return ""
    head = ("| mode | frame_artifact_db | mel_distance_db | envelope_corr | black_level_dbfs |\n"
            "|---|---|---|---|---|")
    gap = _gap(res)
    text = f"""
On the demo clip ({res["seconds"]:g} s, with its true soundtrack), from
`liveframe eval brains/shapes.onnx brains/demo.mkv --modes raw,ola --json`:

{head}
{_eval_rows(res)}

`ola` is {gap:.1f} dB below `raw` in `frame_artifact_db` (issue 3 asks for at least
20{"" if gap >= 20 else ": not met"}). The true soundtrack itself reads
{res["reference"]["frame_artifact_db"]:.1f} dB (nothing at the frame rate): what `ola`
reads is the brain's own error. A held picture gives the same grain every tick, so the
output is exactly periodic at 30 Hz and any imprecision of the grain (its envelope not
quite Hann, a trace of a neighbouring harmonic) shows as a line at a frame-rate harmonic
of the power envelope.
"""
    held = m.get("eval_held_out")
    if held:
        hgap = _gap(held)
        text += f"""
On a held-out minute (`tools/make_film.py --seconds {HELD_OUT_SECONDS:g} --seed
{HELD_OUT_SEED}`, a film no brain saw; its true soundtrack reads
{held["reference"]["frame_artifact_db"]:.1f} dB):

{head}
{_eval_rows(held)}

`ola` is {hgap:.1f} dB below `raw` here{"" if hgap >= 20 else " (not met)"}. In 18 s a few
events decide the demo's figure; a minute weighs many.
"""
    text += _truth_lines(res, held)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=FILM_SECONDS, help="film length")
    p.add_argument("--epochs", type=int, default=EPOCHS, help="maximum epochs")
    p.add_argument("--layers", default=LAYERS, help=f"liveframe train --layers (default {LAYERS})")
    p.add_argument("--context", type=int, default=CONTEXT,
                   help=f"liveframe train --context (default {CONTEXT})")
    p.add_argument(
        "--out-dir",
        type=Path,
        default=REPO / "build" / "brains",
        help="working folder (default build/brains)",
    )
    p.add_argument(
        "--no-install", action="store_true", help="build and measure only; leave brains/ untouched"
    )
    p.add_argument(
        "--reuse-checkpoint",
        action="store_true",
        help="skip film, pickle and train when the working folder holds a checkpoint; "
        "export, measure and install it",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="build_shapes_brain: %(message)s")
    build(
        out_dir=args.out_dir,
        seconds=args.seconds,
        epochs=args.epochs,
        layers=args.layers,
        context=args.context,
        install=not args.no_install,
        reuse=args.reuse_checkpoint,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
