"""The nets: dense stacks from the 2015 experiment, and any other dense topology.

Needs torch (the ``[train]`` extra). A net maps frames ``[N, channels*(context+1), H, W]``
(float32 in [0, 1], the current frame last) to audio blocks ``[N, length]`` in units of the
brain's ``scale`` (the exported brain's output times ``spec.scale`` is the audio played).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from liveframe.errors import ParamError
from liveframe.train import ARCHS

MAX_WIDTH = 1 << 16
"""Most units in one hidden layer."""

MAX_LAYERS = 64
"""Most weight layers in a dense topology."""

MAX_WEIGHTS = 100_000_000
"""Most weights in a topology: 16 bytes each in training (weights, gradients and Adam's two
moments), 1.5 GiB; the 2015 kungfury net has 13 million."""


def resolve_layers(
    arch: str | None, layers: str | Sequence[int] | None, *, in_size: int, out_size: int,
    default: str = "shallow",
) -> tuple[str, tuple[int, ...]]:
    """The full topology ``(in_size, hidden..., out_size)`` and the architecture's name.

    Parameters
    ----------
    arch : str or None
        A preset name (:data:`ARCHS`); used when ``layers`` is None (default ``default``).
    layers : str or sequence of int or None
        ``"4096,500,L"``: comma-separated sizes, first the input size, last the output size
        (``L`` stands for it, ``I`` for the input size). A plain hidden list such as
        ``"500,200"`` is refused: the ends make the geometry explicit.
    in_size : int
        ``channels * (context + 1) * height * width``.
    out_size : int
        Values per output row (``spec.length``).
    default : str
        The preset used when neither ``arch`` nor ``layers`` is given
        (:data:`~liveframe.train.DEFAULT_ARCH` of the brain's kind).

    Returns
    -------
    (name, sizes) : (str, tuple of int)
    """
    if arch == "custom":
        arch = None
    if layers is None:
        name = arch or default
        if name not in ARCHS:
            raise ParamError("arch", name, f"is unknown; choose one of {', '.join(ARCHS)} "
                             "or give the layers")
        return name, (in_size, *ARCHS[name], out_size)
    if arch is not None and arch not in ARCHS:
        raise ParamError("arch", arch, f"is unknown; choose one of {', '.join(ARCHS)}")
    if isinstance(layers, str):
        text = layers
        sizes: list[int] = []
        for tok in (t.strip() for t in layers.split(",")):
            if tok.upper() == "L":
                sizes.append(out_size)
            elif tok.upper() == "I":
                sizes.append(in_size)
            else:
                try:
                    sizes.append(int(tok))
                except ValueError:
                    raise ParamError("layers", text, f"has {tok!r}, which is not a size "
                                     f"(e.g. '{in_size},500,L')") from None
    else:
        text = ",".join(map(str, layers))
        sizes = [int(s) for s in layers]
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ParamError("layers", text, "needs at least input and output sizes, all "
                         f"positive (e.g. '{in_size},500,L')")
    if sizes[0] != in_size:
        raise ParamError("layers", text, f"is refused: the first size must be the input size "
                         f"{in_size} (channels*(context+1)*height*width), or I")
    if sizes[-1] != out_size:
        raise ParamError("layers", text, "is refused: the last size must be the output length "
                         f"{out_size} of this kind of brain on this dataset, or L")
    if len(sizes) > MAX_LAYERS + 1 or max(sizes[1:-1], default=0) > MAX_WIDTH:
        raise ParamError("layers", text, f"is refused: at most {MAX_LAYERS} layers of at most "
                         f"{MAX_WIDTH} units each")
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    if weights > MAX_WEIGHTS:
        raise ParamError("layers", text, f"is refused: {weights:.3g} weights, at most "
                         f"{MAX_WEIGHTS:.0e} (about {16 * MAX_WEIGHTS / 2**30:.0f} GiB with "
                         "Adam's state)")
    name = arch if arch is not None else "custom"
    if arch is not None and tuple(sizes[1:-1]) != ARCHS[arch]:
        name = "custom"
    return name, tuple(sizes)


def init_output_bias(model: DenseBrain, mean: torch.Tensor) -> None:
    """Start the output layer at the training targets' mean row.

    A spectrum brain's targets are log-magnitudes far from zero (about -11 in silent
    bins): starting there instead of at 0 spares the first epochs the walk to them. The
    partial slots start at the mean row's maximum (-6.9 on the free-phase film): heard from
    the first step, so their frequencies get gradients (a slot 40 dB under the cells adds a
    hundredth of their magnitude, and its gradients shrink as much).
    """
    last = model.linears[-1]
    with torch.no_grad():
        target = mean.to(last.bias.dtype)
        if model.ceiling is not None:  # the soft ceiling's inverse: u = c + log(expm1(c - y))
            gap = torch.clamp(model.ceiling - target, min=1e-3)
            target = model.ceiling - torch.where(gap > 20, gap, torch.log(torch.expm1(gap)))
        if model.cells:  # the cells' magnitudes add up: each starts at its share
            target = target - float(np.log(model.cells))
        last.bias.copy_(target)
        if model.partials:  # the slots start as loud as the loudest mean bin: heard, and
            f = model.part_frames  # their frequencies learn from it
            model.part.bias.view(model.partials, 1 + f + model.harmonics * f)[:, 1 + f:] = \
                float(mean.max())


MOTION_GAIN = 8.0
"""Scale of the motion planes (a picture difference of 1/8 reads as fully on): real footage
moves by a few hundredths per tick on average."""

CEILING_MARGIN = float(np.log(2.0))
"""A spectrum brain's soft ceiling: this much (6 dB) over its loudest training target."""


