"""Test brains and clips built without torch: small ONNX graphs with known outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from liveframe import constants as C
from liveframe.core.brain import attach_spec
from liveframe.core.spec import BrainSpec
from liveframe.core.synth import hann


def _save(graph: onnx.GraphProto, spec: BrainSpec, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    attach_spec(model, spec)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def tone_block(freq: float, spec: BrainSpec, amp: float = 0.3) -> np.ndarray:
    """One block of a sine at ``freq`` as the spec's framing wants it (grain: windowed)."""
    H, L = spec.hop, spec.length
    if spec.framing == "grain":
        # centred on the tick: phase continuous across ticks when freq*H/sr is whole
        n = np.arange(L) - H
        return (amp * np.sin(2 * np.pi * freq * n / spec.sample_rate) * hann(L)).astype(np.float32)
    n = np.arange(L)
    return (amp * np.sin(2 * np.pi * freq * n / spec.sample_rate)).astype(np.float32)


def make_brain(
    path: Path,
    *,
    block: np.ndarray | None = None,
    freq: float = 441.0,
    amp: float = 0.3,
    brightness: bool = False,
    framing: str = "grain",
    value: float | None = None,
    spec_overrides: dict | None = None,
    fixed_batch: bool = False,
) -> Path:
    """An ONNX brain whose output is ``block`` (default a tone), times the frame's mean
    brightness when ``brightness``; ``value`` (e.g. nan or 1e6) fills the block instead."""
    spec = BrainSpec(framing=framing, arch="test", **(spec_overrides or {}))
    if block is None:
        block = tone_block(freq, spec, amp)
    if value is not None:
        block = np.full(spec.length, value, np.float32)
    n = "N" if not fixed_batch else 2
    x = helper.make_tensor_value_info(C.INPUT_NAME, TensorProto.FLOAT, [n, *spec.input_shape])
    y = helper.make_tensor_value_info(C.OUTPUT_NAME, TensorProto.FLOAT, [n, spec.length])
    inits = [
        numpy_helper.from_array(block.reshape(1, -1).astype(np.float32), "tone"),
        numpy_helper.from_array(np.array([-1, 1], np.int64), "shape"),
        numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
    ]
    nodes = [
        helper.make_node("ReduceMean", [C.INPUT_NAME, "axes"], ["m"], keepdims=1),
        helper.make_node("Reshape", ["m", "shape"], ["m2"]),
    ]
    if brightness:
        nodes.append(helper.make_node("Mul", ["m2", "tone"], [C.OUTPUT_NAME]))
    else:
        inits.append(numpy_helper.from_array(np.zeros((1, 1), np.float32), "zero"))
        nodes += [
            helper.make_node("Mul", ["m2", "zero"], ["z"]),
            helper.make_node("Add", ["z", "tone"], [C.OUTPUT_NAME]),
        ]
    graph = helper.make_graph(nodes, "test_brain", [x], [y], initializer=inits)
    return _save(graph, spec, path)


def count_opens(monkeypatch, path: Path, run) -> int:  # noqa: ANN001
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
