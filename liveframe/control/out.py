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

import numpy as np
import numpy.typing as npt

from liveframe.control.messages import GRAIN_MAX_SAMPLES, analysis_messages, grain_message
from liveframe.control.params import Controls
from liveframe.core.pipeline import Tick
from liveframe.errors import UsageError

log = logging.getLogger(__name__)


class UdpSender:
    """A non-blocking UDP socket to one address that drops a datagram rather than wait.

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
    """

    def __init__(self, host: str, port: int) -> None:
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except OSError as e:
            raise UsageError(f"{host}:{port}: unknown host ({e})") from e
        self.target = info[4]
        self._sock = socket.socket(info[0], socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self.sent = 0
        self.dropped = 0

    def send(self, data: bytes) -> None:
        try:
            self._sock.sendto(data, self.target)
            self.sent += 1
        except OSError:
            self.dropped += 1

    def close(self) -> None:
        self._sock.close()


class AnalysisSender:
    """Tick listener: level, brightness, motion and tick number to ``host:port``.

    Four plain messages (not a bundle: Pd's ``[oscparse]`` reads messages) per tick:
    the RMS level of ``tick.out`` in dBFS (-120 for silence), the mean brightness of
    ``tick.frame`` (0..1), its mean absolute change from the previous tick's (0..1; 0 on
    the first tick), and ``tick.index``.

    Parameters
    ----------
    host, port : str, int
        Where to send.
    """

    def __init__(self, host: str, port: int) -> None:
        self._udp = UdpSender(host, port)
        self._prev: npt.NDArray[np.int16] | None = None

    @property
    def sent(self) -> int:
        """Datagrams sent (four per tick)."""
        return self._udp.sent

    @property
    def dropped(self) -> int:
        """Datagrams dropped."""
        return self._udp.dropped

    def __call__(self, tick: Tick) -> None:
        out = tick.out
        rms = float(np.sqrt(np.mean(np.square(out, dtype=np.float64)))) if out.size else 0.0
        level = max(-120.0, 20 * math.log10(rms)) if rms > 1e-6 else -120.0
        f = tick.frame.astype(np.int16)
        brightness = float(f.mean()) / 255.0 if f.size else 0.0
        if self._prev is None or self._prev.shape != f.shape:
            motion = 0.0
        else:
            motion = float(np.abs(f - self._prev).mean()) / 255.0
        self._prev = f
        for data in analysis_messages(level=level, brightness=brightness, motion=motion,
                                      tick=tick.index):
            self._udp.send(data)

    def close(self) -> None:
        self._udp.close()


class CsoundBridge:
    """Tick listener: every grain (granular) or output hop (ola, raw) to a Csound.

    Granular mode: one ``/liveframe/grain`` per :class:`~liveframe.core.synth.GrainPlacement`
    of the tick, at ``tick.position + start``, reading ``duration`` samples of
    ``tick.block`` from ``offset``, with ``env`` 1 where the synth shapes the grain with
    its Hann envelope, scaled by the placement's gain: what the synth plays, sample for
    sample. Other modes: ``tick.out`` at ``tick.position``, as it is. Every ``amp`` is
    also scaled by the instrument's gain (0 when muted) when ``controls`` is given, so
    Csound follows gain, mute and panic.

    A brain, mode or source swap crossfades the pipeline's output over one tick; in
    granular mode the bridge sends the new synth's grains of that tick unfaded.

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

    @property
    def sent(self) -> int:
        """Grains sent."""
        return self._udp.sent

    @property
    def dropped(self) -> int:
        """Grains dropped (nobody listening, buffer full)."""
        return self._udp.dropped

    def _gain(self) -> float:
        c = self.controls
        if c is None:
            return 1.0
        return 0.0 if c.mute else float(c.gain)

    def __call__(self, tick: Tick) -> None:
        g = self._gain()
        if tick.placements is None:
            self._udp.send(grain_message(tick.position, tick.out, sr=self.sr, amp=g, env=0))
            return
        block = tick.block
        for p in tick.placements:
            if p.duration > GRAIN_MAX_SAMPLES and not self._warned:
                self._warned = True
                log.warning("Csound bridge: grains longer than %d samples are cut",
                            GRAIN_MAX_SAMPLES)
            seg = block[p.offset : p.offset + p.duration]
            self._udp.send(grain_message(tick.position + p.start, seg, sr=self.sr,
                                         amp=g * p.gain, env=int(p.envelope)))

    def close(self) -> None:
        self._udp.close()
