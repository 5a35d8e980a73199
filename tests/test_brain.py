from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from liveframe.core.brain import Brain, available_brains, resolve_brain_path
from liveframe.core.shipped import shipped_file, shipped_folder
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


def test_shipped_files_are_package_data_not_repository_paths():
    brains = shipped_folder("brains")
    assert brains.is_dir() and (brains / "__init__.py").is_file()
    assert shipped_file("patches/liveframe-render.csd").is_file()
    assert shipped_file("brains/demo.mkv").parent == brains
    with pytest.raises(ValueError, match="folder='tests'"):
        shipped_file("tests/helpers.py")


def test_brain_names_look_in_working_folder_first_then_shipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = {p.stem: p for p in shipped_folder("brains").glob("*.onnx")}
    assert available_brains() == dict(sorted(shipped.items()))
    for name, path in shipped.items():
        assert resolve_brain_path(name) == path
    (tmp_path / "brains").mkdir()
    mine = make_brain(tmp_path / "brains" / "mine.onnx")
    default = make_brain(tmp_path / "brains" / "default.onnx", freq=882.0)
    found = available_brains()
    assert list(found) == sorted({*shipped, "mine", "default"})
    assert found["mine"] == Path("brains/mine.onnx")
    assert found["default"] == Path("brains/default.onnx")
    assert resolve_brain_path("mine").resolve() == mine
    # ./brains/ wins over a shipped brain of the same name, and None means "default"
    assert resolve_brain_path(None).resolve() == default
    # paths are paths, whether or not they exist
    assert resolve_brain_path(str(mine)) == mine
    assert resolve_brain_path("elsewhere/x.onnx") == Path("elsewhere/x.onnx")
    with pytest.raises(BrainError, match=r"no brain named 'nothere' .*\(there are: default, mine"):
        resolve_brain_path("nothere")


def test_cli_info_finds_brains_by_name_from_any_folder(tmp_path):
    (tmp_path / "brains").mkdir()
    make_brain(tmp_path / "brains" / "blocky.onnx", framing="block")
    r = subprocess.run([sys.executable, "-m", "liveframe", "info", "--json", "blocky"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["output"]["framing"] == "block"
    r = subprocess.run([sys.executable, "-m", "liveframe", "info", "nothere"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "'nothere'" in r.stderr


# -- crafted brains: refused in one line, nothing allocated or blocked ---------------------
def _with_spec_text(tmp_path, text: str):
    p = make_brain(tmp_path / "c.onnx")
    model = onnx.load(str(p))
    for m in model.metadata_props:
        if m.key == "liveframe":
            m.value = text
    onnx.save(model, str(p))
    return p


@pytest.mark.parametrize("text, words", [
    ("[" * 20_000 + "]" * 20_000, "nests deeper"),
    ("x" * 70_000, "at most 65536"),
    ('{"fps": Infinity}', "Infinity is not a number"),
])
def test_crafted_spec_texts_are_refused(tmp_path, text, words):
    with pytest.raises(BrainError, match=words):
        Brain.load(_with_spec_text(tmp_path, text))


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d.update(fps=1e400), "fps=inf must be a number in 1..1000"),
    (lambda d: d.update(fps=31), "is not a whole number of samples"),
    (lambda d: (d.update(fps=29.97), d["output"].pop("length")),
     "is not a whole number of samples"),
    (lambda d: d["input"].update(channels=True), "input.channels=True must be one of 1, 3"),
    (lambda d: d.update(sample_rate=30_000_000_000), "sample_rate=30000000000"),
    (lambda d: d["input"].update(width=65536, height=65536), "input.width=65536"),
    (lambda d: d["input"].update(context=10**1000), "input.context="),
    (lambda d: d.update(layers=[1e999]), "layers[]=inf"),
    (lambda d: d.update(layers="abc"), "layers must be a list"),
    (lambda d: d.update(provenance=[1]), "provenance must be a JSON object"),
    (lambda d: d["output"].update(scale=float("nan")), "output.scale=nan"),
    (lambda d: d.update(input=[1, 2]), "input and output must be JSON objects"),
])
def test_crafted_spec_values_are_refused_in_one_line(mutate, words):
    d = BrainSpec().to_dict()
    mutate(d)
    with pytest.raises(BrainError) as e:
        BrainSpec.from_dict(d, where="b.onnx")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_only_regular_files_of_bounded_size_are_read(tmp_path, monkeypatch):
    import os

    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    with pytest.raises(BrainError, match="not a regular file"):
        Brain.load(fifo)  # refused before it is opened: a FIFO would block forever
    with pytest.raises(BrainError, match="not a regular file"):
        Brain.load("/dev/zero")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(BrainError, match="is empty"):
        Brain.load(empty)
    from liveframe.core import brain as B

    monkeypatch.setattr(B, "MAX_BRAIN_BYTES", 1000)
    with pytest.raises(BrainError, match="a brain is at most"):
        Brain.load(make_brain(tmp_path / "big.onnx"))


def test_a_fixed_batch_or_a_double_input_is_refused(tmp_path):
    with pytest.raises(BrainError, match="batch is fixed at 2"):
        Brain.load(make_brain(tmp_path / "f.onnx", fixed_batch=True))
    p = make_brain(tmp_path / "d.onnx")
    model = onnx.load(str(p))
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
    onnx.save(model, str(p))
    with pytest.raises(BrainError, match="not float32"):
        Brain.load(p)


def test_a_reader_that_goes_away_is_not_a_traceback(tmp_path):
    # stdout is a pipe whose reader has already closed (`liveframe info | head`, head done)
    p = make_brain(tmp_path / "t.onnx")
    code = ("import os, sys; r, w = os.pipe(); os.close(r); os.dup2(w, 1); "
            "from liveframe.cli import main; sys.exit(main(['info', sys.argv[1]]))")
    r = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr


def test_shipped_brains_carry_no_build_machine_paths() -> None:
    """The spec of a shipped brain names its data and checkpoint by file name only: no
    folder of the machine (temporary or private) it was built on."""
    from liveframe.core.brain import available_brains

    shipped = available_brains()
    assert {"default", "shapes"} <= set(shipped)
    for name, path in shipped.items():
        text = Brain.load(path).spec.to_json()
        for folder in ("/tmp/", "/work/", "/root/", "/home/", "build/"):
            assert folder not in text, (name, folder)
