"""Toy brains: tiny ONNX graphs with known outputs, built without torch.

For tests, benchmarks and tools that need a real brain file whose sound is known exactly:
a fixed block (by default a tone), optionally times the frame's mean brightness.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.core.brain import attach_spec
from liveframe.core.spec import BrainSpec
from liveframe.core.synth import hann

OPSET = 18


def tone_block(freq: float, spec: BrainSpec, *, amp: float = 0.3) -> npt.NDArray[np.float32]:
    """One block of a sine at ``freq`` Hz as the spec's framing wants it.

    Parameters
    ----------
    freq : float
        Hz. The tone is phase-continuous across ticks when ``freq * hop / sr`` is whole.
    spec : BrainSpec
    amp : float
        Peak amplitude.

    Returns
    -------
    ndarray, shape (spec.length,), float32
        ``grain`` framing: centred on the tick and Hann-windowed; ``block``: from the tick.
    """
    frame = spec.frame
    n = np.arange(frame.length) - frame.lead
    tone = amp * np.sin(2 * np.pi * freq * n / spec.sample_rate)
    if frame.windowed:
        tone = tone * hann(frame.length)
    return tone.astype(np.float32)


def tone_spectrum(freq: float, spec: BrainSpec, *, amp: float = 0.3) -> npt.NDArray[np.float32]:
    """A spectrum brain's output for a steady sine at ``freq`` Hz: ``frames`` equal rows.

    Returns
    -------
    ndarray, shape (spec.length,), float32
        Natural-log magnitudes (:mod:`liveframe.core.spectral`), floored.
    """
    from liveframe.core.spectral import frame_centers, stft_of

    stft = stft_of(spec)
    n = np.arange(8 * spec.n_fft)
    x = amp * np.sin(2 * np.pi * freq * n / spec.sample_rate)
    row = stft.log_magnitude(x, [4 * spec.n_fft])[0]
    assert frame_centers(spec, 1).shape[0] == spec.frames
    return np.tile(row, spec.frames).astype(np.float32)


def make_brain(
    path: str | os.PathLike[str],
    *,
    block: npt.NDArray[np.floating[Any]] | None = None,
    freq: float = 441.0,
    amp: float = 0.3,
    brightness: bool = False,
    framing: str = "grain",
    value: float | None = None,
    spec_overrides: dict[str, Any] | None = None,
    fixed_batch: bool = False,
    nan_when_black: bool = False,
) -> Path:
    """Write an ONNX brain whose output is known, and return its path.

    Parameters
    ----------
    path : path-like
        The ``.onnx`` to write.
    block : ndarray, shape (length,), optional
        What the brain outputs for every frame; by default :func:`tone_block`
        (``freq``, ``amp``).
    brightness : bool
        Multiply the block by the frame's mean brightness in [0, 1] (black is silent).
    framing : {"grain", "block"}
        (A spectrum brain: ``spec_overrides={"kind": "spectrum"}``; its default output is
        :func:`tone_spectrum`.)
    value : float, optional
        Fill the block with this value instead (e.g. nan or 1e6, to test the guards).
    spec_overrides : dict, optional
        Other :class:`BrainSpec` fields (``width``, ``sample_rate``, ``context`` ...).
    fixed_batch : bool
        Declare a fixed batch of 2 instead of a dynamic N (a brain render must refuse).
    nan_when_black : bool
        A pcm brain that plays its block, and NaN for a black picture (brightness times
        the block, divided by the brightness: 0 / 0).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    spec = BrainSpec(framing=framing, arch="test", **(spec_overrides or {}))
    if block is None:
        block = (tone_spectrum(freq, spec, amp=amp) if spec.spectral
                 else tone_block(freq, spec, amp=amp))
    if value is not None:
        block = np.full(spec.length, value, np.float32)
    n: str | int = 2 if fixed_batch else "N"
    x = helper.make_tensor_value_info(C.INPUT_NAME, TensorProto.FLOAT, [n, *spec.input_shape])
    y = helper.make_tensor_value_info(C.OUTPUT_NAME, TensorProto.FLOAT, [n, spec.length])
    inits = [
        numpy_helper.from_array(np.asarray(block, np.float32).reshape(1, -1), "tone"),
        numpy_helper.from_array(np.array([-1, 1], np.int64), "shape"),
        numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
    ]
    nodes = [
        helper.make_node("ReduceMean", [C.INPUT_NAME, "axes"], ["m"], keepdims=1),
        helper.make_node("Reshape", ["m", "shape"], ["m2"]),
    ]
    if brightness and spec.spectral:  # floor + brightness * (tone - floor): black is silent
        floor = np.float32(np.log(C.LOG_FLOOR))
        inits[0] = numpy_helper.from_array(
            (np.asarray(block, np.float32) - floor).reshape(1, -1), "tone")
        inits.append(numpy_helper.from_array(np.full((1, 1), floor, np.float32), "floor"))
        nodes += [
            helper.make_node("Mul", ["m2", "tone"], ["mt"]),
            helper.make_node("Add", ["mt", "floor"], [C.OUTPUT_NAME]),
        ]
    elif nan_when_black:
        nodes += [
            helper.make_node("Mul", ["m2", "tone"], ["mt"]),
            helper.make_node("Div", ["mt", "m2"], [C.OUTPUT_NAME]),
        ]
    elif brightness:
        nodes.append(helper.make_node("Mul", ["m2", "tone"], [C.OUTPUT_NAME]))
    else:  # the output still depends on the input, so N flows through
        inits.append(numpy_helper.from_array(np.zeros((1, 1), np.float32), "zero"))
        nodes += [
            helper.make_node("Mul", ["m2", "zero"], ["z"]),
            helper.make_node("Add", ["z", "tone"], [C.OUTPUT_NAME]),
        ]
    graph = helper.make_graph(nodes, "toy_brain", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    attach_spec(model, spec)
    onnx.checker.check_model(model)
    out = Path(path)
    onnx.save(model, str(out))
    return out
