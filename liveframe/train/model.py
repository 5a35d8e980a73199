"""The nets: dense stacks from the 2015 experiment, and any other dense topology.

Needs torch (the ``[train]`` extra). A net maps frames ``[N, channels*(context+1), H, W]``
(float32 in [0, 1], the current frame last) to audio blocks ``[N, length]`` in units of the
brain's ``scale`` (the exported brain's output times ``spec.scale`` is the audio played).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from liveframe.errors import ParamError
from liveframe.train import ARCHS


def resolve_layers(
    arch: str | None, layers: str | Sequence[int] | None, *, in_size: int, out_size: int
) -> tuple[str, tuple[int, ...]]:
    """The full topology ``(in_size, hidden..., out_size)`` and the architecture's name.

    Parameters
    ----------
    arch : str or None
        A preset name (:data:`ARCHS`); used when ``layers`` is None (default ``shallow``).
    layers : str or sequence of int or None
        ``"4096,500,L"``: comma-separated sizes, first the input size, last the output size
        (``L`` stands for it, ``I`` for the input size). A plain hidden list such as
        ``"500,200"`` is refused: the ends make the geometry explicit.
    in_size : int
        ``channels * (context + 1) * height * width``.
    out_size : int
        Samples per block (the framing's length).

    Returns
    -------
    (name, sizes) : (str, tuple of int)
    """
    if arch == "custom":
        arch = None
    if layers is None:
        name = arch or "shallow"
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
                         f"{out_size} of this dataset's framing, or L")
    name = arch if arch is not None else "custom"
    if arch is not None and tuple(sizes[1:-1]) != ARCHS[arch]:
        name = "custom"
    return name, tuple(sizes)


class DenseBrain(nn.Module):
    """Flatten, then Linear-ReLU blocks and a linear output layer.

    Parameters
    ----------
    sizes : sequence of int
        ``(in_size, hidden..., out_size)``.
    """

    def __init__(self, sizes: Sequence[int]) -> None:
        super().__init__()
        self.sizes = tuple(int(s) for s in sizes)
        mods: list[nn.Module] = [nn.Flatten()]
        for i, (a, b) in enumerate(itertools.pairwise(self.sizes)):
            mods.append(nn.Linear(a, b))
            if i < len(self.sizes) - 2:
                mods.append(nn.ReLU())
        self.net = nn.Sequential(*mods)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` -> ``[N, out_size]``."""
        return self.net(frames)

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]


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
