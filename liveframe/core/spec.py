"""The brain's contract: its spec, and the framing rule every stage derives from it.


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
``[N, length]``. A ``pcm`` brain's output is audio (played as ``audio * scale``); a
``spectrum`` brain's is ``frames`` log-magnitude STFT frames per tick (``length = frames *
(n_fft // 2 + 1)``; magnitude ``scale * exp(audio)``), with the synthesis fields in its
output section:

.. code-block:: json

    "output": {"kind": "spectrum", "framing": "grain", "length": 1539, "scale": 1.0,
               "n_fft": 1024, "window": "hann", "frames": 3, "phase": "rtpghi"}

(:mod:`liveframe.core.spectral` says what the frames are and how they become audio).
N is dynamic so offline render can batch. :meth:`Brain.load` refuses, in one line, a file
whose spec is missing or disagrees with the model's shapes. The runtime needs onnxruntime
only, never torch.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liveframe import constants as C
from liveframe.errors import BrainError


@dataclass(frozen=True)
class Framing:
    """Where a pcm brain's block sits around its tick: the one place this rule is written.

    ``grain``: ``length = 2 * hop`` samples centred on the tick (``lead = hop`` samples
    before it), Hann-windowed by training, overlap-added at ``hop``; ``block``: ``hop``
    samples from the tick (``lead = 0``), the 2015 framing. Dataset targets, every synth's
    latency and the grain placements of the granular synth and the Csound bridge derive
    from these three numbers.

    Parameters
    ----------
    name : {"grain", "block"}
    hop : int
        Samples per tick at the brain rate.
    """

    name: str
    hop: int

    def __post_init__(self) -> None:
        if self.name not in C.FRAMINGS:
            raise ValueError(f"framing={self.name!r} must be one of {', '.join(C.FRAMINGS)}")
        if self.hop <= 0:
            raise ValueError(f"hop={self.hop} must be a positive integer")

    @property
    def length(self) -> int:
        """Samples per block: ``2 * hop`` (grain) or ``hop`` (block)."""
        return 2 * self.hop if self.name == "grain" else self.hop

    @property
    def lead(self) -> int:
        """Samples by which a block starts before its tick: ``hop`` (grain) or 0 (block)."""
        return self.hop if self.name == "grain" else 0

    @property
    def windowed(self) -> bool:
        """True when blocks come Hann-windowed from training (grain framing)."""
        return self.name == "grain"

    def span(self, k: int) -> tuple[int, int]:
        """Sample range ``[lo, hi)`` at the brain rate of tick ``k``'s block.

        Sample ``n`` is at time ``n / sr`` after the source's origin, tick ``k`` at
        ``k / fps``: ``[k*hop - lead, k*hop - lead + length)``.
        """
        lo = k * self.hop - self.lead
        return lo, lo + self.length

@dataclass(frozen=True)
class BrainSpec:
    """What a brain eats and plays. One source of truth, stored inside the ONNX file."""

    width: int = C.FRAME_SIZE
    height: int = C.FRAME_SIZE
    channels: int = 1
    context: int = 0
    kind: str = "pcm"
    framing: str = "grain"
    n_fft: int = C.N_FFT
    window: str = "hann"
    frames: int = C.SPECTRAL_FRAMES
    phase: str = C.PHASES[0]
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
    def frame(self) -> Framing:
        """The framing rule of this brain's output (:class:`Framing`)."""
        return Framing(self.framing, self.hop)

    @property
    def spectral(self) -> bool:
        """True for a ``spectrum`` brain."""
        return self.kind == "spectrum"

    @property
    def bins(self) -> int:
        """Spectrum brains: magnitudes per STFT frame (``n_fft // 2 + 1``)."""
        return self.n_fft // 2 + 1

    @property
    def length(self) -> int:
        """Values per model output row.

        pcm: samples per block (``2 * hop`` for ``grain``, ``hop`` for ``block``);
        spectrum: ``frames * bins`` log-magnitudes.
        """
        if self.spectral:
            return self.frames * self.bins
        return self.frame.length

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

    def _output_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "framing": self.framing,
            "length": self.length,
            "scale": self.scale,
        }
        if self.spectral:
            out.update(n_fft=self.n_fft, window=self.window, frames=self.frames,
                       phase=self.phase)
        return out

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
            "output": self._output_dict(),
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
            if not isinstance(inp, dict) or not isinstance(out, dict):
                raise ValueError("input and output must be JSON objects")
            kind = _choice(out["kind"], C.KINDS, "output.kind")
            extra: dict[str, Any] = {}
            if kind == "spectrum":
                extra = {
                    "n_fft": _bounded_int(out["n_fft"], "output.n_fft", 16, 16384),
                    "window": _choice(out.get("window", "hann"), C.WINDOWS, "output.window"),
                    "frames": _bounded_int(out["frames"], "output.frames", 1, 64),
                    "phase": _choice(out.get("phase", C.PHASES[0]), C.PHASES, "output.phase"),
                }
            layers = d.get("layers", ())
            if not isinstance(layers, (list, tuple)) or len(layers) > 64:
                raise ValueError("layers must be a list of at most 64 sizes")
            provenance = d.get("provenance", {})
            if not isinstance(provenance, dict):
                raise ValueError("provenance must be a JSON object")
            spec = cls(
                width=_bounded_int(inp["width"], "input.width", 1, MAX_SIDE),
                height=_bounded_int(inp["height"], "input.height", 1, MAX_SIDE),
                channels=_choice(inp["channels"], (1, 3), "input.channels"),
                context=_bounded_int(inp.get("context", 0), "input.context", 0, MAX_CONTEXT),
                kind=kind,
                framing=_choice(out["framing"], C.FRAMINGS, "output.framing"),
                sample_rate=_bounded_int(d["sample_rate"], "sample_rate", 1000, 384000),
                fps=_bounded_float(d["fps"], "fps", 1.0, 1000.0),
                scale=_bounded_float(out.get("scale", 1.0), "output.scale", 1e-12, 1e12),
                arch=str(d.get("arch", "custom"))[:100],
                layers=tuple(_bounded_int(x, "layers[]", 1, 1 << 20) for x in layers),
                provenance=dict(provenance),
                **extra,
            )
            if spec.spectral:
                _check_spectral(spec)
            hop_length(spec.sample_rate, spec.fps)  # whole samples a tick, length given or not
            if "length" in out and int(out["length"]) != spec.length:
                what = (f"{spec.frames} frames of {spec.bins} bins" if spec.spectral else
                        f"{spec.framing} framing at {spec.sample_rate} Hz / {spec.fps} fps")
                raise ValueError(f"output.length={out['length']} but {what} needs {spec.length}")
        except KeyError as e:
            raise BrainError(f"{where}: spec lacks the field {e.args[0]!r}") from None
        except (TypeError, ValueError, OverflowError, AttributeError) as e:
            raise BrainError(f"{where}: bad spec: {e}") from None
        return spec

    @classmethod
    def from_json(cls, text: str, *, where: str = "spec") -> BrainSpec:
        if len(text) > MAX_SPEC_CHARS:
            raise BrainError(f"{where}: spec is {len(text)} characters; a brain's spec is "
                             f"at most {MAX_SPEC_CHARS}")
        if _nesting(text) > 8:
            raise BrainError(f"{where}: spec nests deeper than a brain's spec does")
        try:
            d = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as e:
            raise BrainError(f"{where}: spec is not valid JSON ({e.msg})") from None
        except ValueError as e:
            raise BrainError(f"{where}: spec is not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise BrainError(f"{where}: spec is not a JSON object")
        return cls.from_dict(d, where=where)


def hop_length(sample_rate: int, fps: float) -> int:
    """Samples per tick; refuses rates that do not divide into whole samples."""
    hop = sample_rate / fps
    if abs(hop - round(hop)) > 1e-9 or hop < 1:
        raise ValueError(f"sample_rate={sample_rate} / fps={fps} is not a whole number of samples")
    return int(round(hop))


MAX_SIDE = 1024
"""Largest input width or height a spec may declare (the instrument sees 64x64)."""

MAX_CONTEXT = 64
"""Most context pictures a spec may declare."""

MAX_SPEC_CHARS = 1 << 16
"""Longest spec text read (a real spec is about 1 KB; provenance included, a few)."""


def _nesting(text: str) -> int:
    """Deepest bracket nesting of a JSON text, counted without parsing (strings skipped)."""
    depth = deepest = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a spec may hold")


def _bounded_float(v: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{name}={v!r} must be a number in {lo:g}..{hi:g}")
    f = float(v)
    if not (np.isfinite(f) and lo <= f <= hi):
        raise ValueError(f"{name}={v!r} must be a number in {lo:g}..{hi:g}")
    return f


def _check_spectral(spec: BrainSpec) -> None:
    """The STFT of a spectrum brain must tile its ticks: a whole hop per frame, overlap."""
    if spec.framing != "grain":
        raise ValueError(f"output.framing={spec.framing!r}: a spectrum brain's grains are 'grain'")
    if spec.n_fft % 2:
        raise ValueError(f"output.n_fft={spec.n_fft} must be even")
    if spec.hop % spec.frames:
        raise ValueError(f"output.frames={spec.frames} does not divide the tick's "
                         f"{spec.hop} samples")
    a = spec.hop // spec.frames
    if spec.n_fft < 2 * a:
        raise ValueError(f"output.n_fft={spec.n_fft} is under twice the frame hop {a}: "
                         "the frames would not overlap")


def _bounded_int(v: Any, name: str, lo: int, hi: int) -> int:
    shown = repr(v) if len(repr(v)) <= 24 else repr(v)[:20] + "..."
    why = f"{name}={shown} must be an integer in {lo}..{hi}"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(why)
    if isinstance(v, float) and (not math.isfinite(v) or v != int(v)):
        raise ValueError(why)
    if not lo <= v <= hi:
        raise ValueError(why)
    return int(v)


def _choice(v: Any, choices: tuple[Any, ...], name: str) -> Any:
    if isinstance(v, bool) or v not in choices:  # True == 1: not a channel count
        raise ValueError(f"{name}={v!r} must be one of {', '.join(map(str, choices))}")
    return v


