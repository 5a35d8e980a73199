from __future__ import annotations

import numpy as np
import pytest

from liveframe.core.media import (
    PTS_TOLERANCE,
    BrainClock,
    ClockedFrames,
    MediaReader,
    VideoFrame,
    on_brain_clock,
    preprocess,
)
from liveframe.data.clips import write_clip
from liveframe.errors import MediaError


def vf(t: float, i: int) -> VideoFrame:
    return VideoFrame(t, np.full((1, 2, 2), i, np.uint8))


def ids(ticks) -> list[int]:
    return [int(f.pixels[0, 0, 0]) for _, f in ticks]


def test_preprocess_grey_and_colour():
    bgr = np.zeros((480, 640, 3), np.uint8)
    bgr[:, :, 2] = 255  # pure red in BGR
    g = preprocess(bgr)
    assert g.shape == (1, 64, 64) and g.dtype == np.uint8
    assert abs(int(g.mean()) - 76) <= 1  # BT.601 luma of red
    c = preprocess(bgr, channels=3)
    assert c.shape == (3, 64, 64) and c[0].min() == 255 and c[2].max() == 0
    with pytest.raises(ValueError, match="channels=2"):
        preprocess(bgr, channels=2)


@pytest.mark.parametrize("src_fps", [24, 25, 30000 / 1001, 30, 60])
def test_brain_clock_takes_newest_frame_at_or_before_each_tick(src_fps):
    n = int(4 * src_fps)
    frames = [vf(round(i / src_fps, 3), i % 256) for i in range(n)]  # ms-rounded like mkv
    ticks = list(on_brain_clock(frames, fps=30))
    assert [k for k, _ in ticks] == list(range(len(ticks)))
    assert abs(len(ticks) - 4 * 30) <= 1
    for k, f in ticks:
        # newest frame stamped at or before the tick (with the container's rounding)
        want = max(i for i, fr in enumerate(frames) if fr.time <= k / 30 + PTS_TOLERANCE)
        exact = k / 30 * src_fps  # within a ms of the truth: at most one frame early
        assert np.floor(exact - 0.05) <= want <= np.floor(exact + 0.05)
        assert f.pixels[0, 0, 0] == want % 256, (k, f.time)


def test_brain_clock_variable_rate_and_stall():
    times = [0.0, 0.01, 0.2, 0.21, 0.5]  # a burst, then a stall
    ticks = list(on_brain_clock([vf(t, i) for i, t in enumerate(times)], fps=30, end_time=0.6))
    assert len(ticks) == 18
    assert ids(ticks)[:6] == [0, 1, 1, 1, 1, 1]  # ticks at 0, 1/30 .. 5/30
    assert ids(ticks)[6:15] == [2, 3, 3, 3, 3, 3, 3, 3, 3]  # 0.2 is frame 2; 0.21 stalls
    assert ids(ticks)[15:] == [4, 4, 4]


def test_brain_clock_drops_timestamps_that_go_back():
    ticks = list(on_brain_clock([vf(0, 0), vf(0.1, 1), vf(0.05, 2), vf(0.2, 3)], fps=30))
    assert 2 not in ids(ticks)


def test_reader_errors_are_one_line(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        MediaReader(tmp_path / "nope.mkv")
    empty = tmp_path / "empty.mkv"
    empty.touch()
    with pytest.raises(MediaError, match="file is empty"):
        MediaReader(empty)
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(MediaError, match="not a readable video"):
        MediaReader(junk)


def test_reader_no_audio_track(tmp_path):
    p = write_clip(
        tmp_path / "silent.mkv", [(i / 30, np.zeros((64, 64), np.uint8)) for i in range(5)]
    )
    with pytest.raises(MediaError, match="no audio track"):
        MediaReader(p, need_audio=True)


def test_reader_decodes_frames_and_audio(tmp_path):
    sr = 44100
    audio = np.zeros((sr, 2), np.float32)
    audio[sr // 2] = 0.8
    pics = [(i / 25, np.full((48, 64), i * 10, np.uint8)) for i in range(25)]
    p = write_clip(tmp_path / "c.mkv", pics, audio=audio, sr=sr, fps=25)
    with MediaReader(p, need_audio=True) as r:
        frames = list(r.frames())
        assert len(frames) == 25 and frames[3].time == pytest.approx(0.12, abs=1e-3)
        assert abs(int(frames[3].pixels.mean()) - 30) <= 2
    with MediaReader(p, need_audio=True) as r:
        t0, a = r.read_audio(sample_rate=22050)
    assert t0 == 0.0 and abs(len(a) - 22050) <= 1
    assert abs(int(np.argmax(np.abs(a))) - 11025) <= 1


def test_reader_threads_choose_ffmpeg_threading(tmp_path):
    pics = [(i / 25, np.full((48, 64), i * 10, np.uint8)) for i in range(10)]
    p = write_clip(tmp_path / "c.mkv", pics, fps=25)
    modes, pictures = [], []
    for threads in (True, False):
        with MediaReader(p, threads=threads) as r:
            ctx = r.video.codec_context
            modes.append((ctx.thread_type.name, ctx.thread_count))
            pictures.append([(f.time, f.pixels.tobytes()) for f in r.frames()])
    assert modes[0][0] == "AUTO" and modes[1][0] != "AUTO"  # FFmpeg picks the counts
    assert all(x == pictures[0] for x in pictures) and len(pictures[0]) == 10


def test_brain_clock_tells_where_the_source_ends():
    clock = BrainClock(fps=30)
    seen = []
    for _ in clock.run([vf(t, i) for i, t in enumerate((0.0, 0.1, 0.2, 0.3))]):
        seen.append((clock.known_end, clock.end_time))
    # the end is known once the frames run out, for the last frame's three ticks
    assert [e for _, e in seen] == [None] * 9 + [pytest.approx(0.4)] * 3
    assert [k for k, _ in seen] == sorted(k for k, _ in seen) and seen[-1][0] == 0.3
    assert clock.end_time == pytest.approx(0.4) and clock.ticks == 12  # last frame lasts 0.1


def test_clocked_frames_is_the_brain_clock_over_the_readers_pictures(tmp_path):
    sr = 48000
    pics = [(i / 60, np.full((48, 64), (i * 9) % 256, np.uint8)) for i in range(70)]
    p = write_clip(tmp_path / "c60.mkv", pics, fps=60, audio=np.zeros(70 * sr // 60), sr=sr)
    with MediaReader(p) as r:
        want = [(k, f.time, f.pixels.tobytes()) for k, f in on_brain_clock(r.frames(), fps=30)]
    audio: list[np.ndarray] = []
    with MediaReader(p) as r:
        frames = ClockedFrames(r, fps=30, on_audio=lambda t, s: audio.append(s))
        got = [(k, f.time, f.pixels.tobytes()) for k, f in frames]
    assert got == want and len(got) == 35  # every other picture, as the clock chooses
    assert (frames.frames, frames.ticks) == (70, 35)
    assert frames.end_time == pytest.approx(70 / 60, abs=PTS_TOLERANCE)
    assert frames.known_end == pytest.approx(69 / 60, abs=PTS_TOLERANCE)
    assert abs(sum(a.size for a in audio) - 70 * 22050 // 60) <= 64  # at the brain rate
