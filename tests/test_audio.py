"""Sound out: WAV I/O, device discovery, the callback's contract and the shared state.

What these prove: the recording is atomic; a missing device is one actionable line; the
callback, driven buffer by buffer on a real (opened, not started) JACK stream, copies,
glides, guards, limits, zero-fills and counts; the stats records are fetched the rtmixer
way (the reader only ever reads a record the callback has left).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from liveframe.errors import DeviceError
from liveframe.live.audio import AudioOutput, find_output
from liveframe.live.recorder import Recorder
from liveframe.live.ringbuffer import RingBuffer
from liveframe.live.shared import CallbackStats, StreamState
from liveframe.util.wav import WavWriter, read_wav


def test_wav_roundtrip_and_atomic(tmp_path: Path, rng: np.random.Generator) -> None:
    x = rng.standard_normal(3000).astype(np.float32)
    w = WavWriter(tmp_path / "a.wav", sr=48000)
    w.write(x[:1000])
    w.write(x[1000:])
    assert not (tmp_path / "a.wav").exists()  # only the temporary until closed
    w.close()
    sr, y = read_wav(tmp_path / "a.wav")
    assert sr == 48000
    np.testing.assert_array_equal(y, x)
    w2 = WavWriter(tmp_path / "b.wav", sr=48000)
    w2.write(x)
    w2.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_no_device_is_one_line_saying_how_to_fix() -> None:
    # A fresh process whose PortAudio looks for a JACK server that does not exist: this
    # machine has no sound card, so no output at all.
    code = (
        "from liveframe.live.audio import find_output\n"
        "from liveframe.errors import DeviceError\n"
        "try:\n    find_output()\nexcept DeviceError as e:\n    print(e)\n"
    )
    env = dict(os.environ, JACK_DEFAULT_SERVER="lf-no-such-server", JACK_NO_START_SERVER="1")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60)
    if "no audio output device" not in r.stdout:
        pytest.skip(f"this machine has an audio output: {r.stdout.strip()[:200]}")
    line = r.stdout.strip()
    assert "\n" not in line
    assert "liveframe render" in line and "JACK" in line


class _Status:
    output_underflow = False


def _time() -> SimpleNamespace:
    return SimpleNamespace(outputBufferDacTime=1.0, currentTime=0.99)


@pytest.mark.jack
def test_callback_contract_on_a_real_jack_stream(jack_server, tmp_path: Path) -> None:
    """The callback, driven by hand on an opened (not started) JACK stream: copies, gain
    ramp, NaN guard, limiter, zeros and a count on underrun, panic; every buffer logged,
    counted and recorded."""
    ring = RingBuffer(4096)
    shared = StreamState(gain=1.0)  # no fade-in: the first buffer plays at full gain
    rec = Recorder(tmp_path / "cb.wav", sr=jack_server.rate)
    out = AudioOutput(ring, find_output(), sr=jack_server.rate, blocksize=256, shared=shared,
                      recorder=rec)
    try:
        buf = np.zeros((256, out.stream.channels), np.float32)
        shared.counting = True
        ring.write(np.full(256, 0.25, np.float32))
        out.callback(buf, 256, _time(), _Status())
        assert np.allclose(buf[:, 0], buf[:, -1]) and buf[:, 0].max() > 0.2  # DC blocker bites
        # NaN from a broken brain: silence
        ring.write(np.full(256, np.nan, np.float32))
        out.callback(buf, 256, _time(), _Status())
        assert np.all(buf == 0)
        # a blast: limited under the ceiling
        ring.write(np.full(256, 1e6, np.float32) * np.sign(np.sin(np.arange(256))))
        out.callback(buf, 256, _time(), _Status())
        assert np.abs(buf).max() <= out.safety.ceiling + 1e-6 and np.abs(buf).max() > 0.5
        # underrun: whole buffer filled with zeros, counted
        ring.write(np.full(100, 0.1, np.float32))
        out.callback(buf, 256, _time(), _Status())
        assert np.abs(buf[100:]).max() < 0.01  # zeros (less the DC tracker's residue)
        # panic: silence at once
        shared.silent = True
        ring.write(np.full(256, 0.5, np.float32))
        out.callback(buf, 256, _time(), _Status())
        assert np.all(buf == 0)
        assert shared.callbacks == 5 and shared.frames == 5 * 256
        assert list(shared.buffers(4, 5)) == [(ring.read - 256, 256, 1.0)]
    finally:
        out.close()
    got = CallbackStats()
    shared.collect_stats(got)  # the stream is closed: no callback writes any more
    assert (got.callbacks, got.underruns, got.xruns) == (5, 1, 0)
    assert got.nan_blocks == 1 and got.limited_blocks >= 1
    assert out.safety.ceiling >= got.peak > 0.5
    _, played = read_wav(rec.close())
    assert played.shape[0] == 5 * 256 and np.all(played[-256:] == 0)


def test_stats_are_fetched_from_records_the_callback_has_left() -> None:
    """python-rtmixer's fetch_and_reset_stats, non-blocking: a fetch adds the record the
    callback left at its last swap and asks for the next swap; nothing is counted twice or
    lost, and a second fetch before the callback served the first adds nothing."""
    sh = StreamState()
    total = CallbackStats()

    def buffer(underrun: bool, peak: float) -> None:  # what the callback does per buffer
        rec = sh.begin_buffer(sh.frames, 256, 1.0, 1.01)
        rec.underruns += underrun
        rec.peak = max(rec.peak, peak)

    assert sh.fetch_and_reset_stats(total)  # nothing yet; asks for a swap
    assert not sh.fetch_and_reset_stats(total)  # not served yet: nothing added
    for i in range(3):
        buffer(i == 1, 0.1 * i)  # the first of these serves the request
    assert sh.fetch_and_reset_stats(total) and total.callbacks == 0  # the left record: empty
    buffer(True, 0.9)  # swaps: the three buffers' record is now frozen
    assert sh.fetch_and_reset_stats(total)
    assert (total.callbacks, total.underruns) == (3, 1) and total.peak == pytest.approx(0.2)
    buffer(False, 0.0)
    sh.collect_stats(total)  # as at the end: the rest, once no callback runs
    assert (total.callbacks, total.underruns) == (5, 2) and total.peak == pytest.approx(0.9)
    again = CallbackStats()
    sh.collect_stats(again)
    assert again == CallbackStats()  # nothing is counted twice


@pytest.mark.jack
def test_find_output_by_name_and_unknown(jack_server) -> None:
    dev = find_output()
    assert "JACK" in dev.hostapi and dev.samplerate == jack_server.rate
    assert find_output("system").index == dev.index
    with pytest.raises(DeviceError, match="not found; outputs: .*system"):
        find_output("no-such-card")


@pytest.mark.jack
def test_devices_command_lists_jack(jack_server, capsys: pytest.CaptureFixture[str]) -> None:
    from liveframe.cli import main

    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "JACK" in out and "cameras:" in out
    assert main(["devices", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert any("JACK" in o["hostapi"] for o in listed["outputs"])
