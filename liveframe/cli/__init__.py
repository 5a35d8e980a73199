"""The single ``liveframe`` command and its subcommands.

This package is the only place that knows argparse: each subcommand is a module here
(``liveframe/cli/render.py`` ...) that defines two functions::

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...

turns bad values into one-line usage errors that name the flag, and calls the library
(which raises domain errors and never names a flag). A command's module is imported only
when that subcommand runs, so ``liveframe pickle`` never loads Qt and
``liveframe play`` never needs torch. A :class:`~liveframe.errors.LiveframeError` is
printed as one line and exits with status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from liveframe import __version__
from liveframe.errors import LiveframeError, UsageError
from liveframe.util.files import disk_error, is_disk_error

# name -> (module in liveframe.cli, one-line help). One table, nothing declared twice.
COMMANDS: dict[str, tuple[str, str]] = {
    "pickle": ("pickle", "turn videos with soundtracks into a training dataset"),
    "train": ("train", "train a brain on a dataset (needs the [train] extra)"),
    "export": ("export", "export a checkpoint to an ONNX brain"),
    "render": ("render", "render a video's soundtrack through a brain, offline"),
    "eval": ("eval", "measure how a brain sounds against a video's soundtrack"),
    "play": ("play", "play a video file through a brain, live"),
    "live": ("play", "play a camera through a brain, live"),
    "devices": ("devices", "list audio outputs and cameras"),
    "info": ("info", "show a brain's spec"),
}


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one :class:`UsageError` line naming the flag
    (argparse's own prints the whole usage first, a dozen lines for ``play``)."""

    def error(self, message: str) -> NoReturn:
        msg = " ".join(message.split())
        m = re.match(r"argument (\S+): (.*)$", msg)
        if m:  # in the project's words: "--fps 0 must be ...", the flag first
            flag, why = m.group(1).split("/")[-1], m.group(2)
            own = not why.startswith(("invalid", "expected", "ambiguous", "one of", "not "))
            msg = f"{flag} {why}" if own else f"{flag}: {why}"
        raise UsageError(f"{msg} (see `{self.prog} --help`)")


def _top_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="liveframe",
        description="A real-time audiovisual instrument: video frames in, sound out.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n"
        + "\n".join(f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items())
        + "\n\n`liveframe COMMAND --help` for a command's options.",
    )
    p.add_argument("--version", action="version", version=f"liveframe {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    p.add_argument("command", nargs="?", choices=list(COMMANDS), metavar="COMMAND")
    return p


def build_parser(command: str) -> tuple[argparse.ArgumentParser, object]:
    """The parser of one subcommand, and its module."""
    module_name, help_ = COMMANDS[command]
    module = importlib.import_module(f"liveframe.cli.{module_name}")
    parser = OneLineParser(prog=f"liveframe {command}", description=help_)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    add = getattr(module, f"add_{command}_arguments", None) or module.add_arguments
    add(parser)
    return parser, module


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    # Split at the first non-option word: that is the command.
    i = next((j for j, a in enumerate(argv) if not a.startswith("-")), len(argv))
    try:
        top_args = top.parse_args(argv[: i + 1])
    except UsageError as e:
        print(f"liveframe: {e}", file=sys.stderr)
        return e.exit_status
    if top_args.command is None:
        top.print_help()
        return 2
    command = top_args.command
    logging.basicConfig(
        level=logging.DEBUG if top_args.verbose else logging.INFO,
        format="liveframe: %(message)s",
    )
    try:
        parser, module = build_parser(command)
        args = parser.parse_args(argv[i + 1 :])
        if args.verbose:
            logging.getLogger().setLevel(logging.DEBUG)
        args.command = command
        runner = getattr(module, f"run_{command}", None) or module.run  # type: ignore[attr-defined]
        return int(runner(args) or 0)
    except LiveframeError as e:
        print(f"liveframe {command}: {_one_line(str(e))}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        print(f"liveframe {command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`liveframe info | head`): not an error of ours; stdout is
        # pointed at /dev/null so the interpreter's final flush cannot raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        if not is_disk_error(e):
            raise
        # a full disk or a failing one met where no writer named its file: still one line
        # (every writer removes its temporary on the way out)
        print(f"liveframe {command}: {_one_line(str(disk_error(e.filename or '?', e)))}",
              file=sys.stderr)
        return 2


def _one_line(text: str) -> str:
    """``text`` on one line (a message that quotes a tool's output may hold newlines)."""
    return " ".join(text.split()) if "\n" in text else text


if __name__ == "__main__":
    sys.exit(main())
