"""OSC out: tick listeners that send what each tick made, over UDP.

- :class:`AnalysisSender` sends ``/liveframe/level``, ``/liveframe/frame/brightness``,
  ``/liveframe/frame/motion`` and ``/liveframe/tick`` every tick
  (:data:`~liveframe.control.messages.ANALYSIS`), for Max or Pd to map.
- :class:`CsoundBridge` sends every grain (granular mode) or every tick's output hop (ola,
  raw) as ``/liveframe/grain`` to a running Csound that plays
  ``patches/liveframe-grains.csd``. The grains are the pipeline's own placements
  (:attr:`Tick.placements <liveframe.core.pipeline.Tick.placements>`), so Csound plays
  exactly the grains :class:`~liveframe.core.synth.GranularSynth` plays.

Both are :data:`~liveframe.core.pipeline.TickListener` s: they run in the thread that makes
the ticks (the live producer), so they use a non-blocking UDP socket and drop a datagram
rather than wait.
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe.control.messages import GRAIN_MAX_SAMPLES, analysis_messages, grain_message
from liveframe.control.params import Controls
from liveframe.core.pipeline import Tick
from liveframe.core.safety import CEILING
from liveframe.errors import UsageError

log = logging.getLogger(__name__)

BRIGHTNESS_FULL = 0.9
"""Mean grey (0..1 of the 8-bit range) that the analysis out sends as brightness 1: about
the brightest twentieth of real photos (91 photos of the registries' footage set, 64x64
grey: mean grey 0.06..0.97, median 0.46, 95th percentile 0.89). Black is 0."""

MOTION_FLOOR = 0.001
"""Mean absolute change between ticks (0..1) where the analysis out's motion scale bends:
about the median of real footage (a camera's noise and slow drift: 0.0007 on the
registries' clips)."""

MOTION_FULL = 0.1
"""Mean absolute change sent as motion 1: a cut or a whip pan (the real clips' 99th
percentiles are 0.007..0.03, their cuts 0.2)."""


def scale_brightness(mean_grey: float) -> float:
    """Brightness 0..1 as the analysis out sends it: ``min(1, mean_grey / 0.9)``
    (:data:`BRIGHTNESS_FULL`)."""
    return min(1.0, max(0.0, mean_grey / BRIGHTNESS_FULL))


def scale_motion(change: float) -> float:
    """Motion 0..1 as the analysis out sends it, logarithmic (motion in real footage spans
    two decades): ``min(1, log1p(change / 0.001) / log1p(0.1 / 0.001))`` (0 for a still
    picture, 0.15 at :data:`MOTION_FLOOR`, 0.5 at 0.009, 1 at :data:`MOTION_FULL` and
    beyond)."""
    if not change > 0:
        return 0.0
    return min(1.0, math.log1p(change / MOTION_FLOOR) / math.log1p(MOTION_FULL / MOTION_FLOOR))


class UdpSender:
    """A non-blocking UDP socket to one address that drops a datagram rather than wait.

    The socket is connected to its receiver, so a datagram to a port where nothing
    listens comes back as an ICMP port-unreachable and the next send fails with
    ``ECONNREFUSED`` (on loopback and on most networks): :attr:`refused` counts them.

    Parameters
    ----------
    host : str
        Name or address of the receiver.
    port : int
        1..65535.

    Raises
    ------
    UsageError
        ``host`` cannot be resolved.

    Attributes
    ----------
    sent, dropped : int
        Datagrams handed to the kernel; datagrams dropped (buffer full, nobody listening
        (ICMP refused), too big).
    refused : int
        Sends that failed because nothing listened at the receiver's port (part of
        ``dropped``).
    """

    def __init__(self, host: str, port: int) -> None:
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except OSError as e:
            raise UsageError(f"{host}:{port}: unknown host ({e})") from e
        self.target = info[4]
        self._sock = socket.socket(info[0], socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        try:
            self._sock.connect(self.target)
            self._connected = True
        except OSError:  # e.g. a broadcast address: send unconnected, and fail per datagram
            self._connected = False
        self.sent = 0
        self.dropped = 0
        self.refused = 0

    def send(self, data: bytes) -> None:
        try:
            if self._connected:
                self._sock.send(data)
            else:
                self._sock.sendto(data, self.target)
            self.sent += 1
        except ConnectionRefusedError:
            self.dropped += 1
            self.refused += 1
        except OSError:
            self.dropped += 1

    def close(self) -> None:
        self._sock.close()


class AnalysisSender:
    """Tick listener: level, brightness, motion and tick number to ``host:port``.

    Four plain messages (not a bundle: Pd's ``[oscparse]`` reads messages) per tick:
    the RMS level of ``tick.out`` in dBFS (-120 for silence), the mean brightness of
    ``tick.frame`` (:func:`scale_brightness`: 0..1, 1 for the brightest real pictures),
    its mean absolute change from the previous tick's (:func:`scale_motion`: 0..1,
    logarithmic; 0 on the first tick), and ``tick.index``.

    Parameters
    ----------
    host, port : str, int
        Where to send.

    Attributes
    ----------
    level : callable() -> float, or None
        Where the level comes from: a live engine's
        :meth:`~liveframe.live.engine.Engine.output_rms_dbfs` (set by its
        ``add_tick_listener``: the RMS of what reached the output over the last tick,
        after the gain, mute and limiter); None: the RMS of ``tick.out``.
    """

    def __init__(self, host: str, port: int) -> None:
        self._udp = UdpSender(host, port)
        self._prev: npt.NDArray[np.int16] | None = None
        self.level: Callable[[], float] | None = None

    @property
    def sent(self) -> int:
        """Datagrams sent (four per tick)."""
        return self._udp.sent

    @property
    def dropped(self) -> int:
        """Datagrams dropped."""
        return self._udp.dropped

    @property
    def refused(self) -> int:
        """Datagrams refused because nothing listened at the port (the analysis out is on
        by default: nobody listening is no error, and is not logged)."""
        return self._udp.refused

    def __call__(self, tick: Tick) -> None:
        if self.level is not None:
            level = max(-120.0, min(0.0, float(self.level())))
        else:
            out = tick.out
            rms = float(np.sqrt(np.mean(np.square(out, dtype=np.float64)))) if out.size else 0.0
            level = max(-120.0, 20 * math.log10(rms)) if rms > 1e-6 else -120.0
        f = tick.frame.astype(np.int16)
        brightness = scale_brightness(float(f.mean()) / 255.0) if f.size else 0.0
        if self._prev is None or self._prev.shape != f.shape:
            motion = 0.0
        else:
            motion = scale_motion(float(np.abs(f - self._prev).mean()) / 255.0)
        self._prev = f
        for data in analysis_messages(level=level, brightness=brightness, motion=motion,
                                      tick=tick.index):
            self._udp.send(data)

    def close(self) -> None:
        self._udp.close()


GRAIN_CEILING = CEILING
"""The most a grain may reach once Csound scales it by its ``amp``: the ceiling of
liveframe's own limiter (:class:`~liveframe.core.safety.SafetyChain`), whose guard the
grains do not pass through (they leave before the audio callback)."""


def _bounded(samples: npt.NDArray[np.floating[Any]], amp: float) -> npt.NDArray[np.float64]:
    """A grain Csound can play safely: NaN and infinities as silence, and every sample
    times ``amp`` within :data:`GRAIN_CEILING` (nothing a brain outputs blasts the PA on
    Csound's side either)."""
    x = np.nan_to_num(np.asarray(samples, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if amp > 0:
        lim = GRAIN_CEILING / amp
        np.clip(x, -lim, lim, out=x)
    return x


class CsoundBridge:
    """Tick listener: every grain (granular) or output hop (ola, raw) to a Csound.

    Granular mode: one ``/liveframe/grain`` per :class:`~liveframe.core.synth.GrainPlacement`
    of the tick, at ``tick.position + start``, reading ``duration`` samples of
    ``tick.block`` from ``offset``, with ``env`` 1 where the synth shapes the grain with
    its Hann envelope, scaled by the placement's gain: what the synth plays, sample for
    sample. Other modes: ``tick.out`` at ``tick.position``, as it is. Every ``amp`` is
    also scaled by the instrument's gain (0 when muted) when ``controls`` is given, so
    Csound follows gain, mute and panic.

    A brain, mode or source swap crossfades the pipeline's output over one tick, once the
    new synth has filled (:meth:`~liveframe.core.pipeline.TickPipeline._begin_tick`); in
    granular mode the bridge sends the new synth's grains from the swap on, unfaded.

    Parameters
    ----------
    host, port : str, int
        Where Csound listens (``patches/liveframe-grains.csd``: port 7770).
    sr : int
        The brain's sample rate in Hz.
    controls : Controls, optional
        The instrument's controls, read once per tick.

    Raises
    ------
    UsageError
        ``host`` cannot be resolved.
    """

    def __init__(
        self, host: str, port: int, *, sr: int, controls: Controls | None = None
    ) -> None:
        self._udp = UdpSender(host, port)
        self.sr = int(sr)
        self.controls = controls
        self._warned = False
        self._said_refused = False

    @property
    def sent(self) -> int:
        """Grains sent."""
        return self._udp.sent

    @property
    def dropped(self) -> int:
        """Grains dropped (nobody listening, buffer full)."""
        return self._udp.dropped

    @property
    def refused(self) -> int:
        """Grains refused because nothing listened at the port."""
        return self._udp.refused

    def _say_refused(self) -> None:
        """Once per bridge: nothing listens where the grains go."""
        self._said_refused = True
        host, port = self._udp.target[:2]
        log.warning("Csound bridge: nothing listens on %s:%d (grains are dropped until "
                    "something does); is Csound running patches/liveframe-grains.csd "
                    "with that port?", host, port)

    def _gain(self) -> float:
        c = self.controls
        if c is None:
            return 1.0
        return 0.0 if c.mute else float(c.gain)

    def __call__(self, tick: Tick) -> None:
        if self._udp.refused and not self._said_refused:
            self._say_refused()
        g = self._gain()
        if tick.placements is None:
            self._udp.send(grain_message(tick.position, _bounded(tick.out, g), sr=self.sr,
                                         amp=g, env=0))
            return
        block = tick.block
        for p in tick.placements:
            if p.duration > GRAIN_MAX_SAMPLES and not self._warned:
                self._warned = True
                log.warning("Csound bridge: grains longer than %d samples are cut",
                            GRAIN_MAX_SAMPLES)
            amp = g * p.gain
            seg = _bounded(block[p.offset : p.offset + p.duration], amp)
            self._udp.send(grain_message(tick.position + p.start, seg, sr=self.sr,
                                         amp=amp, env=int(p.envelope)))

    def close(self) -> None:
        self._udp.close()
