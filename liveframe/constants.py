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

DEFAULT_BRAIN_NAME = "default"
"""Name of the brain played when none is given (``brains/default.onnx``, shipped)."""

SPEC_KEY = "liveframe"
"""Key of the JSON spec in the ONNX model's ``metadata_props``."""

SPEC_FORMAT = "liveframe-brain"
SPEC_VERSION = 1

INPUT_NAME = "frames"
OUTPUT_NAME = "audio"
