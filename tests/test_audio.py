from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from liveframe.errors import DeviceError
from liveframe.live.audio import AudioOutput, WavWriter, find_output, read_wav
from liveframe.live.ringbuffer import RingBuffer


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


def test_callback_contract_on_a_real_jack_stream(jack_server) -> None:
    """The callback, driven by hand on an opened (not started) JACK stream: copies, gain
    ramp, NaN guard, limiter, zeros and a count on underrun."""
    ring = RingBuffer(4096)
    out = AudioOutput(ring, find_output(), samplerate=jack_server.rate, blocksize=256)
    try:
        buf = np.zeros((256, out.stream.channels), np.float32)
        out.counting = True
        out.gain = 1.0
        ring.write(np.full(256, 0.25, np.float32))
        out._callback(buf, 256, _time(), _Status())
        assert np.allclose(buf[:, 0], buf[:, -1]) and buf[:, 0].max() > 0.2  # DC blocker bites
        # NaN from a broken brain: silence
        ring.write(np.full(256, np.nan, np.float32))
        out._callback(buf, 256, _time(), _Status())
        assert np.all(buf == 0)
        # a blast: limited under the ceiling
        ring.write(np.full(256, 1e6, np.float32) * np.sign(np.sin(np.arange(256))))
        out._callback(buf, 256, _time(), _Status())
        assert np.abs(buf).max() <= out.safety.ceiling + 1e-6 and np.abs(buf).max() > 0.5
        # underrun: whole buffer filled with zeros, counted
        ring.write(np.full(100, 0.1, np.float32))
        before = out.underruns
        out._callback(buf, 256, _time(), _Status())
        assert out.underruns == before + 1
        assert np.abs(buf[100:]).max() < 0.01  # zeros (less the DC tracker's residue)
        # panic: silence at once
        out.silent = True
        ring.write(np.full(256, 0.5, np.float32))
        out._callback(buf, 256, _time(), _Status())
        assert np.all(buf == 0)
        assert out.callbacks == 5 and out.log_pos[4] == ring.read - 256
    finally:
        out.close()


def test_find_output_by_name_and_unknown(jack_server) -> None:
    dev = find_output()
    assert "JACK" in dev.hostapi and dev.samplerate == jack_server.rate
    assert find_output("system").index == dev.index
    with pytest.raises(DeviceError, match="not found; outputs: .*system"):
        find_output("no-such-card")


def test_devices_command_lists_jack(jack_server, capsys: pytest.CaptureFixture[str]) -> None:
    from liveframe.cli import main

    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "JACK" in out and "cameras:" in out
