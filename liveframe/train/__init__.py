"""Training a brain with PyTorch on the CPU, and exporting it to ONNX.

This package imports without torch (the instrument never needs it): the torch code in
:mod:`liveframe.train.trainer`, :mod:`liveframe.train.model` and
:mod:`liveframe.train.export` is imported only when a training run or an export starts.
Without torch, :func:`require_torch` says how to install it, in one line.
"""

from __future__ import annotations

import os
from pathlib import Path

from liveframe.errors import LiveframeError, ParamError
from liveframe.util.files import zip_input

INSTALL_HINT = "pip install -e '.[train]'"

VAL_SECONDS = 5.0
"""The least validation, in seconds, a spectrum brain holds out by default
(:func:`held_out_share`)."""
VAL_SHARES = (0.1, 0.3)
"""The share of each source held out by default: at least, and at most."""

ARCHS: dict[str, tuple[int, ...]] = {
    "shallow": (1000,),
    "deep": (1000, 1000, 1000),
    "wide": (2048, 1000, 1000),
    "kungfury": (2000, 1500, 1000),
    "spectral": (1024,),
    "conv": (512,),
    "sources": (128,),
    "partials": (128,),
    "tones": (128,),
}
"""Hidden sizes of the 2015 topologies (4096-...-735 at 64x64 grey, block framing), of
``spectral``, a dense spectrum brain (4096-1024-1539 at 64x64 grey and the STFT defaults),
``conv``: a convolutional front end (16, 32, 32 planes, 64x64 -> 8x8) before 512 hidden units;
``sources``: the same front end, then every cell of the 8x8 map sounds through one head of 128
hidden units shared by all cells, and the cells' magnitudes add up
(:class:`liveframe.train.model.DenseBrain`); ``partials``: ``sources`` plus 16 partial slots
that place peaks anywhere in the spectrum, between bins too; ``tones``: ``sources`` plus 4
harmonic sources, each 8 harmonics of a fundamental placed anywhere.

The input size follows the frame geometry and context, the output size the framing (pcm)
or ``frames * bins`` (spectrum).
"""

