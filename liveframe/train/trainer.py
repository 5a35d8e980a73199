"""Training on the CPU: the configuration, the losses, the loop, early stopping and resume.

Both kinds of brain train here: a ``pcm`` brain on its dataset's audio targets (divided by
their RMS, the brain's scale), a ``spectrum`` brain on the log-magnitude STFT frames of the
soundtrack those targets rebuild (:func:`liveframe.train.data.spectrum_targets`; scale 1).

Needs torch (the ``[train]`` extra); :mod:`liveframe.train` imports this lazily.

The dataset side is :mod:`liveframe.train.data`, the checkpoint file
:mod:`liveframe.train.checkpoint`.
"""

from __future__ import annotations

import copy
import datetime as _dt
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from liveframe import constants as C
from liveframe.core.context import context_plan
from liveframe.core.spectral import LOG_MAX
from liveframe.data.dataset import load_dataset
from liveframe.errors import DatasetError, LiveframeError, ParamError
from liveframe.train import DEFAULT_ARCH, KIND_DEFAULTS, check_output_file, held_out_share
from liveframe.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from liveframe.train.data import (
    Batches,
    fingerprint,
    spec_from_dataset,
    spectrum_targets,
    split_validation,
)
from liveframe.train.model import (
    CEILING_MARGIN,
    HARMONICS,
    MAIN_LOBE_VAR,
    PARTIALS,
    TONES,
    DenseBrain,
    init_output_bias,
    resolve_layers,
    saved_net,
)
from liveframe.util.files import sweep_stale
from liveframe.util.progress import Progress

log = logging.getLogger(__name__)

LOSSES = ("mse", "l1", "logmag")
LOSSES_OF = {"pcm": ("mse", "l1"), "spectrum": ("logmag", "mse", "l1")}
"""The losses each kind of brain may train with; the first is its default."""

MEL_BANDS = 64
"""Bands of the ``logmag`` loss's mel term: those of the mel distance that judges a brain
(:func:`~liveframe.offline.metrics.mel_distance_db`)."""

MEL_RANGE = 80.0 / 20.0 * math.log(10.0)
"""The mel term's floor: this far (80 dB, in nepers) under the training set's loudest band,
as the mel distance floors its bands."""

SC_FLOOR = 1e-4
"""Spectral convergence: the denominator's floor, as an RMS magnitude per value (-80 dB
under a full-scale sine's peak bin), so a batch of near silence does not divide by ~0."""

LR_SCHEDULES = ("constant", "cosine")

LOBE_WIDEN = 4.0
"""How many times wider (in bins) a partial slot's lobes start under ``lobe_anneal``.

Coarse to fine: a slot's frequency learns only from a target peak its lobes reach (a bin
or two), so wide lobes first let it find a tone further away. Measured on the free-phase
film with ``tones`` (``--lobe-anneal 30``, ``--ema 0.999``): one seed reached validation
0.354 against 0.545 without it (held-out mel 5.12 against 6.42 dB), the other stuck at
1.40 from epoch 40 and never left it. Off by default."""

# Options a resumed run may change; every other one is read back from the checkpoint.
RESUMABLE = ("epochs", "patience")


