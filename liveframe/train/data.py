"""The dataset side of training: the spec a dataset implies, the targets, the split, batches.

One dataset serves both kinds of brain: a ``pcm`` brain learns its audio targets as they
are; a ``spectrum`` brain learns the log-magnitude STFT frames of the soundtrack that its
grains (or blocks) put back together, source by source (:func:`spectrum_targets`).

Needs torch (the ``[train]`` extra).
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt
import torch

from liveframe.core.spec import BrainSpec, Framing
from liveframe.core.spectral import spectral_targets
from liveframe.data.dataset import Dataset
from liveframe.errors import BrainError, DatasetError

F32 = npt.NDArray[np.float32]


def spec_from_dataset(ds: Dataset, *, context: int, where: str,
                      kind: str = "pcm") -> BrainSpec:
    """The brain geometry and clock a dataset implies (scale, arch and layers come later).

    Parameters
    ----------
    ds : Dataset
    context : int
    where : str
        The dataset's name, for error messages.
    kind : {"pcm", "spectrum"}
        ``pcm``: the brain plays the dataset's framing; ``spectrum``: grain framing and the
        STFT defaults of :mod:`liveframe.constants` (whatever the dataset's framing).
    """
    pcm = _pcm_spec(ds, context=context, where=where)
    if kind == "pcm":
        return pcm
    try:
        spec = BrainSpec(width=pcm.width, height=pcm.height, channels=pcm.channels,
                         context=pcm.context, kind=kind, framing="grain",
                         sample_rate=pcm.sample_rate, fps=pcm.fps)
        return BrainSpec.from_dict(spec.to_dict(), where=where)
    except BrainError as e:
        raise DatasetError(f"{where}: a {kind} brain cannot learn this dataset "
                           f"({str(e).removeprefix(where + ': ')})") from None


def _pcm_spec(ds: Dataset, *, context: int, where: str) -> BrainSpec:
    """The pcm spec of the dataset's own framing, its targets' shape checked."""
    m = ds.meta
    try:
        spec = BrainSpec(
            width=int(m["width"]), height=int(m["height"]), channels=int(m["channels"]),
            context=int(context), framing=str(m["framing"]),
            sample_rate=int(m["sample_rate"]), fps=float(m["fps"]),
        )
        spec = BrainSpec.from_dict(spec.to_dict(), where=where)  # validates every field
    except KeyError as e:
        raise DatasetError(f"{where}: dataset meta lacks {e.args[0]!r}") from None
    except ValueError as e:
        raise DatasetError(f"{where}: bad dataset meta ({e})") from None
    want = (spec.channels, spec.height, spec.width)
    if tuple(ds.frames.shape[1:]) != want:
        raise DatasetError(f"{where}: frames are {tuple(ds.frames.shape[1:])}, meta says {want}")
    if ds.targets.ndim != 2 or ds.targets.shape[1] != spec.length:
        raise DatasetError(
            f"{where}: targets are {ds.targets.shape[1:]} samples, {spec.framing} framing at "
            f"{spec.sample_rate} Hz / {spec.fps:g} fps needs {spec.length}"
        )
    return spec


def soundtrack(targets: F32, frame: Framing) -> F32:
    """The continuous soundtrack of one source's consecutive targets; sample 0 = tick 0.

    ``grain``: the Hann grains overlap-added at ``hop`` (periodic Hann at half overlap sums
    to one), the hop before tick 0 dropped (only tick 0's rising half covers it; the last
    hop, under the last tick's falling half only, fades out); ``block``: the blocks end to
    end.

    Parameters
    ----------
    targets : ndarray, shape (ticks, frame.length), float32
    frame : Framing

    Returns
    -------
    ndarray, shape (ticks * hop,), float32
    """
    ticks, hop = targets.shape[0], frame.hop
    if not frame.windowed:
        return np.ascontiguousarray(targets, np.float32).reshape(-1)
    acc = np.zeros((ticks + 1) * hop, np.float32)
    acc[: ticks * hop] += targets[:, :hop].reshape(-1)  # first halves: [k*hop - hop, k*hop)
    acc[hop:] += targets[:, hop:].reshape(-1)  # second halves: [k*hop, k*hop + hop)
    return acc[hop:]


def spectrum_targets(ds: Dataset, spec: BrainSpec) -> F32:
    """Log-magnitude targets ``(T, frames * bins)`` float32 of a dataset, source by source.

    Each source's soundtrack is rebuilt from its targets (:func:`soundtrack`) and analysed
    with :func:`liveframe.core.spectral.spectral_targets`; frames that reach past either
    end of a source see silence there, never the next source.
    """
    frame = Framing(str(ds.meta["framing"]), spec.hop)
    out = np.empty((len(ds), spec.length), np.float32)
    for s, e in ds.segments:
        if e > s:
            out[s:e] = spectral_targets(soundtrack(ds.targets[s:e], frame), spec, e - s)
    return out


def split_validation(
    segments: list[tuple[int, int]],
    fraction: float,
    *,
    guard: int,
    max_stretches: int = 3,
    min_stretch: int = 30,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[tuple[int, int]]]:
    """Hold out contiguous stretches of time from every source.

    Each source of ``n`` ticks gives ``round(n * fraction)`` validation ticks in up to
    ``max_stretches`` contiguous stretches (each at least ``min_stretch`` ticks when it can
    be), centred in equal parts of the source so they sample its beginning, middle and end.
    ``guard`` ticks on each side of a stretch are used for neither set: a grain target
    overlaps its neighbours' audio by one tick and a context window reaches ``context``
    ticks back, so no training sample shares audio or input frames with a held-out one.
    The split does not depend on the seed.

    Returns
    -------
    train : int64 [n_train], val : int64 [n_val]
        Tick indices, ascending.
    stretches : list of (start, stop)
    """
    total = segments[-1][1] if segments else 0
    val = np.zeros(total, bool)
    excluded = np.zeros(total, bool)
    stretches: list[tuple[int, int]] = []
    for s, e in segments:
        n = e - s
        v = int(round(n * fraction))
        if v < 1 or n - v < 1:
            continue
        k = max(1, min(max_stretches, v // min_stretch))
        lens = [v // k + (1 if j < v % k else 0) for j in range(k)]
        part = n / k
        for j, ln in enumerate(lens):
            a = s + int(round((j + 0.5) * part - ln / 2))
            a = min(max(a, s), e - ln)
            b = a + ln
            val[a:b] = True
            excluded[max(s, a - guard):a] = True
            excluded[b:min(e, b + guard)] = True
            stretches.append((a, b))
    train = ~val & ~excluded
    return (np.flatnonzero(train).astype(np.int64), np.flatnonzero(val).astype(np.int64),
            stretches)


def fingerprint(ds: Dataset) -> str:
    """A content hash of a dataset (frames, targets, boundaries), to refuse a wrong resume."""
    h = hashlib.blake2b(digest_size=16)
    for a in (ds.boundaries, ds.frames, ds.targets):
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


class Batches:
    """Frames kept as uint8 in one tensor; each batch is gathered and converted to float32.

    The context pictures follow :func:`liveframe.core.context.context_plan`, the rule the
    tick pipeline plays by (pictures at fixed time offsets, interpolated between the
    distinct pictures of a source slower than the brain clock), so a brain is trained on
    exactly what it will see.

    Parameters
    ----------
    frames : uint8 [T, C, H, W]
    targets : float32 [T, L], already divided by the scale
    plan : (a, b, w), each [T, context], optional
        From :func:`~liveframe.core.context.context_plan`; None for no context.
    """

    def __init__(self, frames: npt.NDArray[np.uint8], targets: npt.NDArray[np.float32],
                 plan: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                             npt.NDArray[np.float32]] | None = None) -> None:
        t = frames.shape[0]
        self.frames = torch.from_numpy(np.ascontiguousarray(frames.reshape(t, -1)))
        self.targets = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
        self.plane = self.frames.shape[1]
        self.context = 0 if plan is None else int(plan[0].shape[1])
        if self.context:
            a, b, w = plan  # type: ignore[misc]
            self.a, self.b = torch.from_numpy(a), torch.from_numpy(b)
            self.w = torch.from_numpy(np.ascontiguousarray(w, np.float32))

    def get(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x [B, (context+1)*C*H*W] float32 in [0, 1], y [B, L])`` for ticks ``idx``."""
        cur = self.frames.index_select(0, idx).to(torch.float32).mul_(1.0 / 255.0)
        if self.context:
            n, k = idx.shape[0], self.context
            fa = self.frames.index_select(0, self.a.index_select(0, idx).reshape(-1))
            fb = self.frames.index_select(0, self.b.index_select(0, idx).reshape(-1))
            w = self.w.index_select(0, idx).reshape(-1, 1)
            ctx = fa.to(torch.float32).mul_(w) + fb.to(torch.float32).mul_(1.0 - w)
            ctx = ctx.mul_(1.0 / 255.0).reshape(n, k * self.plane)
            cur = torch.cat([ctx, cur], dim=1)
        return cur, self.targets.index_select(0, idx)
