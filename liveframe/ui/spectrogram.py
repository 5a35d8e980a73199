"""The monitor's scrolling spectrogram: a preallocated ring of FFT columns (numpy only)."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt


class SpectrogramRing:
    """A preallocated ring of log-frequency FFT columns that scrolls without copying.

    Each block becomes one column: Hann-windowed, zero-padded to ``n_fft``, magnitude in
    dB (a full-scale sine reads 0 dB), resampled onto ``rows`` log-spaced frequencies from
    ``fmin`` to Nyquist. Every column is written twice, at ``i`` and ``i + columns``, so
    the latest ``columns`` columns in time order are always the slice
    ``buf[:, i+1 : i+1+columns]``: scrolling costs nothing.

    Parameters
    ----------
    columns : int
        Columns shown (time axis).
    n_fft : int
        FFT size.
    length : int
        Samples per block (<= ``n_fft``).
    sr : int
        Sample rate of the blocks in Hz.
    rows : int
        Log-spaced frequency rows.
    fmin : float
        Lowest frequency shown in Hz.
    floor_db : float
        Lowest level kept, and the value of an empty column, in dB.

    Attributes
    ----------
    buf : np.ndarray, shape (rows, 2 * columns), float32
        The ring, in dB; read it through :meth:`view`.
    log_fmin, log_fmax : float
        ``log10`` of the lowest and highest frequency row, for the plot's axis.
    """

    def __init__(
        self,
        *,
        columns: int,
        n_fft: int,
        length: int,
        sr: int,
        rows: int = 192,
        fmin: float = 40.0,
        floor_db: float = -100.0,
    ) -> None:
        if length > n_fft:
            raise ValueError(f"length={length} must not exceed n_fft={n_fft}")
        self.columns = columns
        self.n_fft = n_fft
        self.length = length
        self.floor_db = floor_db
        self.log_fmin = math.log10(fmin)
        self.log_fmax = math.log10(sr / 2)
        freqs = np.logspace(self.log_fmin, self.log_fmax, rows)
        self._rows = np.clip(np.rint(freqs * n_fft / sr), 0, n_fft // 2).astype(np.intp)
        self.buf: npt.NDArray[np.float32] = np.full((rows, 2 * columns), floor_db, np.float32)
        self._frame = np.zeros(n_fft, np.float32)
        self._win = np.hanning(length).astype(np.float32)
        self._scale = np.float32(2.0 / self._win.sum())  # full-scale sine -> 0 dB
        self._mag = np.zeros(n_fft // 2 + 1, np.float32)
        self._col = np.zeros(rows, np.float32)
        self.index = columns - 1

    def push(self, x: npt.NDArray[np.float32], *, repeat: int = 1) -> None:
        """Add the column of one block.

        Parameters
        ----------
        x : np.ndarray, shape (length,), float32
            The block, in [-1, 1]; a longer one is cut to ``length``.
        repeat : int
            Write the column this many times: ticks the window did not see (a slow
            redraw) keep their place on the time axis.
        """
        n = min(len(x), self.length)
        np.multiply(x[:n], self._win[:n], out=self._frame[:n])
        np.abs(np.fft.rfft(self._frame), out=self._mag, casting="unsafe")
        np.take(self._mag, self._rows, out=self._col)
        self._col *= self._scale
        np.maximum(self._col, 1e-6, out=self._col)
        np.log10(self._col, out=self._col)
        self._col *= 20.0
        np.maximum(self._col, self.floor_db, out=self._col)
        for _ in range(max(1, min(repeat, self.columns))):
            self.index = (self.index + 1) % self.columns
            self.buf[:, self.index] = self._col
            self.buf[:, self.index + self.columns] = self._col

    def view(self) -> npt.NDArray[np.float32]:
        """The latest ``columns`` columns, oldest first: shape (rows, columns), in dB."""
        i = self.index + 1
        return self.buf[:, i : i + self.columns]

    def frequencies(self) -> npt.NDArray[np.float64]:
        """The frequency of each row in Hz: shape (rows,), log-spaced, lowest first."""
        return np.logspace(self.log_fmin, self.log_fmax, self.buf.shape[0])
