"""``pip install .`` (a built wheel, not editable) plays the demo from another folder.

Proves the shipped brains and patches are package data, found through
``importlib.resources`` and never through the repository's path. To stay fast and offline
the wheel is built without build isolation (the ``[dev]`` extra brings a setuptools that
can), and the fresh venv borrows its dependencies from the running interpreter's
site-packages through a ``.pth`` file; liveframe itself comes only from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from liveframe.util.wav import read_wav

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

NOT_SHIPPED = (".git", ".venv", "build", "out", "*.egg-info", "__pycache__", ".pytest_cache",
               ".ruff_cache", "*.tmp*")


def _run(cmd: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, f"{cmd}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """liveframe's wheel, built from a copy of the checkout (the build leaves nothing here)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", tmp / "dist", src], cwd=tmp)
    (built,) = (tmp / "dist").glob("liveframe-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the repository with liveframe installed from the wheel."""
    tmp = tmp_path_factory.mktemp("install")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp)
    py = venv / "bin" / "python"
    purelib = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                        cwd=tmp).stdout.strip())
    # the dependencies (and pip) from this interpreter; its own liveframe is an editable
    # finder that a path in a .pth does not activate
    (purelib / "_liveframe_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # --ignore-installed: install into the venv, never touch the dependencies' environment
    _run([py, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q",
          wheel], cwd=tmp)
    return venv


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env


def test_installed_package_is_the_wheel_with_its_data(installed: Path, tmp_path: Path) -> None:
    code = ("import liveframe, json; from liveframe.core.shipped import DEMO_CLIP, shipped_file;"
            "from liveframe.core.brain import available_brains;"
            "print(json.dumps([liveframe.__file__, str(shipped_file(DEMO_CLIP)),"
            "str(shipped_file('patches/liveframe-render.csd')),"
            "{k: str(v) for k, v in available_brains().items()}]))")
    r = _run([installed / "bin" / "python", "-c", code], cwd=tmp_path, env=_env())
    init, clip, patch, brains = json.loads(r.stdout)
    site_dir = str(installed.resolve())
    for p in (init, clip, patch, *brains.values()):
        assert Path(p).resolve().is_relative_to(site_dir), p
        assert Path(p).is_file(), p
    assert "default" in brains


def test_installed_command_plays_the_demo_from_another_folder(
    installed: Path, tmp_path: Path
) -> None:
    liveframe = installed / "bin" / "liveframe"
    info = _run([liveframe, "info", "--json"], cwd=tmp_path, env=_env())
    assert '"format": "liveframe-brain"' in info.stdout
    clip = _run([installed / "bin" / "python", "-c",
                 "from liveframe.core.shipped import DEMO_CLIP, shipped_file;"
                 "print(shipped_file(DEMO_CLIP))"], cwd=tmp_path, env=_env()).stdout.strip()
    assert Path(clip).resolve().is_relative_to(installed.resolve())
    # the bundled synthetic clip (shapes on black) is the shapes brain's; the real-world
    # default plays it too, quietly (mostly black pictures are near silence)
    _run([liveframe, "render", clip, "-o", "demo.wav", "--brain", "shapes"], cwd=tmp_path,
         env=_env())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.wav"]
    sr, audio = read_wav(tmp_path / "demo.wav")
    seconds = audio.shape[0] / sr
    assert 17 < seconds < 19.5, seconds  # the 18 s demo clip
    assert np.isfinite(audio).all() and 0.01 < float(np.sqrt(np.mean(audio ** 2))) < 1
    _run([liveframe, "render", clip, "-o", "default.wav"], cwd=tmp_path, env=_env())
    sr, audio = read_wav(tmp_path / "default.wav")
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0.01  # audible where shapes move


def test_wheel_holds_every_module_and_shipped_file(wheel: Path) -> None:
    """pyproject.toml lists the packages (it must, to map brains/ and patches/): none missing."""
    names = set(zipfile.ZipFile(wheel).namelist())
    want = {p.relative_to(REPO).as_posix() for p in (REPO / "liveframe").rglob("*.py")}
    for folder in ("brains", "patches"):
        want |= {f"liveframe/{folder}/{p.name}" for p in (REPO / folder).iterdir()
                 if p.is_file() and not p.name.startswith(".")}
    assert want - names == set()
