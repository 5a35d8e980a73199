"""The monitor window (PySide6 + pyqtgraph).

:mod:`liveframe.ui.monitor` holds the entry points and imports no Qt; the Qt modules
(:mod:`~liveframe.ui.app`, :mod:`~liveframe.ui.widgets`, :mod:`~liveframe.ui.plots`,
:mod:`~liveframe.ui.panel`, :mod:`~liveframe.ui.window`) load only when a window opens.
"""
