"""Training on the CPU: data, validation split, the loop, checkpoints and resume.

Needs torch (the ``[train]`` extra); :mod:`liveframe.train` imports this lazily.

The checkpoint is one ``torch.save`` file, rewritten atomically after every epoch::

    {"format": "liveframe-checkpoint", "version": 1,
     "config":  training hyper-parameters as run (arch, layers, context, epochs, ...),
     "spec":    the brain's spec (BrainSpec.to_dict(): geometry, framing, rates, scale,
                arch, layers, provenance incl. the dataset's path and fingerprint),
     "split":   {"val": [[start, stop], ...], "guard": ticks},
     "epoch":   epochs completed, "history": [{"epoch", "train", "val", "seconds"}, ...],
     "best_val", "best_epoch", "bad_epochs", "stopped",
     "model", "best_model", "optimizer": state dicts, "rng": {"torch": ByteTensor}}

``liveframe export`` reads ``spec`` and ``best_model`` back: nothing is declared twice.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
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

from liveframe.core.spec import BrainSpec
from liveframe.data.dataset import Dataset, load_dataset
from liveframe.errors import DatasetError, LiveframeError, UsageError
from liveframe.util.files import atomic_write
from liveframe.util.progress import Progress

from .model import DenseBrain, resolve_layers

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "liveframe-checkpoint"
CHECKPOINT_VERSION = 1

LOSSES = ("mse", "l1")
LR_SCHEDULES = ("constant", "cosine")

# Options a resumed run may change; every other one is read back from the checkpoint.
RESUMABLE = ("epochs", "patience")


class CheckpointError(LiveframeError):
    """A checkpoint that is missing, unreadable or does not fit the run."""


@dataclass
class TrainConfig:
    """The training hyper-parameters; saved in the checkpoint as run."""

    arch: str | None = None
    layers: str | tuple[int, ...] | None = None
    context: int = 0
    epochs: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    val_fraction: float = 0.1
    patience: int = 5
    seed: int = 0
    loss: str = "mse"
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    lr_patience: int = 0
    lr_factor: float = 0.3

    def validate(self) -> None:
        checks = [
            (self.context >= 0, f"--context {self.context} must be 0 or more"),
            (self.epochs >= 1, f"--epochs {self.epochs} must be 1 or more"),
            (self.batch_size >= 1, f"--batch-size {self.batch_size} must be 1 or more"),
            (self.lr > 0 and math.isfinite(self.lr), f"--lr {self.lr} must be positive"),
            (0 < self.val_fraction <= 0.5,
             f"--val-fraction {self.val_fraction} must be in (0, 0.5]"),
            (self.patience >= 1, f"--patience {self.patience} must be 1 or more"),
            (self.loss in LOSSES, f"--loss {self.loss!r} must be one of {', '.join(LOSSES)}"),
            (self.weight_decay >= 0 and math.isfinite(self.weight_decay),
             f"--weight-decay {self.weight_decay} must be 0 or more"),
            (self.lr_schedule in LR_SCHEDULES,
             f"--lr-schedule {self.lr_schedule!r} must be one of {', '.join(LR_SCHEDULES)}"),
            (self.lr_patience >= 0, f"--lr-patience {self.lr_patience} must be 0 or more"),
            (0 < self.lr_factor < 1, f"--lr-factor {self.lr_factor} must be in (0, 1)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UsageError(msg)


@dataclass
class TrainResult:
    checkpoint: Path
    history: list[dict[str, float]] = field(default_factory=list)
    best_val: float = math.inf
    best_epoch: int = 0
    epoch: int = 0
    stopped: bool = False


# --------------------------------------------------------------------------- data


def spec_from_dataset(ds: Dataset, *, context: int, where: str) -> BrainSpec:
    """The brain geometry and clock a dataset implies (scale, arch and layers come later)."""
    m = ds.meta
    try:
        spec = BrainSpec(
            width=int(m["width"]), height=int(m["height"]), channels=int(m["channels"]),
            context=int(context), framing=str(m["framing"]),
            sample_rate=int(m["sample_rate"]), fps=float(m["fps"]),
        )
        spec = BrainSpec.from_dict(spec.to_dict(), where=where)  # validates every field
    except KeyError as e:
        raise DatasetError(f"{where}: dataset meta lacks {e.args[0]!r}") from None
    except ValueError as e:
        raise DatasetError(f"{where}: bad dataset meta ({e})") from None
    want = (spec.channels, spec.height, spec.width)
    if tuple(ds.frames.shape[1:]) != want:
        raise DatasetError(f"{where}: frames are {tuple(ds.frames.shape[1:])}, meta says {want}")
    if ds.targets.ndim != 2 or ds.targets.shape[1] != spec.length:
        raise DatasetError(
            f"{where}: targets are {ds.targets.shape[1:]} samples, {spec.framing} framing at "
            f"{spec.sample_rate} Hz / {spec.fps:g} fps needs {spec.length}"
        )
    return spec


def split_validation(
    segments: list[tuple[int, int]],
    fraction: float,
    *,
    guard: int,
    max_stretches: int = 3,
    min_stretch: int = 30,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[tuple[int, int]]]:
    """Hold out contiguous stretches of time from every source.

    Each source of ``n`` ticks gives ``round(n * fraction)`` validation ticks in up to
    ``max_stretches`` contiguous stretches (each at least ``min_stretch`` ticks when it can
    be), centred in equal parts of the source so they sample its beginning, middle and end.
    ``guard`` ticks on each side of a stretch are used for neither set: a grain target
    overlaps its neighbours' audio by one tick and a context window reaches ``context``
    ticks back, so no training sample shares audio or input frames with a held-out one.
    The split does not depend on the seed.

    Returns
    -------
    train : int64 [n_train], val : int64 [n_val]
        Tick indices, ascending.
    stretches : list of (start, stop)
    """
    total = segments[-1][1] if segments else 0
    val = np.zeros(total, bool)
    excluded = np.zeros(total, bool)
    stretches: list[tuple[int, int]] = []
    for s, e in segments:
        n = e - s
        v = int(round(n * fraction))
        if v < 1 or n - v < 1:
            continue
        k = max(1, min(max_stretches, v // min_stretch))
        lens = [v // k + (1 if j < v % k else 0) for j in range(k)]
        part = n / k
        for j, ln in enumerate(lens):
            a = s + int(round((j + 0.5) * part - ln / 2))
            a = min(max(a, s), e - ln)
            b = a + ln
            val[a:b] = True
            excluded[max(s, a - guard):a] = True
            excluded[b:min(e, b + guard)] = True
            stretches.append((a, b))
    train = ~val & ~excluded
    return (np.flatnonzero(train).astype(np.int64), np.flatnonzero(val).astype(np.int64),
            stretches)


def context_index(segments: list[tuple[int, int]], context: int) -> npt.NDArray[np.int64]:
    """``[T, context + 1]`` tick indices of each sample's frames, oldest first, current last.

    Context frames are the previous ticks of the same source, clamped at its first tick.
    """
    total = segments[-1][1] if segments else 0
    idx = np.empty((total, context + 1), np.int64)
    back = np.arange(-context, 1, dtype=np.int64)
    for s, e in segments:
        t = np.arange(s, e, dtype=np.int64)[:, None] + back[None, :]
        idx[s:e] = np.maximum(t, s)
    return idx


def fingerprint(ds: Dataset) -> str:
    """A content hash of a dataset (frames, targets, boundaries), to refuse a wrong resume."""
    h = hashlib.blake2b(digest_size=16)
    for a in (ds.boundaries, ds.frames, ds.targets):
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


class Batches:
    """Frames kept as uint8 in one tensor; each batch is gathered and converted to float32.

    Parameters
    ----------
    frames : uint8 [T, C, H, W]
    targets : float32 [T, L], already divided by the scale
    ctx : int64 [T, K]
    """

    def __init__(self, frames: npt.NDArray[np.uint8], targets: npt.NDArray[np.float32],
                 ctx: npt.NDArray[np.int64]) -> None:
        t = frames.shape[0]
        self.frames = torch.from_numpy(np.ascontiguousarray(frames.reshape(t, -1)))
        self.targets = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
        self.ctx = torch.from_numpy(ctx)
        self.k = ctx.shape[1]
        self.plane = self.frames.shape[1]

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x [B, K*C*H*W] float32 in [0, 1], y [B, L])`` for ticks ``idx``."""
        if self.k == 1:
            raw = self.frames.index_select(0, idx)
        else:
            raw = self.frames.index_select(0, self.ctx.index_select(0, idx).reshape(-1))
            raw = raw.reshape(idx.shape[0], self.k * self.plane)
        x = raw.to(torch.float32).mul_(1.0 / 255.0)
        return x, self.targets.index_select(0, idx)


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``."""
    with atomic_write(path) as (f, _):
        torch.save(state, f)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint; a missing or foreign file is one :class:`CheckpointError` line."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such checkpoint (make one with `liveframe train`)")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors all mean "not a checkpoint"
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{p}: not a liveframe checkpoint ({msg[:120]})") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{p}: not a liveframe checkpoint")
    if int(ck.get("version", 0)) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{p}: checkpoint version {ck['version']} is newer than this "
                              "liveframe; upgrade liveframe")
    return ck


def check_output(out: Path, *, resume: bool) -> None:
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise UsageError(f"-o {out}: is a directory; give a checkpoint file name")
    if not parent.is_dir():
        raise UsageError(f"-o {out}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"-o {out}: folder {parent} is not writable")
    if resume and not out.exists():
        raise UsageError(f"-o {out}: no checkpoint to resume; run without --resume")
    if not resume and out.exists():
        raise UsageError(f"-o {out}: exists; pass --resume to continue it, or remove it")


# --------------------------------------------------------------------------- training


def _rms(targets: npt.NDArray[np.float32], idx: npt.NDArray[np.int64]) -> float:
    """RMS of ``targets[idx]`` in float64, a few thousand rows at a time (bounded memory)."""
    total = 0.0
    for i in range(0, len(idx), 4096):
        block = targets[idx[i:i + 4096]].astype(np.float64)
        total += float(np.einsum("ij,ij->", block, block))
    return math.sqrt(total / max(len(idx) * targets.shape[1], 1))


def _loss_fn(name: str) -> Any:
    return torch.nn.functional.mse_loss if name == "mse" else torch.nn.functional.l1_loss


def _evaluate(model: DenseBrain, data: Batches, idx: torch.Tensor, fn: Any,
              batch: int = 1024) -> float:
    model.eval()
    total = 0.0
    with torch.inference_mode():
        for i in range(0, idx.shape[0], batch):
            x, y = data.get(idx[i:i + batch])
            total += float(fn(model(x), y, reduction="sum")) / y.shape[1]
    model.train()
    return total / max(int(idx.shape[0]), 1)


def _clone_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


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
) -> TrainResult:
    """Train a brain and keep its checkpoint at ``out``.

    Parameters
    ----------
    dataset : path
        A ``.npz`` made by ``liveframe pickle``.
    out : path
        The checkpoint, rewritten atomically after every epoch.
    config : TrainConfig
    resume : bool
        Continue the checkpoint at ``out``: its config, spec, split, weights, optimizer and
        rng come back; only ``epochs`` and ``patience`` may change.
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
    """
    out_p = Path(out)
    ds_p = Path(dataset)
    check_output(out_p, resume=resume)
    n_threads = threads or len(os.sched_getaffinity(0))
    if n_threads < 1:
        raise UsageError(f"--threads {threads} must be 1 or more")
    torch.set_num_threads(n_threads)

    ck: dict[str, Any] | None = None
    if resume:
        ck = load_checkpoint(out_p)
        # a run killed while writing leaves its temporary: the resumed run owns it now
        for stale in out_p.parent.glob(f".{out_p.name}.*.tmp"):
            log.debug("removing %s, left by an interrupted run", stale)
            stale.unlink(missing_ok=True)
        saved = dict(ck["config"])
        for name in explicit:
            if name in RESUMABLE:
                continue
            mine = getattr(config, name)
            if name == "layers" and mine is not None:
                mine = ck["spec"]["layers"] if _same_layers(mine, ck["spec"]["layers"]) else mine
            if mine != saved.get(name):
                raise UsageError(
                    f"--{name.replace('_', '-')} {mine} disagrees with the checkpoint "
                    f"{out_p} ({saved.get(name)}); drop it to resume, or train anew"
                )
        for name in RESUMABLE:
            if name in explicit:
                saved[name] = getattr(config, name)
        config = TrainConfig(**{k: v for k, v in saved.items()
                                if k in TrainConfig.__dataclass_fields__})
    config.validate()

    ds = load_dataset(ds_p)
    spec = spec_from_dataset(ds, context=config.context, where=str(ds_p))
    fp = fingerprint(ds)
    if ck is not None and ck["spec"]["provenance"].get("dataset_fingerprint") != fp:
        raise CheckpointError(
            f"{out_p}: was trained on other data than {ds_p} (fingerprints differ); "
            "resume with the same dataset"
        )
    in_size = spec.in_channels * spec.height * spec.width
    arch, sizes = resolve_layers(config.arch, config.layers, in_size=in_size,
                                 out_size=spec.length)

    segments = ds.segments
    guard = config.context + 1
    train_idx_np, val_idx_np, stretches = split_validation(
        segments, config.val_fraction, guard=guard)
    if len(val_idx_np) == 0 or len(train_idx_np) == 0:
        raise DatasetError(
            f"{ds_p}: {len(ds)} ticks are too few to hold out --val-fraction "
            f"{config.val_fraction:g} in contiguous stretches; give more data"
        )

    if ck is not None:
        scale = float(ck["spec"]["output"]["scale"])
    else:
        rms = _rms(ds.targets, train_idx_np)
        scale = rms if math.isfinite(rms) and rms > 1e-12 else 1.0
    if scale != 1.0:
        ds.targets *= np.float32(1.0 / scale)  # in place: the dataset is ours, and can be big
    data = Batches(ds.frames, ds.targets, context_index(segments, config.context))
    train_idx = torch.from_numpy(train_idx_np)
    val_idx = torch.from_numpy(val_idx_np)

    torch.manual_seed(config.seed)
    model = DenseBrain(sizes)
    # AdamW: decoupled weight decay (Loshchilov & Hutter); with weight_decay 0 it is Adam
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                            fused=True)
    lr_bad = 0  # epochs since the best one, or since the last drop of the learning rate
    lr_scale = 1.0  # product of the plateau drops so far
    fn = _loss_fn(config.loss)

    provenance: dict[str, Any] = {
        "data": str(ds_p.resolve()),
        "dataset_fingerprint": fp,
        "dataset_ticks": len(ds),
        "sources": [s.get("path", s.get("kind", "?")) for s in ds.meta.get("sources", [])],
        "train_ticks": int(len(train_idx_np)),
        "val_ticks": int(len(val_idx_np)),
        "loss": config.loss,
        "target_rms": scale,
    }
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

    result = TrainResult(out_p, history, best_val, best_epoch, start)
    if bad >= config.patience:
        log.info("%s stopped early at epoch %d (patience %d); nothing to do",
                 out_p, start, config.patience)
        result.stopped = True
        return result
    if not quiet:
        log.info("training %s %s on %d ticks (%d held out in %d stretches), scale %.4g, "
                 "%d threads", arch, "-".join(map(str, sizes)), len(train_idx_np),
                 len(val_idx_np), len(stretches), scale, n_threads)

    bs = config.batch_size
    n_train = int(train_idx.shape[0])
    stopped = False
    for epoch in range(start, config.epochs):
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
        total = 0.0
        for i in range(0, n_train, bs):
            x, y = data.get(perm[i:i + bs])
            loss = fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            lv = loss.item()
            total += lv * y.shape[0]
            bar.update(int(y.shape[0]))
            bar.set_postfix(f"loss {lv:.4g}")
        train_loss = total / n_train
        if not math.isfinite(train_loss):
            bar.close()
            raise LiveframeError(
                f"training diverged at epoch {epoch + 1} (loss {train_loss}); lower --lr "
                f"(now {config.lr:g})"
            )
        val_loss = _evaluate(model, data, val_idx, fn)
        secs = time.perf_counter() - t0
        improved = val_loss < best_val
        if improved:
            best_val, best_epoch, bad, lr_bad = val_loss, epoch + 1, 0, 0
            best_state = _clone_state(model)
        else:
            bad += 1
            lr_bad += 1
            if config.lr_patience and lr_bad >= config.lr_patience:
                # step decay on a plateau, from the next epoch: a smaller step settles into
                # the minimum the larger one keeps jumping over (what ReduceLROnPlateau does)
                lr_scale *= config.lr_factor
                lr_bad = 0
        stopped = bad >= config.patience
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
        save_checkpoint(state, out_p)
        if not quiet:
            log.info("epoch %d/%d: train %.4g val %.4g%s, %.1f s", epoch + 1, config.epochs,
                     train_loss, val_loss, " (best)" if improved else "", secs)
        result.epoch = epoch + 1
        if on_epoch is not None:
            on_epoch(history[-1])
        if stopped:
            log.info("early stop: validation loss has not improved for %d epochs "
                     "(best %.4g at epoch %d)", config.patience, best_val, best_epoch)
            break
    result.history, result.best_val, result.best_epoch = history, best_val, best_epoch
    result.stopped = stopped
    return result


def _same_layers(given: str | tuple[int, ...], saved: list[int]) -> bool:
    if isinstance(given, str):
        toks = [t.strip().upper() for t in given.split(",")]
        if len(toks) != len(saved):
            return False
        return all(t in ("L", "I") or (t.isdigit() and int(t) == s)
                   for t, s in zip(toks, saved, strict=True))
    return list(given) == list(saved)


def state_from_checkpoint(ck: dict[str, Any]) -> tuple[BrainSpec, DenseBrain]:
    """The spec and the best weights of a checkpoint, as an eval-mode net."""
    spec = BrainSpec.from_dict(ck["spec"], where="checkpoint")
    model = DenseBrain(spec.layers)
    model.load_state_dict(ck["best_model"])
    model.eval()
    return spec, model


__all__ = [
    "CheckpointError",
    "TrainConfig",
    "TrainResult",
    "context_index",
    "load_checkpoint",
    "save_checkpoint",
    "split_validation",
    "state_from_checkpoint",
    "train",
]
