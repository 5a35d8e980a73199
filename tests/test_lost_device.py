"""A lost audio device, on a real JACK server (dummy backend) of each test's own.

``liveframe play --record R.wav --stats-json S.json`` plays on a private ``jackd``; the
test then kills the server (``kill -KILL``), freezes it (``kill -STOP``: a server that
hangs without a word), or stalls it for a moment (xruns). What these prove: within the
issue's 2 s the process says so in one line (its stderr is read as it comes, each line
stamped on arrival), stops the producer without racing the dead stream's clock, writes
a whole WAV and stats file and exits with :data:`~liveframe.live.audio.LOST_EXIT_STATUS`;
Ctrl-C right after the server died exits too; the server's xruns are counted in the stats.

Bounds on time here are generous (10 s for what the issue wants in 2 s): on a loaded
machine a test must not fail for being slow. The times measured are printed
(``pytest -s``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import pytest

from liveframe.core.brain import Brain
from liveframe.data.clips import write_clip
from liveframe.live.audio import LOST_EXIT_STATUS
from liveframe.live.jackd import JackServer, jack_env, start_jackd, stop_jackd
from liveframe.util.wav import read_wav

from .helpers import make_brain, mount_tmpfs

pytestmark = [pytest.mark.jack, pytest.mark.slow, pytest.mark.timeout(120)]

MARGIN = 2048  # generous on a shared 2-core machine: these tests check behaviour
BOUND_S = 10.0  # the most any step may take here (the contract is 2 s)
SR = 48000


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("lost")
    frames = [(i / 30, np.full((48, 64), 40 + i * 6, np.uint8)) for i in range(30)]
    return {"clip": write_clip(d / "ramp.mkv", frames, fps=30.0),
            "tone": make_brain(d / "tone.onnx", freq=450.0, amp=0.3)}


@pytest.fixture
def server() -> Iterator[JackServer]:
    """A JACK dummy server of this test's own: the test kills or freezes it.
    ``stop_jackd`` reclaims the slot a killed server leaves in JACK's registry."""
    s = start_jackd(f"lflost-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        yield s
    finally:
        stop_jackd(s)


@dataclass
class Play:
    """``liveframe play`` on ``server``, its stderr lines stamped (monotonic) on arrival."""

    proc: subprocess.Popen[str]
    rec: Path
    stats: Path
    started: float
    lines: list[tuple[float, str]] = field(default_factory=list)
    ended: float = 0.0

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def played(self, seconds: float) -> bool:
        """Whether the recording holds ``seconds`` of sound (the callback ran that long)."""
        tmp = list(self.rec.parent.glob(f".{self.rec.name}.lftmp-*"))
        try:
            return bool(tmp) and tmp[0].stat().st_size >= seconds * SR * 4
        except FileNotFoundError:
            return False

    def wait(self) -> int:
        """The exit status; fails (with its stderr) if it has not exited within BOUND_S."""
        try:
            rc = self.proc.wait(timeout=BOUND_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"still running {BOUND_S:g} s later:\n{self.text()}") from None
        self.ended = time.monotonic()
        return rc


@pytest.fixture
def play(media: dict[str, Path], server: JackServer, tmp_path: Path) -> Iterator[Play]:
    """``liveframe play`` looping on ``server``, once the device has played 0.5 s."""
    rec, stats = tmp_path / "rec.wav", tmp_path / "stats.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "liveframe", "play", str(media["clip"]), "--loop", "--no-gui",
         "--brain", str(media["tone"]), "--osc-port", "0", "--margin", str(MARGIN),
         "--record", str(rec), "--stats-json", str(stats)],
        env=jack_env(server.name), stderr=subprocess.PIPE, text=True)
    p = Play(proc, rec, stats, time.monotonic())

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            p.lines.append((time.monotonic(), line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not p.played(0.5) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the recording's size: the condition is the device's
        assert p.played(0.5), f"it did not play:\n{p.text()}"
        yield p
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)


def _lost_lines(p: Play) -> list[tuple[float, str]]:
    return [(t, line) for t, line in p.lines if " lost: " in line]


def _check_kept(p: Play, *, brain_fps: float) -> dict:
    """The WAV and the stats are whole, nothing half-written is left; the stats."""
    assert "Traceback" not in p.text(), p.text()
    assert not [f.name for f in p.rec.parent.iterdir() if ".lftmp-" in f.name]
    sr, x = read_wav(p.rec)
    assert sr == SR and x.dtype == np.float32
    assert 0.5 * SR <= x.shape[0] <= (p.ended - p.started) * SR
    assert np.abs(x).max() > 0.05  # it is the tone that played, not silence
    st = json.loads(p.stats.read_text())
    assert {"underruns", "xruns", "ticks", "latency_ms"} <= set(st), st
    # no runaway: the producer made about one tick per brain hop of wall-clock time
    # (issue 16: ~1,600 ticks/s once the server died), plus the prefill
    assert 15 <= st["ticks"] <= brain_fps * (p.ended - p.started) + 10, st
    return st


def _no_children_left(children: list[psutil.Process]) -> None:
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not alive, alive


def _fps(media: dict[str, Path]) -> float:
    return float(Brain.load(media["tone"]).spec.fps)


def test_a_killed_server_is_noticed_and_the_play_kept(media, server, play) -> None:
    """kill -KILL of jackd while playing: one line, exit status 3, WAV and stats whole."""
    children = psutil.Process(play.proc.pid).children(recursive=True)
    killed = time.monotonic()
    server.process.kill()
    rc = play.wait()
    assert rc == LOST_EXIT_STATUS, play.text()
    lost = _lost_lines(play)
    assert len(lost) == 1, play.text()
    t, line = lost[0]
    assert "'system' (JACK Audio Connection Kit)" in line and "went away" in line, line
    assert "liveframe: " in line and "\n" not in line
    assert t - killed < BOUND_S
    _check_kept(play, brain_fps=_fps(media))
    _no_children_left(children)
    print(f"\nkill -KILL: said so {t - killed:.3f} s and exited {play.ended - killed:.3f} s "
          "after the kill")


def test_ctrl_c_right_after_the_server_died_exits(media, server, play) -> None:
    """SIGINT the moment jackd is killed (before or while it is noticed): the same exit."""
    killed = time.monotonic()
    server.process.kill()
    play.proc.send_signal(signal.SIGINT)
    rc = play.wait()
    # the device is lost whichever comes first: the stop finds the stream gone or stuck
    assert rc == LOST_EXIT_STATUS, play.text()
    assert len(_lost_lines(play)) == 1, play.text()
    _check_kept(play, brain_fps=_fps(media))
    print(f"\nkill -KILL + SIGINT: exited {play.ended - killed:.3f} s after the kill")


def test_a_frozen_server_is_noticed_by_its_silence(media, server, play) -> None:
    """kill -STOP of jackd: PortAudio still calls the stream active, but no callback
    comes; the watchdog's silence catches it, and meanwhile the producer, whose stream
    clock runs on, ticks at the brain's rate (no runaway)."""
    frozen = time.monotonic()
    server.process.send_signal(signal.SIGSTOP)
    rc = play.wait()
    assert rc == LOST_EXIT_STATUS, play.text()
    lost = _lost_lines(play)
    assert len(lost) == 1 and "no callback for" in lost[0][1], play.text()
    _check_kept(play, brain_fps=_fps(media))
    print(f"\nkill -STOP: said so {lost[0][0] - frozen:.3f} s and exited "
          f"{play.ended - frozen:.3f} s after the freeze")


def test_server_xruns_are_counted_in_the_stats(media, server, play) -> None:
    """A server stalled for 0.3 s reports xruns; PortAudio passes them on to the callback
    (output underflow), and ``--stats-json`` counts them. The play goes on; Ctrl-C ends it
    with status 0."""
    server.process.send_signal(signal.SIGSTOP)
    time.sleep(0.3)  # the stall itself (not a wait for a condition)
    server.process.send_signal(signal.SIGCONT)
    seen = play.rec.parent.glob(f".{play.rec.name}.lftmp-*")
    size = next(seen).stat().st_size
    deadline = time.monotonic() + BOUND_S
    while not play.played(size / SR / 4 + 0.3) and time.monotonic() < deadline:
        time.sleep(0.02)  # it plays on after the stall
    assert play.played(size / SR / 4 + 0.3), play.text()
    play.proc.send_signal(signal.SIGINT)
    rc = play.wait()
    assert rc == 0, play.text()
    assert not _lost_lines(play), play.text()
    st = _check_kept(play, brain_fps=_fps(media))
    assert st["xruns"] >= 1, st
    assert "XRun" in server.log_text()  # the server's own word for them


def test_a_full_disk_stops_the_recording_not_the_play(media, server, tmp_path) -> None:
    """``--record`` onto a disk that fills while playing (a real 64 KiB tmpfs: 0.3 s of
    float32 at 48 kHz): one line naming the file, no temporary left, the play goes on to
    its end (the stats say so), exit status 2."""
    full = mount_tmpfs(tmp_path / "full", "64k")
    try:
        rec, stats = full / "rec.wav", tmp_path / "stats.json"
        p = subprocess.run(
            [sys.executable, "-m", "liveframe", "play", str(media["clip"]), "--loop",
             "--no-gui", "--brain", str(media["tone"]), "--osc-port", "0", "--osc-out",
             "none", "--margin", str(MARGIN), "--seconds", "2", "--record", str(rec),
             "--stats-json", str(stats)],
            env=jack_env(server.name), capture_output=True, text=True, timeout=60)
        err = p.stderr.splitlines()
        assert p.returncode == 2, p.stderr
        assert "Traceback" not in p.stderr, p.stderr
        said = [line for line in err if "No space left on device" in line]
        assert len(said) == 1 and str(rec) in said[0], p.stderr
        assert list(full.iterdir()) == []  # nothing half-written, no temporary
        st = json.loads(stats.read_text())
        assert st["ticks"] >= 30, st  # it played on after the disk filled (2 s: ~60 ticks)
    finally:
        subprocess.run(["umount", str(full)], check=False)


def test_long_buffers_are_refused_or_waited_for(tmp_path) -> None:
    """A blocksize of a second (8192 frames at JACK's 8000 Hz) is refused in one line; a
    JACK period of half a second (4096 frames) is a healthy stream, played to its end: the
    watchdog waits four of the stream's own buffers, not a fixed second."""
    frames = [(i / 30, np.full((48, 64), 40 + i * 6, np.uint8)) for i in range(30)]
    clip = write_clip(tmp_path / "ramp.mkv", frames, fps=30.0)
    base = [sys.executable, "-m", "liveframe", "play", str(clip), "--loop", "--no-gui",
            "--osc-port", "0", "--osc-out", "none", "--seconds", "3"]
    s = start_jackd(f"lfslow-{os.getpid()}-{uuid.uuid4().hex[:6]}", rate=8000, period=4096)
    try:
        refused = subprocess.run([*base, "--blocksize", "8192"], env=jack_env(s.name),
                                 capture_output=True, text=True, timeout=60)
        stats = tmp_path / "stats.json"
        played = subprocess.run([*base, "--blocksize", "1024", "--stats-json", str(stats)],
                                env=jack_env(s.name), capture_output=True, text=True,
                                timeout=60)
    finally:
        stop_jackd(s)
    assert refused.returncode == 2, refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "--blocksize 8192" in lines[0] and "1.02 s" in lines[0], lines
    assert played.returncode == 0, played.stderr
    assert " lost: " not in played.stderr, played.stderr
    st = json.loads(stats.read_text())
    assert st["samplerate"] == 8000 and st["ticks"] >= 60, st
