"""`liveframe train`: learning, the validation split, determinism, checkpoints and resume."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from liveframe.cli import main
from liveframe.data.dataset import save_dataset
from liveframe.errors import ParamError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from liveframe.core.context import ContextStack, context_plan  # noqa: E402
from liveframe.train.checkpoint import load_checkpoint  # noqa: E402
from liveframe.train.data import Batches, split_validation  # noqa: E402
from liveframe.train.trainer import TrainConfig, train  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SIZE = 8  # 8x8 frames keep the nets tiny
TINY = "I,16,L"


def make_learnable_dataset(
    path: Path, *, ticks: int = 600, sources: int = 2, framing: str = "grain", seed: int = 0
) -> Path:
    """Frames of one random brightness each; the target is a fixed tone times that brightness
    (RMS about 0.02, like quiet audio), so a linear net can learn it exactly."""
    rng = np.random.default_rng(seed)
    hop = 735
    length = 2 * hop if framing == "grain" else hop
    b = rng.random(ticks)
    frames = np.broadcast_to((b * 255).astype(np.uint8)[:, None, None, None],
                             (ticks, 1, SIZE, SIZE)).copy()
    tone = (0.05 * np.sin(2 * np.pi * 441 * np.arange(length) / 22050)).astype(np.float32)
    targets = (b[:, None] * tone[None]).astype(np.float32)
    bounds = np.linspace(0, ticks, sources + 1).astype(int)
    meta = dict(sample_rate=22050, fps=30, framing=framing, hop=hop, length=length,
                channels=1, width=SIZE, height=SIZE)
    return save_dataset(path, frames, targets, boundaries=bounds, meta=meta)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_learnable_dataset(tmp_path_factory.mktemp("ds") / "ds.npz")


def cfg(**kw: object) -> TrainConfig:
    base = dict(kind="pcm", layers=TINY, epochs=4, batch_size=64, lr=3e-3, seed=0, patience=50)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_training_lowers_validation_loss_and_saves_the_effective_config(dataset, tmp_path):
    ck_path = tmp_path / "ck.pt"
    res = train(dataset, ck_path, cfg(epochs=8), threads=1, quiet=True)
    vals = [h["val"] for h in res.history]
    assert len(vals) == 8
    assert res.best_val < 0.3 * vals[0], vals
    ck = load_checkpoint(ck_path)
    spec = ck["spec"]
    assert spec["input"] == {"width": SIZE, "height": SIZE, "channels": 1, "context": 0}
    assert spec["output"]["framing"] == "grain" and spec["output"]["length"] == 1470
    assert spec["sample_rate"] == 22050 and spec["fps"] == 30
    assert spec["layers"] == [SIZE * SIZE, 16, 1470] and spec["arch"] == "custom"
    # the scale is the RMS of the training targets, so the net learns O(1) values
    assert 0.01 < spec["output"]["scale"] < 0.04
    assert spec["provenance"]["data"] == str(dataset.resolve())
    assert spec["provenance"]["val_loss"] == pytest.approx(res.best_val)
    assert ck["config"]["lr"] == 3e-3 and ck["config"]["batch_size"] == 64
    assert ck["epoch"] == 8 and ck["best_epoch"] == res.best_epoch
    assert set(ck["best_model"]) == set(ck["model"])


def test_validation_stretches_are_contiguous_and_disjoint_from_training():
    segments = [(0, 900), (900, 1000), (1000, 4000)]
    train_idx, val_idx, stretches = split_validation(segments, 0.1, guard=2)
    assert not set(train_idx) & set(val_idx)
    assert len(val_idx) == sum(b - a for a, b in stretches) == 90 + 10 + 300
    for a, b in stretches:
        src = [s for s in segments if s[0] <= a < s[1]]
        assert len(src) == 1 and b <= src[0][1], "a stretch never crosses a source boundary"
        assert np.array_equal(val_idx[(val_idx >= a) & (val_idx < b)], np.arange(a, b))
        # guard ticks on each side belong to neither set
        for g in (a - 2, a - 1, b, b + 1):
            if src[0][0] <= g < src[0][1]:
                assert g not in set(train_idx) and g not in set(val_idx)
    # every source is sampled, long ones at several places (beginning, middle, end)
    assert [sum(1 for a, _ in stretches if s <= a < e) for s, e in segments] == [3, 1, 3]
    # training is everything else
    assert len(train_idx) + len(val_idx) + 4 * len(stretches) >= 4000 - 8


def test_checkpoint_split_matches_the_dataset(dataset, tmp_path):
    train(dataset, tmp_path / "ck.pt", cfg(epochs=1, context=2), threads=1, quiet=True)
    ck = load_checkpoint(tmp_path / "ck.pt")
    assert ck["split"]["guard"] == 3
    stretches = [tuple(s) for s in ck["split"]["val"]]
    assert stretches and all(b - a >= 30 for a, b in stretches)
    prov = ck["spec"]["provenance"]
    assert prov["val_ticks"] == sum(b - a for a, b in stretches)
    assert prov["train_ticks"] + prov["val_ticks"] + 6 * len(stretches) == 600


def test_training_batches_see_the_context_the_pipeline_plays() -> None:
    # a 10 fps source then a 30 fps one on the 30 fps clock, as pickle stores them
    rng = np.random.default_rng(0)
    slow = [rng.integers(0, 256, (1, 8, 8), dtype=np.uint8) for _ in range(6)]
    fast = [rng.integers(0, 256, (1, 8, 8), dtype=np.uint8) for _ in range(7)]
    frames = np.stack([p for p in slow for _ in range(3)] + fast)
    segments = [(0, 18), (18, 25)]
    data = Batches(frames, np.zeros((25, 4), np.float32), context_plan(frames, segments, 2))
    x, _ = data.get(torch.arange(25))
    for lo, hi in segments:
        stack = ContextStack(2)  # what TickPipeline feeds the brain, source by source
        for k in range(lo, hi):
            want = stack.stack(frames[k]).reshape(-1)
            np.testing.assert_allclose(x[k].numpy(), want, atol=1e-6)
    # the slow source's held pictures still see motion; the fast one's first tick does not
    # reach into the slow source
    assert not np.allclose(x[4, -64:].numpy(), x[4, -128:-64].numpy())
    np.testing.assert_array_equal(x[18, :64].numpy(), x[18, -64:].numpy())


def test_same_seed_same_losses(dataset, tmp_path):
    a = train(dataset, tmp_path / "a.pt", cfg(epochs=2), threads=1, quiet=True).history
    b = train(dataset, tmp_path / "b.pt", cfg(epochs=2), threads=1, quiet=True).history
    c = train(dataset, tmp_path / "c.pt", cfg(epochs=2, seed=1), threads=1, quiet=True).history
    assert [(h["train"], h["val"]) for h in a] == [(h["train"], h["val"]) for h in b]
    assert [h["train"] for h in a] != [h["train"] for h in c]


def test_resume_continues_as_if_never_interrupted(dataset, tmp_path):
    full = train(dataset, tmp_path / "full.pt", cfg(epochs=4), threads=1, quiet=True)
    part = train(dataset, tmp_path / "part.pt", cfg(epochs=2), threads=1, quiet=True)
    assert load_checkpoint(tmp_path / "part.pt")["epoch"] == 2
    ck = load_checkpoint(tmp_path / "part.pt")
    assert ck["optimizer"]["state"], "the optimizer state is saved"
    more = train(dataset, tmp_path / "part.pt", cfg(epochs=4), resume=True,
                 explicit=("epochs",), threads=1, quiet=True)
    assert [h["epoch"] for h in more.history] == [1, 2, 3, 4]
    assert [h["train"] for h in more.history[:2]] == [h["train"] for h in part.history]
    # same seed, same thread count: the resumed run is the uninterrupted one, exactly
    assert [(h["train"], h["val"]) for h in more.history] == [
        (h["train"], h["val"]) for h in full.history]
    a, b = load_checkpoint(tmp_path / "full.pt"), load_checkpoint(tmp_path / "part.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


@pytest.mark.slow
def test_checkpoint_survives_a_kill_and_resume_continues(dataset, tmp_path):
    """A real SIGKILL mid-training: the checkpoint on disk is whole, and --resume goes on."""
    ck = tmp_path / "ck.pt"
    cmd = [sys.executable, "-m", "liveframe", "train", str(dataset), "-o", str(ck),
           "--kind", "pcm", "--layers", "I,256,L", "--epochs", "100000", "--patience", "100000",
           "--batch-size", "8", "--threads", "1", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if ck.exists() and load_checkpoint(ck)["epoch"] >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    saved = load_checkpoint(ck)  # whole, never torn
    done = saved["epoch"]
    assert done >= 2 and len(saved["history"]) == done
    # the only trace of the kill may be a temporary being written at that instant
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "ck.pt"]
    assert all(n.startswith(".ck.pt.") and n.endswith(".tmp") for n in leftovers), leftovers
    rc = main(["train", str(dataset), "-o", str(ck), "--resume", "--epochs", str(done + 1),
               "--threads", "1", "--quiet"])
    assert rc == 0
    after = load_checkpoint(ck)
    assert after["epoch"] == done + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"], "resume cleans up"
    assert [h["epoch"] for h in after["history"]] == list(range(1, done + 2))


def test_cli_train_writes_checkpoint_atomically(dataset, tmp_path, capsys):
    ck = tmp_path / "ck.pt"
    rc = main(["train", str(dataset), "-o", str(ck), "--kind", "pcm", "--layers", TINY,
               "--epochs", "2", "--batch-size", "64", "--threads", "1"])
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"], "no temporary left"
    err = capsys.readouterr().err
    assert "train" in err and "val" in err  # the progress bar shows both losses
    assert load_checkpoint(ck)["epoch"] == 2


def test_early_stopping(tmp_path):
    # targets that are noise, unrelated to the frames: the net can only overfit, so the
    # validation loss stops improving and patience ends the run long before --epochs
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (600, 1, SIZE, SIZE), dtype=np.uint8)
    targets = (0.05 * rng.standard_normal((600, 1470))).astype(np.float32)
    meta = dict(sample_rate=22050, fps=30, framing="grain", hop=735, length=1470,
                channels=1, width=SIZE, height=SIZE)
    ds = save_dataset(tmp_path / "noise.npz", frames, targets, meta=meta)
    res = train(ds, tmp_path / "ck.pt", cfg(epochs=50, patience=2, layers="I,256,L"),
                threads=1, quiet=True)
    assert res.stopped and res.epoch < 50
    ck = load_checkpoint(tmp_path / "ck.pt")
    assert ck["stopped"] and ck["bad_epochs"] == 2 and ck["epoch"] == res.epoch
    assert ck["best_val"] == min(h["val"] for h in ck["history"])
    assert ck["best_epoch"] == ck["epoch"] - 2
    # resuming a stopped run with the same patience has nothing to do
    again = train(ds, tmp_path / "ck.pt", cfg(epochs=50, patience=2, layers="I,256,L"),
                  resume=True, threads=1, quiet=True)
    assert again.stopped and load_checkpoint(tmp_path / "ck.pt")["epoch"] == res.epoch


@pytest.mark.parametrize(
    "args, message",
    [
        (["{missing}", "-o", "{out}"], "no such dataset"),
        (["{garbage}", "-o", "{out}"], "not a liveframe dataset"),
        (["{ds}", "-o", "{out}", "--arch", "huge"], "--arch 'huge' is unknown"),
        (["{ds}", "-o", "{out}", "--layers", "64,x,L"], "--layers '64,x,L' has 'x', which is not"),
        (["{ds}", "-o", "{out}", "--layers", "4096,500,L"], "first size must be the input size"),
        (["{ds}", "-o", "{out}", "--layers", "64,500,735"], "last size must be the output length"),
        (["{ds}", "-o", "{tmp}/nofolder/ck.pt"], "nofolder does not exist"),
        (["{ds}", "-o", "{tmp}"], "-o {tmp} is a directory"),
        (["{ds}", "-o", "{out}", "--resume"], "no checkpoint to resume"),
        (["{ds}", "-o", "{out}", "--val-fraction", "0"], "--val-fraction 0.0 must be"),
        (["{ds}", "-o", "{out}", "--val-seconds", "-1"], "--val-seconds -1.0 must be"),
        (["{ds}", "-o", "{out}", "--epochs", "0"], "--epochs 0 must be"),
    ],
)
def test_bad_input_is_one_line(dataset, tmp_path, capsys, args, message):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip at all")
    subs = dict(missing=str(tmp_path / "nope.npz"), garbage=str(garbage), ds=str(dataset),
                out=str(tmp_path / "ck.pt"), tmp=str(tmp_path))
    rc = main(["train", *(a.format(**subs) for a in args), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    message = message.format(**subs)
    assert err.startswith("liveframe train: ")
    assert message in err and "\n" not in err and "Traceback" not in err, err
    assert not (tmp_path / "ck.pt").exists()


def test_existing_checkpoint_is_not_clobbered_and_resume_refuses_other_options(
        dataset, tmp_path, capsys):
    ck = tmp_path / "ck.pt"
    assert main(["train", str(dataset), "-o", str(ck), "--kind", "pcm", "--layers", TINY,
                 "--epochs", "1", "--threads", "1", "--quiet"]) == 0
    before = ck.read_bytes()
    assert main(["train", str(dataset), "-o", str(ck), "--quiet"]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(["train", str(dataset), "-o", str(ck), "--resume", "--lr", "0.5",
                 "--quiet"]) == 2
    assert "--lr 0.5 disagrees with the checkpoint" in capsys.readouterr().err
    other = make_learnable_dataset(tmp_path / "other.npz", seed=5)
    assert main(["train", str(other), "-o", str(ck), "--resume", "--epochs", "2",
                 "--quiet"]) == 2
    assert "trained on other data" in capsys.readouterr().err
    assert ck.read_bytes() == before


def test_instrument_imports_and_explains_without_torch(dataset, tmp_path):
    """With torch blocked, the instrument imports, and `liveframe train` says how to get it."""
    code = f"""
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import liveframe.core.brain, liveframe.core.synth, liveframe.cli
from liveframe.cli import build_parser, main
build_parser("train"); build_parser("export")
assert "torch" not in [m for m, v in sys.modules.items() if v is not None]
assert main(["export", "ck.pt", "-o", "b.onnx"]) == 2
sys.exit(main(["train", {str(dataset)!r}, "-o", {str(tmp_path / 'ck.pt')!r}]))
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, check=False,
                       text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip()
    lines = err.splitlines()
    assert len(lines) == 2 and all("pip install -e '.[train]'" in ln for ln in lines), err
    assert lines[0].startswith("liveframe export:") and lines[1].startswith("liveframe train:")
    assert not (tmp_path / "ck.pt").exists()


