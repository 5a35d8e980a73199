"""A loaded brain: an ONNX model run by onnxruntime, checked against its spec.

:meth:`Brain.load` refuses, in one line, a file whose spec (:mod:`liveframe.core.spec`) is
missing or disagrees with the model's shapes. The runtime needs onnxruntime only, never
torch.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.core.shipped import shipped_folder
from liveframe.core.spec import BrainSpec
from liveframe.errors import BrainError

MAX_BRAIN_BYTES = 256 << 20
"""Largest brain file read: 256 MiB (the 2015 deepest net is 38 MB of float32 weights)."""


def session_options(*, threads: int = 1) -> Any:
    """onnxruntime session options, set explicitly.

    One intra-op thread by default: a brain is small and the producer shares the machine
    with the audio callback and the capture thread; a second thread buys little and costs
    jitter. Sequential execution, all graph optimisations.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return so


class Brain:
    """A loaded brain: its spec and an onnxruntime session.

    Parameters
    ----------
    session : onnxruntime.InferenceSession
    spec : BrainSpec
    path : Path or None
    """

    def __init__(self, session: Any, spec: BrainSpec, path: Path | None = None) -> None:
        self.session = session
        self.spec = spec
        self.path = path
        self.name = path.stem if path is not None else "brain"
        self._input = session.get_inputs()[0].name
        self._output = session.get_outputs()[0].name

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, threads: int = 1) -> Brain:
        """Load and validate a brain file; a bad file is one :class:`BrainError` line.

        Only a regular file of at most :data:`MAX_BRAIN_BYTES` is read (a FIFO or a device
        is refused before it is opened, so nothing blocks or grows without bound); the
        spec is validated before the model is run, and the model is run once with a batch
        of two before the brain is handed out.
        """
        p = Path(path)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise BrainError(f"{p}: no such brain file (see brains/ or `make brains`)") from None
        except OSError as e:
            raise BrainError(f"{p}: cannot read it ({e.strerror})") from None
        if stat.S_ISDIR(st.st_mode):
            raise BrainError(f"{p}: is a directory, not a brain file")
        if not stat.S_ISREG(st.st_mode):
            raise BrainError(f"{p}: is not a regular file (a pipe or a device?); give a .onnx "
                             "file")
        if st.st_size > MAX_BRAIN_BYTES:
            raise BrainError(f"{p}: is {st.st_size / 2**20:.0f} MiB; a brain is at most "
                             f"{MAX_BRAIN_BYTES >> 20} MiB")
        if st.st_size == 0:
            raise BrainError(f"{p}: is empty, not an ONNX brain")
        try:
            import onnx

            model = onnx.load(str(p), load_external_data=False)
        except Exception as e:  # onnx raises DecodeError, ValueError, ...
            raise BrainError(f"{p}: not an ONNX brain ({type(e).__name__})") from None
        meta = {m.key: m.value for m in model.metadata_props}
        if C.SPEC_KEY not in meta:
            raise BrainError(
                f"{p}: ONNX model has no liveframe spec in its metadata "
                "(export it with tools/export_onnx.py)"
            )
        spec = BrainSpec.from_json(meta[C.SPEC_KEY], where=str(p))
        _check_shapes(model, spec, p)
        try:
            import onnxruntime as ort

            session = ort.InferenceSession(
                model.SerializeToString(),
                sess_options=session_options(threads=threads),
                providers=["CPUExecutionProvider"],
            )
        except Exception as e:
            raise BrainError(f"{p}: onnxruntime cannot run it ({str(e).splitlines()[0]})") from None
        brain = cls(session, spec, p)
        # One run of a batch of two proves the declared shapes, before a performer (or a
        # batched render) depends on them.
        try:
            y = session.run([brain._output],
                            {brain._input: np.zeros((2, *spec.input_shape), np.float32)})[0]
        except Exception as e:
            raise BrainError(f"{p}: the model fails on a batch of pictures "
                             f"({str(e).splitlines()[0][:120]})") from None
        if np.shape(y) != (2, spec.length):
            raise BrainError(f"{p}: model outputs {np.shape(y)} for 2 pictures, the spec says "
                             f"(2, {spec.length}); export with a dynamic batch N")
        return brain

    def run(self, frames: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32]:
        """Run a batch.

        Parameters
        ----------
        frames : ndarray, shape (N, C, H, W) or (C, H, W)
            float32 in [0, 1]; uint8 frames are scaled by 1/255.

        Returns
        -------
        ndarray, shape (N, length), float32
            pcm: audio blocks at ``spec.sample_rate``, already multiplied by ``spec.scale``;
            spectrum: log-magnitudes as the model made them (the decoder applies ``scale``).
            Not sanitised: the synthesis and the audio callback guard against NaN and blasts.
        """
        x = np.asarray(frames)
        if x.dtype == np.uint8:
            x = x.astype(np.float32) * np.float32(1 / 255)
        elif x.dtype != np.float32:
            x = x.astype(np.float32)
        if x.ndim == 3:
            x = x[None]
        y = self.session.run([self._output], {self._input: np.ascontiguousarray(x)})[0]
        y = np.asarray(y, dtype=np.float32).reshape(x.shape[0], -1)
        if self.spec.scale != 1.0 and not self.spec.spectral:
            y *= np.float32(self.spec.scale)
        return y