DEFAULT_ARCH = {"pcm": "shallow", "spectrum": "tones"}
"""The topology each kind of brain trains with when neither arch nor layers is given.

``tones`` for spectrum brains, trained with the weight average and three starts
(:data:`KIND_DEFAULTS`) and a validation of at least :data:`VAL_SECONDS`
(:func:`held_out_share`). What decided it, the history below: it is the one recipe measured
at or under 5 dB on the free-phase film's held-out minute (4.62 dB and 5.46 on another
film, seed 1 kept of 3, black pictures silent; ``benchmarks/results/freefilm.md``), and
with a validation long enough to mean something it learns when the man on the real clip
talks (held-out envelope correlation 0.84, mel 11.05 dB against the mean spectrum's
15.29, where every earlier default stayed near 0 and 15; ``realfootage.md``). ``sources``
with the same flags and 30 % held out learned the talking a little better (0.89, 10.30
dB) and was not measured under 5 dB on the free-phase film; on the real clips ``tones``
plays black pictures at -80 dBFS, ``sources`` silent.

Before that, ``sources`` was the default:
``sources`` for spectrum brains, with a head of 128 hidden units. On the free-phase scene
of ``benchmarks/bench_freefilm.py`` (its first 180 s trained; lr 2e-3, 2 threads): 128
units gave mel distance 7.80 dB on its held-out minute and 9.37 on another film (level
-3.0 and -2.7 dB, envelope correlation 0.992 and 0.976, best validation loss 0.57), 256
units 8.73 and 10.46 (-2.3 and -4.2 dB, validation 0.72) at twice the inference (one
thread: 128 units 7.13 and 10.31). The first trials
(180 s of seed 2026 trained, 60 s of seed 2027 tested; 256 units): ``sources`` level
-2.8 dB, envelope 0.985, mel 8.28 dB, against -0.7 dB, 0.898 and 13.32 dB for ``conv`` at
its own rate (1e-3; at 2e-3 it did worse on the real clips, 9.2 against 7.5 dB). ``conv``
does not generalise: its training loss falls to 0.12 while its validation loss stays at
1.07 from epoch 5 on (a run with patience 40); given 15 minutes of film instead of 3 it
reaches mel 8.82 dB, what ``sources`` reaches with 3. ``sources`` itself: 4.64 dB on its
training film, 6.57 on that film's held-out validation stretches, 8.28 on another film
(another background); coordinate planes on the picture as well (CoordConv) memorised
positions (best validation loss 1.01 against 0.81 at the same epoch). On the two real
clips (16 s trained, training seeds 0-3): held-out launch mel 6.9 to 9.6 dB for
``sources`` (8.2 to 10.5 with 256 units), 7.5 to 12.5 for ``conv`` at 1e-3, 11.8 for the
mean training spectrum; the man talking 14.3 to 15.5 for ``sources``, 14.6 to 14.9 for
``conv``, 15.3 for the mean spectrum: 16 s of film teach no net the sound of a scene
(``benchmarks/results/realfootage.md``).

``partials`` (``sources`` plus 16 partial slots) is not the default: on the same scene and
run it gave 7.56 and 8.63 dB (level -2.9 and -3.6 dB, envelope 0.996 and 0.996, best
validation loss 0.52 against 0.57), and its peaks are no longer blurred (median level of a
tone's strongest peak 2.6 dB under the truth, 5.7 for ``sources``), but its pitch is no
better (median error of a fundamental 38 and 42 cents against 44 and 26: the picture's
height is read no more precisely), and on the real launch clip it did worse (held-out mel
9.11 dB and level -18.1 dB against 7.89 and -6.0), at about twice the inference (2.1
against 0.9 to 1.2 ms a tick, side by side on a loaded host). (``python -m
benchmarks.bench_freefilm --threads 2 --arch partials`` and ``python -m
benchmarks.bench_realfootage --footage build/footage --threads 2 --arch partials``; the
slots' arithmetic was float32 then, float64 now for export parity, the same sums.)

``tones`` (``sources`` plus 4 harmonic sources of 8 harmonics each,
:data:`~liveframe.train.model.TONES`) is the closest to the free-phase targets yet, and not
yet the default. On the same scene (2 threads, ``python -m benchmarks.bench_freefilm
--threads 2 --only spectrum --arch tones``): held-out mel 5.75 dB and another film 6.55
(level -1.6 and -0.8 dB, envelope 0.997 and 0.994, frame line 0.56 and 0.90 against the
truth's 0.23 and 0.07), trained to the 150-epoch cap and still improving (best validation
0.38; 3124 s on a loaded host), inference 1.76 ms a tick (median). A run of the same
flags whose first 8 epochs ran on one thread stopped early at epoch 77 (validation 0.57)
and gave 7.00 and 8.10 dB: early stopping decides much of it. In the 150-epoch run one
source follows a tone's fundamental (209, 269, 224, 266 Hz played 206, 273, 226, 269 on
held-out ticks, loud); in the run stopped at 77 none did
(:data:`~liveframe.train.model.TONES`).

Every figure above was measured through the block-mean DC ramp that
:class:`liveframe.core.safety.DcBlocker` replaced (the ramp buzzed at the block rate and
cost a free-phase brain 0.3 to 0.6 dB of mel distance). Through the DC blocker, the same
brains (``liveframe eval BRAIN FILM --json --modes ola``): ``sources`` 7.47 and 9.10 dB
(``benchmarks/results/freefilm.md``), level -3.0 and -2.7, black pictures at -83 dBFS;
``tones`` at 150 epochs 5.10 and 6.03 dB, level -1.6 and -0.8, black pictures at -27
dBFS. That ``tones`` run resumed with a cap of 400 stopped early at epoch 171 (best
validation 0.364 at 161, against 0.375 at 146): 5.01 and 6.06 dB, level -1.9 and -1.1,
envelope 0.997 and 0.993, frame line 0.49 and 1.0, black pictures at -30 dBFS; its best
epoch continued at a third of the rate (``--lr-patience``) fitted its training ticks
further (loss 0.155 to 0.147) and its validation ticks no better (0.370 to 0.376): it
overfits 3 minutes of film. That run was the lucky one. The same data, one thread
each, ``liveframe train DATA --kind spectrum --arch tones --threads 1 [flags]``: the
defaults again stopped early at epoch 127 (best validation 0.567 at 117), 6.66 and 7.83
dB, black -77 dBFS; ``--weight-decay 0.02`` stopped at 106 (0.475 at 96), 6.67 and 7.57
dB, black -48 dBFS (0.1 learned slower at every epoch, validation 0.75 against 0.56 at
epoch 68, and was stopped); ``--lr-schedule cosine --patience 150`` ran its 150 epochs
(0.469 at 129), 6.06 and 7.85 dB, level -2.0 and -0.8, black -101 dBFS. With the run
stopped at 77 (7.00 dB), ``tones`` at default flags lands anywhere from 5.0 to 7.0 dB on
the held-out minute: where a run stops, and what its sources lock onto, decide more than
any of these flags. Its errors (``python -m benchmarks.freefilm_errors``): 3.30 dB
on its own training film, 3.80 on ticks where a disc sounds alone, 3.51 a bar alone, 4.24
a square, 6.58 where two or more objects sound; pitch a median 32 cents off on the disc
and 18 on the bar (``sources``: 7.47, 5.25 on its training film, 9.1 alone). On the real
clips (``python -m benchmarks.bench_realfootage --footage build/footage --threads 2
[--arch tones] --seed S``, seeds 0 to 3, through the ramp): the held-out launch plays at
-13.9, -13.1, -11.4 and -15.1 dB from the true level for ``tones`` and -5.9, -15.7, -7.8
and -17.7 for ``sources`` (mel 6.5, 6.3, 9.0, 8.7 against 7.9, 7.9, 6.9, 9.6): no better
or worse in level, seed by seed (an earlier note compared ``tones`` against the one lucky
``sources`` seed). The man talking is worse with ``tones``: 15.3 to 19.1 dB against 14.3 to
15.5 (the mean spectrum 15.3), a pitched sound the picture does not predict. So ``tones``
stays an option: 5.0 dB on the held-out minute at best and 6 to 7 in most runs, black
pictures up to 50 dB louder than ``sources``'s, worse on speech, at about twice the
inference then (now that its lobes are cut off near their peaks, 1.01 ms a tick against
``sources``'s 0.82, and its training steps are twice as fast as then).

Two options against that spread, measured on the same data, one thread, 150 epochs each
(``liveframe train DATA --kind spectrum --arch tones --threads 1 --seed S [flags]``;
BENCHMARKS.md has the table): ``--ema 0.999`` (validation and the kept weights are a
moving average of the weights, :class:`~liveframe.train.trainer.WeightAverage`) gave 6.42
and 7.71 dB on seed 0 (validation 0.545) and 4.62 and 5.46 dB on seed 1 (0.336; black
pictures silent); adding ``--lobe-anneal 30`` (the sources' lobes 4 times as wide at
first, narrowing over 30 epochs) gave 5.12 and 5.47 dB on seed 0 (0.354) and, on seed 1,
a run stuck at validation 1.40 from epoch 40 (stopped at 93, 1.36). A run's seed still
decides more than either option; both stay off by default.

Seeds 2 and 3 of ``--ema 0.999`` trained on to 150 epochs: 5.87 and 7.15 dB (validation
0.410), 4.81 and 7.39 dB (0.347). Over the four seeds the held-out mel distance follows
the best validation loss in order (0.336: 4.62, 0.347: 4.81, 0.410: 5.87, 0.545: 6.42),
and the validation at epoch 40 already sets the worst seed apart (0.830 against 0.567 to
0.612): hence ``--starts K`` (:func:`~liveframe.train.trainer.train`), which keeps the best
of K seeds after ``--start-epochs``. Tried and dropped, same data: a spectral transport
term in the loss (:class:`~liveframe.train.trainer.Loss`); 8 harmonic sources instead of
4 (validation 1.05 and 0.61 at epoch 46 on seeds 0 and 2, behind the 4 sources' 0.77 and
0.57 there; stopped). On the real clips the weight average is what fails: their 11 s are 5 steps
an epoch, the average's validation was best at epoch 7 and never again (validation there
is a few seconds of sound the pictures do not predict), and the brain kept is the mean
spectrum again (held-out launch 12.07 dB, the mean spectrum 11.83; without the average,
with ``--starts 3``: 6.30 dB, the man talking 16.38 against the mean's 15.29). A longer
patience for the average (``effective_patience``) lets such a run train on, and keeps the
same epoch-7 average; ``sources`` with ``--ema 0.999 --starts 3`` keeps its epoch-5
average (launch 10.37 dB). So ``sources`` without the average stayed the default, until
the validation was seen to be what failed there: with 30 % of the clips held out both nets
trained on and learned when the man talks (:func:`held_out_share`), and ``tones`` with the
average, three starts and that rule became the default.

What keeps ``sources``'s mel distance on the free-phase film over 5 dB is not the pitch
read from the picture: the true soundtrack with every tone's pitch off by a median of 45 cents (the
brain's median error on the disc) scores 3.4 dB, 30 cents 2.2 dB. It is how a tone is
sounded: the brain scores 9.1 dB on the ticks where one tone sounds alone (the cells'
dense output plays a tone's fundamental at about its level and harmonics 2 to 4 10 to 30
dB too quiet and smeared), and it fits its own training film only to 5.25 dB
(``python -m benchmarks.freefilm_errors``, ``benchmarks/results/freefilm_errors.md``).
Measured and not adopted against this: a 5x5 convolution over the 8x8 map (each cell sees
the widest disc whole; it generalises worse, :func:`~liveframe.train.model.conv_front`);
the cells without the picture's mean planes (validation 0.784 at epoch 40 against 0.769);
a mel-band term in the loss (``--mel-weight``, :class:`~liveframe.train.trainer.Loss`).

``spectral`` (one hidden layer of 1024) was chosen on a 90 s free-phase film
(:mod:`liveframe.data.freefilm`, seed 1; batch 64, the logmag loss): best validation loss
0.84 against 0.97 for 512 hidden units; 512 and 256 at batch 256 stopped early before
learning anything (the issue's prototype had 512 hidden units at n_fft 2048).
"""


