"""Datagrams for fuzzing and flooding the control port, and a sender for them.

What the tests and ``benchmarks/bench_osc.py`` throw at a :class:`ControlServer
<liveframe.control.server.ControlServer>`, written once:

- :func:`fuzz_datagrams`: datagrams the server must refuse, each counted as malformed,
  unknown or refused, none changing a control: random bytes, huge strings, wrong types,
  broken bundles, unknown addresses, and a wrong argument list for every address.
- :func:`valid_datagrams`: valid messages that leave the gain, mute, brain and source
  alone (so a flood can run while someone measures the gain).
- :func:`flood`: send them over UDP at a given rate, as Max or Pd would (run it in another
  process to measure a playing engine).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import numpy as np

from liveframe.control.messages import PREFIX, STATUS, message
from liveframe.control.server import ROUTES


def junk_datagrams() -> list[bytes]:
    """Fixed hostile datagrams: huge strings, wrong types, broken bundles, an unknown
    address, and issue 16's log bombs: an 8 KB bundle of empty elements (python-osc logs a
    line for each), a message of 4,000 unknown type tags (likewise), a bundle element of
    negative size (python-osc loops on it for ever)."""
    bundle = b"#bundle\0" + b"\0" * 8
    return [
        message(f"{PREFIX}/gain", "x" * 60000), message(f"{PREFIX}/brain", "y" * 60000),
        message(f"{PREFIX}/mode", 3.0), message(f"{PREFIX}/freeze", "on"), b"#bundle\0",
        message(f"{PREFIX}/" + "z" * 1000, 1.0), message(STATUS, "x"),
        message(f"{PREFIX}/mute", float("nan")), message(f"{PREFIX}/mode", "w" * 5000),
        bundle + b"\0\0\0\0" * 2043, message(f"{PREFIX}/gain")[:-4] + b"," + b"x" * 4000
        + b"\0\0\0" + b"\0" * 4, bundle + b"\xff\xff\xff\xfc",
    ]


def fuzz_datagrams(rng: np.random.Generator, n: int) -> Iterator[bytes]:
    """``n`` datagrams that the control server must ignore.

    In turn: random bytes (1..2000), one of :func:`junk_datagrams`, and a known address
    with a wrong argument list (a random string and a number: no address takes two
    arguments; ``/liveframe/panic``, which ignores its arguments, is left out).
    """
    junk = junk_datagrams()
    addresses = [r.address for r in ROUTES if r.args]
    for i in range(n):
        kind = i % 3
        if kind == 0:
            yield rng.bytes(int(rng.integers(1, 2000)))
        elif kind == 1:
            yield junk[(i // 3) % len(junk)]
        else:
            yield message(addresses[(i // 3) % len(addresses)], rng.bytes(8).hex(), 1.0)


def valid_datagrams(rng: np.random.Generator) -> list[bytes]:
    """Valid messages that change density, spread, freeze (to 0) and mode (to ``ola``),
    and status queries: never the gain, mute, brain or source."""
    out = [message(f"{PREFIX}/grain/density", float(v)) for v in rng.uniform(0, 4, 40)]
    out += [message(f"{PREFIX}/grain/spread", float(v)) for v in rng.uniform(0, 4, 40)]
    out += [message(f"{PREFIX}/freeze", 0), message(f"{PREFIX}/mode", "ola")] * 8
    out += [message(STATUS)] * 2
    return out


def flood(
    host: str, port: int, *, seconds: float, rate: float, fuzz: bool = False, seed: int = 5
) -> tuple[int, float]:
    """Send :func:`valid_datagrams` to ``host:port`` for ``seconds``.

    Parameters
    ----------
    host, port : str, int
        The control server.
    seconds : float
        How long to send.
    rate : float
        Datagrams per second (0: as fast as one sender can).
    fuzz : bool
        Every third datagram is one of :func:`fuzz_datagrams` instead.
    seed : int
        Seed of the random datagrams.

    Returns
    -------
    sent : int
        Datagrams sent.
    per_second : float
        The rate achieved.
    """
    rng = np.random.default_rng(seed)
    valid = valid_datagrams(rng)
    junk = list(fuzz_datagrams(rng, 120)) if fuzz else []
    to = (host, port)
    i = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            data = junk[(i // 3) % len(junk)] if fuzz and i % 3 == 2 else valid[i % len(valid)]
            try:
                tx.sendto(data, to)
            except OSError:  # the receiver went away, or the kernel buffer is full
                pass
            i += 1
            if rate and i % 50 == 0:
                time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        elapsed = time.monotonic() - t0
    return i, i / elapsed if elapsed > 0 else 0.0


def send_all(host: str, port: int, datagrams: Iterator[bytes] | list[bytes], *,
             rate: float = 0.0) -> int:
    """Send every datagram to ``host:port`` (at ``rate`` a second, 0: at once); return
    how many were sent."""
    to = (host, port)
    n = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        t0 = time.monotonic()
        for data in datagrams:
            try:
                tx.sendto(data, to)
            except OSError:
                pass
            n += 1
            if rate and n % 50 == 0:
                time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
    return n
