#!/usr/bin/env python3
"""Measure a brain against the "Done when" figures of issue 14, on held-out footage.

    python tools/measure_brain.py BRAIN --footage DIR [--out results.json] [--work DIR]

Every sound is made by the project's own ``liveframe render CLIP -o WAV --brain BRAIN``
(a subprocess, the default ``ola`` mode, output guard and limiter included) and measured
here with numpy from the written wav and the clip's own pictures:

held-out clips (``DIR/silent/tree.avi`` handheld, ``DIR/silent/carphone_pristine.mp4``
fixed camera, ``DIR/sound/oa4_launch.webm`` and ``DIR/sound/testMovie.mp4`` film excerpts;
never in the training film)
    ``level`` median RMS of 0.2 s windows (dBFS), ``peak`` (largest |sample|, under the
    limiter's ceiling), ``follow`` (Spearman correlation over 0.2 s windows of picture
    motion and output RMS; motion = mean |difference| of consecutive *distinct* decoded
    frames, 64x64 grey, INTER_AREA, as ``../shared/tools/realworld.py`` defines it, a frame
    within :data:`DUP_TOL` of the previous one being a repeat), ``line`` at k*30 Hz and
    k*source fps (:func:`liveframe.offline.metrics.frame_artifact_db`, the analytic power
    envelope).
the same clips re-encoded at 10, 25 and 30 fps (``ffmpeg -vf fps=N``, H.264)
    level and line at k*30 Hz and k*N Hz.
a black picture
    the level after 1 s (required below -60 dBFS).
a still real picture (a frame of tree.avi, a photo; 4 s), and tree.avi stopping still
    the level of the window 1.0-1.2 s after the picture is still, and of everything after
    1 s (required below -30 dBFS).
register
    a bright blob wobbling at five heights on a textured background: five spectral
    centroids, bottom to top (required increasing).

``../shared/tools/realworld.py`` is run on the held-out clips too (``LIVEFRAME_BRAIN``) and
its JSON included. Its ``line_db`` builds the power envelope from 1 ms means of x^2: a
steady tone of about 441-561 Hz (or any pair of partials that far apart) folds into its
1-10 Hz band, so it can read a line where :func:`frame_artifact_db` sees none; it is
reported, not judged.

Prints a markdown table, writes the JSON (``--out``). Exit status: 0 measured (whether or
not every figure passes), 1 a render or re-encode failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from liveframe.errors import LiveframeError, MediaError, UsageError  # noqa: E402

F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

HELD_OUT = {
    "tree": ("silent/tree.avi", "handheld"),
    "carphone": ("silent/carphone_pristine.mp4", "fixed camera, a man moving"),
    "oa4_launch": ("sound/oa4_launch.webm", "film excerpt"),
    "testMovie": ("sound/testMovie.mp4", "film excerpt"),
}
"""Clips never in the training film: name -> (path under --footage, what it is)."""

FIXED = "carphone"
"""The fixed-camera clip whose ``follow`` is judged."""

PHOTO = "photos/skimage/gravel.png"
"""A textured photo held still (besides a frame of tree.avi)."""

RATES = (10, 25, 30)
"""Source rates the held-out clips are re-encoded at for the line criterion."""

WIN_S = 0.2
"""Window of the level and follow measures, s."""

DUP_TOL = 0.5 / 255
"""Mean |difference| at or under which a decoded frame repeats the previous one."""

CEILING = 0.89
"""The output guard's limiter ceiling (``liveframe.core.safety``, -1 dBFS)."""

LEVEL_RANGE = (-35.0, -12.0)
FOLLOW_MIN = 0.5
BLACK_MAX = -60.0
STILL_MAX = -30.0
LINE_MAX = 3.0

SIZE = (256, 192)
"""Width, height of the synthetic pictures."""

HEIGHTS = (170, 133, 96, 59, 22)
"""Blob heights in pixels of a 192-high picture, bottom to top."""

FPS = 30


class MeasureError(LiveframeError):
    """A render or re-encode that failed."""

    exit_status = 1


# -- audio and pictures ---------------------------------------------------------------------


def read_wav(path: Path) -> tuple[F64, int]:
    """Mono float samples in [-1, 1] and the rate of an audio file."""
    import av

    with av.open(str(path)) as c:
        sr = c.streams.audio[0].rate
        parts = []
        for f in c.decode(audio=0):
            a = f.to_ndarray()
            a = a.reshape(-1, f.samples) if f.format.is_planar else a.reshape(f.samples, -1).T
            scale = 2.0 ** (8 * a.dtype.itemsize - 1) if a.dtype.kind in "iu" else 1.0
            parts.append(a.astype(np.float64).mean(axis=0) / scale)
    return (np.concatenate(parts) if parts else np.zeros(0)), sr


