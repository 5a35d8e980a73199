"""A real JACK server (dummy backend) for the audio tests.

``jack_server`` starts ``jackd --no-realtime -n NAME -d dummy -r 48000 -p 256`` under a
name of its own (:func:`liveframe.live.jackd.start_jackd`; parallel test runs never share a
server), points this process's PortAudio at it (:func:`~liveframe.live.jackd.default_server`)
and stops it afterwards. Fails, saying what to install, when jackd is missing or PortAudio
lacks JACK support: an audio test never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

from liveframe.live import audio
from liveframe.live.jackd import JackServer, default_server, start_jackd, stop_jackd


@pytest.fixture(scope="module")
def jack_server() -> Iterator[JackServer]:
    """A running JACK dummy server that this process's PortAudio plays to."""
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        pytest.fail("jackd is not installed: `make test` installs it (Debian: jackd2)")
    server = start_jackd(f"lftest-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        with default_server(server):
            apis = audio.host_apis()
            if not any("JACK" in a for a in apis):
                pytest.fail(f"PortAudio sees no JACK host API with jackd running (host APIs: "
                            f"{apis}); libportaudio2 was built without JACK support")
            yield server
    finally:
        stop_jackd(server)
