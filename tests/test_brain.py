from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest

from liveframe.core.brain import Brain
from liveframe.core.spec import BrainSpec
from liveframe.errors import BrainError
from tests.helpers import make_brain, tone_block


def test_load_and_run_batch(tmp_path):
    p = make_brain(tmp_path / "tone.onnx", freq=441.0)
    brain = Brain.load(p)
    assert brain.spec.length == 1470 and brain.spec.hop == 735
    y = brain.run(np.zeros((5, 1, 64, 64), np.uint8))
    assert y.shape == (5, 1470)
    np.testing.assert_allclose(y[3], tone_block(441.0, brain.spec), atol=1e-6)


def test_brightness_brain_scales(tmp_path):
    brain = Brain.load(make_brain(tmp_path / "b.onnx", brightness=True))
    frames = np.stack([np.zeros((1, 64, 64), np.uint8), np.full((1, 64, 64), 255, np.uint8)])
    y = brain.run(frames)
    assert np.abs(y[0]).max() == 0 and np.abs(y[1]).max() > 0.2


def test_spec_roundtrip():
    s = BrainSpec(framing="block", context=2, channels=3, arch="deep", layers=(4096, 10))
    assert BrainSpec.from_json(s.to_json()) == s


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("sample_rate"), "lacks the field 'sample_rate'"),
        (lambda d: d["output"].update(framing="blob"), "output.framing='blob'"),
        (lambda d: d["output"].update(length=99), "output.length=99"),
        (lambda d: d.update(fps=0), "fps=0"),
        (lambda d: d.update(format="x"), "format is 'x'"),
    ],
)
def test_bad_spec_is_one_line(mutate, message):
    d = BrainSpec().to_dict()
    mutate(d)
    with pytest.raises(BrainError) as e:
        BrainSpec.from_dict(d, where="b.onnx")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_refuses_shape_mismatch(tmp_path):
    p = make_brain(tmp_path / "t.onnx")
    model = onnx.load(str(p))
    spec = BrainSpec(framing="block")  # model outputs 1470, spec says 735
    from liveframe.core.brain import attach_spec

    attach_spec(model, spec)
    onnx.save(model, str(p))
    with pytest.raises(BrainError, match="does not match the spec"):
        Brain.load(p)


def test_refuses_missing_spec_and_garbage(tmp_path):
    p = make_brain(tmp_path / "t.onnx")
    model = onnx.load(str(p))
    del model.metadata_props[:]
    onnx.save(model, str(p))
    with pytest.raises(BrainError, match="no liveframe spec"):
        Brain.load(p)
    g = tmp_path / "g.onnx"
    g.write_bytes(b"not a model at all" * 10)
    with pytest.raises(BrainError, match="not an ONNX brain"):
        Brain.load(g)
    with pytest.raises(BrainError, match="no such brain file"):
        Brain.load(tmp_path / "missing.onnx")


def test_cli_info_bad_brain_exit_2(tmp_path):
    g = tmp_path / "g.onnx"
    g.write_bytes(b"junk")
    r = subprocess.run(
        [sys.executable, "-m", "liveframe", "info", str(g)], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert str(g) in r.stderr
