from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def thread_errors() -> Iterator[list[BaseException]]:
    """Exceptions that escaped any thread during the test (threading.excepthook)."""
    errors: list[BaseException] = []
    old = threading.excepthook
    threading.excepthook = lambda a: errors.append(a.exc_value)  # type: ignore[assignment]
    yield errors
    threading.excepthook = old


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# A real JACK server (dummy backend) for the audio tests; see tests/jack.py.
from tests.jack import jack_server  # noqa: E402,F401
