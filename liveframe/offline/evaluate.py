"""Judge a brain on a video with its true soundtrack: every render mode, measured.

The video is decoded once on the brain clock; one tick pipeline per mode plays the same
pictures (:func:`~liveframe.offline.render.render_pictures`), and once more on black
pictures for the black level. Each rendered signal is what ``liveframe render`` writes
(guarded at the brain rate), measured against the true soundtrack with
:mod:`liveframe.offline.metrics`. Both kinds of brain go through the same pipeline (a
spectrum brain's magnitudes are synthesised with its phase method, or ``phase``); the
true soundtrack is the video's own, decoded at the brain's rate, whatever the kind.
:func:`write_plot` draws the spectrograms side by side.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe.core.brain import Brain
from liveframe.core.media import MediaReader
from liveframe.core.safety import guard
from liveframe.errors import MediaError, UsageError
from liveframe.offline.csound import csound_available
from liveframe.offline.metrics import (
    N_MELS,
    TOP_DB,
    envelope_corr,
    frame_artifact_db,
    hz_to_mel,
    level_db,
    log_mel,
    mel_distance_db,
    rms_dbfs,
)
from liveframe.offline.pictures import PictureStream
from liveframe.offline.render import (
    RENDER_MODES,
    check_mode,
    duration_samples,
    load_brain,
    render_pictures,
)
from liveframe.util.files import atomic_write
from liveframe.util.progress import Progress

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

COLUMNS = ("level_db", "mel_distance_db", "envelope_corr", "frame_artifact_db", "black_level_dbfs")
"""The figures of each mode, in the order the table shows them."""


def evaluate(
    brain: Brain | str | os.PathLike[str] | None,
    video: str | os.PathLike[str],
    *,
    modes: tuple[str, ...] | None = None,
    seed: int = 0,
    density: float = 1.0,
    spread: float = 1.0,
    phase: str | None = None,
    plot: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Render ``video`` in each mode and measure it against its true soundtrack.

    Parameters
    ----------
    brain : Brain, path or name (None: the default brain)
    video : path-like
        A video with its soundtrack.
    modes : tuple of str, optional
        Default: every render mode (``csound`` only when it is installed).
    seed, density, spread :
        Granular parameters.
    phase : str, optional
        A spectrum brain's phase method (default: its spec's; a pcm brain ignores it).
    plot : path-like, optional
        A ``.png`` to draw the true and rendered spectrograms into (:func:`write_plot`).
    progress : Progress, optional
        Updated with the ticks decoded.

    Returns
    -------
    dict
        ``{"modes": {MODE: {"level_db", "mel_distance_db", "envelope_corr",
        "frame_artifact_db", "black_level_dbfs"}}, "reference": {"frame_artifact_db",
        "rms_dbfs" of the true soundtrack}, "brain", "kind", "video", "seconds",
        "sample_rate", "fps"}``. ``level_db`` is the output's RMS level minus the true
        soundtrack's (dB; 0 when as loud).
    """
    b = load_brain(brain)
    spec = b.spec
    sr = spec.sample_rate
    if modes is None:
        modes = tuple(m for m in RENDER_MODES if m != "csound" or csound_available())
        if "csound" not in modes:
            log.warning("csound not installed: csound mode skipped (apt-get install csound)")
    for m in modes:
        check_mode(m)
    with MediaReader(video, need_audio=True) as r:
        t0, true = r.read_audio(sample_rate=sr)
    stream = PictureStream(video, spec)
    pictures: list[U8] = []
    for px in stream:
        pictures.append(px)
        if progress is not None:
            progress.update(px.shape[0])
    n_out = duration_samples(stream.end_time, sr)
    # the true soundtrack on the video's timeline
    s0 = round(float(t0) * sr)
    true = np.concatenate([np.zeros(max(s0, 0), np.float32), true[max(-s0, 0) :]])
    true = np.asarray(true[:n_out], np.float32)
    zero = np.zeros((1, spec.channels, spec.height, spec.width), np.uint8)
    black = [np.broadcast_to(zero, (px.shape[0], *zero.shape[1:])) for px in pictures]

    def play(mode: str, batches: list[U8]) -> F32:
        sig = render_pictures(b, batches, mode=mode, seed=seed, density=density,
                              spread=spread, phase=phase, n_out=n_out)
        return guard(sig, sr=sr, block=spec.hop)

    true_dbfs = rms_dbfs(true)
    results: dict[str, dict[str, float]] = {}
    rendered: dict[str, F32] = {}
    for m in modes:
        sig = rendered[m] = play(m, pictures)
        results[m] = {
            "level_db": round(level_db(sig, true), 2),
            "mel_distance_db": round(mel_distance_db(sig, true, sr=sr), 3),
            "envelope_corr": round(envelope_corr(sig, true, sr=sr, fps=spec.fps), 4),
            "frame_artifact_db": round(frame_artifact_db(sig, sr=sr, fps=spec.fps), 2),
            "black_level_dbfs": round(rms_dbfs(play(m, black)), 2),
        }
    if plot is not None:
        write_plot(plot, true, rendered, sr=sr)
    return {
        "brain": str(b.path) if b.path else b.name,
        "kind": spec.kind,
        "video": str(video),
        "seconds": round(n_out / sr, 3),
        "sample_rate": sr,
        "fps": spec.fps,
        "modes": results,
        "reference": {"frame_artifact_db": round(frame_artifact_db(true, sr=sr, fps=spec.fps), 2),
                      "rms_dbfs": round(true_dbfs, 2)},
    }


