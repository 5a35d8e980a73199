"""The monitor's pictures and plots: what the camera sees, what the brain sees, what it plays.

The arrays come from a preallocated :class:`~liveframe.control.params.Snapshot` and are
pushed into pyqtgraph items without autoscaling (``setImage(..., autoLevels=False)``,
peak downsampling), as pyqtgraph's real-time examples do.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from liveframe.control.params import Snapshot
from liveframe.ui.spectrogram import SpectrogramRing
from liveframe.ui.style import (
    BACKGROUND,
    DIM_TEXT,
    SPEC_COLUMNS,
    SPEC_FLOOR_DB,
    SPEC_NFFT,
    WAVE_COLOUR,
)

_FREQ_TICKS = ((100, "100"), (300, "300"), (1000, "1k"), (3000, "3k"), (10000, "10k"))


class Plots(pg.GraphicsLayoutWidget):
    """Source picture, the brain's picture, the output block and its spectrogram.

    Parameters
    ----------
    snap : Snapshot
        The snapshot the window pulls into; its arrays give the shapes (and the first,
        empty picture).
    sr : int
        Sample rate of ``snap.output`` in Hz (the brain's).
    fps : float
        Brain ticks per second: one spectrogram column each.

    Attributes
    ----------
    spectrogram : SpectrogramRing
        The columns shown, one per brain tick.
    source_item, frame_item, spec_item : pg.ImageItem
        The source picture (RGB, in its own aspect: ``snap.source_size``), the picture the
        brain sees, the spectrogram.
    source_view : pg.ViewBox
        The source picture's box (aspect locked; it follows the picture's size).
    wave_plot : pg.PlotItem
        The output block's plot; ``wave_curve`` is its curve.
    """

    def __init__(self, snap: Snapshot, *, sr: int, fps: float) -> None:
        super().__init__()
        self.setBackground(BACKGROUND)
        self.setObjectName("plots")
        n = len(snap.output)
        self.spectrogram = SpectrogramRing(
            columns=SPEC_COLUMNS, n_fft=SPEC_NFFT, length=n, sr=sr, floor_db=SPEC_FLOOR_DB
        )
        self.time_ms = np.arange(n, dtype=np.float32) / sr * 1e3
        self.last_tick = -1
        self.addLabel("source", row=0, col=0, size="14pt", color=DIM_TEXT)
        self.addLabel("brain sees 64×64", row=0, col=1, size="14pt", color=DIM_TEXT)
        self.source_size = (-1, -1)
        self.source_item = self._picture(_source_picture(snap), col=0)
        self.source_view = self.source_item.getViewBox()
        self.frame_item = self._picture(snap.frame, col=1)
        self.wave_plot = self._waveform_plot()
        self.wave_curve = self.wave_plot.plot(
            self.time_ms, snap.output, pen=pg.mkPen(WAVE_COLOUR, width=2)
        )
        self.spec_plot, self.spec_item = self._spectrogram_plot(span=SPEC_COLUMNS / fps)
        lay = self.ci.layout
        for row, stretch in ((0, 0), (1, 3), (2, 2), (3, 2)):
            lay.setRowStretchFactor(row, stretch)

    def _picture(self, pixels: np.ndarray, *, col: int) -> pg.ImageItem:
        vb = self.addViewBox(row=1, col=col, lockAspect=True, enableMouse=False)
        vb.invertY(True)
        item = pg.ImageItem(axisOrder="row-major")
        item.setImage(pixels, autoLevels=False, levels=(0, 255))
        vb.addItem(item)
        return item

    def _waveform_plot(self) -> pg.PlotItem:
        p = self.addPlot(row=2, col=0, colspan=2, title="output block")
        p.setYRange(-1.0, 1.0, padding=0)
        p.setXRange(0, float(self.time_ms[-1]), padding=0)
        p.setMouseEnabled(x=False, y=False)
        p.hideButtons()
        p.setLabel("bottom", "ms")
        p.setDownsampling(auto=True, mode="peak")
        p.setClipToView(True)
        return p

    def _spectrogram_plot(self, *, span: float) -> tuple[pg.PlotItem, pg.ImageItem]:
        """The last ``span`` seconds of output, log frequency upwards."""
        p = self.addPlot(row=3, col=0, colspan=2, title="output spectrogram")
        p.setMouseEnabled(x=False, y=False)
        p.hideButtons()
        p.setLabel("bottom", "s")
        p.setLabel("left", "Hz")
        item = pg.ImageItem(axisOrder="row-major")
        item.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256))
        item.setImage(self.spectrogram.view(), autoLevels=False, levels=(SPEC_FLOOR_DB, 0.0))
        lo, hi = self.spectrogram.log_fmin, self.spectrogram.log_fmax
        item.setRect(QtCore.QRectF(-span, lo, span, hi - lo))
        p.addItem(item)
        p.setXRange(-span, 0.0, padding=0)
        p.setYRange(lo, hi, padding=0)
        ticks = [(math.log10(f), lab) for f, lab in _FREQ_TICKS if lo <= math.log10(f) <= hi]
        p.getAxis("left").setTicks([ticks, []])
        return p, item

    def draw(self, s: Snapshot) -> None:
        """Push one snapshot's pictures, block and (once per new tick) spectrogram column."""
        self.source_item.setImage(_source_picture(s), autoLevels=False, levels=(0, 255))
        if s.source_size != self.source_size:  # a new source: fit its box to its aspect
            self.source_size = s.source_size
            self.source_view.autoRange(padding=0)
        self.frame_item.setImage(s.frame, autoLevels=False, levels=(0, 255))
        self.wave_curve.setData(self.time_ms, s.output)
        if s.tick != self.last_tick:
            # one column per brain tick, so the time axis stays true when redraws lag
            new = s.tick - self.last_tick if self.last_tick >= 0 else 1
            self.last_tick = s.tick
            self.spectrogram.push(s.output, repeat=new)
            self.spec_item.setImage(
                self.spectrogram.view(), autoLevels=False, levels=(SPEC_FLOOR_DB, 0.0)
            )


def _source_picture(s: Snapshot) -> np.ndarray:
    """The part of ``s.source_frame`` that holds the source picture (all of it before one)."""
    h, w = s.source_size
    return s.source_frame[:h, :w] if h > 0 and w > 0 else s.source_frame
