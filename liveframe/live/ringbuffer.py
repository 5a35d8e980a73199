"""A preallocated single-producer single-consumer ring buffer of float32 samples.

The producer thread writes, the audio callback reads; neither ever blocks or takes a lock.
Each side owns one counter: the writer advances ``written`` only after the samples are in
place, the reader advances ``read`` only after it has copied them out, and each side only
reads the other's counter. A Python attribute store is atomic under the GIL, so this is
safe for exactly one writer thread and one reader thread (python-rtmixer's design, in
Python).

Counters are monotonic sample counts (Python ints never overflow), so they double as the
absolute stream position of every sample: the producer knows where a tick's first sample
lands, the callback knows where each buffer starts, and latency is matched between them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


class RingBuffer:
    """Lock-free SPSC ring of float32 samples, allocated once.

    Parameters
    ----------
    capacity : int
        Samples it holds.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity={capacity} must be a positive integer")
        self.capacity = int(capacity)
        self._buf = np.zeros(self.capacity, np.float32)
        self.written = 0  # total samples ever written (owned by the producer)
        self.read = 0  # total samples ever read (owned by the consumer)

    @property
    def fill(self) -> int:
        """Samples written and not yet read."""
        return self.written - self.read

    @property
    def space(self) -> int:
        """Samples that can be written now."""
        return self.capacity - (self.written - self.read)

    def write(self, x: F32) -> int:
        """Copy as much of ``x`` as fits; return how many samples were written.

        Producer side only.
        """
        n = min(int(x.shape[0]), self.capacity - (self.written - self.read))
        if n <= 0:
            return 0
        w = self.written % self.capacity
        first = min(n, self.capacity - w)
        self._buf[w : w + first] = x[:first]
        if n > first:
            self._buf[: n - first] = x[first:n]
        self.written += n  # publish after the copy
        return n

    def read_into(self, out: F32) -> int:
        """Copy up to ``len(out)`` samples into ``out``; return how many.

        Consumer side only (the audio callback): no allocation of sample buffers, no lock.
        Samples of ``out`` beyond the returned count are left untouched.
        """
        n = min(int(out.shape[0]), self.written - self.read)
        if n <= 0:
            return 0
        r = self.read % self.capacity
        first = min(n, self.capacity - r)
        out[:first] = self._buf[r : r + first]
        if n > first:
            out[first:n] = self._buf[: n - first]
        self.read += n  # release after the copy
        return n
