"""`liveframe export` and tools/export_onnx.py: parity, the spec read back, refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from liveframe.cli import main
from liveframe.core.brain import Brain

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from liveframe.train.checkpoint import (  # noqa: E402
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    state_from_checkpoint,
)
from liveframe.train.export import ExportError, export_checkpoint  # noqa: E402
from liveframe.train.trainer import TrainConfig, train  # noqa: E402
from tests.test_train import SIZE, make_learnable_dataset  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("export")
    ds = make_learnable_dataset(d / "ds.npz")
    ck = d / "ck.pt"
    train(ds, ck, TrainConfig(kind="pcm", layers="I,16,L", epochs=6, batch_size=64, lr=3e-3),
          threads=1, quiet=True)
    return ck


def test_export_parity_spec_and_sound(checkpoint, tmp_path):
    out = export_checkpoint(checkpoint, tmp_path / "b.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.onnx"]
    brain = Brain.load(out)
    ck = load_checkpoint(checkpoint)
    spec, model = state_from_checkpoint(ck)
    # the spec is the checkpoint's, read back (nothing declared twice)
    for f in ("width", "height", "channels", "context", "framing", "sample_rate", "fps",
              "scale", "arch", "layers"):
        assert getattr(brain.spec, f) == getattr(spec, f), f
    assert brain.spec.provenance["dataset_fingerprint"] == spec.provenance["dataset_fingerprint"]
    # played audio = torch output * scale, within 1e-4, at several batch sizes
    rng = np.random.default_rng(3)
    for n in (1, 5, 33):
        x = rng.random((n, 1, SIZE, SIZE), dtype=np.float32)
        with torch.inference_mode():
            ref = model(torch.from_numpy(x)).numpy() * spec.scale
        np.testing.assert_allclose(brain.run(x), ref, atol=1e-4, rtol=0)
    # the brain learned the dataset: a bright frame sounds, a dark one is near silent
    dark = brain.run(np.full((1, 1, SIZE, SIZE), 5, np.uint8))
    bright = brain.run(np.full((1, 1, SIZE, SIZE), 250, np.uint8))
    loud, quiet = (float(np.sqrt(np.mean(np.square(a)))) for a in (bright, dark))
    assert loud > 0.015 and loud > 5 * quiet


def test_export_context_and_block_framing(tmp_path):
    ds = make_learnable_dataset(tmp_path / "ds.npz", framing="block", ticks=300)
    ck = tmp_path / "ck.pt"
    train(ds, ck, TrainConfig(kind="pcm", layers="I,8,L", epochs=1, context=2), threads=1,
          quiet=True)
    brain = Brain.load(export_checkpoint(ck, tmp_path / "ctx.onnx"))
    assert brain.spec.context == 2 and brain.spec.framing == "block"
    assert brain.spec.input_shape == (3, SIZE, SIZE) and brain.spec.length == 735
    assert brain.spec.layers == (3 * SIZE * SIZE, 8, 735)
    assert brain.run(np.zeros((4, 3, SIZE, SIZE), np.float32)).shape == (4, 735)


def test_cli_and_tool_export(checkpoint, tmp_path, capsys):
    out = tmp_path / "cli.onnx"
    assert main(["export", str(checkpoint), "-o", str(out)]) == 0
    Brain.load(out)
    r = subprocess.run([sys.executable, str(REPO / "tools" / "export_onnx.py"), str(checkpoint),
                        "-o", str(tmp_path / "tool.onnx")], cwd=tmp_path,
                       capture_output=True, check=False, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "parity" in r.stderr
    Brain.load(tmp_path / "tool.onnx")
    capsys.readouterr()
    assert main(["info", "--json", str(tmp_path / "tool.onnx")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["output"]["scale"] == load_checkpoint(checkpoint)["spec"]["output"]["scale"]


def _poisoned(checkpoint: Path, out: Path, value: float) -> Path:
    ck = load_checkpoint(checkpoint)
    w = ck["best_model"]
    key = max(k for k in w if k.endswith("weight"))
    w[key] = w[key].clone()
    w[key][0, 0] = value
    save_checkpoint(ck, out)
    return out


def test_export_refuses_a_mismatch_and_leaves_nothing(checkpoint, tmp_path, capsys):
    """A diverged checkpoint (a NaN weight) cannot match: refused, exit 2, nothing on disk."""
    bad = _poisoned(checkpoint, tmp_path / "nan.pt", float("nan"))
    out_dir = tmp_path / "brains"
    out_dir.mkdir()
    with pytest.raises(ExportError, match="onnxruntime and torch differ"):
        export_checkpoint(bad, out_dir / "nan.onnx")
    assert main(["export", str(bad), "-o", str(out_dir / "nan.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert "differ by nan" in err and "not writing" in err and "\n" not in err
    assert list(out_dir.iterdir()) == [], "no brain and no temporary left"


def test_export_tolerance_is_enforced(checkpoint, tmp_path):
    # the same real comparison, with a tolerance no float computation can meet
    out = tmp_path / "b.onnx"
    with pytest.raises(ExportError, match=r"> -1"):
        export_checkpoint(checkpoint, out, tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_weights_that_do_not_fit_the_spec(checkpoint, tmp_path, capsys):
    ck = load_checkpoint(checkpoint)
    ck["spec"]["layers"] = [SIZE * SIZE, 32, 1470]  # the weights are 64-16-1470
    save_checkpoint(ck, tmp_path / "odd.pt")
    out = tmp_path / "odd.onnx"
    with pytest.raises(CheckpointError, match="weights do not fit its spec"):
        export_checkpoint(tmp_path / "odd.pt", out)
    assert main(["export", str(tmp_path / "odd.pt"), "-o", str(out)]) == 2
    assert "\n" not in capsys.readouterr().err.strip()
    assert not out.exists()


@pytest.mark.parametrize(
    "which, message",
    [
        ("missing", "no such checkpoint"),
        ("garbage", "not a liveframe checkpoint"),
        ("nofolder", "-o {out} cannot be written: folder {out.parent} does not exist"),
        ("isdir", "-o {out} is a directory"),
    ],
)
def test_export_bad_input_is_one_line(checkpoint, tmp_path, capsys, which, message):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00junk")
    src = {"missing": tmp_path / "nope.pt", "garbage": garbage}.get(which, checkpoint)
    out = {"nofolder": tmp_path / "no" / "b.onnx", "isdir": tmp_path}.get(
        which, tmp_path / "b.onnx")
    assert main(["export", str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    message = message.format(out=out)
    assert err.startswith("liveframe export: ")
    assert message in err and "\n" not in err and "Traceback" not in err, err
    assert not (tmp_path / "b.onnx").exists()
