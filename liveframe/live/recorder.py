"""The recorder: what the callback played, written to a float32 WAV file as it plays."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from liveframe.live.ringbuffer import RingBuffer
from liveframe.util.wav import WavWriter

log = logging.getLogger(__name__)
F32 = npt.NDArray[np.float32]


class Recorder:
    """Writes what the callback played, from its own thread, through its own ring buffer.

    The callback calls :meth:`push` (a ring write: no allocation of sample buffers, no
    lock); the writer thread, started here and joined by :meth:`close`, drains the ring to
    a :class:`~liveframe.util.wav.WavWriter` every ~50 ms. The file appears, complete, on
    :meth:`close` (temporary file + rename).

    Parameters
    ----------
    path : path-like
        The ``.wav`` file to write.
    sr : int
        Sample rate of what is pushed.
    seconds : float
        Audio the ring holds while the disk is slow; beyond it samples are dropped (and
        counted).
    """

    def __init__(self, path: str | os.PathLike[str], *, sr: int, seconds: float = 4.0) -> None:
        self.writer = WavWriter(path, sr=sr)
        self.ring = RingBuffer(int(sr * seconds))
        self.dropped = 0  # samples that did not fit (written by the callback)
        self._chunk = np.zeros(int(sr * seconds), np.float32)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="liveframe-recorder", daemon=True)
        self._thread.start()

    def push(self, x: F32) -> None:
        """Queue samples (the audio callback; never blocks).

        Parameters
        ----------
        x : ndarray, shape (n,), float32
        """
        n = self.ring.write(x)
        if n < x.shape[0]:
            self.dropped += x.shape[0] - n

    def _drain(self) -> None:
        n = self.ring.read_into(self._chunk)
        if n:
            self.writer.write(self._chunk[:n])

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._drain()

    def close(self) -> Path:
        """Join the writer thread, write what is left, rename the file into place.

        Call it once nothing pushes any more (the stream is closed).
        """
        self._stop.set()
        self._thread.join()
        self._drain()
        if self.dropped:
            log.warning("recording dropped %d samples (disk too slow)", self.dropped)
        return self.writer.close()
