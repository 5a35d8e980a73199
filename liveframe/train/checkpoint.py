"""The checkpoint: one ``torch.save`` file, rewritten atomically after every epoch.

::

    {"format": "liveframe-checkpoint", "version": 1,
     "config":  training hyper-parameters as run (kind, arch, layers, context, loss, ...),
     "spec":    the brain's spec (BrainSpec.to_dict(): kind, geometry, framing, rates,
                scale, a spectrum brain's STFT fields, arch, layers, provenance incl. the
                dataset's path and fingerprint),
     "split":   {"val": [[start, stop], ...], "guard": ticks},
     "epoch":   epochs completed, "history": [{"epoch", "train", "val", "seconds"}, ...],
     "best_val", "best_epoch", "bad_epochs", "stopped",
     "model", "best_model", "optimizer": state dicts, "rng": {"torch": ByteTensor}}

``liveframe export`` reads ``spec`` and ``best_model`` back: nothing is declared twice.
Needs torch (the ``[train]`` extra).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from liveframe.core.spec import BrainSpec
from liveframe.errors import BrainError
from liveframe.train import CheckpointError, check_checkpoint_file
from liveframe.train.model import DenseBrain, saved_net
from liveframe.util.files import atomic_write

CHECKPOINT_FORMAT = "liveframe-checkpoint"
CHECKPOINT_VERSION = 1


REQUIRED: dict[str, type | tuple[type, ...]] = {
    "config": dict, "spec": dict, "model": dict, "best_model": dict, "epoch": int,
}
"""What every checkpoint holds, and of which type."""


class _Writes:
    """A file for ``torch.save`` that keeps the OSError of a failed write: torch turns it
    into a RuntimeError (``unexpected pos``) that no longer says the disk is full."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, b: Any) -> int:
        try:
            return int(self.f.write(b))
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``; a full
    disk is one :class:`~liveframe.errors.OutputError` line and leaves nothing behind."""
    with atomic_write(path) as (f, _):
        w = _Writes(f)
        try:
            torch.save(state, w)
        except RuntimeError:
            if w.error is not None:
                raise w.error from None
            raise


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint; a missing or foreign file is one :class:`CheckpointError` line."""
    p = check_checkpoint_file(path)
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and torch errors all mean "not a checkpoint"
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{p}: not a liveframe checkpoint ({msg[:120]})") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{p}: not a liveframe checkpoint")
    v = ck.get("version")
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise CheckpointError(f"{p}: checkpoint version {v!r} is not a version number")
    if v > CHECKPOINT_VERSION:
        raise CheckpointError(f"{p}: checkpoint version {v} is newer than this "
                              "liveframe; upgrade liveframe")
    for key, kind in REQUIRED.items():
        if not isinstance(ck.get(key), kind):
            what = "lacks" if key not in ck else "has a bad"
            raise CheckpointError(f"{p}: checkpoint {what} {key!r}; it is damaged or not "
                                  "written by `liveframe train`")
    return ck


def state_from_checkpoint(ck: dict[str, Any]) -> tuple[BrainSpec, DenseBrain]:
    """The spec and the best weights of a checkpoint, as an eval-mode net."""
    try:
        spec = BrainSpec.from_dict(ck["spec"], where="checkpoint")
    except BrainError as e:
        raise CheckpointError(str(e)) from None
    best = ck["best_model"]
    net = saved_net(best)
    model = DenseBrain(spec.layers, ceiling=0.0 if "ceiling" in best else None,
                       motion_channels=spec.channels if net["motion"] else 0,
                       conv_shape=spec.input_shape, conv=net["conv"], sources=net["sources"],
                       partials=net["partials"], frames=spec.frames,
                       harmonics=net["harmonics"])
    model.load_state_dict(ck["best_model"])
    model.eval()
    return spec, model
