"""Training a brain with PyTorch on the CPU, and exporting it to ONNX.

This package imports without torch (the instrument never needs it): the torch code in
:mod:`liveframe.train.trainer`, :mod:`liveframe.train.model` and
:mod:`liveframe.train.export` is imported only when a training run or an export starts.
Without torch, :func:`require_torch` says how to install it, in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

from liveframe.errors import LiveframeError, ParamError
from liveframe.util.files import zip_input

INSTALL_HINT = "pip install -e '.[train]'"

ARCHS: dict[str, tuple[int, ...]] = {
    "shallow": (1000,),
    "deep": (1000, 1000, 1000),
    "wide": (2048, 1000, 1000),
    "kungfury": (2000, 1500, 1000),
    "spectral": (1024,),
    "conv": (512,),
    "sources": (256,),
}
"""Hidden sizes of the 2015 topologies (4096-...-735 at 64x64 grey, block framing), and of
the spectrum brains' default (4096-1024-1539 at 64x64 grey and the STFT defaults), and
``conv``: a convolutional front end (16, 32, 32 planes, 64x64 -> 8x8) before 512 hidden units.

The input size follows the frame geometry and context, the output size the framing (pcm)
or ``frames * bins`` (spectrum).
"""

DEFAULT_ARCH = {"pcm": "shallow", "spectrum": "conv"}
"""The topology each kind of brain trains with when neither arch nor layers is given.

``conv`` for spectrum brains: on the free-phase film benchmark (3 minutes trained, another
minute tested) it reached level -0.7 dB, envelope correlation 0.897, mel distance 13.4 dB
against +2.9 dB, 0.797 and 14.9 dB for ``spectral``; on the camera film of the default
brain only ``conv`` heard where the movement is (``brains/default.md``).

``spectral`` (one hidden layer of 1024) was chosen on a 90 s free-phase film
(:mod:`liveframe.data.freefilm`, seed 1; batch 64, the logmag loss): best validation loss
0.84 against 0.97 for 512 hidden units; 512 and 256 at batch 256 stopped early before
learning anything (the issue's prototype had 512 hidden units at n_fft 2048).
"""


class CheckpointError(LiveframeError):
    """A checkpoint that is missing, unreadable or does not fit the run."""


def check_checkpoint_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a file that can be a checkpoint (a regular, non-empty zip file, which
    every ``torch.save`` writes), checked without torch: a wrong file is refused at once.

    Raises
    ------
    CheckpointError
        One line naming the file.
    """
    return zip_input(path, CheckpointError, what="checkpoint", made_by="`liveframe train`",
                     archive="a torch.save file")


class TorchMissingError(LiveframeError):
    """Training or export asked for, but torch (the ``[train]`` extra) is not installed."""


def require_torch(what: str = "training", *, load: bool = True) -> None:
    """Raise a one-line :class:`TorchMissingError` when torch cannot be imported.

    ``load=False`` only looks for it (no import, which takes seconds), so a command can
    say at once that torch is missing and still check its inputs before loading it.
    """
    if not load:
        import importlib.util
        import sys

        if "torch" in sys.modules:
            found = sys.modules["torch"] is not None
        else:
            try:
                found = importlib.util.find_spec("torch") is not None
            except (ImportError, ValueError):
                found = False
        if found:
            return
    try:
        import torch  # noqa: F401
    except ImportError:
        raise TorchMissingError(
            f"PyTorch is not installed ({what} needs it); run: {INSTALL_HINT}"
        ) from None


def check_output_file(out: str | os.PathLike[str], *, example: str) -> Path:
    """``out`` as a file that can be written: not a folder, in a writable folder.

    Parameters
    ----------
    out : path-like
    example : str
        A file name to suggest when ``out`` is a folder (``brains/NAME.onnx``).

    Raises
    ------
    ParamError
        Naming the parameter ``out``.
    """
    p = Path(out)
    if p.is_dir():
        raise ParamError("out", p, f"is a directory; give a file name such as {example}")
    if not p.parent.is_dir():
        raise ParamError("out", p, f"cannot be written: folder {p.parent} does not exist")
    if not os.access(p.parent, os.W_OK):
        raise ParamError("out", p, f"cannot be written: folder {p.parent} is not writable")
    return p
