"""The error hierarchy: every error a performer can cause is one line they can act on.

The CLI catches :class:`LiveframeError`, prints its message on one line and exits with
status 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class LiveframeError(Exception):
    """A problem the user can fix: bad file, bad value, missing device or tool."""

    exit_status = 2


class MediaError(LiveframeError):
    """A video or audio file that is missing, unreadable, corrupt or lacks a stream."""


class BrainError(LiveframeError):
    """A brain file that is missing, unreadable, or whose spec does not fit its model."""


class DatasetError(LiveframeError):
    """A dataset file that is missing, unreadable or inconsistent."""


class DeviceError(LiveframeError):
    """An audio device or camera that is missing or refuses the settings."""


class ToolMissingError(LiveframeError):
    """An external program (csound, jackd, ...) that is not installed."""


class UsageError(LiveframeError):
    """A bad command-line value."""