KIND_DEFAULTS: dict[str, dict[str, float | int | str]] = {
    "pcm": {"batch_size": 256, "lr": 1e-3, "epochs": 50, "lr_schedule": "constant",
            "patience": 5, "ema": 0.0, "starts": 1, "val_seconds": 0.0},
    "spectrum": {"batch_size": 64, "lr": 2e-3, "epochs": 150, "lr_schedule": "constant",
                 "patience": 10, "ema": 0.999, "starts": 3, "val_seconds": VAL_SECONDS},
}
"""What each kind of brain trains with when the option is not given (None in
:class:`~liveframe.train.trainer.TrainConfig`). Spectrum brains, with the ``sources`` net,
on the free-phase film (``benchmarks/bench_freefilm.py``): lr 2e-3 (1e-3: validation loss
0.69 at epoch 120 and mel 12.0 dB on another film, against 0.42 and 8.3; 3e-3 with cosine
annealing was behind 2e-3 at every epoch up to 37), up to 150 epochs (at 2e-3 the validation
loss still fell at epoch 117), patience 10 (5 stopped a run at epoch 81, 0.46 against 0.43),
batch 64 (256 for a dense net on a 90 s film: validation loss 0.98 against 0.84, where an
epoch is ten steps and early stopping comes before the net has moved). The weight average
(``ema`` 0.999) and three starts came with ``tones`` (:data:`DEFAULT_ARCH`); ``pcm``
brains keep their 2015-style recipe, and a validation of 10 % of any length.
"""


