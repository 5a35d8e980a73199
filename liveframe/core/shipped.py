"""Files shipped inside the package: the brains, the demo clip, the patches.

The repository's top-level ``brains/`` and ``patches/`` folders are installed as the
packages ``liveframe.brains`` and ``liveframe.patches`` (``pyproject.toml`` maps them), so
:mod:`importlib.resources` finds them in a checkout, an editable install and a wheel alike.
Nothing here derives a path from the repository.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

FOLDERS = ("brains", "patches")
"""The shipped folders, each the package ``liveframe.<folder>``."""

DEMO_CLIP = "brains/demo.mkv"
"""The demo clip, as :func:`shipped_file` names it."""


def shipped_folder(folder: str) -> Path:
    """The installed folder of ``brains`` or ``patches``.

    Parameters
    ----------
    folder : {"brains", "patches"}

    Returns
    -------
    Path
        A real folder on disk (liveframe is never installed zipped: onnxruntime and
        Csound need paths).
    """
    if folder not in FOLDERS:
        raise ValueError(f"folder={folder!r} must be one of {', '.join(FOLDERS)}")
    return Path(str(files(f"liveframe.{folder}")))


def shipped_file(name: str) -> Path:
    """Path of a shipped file, ``"brains/default.onnx"`` or ``"patches/liveframe-render.csd"``.

    The path is returned whether or not the file exists (a checkout whose brains were not
    built yet); whoever opens it says so.
    """
    folder, _, filename = name.partition("/")
    if not filename or "/" in filename:
        raise ValueError(f"name={name!r} must be FOLDER/FILE, e.g. 'brains/default.onnx'")
    return shipped_folder(folder) / filename
