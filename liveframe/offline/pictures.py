"""The pictures of a render: a video on the brain clock, decoded in a producer thread.

:class:`PictureStream` hands each tick's picture, in batches, to the thread that runs the
tick pipeline (render, eval); the decode loop itself is
:class:`~liveframe.core.media.ClockedFrames`, the same as live play's and the dataset's.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from liveframe.core.media import ClockedFrames, MediaReader
from liveframe.core.spec import BrainSpec
from liveframe.errors import MediaError
from liveframe.offline.sinks import PacketFeed

U8 = npt.NDArray[np.uint8]

DECODER_THREADS = False
"""FFmpeg threading of a decode that feeds a brain (``MediaReader(threads=...)``): FFmpeg's
default, slice threads, not frame threads.

A render is two busy threads, the decoder's and the brain's (which also synthesises and
writes). Frame threads (``thread_type`` AUTO: a picture in flight per core, plus one) leave
no core for the brain, and on two cores the render was slower than decode-only by a third;
slice threads finish each picture before the next, so decoding and the brain take turns
on the cores. Measured side by side against frame-threaded decode-only (the benchmark's
baseline then; BENCHMARKS.md now takes the faster decoder): 60 s 640x360, 0.80 of
decode-only against 0.78 with frame threads and 0.69 with one decoding thread; 10 s
1280x720, 1.06 against 0.90 and 0.65. The pictures are the same with any threading.
"""


BATCH = 256
"""Ticks per inference call in a render (the blocks are the same with any batch). Against 64,
measured interleaved (5 rounds, ratio of medians to frame-threaded decode-only): 60 s 640x360,
render_signal 0.86 against 0.75 and .mkv 0.77 against 0.66; 10 s 1280x720 the same or
better. Fewer, larger hand-overs between the decoding thread and the brain's."""


# -- pictures on the brain clock ---------------------------------------------------------