def conv_front(channels: int) -> nn.Module:
    """Three strided convolutions (16, 32, 32 planes; 64x64 -> 8x8): what is where, with
    the picture's layout kept for the dense layers (height must become register).

    A cell of the map sees 17 pixels square of the picture, less than the widest disc of
    the free-phase film (20 pixels). A 5x5 convolution over the map (49 pixels) was
    measured there and dropped: it fits the training ticks faster and generalises worse
    (validation 1.44 at epoch 20 against 1.16, rising to 1.54 at epoch 27).
    """
    return nn.Sequential(
        nn.Conv2d(channels, 16, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
    )


PARTIALS = 16
"""Partial slots of the ``partials`` preset: the peaks it places anywhere in the spectrum
each tick (two tones of four harmonics each on the free-phase film)."""

TONES, HARMONICS = 4, 8
"""The ``tones`` preset: this many harmonic sources, each sounding this many harmonics of a
fundamental it places anywhere (between bins too), each harmonic at its own level (the
harmonic oscillator bank of DDSP, Engel et al. 2020, as peaks in the spectrum).

What they learn on the free-phase film depends on the run: trained to 150 epochs one
source follows a tone's fundamental within a few hertz on held-out ticks; in a run that
stopped early at epoch 77 their fundamentals stayed near 50 to 600 Hz whatever the objects'
pitches (a slot's frequency learns only from a peak within a bin or two of its own lobes)
and the cells sounded the tones (``liveframe/train/__init__.py`` has the figures).
Tried and dropped, the same data and seed: each source a softmax over 241 candidate
fundamentals (25 cents apart) of their whole combs, so that every candidate learns from
every tick: the sources fell silent in the first epochs and stayed silent (validation 0.83
at epoch 34 against 0.72 for ``tones``); with the cells' spectrum limited to a 32-band
envelope as well (harmonic plus noise, as DDSP), so that only the sources could sound a
narrow peak: still silent, held-out mel 9.01 and 9.90 dB, level -6.2 and -5.6 dB."""

MAIN_LOBE_VAR = 0.763
"""Variance (bins squared) of the Gaussian a placed partial takes, in log-magnitude, for the
main lobe of the periodic Hann window: 0.85 half a bin off the peak and 0.52 one bin off,
where the window's own transform gives 0.85 and 0.5."""


class DenseBrain(nn.Module):
    """Flatten, then Linear-ReLU blocks and a linear output layer (and a soft ceiling).

    A spectrum brain's output passes through ``c - softplus(c - u)``: the identity well
    under ``c``, never above it. A dense net extrapolates linearly on pictures unlike its
    training set, and a log-magnitude that runs away is an exponentially loud bin (measured
    on an unseen free-phase film: 129 of 900 ticks over anything trained, +20 dB overall);
    the ceiling (a buffer, saved with the weights and exported in the graph) is the
    loudest training target plus :data:`CEILING_MARGIN`.

    Parameters
    ----------
    sizes : sequence of int
        ``(in_size, hidden..., out_size)``.
    ceiling : float, optional
        The soft ceiling of the output (None: none, a pcm brain).
    motion_channels : int
        Planes per picture when the context pictures are replaced by motion planes
        (:meth:`motion`: a spectrum brain with context); 0: the pictures as they are.
        Needs ``conv_shape`` (the input's planes, height, width) to find the pictures in a
        flat training batch.
    conv_shape : (channels, height, width), optional
        The input's shape (planes, height, width).
    conv : bool
        The ``conv`` preset: a small convolutional front end (:func:`conv_front`) before
        the dense layers, whose first size becomes the front end's output.
    sources : bool
        The ``sources`` preset: the same front end, then every cell of its 8x8 map sounds
        through one shared head (1x1 convolutions of ``sizes[1:]``) that sees the cell's
        planes, the picture's mean planes and where the cell is; the cells' magnitudes add
        up (log-sum-exp over the cells). What is where makes a sound, and sounds add: the
        head learns from every cell of every picture what one place sounds like, where a
        dense layer over the whole map learns whole pictures and recites them (measured on
        the free-phase film, :data:`~liveframe.train.DEFAULT_ARCH`).
    partials : int
        The ``partials`` preset (with ``sources``): besides every cell's spectrum, this many
        partial slots. Each cell proposes, per slot, a score, a frequency and a level per
        spectral frame; the slot takes the score-weighted (softmax over the cells) average
        of the proposals and sounds a main lobe (:data:`MAIN_LOBE_VAR`) at that frequency,
        added to the cells' magnitudes. A dense output layer can only fade between peaks at
        fixed bins, so a tone between two of them comes out as a blur of both; a slot
        places its peak anywhere, between bins too.
    frames : int
        Spectral frames per output row (the partials' frequency and level are per frame).
    """

    def __init__(self, sizes: Sequence[int], *, ceiling: float | None = None,
                 motion_channels: int = 0,
                 conv_shape: tuple[int, int, int] | None = None, conv: bool = False,
                 sources: bool = False, partials: int = 0, frames: int = 1,
                 harmonics: int = 1) -> None:
        super().__init__()
        self.in_shape = tuple(conv_shape) if conv_shape is not None else None
        self.front: nn.Module | None = None
        self.cells = 0
        if (conv or sources) and conv_shape is not None:
            self.front = conv_front(conv_shape[0])
            with torch.no_grad():
                fmap = self.front(torch.zeros(1, *conv_shape))
            flat = int(fmap.numel())
            if sources:
                planes, gh, gw = (int(d) for d in fmap.shape[1:])
                self.cells = gh * gw
                ys = torch.linspace(-1.0, 1.0, gh).reshape(1, 1, gh, 1).expand(1, 1, gh, gw)
                xs = torch.linspace(-1.0, 1.0, gw).reshape(1, 1, 1, gw).expand(1, 1, gh, gw)
                self.register_buffer("coords", torch.cat([ys, xs], dim=1).contiguous())
                flat = 2 * planes + 2  # the cell's planes, the picture's mean, where it is
            sizes = (flat, *tuple(sizes)[1:])
        self.motion_channels = int(motion_channels)
        if self.motion_channels:
            self.register_buffer("motion_gain", torch.tensor(MOTION_GAIN))
        self.sizes = tuple(int(s) for s in sizes)
        mods: list[nn.Module] = [] if self.cells else [nn.Flatten()]
        for i, (a, b) in enumerate(itertools.pairwise(self.sizes)):
            mods.append(nn.Conv2d(a, b, 1) if self.cells else nn.Linear(a, b))
            if i < len(self.sizes) - 2:
                mods.append(nn.ReLU())
        self.net = nn.Sequential(*mods)
        self.partials = int(partials) if self.cells else 0
        self.harmonics = max(int(harmonics), 1)
        if self.partials:
            self._add_partials(int(frames))
        self.ceiling: torch.Tensor | None
        if ceiling is None:
            self.ceiling = None
        else:
            self.register_buffer("ceiling", torch.tensor(float(ceiling)))

    def _add_partials(self, frames: int) -> None:
        k, length, h = self.partials, self.sizes[-1], self.harmonics
        if frames < 1 or length % frames or len(self.sizes) < 3:
            raise ParamError("partials", k, f"need a hidden layer and an output of whole frames "
                             f"({length} values, {frames} frames)")
        bins = length // frames
        self.part = nn.Conv2d(self.sizes[-2], k * (1 + frames + h * frames), 1)
        with torch.no_grad():  # near-equal scores, frequencies spread over the octaves
            self.part.weight.mul_(0.1)
            self.part.bias.zero_()
            top = bins / 3 if h == 1 else (bins - 1) / (2 * h)
            f0 = torch.logspace(float(np.log10(3.0)), float(np.log10(top)), k)
            f0 = f0 / ((bins - 1) if h == 1 else (bins - 1) / h)
            self.part.bias.view(k, 1 + frames + h * frames)[:, 1:1 + frames] = \
                torch.logit(f0)[:, None]
        self.part_frames = frames
        # the lobes' variance in bins squared; training may widen it for its first epochs
        # (TrainConfig.lobe_anneal); it is a plain attribute, so a saved net always has
        # MAIN_LOBE_VAR
        self.lobe_var = MAIN_LOBE_VAR
        shape = [k, frames] if h == 1 else [k, frames, h]
        self.register_buffer("part_shape", torch.tensor(shape))
        self.register_buffer("part_bins", torch.arange(bins, dtype=torch.float32))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` -> ``[N, out_size]``."""
        if self.in_shape is not None:  # training batches come flat
            frames = frames.reshape(frames.shape[0], *self.in_shape)
        if self.motion_channels:
            frames = self.motion(frames)
        if self.front is not None:
            frames = self.front(frames)
        if self.cells:
            out = self._sources(frames)
        else:
            out = self.net(frames)
        if self.ceiling is not None:
            out = self.ceiling - nn.functional.softplus(self.ceiling - out)
        return out

    def motion(self, frames: torch.Tensor) -> torch.Tensor:
        """Context pictures replaced by how much each next picture differs from them.

        ``[p_0, ..., p_k, current]`` (each ``motion_channels`` planes) becomes
        ``[|p_1 - p_0| g, ..., |current - p_k| g, current]``: the same size, so the spec
        and the layers do not change. A dense net given two nearly equal pictures learns
        their brightness and texture and never their small difference (measured: a brain
        trained on the camera film played the same with the context picture swapped for
        the current one, 0.1 dB apart); given the difference, it hears motion.
        """
        c = self.motion_channels
        k = frames.shape[1] // c
        pics = [frames[:, i * c:(i + 1) * c] for i in range(k)]
        diffs = [torch.abs(b - a) * self.motion_gain for a, b in itertools.pairwise(pics)]
        return torch.cat([*diffs, pics[-1]], dim=1)

    def _sources(self, fmap: torch.Tensor) -> torch.Tensor:
        """Each cell of the feature map sounds, and the cells' magnitudes add up.

        A cell's head sees its own planes, the whole picture's mean planes and where the
        cell is; its log-magnitudes ``[N, L, cells]`` are summed as magnitudes
        (log-sum-exp over the cells).
        """
        n = fmap.shape[0]
        mean = fmap.mean(dim=(2, 3), keepdim=True).expand_as(fmap)
        feats = torch.cat([fmap, mean, self.coords.expand(n, -1, -1, -1)], dim=1)
        if not self.partials:
            return _sum_cells(self.net(feats).flatten(2))
        hidden = self.net[:-1](feats)
        cells = _sum_cells(self.net[-1](hidden).flatten(2))
        return _log_add(cells, self._partials(hidden))

    def _partials(self, hidden: torch.Tensor) -> torch.Tensor:
        """The partial slots' log-magnitudes ``[N, L]`` from the cells' hidden units.

        Per slot, the cells' proposals (frequency in bins through a sigmoid, log level per
        frame) are averaged with the softmax of their scores over the cells; each slot
        then sounds ``level - (bin - frequency)^2 / (2 MAIN_LOBE_VAR)`` in every frame.
        With ``harmonics`` H over 1, a slot is a harmonic source: its frequency is a
        fundamental between 0 and ``(bins - 1) / H`` bins, and it sounds H main lobes at 1,
        2, ..., H times it, each at its own level per frame.
        """
        n = hidden.shape[0]
        k, f, h = self.partials, self.part_frames, self.harmonics
        bins = self.part_bins.shape[0]
        # in float64: a frequency of a few hundred bins in float32 is 3e-5 bins off, and a
        # main lobe's log-magnitude a few bins away would be 1e-4 off (export parity)
        w = self.part.weight.double().flatten(1)  # the 1x1 convolution as a product
        q = torch.matmul(w, hidden.double().flatten(2)) + self.part.bias.double().unsqueeze(1)
        q = q.reshape(n, k, 1 + f + h * f, -1)  # [N, K, 1+F+HF, cells]
        share = torch.softmax(q[:, :, 0], dim=2).unsqueeze(2)  # [N, K, 1, cells]
        span = (bins - 1) if h == 1 else (bins - 1) / h
        freq = (torch.sigmoid(q[:, :, 1:1 + f]) * share).sum(dim=3) * span  # [N, K, F]
        level = (q[:, :, 1 + f:] * share).sum(dim=3)  # [N, K, HF]
        if h > 1:  # harmonic j of slot s at (j + 1) times its fundamental
            mult = torch.arange(1, h + 1, dtype=freq.dtype).view(1, 1, h, 1)
            freq = (freq.unsqueeze(2) * mult).reshape(n, k * h, f)
            level = level.reshape(n, k * h, f)
        return _lobes(freq, level, bins=bins, var=self.lobe_var)

    @property
    def linears(self) -> list[nn.Module]:
        return [m for m in self.net if isinstance(m, (nn.Linear, nn.Conv2d))]


LOBE_REACH = 40.0
"""How far (nepers, 350 dB) under its peak a partial's main lobe is cut off: past it a
lobe adds nothing a float32 log-magnitude can hold (e^-40 of the cells' floor)."""


def _lobes(freq: torch.Tensor, level: torch.Tensor, *, bins: int, var: float) -> torch.Tensor:
    """Log-magnitudes ``[N, frames * bins]`` (float32) of Gaussian main lobes: lobe ``k`` of
    frame ``f`` at ``freq[n, k, f]`` bins (float64), peak ``level[n, k, f]``, variance
    ``var`` bins squared, log-summed over the lobes.

    Each lobe is computed only over the bins within :data:`LOBE_REACH` of its peak (15 bins
    for the Hann window's lobe) and scattered into the frame: a lobe over every bin of the
    spectrum made ``tones`` training twice as slow as the cells it adds to, for values
    e^-40 under anything heard. A bin no lobe reaches gets ``log(1e-300)`` under the
    loudest lobe: nothing, once added to the cells.
    """
    n, k, f = freq.shape
    reach = int(math.ceil(math.sqrt(2.0 * var * LOBE_REACH)))
    offs = torch.arange(-reach, reach + 1, dtype=freq.dtype)
    pos = torch.floor(freq).unsqueeze(3) + offs  # [N, K, F, W] the bins each lobe covers
    d = pos - freq.unsqueeze(3)
    val = level.unsqueeze(3) - d * d * (0.5 / var)
    top = val.amax(dim=(1, 2, 3), keepdim=True).detach()  # per row: stable exp
    inside = (pos >= 0) & (pos <= bins - 1)
    e = torch.where(inside, torch.exp(val - top), torch.zeros_like(val))
    frame = (torch.arange(f).view(1, 1, f, 1) * bins).expand(n, k, f, 2 * reach + 1)
    idx = (torch.clamp(pos, 0, bins - 1).long() + frame).reshape(n, -1)
    total = torch.zeros(n, f * bins, dtype=val.dtype).scatter_add(1, idx, e.reshape(n, -1))
    return (torch.log(total + 1e-300) + top.view(n, 1)).float()


def _sum_cells(x: torch.Tensor) -> torch.Tensor:
    """The cells' log-magnitudes ``[N, L, cells]`` summed as magnitudes: ``[N, L]``.

    ``torch.logsumexp`` in training (the runs measured were trained with it, bit for bit);
    in an ONNX export the same sum spelt out, max plus the log of the summed exps, because
    onnxruntime's ``ReduceLogSumExp`` is slow: one picture through a ``tones`` graph took
    0.84 ms with it and 0.48 spelt out, ``sources`` 0.69 and 0.34, outputs within 2e-6
    (``python -m benchmarks.bench_cells``, ``benchmarks/results/cells.md``).
    """
    if torch.onnx.is_in_onnx_export():
        m = x.amax(dim=2, keepdim=True)
        return torch.log(torch.exp(x - m).sum(dim=2)) + m.squeeze(2)
    return torch.logsumexp(x, dim=2)


def _log_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``log(exp(a) + exp(b))``, stable (``torch.logaddexp`` has no ONNX export)."""
    m = torch.maximum(a, b)
    return m + torch.log(torch.exp(a - m) + torch.exp(b - m))


def saved_net(state: Mapping[str, Any]) -> dict[str, Any]:
    """What a saved state dict was built as (:class:`DenseBrain`'s ``conv``/``sources``/
    ``partials`` keywords, and whether it sees motion planes): a resumed or exported net is
    rebuilt from its weights, whatever the options say."""
    part = state.get("part_shape")
    return {"conv": "front.0.weight" in state, "sources": "coords" in state,
            "motion": "motion_gain" in state,
            "partials": int(part[0]) if part is not None else 0,
            "harmonics": int(part[2]) if part is not None and len(part) > 2 else 1}


def forward_flops(sizes: Sequence[int]) -> int:
    """Multiply-add FLOPs of one frame's forward pass (2 per weight)."""
    return sum(2 * a * b for a, b in itertools.pairwise(sizes))


def train_flops(sizes: Sequence[int]) -> tuple[int, int]:
    """FLOPs of one frame's training step: (conventional ``3 x forward``, exact matmul count).

    The exact count leaves out the input gradient of the first layer, which training
    never needs (the frames do not require gradients).
    """
    fwd = forward_flops(sizes)
    first = 2 * sizes[0] * sizes[1]
    return 3 * fwd, 3 * fwd - first
