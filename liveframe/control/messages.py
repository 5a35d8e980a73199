"""OSC messages the instrument sends, built in one place, and the grain wire format.

:func:`message` is the one builder of every datagram the package sends: the status
replies of the control server (:func:`status_message`), the analysis out
(:func:`analysis_messages`) and the grains of the Csound bridge (:func:`grain_message`).
Python ints go as ``i`` (``h`` beyond 32 bits), floats as ``f``, strings as ``s``, bytes
as a blob ``b``, bools as ``i`` 0 or 1: what Pd's ``[oscparse]``, Max's
``[udpreceive]`` and Csound's ``OSClisten`` read.

The grain wire format, what ``patches/liveframe-grains.csd`` plays::

    /liveframe/grain  i position  i n  i sr  f amp  i env  b samples

``position`` is the grain's first sample in the sender's output timeline (brain-rate
samples from tick 0), ``n`` the number of samples, ``sr`` the brain's sample rate,
``amp`` the factor to scale by, ``env`` 1 to shape the grain with a symmetric Hann
envelope (:func:`grain_envelope`) and 0 to play it as it is, and the blob holds ``n``
little-endian float64 samples (Csound's MYFLT). :func:`parse_grain` reads it back.
"""

from __future__ import annotations

import functools
import numbers
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

PREFIX = "/liveframe"
"""The root of the instrument's address space."""

STATUS = f"{PREFIX}/status"
"""The status query; each reply is ``STATUS/KEY VALUE``."""

GRAIN = f"{PREFIX}/grain"
"""The address of one grain sent to Csound."""

GRAIN_MAX_SAMPLES = 4000
"""Most samples in one grain's blob: liblo (Csound's OSC) reads datagrams of 32 KiB."""

ANALYSIS: tuple[tuple[str, str, str], ...] = (
    (f"{PREFIX}/level", "f", "RMS level of what reached the output over the last tick "
     "(after gain, mute, panic and the limiter) in dBFS (-120..0)"),
    (f"{PREFIX}/frame/brightness", "f", "mean brightness of the frame the brain sees, 0..1"),
    (f"{PREFIX}/frame/motion", "f", "mean absolute change from the previous frame, 0..1"),
    (f"{PREFIX}/tick", "i", "the brain tick number"),
)
"""What the analysis out sends every tick, in this order: address, type, meaning."""

OscValue = int | float | str | bytes | bool


def _padded(text: str) -> bytes:
    """An OSC string: UTF-8, NUL-terminated, padded to a multiple of 4 bytes."""
    b = text.encode()
    if b"\0" in b:
        raise ValueError(f"OSC string {text[:40]!r} contains a NUL character")
    return b + b"\0" * (4 - len(b) % 4)


@functools.lru_cache(maxsize=256)
def _head(address: str, tags: str) -> bytes:
    """Address and type tags, padded (cached: the package sends few distinct heads)."""
    if not address.startswith("/"):
        raise ValueError(f"OSC address {address[:40]!r} must start with '/'")
    return _padded(address) + _padded(tags)


def _arg(v: OscValue) -> tuple[str, bytes]:
    if isinstance(v, bool | np.bool_):
        return "i", struct.pack(">i", int(v))
    if isinstance(v, numbers.Integral):
        i = int(v)
        if -(2**31) <= i < 2**31:
            return "i", struct.pack(">i", i)
        return "h", struct.pack(">q", i)
    if isinstance(v, numbers.Real):
        return "f", struct.pack(">f", float(v))
    if isinstance(v, str):
        return "s", _padded(v)
    if isinstance(v, bytes | bytearray | memoryview):
        b = bytes(v)
        return "b", struct.pack(">i", len(b)) + b + b"\0" * (-len(b) % 4)
    raise TypeError(f"cannot send {type(v).__name__} {v!r} over OSC")


def message(address: str, *values: OscValue) -> bytes:
    """One OSC message: ``address`` and its arguments, as a datagram.

    Parameters
    ----------
    address : str
        Starts with ``/``.
    *values : int, float, str, bytes or bool
        The arguments, typed as the module docstring says.

    Returns
    -------
    bytes
        The datagram, ready for ``sendto``.

    Raises
    ------
    ValueError
        ``address`` does not start with ``/``, or a string holds a NUL.
    TypeError
        A value of another type.
    """
    tags = ","
    body = []
    for v in values:
        tag, data = _arg(v)
        tags += tag
        body.append(data)
    return _head(address, tags) + b"".join(body)