class PictureStream:
    """Each tick's picture of a video, in batches, decoded in a producer thread.

    Iterating yields uint8 arrays ``(n, channels, height, width)`` (a fresh array each,
    ``n == batch`` but for the last), the brain's pictures without context (the pipeline
    stacks it); afterwards :attr:`ticks` and :attr:`end_time` (seconds: last frame's time
    plus its duration, :class:`~liveframe.core.media.BrainClock`'s rule) are set.

    Decoding (PyAV/FFmpeg threaded as :data:`DECODER_THREADS` says, swscale, the clock)
    runs in a producer thread that hands the pictures, a chunk at a time, through a bounded
    queue to the caller's thread, which runs the pipeline: both release the GIL for their
    heavy work, so inference and synthesis overlap decoding instead of adding to it. The
    pictures are the same with ``threaded=False``.

    Parameters
    ----------
    video : path-like
    spec : BrainSpec
        The brain's picture size, channels and fps.
    batch : int
        Ticks per batch (does not change the pictures).
    threaded : bool
        Decode in a producer thread (default) or inline.
    prefetch : int
        Ticks the producer may run ahead.
    reader : MediaReader, optional
        ``video`` already opened (e.g. to check it before any work): the first pass decodes
        from it (with its own ``threads``) instead of opening the file again, and closes it.
    packets : PacketFeed, optional
        Receives the video packets the decoder demuxes, on the caller's thread (each
        chunk's packets before its pictures), and is marked done after the last batch: a
        muxer copies them instead of reading the file a second time.
    """

    def __init__(
        self,
        video: str | os.PathLike[str],
        spec: BrainSpec,
        *,
        batch: int = BATCH,
        threaded: bool = True,
        prefetch: int = 256,
        reader: MediaReader | None = None,
        packets: PacketFeed | None = None,
    ) -> None:
        if batch <= 0:
            raise ValueError(f"batch={batch} must be a positive integer")
        if prefetch <= 0:
            raise ValueError(f"prefetch={prefetch} must be a positive integer")
        self.video = Path(video)
        self.spec = spec
        self.batch = batch
        self.threaded = threaded
        self.prefetch = prefetch
        self.packets = packets
        self.ticks = 0
        self.end_time = 0.0
        self._reader = reader
        self._clock: ClockedFrames | None = None

    @property
    def known_end(self) -> float:
        """While iterating, seconds the video lasts at least: the newest frame time decoded.

        It only grows, and :attr:`end_time` ends up strictly beyond it, so samples before
        ``known_end * sample_rate`` are inside the render whatever is still to come.
        """
        clock = self._clock
        return 0.0 if clock is None else clock.known_end

    def _chunks(self, reader: MediaReader, chunk: int) -> Iterator[tuple[U8, list[Any]]]:
        """Pictures ``(n <= chunk, C, H, W)`` with the video packets demuxed since the
        previous chunk (with :attr:`packets`); the last chunk may have no pictures."""
        spec = self.spec
        pending: list[Any] = []

        def take() -> list[Any]:
            out = pending[:]
            pending.clear()
            return out

        shape = (chunk, spec.channels, spec.height, spec.width)
        with reader:
            clock = ClockedFrames(
                reader, fps=spec.fps, size=(spec.width, spec.height), channels=spec.channels,
                on_packet=pending.append if self.packets is not None else None,
            )  # fmt: skip
            self._clock = clock
            buf = np.empty(shape, np.uint8)
            n = 0
            for _, vf in clock:
                buf[n] = vf.pixels
                n += 1
                if n == chunk:
                    yield buf, take()
                    buf = np.empty(shape, np.uint8)
                    n = 0
            if n or pending:
                yield buf[:n], take()
            if clock.ticks == 0:
                raise MediaError(f"{self.video}: no decodable video frames")
            self.ticks = clock.ticks
            self.end_time = float(clock.end_time or 0.0)

    def _prefetched(self, reader: MediaReader) -> Iterator[tuple[U8, list[Any]]]:
        """:meth:`_chunks` run ahead in a producer thread, through a bounded queue."""
        chunk = min(self.batch, self.prefetch)
        q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(1, self.prefetch // chunk))
        stop = threading.Event()

        def put(item: tuple[str, Any]) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            end: tuple[str, Any] = ("done", None)
            chunks = self._chunks(reader, chunk)
            try:
                for item in chunks:
                    if not put(("chunk", item)):
                        return
            except Exception as e:  # noqa: BLE001 - any error is handed to the consumer
                end = ("error", e)
            finally:
                chunks.close()  # closes the reader, on this thread
                put(end)

        worker = threading.Thread(target=produce, name="liveframe-decode", daemon=True)
        worker.start()
        try:
            while True:
                kind, item = q.get()
                if kind == "chunk":
                    yield item
                elif kind == "error":
                    raise item
                else:
                    return
        finally:
            stop.set()
            worker.join()

    def __iter__(self) -> Iterator[U8]:
        reader, self._reader = self._reader, None  # a reader given is good for one pass
        if reader is None:
            reader = MediaReader(self.video, threads=DECODER_THREADS)
        if self.threaded:
            chunks = self._prefetched(reader)
        else:
            chunks = self._chunks(reader, self.batch)
        feed, batch = self.packets, self.batch
        held: list[U8] = []  # pictures of a batch still incomplete
        n = 0
        with contextlib.closing(chunks):  # stops the decoder
            for px, packets in chunks:
                if feed is not None:
                    feed.put(packets)
                if not px.shape[0]:
                    continue
                if not held and px.shape[0] == batch:
                    yield px
                    continue
                held.append(px)
                n += px.shape[0]
                while n >= batch:
                    both = np.concatenate(held)
                    yield both[:batch]
                    held = [both[batch:]] if n > batch else []
                    n -= batch
        if n:
            yield np.concatenate(held)
        if feed is not None:
            feed.done = True
