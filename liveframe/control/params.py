"""The instrument's controls and the snapshot the monitor reads.

:class:`Controls` is the one place every control surface writes to: the OSC server, the
monitor's widgets, the keyboard. Writers only validate, clamp and store (a Python attribute
store is atomic under the GIL); the producer reads the values once per tick. Requests that
are events rather than levels (panic, a brain swap) are counters or single slots the
producer consumes.

:class:`Snapshot` is what the GUI pulls at about 30 Hz: preallocated arrays the engine fills
on request, so the monitor never holds a reference into the audio path.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe import constants as C

GAIN_MAX = 2.0
DENSITY_MAX = 4.0
SPREAD_MAX = 4.0


def _clamp(v: float, lo: float, hi: float) -> float:
    if not math.isfinite(v):
        raise ValueError(f"{v!r} is not a finite number")
    return min(max(v, lo), hi)


class Controls:
    """Parameters of a playing instrument. Every setter validates and clamps.

    Attributes are read by the producer once per tick; setters may be called from any
    thread (the OSC server thread, the Qt main thread).

    Parameters
    ----------
    gain : float
        Output gain, clamped to 0..:data:`GAIN_MAX`.
    mode : {"ola", "raw", "granular"}
        Synthesis mode.
    density, spread : float
        Granular parameters, clamped to 0..:data:`DENSITY_MAX` and 0..:data:`SPREAD_MAX`.

    Attributes
    ----------
    gain, mute, freeze, mode, density, spread, source
        The levels (``source``: a path or camera index to switch to, or None).
    panic_count : int
        Panics so far (the producer mutes at once when it grows).
    version : int
        Bumped on every change (cheap change detection for the monitor).
    last_error : str or None
        Written by the engine: why the last brain swap or source switch was refused;
        None again once a later one is accepted (status ``refused``).
    """

    def __init__(
        self,
        *,
        gain: float = 1.0,
        mode: str = "ola",
        density: float = 1.0,
        spread: float = 1.0,
    ) -> None:
        self.gain = _clamp(float(gain), 0.0, GAIN_MAX)
        self.mute = False
        self.freeze = False
        self.mode = mode
        self.density = _clamp(float(density), 0.0, DENSITY_MAX)
        self.spread = _clamp(float(spread), 0.0, SPREAD_MAX)
        self.source: str | None = None
        self.own_output = True  # routing: False plays only through Csound (set at start)
        self.panic_count = 0
        self._brain_request: str | None = None
        self._lock = threading.Lock()  # only for the request slots, never on the audio path
        self.version = 0  # bumped on every change, for cheap change detection
        self.last_error: str | None = None  # e.g. why a brain swap was refused

    # -- levels -----------------------------------------------------------------------
    def set_gain(self, v: float) -> float:
        self.gain = _clamp(float(v), 0.0, GAIN_MAX)
        self.version += 1
        return self.gain

    def set_mute(self, v: bool | int) -> bool:
        self.mute = bool(v)
        self.version += 1
        return self.mute

    def set_freeze(self, v: bool | int) -> bool:
        self.freeze = bool(v)
        self.version += 1
        return self.freeze

    def set_mode(self, mode: str) -> str:
        if mode not in C.MODES:
            raise ValueError(f"mode={mode!r} must be one of {', '.join(C.MODES)}")
        self.mode = mode
        self.version += 1
        return mode

    def set_density(self, v: float) -> float:
        self.density = _clamp(float(v), 0.0, DENSITY_MAX)
        self.version += 1
        return self.density

    def set_spread(self, v: float) -> float:
        self.spread = _clamp(float(v), 0.0, SPREAD_MAX)
        self.version += 1
        return self.spread

    def set_source(self, source: str) -> str:
        self.source = str(source)
        self.version += 1
        return self.source

    # -- events -----------------------------------------------------------------------
    def panic(self) -> None:
        """Mute at once: the callback drops to silence and stays muted until unmuted."""
        self.mute = True
        self.panic_count += 1
        self.version += 1

    def request_brain(self, name_or_path: str) -> None:
        """Ask the producer to load and crossfade to another brain."""
        with self._lock:
            self._brain_request = str(name_or_path)
        self.version += 1

    def take_brain_request(self) -> str | None:
        """The producer's side of :meth:`request_brain`: the latest request (or None),
        consumed."""
        with self._lock:
            r, self._brain_request = self._brain_request, None
        return r

    def state(self) -> dict[str, Any]:
        """The current values, for /liveframe/status and the monitor."""
        return {
            "gain": self.gain,
            "mute": int(self.mute),
            "freeze": int(self.freeze),
            "mode": self.mode,
            "density": self.density,
            "spread": self.spread,
            "source": self.source or "",
        }


@dataclass
class Snapshot:
    """What the monitor shows, filled in place by ``Engine.snapshot(out)``.

    Arrays are allocated once; the engine copies into them.
    """

    frame: npt.NDArray[np.uint8] = field(
        default_factory=lambda: np.zeros((C.FRAME_SIZE, C.FRAME_SIZE), np.uint8)
    )
    # the source picture, RGB, in its top-left source_size = (height, width) corner
    # (aspect kept; (0, 0) before the first); filled by Capture.preview_into
    source_frame: npt.NDArray[np.uint8] = field(
        default_factory=lambda: np.zeros((240, 320, 3), np.uint8)
    )
    source_size: tuple[int, int] = (0, 0)
    block: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.zeros(2 * C.HOP, np.float32)
    )
    output: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(C.HOP, np.float32))
    tick: int = 0
    level_dbfs: float = -120.0  # peak of what is output (after gain, mute, panic, limiter)
    brain_level_dbfs: float = -120.0  # peak of the brain's own output, before all that
    source_fps: float = 0.0
    brain_fps: float = 0.0
    inference_ms: float = 0.0
    latency_ms: float = 0.0
    underruns: int = 0
    ring_fill: float = 0.0
    brain_name: str = ""
    mode: str = "ola"
    running: bool = False