def status_message(key: str, value: OscValue) -> bytes:
    """``/liveframe/status/KEY VALUE``: one line of the reply to a status query."""
    return message(f"{STATUS}/{key}", value)


def analysis_messages(
    *, level: float, brightness: float, motion: float, tick: int
) -> tuple[bytes, bytes, bytes, bytes]:
    """The four messages of :data:`ANALYSIS` for one tick (plain messages, not a bundle:
    Pd's ``[oscparse]`` reads messages)."""
    (a_level, _, _), (a_bright, _, _), (a_motion, _, _), (a_tick, _, _) = ANALYSIS
    return (message(a_level, float(level)), message(a_bright, float(brightness)),
            message(a_motion, float(motion)), message(a_tick, int(tick)))


def wrap_position(position: int) -> int:
    """A timeline position as the wire's 32-bit ``i``: it wraps at 2**31 samples (27 hours
    at 22050 Hz)."""
    return (int(position) + 2**31) % 2**32 - 2**31


def grain_message(
    position: int, samples: npt.NDArray[np.floating[Any]], *, sr: int, amp: float, env: int
) -> bytes:
    """One ``/liveframe/grain`` datagram (the wire format of the module docstring).

    Parameters
    ----------
    position : int
        The grain's first sample in the sender's timeline, in samples at ``sr``.
    samples : ndarray, shape (n,), floating
        The grain; at most :data:`GRAIN_MAX_SAMPLES` are sent (the rest is cut).
    sr : int
        The brain's sample rate in Hz.
    amp : float
        Factor the receiver scales the grain by (sent as float32).
    env : {0, 1}
        1: the receiver shapes the grain with :func:`grain_envelope`; 0: as it is.

    Returns
    -------
    bytes
    """
    x = np.ascontiguousarray(samples[:GRAIN_MAX_SAMPLES], dtype="<f8").tobytes()
    return message(GRAIN, wrap_position(position), len(x) // 8, int(sr), float(amp),
                   int(env), x)


_GRAIN_HEAD = _head(GRAIN, ",iiifib")
_GRAIN_FIELDS = struct.Struct(">iiifii")


@dataclass(frozen=True)
class Grain:
    """One decoded ``/liveframe/grain`` message."""

    position: int
    sr: int
    amp: float
    env: int
    samples: npt.NDArray[np.float64]  # shape (n,)

    def rendered(self) -> npt.NDArray[np.float64]:
        """What the receiver plays: the samples, shaped when ``env`` is 1, times ``amp``.

        Returns
        -------
        ndarray, shape (n,), float64
        """
        x = self.samples * self.amp
        if self.env:
            x = x * grain_envelope(x.shape[0])
        return x


def parse_grain(data: bytes) -> Grain:
    """Decode a datagram built by :func:`grain_message`.

    Raises
    ------
    ValueError
        ``data`` is not a ``/liveframe/grain`` message of this format.
    """
    head = len(_GRAIN_HEAD)
    if data[:head] != _GRAIN_HEAD or len(data) < head + _GRAIN_FIELDS.size:
        raise ValueError(f"not a {GRAIN} message ({len(data)} bytes)")
    position, n, sr, amp, env, size = _GRAIN_FIELDS.unpack_from(data, head)
    start = head + _GRAIN_FIELDS.size
    if size != 8 * n or len(data) < start + size:
        raise ValueError(f"{GRAIN}: blob of {size} bytes for n={n} samples")
    samples = np.frombuffer(data, "<f8", count=n, offset=start).astype(np.float64)
    return Grain(position=position, sr=sr, amp=amp, env=env, samples=samples)


def grain_envelope(n: int) -> npt.NDArray[np.float64]:
    """The symmetric Hann envelope of a grain with ``env`` 1, zero just outside both ends.

    ``0.5 - 0.5 * cos(2 * pi * (k + 0.5) / n)`` for ``k`` in ``0..n-1``: the envelope of
    :class:`~liveframe.core.synth.GranularSynth` and of ``patches/liveframe-grains.csd``.

    Returns
    -------
    ndarray, shape (n,), float64
    """
    return 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(n) + 0.5) / n)
