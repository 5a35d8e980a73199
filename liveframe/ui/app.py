"""The QApplication the monitor runs in, with the dark stage palette."""

from __future__ import annotations

import sys

from PySide6 import QtGui, QtWidgets


def _stage_palette() -> QtGui.QPalette:
    """Dark greys, light text, a blue highlight: readable on a dim stage."""
    pal = QtGui.QPalette()
    dark, text = QtGui.QColor(18, 18, 20), QtGui.QColor(235, 235, 235)
    roles = QtGui.QPalette.ColorRole
    for role, colour in (
        (roles.Window, dark),
        (roles.Base, QtGui.QColor(28, 28, 32)),
        (roles.AlternateBase, dark),
        (roles.Button, QtGui.QColor(40, 40, 46)),
        (roles.WindowText, text),
        (roles.Text, text),
        (roles.ButtonText, text),
        (roles.ToolTipBase, dark),
        (roles.ToolTipText, text),
        (roles.Highlight, QtGui.QColor(10, 132, 255)),
        (roles.HighlightedText, QtGui.QColor(0, 0, 0)),
    ):
        pal.setColor(role, colour)
    return pal


def ensure_app(argv: list[str] | None = None) -> QtWidgets.QApplication:
    """The running QApplication, or a new one with the dark stage palette.

    Parameters
    ----------
    argv : list of str, optional
        Arguments for a new application (default: the program's name only).
    """
    app = QtWidgets.QApplication.instance()
    if isinstance(app, QtWidgets.QApplication):
        return app
    app = QtWidgets.QApplication(argv if argv is not None else [sys.argv[0] or "liveframe"])
    app.setApplicationName("liveframe")
    app.setStyle("Fusion")
    app.setPalette(_stage_palette())
    return app
