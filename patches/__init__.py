"""The Csound, Pd and Max patches, installed as package data (``liveframe.patches``).

Found with :func:`liveframe.core.shipped.shipped_file`.
"""
