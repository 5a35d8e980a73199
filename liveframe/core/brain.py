"""The brain file: an ONNX model that carries its own contract.

A brain is an ONNX model whose ``metadata_props`` hold a JSON spec under the key
``liveframe`` (see DESIGN.md). The spec says what the model eats and what it plays:

.. code-block:: json

    {"format": "liveframe-brain", "version": 1,
     "input": {"width": 64, "height": 64, "channels": 1, "context": 0},
     "output": {"kind": "pcm", "framing": "grain", "length": 1470, "scale": 1.0},
     "sample_rate": 22050, "fps": 30,
     "arch": "shallow", "layers": [4096, 1000, 1470],
     "provenance": {"data": "...", "date": "...", "loss": "mse", "val_loss": 0.01}}

The model has one input ``frames`` of shape ``[N, channels * (context + 1), height, width]``
(float32 in [0, 1], the current frame last) and one output ``audio`` of shape
``[N, length]``; the audio played is ``audio * scale``. N is dynamic so offline render can
batch. :meth:`Brain.load` refuses, in one line, a file whose spec is missing or disagrees
with the model's shapes. The runtime needs onnxruntime only, never torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe import constants as C
from liveframe.errors import BrainError


@dataclass(frozen=True)
class BrainSpec:
    """What a brain eats and plays. One source of truth, stored inside the ONNX file."""

    width: int = C.FRAME_SIZE
    height: int = C.FRAME_SIZE
    channels: int = 1
    context: int = 0
    kind: str = "pcm"
    framing: str = "grain"
    sample_rate: int = C.SAMPLE_RATE
    fps: float = C.FPS
    scale: float = 1.0
    arch: str = "custom"
    layers: tuple[int, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def hop(self) -> int:
        """Samples per tick at the brain rate (735 at 22050 Hz and 30 fps)."""
        return hop_length(self.sample_rate, self.fps)

    @property
    def length(self) -> int:
        """Samples per output block: ``2 * hop`` for ``grain``, ``hop`` for ``block``."""
        return 2 * self.hop if self.framing == "grain" else self.hop

    @property
    def in_channels(self) -> int:
        """Input planes: ``channels * (context + 1)``."""
        return self.channels * (self.context + 1)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.height, self.width)

    def compatible_with(self, other: BrainSpec) -> bool:
        """True when ``other`` can replace this brain live without changing the synthesis."""
        return (
            self.sample_rate == other.sample_rate
            and self.fps == other.fps
            and self.framing == other.framing
            and self.kind == other.kind
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": C.SPEC_FORMAT,
            "version": C.SPEC_VERSION,
            "input": {
                "width": self.width,
                "height": self.height,
                "channels": self.channels,
                "context": self.context,
            },
            "output": {
                "kind": self.kind,
                "framing": self.framing,
                "length": self.length,
                "scale": self.scale,
            },
            "sample_rate": self.sample_rate,
            "fps": self.fps,
            "arch": self.arch,
            "layers": list(self.layers),
            "provenance": dict(self.provenance),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "spec") -> BrainSpec:
        """Validate and build a spec; every problem is a one-line :class:`BrainError`."""
        try:
            if d.get("format") != C.SPEC_FORMAT:
                raise ValueError(f"format is {d.get('format')!r}, expected {C.SPEC_FORMAT!r}")
            if int(d.get("version", 0)) > C.SPEC_VERSION:
                raise ValueError(
                    f"spec version {d['version']} is newer than this liveframe "
                    f"(reads up to {C.SPEC_VERSION}); upgrade liveframe"
                )
            inp, out = d["input"], d["output"]
            spec = cls(
                width=_positive_int(inp["width"], "input.width"),
                height=_positive_int(inp["height"], "input.height"),
                channels=_choice(int(inp["channels"]), (1, 3), "input.channels"),
                context=_nonneg_int(inp.get("context", 0), "input.context"),
                kind=_choice(out["kind"], ("pcm",), "output.kind"),
                framing=_choice(out["framing"], C.FRAMINGS, "output.framing"),
                sample_rate=_positive_int(d["sample_rate"], "sample_rate"),
                fps=_positive_float(d["fps"], "fps"),
                scale=_positive_float(out.get("scale", 1.0), "output.scale"),
                arch=str(d.get("arch", "custom")),
                layers=tuple(int(x) for x in d.get("layers", ())),
                provenance=dict(d.get("provenance", {})),
            )
            if "length" in out and int(out["length"]) != spec.length:
                raise ValueError(
                    f"output.length={out['length']} but {spec.framing} framing at "
                    f"{spec.sample_rate} Hz / {spec.fps} fps needs {spec.length}"
                )
        except KeyError as e:
            raise BrainError(f"{where}: spec lacks the field {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise BrainError(f"{where}: bad spec: {e}") from None
        return spec

    @classmethod
    def from_json(cls, text: str, *, where: str = "spec") -> BrainSpec:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise BrainError(f"{where}: spec is not valid JSON ({e.msg})") from None
        if not isinstance(d, dict):
            raise BrainError(f"{where}: spec is not a JSON object")
        return cls.from_dict(d, where=where)


def hop_length(sample_rate: int, fps: float) -> int:
    """Samples per tick; refuses rates that do not divide into whole samples."""
    hop = sample_rate / fps
    if abs(hop - round(hop)) > 1e-9 or hop < 1:
        raise ValueError(f"sample_rate={sample_rate} / fps={fps} is not a whole number of samples")
    return int(round(hop))


def _positive_int(v: Any, name: str) -> int:
    i = int(v)
    if i <= 0 or i != v:
        raise ValueError(f"{name}={v!r} must be a positive integer")
    return i


def _nonneg_int(v: Any, name: str) -> int:
    i = int(v)
    if i < 0 or i != v:
        raise ValueError(f"{name}={v!r} must be a non-negative integer")
    return i


def _positive_float(v: Any, name: str) -> float:
    f = float(v)
    if not np.isfinite(f) or f <= 0:
        raise ValueError(f"{name}={v!r} must be a positive number")
    return f


def _choice(v: Any, choices: tuple[Any, ...], name: str) -> Any:
    if v not in choices:
        raise ValueError(f"{name}={v!r} must be one of {', '.join(map(str, choices))}")
    return v


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
        """Load and validate a brain file; a bad file is one :class:`BrainError` line."""
        p = Path(path)
        if not p.exists():
            raise BrainError(f"{p}: no such brain file (see brains/ or `make brains`)")
        if p.is_dir():
            raise BrainError(f"{p}: is a directory, not a brain file")
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
        # One run proves the declared shapes, before a performer depends on it.
        out = brain.run(np.zeros((1, *spec.input_shape), np.float32))
        if out.shape != (1, spec.length):
            raise BrainError(f"{p}: model outputs {out.shape[1:]}, spec says ({spec.length},)")
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
            Audio blocks at ``spec.sample_rate``, already multiplied by ``spec.scale``.
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
        if self.spec.scale != 1.0:
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
    if ishape[0] not in (None, 0) and ishape[0] != 1:
        raise BrainError(f"{p}: model input batch is fixed at {ishape[0]}; export with dynamic N")
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


def resolve_brain_path(name: str | os.PathLike[str] | None) -> Path:
    """A brain by path, or by name in ``brains/`` (``default`` -> ``brains/default.onnx``)."""
    if name is None:
        return C.DEFAULT_BRAIN
    p = Path(name)
    if p.exists() or p.suffix == ".onnx" or os.sep in str(name):
        return p
    return C.BRAINS_DIR / f"{name}.onnx"


def spec_as_dict(spec: BrainSpec) -> dict[str, Any]:
    """Plain dict of the dataclass fields (for checkpoints and logs)."""
    d = asdict(spec)
    d["layers"] = list(spec.layers)
    return d


def add_info_arguments(parser: Any) -> None:
    parser.add_argument("brain", nargs="?", default=None, help="brain file or name in brains/")


def run_info(args: Any) -> int:
    brain = Brain.load(resolve_brain_path(args.brain))
    print(json.dumps(brain.spec.to_dict(), indent=2, sort_keys=True))
    return 0
