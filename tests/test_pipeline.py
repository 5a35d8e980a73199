"""The tick pipeline: one tick at a time and in batches give the same samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liveframe.core.brain import Brain
from liveframe.core.pipeline import Tick, TickPipeline
from liveframe.core.synth import GranularSynth

from .helpers import make_brain


@pytest.fixture
def brains(tmp_path: Path) -> dict[str, Brain]:
    return {
        "a": Brain.load(make_brain(tmp_path / "a.onnx", brightness=True, freq=441.0)),
        "b": Brain.load(make_brain(tmp_path / "b.onnx", brightness=True, freq=882.0)),
        "ctx": Brain.load(make_brain(tmp_path / "ctx.onnx", brightness=True,
                                     spec_overrides={"context": 2})),
        "block": Brain.load(make_brain(tmp_path / "blk.onnx", brightness=True, framing="block")),
        "spectrum": Brain.load(make_brain(tmp_path / "sp.onnx", brightness=True,
                                          spec_overrides={"kind": "spectrum"})),
    }


def pictures(rng: np.random.Generator, n: int) -> np.ndarray:
    """n pictures whose brightness wanders, so every tick's block differs."""
    levels = np.cumsum(rng.uniform(-20, 20, n)) % 255
    return np.broadcast_to(levels[:, None, None, None], (n, 1, 64, 64)).astype(np.uint8)


@pytest.mark.parametrize("mode", ["ola", "raw", "granular"])
@pytest.mark.parametrize("name", ["a", "ctx", "block", "spectrum"])
def test_batches_equal_single_ticks(brains, rng, mode: str, name: str) -> None:
    px = pictures(rng, 97)
    one = TickPipeline(brains[name], mode=mode, seed=3)
    want = np.concatenate([one.step(p).copy() for p in px] + [one.flush()])
    many = TickPipeline(brains[name], mode=mode, seed=3)
    got = np.concatenate([many.step_batch(px[i : i + 40]) for i in range(0, 97, 40)]
                         + [many.flush()])
    assert np.any(want != 0)
    np.testing.assert_array_equal(got, want)


def test_swaps_crossfade_once_the_new_synth_has_filled_in_both_entry_points(brains,
                                                                            rng) -> None:
    px = pictures(rng, 60)

    def run(batched: bool) -> np.ndarray:
        p = TickPipeline(brains["a"], mode="ola")
        parts = []
        for lo, hi, change in ((0, 20, None), (20, 40, "brain"), (40, 50, "mode"),
                               (50, 60, "source")):
            if change == "brain":
                p.swap_brain(brains["b"])
            elif change == "mode":
                p.set_mode("raw")
            elif change == "source":
                p.switch_source()
            if batched:
                parts.append(p.step_batch(px[lo:hi]))
            else:
                parts.extend(p.step(x).copy() for x in px[lo:hi])
        return np.concatenate(parts)

    single, batched = run(False), run(True)
    np.testing.assert_array_equal(batched, single)
    # the old brain plays alone while the new synth fills (ola: one tick), then one
    # tick is neither brain alone (the crossfade), then the new brain alone
    only_a = TickPipeline(brains["a"]).step_batch(px[:22])
    p = TickPipeline(brains["a"])
    p.step_batch(px[:20])
    p.swap_brain(brains["b"])
    warm, fade = p.step(px[20]).copy(), p.step(px[21]).copy()
    assert p.brain is brains["b"] and not p.pending
    np.testing.assert_array_equal(warm, only_a[20 * 735:21 * 735])
    assert not np.allclose(fade, only_a[21 * 735:])
    only_b = TickPipeline(brains["b"]).step_batch(px[:23])[-735:]
    np.testing.assert_allclose(p.step(px[22]), only_b, atol=1e-6)


@pytest.mark.parametrize(("kind", "mode"), [("pcm", "ola"), ("spectrum", "ola"),
                                            ("spectrum", "raw")])