def _dim(d: Any) -> int | None:
    return d.dim_value if d.HasField("dim_value") else None


def _check_shapes(model: Any, spec: BrainSpec, p: Path) -> None:
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise BrainError(
            f"{p}: a brain has one input and one output, this model has "
            f"{len(inputs)} and {len(graph.output)}"
        )
    ishape = [_dim(d) for d in inputs[0].type.tensor_type.shape.dim]
    oshape = [_dim(d) for d in graph.output[0].type.tensor_type.shape.dim]
    want_in = list(spec.input_shape)
    if len(ishape) != 4 or ishape[1:] != want_in:
        raise BrainError(
            f"{p}: model input shape {ishape} does not match the spec [N, {want_in[0]}, "
            f"{want_in[1]}, {want_in[2]}] (channels*(context+1), height, width)"
        )
    if ishape[0] not in (None, 0):
        raise BrainError(f"{p}: model input batch is fixed at {ishape[0]}; export with dynamic N")
    if inputs[0].type.tensor_type.elem_type != 1:  # TensorProto.FLOAT
        raise BrainError(f"{p}: model input is not float32; a brain eats float32 pictures")
    if len(oshape) != 2 or oshape[1] != spec.length:
        raise BrainError(
            f"{p}: model output shape {oshape} does not match the spec [N, {spec.length}] "
            f"({spec.framing} framing at {spec.sample_rate} Hz / {spec.fps} fps)"
        )


def attach_spec(model: Any, spec: BrainSpec) -> Any:
    """Store ``spec`` in an ONNX model's metadata (replacing any earlier one)."""
    keep = [m for m in model.metadata_props if m.key != C.SPEC_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    entry = model.metadata_props.add()
    entry.key = C.SPEC_KEY
    entry.value = spec.to_json()
    return model


def resolve_brain_path(name: str | os.PathLike[str] | None = None) -> Path:
    """A brain by path, or by name: ``./brains/NAME.onnx`` first, then the shipped ones.

    Parameters
    ----------
    name : str or path-like, optional
        A file (anything that exists, ends in ``.onnx`` or holds a folder separator), or a
        name such as ``default``; None means :data:`~liveframe.constants.DEFAULT_BRAIN_NAME`.

    Returns
    -------
    Path
        A file given by path is returned as given (:meth:`Brain.load` checks it).

    Raises
    ------
    BrainError
        A name found neither in ``./brains/`` nor among the shipped brains.
    """
    if name is None:
        name = C.DEFAULT_BRAIN_NAME
    p = Path(name)
    try:
        exists = p.exists()
    except OSError as e:  # a name too long for the file system (ENAMETOOLONG), ...
        raise BrainError(f"{_short(name)}: not a brain ({e.strerror or e}); give a brain "
                         "name or an .onnx file") from None
    if exists or p.suffix == ".onnx" or os.sep in str(name):
        return p
    found = available_brains()
    if str(name) not in found:
        raise BrainError(
            f"no brain named {str(name)!r} in ./brains/ or the shipped brains "
            f"(there are: {', '.join(found) or 'none'})"
        )
    return found[str(name)]


def _short(name: str | os.PathLike[str], n: int = 60) -> str:
    """``name`` for a one-line message: at most ``n`` characters (a long one elided)."""
    s = str(name)
    return s if len(s) <= n else f"{s[: n - 20]}...{s[-17:]} ({len(s)} characters)"


def available_brains() -> dict[str, Path]:
    """Every brain a name can pick: ``{name: path}``, sorted by name.

    The shipped brains, then ``./brains/*.onnx`` (relative to the working folder), which
    win over a shipped brain of the same name.
    """
    found: dict[str, Path] = {}
    for folder in (shipped_folder("brains"), Path("brains")):
        if folder.is_dir():
            found.update((p.stem, p) for p in folder.glob("*.onnx") if p.is_file())
    return dict(sorted(found.items()))
