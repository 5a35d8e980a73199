"""A checkpoint's best weights as an ONNX brain (``liveframe export CHECKPOINT -o BRAIN``).

The spec comes from the checkpoint (written there by ``liveframe train``): nothing is
declared twice, a ``spectrum`` checkpoint gives a spectrum brain. A pcm brain's scale stays
in ``spec.scale`` (the graph outputs normalised audio and
:meth:`liveframe.core.brain.Brain.run` multiplies by the scale); a spectrum brain's graph
outputs its log-magnitudes as they are (the decoder applies the scale, 1 when trained).
Before anything is written the ONNX model and the torch net run on the same random batch;
if they differ by more than the tolerance (1e-4) the export is refused and nothing appears
on disk. The file is written
under a temporary name, loaded back with :meth:`Brain.load`, and only then renamed.

Importable without torch; torch is imported when an export runs.
"""

from __future__ import annotations

import datetime as _dt
import io
import logging
import os
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from liveframe import constants as C
from liveframe.core.brain import Brain, attach_spec
from liveframe.errors import LiveframeError
from liveframe.train import check_output_file, require_torch
from liveframe.util.files import atomic_write

log = logging.getLogger(__name__)

TOLERANCE = 1e-4
OPSET = 17


class ExportError(LiveframeError):
    """The exported model does not reproduce the checkpoint's net."""


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    tolerance: float = TOLERANCE,
    batch: int = 8,
    seed: int = 0,
) -> Path:
    """Export a checkpoint's best weights to an ONNX brain.

    Parameters
    ----------
    checkpoint : path
        Written by ``liveframe train``.
    out : path
        The ``.onnx`` brain; written atomically, only after the parity check passes.
    tolerance : float
        Largest absolute difference allowed between onnxruntime and torch, both on the
        graph's output and on what :meth:`Brain.run` gives (pcm: output times
        ``spec.scale``; spectrum: the output).
    batch : int
        Size of the random parity batch (uniform frames in [0, 1], seeded).

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    CheckpointError
        A missing or foreign checkpoint, or weights that do not fit its spec.
    ExportError
        The exported model does not reproduce the net (nothing is written).
    ParamError
        ``out`` cannot be written.
    """
    require_torch("export")
    import onnx
    import onnxruntime as ort
    import torch

    from liveframe.core.brain import session_options
    from liveframe.train.checkpoint import (
        CheckpointError,
        load_checkpoint,
        state_from_checkpoint,
    )

    out_p = check_output_file(out, example="brains/NAME.onnx")

    ck = load_checkpoint(checkpoint)
    try:
        spec, model = state_from_checkpoint(ck)
    except (KeyError, RuntimeError, ValueError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{checkpoint}: weights do not fit its spec ({msg[:160]})") from None
    spec = replace(spec, provenance={
        **public_provenance(spec.provenance), "checkpoint": Path(checkpoint).name,
        "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    })

    dummy = torch.zeros((1, *spec.input_shape), dtype=torch.float32)
    buf = io.BytesIO()
    # The TorchScript exporter: the dynamo one needs onnxscript, which [train] does not pull
    # in. torch warns that this exporter is legacy, which is no news to a performer.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            torch.onnx.export(
                model, (dummy,), buf,
                input_names=[C.INPUT_NAME], output_names=[C.OUTPUT_NAME],
                dynamic_axes={C.INPUT_NAME: {0: "N"}, C.OUTPUT_NAME: {0: "N"}},
                opset_version=OPSET, do_constant_folding=True, dynamo=False,
            )
        except Exception as e:  # exporter failures are bugs or unsupported nets: say which
            raise ExportError(f"{checkpoint}: torch.onnx.export failed "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    model_proto = onnx.load_from_string(buf.getvalue())
    _declare_output(model_proto, spec.length)
    attach_spec(model_proto, spec)
    onnx.checker.check_model(model_proto)
    data = model_proto.SerializeToString()

    rng = np.random.default_rng(seed)
    x = rng.random((batch, *spec.input_shape), dtype=np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(data, sess_options=session_options(threads=1),
                                providers=["CPUExecutionProvider"])
    got = sess.run([C.OUTPUT_NAME], {C.INPUT_NAME: x})[0]
    gain = 1.0 if spec.spectral else spec.scale
    diff = _max_diff(got, ref, gain)
    if not diff <= tolerance:  # NaN compares false: refused too
        raise ExportError(
            f"{checkpoint}: onnxruntime and torch differ by {diff:.3g} (> {tolerance:g}) on "
            f"a random batch; not writing {out_p}"
        )
    with atomic_write(out_p) as (f, tmp):
        f.write(data)
        f.flush()
        brain = Brain.load(tmp)  # the runtime's own check, before the name appears
        played = brain.run(x)
        if not _max_abs(played - ref * np.float32(gain)) <= tolerance:
            raise ExportError(f"{checkpoint}: Brain.run of the exported file does not "
                              f"reproduce torch; not writing {out_p}")
    # said once the file is in place, so a refused write prints only its own line
    log.info("parity: onnxruntime vs torch max difference %.3g on %d random frames", diff, batch)
    return out_p


def _declare_output(model_proto: Any, length: int) -> None:
    """Declare the output ``[N, length]`` where the exporter left it symbolic (a reduction,
    such as the ``sources`` net's sum over cells, loses the length); the parity check that
    follows runs the graph and compares its real output with torch's."""
    dims = model_proto.graph.output[0].type.tensor_type.shape.dim
    if len(dims) == 2:
        if not dims[0].dim_value:
            dims[0].dim_param = "N"
        if not dims[1].dim_value:
            dims[1].ClearField("dim_param")
            dims[1].dim_value = int(length)


PATH_KEYS = ("data", "checkpoint")
"""Provenance entries that hold a path on the machine that trained the brain."""


def public_provenance(prov: dict[str, Any]) -> dict[str, Any]:
    """``prov`` with the training machine's paths cut to file names: a shipped brain does
    not carry the folders (temporary or private) it was built in."""
    out = dict(prov)
    for k in PATH_KEYS:
        if isinstance(out.get(k), str):
            out[k] = Path(out[k]).name
    if isinstance(out.get("sources"), list):
        out["sources"] = [Path(s).name if isinstance(s, str) and os.sep in s else s
                          for s in out["sources"]]
    return out


def _max_abs(a: Any) -> float:
    a = np.asarray(a, np.float64)
    if not np.all(np.isfinite(a)):
        return float("nan")
    return float(np.max(np.abs(a))) if a.size else 0.0


def _max_diff(got: Any, ref: Any, scale: float) -> float:
    """Largest difference on the raw output and on it times ``scale`` (NaN if any is NaN)."""
    if np.shape(got) != np.shape(ref):
        return float("inf")
    if not (np.all(np.isfinite(got)) and np.all(np.isfinite(ref))):
        return float("nan")
    d = np.asarray(got, np.float64) - np.asarray(ref, np.float64)
    return max(_max_abs(d), _max_abs(d * scale))