def window_rms(x: F64, sr: int, win_s: float = WIN_S) -> F64:
    """RMS of consecutive ``win_s`` windows."""
    w = int(win_s * sr)
    n = x.size // w
    return np.sqrt((x[: n * w].reshape(n, w) ** 2).mean(axis=1))


def db(v: float | F64) -> Any:
    """Amplitude to dBFS, floored at -150."""
    return np.maximum(20 * np.log10(np.maximum(v, 1e-12) + 0.0), -150.0)


def level_db(x: F64) -> float:
    """RMS of ``x`` in dBFS (-150 for silence or nothing)."""
    return float(db(np.sqrt(np.mean(x**2)))) if x.size else -150.0


def motion(clip: Path, n_win: int, win_s: float = WIN_S) -> tuple[F64, float]:
    """Per-window mean |difference| of consecutive distinct frames (64x64 grey), source fps."""
    import av
    import cv2

    out, cnt = np.zeros(n_win), np.zeros(n_win)
    with av.open(str(clip)) as c:
        vs = c.streams.video[0]
        prev = None
        for fr in c.decode(vs):
            if fr.pts is None:
                continue
            g = cv2.resize(fr.to_ndarray(format="gray"), (64, 64), interpolation=cv2.INTER_AREA)
            g = g.astype(np.float64) / 255.0
            d = None if prev is None else float(np.abs(g - prev).mean())
            if d is not None and d <= DUP_TOL:
                continue  # a repeat: not a new picture
            i = int(float(fr.pts * vs.time_base) // win_s)
            if d is not None and 0 <= i < n_win:
                out[i] += d
                cnt[i] += 1
            prev = g
        rate = float(vs.average_rate or FPS)
    return np.where(cnt > 0, out / np.maximum(cnt, 1), 0.0), rate


def spearman(a: F64, b: F64) -> float:
    """Spearman rank correlation, ties sharing their mean rank (0 for a constant)."""
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0

    def ranks(v: F64) -> F64:
        r = np.empty(v.size)
        r[np.argsort(v, kind="stable")] = np.arange(v.size)
        for u in np.unique(v):
            r[v == u] = r[v == u].mean()
        return r

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def centroid_hz(x: F64, sr: int) -> float:
    """Spectral centroid of the power spectrum, Hz (0 for silence)."""
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / sr)
    return float((f * p).sum() / p.sum()) if p.sum() > 0 else 0.0


def line_db(x: F64, sr: int, rate: float) -> float:
    """The power envelope's line at k * rate over its neighbourhood (project metric), dB."""
    from liveframe.offline.metrics import frame_artifact_db

    return float(frame_artifact_db(x.astype(np.float32), sr=sr, fps=rate))


# -- making and rendering clips -------------------------------------------------------------


class Renderer:
    """``liveframe render CLIP -o WORK/NAME.wav --brain BRAIN`` as a subprocess."""

    def __init__(self, brain: Path, work: Path, exe: Sequence[str]) -> None:
        self.brain, self.work, self.exe = brain, work, list(exe)

    def __call__(self, clip: Path, name: str) -> tuple[F64, int]:
        wav = self.work / f"{name}.wav"
        cmd = [*self.exe, "render", str(clip), "-o", str(wav), "--brain", str(self.brain),
               "--quiet"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise MeasureError(f"render of {clip.name} failed: {last}")
        return read_wav(wav)


def reencode(clip: Path, rate: int, dest: Path) -> Path:
    """``clip`` at ``rate`` fps (ffmpeg fps filter, H.264, no audio)."""
    cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-vf", f"fps={rate}", "-an",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", str(dest)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise MeasureError(f"ffmpeg could not re-encode {clip.name} at {rate} fps: "
                           f"{(r.stderr.strip().splitlines() or ['?'])[-1]}")
    return dest


def write_still(path: Path, pic: U8, seconds: float) -> Path:
    """One picture held still for ``seconds`` at 30 fps."""
    from liveframe.data.clips import write_clip

    times = np.round(np.arange(int(seconds * FPS)) / FPS, 3)
    return write_clip(path, ((float(t), pic) for t in times), fps=FPS)


def textured_background(seed: int = 7, level: float = 90.0) -> U8:
    """A textured grey wall (H, W), as ``tests/test_camfilm.py`` draws it."""
    import cv2

    rng = np.random.default_rng(seed)
    w, h = SIZE
    tex = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)), (0, 0), 3) * 300
    return np.clip(level + tex, 0, 255).astype(np.uint8)


