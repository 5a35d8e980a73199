"""Spectrum brains: their targets, their loss, training, resume, export, render and eval."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from liveframe import constants as C
from liveframe.cli import main
from liveframe.core.brain import Brain
from liveframe.core.spec import BrainSpec, Framing
from liveframe.core.spectral import decode, spectral_targets
from liveframe.core.synth import hann
from liveframe.data.clips import write_clip
from liveframe.data.dataset import load_dataset, save_dataset
from liveframe.errors import ParamError
from liveframe.offline import metrics as M
from liveframe.offline.evaluate import evaluate
from liveframe.util.wav import read_wav

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from liveframe.train.checkpoint import (  # noqa: E402
    load_checkpoint,
    save_checkpoint,
    state_from_checkpoint,
)
from liveframe.train.data import (  # noqa: E402
    Batches,
    soundtrack,
    spec_from_dataset,
    spectrum_targets,
    split_validation,
)
from liveframe.train.export import export_checkpoint  # noqa: E402
from liveframe.train.model import DenseBrain, init_output_bias  # noqa: E402
from liveframe.train.trainer import (  # noqa: E402
    MEL_RANGE,
    Loss,
    MelBands,
    TrainConfig,
    WeightAverage,
    _evaluate,
    _resumed_config,
    train,
)
from tests.test_train import SIZE, make_learnable_dataset  # noqa: E402

HOP = C.HOP
BIN_HZ = C.SAMPLE_RATE / C.N_FFT
SPEC = BrainSpec(kind="spectrum", width=SIZE, height=SIZE)


def cfg(**kw: object) -> TrainConfig:
    base = dict(kind="spectrum", layers="I,64,L", epochs=12, batch_size=64, lr=3e-3,
                seed=0, patience=50, ema=0.0, starts=1, val_fraction=0.1)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def make_spectral_dataset(path, *, ticks: int = 600, sources: int = 2, seed: int = 0):
    """Frames of one brightness each, gliding smoothly; the soundtrack is a 441 Hz tone
    (not a multiple of the frame rate) whose amplitude follows the brightness, cut into
    grains as ``liveframe pickle`` cuts them. A tick's spectra span its neighbours, so the
    brightness must glide for the sound around a tick to follow its picture."""
    rng = np.random.default_rng(seed)
    per = ticks // sources
    frames, targets = [], []
    for _ in range(sources):
        knots = rng.random(per // 15 + 2)
        b = np.interp(np.arange(per * HOP) / HOP, np.arange(knots.shape[0]) * 15, knots)
        t = np.arange(per * HOP) / C.SAMPLE_RATE
        targets.append(grains_of(0.05 * b * np.sin(2 * np.pi * 441 * t)))
        frames.append((b[::HOP] * 255).astype(np.uint8))
    px = np.broadcast_to(np.concatenate(frames)[:, None, None, None],
                         (per * sources, 1, SIZE, SIZE))
    meta = dict(sample_rate=22050, fps=30, framing="grain", hop=HOP, length=2 * HOP,
                channels=1, width=SIZE, height=SIZE)
    return save_dataset(path, px.copy(), np.concatenate(targets).astype(np.float32),
                        boundaries=np.arange(sources + 1) * per, meta=meta)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory):
    return make_spectral_dataset(tmp_path_factory.mktemp("ds") / "ds.npz")


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory: pytest.TempPathFactory):
    ck = tmp_path_factory.mktemp("spectrum") / "ck.pt"
    res = train(dataset, ck, cfg(), threads=1, quiet=True)
    return ck, res


def grains_of(x: np.ndarray) -> np.ndarray:
    """The dataset targets of a soundtrack ``x`` (sample 0 = tick 0), as pickle cuts them."""
    ticks = x.shape[0] // HOP
    padded = np.pad(x, (HOP, HOP))
    w = hann(2 * HOP)
    return np.stack([padded[k * HOP:k * HOP + 2 * HOP] * w for k in range(ticks)])


def test_soundtrack_is_rebuilt_from_grains_and_blocks(rng):
    x = (0.1 * rng.standard_normal(20 * HOP)).astype(np.float32)
    got = soundtrack(grains_of(x).astype(np.float32), Framing("grain", HOP))
    assert got.shape == x.shape
    # every sample but the last half grain's is covered by two windows that sum to one
    np.testing.assert_allclose(got[:-HOP], x[:-HOP], atol=1e-6)
    blocks = x.reshape(20, HOP)
    np.testing.assert_array_equal(soundtrack(blocks, Framing("block", HOP)), x)


def test_spectrum_targets_follow_each_source_and_never_cross_into_the_next(rng, tmp_path):
    t = np.arange(30 * HOP) / C.SAMPLE_RATE
    f = 48 * C.SAMPLE_RATE / C.N_FFT  # on bin 48 (1034 Hz)
    a = (0.2 * np.sin(2 * np.pi * f * t)).astype(np.float32)
    b = (0.05 * rng.standard_normal(30 * HOP)).astype(np.float32)
    targets = np.concatenate([grains_of(a), grains_of(b)]).astype(np.float32)
    frames = np.zeros((60, 1, SIZE, SIZE), np.uint8)
    meta = dict(sample_rate=22050, fps=30, framing="grain", hop=HOP, length=2 * HOP,
                channels=1, width=SIZE, height=SIZE)
    ds = load_dataset(save_dataset(tmp_path / "two.npz", frames, targets,
                                   boundaries=np.array([0, 30, 60]), meta=meta))
    spec = spec_from_dataset(ds, context=0, where="two.npz", kind="spectrum")
    assert spec.spectral and spec.framing == "grain" and spec.length == 3 * 513
    assert (spec.n_fft, spec.frames, spec.phase, spec.scale) == (
        C.N_FFT, C.SPECTRAL_FRAMES, C.PHASES[0], 1.0)
    got = spectrum_targets(ds, spec)
    assert got.shape == (60, spec.length) and got.dtype == np.float32
    # the targets of each source alone: its first ticks see silence before it, not the
    # other source; only its last two ticks reach its last half grain (one window)
    for lo, x in ((0, a), (30, b)):
        want = spectral_targets(x, spec, 30)
        np.testing.assert_allclose(got[lo:lo + 28], want[:28], atol=2e-3)
    # the tone's ticks peak in its bin, at its amplitude
    assert got[5].reshape(3, 513).argmax(axis=1).tolist() == [48, 48, 48]
    assert np.exp(got[5].max()) == pytest.approx(0.2, rel=1e-3)


def test_logmag_loss_is_mse_plus_spectral_convergence():
    y = torch.log(torch.rand(4, 20) + 0.01)
    loss = Loss("logmag", sc_weight=0.5)
    assert float(loss(y, y)) == 0.0
    # twice the magnitudes: MSE ln(2)^2, spectral convergence exactly 1
    doubled = y + float(np.log(2))
    assert float(loss(doubled, y)) == pytest.approx(np.log(2) ** 2 + 0.5, rel=1e-5)
    # the validation total over many batches is the loss of the whole set
    sums = loss.sums(doubled[:2], y[:2]) + loss.sums(doubled[2:], y[2:])
    assert loss.total(sums, 4, 20) == pytest.approx(float(loss(doubled, y)), rel=1e-6)
    # a wild output is clipped before the exp: finite, with a gradient through the MSE
    wild = torch.full_like(y, 1e4, requires_grad=True)
    value = loss(wild, y)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(wild.grad).all()
    assert float(Loss("mse", sc_weight=0.5)(doubled, y)) == pytest.approx(np.log(2) ** 2)


def test_mel_term_weighs_where_the_energy_is_not_which_bin():
    """A tone one bin off costs the per-bin error twice what a missing tone costs (missing
    where it is, and there where it is not); the mel term (bands many bins wide up there)
    hardly sees the shift, and sees the tone missing."""
    bins, frames = C.N_FFT // 2 + 1, 3
    floor = np.float32(-11.5)
    y = np.full((2, frames, bins), floor, np.float32)
    y[:, :, 300] = np.log(0.1)  # a tone at 6.5 kHz, in the same mel band one bin up
    shifted, silent = np.roll(y, 1, axis=2), np.full_like(y, floor)
    y, shifted, silent = (torch.from_numpy(a.reshape(2, -1)) for a in (y, shifted, silent))
    mel = MelBands.of(y.numpy(), np.arange(2), sample_rate=C.SAMPLE_RATE, n_fft=C.N_FFT,
                      frames=frames)
    # the floor sits 80 dB under the loudest band of the training rows
    assert mel.floor == pytest.approx(float(mel.bands(y, floor=0.0).max().exp() ** 2)
                                      * np.exp(-2 * MEL_RANGE), rel=1e-4)
    assert mel.bands(y).shape == (2, frames * 64)
    only_mel = Loss("logmag", 0.0, mel_weight=1.0, mel=mel)
    per_bin = torch.nn.functional.mse_loss
    assert float(per_bin(shifted, y)) == pytest.approx(2 * float(per_bin(silent, y)))
    assert float(only_mel(y, y)) == 0.0
    off_mel = float(only_mel(shifted, y)) - float(per_bin(shifted, y))
    gone_mel = float(only_mel(silent, y)) - float(per_bin(silent, y))
    assert 0 < off_mel < 0.01 * gone_mel, (off_mel, gone_mel)
    # the validation total over many batches is the batch loss, mel term included
    loss = Loss("logmag", 0.1, mel_weight=2.0, mel=mel)
    sums = loss.sums(shifted[:1], y[:1]) + loss.sums(shifted[1:], y[1:])
    assert loss.total(sums, 2, y.shape[1]) == pytest.approx(float(loss(shifted, y)), rel=1e-5)
    # other losses, and a logmag loss with no bands, have no mel term
    assert Loss("mse", mel_weight=1.0, mel=mel).mel_weight == 0.0
    assert Loss("logmag", mel_weight=1.0).mel_weight == 0.0


def test_a_checkpoint_from_before_the_mel_term_resumes_without_it(tmp_path):
    ck = {"config": {"kind": "spectrum", "epochs": 3}, "spec": {"output": {"kind": "spectrum"}}}
    got = _resumed_config(TrainConfig(), ck, explicit=(), where=tmp_path / "old.pt")
    assert got.mel_weight == 0.0
    # one that trained with it resumes with it
    ck["config"]["mel_weight"] = 1.0
    got = _resumed_config(TrainConfig(), ck, explicit=(), where=tmp_path / "new.pt")
    assert got.mel_weight == 1.0


def val_loss_of(ck: dict, weights: dict, dataset) -> float:
    """The validation loss of ``weights`` on the checkpoint's held-out ticks, with the net
    rebuilt as export rebuilds it (the default ``logmag`` loss)."""
    spec, net = state_from_checkpoint(dict(ck, best_model=weights))
    ds = load_dataset(dataset)
    _, val_idx, _ = split_validation(ds.segments, 0.1, guard=1)
    ds.targets = spectrum_targets(ds, spec)
    return _evaluate(net, Batches(ds.frames, ds.targets, None), torch.from_numpy(val_idx),
                     Loss("logmag", 0.1))


def test_the_weight_average_follows_each_step_and_forgets_its_start():
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.fill_(0.0)
    avg = WeightAverage(net, 0.9)
    with torch.no_grad():
        net.weight.fill_(1.0)
    avg.update()  # step 1: min(0.9, 2/11) keeps 18 % of the start
    assert avg.model.weight.detach().numpy() == pytest.approx(np.full((1, 2), 9 / 11))
    for _ in range(200):
        avg.update()
    # the decay caps at 0.9: the start is gone, the average is the weights
    assert avg.model.weight.detach().numpy() == pytest.approx(np.ones((1, 2)), abs=1e-6)
    assert not any(p.requires_grad for p in avg.model.parameters())
    assert avg.steps == 201


def test_a_weight_averaged_run_judges_and_keeps_the_average(dataset, tmp_path):
    ck_path = tmp_path / "avg.pt"
    res = train(dataset, ck_path, cfg(epochs=3, ema=0.95), threads=1, quiet=True)
    ck = load_checkpoint(ck_path)
    ds = load_dataset(dataset)
    train_idx, val_idx, _ = split_validation(ds.segments, 0.1, guard=1)
    assert ck["config"]["ema"] == 0.95
    assert ck["ema_steps"] == 3 * -(-len(train_idx) // 64)  # one update a step
    # the average is not the last step's weights, and the validation loss is the average's
    last, avg = ck["model"], ck["ema_model"]
    assert any(not torch.equal(last[k], avg[k]) for k in last)
    assert val_loss_of(ck, avg, dataset) == pytest.approx(res.history[-1]["val"], rel=1e-5)
    # the kept (exported) weights are the average at the best epoch
    if res.best_epoch == 3:
        assert all(torch.equal(ck["best_model"][k], avg[k]) for k in avg)
    # a run without it keeps no average; a bad decay is refused by name
    train(dataset, tmp_path / "plain.pt", cfg(epochs=1), threads=1, quiet=True)
    assert "ema_model" not in load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(ParamError, match="ema"):
        train(dataset, tmp_path / "bad.pt", cfg(ema=1.0), threads=1, quiet=True)


def test_patience_waits_for_the_weight_average():
    from liveframe.train.trainer import effective_patience

    base = TrainConfig(patience=10, batch_size=64)
    assert effective_patience(base, 4854) == 10  # no average: as given
    # 0.999 moves over 1000 steps: 76 an epoch on the free-phase film, 5 on an 11 s clip
    assert effective_patience(replace(base, ema=0.999), 4854) == 14
    assert effective_patience(replace(base, ema=0.999), 300) == 200
    assert effective_patience(replace(base, ema=0.9), 4854) == 10  # shorter than patience


def test_a_weight_averaged_run_resumes_as_if_never_interrupted(dataset, tmp_path):
    full = train(dataset, tmp_path / "full.pt", cfg(epochs=3, ema=0.95), threads=1,
                 quiet=True)
    train(dataset, tmp_path / "part.pt", cfg(epochs=2, ema=0.95), threads=1, quiet=True)
    more = train(dataset, tmp_path / "part.pt", TrainConfig(epochs=3), resume=True,
                 explicit=("epochs",), threads=1, quiet=True)
    assert [(h["train"], h["val"]) for h in more.history] == [
        (h["train"], h["val"]) for h in full.history]
    # a checkpoint from before the average resumes without one
    old = {"config": {"kind": "spectrum"}, "spec": {"output": {"kind": "spectrum"}}}
    assert _resumed_config(TrainConfig(), old, explicit=(), where=tmp_path / "o.pt").ema == 0


def test_train_refuses_a_bad_decay_in_one_line(dataset, tmp_path, capsys):
    out = tmp_path / "x.pt"
    assert main(["train", str(dataset), "-o", str(out), "--ema", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--ema" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_spectrum_training_learns_and_saves_its_spec(trained):
    ck_path, res = trained
    vals = [h["val"] for h in res.history]
    # the output bias starts at the targets' mean log-magnitude (mostly the floor, -11.5,
    # here): the first epoch is already far under what a zero start costs (MSE over 100)
    assert vals[0] < 1, vals
    assert res.best_val < 0.6 * vals[0], vals
    ck = load_checkpoint(ck_path)
    out = ck["spec"]["output"]
    assert out["kind"] == "spectrum" and out["length"] == 3 * 513 and out["scale"] == 1.0
    assert (out["n_fft"], out["frames"], out["phase"]) == (C.N_FFT, C.SPECTRAL_FRAMES,
                                                           C.PHASES[0])
    assert ck["config"]["kind"] == "spectrum" and ck["config"]["loss"] == "logmag"
    assert ck["spec"]["provenance"]["loss"] == "logmag"
    assert ck["spec"]["layers"] == [SIZE * SIZE, 64, 3 * 513]
    # the soft ceiling: 6 dB over the loudest training target (a 0.05 tone: about -3)
    ds = load_dataset(ck["spec"]["provenance"]["data"])
    train_idx, _, _ = split_validation(ds.segments, 0.1, guard=1)
    loudest = spectrum_targets(ds, BrainSpec.from_dict(ck["spec"]))[train_idx].max()
    assert float(ck["best_model"]["ceiling"]) == pytest.approx(loudest + np.log(2), abs=1e-6)
    assert -3.5 < loudest < -2.5


def test_default_topology_of_a_spectrum_brain(dataset, tmp_path):
    res = train(dataset, tmp_path / "ck.pt", TrainConfig(epochs=1), threads=1, quiet=True)
    ck = load_checkpoint(res.checkpoint)
    assert ck["spec"]["output"]["kind"] == "spectrum", "spectrum is the default kind"
    assert ck["spec"]["arch"] == "tones" and ck["spec"]["layers"] == [SIZE * SIZE, 128, 1539]
    assert "front.0.weight" in ck["best_model"]  # the convolutional front end
    assert "coords" in ck["best_model"]  # and the cells' shared head
    assert ck["best_model"]["part_shape"].tolist() == [4, 3, 8]  # 4 harmonic sources
    assert ck["config"]["batch_size"] == 64 and ck["config"]["loss"] == "logmag"
    assert (ck["config"]["lr"], ck["config"]["patience"], ck["config"]["lr_schedule"]) == (
        2e-3, 10, "constant")
    # the weight average, the best of three seeds, and 5 s of the 20 s dataset held out
    assert (ck["config"]["ema"], ck["config"]["starts"]) == (0.999, 3)
    assert [s["seed"] for s in ck["spec"]["provenance"]["starts"]] == [0, 1, 2]
    assert ck["config"]["val_fraction"] == pytest.approx(0.25)
    pcm = train(dataset, tmp_path / "pcm.pt", TrainConfig(kind="pcm", epochs=1, layers="I,8,L"),
                threads=1, quiet=True)
    got = load_checkpoint(pcm.checkpoint)["config"]
    assert (got["lr"], got["patience"], got["batch_size"]) == (1e-3, 5, 256)
    assert (got["ema"], got["starts"], got["val_fraction"]) == (0.0, 1, 0.1)


@pytest.mark.parametrize(("seconds", "val_seconds", "share"), [
    (180.0, 5.0, 0.1),  # a 3-minute film: 10 % (18 s)
    (25.0, 5.0, 0.2),  # 5 s of 25
    (11.15, 5.0, 0.3),  # the two real clips' training parts: at most 30 %
    (11.15, 0.0, 0.1),  # pcm: 10 % of any length
    (0.0, 5.0, 0.1),
])
def test_the_held_out_share_is_ten_percent_and_at_least_val_seconds_up_to_thirty(
        seconds, val_seconds, share):
    from liveframe.train import held_out_share

    assert held_out_share(seconds, val_seconds) == pytest.approx(share)


def test_a_given_val_fraction_is_kept_whatever_the_length(dataset, tmp_path):
    """--val-fraction wins over --val-seconds; --val-seconds sets the share without it; the
    validation holds out what the share says (600 ticks, two sources, 20 s)."""
    got = {}
    for name, kw in {"given": dict(val_fraction=0.1, val_seconds=8.0),
                     "seconds": dict(val_fraction=None, val_seconds=8.0)}.items():
        res = train(dataset, tmp_path / f"{name}.pt", cfg(epochs=1, **kw), threads=1, quiet=True)
        ck = load_checkpoint(res.checkpoint)
        held = sum(b - a for a, b in ck["split"]["val"])
        got[name] = (ck["config"]["val_fraction"], held)
    # 8 s of 20 is 40 %: capped at 30 %, 90 ticks of each 300-tick source
    assert got == {"given": (0.1, 60), "seconds": (pytest.approx(0.3), 180)}


def trains_resumes_exports(dataset, tmp_path, arch: str) -> dict:
    """``--arch ARCH`` (layers I,32,L) trains an epoch, resumes to a second and exports
    (the graph's output length declared, parity 1e-4); the exported brain plays finite
    spectra. Returns the checkpoint."""
    ck_path = tmp_path / f"{arch}.pt"
    train(dataset, ck_path, cfg(arch=arch, layers="I,32,L", epochs=1), threads=1, quiet=True)
    again = train(dataset, ck_path, TrainConfig(epochs=2), resume=True, explicit=("epochs",),
                  threads=1, quiet=True)
    assert again.epoch == 2
    ck = load_checkpoint(ck_path)
    assert ck["epoch"] == 2
    onnx_path = export_checkpoint(ck_path, tmp_path / f"{arch}.onnx")
    brain = Brain.load(onnx_path)
    z = brain.run(np.full((4, 1, SIZE, SIZE), 200, np.uint8))
    assert z.shape == (4, 1539) and np.all(np.isfinite(z))
    if arch in ("sources", "partials", "tones"):
        # the cells' sum exported spelt out (onnxruntime's ReduceLogSumExp is slow), and the
        # same sum as training's torch.logsumexp (within the export's parity check, 1e-4)
        import onnx

        ops = {n.op_type for n in onnx.load(str(onnx_path)).graph.node}
        assert "ReduceLogSumExp" not in ops and "ReduceMax" in ops, sorted(ops)
    return ck


def test_the_cells_sum_spelt_out_for_export_is_torchs_logsumexp(monkeypatch):
    """What an export writes for the cells' sum (max plus the log of the summed exps) is
    torch.logsumexp, for cells far apart, all alike and one far louder than the rest."""
    from liveframe.train.model import _sum_cells

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 1539, 64, generator=gen) * 30 - 40
    x[1] = -7.0  # all alike: log(64) over each
    x[2, :, 5] = 60.0  # one cell dominates
    want = torch.logsumexp(x, dim=2)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    got = _sum_cells(x)
    torch.testing.assert_close(got, want, rtol=0, atol=2e-5)
    torch.testing.assert_close(got[1], torch.full((1539,), -7.0 + math.log(64)), rtol=0,
                               atol=2e-5)


def test_the_sources_net_adds_up_its_cells_and_exports(dataset, tmp_path):
    from liveframe.train.model import DenseBrain

    net = DenseBrain((64 * 64, 16, 5), ceiling=0.0, conv_shape=(1, 64, 64), sources=True)
    assert net.cells == 64 and net.sizes == (2 * 32 + 2, 16, 5)
    # every cell at the same log-magnitude b: the picture sounds 64 times as loud, and the
    # output bias starts at the targets' mean with each cell at its share of it
    with torch.no_grad():
        net.linears[-1].weight.zero_()
        net.linears[-1].bias.fill_(-9.0)
        x = torch.rand(3, 1, 64, 64)
        want = -9.0 + np.log(64)
        np.testing.assert_allclose(net(x).numpy(), want - np.log1p(np.exp(want)), atol=1e-5)
        init_output_bias(net, torch.tensor([-2.5, -6.0, -11.0, -4.0, -8.0]))
        np.testing.assert_allclose(net(x)[0].numpy(), [-2.5, -6.0, -11.0, -4.0, -8.0],
                                   atol=1e-4)
    # a flat training batch is the same input as the exported graph's [N, planes, H, W]
    torch.testing.assert_close(net(x.reshape(3, -1)), net(x))
    # --arch sources with its layers given builds the sources net; it trains, resumes and
    # exports (the graph's output length declared, parity 1e-4) like any other
    ck = trains_resumes_exports(dataset, tmp_path, "sources")
    assert "coords" in ck["best_model"] and ck["spec"]["layers"] == [SIZE * SIZE, 32, 1539]


def test_a_partial_slot_sounds_a_main_lobe_between_bins(dataset, tmp_path):
    from liveframe.train.model import MAIN_LOBE_VAR, saved_net

    net = DenseBrain((64 * 64, 16, 3 * 513), ceiling=20.0, conv_shape=(1, 64, 64),
                     sources=True, partials=2, frames=3)
    assert saved_net(net.state_dict())["partials"] == 2 and net.part.out_channels == 2 * 7
    with torch.no_grad():
        net.linears[-1].weight.zero_()
        net.linears[-1].bias.fill_(-40.0)  # the cells: silence
        net.part.weight.zero_()
        b = net.part.bias.view(2, 7)  # per slot: score, 3 frequencies, 3 levels
        b[0, 1:4] = torch.logit(torch.tensor([100.5, 200.25, 300.0]) / 512)
        b[0, 4:] = torch.tensor([-3.0, -4.0, -5.0])
        b[1, 4:] = -60.0  # the other slot: silent
        z = net(torch.rand(2, 1, 64, 64)).reshape(2, 3, 513).numpy()
    lobe = -0.5 / MAIN_LOBE_VAR
    # frame 0: a peak half-way between bins 100 and 101, both at -3 less half a bin's fall
    np.testing.assert_allclose(z[:, 0, 100:102], -3.0 + lobe * 0.25, atol=1e-4)
    np.testing.assert_allclose(z[:, 0, 99], -3.0 + lobe * 1.5**2, atol=1e-4)
    assert z[0, 1].argmax() == 200 and z[0, 2].argmax() == 300
    np.testing.assert_allclose(z[:, 2, 300], -5.0, atol=1e-4)
    np.testing.assert_allclose(z[:, 0, 400], -40.0 + np.log(64), atol=1e-4)  # far: the cells
    # the slots start at the targets' loudest mean bin
    init_output_bias(net, torch.full((3 * 513,), -11.0).index_fill_(0, torch.tensor([7]), -4.0))
    assert torch.all(net.part.bias.view(2, 7)[:, 4:] == -4.0)
    # --arch partials trains, resumes and exports (parity 1e-4) with its slots
    ck = trains_resumes_exports(dataset, tmp_path, "partials")
    assert ck["best_model"]["part_shape"].tolist() == [16, 3]


def test_a_tone_source_sounds_its_harmonics_between_bins(dataset, tmp_path):
    from liveframe.train.model import MAIN_LOBE_VAR, saved_net

    net = DenseBrain((64 * 64, 16, 3 * 513), ceiling=20.0, conv_shape=(1, 64, 64),
                     sources=True, partials=2, frames=3, harmonics=4)
    got = saved_net(net.state_dict())
    assert (got["partials"], got["harmonics"]) == (2, 4)
    assert net.part.out_channels == 2 * (1 + 3 + 4 * 3)  # score, 3 fundamentals, 12 levels
    with torch.no_grad():
        net.linears[-1].weight.zero_()
        net.linears[-1].bias.fill_(-40.0)  # the cells: silence
        net.part.weight.zero_()
        b = net.part.bias.view(2, 16)
        b[0, 1:4] = torch.logit(torch.tensor([20.25, 30.0, 40.5]) / (512 / 4))
        b[0, 4:] = torch.arange(12, dtype=torch.float32).neg() - 2.0  # harmonic j, frame f
        b[1, 4:] = -60.0  # the other source: silent
        z = net(torch.rand(2, 1, 64, 64)).reshape(2, 3, 513).numpy()
    lobe = -0.5 / MAIN_LOBE_VAR
    # frame 0: fundamental 20.25, harmonics at 40.5, 60.75, 81 at levels -2, -5, -8, -11
    for j, (centre, level) in enumerate(zip((20.25, 40.5, 60.75, 81.0), (-2, -5, -8, -11))):
        near = round(centre)
        np.testing.assert_allclose(z[:, 0, near], level + lobe * (near - centre) ** 2, atol=1e-4,
                                   err_msg=f"harmonic {j + 1}")
    assert z[0, 1].argmax() == 30 and z[0, 2, 75:90].argmax() + 75 == 81  # 2 x 40.5
    np.testing.assert_allclose(z[:, 1, 120], -12.0, atol=1e-4)  # frame 1, harmonic 4 at 120
    np.testing.assert_allclose(z[:, 0, 400], -40.0 + np.log(64), atol=1e-4)  # far: the cells
    # --arch tones trains, resumes and exports (parity 1e-4) with its sources
    ck = trains_resumes_exports(dataset, tmp_path, "tones")
    assert ck["best_model"]["part_shape"].tolist() == [4, 3, 8]


@pytest.mark.parametrize("var", [0.763, 0.763 * 16])
def test_lobes_cut_off_far_from_their_peak_are_the_whole_gaussians(var):
    """The slots' lobes are computed near their peaks only and scattered into the frame:
    the same log-magnitudes as every lobe over every bin, at the spectrum's edges, where
    lobes overlap and with the lobes widened as lobe annealing widens them; and the same
    gradients."""
    from liveframe.train.model import _lobes

    gen = torch.Generator().manual_seed(0)
    bins = 513
    freq = (torch.rand(3, 6, 2, generator=gen, dtype=torch.float64) * (bins - 1))
    freq[0, 0, 0], freq[0, 1, 0], freq[1, 2, 1] = 0.2, bins - 1.1, freq[1, 3, 1] + 0.5
    level = torch.randn(3, 6, 2, generator=gen, dtype=torch.float64) * 3 - 4
    freq.requires_grad_(True)
    level.requires_grad_(True)
    d = torch.arange(bins, dtype=torch.float64).view(1, 1, 1, bins) - freq.unsqueeze(3)
    whole = torch.logsumexp((level.unsqueeze(3) - d * d * (0.5 / var)).reshape(3, 6, -1), 1)
    cut = _lobes(freq, level, bins=bins, var=var)
    # within 30 nepers of the loudest peak the two agree; elsewhere both are under that
    floor = float(level.detach().max()) - 30
    near = whole > floor
    assert torch.allclose(cut.double()[near], whole[near], atol=1e-5)
    assert bool(torch.all(cut.double()[~near] <= floor + 1e-6))
    g_cut = torch.autograd.grad(cut.double().exp().sum(), (freq, level))
    # both through the float32 the net outputs (a lobe's frequency gradient is a sum of
    # halves that nearly cancel, whose float32 rounding dominates it)
    g_whole = torch.autograd.grad(whole.float().double().exp().sum(), (freq, level))
    for a, b in zip(g_cut, g_whole):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-12)


def test_lobe_annealing_trains_on_wide_lobes_and_judges_the_narrow_ones(dataset, tmp_path):
    from liveframe.train.model import MAIN_LOBE_VAR

    # the same seed: the first epoch trains on other lobes, so its training loss differs
    plain = train(dataset, tmp_path / "p.pt", cfg(arch="tones", layers="I,32,L", epochs=2),
                  threads=1, quiet=True)
    wide = train(dataset, tmp_path / "w.pt",
                 cfg(arch="tones", layers="I,32,L", epochs=2, lobe_anneal=3),
                 threads=1, quiet=True)
    assert wide.history[0]["train"] != plain.history[0]["train"]
    # every recorded validation loss, and the saved weights, are the narrow lobes': the
    # last epoch's weights, rebuilt as export rebuilds them, give the last epoch's loss
    ck = load_checkpoint(tmp_path / "w.pt")
    assert ck["config"]["lobe_anneal"] == 3
    assert state_from_checkpoint(ck)[1].lobe_var == MAIN_LOBE_VAR
    assert val_loss_of(ck, ck["model"], dataset) == pytest.approx(wide.history[-1]["val"],
                                                                  rel=1e-5)
    # the narrow lobes may sound worse while the wide ones train: those epochs do not
    # count towards patience (a rate this high kills the net in its first steps: every
    # epoch after the first is no better than it)
    hot = train(dataset, tmp_path / "h.pt", cfg(arch="tones", layers="I,32,L", epochs=4,
                                                 lr=1.0, patience=1, lobe_anneal=3),
                threads=1, quiet=True)
    vals = [h["val"] for h in hot.history]
    assert min(vals[1:3]) >= vals[0], vals  # no better: patience 1 alone stops at 2
    assert hot.epoch == 4 and hot.stopped == (vals[3] >= hot.best_val)
    # on a net without slots it changes nothing
    a = train(dataset, tmp_path / "a.pt", cfg(epochs=1), threads=1, quiet=True)
    b = train(dataset, tmp_path / "b.pt", cfg(epochs=1, lobe_anneal=3), threads=1, quiet=True)
    assert a.history[0]["train"] == b.history[0]["train"]


def test_export_load_and_render_a_spectrum_brain(trained, tmp_path):
    ck_path, _ = trained
    out = export_checkpoint(ck_path, tmp_path / "spec.onnx")
    brain = Brain.load(out)
    assert brain.spec.spectral and brain.spec.length == 1539 and brain.spec.scale == 1.0
    # it learned the dataset: the 441 Hz tone at 0.05 times the brightness
    levels = []
    for value in (250, 128, 76):
        z = brain.run(np.full((20, 1, SIZE, SIZE), value, np.uint8))
        assert np.all(np.abs(z[0].reshape(3, 513).argmax(axis=1) - 441 / BIN_HZ) <= 1)
        levels.append(M.rms_dbfs(decode(z, brain.spec)[HOP * 4:]))
    want = 20 * np.log10(0.05 / np.sqrt(2) * np.array([250, 128, 76]) / 255)
    np.testing.assert_allclose(levels, want, atol=2.0)
    # pictures like none it was trained on never play louder than its ceiling
    odd = np.random.default_rng(1).random((64, 1, SIZE, SIZE), dtype=np.float32)
    odd[::2] = (odd[::2] > 0.5) * 1.0
    ceiling = float(load_checkpoint(ck_path)["best_model"]["ceiling"])
    assert brain.run(odd).max() <= ceiling

    # `liveframe render` through the tick pipeline: a bright second, then a dimmer one
    frames = [(i / 30, np.full((32, 32), 250 if i < 30 else 76, np.uint8)) for i in range(60)]
    sr = C.SAMPLE_RATE
    n = np.arange(2 * sr)
    amp = np.where(n < sr, 250, 76) / 255 * 0.05
    clip = write_clip(tmp_path / "clip.mkv", frames, sr=sr,
                      audio=amp * np.sin(2 * np.pi * 441 * n / sr))
    wav = tmp_path / "out.wav"
    assert main(["render", str(clip), "-o", str(wav), "--brain", str(out)]) == 0
    rate, y = read_wav(wav)
    first, second = y[rate // 4:3 * rate // 4], y[5 * rate // 4:7 * rate // 4]
    assert M.rms_dbfs(first) == pytest.approx(want[0], abs=2.0)
    assert M.rms_dbfs(second) == pytest.approx(want[2], abs=2.0)

    # eval knows the kind, and gives each mode's level against the true soundtrack
    res = evaluate(brain, clip, modes=("ola", "granular"))
    assert res["kind"] == "spectrum"
    assert res["reference"]["rms_dbfs"] == pytest.approx(M.rms_dbfs(amp * np.sin(
        2 * np.pi * 441 * n / sr)), abs=0.2)
    for m, v in res["modes"].items():
        assert -3 < v["level_db"] < 3, (m, v)  # the brain plays the film about as loud
    assert res["modes"]["ola"]["envelope_corr"] > 0.8, res["modes"]


def test_spectrum_resume_continues_as_if_never_interrupted(dataset, tmp_path):
    full = train(dataset, tmp_path / "full.pt", cfg(epochs=3), threads=1, quiet=True)
    train(dataset, tmp_path / "part.pt", cfg(epochs=2), threads=1, quiet=True)
    # the kind comes back from the checkpoint: a plain config resumes a spectrum run
    more = train(dataset, tmp_path / "part.pt", TrainConfig(epochs=3), resume=True,
                 explicit=("epochs",), threads=1, quiet=True)
    assert [(h["train"], h["val"]) for h in more.history] == [
        (h["train"], h["val"]) for h in full.history]
    ck = load_checkpoint(tmp_path / "part.pt")
    assert ck["spec"]["output"]["kind"] == "spectrum" and ck["config"]["layers"] == [
        SIZE * SIZE, 64, 1539]


def test_resume_refuses_another_kind_in_one_line(dataset, tmp_path, capsys):
    spec_ck, pcm_ck = tmp_path / "s.pt", tmp_path / "p.pt"
    assert main(["train", str(dataset), "-o", str(spec_ck), "--layers", "I,16,L",
                 "--epochs", "1", "--threads", "1", "--quiet"]) == 0
    assert main(["train", str(dataset), "-o", str(pcm_ck), "--kind", "pcm", "--layers",
                 "I,16,L", "--epochs", "1", "--threads", "1", "--quiet"]) == 0
    capsys.readouterr()
    before = spec_ck.read_bytes()
    assert main(["train", str(dataset), "-o", str(spec_ck), "--resume", "--kind", "pcm",
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("liveframe train: --kind 'pcm' disagrees with the checkpoint")
    assert "(spectrum)" in err and "\n" not in err and "Traceback" not in err, err
    assert spec_ck.read_bytes() == before
    # a pcm checkpoint resumes as pcm without --kind, even one saved before the field
    ck = load_checkpoint(pcm_ck)
    del ck["config"]["kind"]
    save_checkpoint(ck, pcm_ck)
    assert main(["train", str(dataset), "-o", str(pcm_ck), "--resume", "--epochs", "2",
                 "--threads", "1", "--quiet"]) == 0
    after = load_checkpoint(pcm_ck)
    assert after["epoch"] == 2 and after["config"]["kind"] == "pcm"
    assert after["config"]["batch_size"] == 256 and after["config"]["loss"] == "mse"
    assert after["spec"]["output"]["kind"] == "pcm" and after["spec"]["output"]["length"] == 1470
    assert main(["train", str(dataset), "-o", str(pcm_ck), "--resume", "--kind", "spectrum",
                 "--quiet"]) == 2
    assert "--kind 'spectrum' disagrees" in capsys.readouterr().err


def test_block_datasets_train_spectrum_brains_too(tmp_path):
    ds = make_learnable_dataset(tmp_path / "block.npz", framing="block", ticks=300)
    res = train(ds, tmp_path / "ck.pt", cfg(epochs=1, layers="I,8,L", context=1),
                threads=1, quiet=True)
    spec = BrainSpec.from_dict(load_checkpoint(res.checkpoint)["spec"])
    assert spec.spectral and spec.framing == "grain" and spec.context == 1
    assert spec.length == 1539


@pytest.mark.parametrize("args, message", [
    (["--kind", "pcm", "--loss", "logmag"], "--loss 'logmag' must be one of mse, l1 for a pcm"),
    (["--sc-weight", "-1"], "--sc-weight -1.0 must be 0 or more"),
])
def test_bad_spectrum_options_are_one_line(dataset, tmp_path, capsys, args, message):
    rc = main(["train", str(dataset), "-o", str(tmp_path / "ck.pt"), *args, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("liveframe train: ") and message in err, err
    assert "\n" not in err and "Traceback" not in err, err
    assert not (tmp_path / "ck.pt").exists()


def test_soft_ceiling_bounds_a_runaway_output_and_is_the_identity_under_it():
    model = DenseBrain((4, 3), ceiling=-2.0)
    with torch.no_grad():
        model.linears[-1].weight.zero_()
        model.linears[-1].bias.copy_(torch.tensor([100.0, -2.0, -12.0]))
        out = model(torch.zeros(1, 4))[0]
    assert float(out[0]) == pytest.approx(-2.0, abs=1e-6)  # 100 would be e^100 loud
    assert float(out[1]) == pytest.approx(-2.0 - np.log(2), abs=1e-6)
    assert float(out[2]) == pytest.approx(-12.0, abs=1e-4)  # quiet bins untouched
    # the bias starts where the ceiling maps it onto the targets' mean
    init_output_bias(model, torch.tensor([-2.5, -6.0, -11.0]))
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.zeros(1, 4))[0].numpy(), [-2.5, -6.0, -11.0],
                                   atol=1e-5)
    assert "ceiling" in model.state_dict() and "ceiling" not in DenseBrain((4, 3)).state_dict()


def test_a_spectrum_brain_with_context_sees_motion_planes() -> None:
    import torch

    from liveframe.train.model import MOTION_GAIN, DenseBrain

    net = DenseBrain((2 * 16, 8, 5), motion_channels=1, conv_shape=(2, 4, 4))
    still = torch.full((1, 2, 4, 4), 0.5)
    moved = still.clone()
    moved[0, 1, 0, 0] = 0.75  # the current picture changed in one pixel
    m = net.motion(moved)
    assert m.shape == moved.shape
    assert float(m[0, 0, 0, 0]) == pytest.approx(0.25 * MOTION_GAIN)
    assert not net.motion(still)[0, 0].any()  # nothing moved: the motion plane is dark
    torch.testing.assert_close(m[0, 1], moved[0, 1])  # the current picture as it is
    # a flat training batch is the same input as the exported graph's [N, planes, H, W]
    torch.testing.assert_close(net(moved.reshape(1, -1)), net(moved))
    conv = DenseBrain((2 * 16, 8, 5), motion_channels=1, conv_shape=(2, 4, 4), conv=True)
    torch.testing.assert_close(conv(moved.reshape(1, -1)), conv(moved))


def test_starts_keep_the_best_run_and_go_on_as_if_it_never_stopped(dataset, tmp_path):
    from liveframe.train.trainer import start_paths

    out = tmp_path / "x.pt"
    res = train(dataset, out, cfg(epochs=4, starts=2, start_epochs=2), threads=1, quiet=True)
    ck = load_checkpoint(out)
    tried = ck["spec"]["provenance"]["starts"]
    assert [t["seed"] for t in tried] == [0, 1] and [t["epochs"] for t in tried] == [2, 2]
    kept = min(tried, key=lambda t: t["val_loss"])
    assert tried[0]["val_loss"] != tried[1]["val_loss"]
    assert ck["config"]["seed"] == kept["seed"] and ck["config"]["starts"] == 2
    assert not any(p.exists() for p in start_paths(out, 2))  # the starts are gone
    # the kept start went on as if it had never stopped: a plain run of its seed
    plain = train(dataset, tmp_path / "plain.pt", cfg(epochs=4, seed=kept["seed"]), threads=1,
                  quiet=True)
    assert [(h["train"], h["val"]) for h in res.history] == [
        (h["train"], h["val"]) for h in plain.history]
    assert res.epoch == 4 and ck["epoch"] == 4


def test_starts_killed_midway_resume(dataset, tmp_path):
    from liveframe.train.trainer import start_paths

    full = train(dataset, tmp_path / "full.pt", cfg(epochs=3, starts=2, start_epochs=2),
                 threads=1, quiet=True)
    seen = []

    def kill(entry: dict) -> None:
        seen.append(entry)
        if len(seen) == 3:  # the second start's first epoch is on disk
            raise KeyboardInterrupt

    out = tmp_path / "part.pt"
    with pytest.raises(KeyboardInterrupt):
        train(dataset, out, cfg(epochs=3, starts=2, start_epochs=2), threads=1, quiet=True,
              on_epoch=kill)
    first, second = start_paths(out, 2)
    assert not out.exists() and load_checkpoint(second)["epoch"] == 1
    # a new run over unfinished starts is refused; --resume finishes them
    with pytest.raises(ParamError, match="unfinished starts"):
        train(dataset, out, cfg(epochs=3, starts=2, start_epochs=2), threads=1, quiet=True)
    more = train(dataset, out, TrainConfig(), resume=True, threads=1, quiet=True)
    assert [(h["train"], h["val"]) for h in more.history] == [
        (h["train"], h["val"]) for h in full.history]
    assert load_checkpoint(out)["spec"]["provenance"]["starts"] == load_checkpoint(
        tmp_path / "full.pt")["spec"]["provenance"]["starts"]
    assert not first.exists() and not second.exists()


def test_train_cli_starts_and_its_bad_values(dataset, tmp_path, capsys):
    out = tmp_path / "c.pt"
    assert main(["train", str(dataset), "-o", str(out), "--layers", "I,16,L", "--epochs", "2",
                 "--starts", "2", "--start-epochs", "1", "--seed", "7", "--quiet"]) == 0
    ck = load_checkpoint(out)
    assert [t["seed"] for t in ck["spec"]["provenance"]["starts"]] == [7, 8]
    # resuming with the first seed given again is the same run
    assert main(["train", str(dataset), "-o", str(out), "--seed", "7", "--epochs", "3",
                 "--resume", "--quiet"]) == 0
    assert load_checkpoint(out)["epoch"] == 3
    # the brain card says which start was kept, among which
    brain = tmp_path / "c.onnx"
    assert main(["export", str(out), "-o", str(brain)]) == 0
    capsys.readouterr()
    assert main(["info", str(brain)]) == 0
    kept = min(ck["spec"]["provenance"]["starts"], key=lambda t: t["val_loss"])["seed"]
    assert f"kept seed {kept} of 2 starts (validation " in capsys.readouterr().out
    bad = tmp_path / "bad.pt"
    assert main(["train", str(dataset), "-o", str(bad), "--starts", "0", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--starts" in err and "\n" not in err and "Traceback" not in err, err
    assert not bad.exists()
