"""Spectrum brains: the spec, and the synthesis of known magnitudes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liveframe import constants as C
from liveframe.core.brain import Brain
from liveframe.core.pipeline import TickPipeline
from liveframe.core.spec import BrainSpec
from liveframe.core.spectral import (
    SpectralDecoder,
    SpectralSynth,
    Stft,
    decode,
    frame_centers,
    griffin_lim,
    spectral_targets,
    stft_of,
)
from liveframe.errors import BrainError
from liveframe.offline.metrics import analytic_power, frame_artifact_db, mel_distance_db, rms_dbfs

from .helpers import make_brain

SPEC = BrainSpec(kind="spectrum")
SR, H = SPEC.sample_rate, SPEC.hop


def sines(freqs: list[float], seconds: float = 4.0, amp: float = 0.2) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return sum(amp * np.sin(2 * np.pi * f * t + i) for i, f in enumerate(freqs)).astype(
        np.float32)


# -- the spec -------------------------------------------------------------------------------
def test_spectrum_spec_round_trips_with_its_synthesis_fields() -> None:
    spec = BrainSpec(kind="spectrum", n_fft=980, frames=5, phase="pv", scale=0.5)
    d = spec.to_dict()
    assert d["output"] == {"kind": "spectrum", "framing": "grain", "length": 5 * 491,
                           "scale": 0.5, "n_fft": 980, "window": "hann", "frames": 5,
                           "phase": "pv"}
    assert BrainSpec.from_json(spec.to_json()) == spec
    assert "n_fft" not in BrainSpec().to_dict()["output"]  # a pcm spec is as before


@pytest.mark.parametrize(("field", "value", "words"), [
    ("n_fft", 1023, "must be even"),
    ("n_fft", 256, "under twice the frame hop"),
    ("n_fft", True, "must be an integer"),
    ("n_fft", 1e9, "must be an integer in 16..16384"),
    ("frames", 4, "does not divide the tick's 735 samples"),
    ("frames", 0, "must be an integer in 1..64"),
    ("phase", "magic", "output.phase='magic' must be one of rtpghi, pv, random, steal"),
    ("window", "kaiser", "output.window='kaiser' must be one of hann"),
    ("framing", "block", "a spectrum brain's grains are 'grain'"),
    ("length", 1470, "output.length=1470 but 3 frames of 513 bins needs 1539"),
])
def test_bad_spectral_specs_are_refused_in_one_line(field: str, value, words: str) -> None:
    d = SPEC.to_dict()
    d["output"][field] = value
    with pytest.raises(BrainError) as e:
        BrainSpec.from_dict(d, where="x.onnx")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_a_spectrum_brain_loads_and_one_whose_output_disagrees_is_refused(tmp_path: Path) -> None:
    b = Brain.load(make_brain(tmp_path / "s.onnx", spec_overrides={"kind": "spectrum"}))
    assert b.spec.spectral and b.spec.length == 3 * 513
    bad = make_brain(tmp_path / "bad.onnx", block=np.zeros(1470, np.float32))
    import onnx

    from liveframe.core.brain import attach_spec
    m = onnx.load(str(bad))
    attach_spec(m, SPEC)
    onnx.save(m, str(bad))
    with pytest.raises(BrainError, match=r"does not match the spec \[N, 1539\]"):
        Brain.load(bad)


# -- analysis and synthesis ----------------------------------------------------------------
def test_the_stft_inverts_exactly_and_reads_a_sine_at_its_amplitude() -> None:
    x = sines([440.0, 1234.5], seconds=2.0)
    ticks = x.shape[0] // H
    stft = stft_of(SPEC)
    c = frame_centers(SPEC, ticks)
    assert list(c[:4]) == [-245, 0, 245, 490]
    y = stft.synthesize(stft.analyze(x, c), c, ticks * H)
    np.testing.assert_allclose(y[1024:-1024], x[1024:ticks * H - 1024], atol=1e-5)
    one = stft.analyze(sines([430.66], amp=0.5), [SR])  # a bin-centred sine: 20 * 21.53 Hz
    assert abs(np.abs(one).max() - 0.5) < 0.01
    with pytest.raises(ValueError):
        Stft(1023, 245)


@pytest.mark.parametrize("phase", ["rtpghi", "pv"])
def test_a_steady_tone_stays_a_steady_tone_with_no_frame_line(phase: str) -> None:
    x = sines([440.0, 1234.5])  # neither a multiple of 30 Hz
    ticks = x.shape[0] // H
    y = decode(spectral_targets(x, SPEC, ticks), SPEC, phase=phase)
    mid = slice(SR // 2, -SR // 2)
    assert abs(rms_dbfs(y[mid]) - rms_dbfs(x[mid])) < 0.5
    # steady: the power envelope (no averaging) moves by under 0.5 dB once started. What
    # is left is a -35 dB ripple at the STFT hop rate (90 Hz): a Hann window's first side
    # lobes flip sign, which no magnitude shows (see BENCHMARKS.md)
    one = decode(spectral_targets(sines([440.0]), SPEC, ticks), SPEC, phase=phase)
    env = analytic_power(one[mid])[2000:-2000]
    assert 10 * np.log10(env.max() / env.min()) < 0.5
    # nothing at the tick rate: no line at 30 or 60 Hz over its neighbourhood
    assert frame_artifact_db(y[mid], sr=SR, harmonics=2) < 3.0
    assert mel_distance_db(y[mid], x[: ticks * H][mid], sr=SR) < 2.0


def test_random_phase_keeps_the_level_but_smears_the_tone() -> None:
    x = sines([440.0])
    ticks = x.shape[0] // H
    z = spectral_targets(x, SPEC, ticks)
    good = decode(z, SPEC, phase="rtpghi")
    rnd = decode(z, SPEC, phase="random")
    mid = slice(SR // 2, -SR // 2)
    assert abs(rms_dbfs(rnd[mid]) - rms_dbfs(x[mid])) < 6.0
    assert mel_distance_db(rnd[mid], x[mid], sr=SR) > mel_distance_db(good[mid], x[mid], sr=SR)


def test_stealing_the_true_phase_gives_back_the_signal_and_griffin_lim_converges() -> None:
    rng = np.random.default_rng(0)
    x = (sines([300.0, 777.0]) + 0.05 * rng.standard_normal(4 * SR)).astype(np.float32)
    ticks = x.shape[0] // H
    z = spectral_targets(x, SPEC, ticks)
    # the donor must line up with the frames: tick 0's first frame is centred at -245
    donor = np.concatenate([np.zeros(SPEC.n_fft // 2 + 245), x])
    stolen = decode(z, SPEC, phase="steal", donor=donor)
    mid = slice(SR // 2, -SR // 2)
    assert np.abs(stolen[mid] - x[: ticks * H][mid]).max() < 1e-3
    gla = griffin_lim(z, SPEC, n_iter=8)
    assert mel_distance_db(gla[mid], x[mid], sr=SR) < 2.0


@pytest.mark.parametrize("phase", C.PHASES)
def test_silence_stays_exactly_silent(phase: str) -> None:
    floor = np.full(SPEC.length, np.log(C.LOG_FLOOR), np.float32)
    dec = SpectralDecoder(SPEC, phase=phase)
    for z in (floor, floor - 5, np.full(SPEC.length, -np.inf), np.full(SPEC.length, np.nan)):
        for _ in range(4):
            assert not dec.process(z).any()
    assert not dec.flush().any()


def test_a_wild_spectrum_is_clipped_not_blasted() -> None:
    dec = SpectralDecoder(SPEC)
    outs = [dec.process(np.full(SPEC.length, 1e6, np.float32)) for _ in range(6)]
    y = np.concatenate(outs)
    assert np.isfinite(y).all()
    assert np.abs(y).max() < 1e4  # bounded per bin (the safety chain limits the rest)


def test_the_decoder_emits_the_hop_no_later_frame_can_change() -> None:
    # the same ticks decoded one by one or all at once, then extended: identical prefix
    x = sines([523.0], seconds=1.0)
    z = spectral_targets(x, SPEC, 30)
    a = SpectralDecoder(SPEC, seed=4)
    first = np.concatenate([a.process(r) for r in z[:20]])
    b = SpectralDecoder(SPEC, seed=4)
    both = np.concatenate([b.process(r) for r in z])
    np.testing.assert_array_equal(first, both[: first.shape[0]])
    assert a.latency == 245 + 512


@pytest.mark.parametrize("mode", C.MODES)
def test_flush_plays_the_last_ticks_tail_in_every_mode(mode: str) -> None:
    # a steady tone to the last tick: what the last tick asked for is played after it,
    # latency trimmed, in every mode (raw and granular fed the last, silent grain once)
    ticks = 30
    z = spectral_targets(sines([440.0], seconds=ticks / C.FPS + 0.2), SPEC, ticks)
    s = SpectralSynth(SPEC, mode, phase="rtpghi", seed=1)
    y = np.concatenate([*(s.process(r) for r in z), s.flush()])[s.latency:]
    steady = float(np.sqrt(np.mean(y[10 * H: 20 * H] ** 2)))
    last = float(np.sqrt(np.mean(y[(ticks - 2) * H: ticks * H] ** 2)))
    assert y.shape[0] >= ticks * H
    assert last == pytest.approx(steady, rel=0.25), (last, steady)


def test_a_spectrum_brain_plays_through_the_pipeline_in_every_mode(tmp_path: Path) -> None:
    brain = Brain.load(make_brain(tmp_path / "s.onnx", brightness=True, freq=440.0,
                                  spec_overrides={"kind": "spectrum"}))
    white = np.full((45, 1, 64, 64), 255, np.uint8)
    for mode in C.MODES:
        p = TickPipeline(brain, mode=mode, seed=2)
        grains: list[np.ndarray] = []
        p.listeners.append(lambda t, keep=grains: keep.append(t.block.copy()))
        y = np.concatenate([p.step_batch(white), p.flush()])[p.latency:]
        assert rms_dbfs(y[SR // 2: SR]) > -20
        assert grains[44].shape == (2 * H,) and np.any(grains[44])
        # raw and granular sound the decoder's tail as grains: ticks without a picture
        assert (len(grains) > 45) == (mode != "ola") and p.ticks == len(grains)
    black = TickPipeline(brain).step_batch(np.zeros((10, 1, 64, 64), np.uint8))
    assert not black.any()
    with pytest.raises(ValueError, match="phase="):
        TickPipeline(brain, phase="nope")


@pytest.mark.parametrize("phase", ["rtpghi", "pv"])
def test_a_smooth_broad_spectrum_plays_as_noise_not_as_clicks(phase: str) -> None:
    # what a brain that cannot tell the pitch predicts: a smooth hump; locked to one phase
    # it would be a pulse at every frame (90 Hz)
    k = np.arange(SPEC.bins)
    hump = np.log(0.01 * np.exp(-0.5 * ((k - 60) / 25.0) ** 2) + C.LOG_FLOOR)
    z = np.tile(hump, (90, SPEC.frames)).astype(np.float32)
    y = decode(z, SPEC, phase=phase)[SR // 2:]
    assert frame_artifact_db(y, sr=SR) < 3.0
    assert rms_dbfs(y) > -60
