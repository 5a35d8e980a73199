"""What the monitor looks like and how often it looks: rates, levels and colours (no Qt)."""

from __future__ import annotations

REFRESH_HZ = 30.0
"""How often the window pulls a snapshot."""

FIGURES_EVERY = 3
"""The numbers are redrawn every this many pulls (10 Hz): readable, and cheaper."""

SPEC_COLUMNS = 300
"""Columns of the scrolling spectrogram (one per brain tick: 10 s at 30 fps)."""

SPEC_NFFT = 1024
"""FFT size of one spectrogram column (the output block is zero-padded to it)."""

SPEC_FLOOR_DB = -100.0
"""Bottom of the spectrogram's colour scale, in dB."""

METER_FLOOR_DB = -60.0
"""Bottom of the level meter, in dBFS."""

PEAK_HOLD_S = 1.5
"""How long the meter's peak line stays up before it follows the level down."""

BACKGROUND = "#121214"
DIM_TEXT = "#8e8e93"
WAVE_COLOUR = "#64d2ff"
WARNING_COLOUR = "#ff9f0a"
GOOD = "#34c759"
AMBER = "#ffcc00"
BAD = "#ff3b30"
MUTED_STYLE = "QPushButton{background:#ff9f0a;color:black;}"
FROZEN_STYLE = "QPushButton{background:#0a84ff;}"
PANIC_STYLE = "QPushButton{background:#b00020;color:white;font-weight:bold;}"

OPEN_FILE = "open file…"
"""The brain selector's last entry: pick a ``.onnx`` file in a dialog."""

KEYS_HELP = "space mute · Esc panic · F fullscreen"


def level_colour(dbfs: float) -> str:
    """Meter colour for a level: green, amber from -12 dBFS, red from -3 dBFS."""
    if dbfs >= -3.0:
        return BAD
    if dbfs >= -12.0:
        return AMBER
    return GOOD
