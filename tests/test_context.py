"""Context pictures at fixed time offsets: steady motion at any source frame rate."""

from __future__ import annotations

import numpy as np
import pytest

from liveframe.core.context import ContextStack, context_plan

SPEED = 60.0  # grey levels per second: a scene that brightens steadily (4 s: 10..250)


def clocked(fps: float, ticks: int, *, clock: float = 30.0) -> list[np.ndarray]:
    """The pictures a 30 fps brain clock takes from a source at ``fps`` (newest frame
    at or before each tick), the scene brightening at SPEED per second."""
    out = []
    for k in range(ticks):
        n = int(np.floor(k / clock * fps + 1e-9))
        out.append(np.full((1, 4, 4), 10 + SPEED * n / fps, np.uint8))
    return out


def motion(pics: list[np.ndarray], context: int = 1) -> np.ndarray:
    """Per tick: the mean of (picture - the context picture one tick back), grey levels."""
    st = ContextStack(context)
    m = []
    for p in pics:
        x = st.stack(p) * 255
        m.append(float(x[-1].mean() - x[-2].mean()))
    return np.array(m)


def test_at_the_brain_rate_the_context_is_the_previous_pictures_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    pics = [rng.integers(0, 256, (1, 8, 8), dtype=np.uint8) for _ in range(20)]
    st = ContextStack(2)
    for k, p in enumerate(pics):
        x = st.stack(p)
        want = [pics[max(k - 2, 0)], pics[max(k - 1, 0)], p]
        np.testing.assert_array_equal(
            x, np.concatenate(want).astype(np.float32) * np.float32(1 / 255))


@pytest.mark.parametrize("fps", [10.0, 15.0, 24.0, 25.0, 30.0, 60.0])
def test_motion_is_steady_and_the_same_size_per_second_at_any_frame_rate(fps: float) -> None:
    m = motion(clocked(fps, 120))[10:]
    per_tick = SPEED / 30.0
    # never "still" on a moving scene, and the same speed whatever the source's rate
    assert m.min() > 0.25 * per_tick, (fps, m.min())
    assert abs(np.median(m) - per_tick) < 0.35 * per_tick, (fps, np.median(m))
    if fps in (10.0, 15.0, 30.0, 60.0):  # whole ticks per picture: exactly steady
        assert np.ptp(m) < 1.0, (fps, np.ptp(m))


def test_a_plain_history_would_pulse_at_the_source_rate() -> None:
    # the failure this module exists for: at 10 fps the previous tick is the same picture
    # on two ticks of three
    pics = clocked(10.0, 60)
    plain = [float(pics[k].mean()) - float(pics[k - 1].mean()) for k in range(1, 60)]
    assert sum(d == 0 for d in plain) >= 38


def test_a_stalled_source_settles_to_still() -> None:
    pics = clocked(10.0, 30) + [clocked(10.0, 30)[-1]] * 10  # the source stops
    m = motion(pics)
    assert m[25] > 0 and m[-1] == 0.0
    # a picture held from the start is still: no context before the first picture
    assert not motion([np.full((1, 2, 2), 200, np.uint8)] * 5).any()


def test_the_dataset_plan_agrees_with_the_tick_by_tick_stack() -> None:
    pics = clocked(10.0, 40) + clocked(25.0, 37) + clocked(60.0, 30) + clocked(30.0, 5)
    frames = np.stack(pics)
    segments = [(0, 40), (40, 77), (77, 107), (107, 112)]
    a, b, w = context_plan(frames, segments, 2)
    f = frames.astype(np.float32) * np.float32(1 / 255)
    for lo, hi in segments:
        st = ContextStack(2)
        for k in range(lo, hi):
            x = st.stack(frames[k])
            for j in range(2):
                want = w[k, j] * f[a[k, j]] + (1 - w[k, j]) * f[b[k, j]]
                np.testing.assert_allclose(x[j], want[0], atol=1e-6)
            assert lo <= a[k].min() and b[k].max() <= k  # never across a boundary
