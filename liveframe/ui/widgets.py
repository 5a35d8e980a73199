"""Small Qt widgets of the monitor: the level meter, figure labels, sliders, and setters
that change a widget without emitting its signal (so following the controls never writes
them back)."""

from __future__ import annotations

import math
import time

from PySide6 import QtCore, QtGui, QtWidgets

from liveframe.ui.style import METER_FLOOR_DB, PEAK_HOLD_S, level_colour


class LevelMeter(QtWidgets.QWidget):
    """A tall bar from ``METER_FLOOR_DB`` to 0 dBFS with a peak-hold line.

    Attributes
    ----------
    level, peak : float
        What the bar and the peak line show, in dBFS, clamped to the meter's range.
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.level = METER_FLOOR_DB
        self.peak = METER_FLOOR_DB
        self._peak_t = 0.0
        self.setMinimumSize(48, 220)
        self.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Fixed, QtWidgets.QSizePolicy.Policy.Expanding
        )

    def set_level(self, dbfs: float) -> None:
        """Show ``dbfs`` (NaN or -inf read as the floor); the peak holds for a moment."""
        v = dbfs if math.isfinite(dbfs) else METER_FLOOR_DB
        self.level = min(max(v, METER_FLOOR_DB), 0.0)
        now = time.monotonic()
        if self.level >= self.peak or now - self._peak_t > PEAK_HOLD_S:
            self.peak, self._peak_t = self.level, now
        self.update()

    @staticmethod
    def _y(db: float, h: int) -> int:
        return round(h * (db / METER_FLOOR_DB))

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802 -- Qt's name
        p = QtGui.QPainter(self)
        w, h = self.width(), self.height()
        p.fillRect(0, 0, w, h, QtGui.QColor(30, 30, 34))
        top = self._y(self.level, h)
        p.fillRect(0, top, w, h - top, QtGui.QColor(level_colour(self.level)))
        p.setPen(QtGui.QPen(QtGui.QColor(level_colour(self.peak)), 3))
        py = self._y(self.peak, h)
        p.drawLine(0, py, w, py)
        p.setPen(QtGui.QColor(150, 150, 150))
        for db in (-3, -12, -24, -48):
            y = self._y(db, h)
            p.drawLine(w - 8, y, w, y)
        p.end()


class Figure(QtWidgets.QLabel):
    """A label for a live figure: text and colour change only when they differ.

    Redrawn at 10 Hz, most figures stay the same; setting the same text again would still
    cost a relayout.
    """

    def __init__(self, text: str = "", *, size: int = 14, bold: bool = False) -> None:
        super().__init__(text)
        f = self.font()
        f.setPointSize(size)
        f.setBold(bold)
        self.setFont(f)
        self.colour: str | None = None

    def put(self, text: str, colour: str | None = None) -> None:
        """Show ``text``, in ``colour`` (``"#rrggbb"``) if given."""
        if self.text() != text:
            self.setText(text)
        if colour is not None and colour != self.colour:
            self.colour = colour
            pal = self.palette()
            pal.setColor(QtGui.QPalette.ColorRole.WindowText, QtGui.QColor(colour))
            self.setPalette(pal)


def slider(maximum: float, name: str) -> tuple[QtWidgets.QSlider, Figure]:
    """A horizontal slider in hundredths from 0 to ``maximum``, and a label for its value."""
    s = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
    s.setRange(0, round(maximum * 100))
    s.setPageStep(10)
    s.setMinimumWidth(160)
    s.setObjectName(name)
    value = Figure(size=14)
    value.setMinimumWidth(56)
    return s, value


def big_button(text: str, *, checkable: bool) -> QtWidgets.QPushButton:
    """A large bold button that never takes the keyboard focus (the keys are the window's)."""
    b = QtWidgets.QPushButton(text)
    b.setCheckable(checkable)
    f = b.font()
    f.setPointSize(16)
    f.setBold(True)
    b.setFont(f)
    b.setMinimumHeight(48)
    b.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
    return b


def set_checked(button: QtWidgets.QAbstractButton, on: bool) -> None:
    """Check or uncheck ``button`` without emitting ``toggled``."""
    if button.isChecked() != on:
        button.blockSignals(True)
        button.setChecked(on)
        button.blockSignals(False)


def set_slider(s: QtWidgets.QSlider, v: float) -> None:
    """Move a hundredths slider to ``v`` without emitting ``valueChanged``."""
    iv = round(v * 100)
    if s.value() != iv:
        s.blockSignals(True)
        s.setValue(iv)
        s.blockSignals(False)


def set_text(box: QtWidgets.QComboBox, text: str) -> None:
    """Select ``text`` in ``box`` without emitting its change signals."""
    if box.currentText() != text:
        box.blockSignals(True)
        box.setCurrentText(text)
        box.blockSignals(False)
