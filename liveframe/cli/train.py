"""``liveframe train DATASET -o CHECKPOINT``: train a brain (needs the ``[train]`` extra)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from liveframe import constants as C
from liveframe.cli.options import bounded_float, bounded_int, seed_arg
from liveframe.core.spec import MAX_CONTEXT
from liveframe.data.dataset import check_dataset
from liveframe.errors import ParamError, UsageError
from liveframe.train import ARCHS, DEFAULT_ARCH, KIND_DEFAULTS, require_torch
from liveframe.util.files import check_outputs

log = logging.getLogger(__name__)

CONFIG_OPTIONS = ("kind", "arch", "layers", "context", "epochs", "batch_size", "lr", "loss",
                  "sc_weight", "mel_weight", "val_fraction", "patience", "seed", "weight_decay",
                  "lr_schedule", "lr_patience", "lr_factor", "ema", "lobe_anneal", "starts",
                  "start_epochs", "val_seconds")
"""Options that are :class:`~liveframe.train.trainer.TrainConfig` fields of the same name."""

FLAGS = {"out": "-o"}
"""Library parameters whose flag is not ``--`` + the name with dashes."""


def _kinds(option: str) -> str:
    """``"A for spectrum, B for pcm"`` (or ``"A"`` when both kinds agree)."""
    vals = {k: KIND_DEFAULTS[k][option] for k in ("spectrum", "pcm")}
    text = {k: v if isinstance(v, str) else f"{v:g}" for k, v in vals.items()}
    if len(set(text.values())) == 1:
        return text["spectrum"]
    return ", ".join(f"{v} for {k}" for k, v in text.items())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``liveframe train`` (the defaults in --help are TrainConfig's).

    Hyper-parameters default to None here so that a ``--resume`` can tell which ones the
    user set; the effective values are filled in by the trainer and saved in the checkpoint.
    """
    parser.add_argument("dataset", help="dataset .npz made by `liveframe pickle`")
    parser.add_argument("-o", "--output", required=True, metavar="CHECKPOINT",
                        help="checkpoint file, rewritten atomically after every epoch")
    g = parser.add_argument_group("net")
    g.add_argument("--kind", default=None, choices=C.KINDS,
                   help="what the brain outputs: spectrum (log-magnitude STFT frames, played "
                        "with real-time phase: learns real soundtracks) or pcm (audio blocks, "
                        "the 2015 brains) (default spectrum)")
    g.add_argument("--arch", default=None, metavar="NAME",
                   help=f"topology: {', '.join(ARCHS)} (default "
                        f"{DEFAULT_ARCH['spectrum']} for spectrum, {DEFAULT_ARCH['pcm']} "
                        "for pcm)")
    g.add_argument("--layers", default=None, metavar="SIZES",
                   help="any dense topology, e.g. 4096,500,L (first the input size "
                        "channels*(context+1)*height*width or I, last the output length or L)")
    g.add_argument("--context", type=bounded_int(0, MAX_CONTEXT), default=None, metavar="N",
                   help="previous frames fed with the current one (default 0)")
    g = parser.add_argument_group("training")
    g.add_argument("--epochs", type=bounded_int(1, 100_000), default=None,
                   help="maximum epochs, 1..100000 (default "
                        f"{_kinds('epochs')})")
    g.add_argument("--batch-size", type=bounded_int(1, 65536), default=None,
                   help=f"frames per step (default {_kinds('batch_size')})")
    g.add_argument("--lr", type=bounded_float(0.0, 10.0, lo_open=True), default=None,
                   help=f"Adam learning rate, in (0, 10] (default {_kinds('lr')})")
    g.add_argument("--loss", default=None, choices=("logmag", "mse", "l1"),
                   help="loss: logmag (spectrum: MSE of log-magnitudes plus --sc-weight times "
                        "the spectral convergence and --mel-weight times the MSE of the "
                        "log-magnitudes summed into mel bands; the spectrum default), mse "
                        "(the pcm default) or l1")
    g.add_argument("--sc-weight", type=bounded_float(0.0, 1000.0), default=None, metavar="W",
                   help="weight of the spectral-convergence term of --loss logmag "
                        "(default 0.1; other losses ignore it)")
    g.add_argument("--mel-weight", type=bounded_float(0.0, 1000.0), default=None, metavar="W",
                   help="weight of the mel-band term of --loss logmag (default 0: none; "
                        "other losses ignore it)")
    g.add_argument("--weight-decay", type=bounded_float(0.0, 10.0), default=None, metavar="W",
                   help="decoupled weight decay (AdamW; default 0: plain Adam)")
    g.add_argument("--lr-schedule", default=None, choices=("constant", "cosine"),
                   help="learning rate over the epochs: constant, or cosine annealing to zero "
                        f"at --epochs (default {_kinds('lr_schedule')})")
    g.add_argument("--lr-patience", type=bounded_int(0, 100_000), default=None, metavar="N",
                   help="multiply the learning rate by --lr-factor after N epochs without a "
                        "better validation loss (default 0: constant rate)")
    g.add_argument("--lr-factor", type=bounded_float(0.0, 1.0, lo_open=True, hi_open=True),
                   default=None, metavar="F",
                   help="learning-rate drop on a plateau (default 0.3)")
    g.add_argument("--ema", type=bounded_float(0.0, 1.0, hi_open=True), default=None,
                   metavar="D",
                   help="judge and keep an exponential moving average of the weights, "
                        "decay D per step, in [0, 1) (0: the weights themselves; default "
                        f"{_kinds('ema')})")
    g.add_argument("--lobe-anneal", type=bounded_int(0, 100_000), default=None, metavar="N",
                   help="partials and tones: start the slots' lobes 4 times as wide and "
                        "narrow them over the first N epochs (default 0: narrow from the "
                        "start)")
    g.add_argument("--starts", type=bounded_int(1, 64), default=None, metavar="K",
                   help="train K runs (seeds SEED..SEED+K-1) for --start-epochs each and go on "
                        "with the one of best validation loss; the others are removed "
                        f"(default {_kinds('starts')})")
    g.add_argument("--start-epochs", type=bounded_int(1, 100_000), default=None, metavar="N",
                   help="epochs each of the --starts trains before one is kept (default 40)")
    g.add_argument("--val-fraction", type=bounded_float(0.0, 0.5, lo_open=True), default=None,
                   help="share of each source held out, in contiguous stretches, in (0, 0.5] "
                        "(default 0.1, raised to hold out --val-seconds, up to 0.3)")
    g.add_argument("--val-seconds", type=bounded_float(0.0, 3600.0), default=None,
                   metavar="S",
                   help="without --val-fraction, hold out at least S seconds of the dataset, "
                        f"up to 30 %% of each source (default {_kinds('val_seconds')})")
    g.add_argument("--patience", type=bounded_int(1, 100_000), default=None,
                   help="stop after this many epochs without a better validation loss "
                        f"(default {_kinds('patience')})")
    g.add_argument("--seed", type=seed_arg, default=None,
                   help="seed: same seed, same run, 0..2**32-1 (default 0)")
    g.add_argument("--resume", action="store_true",
                   help="continue the checkpoint at -o (e.g. after a kill); --epochs and "
                        "--patience may be raised")
    g.add_argument("--threads", type=bounded_int(1, 1024), default=None,
                   help="torch threads (default: all cores this process may use)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    require_torch("training", load=False)
    check_outputs({"-o": args.output}, [args.dataset])
    check_dataset(args.dataset)  # at once, before torch loads
    require_torch("training")
    from liveframe.train.trainer import TrainConfig, start_paths, train

    out = Path(args.output)
    if args.resume and not out.exists() and not start_paths(out, 1)[0].exists():
        raise UsageError(f"-o {out}: no checkpoint to resume; run without --resume")
    if not args.resume and out.is_file():
        raise UsageError(f"-o {out}: exists; pass --resume to continue it, or remove it")
    given = {k: getattr(args, k) for k in CONFIG_OPTIONS if getattr(args, k) is not None}
    try:
        result = train(args.dataset, out, TrainConfig(**given), resume=args.resume,
                       explicit=tuple(given), threads=args.threads, quiet=args.quiet)
    except ParamError as e:
        raise e.for_flag(FLAGS.get(e.param)) from None
    log.info("%s: %d epochs, best validation loss %.4g at epoch %d%s; export it with "
             "`liveframe export %s -o brains/NAME.onnx`", result.checkpoint, result.epoch,
             result.best_val, result.best_epoch, " (stopped early)" if result.stopped else "",
             result.checkpoint)
    return 0