def blob_pictures(y: float, seconds: float = 3.0, *, wobble: float = 24.0) -> list[U8]:
    """A bright disc wobbling (a small circle) around height ``y`` on the textured wall."""
    import cv2

    bg = textured_background()
    pics = []
    for t in np.arange(int(seconds * FPS)) / FPS:
        cx = SIZE[0] / 2 + wobble * np.sin(2 * np.pi * 0.8 * t)
        cy = y + 0.25 * wobble * np.cos(2 * np.pi * 0.8 * t)
        p = bg.copy()
        cv2.circle(p, (int(cx * 16), int(cy * 16)), 14 * 16, 235, -1, cv2.LINE_AA, 4)
        pics.append(p)
    return pics


def clip_frames(clip: Path, seconds: float) -> list[tuple[float, U8]]:
    """The first ``seconds`` of a clip's pictures, RGB, with their times."""
    import av

    out = []
    with av.open(str(clip)) as c:
        vs = c.streams.video[0]
        for fr in c.decode(vs):
            t = float(fr.pts * vs.time_base) if fr.pts is not None else len(out) / FPS
            if t >= seconds:
                break
            out.append((t, fr.to_ndarray(format="rgb24")))
    if not out:
        raise MediaError(f"{clip}: no pictures")
    return out


# -- the measures ---------------------------------------------------------------------------


def measure_clip(render: Renderer, clip: Path, name: str) -> dict[str, Any]:
    """Level, peak, follow and lines of one held-out clip."""
    x, sr = render(clip, name)
    rms = window_rms(x, sr)
    mot, rate = motion(clip, rms.size)
    return {
        "level_dbfs": round(float(np.median(db(rms))), 1),
        "peak": round(float(np.abs(x).max(initial=0)), 3),
        "follow": round(spearman(mot, rms), 2),
        "line30_db": round(line_db(x, sr, 30.0), 1),
        "line_src_db": round(line_db(x, sr, rate), 1),
        "source_fps": round(rate, 2),
        "seconds": round(x.size / sr, 2),
    }


def measure_rates(render: Renderer, clip: Path, name: str, work: Path) -> dict[str, Any]:
    """Level and the lines at k*30 Hz and k*N Hz of ``clip`` re-encoded at each of RATES."""
    out = {}
    for rate in RATES:
        x, sr = render(reencode(clip, rate, work / f"{name}_{rate}fps.mp4"), f"{name}_{rate}fps")
        out[str(rate)] = {
            "level_dbfs": round(float(np.median(db(window_rms(x, sr)))), 1),
            "line30_db": round(line_db(x, sr, 30.0), 1),
            "line_src_db": round(line_db(x, sr, float(rate)), 1),
        }
    return out


def measure_black(render: Renderer, work: Path) -> dict[str, Any]:
    """A black picture for 3 s: the level after 1 s."""
    x, sr = render(write_still(work / "black.mkv", np.zeros(SIZE[::-1], np.uint8), 3.0), "black")
    return {"after_1s_dbfs": round(level_db(x[sr:]), 1),
            "nonzero_after_1s": int(np.count_nonzero(np.abs(x[sr:]) > 0))}


def settle(x: F64, sr: int, start: float) -> dict[str, float]:
    """Levels of the window ``start+1.0 .. start+1.2`` s and of everything after ``start+1``."""
    a, b = int((start + 1.0) * sr), int((start + 1.2) * sr)
    return {"w1.0_1.2_dbfs": round(level_db(x[a:b]), 1),
            "after_1s_dbfs": round(level_db(x[a:]), 1),
            "first_0.2s_dbfs": round(level_db(x[int(start * sr): int((start + 0.2) * sr)]), 1)}


