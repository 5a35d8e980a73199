"""The control layer: what performers and other programs change, and what the instrument
tells them.

- :mod:`~liveframe.control.params`: :class:`Controls` (every control surface writes there,
  the producer reads once per tick) and the monitor's :class:`Snapshot`.
- :mod:`~liveframe.control.server`: the OSC address table and the control server.
- :mod:`~liveframe.control.out`: tick listeners that send over UDP: the analysis out and
  the grain bridge to Csound.
- :mod:`~liveframe.control.messages`: the one OSC message builder and the grain wire format.
- :mod:`~liveframe.control.fuzz`: hostile and flooding datagrams, for tests and benchmarks.
"""