def test_a_swap_to_the_same_sound_keeps_its_level(tmp_path: Path, kind: str, mode: str) -> None:
    # a new synth starts empty; crossfaded in at once, its first hops (no overlap from
    # frames before them) dipped the level by 18 % (pcm) to 70 % (spectrum, raw)
    ov = {"kind": kind} if kind == "spectrum" else None
    a, b = (Brain.load(make_brain(tmp_path / f"{n}.onnx", brightness=True, freq=450.0,
                                  spec_overrides=ov)) for n in "ab")
    white = np.full((50, 1, 64, 64), 255, np.uint8)
    p = TickPipeline(a, mode=mode)
    before = p.step_batch(white[:20])
    p.swap_brain(b)
    y = np.concatenate([before, p.step_batch(white[20:])])
    ref = TickPipeline(a, mode=mode).step_batch(white)
    q = 735 // 4

    def env(x: np.ndarray) -> np.ndarray:  # peak per quarter tick, ticks 10 to 40
        return np.array([np.abs(x[i:i + q]).max() for i in range(10 * 735, 40 * 735, q)])

    ratio = env(y) / env(ref)
    assert ratio.min() > 0.9, (ratio.min(), 10 + ratio.argmin() / 4)


def test_listeners_see_every_tick_and_the_granular_placements(brains, rng) -> None:
    px = pictures(rng, 30)
    seen: list[tuple[int, int, int]] = []

    def listener(t: Tick) -> None:
        assert t.placements is not None
        seen.append((t.index, t.position, len(t.placements)))

    p = TickPipeline(brains["a"], mode="granular", seed=1)
    p.listeners.append(listener)
    p.step_batch(px[:10])
    for x in px[10:]:
        p.step(x)
    assert [s[0] for s in seen] == list(range(30))
    assert [s[1] for s in seen] == [735 * k for k in range(30)]
    # the placements are the granular synth's: the same seed draws the same grains
    gs = GranularSynth(seed=1)
    assert [s[2] for s in seen] == [len(gs.placements(gs.grains())) for _ in range(30)]


def test_a_failing_listener_is_counted_and_never_stops_the_ticks(brains, rng) -> None:
    p = TickPipeline(brains["a"])

    def bad(t: Tick) -> None:
        raise RuntimeError("boom")

    p.listeners.append(bad)
    p.step_batch(pictures(rng, 5))
    assert p.listener_errors == 5 and p.ticks == 5


def test_an_incompatible_brain_is_refused_and_the_old_one_keeps_playing(brains) -> None:
    from liveframe.errors import BrainError

    p = TickPipeline(brains["a"])
    with pytest.raises(BrainError, match="keeps playing"):
        p.swap_brain(brains["block"])
    narrow = make_brain(Path(brains["a"].path).with_name("w.onnx"), spec_overrides={"width": 32})
    with pytest.raises(BrainError, match="keeps playing"):
        p.swap_brain(Brain.load(narrow))
    assert p.brain is brains["a"] and not p.pending


@pytest.mark.parametrize("mode", ["ola", "raw", "granular"])
def test_a_nan_block_is_one_silent_tick_not_its_neighbours(tmp_path: Path, mode: str) -> None:
    brain = Brain.load(make_brain(tmp_path / "n.onnx", nan_when_black=True, freq=450.0))
    px = np.full((30, 1, 64, 64), 255, np.uint8)
    px[10] = 0  # the brain plays NaN for this picture
    p = TickPipeline(brain, mode=mode, seed=1)
    y = np.concatenate([p.step_batch(px[:20]), *(p.step(x) for x in px[20:])])
    ref = TickPipeline(brain, mode=mode, seed=1).step_batch(np.full_like(px, 255))
    assert np.isfinite(y).all() and p.bad_blocks == 1
    if mode == "granular":  # its grains read blocks of past ticks: a silent one among them
        late = slice(12 * 735, 30 * 735)
        assert np.sqrt(np.mean(y[late] ** 2)) > 0.7 * np.sqrt(np.mean(ref[late] ** 2))
        return
    # outside the ticks whose output overlaps the NaN tick's grain, nothing changed
    lat = -(-p.latency // 735) + 1
    keep = np.ones(30 * 735, bool)
    keep[(10 - 1) * 735:(10 + lat + 1) * 735] = False
    np.testing.assert_allclose(y[keep], ref[keep], atol=1e-6)
