"""A real JACK server (dummy backend) for the audio tests.

``jack_server`` starts ``jackd --no-realtime -n NAME -d dummy -r 48000 -p 256`` under a
name of its own (so parallel test runs never share a server), points PortAudio at it
through ``JACK_DEFAULT_SERVER``, re-initialises PortAudio so it sees the JACK host API, and
kills the server afterwards. Fails, saying what to install, when jackd is missing or
PortAudio lacks JACK support: an audio test never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

RATE = 48000
PERIOD = 256


@dataclass
class JackServer:
    name: str
    rate: int
    period: int
    process: subprocess.Popen[bytes]


def jack_env(name: str) -> dict[str, str]:
    """Environment that points JACK clients (and PortAudio) at server ``name``."""
    env = dict(os.environ)
    env.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1", JACK_NO_AUDIO_RESERVATION="1")
    return env


def start_jackd(name: str, *, rate: int = RATE, period: int = PERIOD,
                timeout: float = 10.0) -> subprocess.Popen[bytes]:
    """Start a dummy-backend jackd called ``name`` and wait until clients can connect."""
    env = jack_env(name)
    # jackd logs every xrun: its stderr goes to a file, never to a pipe nobody reads (a
    # full pipe blocks jackd, and with it every client)
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        ["jackd", "--no-realtime", "-n", name, "-d", "dummy", "-r", str(rate), "-p", str(period)],
        env=env, stdout=subprocess.DEVNULL, stderr=log,
    )
    proc.log = log  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise RuntimeError(f"jackd {name} exited with {proc.returncode}: {err[-500:]}")
        r = subprocess.run(["jack_lsp"], env=env, capture_output=True, timeout=5)
        if r.returncode == 0 and b"system:playback" in r.stdout:
            return proc
        time.sleep(0.1)
    stop_jackd(proc)
    raise RuntimeError(f"jackd {name} did not come up within {timeout} s")


def stop_jackd(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    log = getattr(proc, "log", None)
    if log is not None:
        log.close()


@pytest.fixture(scope="module")
def jack_server() -> Iterator[JackServer]:
    """A running JACK dummy server that this process's PortAudio plays to."""
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        pytest.fail("jackd is not installed: `make test` installs it (Debian: jackd2)")
    from liveframe.live import audio

    name = f"lftest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    proc = start_jackd(name)
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER",
                                            "JACK_NO_AUDIO_RESERVATION")}
    os.environ.update(jack_env(name))
    try:
        audio.rescan()
        apis = audio.host_apis()
        if not any("JACK" in a for a in apis):
            pytest.fail(f"PortAudio sees no JACK host API with jackd running (host APIs: {apis}); "
                        "libportaudio2 was built without JACK support")
        yield JackServer(name, RATE, PERIOD, proc)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        # PortAudio lets go of the server first: terminating it after jackd died aborts
        audio.rescan()
        stop_jackd(proc)
