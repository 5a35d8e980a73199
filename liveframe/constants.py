"""Every default in one place; everything else is derived from these."""

from __future__ import annotations

SAMPLE_RATE = 22050
"""Brain audio rate in Hz (the 2015 experiment's rate)."""

FPS = 30
"""Brain clock in ticks per second."""

HOP = SAMPLE_RATE // FPS
"""Samples per tick at the brain rate: 735."""

FRAME_SIZE = 64
"""Width and height of the frame the brain sees."""

FRAMINGS = ("grain", "block")
"""``grain``: 2*HOP Hann-windowed, centred on the tick; ``block``: HOP samples from the tick."""

MODES = ("ola", "raw", "granular")
"""Synthesis modes shared by live and offline render (render adds ``csound``)."""

KINDS = ("pcm", "spectrum")
"""What a brain outputs: ``pcm`` audio blocks, or ``spectrum`` log-magnitude STFT frames."""

N_FFT = 1024
"""Spectrum brains: FFT size (= Hann window length) at the brain rate (46 ms at 22050 Hz)."""

SPECTRAL_FRAMES = 3
"""Spectrum brains: STFT frames per tick (hop HOP / 3 = 245 samples, redundancy 4.2)."""

WINDOWS = ("hann",)
"""Spectrum brains: analysis/synthesis windows."""

PHASES = ("rtpghi", "pv", "random", "steal")
"""Spectrum brains: phase reconstruction methods; the first is the default."""

LOG_FLOOR = 1e-5
"""Spectrum brains: floor of the magnitudes (a full-scale sine's peak bin reads 1.0) before
the natural log; -100 dB per bin. Magnitudes under twice the floor play exact silence."""

DEFAULT_BRAIN_NAME = "default"
"""Name of the brain played when none is given (``brains/default.onnx``, shipped)."""

SPEC_KEY = "liveframe"
"""Key of the JSON spec in the ONNX model's ``metadata_props``."""

SPEC_FORMAT = "liveframe-brain"
SPEC_VERSION = 1

INPUT_NAME = "frames"
OUTPUT_NAME = "audio"
