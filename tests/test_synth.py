from __future__ import annotations

import numpy as np
import pytest

from liveframe.core.safety import SafetyChain
from liveframe.core.synth import GranularSynth, OlaSynth, RawSynth, hann, make_synth

H = 735


def grains_of(x: np.ndarray, hop: int = H) -> list[np.ndarray]:
    """Grain-framed targets of x, as the dataset cuts them: centred on k*hop, windowed."""
    pad = np.concatenate([np.zeros(hop, np.float32), x, np.zeros(2 * hop, np.float32)])
    w = hann(2 * hop)
    n = len(x) // hop + 1
    return [pad[k * hop : k * hop + 2 * hop] * w for k in range(n)]


def test_hann_sums_to_one_at_half_overlap():
    w = hann(2 * H)
    np.testing.assert_allclose(w[:H] + w[H:], 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="n=0"):
        hann(0)


def test_ola_reconstructs_signal(rng):
    x = rng.standard_normal(H * 40).astype(np.float32) * 0.1
    s = OlaSynth(hop=H, framing="grain")
    out = np.concatenate([s.process(g) for g in grains_of(x)] + [s.flush()])
    y = out[s.latency : s.latency + len(x)]
    np.testing.assert_allclose(y, x, atol=1e-6)


def test_block_crossfade_removes_steps():
    # blocks of constant, different values: raw steps, ola glides
    blocks = [np.full(H, v, np.float32) for v in (0.5, -0.5, 0.5, -0.5)]
    raw, ola = RawSynth(hop=H, framing="block"), OlaSynth(hop=H, framing="block")
    r = np.concatenate([raw.process(b) for b in blocks])
    o = np.concatenate([ola.process(b) for b in blocks])
    assert np.abs(np.diff(r)).max() == pytest.approx(1.0)
    assert np.abs(np.diff(o)).max() < 0.1


def test_block_crossfade_keeps_a_continuous_signal_intact():
    f = 30 * 11  # phase-locked to the blocks: each block is the same
    n = np.arange(H * 6)
    x = (0.5 * np.sin(2 * np.pi * f * n / 22050)).astype(np.float32)
    ola = OlaSynth(hop=H, framing="block")
    y = np.concatenate([ola.process(x[k * H : (k + 1) * H]) for k in range(6)])
    # continuous input: the reflected continuation differs from the truth only slightly
    assert np.abs(y - x).max() < 0.01