def held_out_share(seconds: float, val_seconds: float) -> float:
    """The share of each source held out for validation when ``--val-fraction`` is not
    given: :data:`VAL_SHARES`'s 10 %, raised to hold out ``val_seconds`` of the
    dataset's ``seconds``, up to 30 %.

    A 3-minute film holds out 10 % (18 s); the two real clips' 11 s hold out 30 %. With
    10 % of them (0.6 s a clip) a spectrum brain's validation is too short to mean anything
    and is best at epoch 5 to 7: the brain kept played the mean spectrum (held-out launch
    12.07 dB, the mean 11.83). With 30 % it trains on to epoch 150 and learns when the
    man talks (envelope correlation 0.84 held out; ``python -m
    benchmarks.bench_realfootage``, ``realfootage.md``).
    A fixed 30 % costs a long film what it gains a short one: on the free-phase film
    (``tones``, the weight average, three starts; ``python -m benchmarks.bench_freefilm
    --threads 1 --only spectrum --arch tones --train-flags="--ema 0.999 --starts 3
    --val-fraction 0.3"``) it kept seed 0 and scored 6.49 dB on the held-out minute and 8.18
    on another film, against 4.62 and 5.46 with 10 %.
    """
    lo, hi = VAL_SHARES
    if seconds <= 0.0 or val_seconds <= 0.0:
        return lo
    return min(max(lo, val_seconds / seconds), hi)