def format_table(res: dict[str, Any]) -> str:
    """:func:`evaluate`'s result as a table, one mode a line, the true soundtrack last.

    The true soundtrack's line shows its frame-rate line and its level (0 dB by definition
    of ``level_db``; its RMS in dBFS is in the title).
    """
    ref = res["reference"]
    lines = [f"{res['brain']} ({res.get('kind', 'pcm')}) on {res['video']} "
             f"({res['seconds']} s, true soundtrack {ref.get('rms_dbfs', '?')} dBFS)",
             f"{'mode':<10}" + "".join(f"{c:>19}" for c in COLUMNS)]
    for m, v in res["modes"].items():
        lines.append(f"{m:<10}" + "".join(f"{v[c]:>19}" for c in COLUMNS))
    true_row = {"level_db": 0.0, "frame_artifact_db": ref["frame_artifact_db"]}
    lines.append(f"{'(true)':<10}" + "".join(f"{true_row.get(c, ''):>19}" for c in COLUMNS))
    return "\n".join(lines)


PLOT_PANEL = (480, 256)
"""Most pixels of one spectrogram panel of :func:`write_plot` (width, height)."""


def write_plot(path: str | os.PathLike[str], true: F32, rendered: dict[str, F32], *,
               sr: int, height: int = PLOT_PANEL[1]) -> Path:
    """True and rendered log-mel spectrograms side by side, with axes: time in seconds
    along the bottom, frequency in Hz up the side (mel-spaced, low at the bottom), one
    shared dB scale shown by a colour bar; written through a temporary and renamed.

    Parameters
    ----------
    path : path-like
        A ``.png`` file.
    true : ndarray, shape (n,), float32
    rendered : dict of str to ndarray, shape (n,), float32
        One panel per entry, in order, after the true soundtrack's.
    sr : int
    height : int
        Pixels of each panel's spectrogram.
    """
    import cv2

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UsageError(f"{path}: a plot is written as .png")
    panels = [("true soundtrack", true), *rendered.items()]
    ref = float(log_mel(true, sr=sr).max()) if np.any(true) else 0.0
    for x in rendered.values():
        if np.any(x):
            ref = max(ref, float(log_mel(x, sr=sr).max()))
    seconds = max((x.shape[0] for _, x in panels), default=0) / sr
    font, black, grey = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0), (90, 90, 90)
    left, right, top, bottom = 58, 10, 30, 40

    def text(img: Any, s: str, org: tuple[int, int], scale: float = 0.42,
             colour: tuple[int, int, int] = black) -> None:
        cv2.putText(img, s, org, font, scale, colour, 1, cv2.LINE_AA)

    imgs = []
    for i, (name, x) in enumerate(panels):
        db = log_mel(x, sr=sr, ref=ref) if x.shape[0] else np.full((1, N_MELS), ref - TOP_DB)
        db = np.maximum(db, ref - TOP_DB)
        g = np.clip((db - (ref - TOP_DB)) / TOP_DB * 255, 0, 255).astype(np.uint8).T[::-1]
        width = int(min(max(g.shape[1], 240), PLOT_PANEL[0]))
        g = cv2.resize(g, (width, height), interpolation=cv2.INTER_AREA)
        spec = cv2.applyColorMap(g, cv2.COLORMAP_MAGMA)
        img = np.full((top + height + bottom, left + width + right, 3), 255, np.uint8)
        img[top:top + height, left:left + width] = spec
        cv2.rectangle(img, (left - 1, top - 1), (left + width, top + height), black, 1)
        text(img, name, (left, 20), 0.55)
        # time: about five ticks at round seconds
        step = _nice_step(seconds / 5) if seconds > 0 else 1.0
        t = 0.0
        while seconds > 0 and t <= seconds + 1e-9:
            px = left + int(round(t / seconds * (width - 1)))
            cv2.line(img, (px, top + height), (px, top + height + 4), black, 1)
            label = f"{t:g}"
            text(img, label, (px - 4 * len(label), top + height + 17))
            t += step
        text(img, "time (s)", (left + width // 2 - 28, top + height + 34), 0.42, grey)
        # frequency: mel-spaced, labelled in Hz where a round frequency falls
        top_mel = hz_to_mel(sr / 2)
        for f in (100, 250, 500, 1000, 2000, 4000, 8000, 16000):
            if f >= sr / 2:
                break
            py = top + height - 1 - int(round(hz_to_mel(f) / top_mel * (height - 1)))
            cv2.line(img, (left - 5, py), (left - 1, py), black, 1)
            label = f"{f // 1000}k" if f >= 1000 else str(f)
            text(img, label, (left - 8 - 8 * len(label), py + 4))
        if i == 0:
            text(img, "Hz", (4, top + 10), 0.42, grey)
        imgs.append(img)
    # the colour bar: the shared dB scale, 0 at the loudest band of any panel
    bar_h = height
    ramp = np.linspace(255, 0, bar_h).astype(np.uint8)[:, None].repeat(14, axis=1)
    bar = np.full((top + height + bottom, 70, 3), 255, np.uint8)
    bar[top:top + bar_h, 6:20] = cv2.applyColorMap(ramp, cv2.COLORMAP_MAGMA)
    for k in range(0, int(TOP_DB) + 1, 20):
        py = top + int(round(k / TOP_DB * (bar_h - 1)))
        text(bar, f"-{k}" if k else "0", (24, py + 4))
    text(bar, "dB", (24, top + bar_h + 17), 0.42, grey)
    canvas = cv2.hconcat([*imgs, bar])
    ok, png = cv2.imencode(".png", canvas)
    if not ok:
        raise MediaError(f"{path}: OpenCV cannot encode the plot as PNG")
    try:
        # written by Python, so a full disk is an OSError (OutputError), never a libpng
        # message on stderr
        with atomic_write(path) as (f, _):
            f.write(png.tobytes())
    except OSError as e:
        raise MediaError(f"{path}: cannot write the plot ({e.strerror or e})") from None
    return path


def _nice_step(x: float) -> float:
    """The round step (1, 2 or 5 times a power of ten) at or above ``x``."""
    if x <= 0:
        return 1.0
    p = 10.0 ** np.floor(np.log10(x))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * p >= x:
            return float(m * p)
    return float(10 * p)
