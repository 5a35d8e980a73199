"""The recorder: what the callback played, written to a float32 WAV file as it plays."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from liveframe.live.ringbuffer import RingBuffer
from liveframe.util.files import disk_error
from liveframe.util.wav import WavWriter

log = logging.getLogger(__name__)
F32 = npt.NDArray[np.float32]


class Recorder:
    """Writes what the callback played, from its own thread, through its own ring buffer.

    The callback calls :meth:`push` (a ring write: no allocation of sample buffers, no
    lock); the writer thread, started here and joined by :meth:`close`, drains the ring to
    a :class:`~liveframe.util.wav.WavWriter` every ~50 ms. The file appears, complete, on
    :meth:`close` (temporary file + rename).

    A disk that fills (or fails) while recording stops the recording, not the play: the
    writer thread says so in one line, removes its temporary (nothing half-written) and
    keeps :attr:`error`; the callback's pushes are then dropped, and :meth:`close` returns
    None. The play goes on: on stage the sound matters more than its copy.

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
        self.error: str | None = None  # why the recording stopped (a full disk), or None
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
        if n and self.error is None:
            try:
                self.writer.write(self._chunk[:n])
            except OSError as e:
                self._fail(e)

    def _fail(self, e: OSError) -> None:
        """The disk refused a write: stop recording, remove the temporary, say so once."""
        self.error = str(disk_error(self.writer.path, e))
        try:
            self.writer.abort()
        except OSError:
            pass
        log.error("--record %s; the recording stopped, the play goes on", self.error)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._drain()

    def close(self) -> Path | None:
        """Join the writer thread, write what is left, rename the file into place.

        Call it once nothing pushes any more (the stream is closed).
        """
        self._stop.set()
        self._thread.join()
        self._drain()
        if self.error is not None:
            return None
        if self.dropped:
            log.warning("recording dropped %d samples (disk too slow)", self.dropped)
        try:
            return self.writer.close()
        except OSError as e:  # the header patch or the rename failed
            self._fail(e)
            return None