@dataclass
class TrainConfig:
    """The training hyper-parameters; saved in the checkpoint as run.

    ``kind`` is the brain's output (``spectrum`` or ``pcm``); ``loss``, ``epochs``,
    ``batch_size``, ``lr``, ``lr_schedule`` and ``patience`` None mean the kind's default
    (:data:`LOSSES_OF`, :data:`KIND_DEFAULTS`); ``sc_weight`` and ``mel_weight`` weigh
    the spectral-convergence and mel terms of the ``logmag`` loss (:class:`Loss`);
    ``ema`` is the decay of the weight average that is judged and kept
    (:class:`WeightAverage`; 0 or None: none), ``lobe_anneal`` the epochs over which the
    partial slots' lobes narrow from :data:`LOBE_WIDEN` times their width (0: none);
    ``starts`` runs, seeded ``seed``, ``seed + 1``, ..., train ``start_epochs`` epochs each
    and the one with the best validation loss goes on (:func:`train`; 1: one run);
    ``val_fraction`` is the share of each source held out for validation (None: 10 %, raised
    to hold out the kind's ``val_seconds``, :meth:`held_out`).
    """

    kind: str = "spectrum"
    arch: str | None = None
    layers: str | tuple[int, ...] | None = None
    context: int = 0
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    val_fraction: float | None = None
    val_seconds: float | None = None
    patience: int | None = None
    seed: int = 0
    loss: str | None = None
    sc_weight: float = 0.1
    mel_weight: float = 0.0
    weight_decay: float = 0.0
    lr_schedule: str | None = None
    lr_patience: int = 0
    lr_factor: float = 0.3
    ema: float | None = None
    lobe_anneal: int = 0
    starts: int | None = None
    start_epochs: int = 40

    def held_out(self, seconds: float) -> TrainConfig:
        """This config (resolved) with ``val_fraction`` set: as given, or the kind's share
        for a dataset of ``seconds`` (:func:`~liveframe.train.held_out_share`)."""
        if self.val_fraction is not None:
            return self
        return replace(self, val_fraction=held_out_share(seconds, float(self.val_seconds or 0)))

    def validate(self) -> None:
        """Raise a :class:`ParamError` naming the first field with a bad value."""
        losses = LOSSES_OF.get(self.kind, LOSSES)
        checks = [
            ("kind", self.kind in C.KINDS, f"must be one of {', '.join(C.KINDS)}"),
            ("context", self.context >= 0, "must be 0 or more"),
            ("epochs", self.epochs is None or self.epochs >= 1, "must be 1 or more"),
            ("batch_size", self.batch_size is None or self.batch_size >= 1,
             "must be 1 or more"),
            ("lr", self.lr is None or (self.lr > 0 and math.isfinite(self.lr)),
             "must be positive"),
            ("val_fraction", self.val_fraction is None or 0 < self.val_fraction <= 0.5,
             "must be in (0, 0.5]"),
            ("val_seconds", self.val_seconds is None
             or (self.val_seconds >= 0 and math.isfinite(self.val_seconds)),
             "must be 0 or more"),
            ("patience", self.patience is None or self.patience >= 1, "must be 1 or more"),
            ("loss", self.loss is None or self.loss in losses,
             f"must be one of {', '.join(losses)} for a {self.kind} brain"),
            ("sc_weight", self.sc_weight >= 0 and math.isfinite(self.sc_weight),
             "must be 0 or more"),
            ("mel_weight", self.mel_weight >= 0 and math.isfinite(self.mel_weight),
             "must be 0 or more"),
            ("weight_decay", self.weight_decay >= 0 and math.isfinite(self.weight_decay),
             "must be 0 or more"),
            ("lr_schedule", self.lr_schedule is None or self.lr_schedule in LR_SCHEDULES,
             f"must be one of {', '.join(LR_SCHEDULES)}"),
            ("lr_patience", self.lr_patience >= 0, "must be 0 or more"),
            ("lr_factor", 0 < self.lr_factor < 1, "must be in (0, 1)"),
            ("ema", self.ema is None or 0 <= self.ema < 1, "must be in [0, 1)"),
            ("lobe_anneal", self.lobe_anneal >= 0, "must be 0 or more"),
            ("starts", self.starts is None or self.starts >= 1, "must be 1 or more"),
            ("start_epochs", self.start_epochs >= 1, "must be 1 or more"),
        ]
        for name, ok, why in checks:
            if not ok:
                raise ParamError(name, getattr(self, name), why)

    def resolved(self) -> TrainConfig:
        """This config with every None replaced by its kind's default."""
        kd = KIND_DEFAULTS[self.kind]
        return replace(self, loss=self.loss or LOSSES_OF[self.kind][0],
                       **{k: v if (v := getattr(self, k)) is not None else kd[k] for k in kd})


@dataclass
class TrainResult:
    """What a run did: its checkpoint, per-epoch history, best validation loss and epoch."""

    checkpoint: Path
    history: list[dict[str, float]] = field(default_factory=list)
    best_val: float = math.inf
    best_epoch: int = 0
    epoch: int = 0
    stopped: bool = False