def test_learning_rate_drops_after_lr_patience_epochs_without_a_better_validation(
        dataset, tmp_path):
    # a rate far too large: validation loss keeps failing to improve, so it must drop
    res = train(dataset, tmp_path / "ck.pt", cfg(epochs=8, lr=5.0, lr_patience=1, lr_factor=0.5),
                threads=1, quiet=True)
    best, drops = float("inf"), 0
    for prev, cur in zip(res.history, res.history[1:], strict=False):
        improved = prev["val"] < best
        best = min(best, prev["val"])
        assert cur["lr"] == pytest.approx(prev["lr"] * (1.0 if improved else 0.5)), res.history
        drops += not improved
    assert drops >= 1, res.history


def test_cosine_schedule_anneals_the_learning_rate_to_zero_at_the_last_epoch(dataset, tmp_path):
    res = train(dataset, tmp_path / "ck.pt", cfg(epochs=5, lr=1e-2, lr_schedule="cosine"),
                threads=1, quiet=True)
    want = [1e-2 * 0.5 * (1 + np.cos(np.pi * e / 5)) for e in range(5)]
    assert [h["lr"] for h in res.history] == pytest.approx(want)
    assert res.best_val < res.history[0]["val"]


@pytest.mark.parametrize(
    "config, message",
    [
        (dict(epochs=0), "epochs=0 must be 1 or more"),
        (dict(val_fraction=0.9), "val_fraction=0.9 must be in (0, 0.5]"),
        (dict(loss="l3"), "loss='l3' must be one of mse, l1 for a pcm brain"),
        (dict(loss="logmag"), "loss='logmag' must be one of mse, l1 for a pcm brain"),
        (dict(kind="wav"), "kind='wav' must be one of pcm, spectrum"),
        (dict(arch="huge", layers=None), "arch='huge' is unknown"),
        (dict(layers="64,x,L"), "layers='64,x,L' has 'x', which is not a size"),
    ],
)
def test_library_names_parameters_never_flags(dataset, tmp_path, config, message):
    with pytest.raises(ParamError) as e:
        train(dataset, tmp_path / "ck.pt", cfg(**config), threads=1, quiet=True)
    assert str(e.value).startswith(message) and "--" not in str(e.value), str(e.value)
    assert e.value.param == message.split("=")[0]
    assert not (tmp_path / "ck.pt").exists()
