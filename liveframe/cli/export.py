"""``liveframe export CHECKPOINT -o BRAIN``: a checkpoint's best weights as an ONNX brain."""

from __future__ import annotations

import argparse
import logging

from liveframe.cli.options import bounded_float
from liveframe.errors import ParamError
from liveframe.train import check_checkpoint_file, require_torch
from liveframe.train.export import TOLERANCE, export_checkpoint
from liveframe.util.files import check_outputs

log = logging.getLogger(__name__)

FLAGS = {"out": "-o"}
"""Library parameters whose flag is not ``--`` + the name with dashes."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint written by `liveframe train`")
    parser.add_argument("-o", "--output", required=True, metavar="BRAIN",
                        help="ONNX brain to write, e.g. brains/NAME.onnx")
    parser.add_argument("--tolerance", type=bounded_float(0.0, 1.0, lo_open=True),
                        default=TOLERANCE,
                        help="largest onnxruntime/torch difference allowed, in (0, 1] "
                        f"(default {TOLERANCE:g})")


def run(args: argparse.Namespace) -> int:
    require_torch("export", load=False)
    check_outputs({"-o": args.output}, [args.checkpoint])
    check_checkpoint_file(args.checkpoint)  # at once, before torch loads
    try:
        out = export_checkpoint(args.checkpoint, args.output, tolerance=args.tolerance)
    except ParamError as e:
        raise e.for_flag(FLAGS.get(e.param)) from None
    log.info("wrote %s (check it with `liveframe info %s`)", out, out)
    return 0