def effective_patience(config: TrainConfig, train_ticks: int) -> int:
    """Epochs without a better validation loss that end a run (``config`` resolved).

    ``config.patience``, or with a weight average (``ema``) at least its time scale,
    ``1 / (1 - ema)`` steps, in epochs: the average's validation moves that slowly, and a
    shorter patience ends a run before the average can show what its last steps learned.
    The free-phase film's 4854 training ticks are 76 steps an epoch (0.999: 14 epochs); a
    real clip's 11 s are 5 (200 epochs: it trains to its last epoch).
    """
    patience = int(config.patience or 1)
    if config.ema:
        steps = max(-(-train_ticks // int(config.batch_size or 1)), 1)
        patience = max(patience, math.ceil(1.0 / (1.0 - float(config.ema)) / steps))
    return patience


def start_paths(out: str | os.PathLike[str], starts: int) -> list[Path]:
    """Where the starts of a run at ``out`` keep their checkpoints: ``brain.start1.pt``,
    ``brain.start2.pt``, ... beside ``brain.pt``."""
    p = Path(out)
    return [p.with_name(f"{p.stem}.start{k + 1}{p.suffix}") for k in range(starts)]


def _train_starts(dataset: str | os.PathLike[str], out: Path, config: TrainConfig, *,
                  resume: bool, explicit: tuple[str, ...], threads: int | None, quiet: bool,
                  on_epoch: Callable[[dict[str, float]], None] | None) -> TrainResult:
    """The starts of :func:`train` (``out`` not yet written)."""
    check_output_file(out, example="brain.pt")
    first = start_paths(out, 1)[0]
    if resume:
        if not first.exists():
            raise ParamError("out", out, "holds no checkpoint to resume")
        config = _resumed_config(config, load_checkpoint(first), explicit=explicit,
                                 where=first)
    config.validate()
    config = config.resolved()
    paths = start_paths(out, int(config.starts or 1))
    there = [p for p in paths if p.exists()]
    if there and not resume:
        raise ParamError("out", out, f"has unfinished starts ({there[0].name}); resume them, "
                         "or remove them")
    results = []
    for k, p in enumerate(paths):
        seed = config.seed + k
        # each start is the first epochs of the full run with its seed: the one kept
        # goes on as if it had never stopped (announced once its inputs are checked, so
        # a refused run says only why)
        results.append(train(dataset, p, replace(config, seed=seed), resume=p.exists(),
                             explicit=explicit if p.exists() else (), threads=threads,
                             quiet=quiet, on_epoch=on_epoch, until=config.start_epochs,
                             announce=f"start {k + 1}/{len(paths)} (seed {seed}): "
                                      f"{config.start_epochs} epochs"))
    best = min(range(len(results)), key=lambda k: results[k].best_val)
    tried = [{"seed": config.seed + k, "val_loss": r.best_val, "epochs": r.epoch}
             for k, r in enumerate(results)]
    ck = load_checkpoint(paths[best])
    ck["spec"]["provenance"] = dict(ck["spec"]["provenance"], starts=tried)
    save_checkpoint(ck, out)
    for p in paths:
        p.unlink(missing_ok=True)
    log.info("kept start %d/%d (seed %d, validation %.4g; the others %s)", best + 1,
             len(paths), config.seed + best, results[best].best_val,
             ", ".join(f"{r.best_val:.4g}" for k, r in enumerate(results) if k != best))
    return train(dataset, out, TrainConfig(epochs=config.epochs, patience=config.patience),
                 resume=True, explicit=("epochs", "patience"), threads=threads, quiet=quiet,
                 on_epoch=on_epoch)


def check_output(out: Path, *, resume: bool) -> None:
    """A checkpoint path that can be written, and holds a checkpoint exactly when resuming."""
    check_output_file(out, example="brain.pt")
    if resume and not out.exists():
        raise ParamError("out", out, "holds no checkpoint to resume")
    if not resume and out.exists():
        raise ParamError("out", out, "exists; resume it, or remove it")


def _rms(targets: npt.NDArray[np.float32], idx: npt.NDArray[np.int64]) -> float:
    """RMS of ``targets[idx]`` in float64, a few thousand rows at a time (bounded memory)."""
    total = 0.0
    for i in range(0, len(idx), 4096):
        block = targets[idx[i:i + 4096]].astype(np.float64)
        total += float(np.einsum("ij,ij->", block, block))
    return math.sqrt(total / max(len(idx) * targets.shape[1], 1))


def _mean_row(targets: npt.NDArray[np.float32], idx: npt.NDArray[np.int64]) -> torch.Tensor:
    """Mean of ``targets[idx]`` per column in float64, a few thousand rows at a time."""
    total = np.zeros(targets.shape[1])
    for i in range(0, len(idx), 4096):
        total += targets[idx[i:i + 4096]].sum(axis=0, dtype=np.float64)
    return torch.from_numpy((total / max(len(idx), 1)).astype(np.float32))


def _max_of(targets: npt.NDArray[np.float32], idx: npt.NDArray[np.int64]) -> float:
    """Largest value of ``targets[idx]``, a few thousand rows at a time."""
    return max((float(targets[idx[i:i + 4096]].max()) for i in range(0, len(idx), 4096)),
               default=0.0)


class MelBands:
    """The mel term of the ``logmag`` loss: log-magnitudes summed into mel bands per frame.

    ``0.5 log(mel(exp(2 y)) + floor)``: each spectral frame's power in :data:`MEL_BANDS`
    mel bands (the filters of the mel distance), as a log-magnitude, with ``floor``
    :data:`MEL_RANGE` under the training set's loudest band (the loss's floor, fixed once:
    the error of a row does not depend on its batch).
    """

    def __init__(self, *, sample_rate: int, n_fft: int, frames: int, loudest: float) -> None:
        from liveframe.offline.metrics import mel_filterbank

        fb = mel_filterbank(sr=sample_rate, n_fft=n_fft, n_mels=MEL_BANDS)
        self.fb = torch.from_numpy(fb.T.astype(np.float32))  # [bins, bands]
        self.frames = frames
        self.floor = math.exp(2.0 * (loudest - MEL_RANGE))

    @classmethod
    def of(cls, targets: npt.NDArray[np.float32], idx: npt.NDArray[np.int64], *,
           sample_rate: int, n_fft: int, frames: int) -> MelBands:
        """The bands of a spectrum brain whose training rows are ``targets[idx]``."""
        probe = cls(sample_rate=sample_rate, n_fft=n_fft, frames=frames, loudest=0.0)
        loudest = max((float(probe.bands(torch.from_numpy(targets[idx[i:i + 4096]]),
                                         floor=0.0).max())
                       for i in range(0, len(idx), 4096)), default=0.0)
        return cls(sample_rate=sample_rate, n_fft=n_fft, frames=frames, loudest=loudest)

    def bands(self, z: torch.Tensor, *, floor: float | None = None) -> torch.Tensor:
        """``[N, frames * bins]`` log-magnitudes -> ``[N, frames * bands]``."""
        power = torch.exp(2.0 * torch.clamp(z, max=LOG_MAX)).reshape(z.shape[0], self.frames, -1)
        mel = torch.matmul(power, self.fb).flatten(1)
        return 0.5 * torch.log(mel + (self.floor if floor is None else max(floor, 1e-30)))


class Loss:
    """A training loss: ``mse``, ``l1``, or ``logmag`` (spectrum brains).

    ``logmag`` is the mean squared error of the log-magnitudes, plus ``sc_weight`` times
    the spectral convergence ``||exp(y) - exp(yhat)||_F / ||exp(y)||_F`` of the batch
    (Arik et al. 2019): the error measured on magnitudes, where loud bins count most, as
    the ear hears them; plus ``mel_weight`` times the mean squared error of the same
    log-magnitudes summed into mel bands (:class:`MelBands`). ``yhat`` is clipped at
    :data:`~liveframe.core.spectral.LOG_MAX` before the exp (as the decoder clips it), and
    the spectral convergence's denominator is floored at :data:`SC_FLOOR` per value.

    Why a mel term: a net unsure where a narrow peak lies plays, under a per-bin
    log-magnitude error, the geometric mean of the places it could be: almost nothing. On
    the free-phase film the default brain played a tone's fundamental at about its level
    but its harmonics 2 to 4 10 to 30 dB too quiet; the mel bands where the truth was loud (within
    30 dB of the loudest) were 9 to 10 dB too quiet on average and made 57 % of the squared
    mel error. A band's error does not care where in the band the energy lies. Measured
    (``--mel-weight 1``, same data and seed): held-out mel 7.81 and 9.54 dB on the two
    free-phase films against 7.80 and 9.37 without, level -2.0 and -1.3 dB against -3.0 and
    -2.7: the loud bands came up (-6.4 dB on average) and the quiet ones too (+5), no
    closer overall. So it is an option, off by default.

    Regressing log-magnitudes plays the geometric mean of what the net cannot tell apart,
    under their power mean: a free-phase film's brain plays about 3 dB quiet. Moving the
    best net's output to the energy of its validation stretches (a level calibration) was
    measured and dropped: on the free-phase film level -3.0 and -2.7 dB became +0.3 and
    +0.7, mel 7.80 and 9.37 dB became 7.67 and 9.71; on the real launch clip, where the
    net is unsure of everything, held-out mel went from 7.89 to 11.69 dB and the black
    level from -52.9 to -46.8 dBFS (the gain at its 6 dB cap): louder is not closer. (These
    figures were measured through the block-mean DC ramp that
    :class:`liveframe.core.safety.DcBlocker` replaced; the comparisons are side by side.)

    Tried and dropped: a spectral transport term, each frame's 1-D Wasserstein distance
    between the power spectra in bins (the L1 distance of their cumulative sums, as for the
    harmonic oscillators of Torres, Peeters and Richard 2024), which gives a partial slot's
    frequency a gradient from a tone its lobe does not overlap (on one slot 100 bins under a
    tone, 200 Adam steps brought it within 0.1 bin where the per-bin error left it where it
    was). On the free-phase film with ``tones`` and ``--ema 0.999``, weight 0.02: at
    epoch 55 the validation loss (this loss, without the term) was 0.696 with it against
    0.710 without on seed 0, and 0.617 against 0.490 on seed 1: which run finds the tones
    still depends on the seed, and the term does not change it. Both runs were stopped
    there.
    """

    def __init__(self, name: str, sc_weight: float = 0.0, *, mel_weight: float = 0.0,
                 mel: MelBands | None = None) -> None:
        self.name = name
        self.sc_weight = sc_weight if name == "logmag" else 0.0
        self.mel_weight = mel_weight if name == "logmag" and mel is not None else 0.0
        self.mel = mel

    def __call__(self, yhat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The batch's loss, a scalar tensor."""
        if self.name == "l1":
            return torch.nn.functional.l1_loss(yhat, y)
        loss = torch.nn.functional.mse_loss(yhat, y)
        if self.sc_weight:
            num, den = self._sc_parts(yhat, y)
            den = torch.clamp(den, min=SC_FLOOR**2 * y.numel())
            loss = loss + self.sc_weight * torch.sqrt(num / den)
        if self.mel_weight:
            assert self.mel is not None
            loss = loss + self.mel_weight * torch.nn.functional.mse_loss(
                self.mel.bands(yhat), self.mel.bands(y))
        return loss

    @staticmethod
    def _sc_parts(yhat: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``||exp(y) - exp(yhat)||^2`` and ``||exp(y)||^2`` (``yhat`` clipped first)."""
        mag = torch.exp(y)
        num = torch.sum(torch.square(mag - torch.exp(torch.clamp(yhat, max=LOG_MAX))))
        return num, torch.sum(torch.square(mag))

    def sums(self, yhat: torch.Tensor, y: torch.Tensor) -> npt.NDArray[np.float64]:
        """Additive parts of the loss over many rows: (error sum / row length, SC num, den,
        mel error sum / bands per row)."""
        fn = (torch.nn.functional.l1_loss if self.name == "l1"
              else torch.nn.functional.mse_loss)
        out = np.zeros(4)
        out[0] = float(fn(yhat, y, reduction="sum")) / y.shape[1]
        if self.sc_weight:
            num, den = self._sc_parts(yhat, y)
            out[1], out[2] = float(num), float(den)
        if self.mel_weight:
            assert self.mel is not None
            a, b = self.mel.bands(yhat), self.mel.bands(y)
            out[3] = float(torch.nn.functional.mse_loss(a, b, reduction="sum")) / b.shape[1]
        return out

    def total(self, sums: npt.NDArray[np.float64], rows: int, length: int) -> float:
        """The loss of all the rows whose :meth:`sums` add up to ``sums``."""
        loss = float(sums[0]) / max(rows, 1)
        if self.sc_weight:
            den = max(float(sums[2]), SC_FLOOR**2 * rows * length)
            loss += self.sc_weight * math.sqrt(float(sums[1]) / den)
        if self.mel_weight:
            loss += self.mel_weight * float(sums[3]) / max(rows, 1)
        return loss


def _evaluate(model: DenseBrain, data: Batches, idx: torch.Tensor, fn: Loss,
              batch: int = 1024) -> float:
    model.eval()
    sums = np.zeros(4)
    length = 0
    with torch.inference_mode():
        for i in range(0, idx.shape[0], batch):
            x, y = data.get(idx[i:i + batch])
            sums += fn.sums(model(x), y)
            length = int(y.shape[1])
    model.train()
    return fn.total(sums, int(idx.shape[0]), length)


def _clone_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class WeightAverage:
    """An exponential moving average of a net's weights, updated after every step.

    Polyak-Ruppert averaging in its exponential form (what TensorFlow's
    ``ExponentialMovingAverage`` does with ``num_updates``): after step t the average moves
    towards the weights by ``1 - min(decay, (1 + t) / (10 + t))``, so the first steps are
    not drowned in the initial weights. Validation, early stopping and the exported brain
    all read the average: the net Adam's last few hundred steps wander around. Its
    validation curve is smooth, so one noisy epoch no longer ends a run; on the free-phase
    film it helped ``tones`` a little (held-out mel 6.42 against 6.66 dB, the same seed),
    not reliably under 5 dB (``liveframe/train/__init__.py``), so it is an option
    (``--ema``), off by default.
    """

    def __init__(self, model: torch.nn.Module, decay: float, *, steps: int = 0,
                 state: dict[str, torch.Tensor] | None = None) -> None:
        self.decay = decay
        self.steps = steps
        self.model = copy.deepcopy(model).requires_grad_(False)
        if state is not None:
            self.model.load_state_dict(state)
        self._src = list(model.parameters())
        self._dst = list(self.model.parameters())

    def update(self) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        with torch.no_grad():
            torch._foreach_lerp_(self._dst, self._src, 1.0 - d)


def train(
    dataset: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: TrainConfig,
    *,
    resume: bool = False,
    explicit: tuple[str, ...] = (),
    threads: int | None = None,
    quiet: bool = False,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    until: int | None = None,
    announce: str = "",
) -> TrainResult:
    """Train a brain and keep its checkpoint at ``out``.

    With ``config.starts`` K over 1, K runs seeded ``seed`` to ``seed + K - 1`` first train
    ``config.start_epochs`` epochs each, side by side on disk (``OUT.start1.pt``, ...; see
    :func:`start_paths`); the one with the best validation loss becomes ``out`` and trains
    on to ``config.epochs``, the others are removed. Which run finds the tones is a matter
    of its seed (``tones`` on the free-phase film: held-out mel 4.6 to 6.4 dB over four
    seeds, in the order of their validation losses), and a few dozen epochs show it.

    Parameters
    ----------
    dataset : path
        A ``.npz`` made by ``liveframe pickle``.
    out : path
        The checkpoint, rewritten atomically after every epoch.
    config : TrainConfig
    resume : bool
        Continue the checkpoint at ``out``: its config (``kind`` included), spec, split,
        weights, optimizer and rng come back; only ``epochs`` and ``patience`` may change.
    explicit : tuple of str
        Config fields the user set on the command line (a resume refuses ones that
        disagree with the checkpoint).
    threads : int, optional
        torch intra-op threads (default: the cores this process may use).
    quiet : bool
        No progress bar and no per-epoch log lines.
    on_epoch : callable, optional
        Called with each epoch's history entry once its checkpoint is written (outside
        the epoch's timed ``seconds``).
    until : int, optional
        Stop after this epoch (the checkpoint resumes from there): how the starts train
        their first epochs of the same full run.
    announce : str
        A line logged (unless ``quiet``) once the inputs are checked, before the first
        epoch: which start this is.
    """
    out_p = Path(out)
    ds_p = Path(dataset)
    if until is None and not out_p.exists() and (
            (config.starts or KIND_DEFAULTS.get(config.kind, {}).get("starts", 1)) > 1
            or (resume and start_paths(out_p, 1)[0].exists())):
        return _train_starts(dataset, out_p, config, resume=resume, explicit=explicit,
                             threads=threads, quiet=quiet, on_epoch=on_epoch)
    check_output(out_p, resume=resume)
    n_threads = threads or len(os.sched_getaffinity(0))
    if n_threads < 1:
        raise ParamError("threads", threads, "must be 1 or more")
    torch.set_num_threads(n_threads)

    ck: dict[str, Any] | None = None
    if resume:
        ck = load_checkpoint(out_p)
        # a run killed while writing leaves its temporary (named for its process id):
        # removed once that process is gone
        sweep_stale(out_p.parent)
        config = _resumed_config(config, ck, explicit=explicit, where=out_p)
    config.validate()
    config = config.resolved()

    ds = load_dataset(ds_p)
    bad_targets = ds.targets.size - int(np.count_nonzero(np.isfinite(ds.targets)))
    if bad_targets:
        raise DatasetError(f"{ds_p}: {bad_targets} target values are NaN or infinite; make "
                           "the dataset again with `liveframe pickle` from a clean soundtrack")
    spec = spec_from_dataset(ds, context=config.context, where=str(ds_p), kind=config.kind)
    fp = fingerprint(ds)
    if ck is not None and ck["spec"]["provenance"].get("dataset_fingerprint") != fp:
        raise CheckpointError(
            f"{out_p}: was trained on other data than {ds_p} (fingerprints differ); "
            "resume with the same dataset"
        )
    in_size = spec.in_channels * spec.height * spec.width
    arch, sizes = resolve_layers(config.arch, config.layers, in_size=in_size,
                                 out_size=spec.length, default=DEFAULT_ARCH[spec.kind])

    segments = ds.segments
    guard = config.context + 1
    config = config.held_out(len(ds) / float(spec.fps))
    train_idx_np, val_idx_np, stretches = split_validation(
        segments, config.val_fraction, guard=guard)
    if len(val_idx_np) == 0 or len(train_idx_np) == 0:
        raise DatasetError(
            f"{ds_p}: {len(ds)} ticks are too few to hold out val_fraction="
            f"{config.val_fraction:g} in contiguous stretches; give more data"
        )

    if spec.spectral:
        ds.targets = spectrum_targets(ds, spec)  # the pcm targets are dropped here
        scale = 1.0
    elif ck is not None:
        scale = float(ck["spec"]["output"]["scale"])
    else:
        rms = _rms(ds.targets, train_idx_np)
        scale = rms if math.isfinite(rms) and rms > 1e-12 else 1.0
    if scale != 1.0:
        ds.targets *= np.float32(1.0 / scale)  # in place: the dataset is ours, and can be big
    plan = context_plan(ds.frames, segments, config.context) if config.context else None
    data = Batches(ds.frames, ds.targets, plan)
    train_idx = torch.from_numpy(train_idx_np)
    val_idx = torch.from_numpy(val_idx_np)

    torch.manual_seed(config.seed)
    ceiling = None
    if spec.spectral:
        ceiling = _max_of(ds.targets, train_idx_np) + CEILING_MARGIN
    # a spectrum brain with context sees motion planes (DenseBrain.motion); a resumed run
    # keeps what its checkpoint had
    # the preset asked for (or the kind's default) builds the net, also with its layers
    # given (--arch sources --layers I,512,L); a resumed run builds what its weights are
    preset = config.arch or (DEFAULT_ARCH[spec.kind] if config.layers is None else None)
    net = saved_net(ck["model"]) if ck is not None else {
        "conv": preset == "conv", "sources": preset in ("sources", "partials", "tones"),
        "motion": spec.spectral and config.context > 0,
        "partials": {"partials": PARTIALS, "tones": TONES}.get(preset or "", 0),
        "harmonics": HARMONICS if preset == "tones" else 1}
    model = DenseBrain(sizes, ceiling=ceiling,
                       motion_channels=spec.channels if net["motion"] else 0,
                       conv_shape=spec.input_shape, conv=net["conv"], sources=net["sources"],
                       partials=net["partials"], frames=spec.frames,
                       harmonics=net["harmonics"])
    if spec.spectral:
        init_output_bias(model, _mean_row(ds.targets, train_idx_np))
    # AdamW: decoupled weight decay (Loshchilov & Hutter); with weight_decay 0 it is Adam
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                            fused=True)
    lr_bad = 0  # epochs since the best one, or since the last drop of the learning rate
    lr_scale = 1.0  # product of the plateau drops so far
    mel = None
    if spec.spectral and config.loss == "logmag" and config.mel_weight:
        mel = MelBands.of(ds.targets, train_idx_np, sample_rate=spec.sample_rate,
                          n_fft=spec.n_fft, frames=spec.frames)
    fn = Loss(config.loss, config.sc_weight, mel_weight=config.mel_weight, mel=mel)

    provenance: dict[str, Any] = {
        "data": str(ds_p.resolve()),
        "dataset_fingerprint": fp,
        "dataset_ticks": len(ds),
        "sources": [s.get("path", s.get("kind", "?")) for s in ds.meta.get("sources", [])],
        "train_ticks": int(len(train_idx_np)),
        "val_ticks": int(len(val_idx_np)),
        "loss": config.loss,
    }
    if not spec.spectral:
        provenance["target_rms"] = scale
    spec = replace(spec, scale=scale, arch=arch, layers=sizes, provenance=provenance)

    history: list[dict[str, float]] = []
    best_val, best_epoch, bad, start = math.inf, 0, 0, 0
    best_state = _clone_state(model)
    if ck is not None:
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(f"{out_p}: weights do not fit its config ({e!s:.120})") from None
        best_state = ck["best_model"]
        history = list(ck["history"])
        best_val, best_epoch = float(ck["best_val"]), int(ck["best_epoch"])
        bad, start = int(ck["bad_epochs"]), int(ck["epoch"])
        lr_bad = int(ck.get("lr_bad_epochs", 0))
        lr_scale = float(ck.get("lr_scale", 1.0))
        provenance = dict(ck["spec"]["provenance"])
        spec = replace(spec, provenance=provenance)
        torch.set_rng_state(ck["rng"]["torch"])
        log.info("resuming %s at epoch %d/%d (best val %.4g at epoch %d)",
                 out_p, start, config.epochs, best_val, best_epoch)

    avg = None
    if config.ema:
        # a checkpoint from before the average (or one saved without it) starts it afresh
        saved_avg = ck.get("ema_model") if ck is not None else None
        avg = WeightAverage(model, float(config.ema), state=saved_avg,
                            steps=int(ck.get("ema_steps", 0)) if saved_avg else 0)
    judged = avg.model if avg is not None else model

    patience = effective_patience(config, len(train_idx_np))
    result = TrainResult(out_p, history, best_val, best_epoch, start)
    if bad >= patience:
        log.info("%s stopped early at epoch %d (patience %d); nothing to do",
                 out_p, start, patience)
        result.stopped = True
        return result
    if not quiet:
        if announce:
            log.info("%s", announce)
        log.info("training a %s brain, %s %s, loss %s, on %d ticks (%d held out in %d "
                 "stretches), scale %.4g, %d threads", spec.kind, arch,
                 "-".join(map(str, sizes)), config.loss, len(train_idx_np), len(val_idx_np),
                 len(stretches), scale, n_threads)

    bs = int(config.batch_size)  # resolved: the kind's default where none was given
    n_train = int(train_idx.shape[0])
    stopped = False
    for epoch in range(start, config.epochs if until is None else min(until, config.epochs)):
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        # the epoch's rate: the schedule's (cosine annealing to zero at the last epoch,
        # Loshchilov & Hutter, SGDR) times the plateau drops so far
        lr = config.lr * lr_scale
        if config.lr_schedule == "cosine":
            lr = lr * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
        for group in opt.param_groups:
            group["lr"] = lr
        perm = train_idx[torch.randperm(n_train, generator=g)]
        bar = Progress(n_train, f"epoch {epoch + 1}/{config.epochs}", enabled=not quiet)
        annealing = bool(model.partials) and epoch < config.lobe_anneal
        if annealing:
            # coarse to fine: a slot's frequency learns only from a peak its lobes reach,
            # so its lobes start LOBE_WIDEN times as wide and narrow to the window's own
            # over the first lobe_anneal epochs; validation always hears the narrow ones,
            # which may sound worse meanwhile: those epochs do not count towards patience
            wide = 1.0 + (LOBE_WIDEN - 1.0) * max(0.0, 1.0 - epoch / config.lobe_anneal)
            model.lobe_var = MAIN_LOBE_VAR * wide * wide
        train_loss = _train_epoch(model, opt, fn, data, perm, batch_size=bs, bar=bar,
                                  avg=avg)
        if annealing:
            model.lobe_var = MAIN_LOBE_VAR
        if not math.isfinite(train_loss):
            bar.close()
            raise LiveframeError(
                f"training diverged at epoch {epoch + 1} (loss {train_loss}); lower the "
                f"learning rate (now lr={config.lr:g})"
            )
        val_loss = _evaluate(judged, data, val_idx, fn)
        secs = time.perf_counter() - t0
        improved = val_loss < best_val
        if improved:
            best_val, best_epoch, bad, lr_bad = val_loss, epoch + 1, 0, 0
            best_state = _clone_state(judged)
        elif not annealing:
            bad += 1
            lr_bad += 1
            if config.lr_patience and lr_bad >= config.lr_patience:
                # step decay on a plateau, from the next epoch: a smaller step settles into
                # the minimum the larger one keeps jumping over (what ReduceLROnPlateau does)
                lr_scale *= config.lr_factor
                lr_bad = 0
        stopped = bad >= patience
        bar.set_postfix(f"train {train_loss:.4g} val {val_loss:.4g}"
                        + (" best" if improved else f" (best {best_val:.4g})"))
        bar.close()
        history.append({"epoch": epoch + 1, "train": train_loss, "val": val_loss,
                        "seconds": secs, "lr": lr})
        provenance.update(val_loss=best_val, best_epoch=best_epoch, epochs=epoch + 1,
                          date=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        spec = replace(spec, provenance=dict(provenance))
        state = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "config": asdict(config) | {"layers": list(sizes), "arch": arch},
            "spec": spec.to_dict(),
            "split": {"val": [list(s) for s in stretches], "guard": guard},
            "epoch": epoch + 1,
            "history": history,
            "best_val": best_val,
            "best_epoch": best_epoch,
            "bad_epochs": bad,
            "lr_bad_epochs": lr_bad,
            "lr_scale": lr_scale,
            "stopped": stopped,
            "model": model.state_dict(),
            "best_model": best_state,
            "optimizer": opt.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
        }
        if avg is not None:
            state["ema_model"] = avg.model.state_dict()
            state["ema_steps"] = avg.steps
        save_checkpoint(state, out_p)
        if not quiet:
            log.info("epoch %d/%d: train %.4g val %.4g%s, %.1f s", epoch + 1, config.epochs,
                     train_loss, val_loss, " (best)" if improved else "", secs)
        result.epoch = epoch + 1
        if on_epoch is not None:
            on_epoch(history[-1])
        if stopped:
            log.info("early stop: validation loss has not improved for %d epochs "
                     "(best %.4g at epoch %d)", patience, best_val, best_epoch)
            break
    result.history, result.best_val, result.best_epoch = history, best_val, best_epoch
    result.stopped = stopped
    return result


def _resumed_config(config: TrainConfig, ck: dict[str, Any], *, explicit: tuple[str, ...],
                    where: Path) -> TrainConfig:
    """The checkpoint's config, with the :data:`RESUMABLE` fields the user set.

    Any other field the user set must agree with the checkpoint (:class:`ParamError`).
    """
    saved = dict(ck["config"])
    # a checkpoint from before the spectrum kind says its kind in the spec alone
    saved.setdefault("kind", ck["spec"]["output"]["kind"])
    saved.setdefault("mel_weight", 0.0)  # one from before the mel term trained without it
    saved.setdefault("starts", 1)  # nor several starts
    saved.setdefault("lobe_anneal", 0)
    saved.setdefault("ema", 0.0)  # and one from before the weight average without that
    for name in explicit:
        if name in RESUMABLE:
            continue
        mine = getattr(config, name)
        if name == "layers" and mine is not None:
            mine = ck["spec"]["layers"] if _same_layers(mine, ck["spec"]["layers"]) else mine
        if name == "seed" and 0 <= saved.get("seed", 0) - mine < int(saved["starts"] or 1):
            continue  # the seed of a run with starts is its first start's
        if mine != saved.get(name):
            raise ParamError(name, mine, f"disagrees with the checkpoint {where} "
                             f"({saved.get(name)}); drop it to resume, or train anew")
    for name in RESUMABLE:
        if name in explicit:
            saved[name] = getattr(config, name)
    return TrainConfig(**{k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__})


def _train_epoch(model: DenseBrain, opt: torch.optim.Optimizer, fn: Loss, data: Batches,
                 perm: torch.Tensor, *, batch_size: int, bar: Progress,
                 avg: WeightAverage | None = None) -> float:
    """One pass over the ticks ``perm`` in batches; the mean training loss.

    ``avg``, when given, follows every step.
    """
    n = int(perm.shape[0])
    total = 0.0
    for i in range(0, n, batch_size):
        x, y = data.get(perm[i:i + batch_size])
        loss = fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if avg is not None:
            avg.update()
        lv = loss.item()
        total += lv * y.shape[0]
        bar.update(int(y.shape[0]))
        bar.set_postfix(f"loss {lv:.4g}")
    return total / n


def _same_layers(given: str | tuple[int, ...], saved: list[int]) -> bool:
    if isinstance(given, str):
        toks = [t.strip().upper() for t in given.split(",")]
        if len(toks) != len(saved):
            return False
        return all(t in ("L", "I") or (t.isdigit() and int(t) == s)
                   for t, s in zip(toks, saved, strict=True))
    return list(given) == list(saved)
