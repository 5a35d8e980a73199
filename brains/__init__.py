"""The shipped brains and the demo clip, installed as package data (``liveframe.brains``).

Found with :func:`liveframe.core.shipped.shipped_file`; ``--brain NAME`` looks in
``./brains/`` first, then here.
"""