def test_raw_grain_takes_the_middle():
    g = np.arange(2 * H, dtype=np.float32)
    out = RawSynth(hop=H, framing="grain").process(g)
    np.testing.assert_array_equal(out, g[H // 2 : H // 2 + H])


def test_granular_deterministic_and_seeded(rng):
    blocks = [rng.standard_normal(2 * H).astype(np.float32) * hann(2 * H) for _ in range(20)]

    def run(seed: int) -> np.ndarray:
        s = GranularSynth(hop=H, seed=seed)
        return np.concatenate([s.process(b) for b in blocks] + [s.flush()])

    a, b, c = run(1), run(1), run(2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.isfinite(a).all() and np.abs(a).max() > 0


def test_granular_density_zero_spread_zero_is_parents_on_ticks(rng):
    x = rng.standard_normal(H * 30).astype(np.float32) * 0.1
    s = GranularSynth(hop=H, seed=0, density=0.0, spread=0.0)
    out = np.concatenate([s.process(g) for g in grains_of(x)] + [s.flush()])
    y = out[s.latency : s.latency + len(x)]
    # parents alone on their ticks overlap-add back to the signal (norm = 1 with no children)
    np.testing.assert_allclose(y, x, atol=1e-5)


def test_make_synth_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode='spectral'"):
        make_synth("spectral")


def test_safety_guards_nan_and_blasts(rng):
    sc = SafetyChain(sr=48000, ceiling=0.5)
    x = rng.standard_normal(256).astype(np.float32) * 1e6
    sc.process(x)
    assert np.abs(x).max() <= 0.5
    x = np.full(256, np.nan, np.float32)
    sc.process(x)
    assert np.all(x == 0) and sc.nan_blocks == 1
    x = np.full(256, np.inf, np.float32)
    sc.process(x)
    assert np.all(x == 0)


def test_safety_removes_dc_and_passes_quiet_signal():
    sr = 48000
    sc = SafetyChain(sr=sr)
    n = np.arange(sr)
    sig = (0.1 * np.sin(2 * np.pi * 440 * n / sr) + 0.3).astype(np.float32)
    out = np.concatenate([sc.process(sig[i : i + 256].copy()) for i in range(0, sr, 256)])
    tail = out[sr // 2 :]
    assert abs(tail.mean()) < 0.005  # DC gone
    assert np.abs(tail).max() == pytest.approx(0.1, abs=0.01)  # tone untouched
    assert sc.limited_blocks == 0


def test_safety_takes_huge_finite_samples_as_a_blast_without_a_numpy_warning():
    # 3e38 sums to inf in float32: numpy warned from the audio callback, and such a block
    # was taken for a NaN; it is a blast, clipped and limited, live and offline alike
    import warnings

    x = np.full((3, 256), 3e38, np.float32)
    x[1] = -3e38
    sc = SafetyChain(sr=48000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        live = np.stack([sc.process(r.copy()) for r in x])
    assert sc.nan_blocks == 0 and sc.limited_blocks == 3
    assert np.abs(live).max() <= sc.ceiling
    sc2 = SafetyChain(sr=48000)
    np.testing.assert_array_equal(sc2.process_blocks(x.copy()), live)


def test_safety_limits_a_loud_tone_without_clipping_or_pumping():
    # a tone at 4, then at 3.5 (both over the ceiling): the gain recovers towards what
    # keeps each block under the ceiling, never past it: no sample is squared off at the
    # ceiling by the final clip, and the gain rises steadily instead of see-sawing
    sr, n = 22050, 735
    sc = SafetyChain(sr=sr, max_block=n)
    t = np.arange(12 * n) / sr
    x = (np.where(t < n / sr, 4.0, 3.5) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    gains, pinned = [], []
    for i in range(12):
        y = sc.process(x[i * n:(i + 1) * n])
        gains.append(float(sc._gain))
        pinned.append(int(np.count_nonzero(np.abs(y) >= sc.ceiling)))
    assert pinned[1:] == [0] * 11, pinned
    assert np.all(np.diff(gains[1:]) >= 0), gains
    assert gains[-1] <= float(sc.ceiling) / 3.5 * (1 + 1e-6)
    assert sc.limited_blocks == 12


def test_safety_dc_blocker_is_the_one_pole_high_pass_sample_for_sample(rng):
    # y[k] = x[k] - x[k-1] + R y[k-1], R = exp(-1 / (tau sr)), across blocks of any size
    sr, tau = 22050, 0.05
    sc = SafetyChain(sr=sr, dc_seconds=tau, max_block=1024)
    sizes = [735, 1, 1024, 7, 735, 500] * 2
    x = (rng.standard_normal(sum(sizes)) * 0.05 + 0.2).astype(np.float32)
    got = x.copy()
    i = 0
    for n in sizes:
        sc.process(got[i : i + n])
        i += n
    r = np.exp(-1.0 / (tau * sr))
    want = np.empty(x.shape[0])
    px = py = 0.0
    for k, v in enumerate(x.astype(np.float64)):
        py = v - px + r * py
        px = v
        want[k] = py
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=0, atol=2e-7)
    assert sc.limited_blocks == 0


def test_safety_leaves_a_steady_tone_without_a_buzz_at_the_block_rate():
    # the DC blocker it replaced removed each block's mean as a ramp: a piecewise-linear
    # signal at the block rate, about 45 dB under a tone; a one-pole high-pass adds nothing
    sr, n, f = 22050, 735, 140.0  # 4.67 periods a block: block means that swing
    t = np.arange(60 * n) / sr
    x = (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)
    sc = SafetyChain(sr=sr, max_block=n)
    y = x.copy()
    for i in range(0, y.shape[0], n):
        sc.process(y[i : i + n])
    seg = y[20 * n :].astype(np.float64)  # past the start's transient
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.shape[0])))
    freqs = np.fft.rfftfreq(seg.shape[0], 1 / sr)
    tone = spec[np.abs(freqs - f) < 8].max()
    rest = spec[(np.abs(freqs - f) > 15) & (freqs > 10)].max()
    assert 20 * np.log10(rest / tone) < -80  # the block-mean tracker: -38.6 dB


def test_safety_does_not_allocate_per_block():
    import tracemalloc

    sc = SafetyChain(sr=48000)
    x = np.zeros(256, np.float32)
    for _ in range(20):  # numpy's first calls fill its own caches, once: not per block
        x[:] = 0.2
        sc.process(x)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(200):
        x[:] = 0.2
        sc.process(x)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if s.size_diff > 0)
    assert grown < 4096


def test_lpc_continues_sinusoids_and_stays_bounded(rng):
    from liveframe.core.synth import lpc_continue

    n = np.arange(H + 128)
    x = (0.3 * np.sin(2 * np.pi * 441 * n / 22050) + 0.1 * np.sin(0.9 * n)).astype(np.float32)
    np.testing.assert_allclose(lpc_continue(x[:H], 128), x[H:], atol=1e-4)
    noise = rng.standard_normal(H).astype(np.float32)
    assert np.abs(lpc_continue(noise, 128)).max() <= 2 * np.abs(noise).max()
    assert not np.any(lpc_continue(np.zeros(H, np.float32), 64))
