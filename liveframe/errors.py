"""The error hierarchy: every error a performer can cause is one line they can act on.

The CLI catches :class:`LiveframeError`, prints its message on one line and exits with
status 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os


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


class OutputError(LiveframeError):
    """An output that cannot be written: a missing or read-only folder, a full disk."""


class UsageError(LiveframeError):
    """A bad command-line value."""


class ParamError(UsageError):
    """A bad parameter value: the library names the parameter, ``epochs=0 must be ...``.

    ``liveframe.cli`` turns it into the flag's words with :meth:`for_flag`
    (``--epochs 0 must be ...``), so library code never names a flag.

    Parameters
    ----------
    param : str
        The library's parameter name (``val_fraction``).
    value : object
        The value given.
    why : str
        What is wrong with it, and what would do: ``must be in (0, 0.5]``.
    """

    def __init__(self, param: str, value: object, why: str) -> None:
        shown = repr(os.fspath(value)) if isinstance(value, os.PathLike) else repr(value)
        super().__init__(f"{param}={shown} {why}")
        self.param, self.value, self.why = param, value, why

    def for_flag(self, flag: str | None = None) -> UsageError:
        """The same problem in the command line's words: ``--val-fraction 0.0 must be ...``.

        ``flag`` defaults to ``--`` and the parameter with dashes for underscores.
        """
        flag = flag or "--" + self.param.replace("_", "-")
        v = self.value
        shown = repr(v) if isinstance(v, str) else v
        return UsageError(f"{flag} {shown} {self.why}")
