"""The monitor's side panel: the level meter, the live figures and the controls.

The panel only holds and shows widgets. The window connects their signals to
:class:`~liveframe.control.params.Controls` and calls :meth:`ControlPanel.follow` so that a
change made elsewhere (over OSC) shows up here without being written back.
"""

from __future__ import annotations

from PySide6 import QtWidgets

from liveframe import constants as C
from liveframe.control.params import DENSITY_MAX, GAIN_MAX, SPREAD_MAX, Controls, Snapshot
from liveframe.ui import widgets
from liveframe.ui.style import (
    BAD,
    DIM_TEXT,
    FROZEN_STYLE,
    GOOD,
    KEYS_HELP,
    MUTED_STYLE,
    OPEN_FILE,
    PANIC_STYLE,
    level_colour,
)
from liveframe.ui.widgets import Figure

FIGURES = ("brain", "source", "brain_fps", "inference", "latency", "underruns", "ring")
"""The live figures, top to bottom (keys of :attr:`ControlPanel.figures`)."""


class ControlPanel(QtWidgets.QWidget):
    """Meter, figures, gain, mute/panic/freeze, mode, brain, density and spread.

    Attributes
    ----------
    meter : LevelMeter
    level : Figure
        The output level in dBFS (after gain, mute and the limiter: what the audience
        hears), in big type, under the caption ``output``.
    brain_level : Figure
        The brain's own level in dBFS, before gain, mute and the limiter (``brain`` ...).
    figures : dict of str to Figure
        One per entry of :data:`FIGURES`.
    gain_slider, density_slider, spread_slider : QSlider
        In hundredths; ``gain_value``, ``density_value``, ``spread_value`` show them.
    mute_button, freeze_button : QPushButton
        Checkable.
    panic_button : QPushButton
    mode_box, brain_box : QComboBox
        The synthesis mode; the brains (item data: the path to request, ``None`` for
        :data:`OPEN_FILE`).
    """

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        side = QtWidgets.QVBoxLayout(self)
        side.setContentsMargins(0, 0, 0, 0)
        top = QtWidgets.QHBoxLayout()
        side.addLayout(top)
        self.meter = widgets.LevelMeter()
        top.addWidget(self.meter)
        figs = QtWidgets.QVBoxLayout()
        top.addLayout(figs)
        caption = Figure("output", size=12)
        caption.setStyleSheet(f"color:{DIM_TEXT}")
        figs.addWidget(caption)
        self.level = Figure("-inf dBFS", size=30, bold=True)
        figs.addWidget(self.level)
        self.brain_level = Figure("brain   -inf dBFS", size=14)
        figs.addWidget(self.brain_level)
        self.figures: dict[str, Figure] = {}
        for key in FIGURES:
            self.figures[key] = Figure(size=16, bold=key == "underruns")
            figs.addWidget(self.figures[key])
        figs.addStretch(1)
        side.addLayout(self._controls())
        side.addStretch(1)
        keys = Figure(KEYS_HELP, size=11)
        keys.setStyleSheet(f"color:{DIM_TEXT}")
        side.addWidget(keys)

    def _controls(self) -> QtWidgets.QGridLayout:
        grid = QtWidgets.QGridLayout()
        self.gain_slider, self.gain_value = widgets.slider(GAIN_MAX, "gain")
        self._row(grid, 0, "gain", self.gain_slider, self.gain_value)
        buttons = QtWidgets.QHBoxLayout()
        self.mute_button = widgets.big_button("MUTE", checkable=True)
        self.panic_button = widgets.big_button("PANIC", checkable=False)
        self.panic_button.setStyleSheet(PANIC_STYLE)
        self.freeze_button = widgets.big_button("FREEZE", checkable=True)
        for b in (self.mute_button, self.panic_button, self.freeze_button):
            buttons.addWidget(b)
        grid.addLayout(buttons, 1, 0, 1, 3)
        self.mode_box = QtWidgets.QComboBox()
        self.mode_box.addItems(list(C.MODES))
        self._row(grid, 2, "mode", self.mode_box)
        self.brain_box = QtWidgets.QComboBox()
        self._row(grid, 3, "brain", self.brain_box)
        self.density_slider, self.density_value = widgets.slider(DENSITY_MAX, "density")
        self._row(grid, 4, "density", self.density_slider, self.density_value)
        self.spread_slider, self.spread_value = widgets.slider(SPREAD_MAX, "spread")
        self._row(grid, 5, "spread", self.spread_slider, self.spread_value)
        return grid

    @staticmethod
    def _row(
        grid: QtWidgets.QGridLayout,
        r: int,
        name: str,
        w: QtWidgets.QWidget,
        value: QtWidgets.QWidget | None = None,
    ) -> None:
        grid.addWidget(Figure(name, size=14), r, 0)
        if value is None:
            grid.addWidget(w, r, 1, 1, 2)
        else:
            grid.addWidget(w, r, 1)
            grid.addWidget(value, r, 2)

    # -- brains -----------------------------------------------------------------------------
    def fill_brains(self, choices: list[tuple[str, str]]) -> None:
        """List ``(label, path)`` choices, then :data:`OPEN_FILE`; nothing selected."""
        box = self.brain_box
        box.blockSignals(True)
        try:
            box.clear()
            for label, path in choices:
                box.addItem(label, path)
            box.addItem(OPEN_FILE, None)
            box.setCurrentIndex(-1)
        finally:
            box.blockSignals(False)

    def select_brain(self, name: str) -> None:
        """Show ``name`` as the playing brain (added on top if it is not listed)."""
        box = self.brain_box
        box.blockSignals(True)
        try:
            i = box.findText(name) if name else -1
            if i < 0 and name:
                box.insertItem(0, name, name)  # a name: the engine resolves it
                i = 0
            box.setCurrentIndex(i)
        finally:
            box.blockSignals(False)

    # -- showing ----------------------------------------------------------------------------
    def style_mute(self, on: bool) -> None:
        self.mute_button.setText("MUTED" if on else "MUTE")
        self.mute_button.setStyleSheet(MUTED_STYLE if on else "")

    def style_freeze(self, on: bool) -> None:
        self.freeze_button.setStyleSheet(FROZEN_STYLE if on else "")

    def follow(self, c: Controls) -> None:
        """Show the values of ``c`` without emitting any widget's signal."""
        widgets.set_slider(self.gain_slider, c.gain)
        self.gain_value.put(f"{c.gain:.2f}")
        widgets.set_slider(self.density_slider, c.density)
        self.density_value.put(f"{c.density:.2f}")
        widgets.set_slider(self.spread_slider, c.spread)
        self.spread_value.put(f"{c.spread:.2f}")
        widgets.set_checked(self.mute_button, c.mute)
        self.style_mute(c.mute)
        widgets.set_checked(self.freeze_button, c.freeze)
        self.style_freeze(c.freeze)
        widgets.set_text(self.mode_box, c.mode)

    def show_figures(self, s: Snapshot) -> None:
        """Write the level and the live figures of one snapshot."""
        lvl = s.level_dbfs
        self.level.put(_dbfs(lvl), level_colour(lvl))
        brain = getattr(s, "brain_level_dbfs", None)  # the brain's own level, when known
        self.brain_level.put("brain  " + ("   -" if brain is None else _dbfs(brain)))
        f = self.figures
        f["brain"].put(f"{s.brain_name or '-'} · {s.mode}")
        f["source"].put(f"source {s.source_fps:5.1f} fps")
        f["brain_fps"].put(f"brain  {s.brain_fps:5.1f} fps")
        f["inference"].put(f"inference {s.inference_ms:5.1f} ms")
        f["latency"].put(f"latency {s.latency_ms:5.0f} ms")
        f["ring"].put(f"ring {s.ring_fill:5.1f} ms")  # queued ahead of the DAC
        f["underruns"].put(f"underruns {s.underruns}", BAD if s.underruns else GOOD)


def _dbfs(level: float) -> str:
    """``"  -6.0 dBFS"``; ``"  -inf dBFS"`` at the floor (-120 dBFS, silence) or below."""
    return f"{level:6.1f} dBFS" if level > -119.0 else "  -inf dBFS"