class CheckpointError(LiveframeError):
    """A checkpoint that is missing, unreadable or does not fit the run."""


def check_checkpoint_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a file that can be a checkpoint (a regular, non-empty zip file, which
    every ``torch.save`` writes), checked without torch: a wrong file is refused at once.

    Raises
    ------
    CheckpointError
        One line naming the file.
    """
    return zip_input(path, CheckpointError, what="checkpoint", made_by="`liveframe train`",
                     archive="a torch.save file")


class TorchMissingError(LiveframeError):
    """Training or export asked for, but torch (the ``[train]`` extra) is not installed."""


def require_torch(what: str = "training", *, load: bool = True) -> None:
    """Raise a one-line :class:`TorchMissingError` when torch cannot be imported.

    ``load=False`` only looks for it (no import, which takes seconds), so a command can
    say at once that torch is missing and still check its inputs before loading it.
    """
    if not load:
        import importlib.util
        import sys

        if "torch" in sys.modules:
            found = sys.modules["torch"] is not None
        else:
            try:
                found = importlib.util.find_spec("torch") is not None
            except (ImportError, ValueError):
                found = False
        if found:
            return
    try:
        import torch  # noqa: F401
    except ImportError:
        raise TorchMissingError(
            f"PyTorch is not installed ({what} needs it); run: {INSTALL_HINT}"
        ) from None


def check_output_file(out: str | os.PathLike[str], *, example: str) -> Path:
    """``out`` as a file that can be written: not a folder, in a writable folder.

    Parameters
    ----------
    out : path-like
    example : str
        A file name to suggest when ``out`` is a folder (``brains/NAME.onnx``).

    Raises
    ------
    ParamError
        Naming the parameter ``out``.
    """
    p = Path(out)
    if p.is_dir():
        raise ParamError("out", p, f"is a directory; give a file name such as {example}")
    if not p.parent.is_dir():
        raise ParamError("out", p, f"cannot be written: folder {p.parent} does not exist")
    if not os.access(p.parent, os.W_OK):
        raise ParamError("out", p, f"cannot be written: folder {p.parent} is not writable")
    return p