def measure_still(render: Renderer, footage: Path, work: Path) -> dict[str, Any]:
    """Still real pictures (a frame of tree.avi, a photo) for 4 s, and tree.avi stopping."""
    import cv2

    tree = footage / HELD_OUT["tree"][0]
    frames = clip_frames(tree, 2.0)
    out = {}
    x, sr = render(write_still(work / "still_tree.mkv", frames[-1][1], 4.0), "still_tree")
    out["tree_frame"] = settle(x, sr, 0.0)
    photo = cv2.imread(str(footage / PHOTO), cv2.IMREAD_COLOR)
    if photo is not None:
        photo = cv2.cvtColor(cv2.resize(photo, SIZE, interpolation=cv2.INTER_AREA),
                             cv2.COLOR_BGR2RGB)
        x, sr = render(write_still(work / "still_photo.mkv", photo, 4.0), "still_photo")
        out["photo"] = {"file": PHOTO, **settle(x, sr, 0.0)}
    from liveframe.data.clips import write_clip

    stop = frames[-1][0] + 1 / FPS
    seq = frames + [(stop + k / FPS, frames[-1][1]) for k in range(4 * FPS)]
    x, sr = render(write_clip(work / "tree_stops.mkv", seq, fps=FPS), "tree_stops")
    out["tree_stops"] = {"still_from_s": round(stop, 2),
                         "moving_dbfs": round(level_db(x[: int(stop * sr)]), 1),
                         **settle(x, sr, stop)}
    return out


def measure_register(render: Renderer, work: Path) -> dict[str, Any]:
    """Spectral centroid (after the first second) of the wobbling blob at five heights."""
    from liveframe.data.clips import write_clip

    cents, levels = [], []
    for k, y in enumerate(HEIGHTS):
        pics = blob_pictures(y)
        clip = write_clip(work / f"height{k}.mkv",
                          ((round(i / FPS, 3), p) for i, p in enumerate(pics)), fps=FPS)
        x, sr = render(clip, f"height{k}")
        cents.append(round(centroid_hz(x[sr:], sr), 1))
        levels.append(round(level_db(x[sr:]), 1))
    return {"heights_bottom_to_top": [round(1 - y / SIZE[1], 2) for y in HEIGHTS],
            "centroids_hz": cents, "levels_dbfs": levels,
            "ordered": bool(np.all(np.diff(cents) > 0))}


