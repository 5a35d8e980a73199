"""Crafted bad inputs for tests/test_robustness.py: each maker writes one real file.

Every maker takes the folder to write in and returns the file's name (relative to it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np


def good_clip(path: Path, *, seconds: float = 1.0, audio: bool = True) -> Path:
    """A real clip: noise pictures at 30 fps with a quiet tone as soundtrack."""
    from liveframe.data.clips import write_clip

    rng = np.random.default_rng(0)
    n = int(seconds * 30)
    pics = [(t / 30, (rng.random((48, 64)) * 255).astype(np.uint8)) for t in range(n)]
    snd = (0.1 * np.sin(np.arange(int(48000 * seconds)) / 10)).astype(np.float32)
    return write_clip(path, pics, audio=snd if audio else None, sr=48000)


def empty(d: Path, name: str) -> str:
    (d / name).write_bytes(b"")
    return name


def text(d: Path, name: str) -> str:
    (d / name).write_text("this is not what the name says\n")
    return name


def fifo(d: Path, name: str = "pipe.mkv") -> str:
    os.mkfifo(d / name)
    return name


def symlink(d: Path, name: str, target: str) -> str:
    (d / name).symlink_to(target)
    return name


def hardlink(d: Path, name: str, target: str) -> str:
    os.link(d / target, d / name)
    return name


def still_png(d: Path, name: str = "still.png") -> str:
    import cv2

    img = (np.random.default_rng(1).random((48, 64)) * 255).astype(np.uint8)
    assert cv2.imwrite(str(d / name), img)
    return name


def no_frames_clip(d: Path, name: str = "noframes.mkv") -> str:
    """A Matroska file with a video stream that holds no packet (and a soundtrack)."""
    import av

    with av.open(str(d / name), "w") as c:
        v = c.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("flac", rate=48000)
        a.layout = "mono"
        x = (0.1 * np.sin(np.arange(4800) / 10)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(x, format="flt", layout="mono")
        frame.sample_rate = 48000
        frame.pts, frame.time_base = 0, Fraction(1, 48000)
        for p in a.encode(frame):
            c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    return name


def truncated(d: Path, name: str, source: str, keep: int = 600) -> str:
    (d / name).write_bytes((d / source).read_bytes()[:keep])
    return name


# ------------------------------------------------------------------------------ datasets
def _npz(d: Path, name: str, arrays: dict[str, np.ndarray]) -> str:
    with zipfile.ZipFile(d / name, "w") as z:
        for k, a in arrays.items():
            with z.open(f"{k}.npy", "w") as f:
                np.lib.format.write_array(f, a, allow_pickle=True)
    return name


def _meta(**over: object) -> np.ndarray:
    m = {"format": "liveframe-dataset", "version": 1, "sample_rate": 22050, "fps": 30,
         "hop": 735, "length": 1470, "framing": "grain", "channels": 1, "width": 64,
         "height": 64, "sources": [{"kind": "video", "path": "x", "start": 0, "ticks": 40}]}
    m.update(over)
    return np.asarray(json.dumps(m))


def _arrays(ticks: int = 40, **over: np.ndarray) -> dict[str, np.ndarray]:
    a = {"frames": np.zeros((ticks, 1, 64, 64), np.uint8),
         "targets": np.zeros((ticks, 1470), np.float32),
         "boundaries": np.asarray([0, ticks], np.int64), "meta": _meta()}
    a.update(over)
    return a


def ds_bad_bounds(d: Path) -> str:
    return _npz(d, "bounds.npz", _arrays(boundaries=np.asarray([0, 90, 40], np.int64)))


def ds_meta_list(d: Path) -> str:
    return _npz(d, "metalist.npz", _arrays(meta=np.asarray(json.dumps([1, 2, 3]))))


def ds_meta_types(d: Path) -> str:
    return _npz(d, "metatypes.npz", _arrays(meta=_meta(width="64", fps=[30])))


def ds_version_abc(d: Path) -> str:
    return _npz(d, "version.npz", _arrays(meta=_meta(version="abc")))


def ds_pickled(d: Path) -> str:
    return _npz(d, "pickled.npz", _arrays(meta=np.asarray([{"a": 1}], dtype=object)))


def ds_nan_targets(d: Path) -> str:
    t = np.zeros((40, 1470), np.float32)
    t[5, :10] = np.nan
    return _npz(d, "nan.npz", _arrays(targets=t))


def ds_no_meta(d: Path) -> str:
    a = _arrays()
    del a["meta"]
    return _npz(d, "nometa.npz", a)


# ------------------------------------------------------------------------------ checkpoints
def _torch_save(d: Path, name: str, obj: object) -> str:
    import torch

    torch.save(obj, d / name)
    return name


def ck_version_abc(d: Path, good: str) -> str:
    import torch

    ck = torch.load(d / good, weights_only=True)
    ck["version"] = "abc"
    return _torch_save(d, "ckversion.pt", ck)


def ck_no_config(d: Path, good: str) -> str:
    import torch

    ck = torch.load(d / good, weights_only=True)
    del ck["config"]
    return _torch_save(d, "cknoconfig.pt", ck)


def ck_spec_type(d: Path, good: str) -> str:
    import torch

    ck = torch.load(d / good, weights_only=True)
    ck["spec"] = "a string"
    return _torch_save(d, "ckspec.pt", ck)


def ck_foreign(d: Path) -> str:
    return _torch_save(d, "foreign.pt", {"weights": [1, 2, 3]})


def copy(d: Path, src: Path, name: str | None = None) -> str:
    shutil.copy(src, d / (name or src.name))
    return name or src.name


def dead_pid() -> int:
    """The id of a process that has just ended (killed with SIGKILL and reaped)."""
    p = subprocess.Popen(["sleep", "60"])
    p.kill()
    p.wait()
    return p.pid
