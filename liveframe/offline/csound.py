"""The csound render mode: the granular grains as a Csound score, played by the real csound.

A :class:`ScoreWriter` listens to a granular :class:`~liveframe.core.pipeline.TickPipeline`:
each tick's block goes, one after another, into a float WAV that the instrument
(``patches/liveframe-render.csd``) reads as a GEN01 table, and each grain the granular
synth plays (:attr:`Tick.placements <liveframe.core.pipeline.Tick>`) becomes one note at
``tick.position + start``. The score and :class:`~liveframe.core.synth.GranularSynth` play
the same grains by construction; the instrument gives each grain a Hann envelope (except a
grain brain's parent, already windowed).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

from liveframe.core.pipeline import Tick, TickPipeline
from liveframe.core.shipped import shipped_file
from liveframe.errors import LiveframeError, ToolMissingError
from liveframe.live.csound import csound_available, csound_executable
from liveframe.offline.sinks import fit, read_audio_file
from liveframe.util.files import sweep_stale, temp_prefix
from liveframe.util.progress import Progress
from liveframe.util.wav import WavWriter

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

CSOUND_PATCH = shipped_file("patches/liveframe-render.csd")
"""The Csound instrument that plays the score (shipped with the package)."""

__all__ = ["CSOUND_PATCH", "ScoreWriter", "csound_available", "csound_executable",
           "synthesize_csound"]


class ScoreWriter:
    """A tick listener that writes the table (every block) and the score (every grain).

    Parameters
    ----------
    table : WavWriter
        Receives each tick's block, ``length`` samples, in tick order.
    score : file
        Receives one ``i1 onset duration gain offset envelope`` line per grain.
    sr : int
    length : int
        Samples per block (a grain at table offset ``k * length + offset`` reads tick k).

    Attributes
    ----------
    ticks : int
        Ticks written.
    end : int
        Sample after the last grain's end, in the pipeline's (untrimmed) timeline.
    error : Exception or None
        The first write that failed (the pipeline only counts a listener's errors).
    """

    def __init__(self, table: WavWriter, score: IO[str], *, sr: int, length: int) -> None:
        self.table, self.score, self.sr, self.length = table, score, sr, length
        self.ticks = 0
        self.end = 0
        self.error: Exception | None = None

    def __call__(self, tick: Tick) -> None:
        if self.error is not None:
            return
        try:
            self._write(tick)
        except Exception as e:  # noqa: BLE001 -- raised by synthesize_csound after the run
            self.error = e

    def _write(self, tick: Tick) -> None:
        if tick.placements is None:
            raise ValueError("the Csound score needs a granular pipeline")
        self.table.write(tick.block)
        sr, base = self.sr, tick.index * self.length
        lines = []
        for p in tick.placements:
            if p.duration <= 0 or p.gain == 0:
                continue
            start = tick.position + p.start  # untrimmed: the latency is cut after
            self.end = max(self.end, start + p.duration)
            lines.append(f"i1 {start / sr:.9f} {p.duration / sr:.9f} {p.gain:.9g} "
                         f"{base + p.offset} {int(p.envelope)}\n")
        self.score.write("".join(lines))
        self.ticks += 1


def synthesize_csound(
    pipeline: TickPipeline,
    pictures: Iterable[U8],
    *,
    n_out: int | None = None,
    progress: Progress | None = None,
    workdir: str | os.PathLike[str] | None = None,
    patch: str | os.PathLike[str] = CSOUND_PATCH,
) -> F32:
    """Run ``pictures`` through a granular ``pipeline`` and play its grains with csound.

    Parameters
    ----------
    pipeline : TickPipeline
        In ``granular`` mode, fresh (its first tick is tick 0 of the score).
    pictures : iterable of ndarray, shape (n, channels, height, width), uint8
        Each tick's picture, in batches.
    n_out : int, optional
        Samples to return (default: to the end of the last grain).

    Returns
    -------
    ndarray, shape (n_out,), float32
        csound's output with the pipeline's latency trimmed (sample 0 is tick 0's time):
        what the granular synth plays, to csound's float arithmetic.
    """
    exe = csound_executable()
    patch = Path(patch)
    if not patch.exists():
        raise ToolMissingError(f"{patch}: the Csound render instrument is missing")
    spec, latency = pipeline.spec, pipeline.latency
    sr = spec.sample_rate
    # named for this process, so a later render sweeps it away should this one be killed
    where = Path(workdir) if workdir is not None else Path(tempfile.gettempdir())
    sweep_stale(where)
    with tempfile.TemporaryDirectory(prefix=temp_prefix("liveframe-csound"), dir=where) as tmp:
        tmpd = Path(tmp)
        table = WavWriter(tmpd / "blocks.wav", sr=sr)
        with open(tmpd / "grains.sco", "w") as sco:
            sco.write(
                f"; liveframe granular score: seed {pipeline.seed}, density "
                f"{pipeline.density}, spread {pipeline.spread}, hop {spec.hop}, "
                f"block {spec.frame.length}\n"
                "; p4 gain  p5 table offset (samples)  p6 envelope (1 hann, 0 none)\n"
            )
            writer = ScoreWriter(table, sco, sr=sr, length=spec.frame.length)
            pipeline.listeners.append(writer)
            try:
                for px in pictures:
                    pipeline.step_batch(px)
                    if progress is not None:
                        progress.update(px.shape[0])
                pipeline.flush()  # a spectrum brain's tail grains (its decoder's last hops)
            finally:
                pipeline.listeners.remove(writer)
                table.close()
            if writer.error is not None:
                raise writer.error
            total = (n_out if n_out is not None else writer.end - latency) + latency
            sco.write(f"f0 {total / sr + 0.01:.6f}\ne\n")
        if writer.ticks == 0:
            return np.zeros(n_out or 0, np.float32)
        sig = _run_csound(exe, patch, table.path, tmpd, sr=sr)[latency:]
    return fit(sig, total - latency)


def _run_csound(exe: str, patch: Path, table: Path, folder: Path, *, sr: int) -> F32:
    """csound on ``patch`` in ``folder`` (holding ``grains.sco``): its output, mono float32."""
    out_wav = folder / "out.wav"
    cmd = [exe, "-d", "-m0", "--nodisplays", "-f", "-W", f"--sample-rate={sr}",
           f"--omacro:TABLE={table}", "-o", str(out_wav), str(patch)]
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=folder)
    if r.returncode != 0 or not out_wav.exists():
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise LiveframeError(f"csound failed on {patch.name}: {' | '.join(tail)}")
    return read_audio_file(out_wav)[1]