def run_realworld(script: Path, exe: Sequence[str], brain: Path, clips: Sequence[Path],
                  work: Path) -> list[dict[str, Any]] | str:
    """``realworld.py`` on the clips (LIVEFRAME_BRAIN): its JSON objects, or why not."""
    if not script.is_file():
        return f"not run: {script} not found"
    lf = exe[0] if len(exe) == 1 else shutil.which("liveframe") or "liveframe"
    out = work / "realworld"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "LIVEFRAME_BRAIN": str(brain)}
    r = subprocess.run([sys.executable, str(script), lf, str(out), *map(str, clips)],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return f"failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}"
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


# -- verdicts and the table -----------------------------------------------------------------


def verdicts(res: dict[str, Any]) -> dict[str, bool]:
    """Each "Done when" criterion of issue 14: met or not."""
    clips = res["clips"]
    lo, hi = LEVEL_RANGE
    lines = [v for c in res["rates"].values() for r in c.values()
             for v in (r["line30_db"], r["line_src_db"])]
    native = [v for c in clips.values() for v in (c["line30_db"], c["line_src_db"])]
    stills = [s["after_1s_dbfs"] for s in res["still"].values()]
    return {
        "level": all(lo <= c["level_dbfs"] <= hi for c in clips.values()),
        "peak": all(c["peak"] <= CEILING + 1e-3 for c in clips.values()),
        "follow_fixed": clips[FIXED]["follow"] >= FOLLOW_MIN,
        "black": res["black"]["after_1s_dbfs"] < BLACK_MAX,
        "still": all(v < STILL_MAX for v in stills),
        "register": res["register"]["ordered"],
        "no_line_at_10_25_30fps": all(v <= LINE_MAX for v in lines),
        "no_line_native_fps": all(v <= LINE_MAX for v in native),  # beyond the issue's
    }


def table(res: dict[str, Any]) -> str:
    """The results as markdown."""
    rows = ["| clip | what | fps | level dBFS | peak | follow | line 30 | line src |"
            " 10 fps: level / l30 / lsrc | 25 fps | 30 fps |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in res["clips"].items():
        rr = res["rates"][name]
        per = [f"{rr[str(r)]['level_dbfs']} / {rr[str(r)]['line30_db']} / "
               f"{rr[str(r)]['line_src_db']}" for r in RATES]
        rows.append(f"| {name} | {HELD_OUT[name][1]} | {c['source_fps']} | {c['level_dbfs']} |"
                    f" {c['peak']} | {c['follow']} | {c['line30_db']} | {c['line_src_db']} |"
                    f" {' | '.join(per)} |")
    rows += ["", f"black after 1 s: {res['black']['after_1s_dbfs']} dBFS "
             f"(non-zero samples {res['black']['nonzero_after_1s']})"]
    for k, s in res["still"].items():
        rows.append(f"still {k}: 0-0.2 s {s['first_0.2s_dbfs']}, 1.0-1.2 s "
                    f"{s['w1.0_1.2_dbfs']}, after 1 s {s['after_1s_dbfs']} dBFS")
    g = res["register"]
    rows.append(f"register centroids bottom->top: {g['centroids_hz']} Hz "
                f"(levels {g['levels_dbfs']} dBFS), ordered: {g['ordered']}")
    rw = res["realworld"]
    if isinstance(rw, list):
        rows.append("realworld.py (line_db folds ~441-561 Hz tones, not judged): " + "; ".join(
            f"{r.get('clip')}: {r.get('level_dbfs')} dBFS, peak {r.get('peak')}, follow "
            f"{r.get('follow')}, line {r.get('line_db')}" for r in rw))
    else:
        rows.append(f"realworld.py: {rw}")
    rows += ["", "| criterion | met |", "|---|---|"]
    rows += [f"| {k} | {'yes' if v else 'NO'} |" for k, v in res["verdicts"].items()]
    return "\n".join(rows)


# -- command line ---------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("brain", type=Path, help="the brain (.onnx)")
    p.add_argument("--footage", type=Path, required=True,
                   help="folder of tools/fetch_footage.py (silent/, sound/, photos/)")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--work", type=Path, help="folder for clips and wavs (default: a temporary one)")
    p.add_argument("--realworld", type=Path,
                   default=ROOT.parent / "shared" / "tools" / "realworld.py",
                   help="../shared/tools/realworld.py")
    return p.parse_args(argv)


def check(a: argparse.Namespace) -> list[Path]:
    """Refuse bad input; the held-out clips."""
    if not a.brain.is_file():
        raise UsageError(f"{a.brain}: no such brain file")
    from liveframe.core.brain import Brain

    Brain.load(a.brain)  # a BrainError (one line, exit 2) for what is not a brain
    if not a.footage.is_dir():
        raise UsageError(f"{a.footage}: not a folder; fetch with tools/fetch_footage.py DIR")
    clips = [a.footage / p for p, _ in HELD_OUT.values()]
    missing = [str(c.relative_to(a.footage)) for c in clips if not c.is_file()]
    if missing:
        raise UsageError(f"{a.footage} lacks {', '.join(missing)}; fetch with "
                         f"tools/fetch_footage.py {a.footage} silent sound photos")
    if a.out is not None and not a.out.resolve().parent.is_dir():
        raise UsageError(f"{a.out}: folder {a.out.parent} does not exist")
    if a.work is not None and a.work.exists() and not a.work.is_dir():
        raise UsageError(f"{a.work}: not a folder")
    if shutil.which("ffmpeg") is None:
        raise UsageError("ffmpeg not found (needed to re-encode the clips)")
    return clips


def liveframe_command() -> list[str]:
    """The project's CLI: ``liveframe`` beside this Python, else on PATH."""
    here = Path(sys.executable).parent / "liveframe"
    if here.is_file():
        return [str(here)]
    found = shutil.which("liveframe")
    return [found] if found else [sys.executable, "-m", "liveframe"]


def measure(a: argparse.Namespace, clips: list[Path], work: Path) -> dict[str, Any]:
    """Every figure."""
    brain = a.brain.resolve()
    exe = liveframe_command()
    render = Renderer(brain, work, exe)
    res: dict[str, Any] = {"brain": str(brain), "clips": {}, "rates": {}}
    for name, clip in zip(HELD_OUT, clips):
        res["clips"][name] = {"file": HELD_OUT[name][0], **measure_clip(render, clip, name)}
        res["rates"][name] = measure_rates(render, clip, name, work)
    res["black"] = measure_black(render, work)
    res["still"] = measure_still(render, a.footage, work)
    res["register"] = measure_register(render, work)
    res["realworld"] = run_realworld(a.realworld, exe, brain, clips, work)
    res["verdicts"] = verdicts(res)
    return res


def main(argv: Sequence[str] | None = None) -> int:
    a = parse(argv)
    try:
        clips = check(a)
        if a.work is not None:
            a.work.mkdir(parents=True, exist_ok=True)
            res = measure(a, clips, a.work)
        else:
            with tempfile.TemporaryDirectory(prefix="measure_brain_") as tmp:
                res = measure(a, clips, Path(tmp))
    except LiveframeError as e:
        print(f"measure_brain: {e}", file=sys.stderr)
        return e.exit_status
    print(table(res))
    if a.out is not None:
        a.out.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
