"""Render's streaming path: packets copied from the decoder's demux, the scaler, context rows."""

from __future__ import annotations

import shutil

import av
import numpy as np
import pytest

from liveframe.core.brain import Brain
from liveframe.core.media import MediaReader, Scaler, with_context
from liveframe.core.safety import guard
from liveframe.data.clips import write_clip
from liveframe.errors import MediaError
from liveframe.offline import pictures as P
from liveframe.offline import render as R
from liveframe.offline import sinks as S
from tests.helpers import count_opens, make_brain

SR = 22050


def _textured_clip(path, *, fps: float = 25.0, n: int = 40, size=(96, 54)):
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    frames = [(i / fps, ((xx * 3 + yy * 5 + 11 * i) % 256).astype(np.uint8)) for i in range(n)]
    t = np.arange(int(n / fps * 48000)) / 48000
    return write_clip(path, frames, fps=fps, audio=0.2 * np.sin(2 * np.pi * 440 * t), sr=48000)


def _layout(path) -> list[tuple]:
    with av.open(str(path)) as c:
        return [(k.stream.type, k.pts, k.dts, k.pos, bytes(k)) for k in c.demux() if k.size]


def test_on_packet_sees_every_video_packet_in_file_order(tmp_path):
    clip = _textured_clip(tmp_path / "c.mkv")
    seen = []
    with MediaReader(clip) as r:
        frames = list(r.demux(audio=False, on_packet=seen.append))
    with av.open(str(clip)) as c:
        want = [(p.pts, p.dts, bytes(p)) for p in c.demux(c.streams.video[0])]
    assert [(p.pts, p.dts, bytes(p)) for p in seen] == want
    assert len(frames) == 40 and seen[-1].size == 0  # the final flush packet too


def test_frame_times_are_the_exact_pts_ratio(tmp_path):
    clip = _textured_clip(tmp_path / "c.mkv", fps=30000 / 1001)
    with MediaReader(clip) as r:
        got = [t for _, t, _ in r.demux(audio=False)]
    with av.open(str(clip)) as c:
        want = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    assert got == want


@pytest.mark.parametrize("size, channels", [((64, 64), 1), ((64, 64), 3), ((50, 37), 1),
                                            ((33, 20), 3)])
def test_scaler_is_swscale_area_whatever_the_row_padding(tmp_path, size, channels):
    clip = _textured_clip(tmp_path / "c.mkv", n=6)
    scale = Scaler(size, channels)
    fmt = "gray" if channels == 1 else "rgb24"
    with av.open(str(clip)) as c:
        for f in c.decode(video=0):
            got = scale(f)
            ref = f.reformat(width=size[0], height=size[1], format=fmt,
                             interpolation="AREA").to_ndarray()
            ref = ref[None] if channels == 1 else ref.transpose(2, 0, 1)
            assert got.shape == (channels, size[1], size[0])
            assert got.flags.c_contiguous and got.flags.writeable and got.flags.owndata
            np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("context", [0, 1, 2])
def test_with_context_into_a_batch_row_is_the_same(context):
    rng = np.random.default_rng(0)
    pics = [rng.integers(0, 256, (1, 4, 4), dtype=np.uint8) for _ in range(5)]
    h1: list = []
    h2: list = []
    out = np.empty((5, context + 1, 4, 4), np.uint8)
    for i, px in enumerate(pics):
        want = with_context(px, h1, context)
        got = with_context(px, h2, context, out=out[i])
        assert got is out[i] or np.shares_memory(got, out)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ["ola", pytest.param("csound", marks=pytest.mark.skipif(
    shutil.which("csound") is None, reason="csound not installed"))])
def test_mkv_copies_the_packets_it_decoded_and_reads_the_input_once(tmp_path, monkeypatch,
                                                                    mode):
    # ola streams the packets the decoder demuxed into the muxer; csound (a signal complete
    # only at the end) has its muxer read them again rather than hold them all in memory
    clip = _textured_clip(tmp_path / "c.mkv", n=50)
    brain = Brain.load(make_brain(tmp_path / "b.onnx", brightness=True, freq=441.0))
    out = tmp_path / "o.mkv"
    run = lambda: R.render(clip, out, brain=brain, mode=mode, batch=7)  # noqa: E731
    assert count_opens(monkeypatch, clip, run) == (1 if mode == "ola" else 2)
    sig = R.render_signal(clip, brain, mode=mode)
    guard(sig, sr=SR)
    ref = tmp_path / "ref.mkv"
    S.write_muxed(ref, clip, sig, sr=SR, fmt="matroska", codec="flac")
    assert _layout(out) == _layout(ref)


def test_packet_feed_pulls_from_its_source_or_waits_for_puts():
    pulled = S.PacketFeed(iter([1, 2]))
    assert [pulled.get(), pulled.get(), pulled.get()] == [1, 2, None] and pulled.done
    pushed = S.PacketFeed()
    assert pushed.get() is None and not pushed.done  # nothing demuxed yet
    pushed.put([3, 4])
    assert [pushed.get(), pushed.get(), pushed.get()] == [3, 4, None]


def test_muxer_stops_at_a_failed_decode_and_leaves_nothing(tmp_path):
    # the decoder fails half way: the render raises, its temporary file is removed
    clip = _textured_clip(tmp_path / "c.mkv", n=30)
    brain = Brain.load(make_brain(tmp_path / "b.onnx"))
    real_demux = MediaReader.demux

    def failing(self, **kw):
        for i, item in enumerate(real_demux(self, **kw)):
            if i == 20:
                raise MediaError(f"{self.path}: corrupt")
            yield item

    out = tmp_path / "o.mkv"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MediaReader, "demux", failing)
        with pytest.raises(MediaError, match="corrupt"):
            R.render(clip, out, brain=brain)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.onnx", "c.mkv"]


def test_render_decodes_with_slice_threads_not_frame_threads(tmp_path, monkeypatch):
    assert P.DECODER_THREADS is False  # FFmpeg's default: see its docstring for why
    clip = _textured_clip(tmp_path / "c.mkv", n=3)
    seen = []
    real_init = MediaReader.__init__

    def recording_init(self, *a, **kw):
        seen.append(kw.get("threads", True))
        real_init(self, *a, **kw)

    monkeypatch.setattr(MediaReader, "__init__", recording_init)
    brain = Brain.load(make_brain(tmp_path / "b.onnx"))
    R.render_signal(clip, brain)
    R.render(clip, tmp_path / "o.wav", brain=brain)
    assert seen == [P.DECODER_THREADS, P.DECODER_THREADS]


def test_pictures_do_not_depend_on_decoder_threads(tmp_path):
    clip = _textured_clip(tmp_path / "c60.mkv", fps=60.0, n=70)  # half the pictures unused
    spec = Brain.load(make_brain(tmp_path / "b.onnx")).spec
    runs = []
    for threads in (None, True, False):
        reader = None if threads is None else MediaReader(clip, threads=threads)
        s = P.PictureStream(clip, spec, reader=reader)
        runs.append((np.concatenate(list(s)), s.ticks, s.end_time))
    s = P.PictureStream(clip, spec, threaded=False, batch=5, prefetch=3)
    runs.append((np.concatenate(list(s)), s.ticks, s.end_time))
    for pictures, ticks, end in runs[1:]:
        np.testing.assert_array_equal(pictures, runs[0][0])
        assert (ticks, end) == runs[0][1:]
    assert runs[0][1] == 35 and len(np.unique(runs[0][0].mean(axis=(1, 2, 3)))) > 20
