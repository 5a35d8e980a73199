from __future__ import annotations

import threading

import numpy as np
import pytest

from liveframe.live.ringbuffer import RingBuffer


def test_write_read_wraps_around() -> None:
    rb = RingBuffer(10)
    out = np.zeros(10, np.float32)
    data = np.arange(100, dtype=np.float32)
    pos = 0
    got = []
    for n_w, n_r in [(7, 5), (7, 6), (6, 9), (10, 10)]:
        w = rb.write(data[pos : pos + n_w])
        pos += w
        r = rb.read_into(out[:n_r])
        got.append(out[:r].copy())
    got.append(out[: rb.read_into(out)].copy())
    np.testing.assert_array_equal(np.concatenate(got), data[:pos])
    assert rb.fill == 0 and rb.written == pos


def test_write_refuses_what_does_not_fit_and_read_leaves_rest() -> None:
    rb = RingBuffer(8)
    assert rb.write(np.ones(12, np.float32)) == 8
    assert rb.space == 0 and rb.fill == 8
    assert rb.write(np.ones(1, np.float32)) == 0
    out = np.full(12, 7, np.float32)
    assert rb.read_into(out) == 8
    np.testing.assert_array_equal(out[:8], 1)
    np.testing.assert_array_equal(out[8:], 7)  # untouched: the callback zeroes it
    assert rb.read_into(out) == 0


def test_bad_capacity() -> None:
    with pytest.raises(ValueError, match="capacity=0"):
        RingBuffer(0)


def test_two_threads_keep_every_sample_in_order() -> None:
    rb = RingBuffer(1000)
    total = 40_000
    src = np.arange(total, dtype=np.float32)
    dst = np.zeros(total, np.float32)

    def produce() -> None:
        pos = 0
        while pos < total:
            pos += rb.write(src[pos : pos + 333])

    def consume() -> None:
        pos = 0
        buf = np.zeros(256, np.float32)
        while pos < total:
            n = rb.read_into(buf)
            dst[pos : pos + n] = buf[:n]
            pos += n

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    np.testing.assert_array_equal(dst, src)
