"""Helpers shared by the tests.

The toy brains (:func:`make_brain`, :func:`tone_block`: ONNX graphs with known outputs,
built without torch) live in :mod:`liveframe.data.toybrain`, so benchmarks and tools use
them too; they are re-exported here for the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from liveframe.data.toybrain import make_brain, tone_block

__all__ = ["count_opens", "make_brain", "tone_block"]


def count_opens(monkeypatch: pytest.MonkeyPatch, path: Path, run: Callable[[], object]) -> int:
    """How many times ``run()`` opens ``path`` with PyAV."""
    import av

    calls: list[str] = []
    real_open = av.open

    def counting_open(p, *a, **kw):  # noqa: ANN001, ANN002, ANN003
        calls.append(str(p))
        return real_open(p, *a, **kw)

    monkeypatch.setattr(av, "open", counting_open)
    try:
        run()
    finally:
        monkeypatch.setattr(av, "open", real_open)
    return calls.count(str(path))


def mount_tmpfs(d: Path, size: str) -> Path:
    """A real tmpfs of ``size`` (``"16k"``) mounted at the new folder ``d``: a disk that
    fills. Needs root, as on CI; the test fails, never skips, when it cannot mount.
    The caller unmounts it (``umount``) when it must outlive nothing."""
    import subprocess

    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a {size} tmpfs at {d} to test a full disk (needs root, "
                    f"as on CI): {r.stderr.strip()}")
    return d
