"""PcmBuffer: the session's audio by sample position. Reads anywhere in what
is kept must give exactly the samples appended there, across block edges and
after forgetting; nothing a caller does later may change what was taken."""

from __future__ import annotations

import random

import numpy as np
import pytest

from captioner.stt.pcm_buffer import PcmBuffer


def samples(a: int, b: int) -> bytes:
    """Samples whose value is their own position (mod 2**16): easy to check."""
    return (np.arange(a, b) % 65536).astype("<u2").tobytes()


def test_reads_across_blocks_equal_what_was_appended():
    rnd = random.Random(7)
    buf, pos = PcmBuffer(), 0
    while pos < 20000:
        n = rnd.choice([1, 7, 1599, 1600, 1601, 4800])
        buf.append(samples(pos, pos + n))
        pos += n
    assert (buf.start, buf.end) == (0, pos)
    for _ in range(500):
        a = rnd.randrange(0, pos)
        n = rnd.randrange(0, min(9000, pos - a) + 1)
        assert buf.read(a, n) == samples(a, a + n)


def test_a_whole_block_is_returned_as_it_is():
    buf = PcmBuffer()
    block = samples(0, 1600)
    buf.append(block)
    assert buf.read(0, 1600) is block


def test_forgetting_keeps_every_later_sample_readable():
    rnd = random.Random(3)
    buf, pos, start = PcmBuffer(), 0, 0
    for _ in range(3000):
        n = rnd.randrange(1, 3000)
        buf.append(samples(pos, pos + n))
        pos += n
        if rnd.random() < 0.3:
            start = rnd.randrange(start, pos + 1)
            buf.forget_before(start)
        assert (buf.start, buf.end) == (start, pos)
        if pos > start:
            a = rnd.randrange(start, pos)
            n = rnd.randrange(0, pos - a + 1)
            assert buf.read(a, n) == samples(a, a + n)
    buf.forget_before(start - 1)  # never moves back
    assert buf.start == start
    # forgotten blocks are let go: what is held exceeds what is kept by less than one block
    held = sum(len(c) for c in buf._chunks) // 2
    assert 0 <= held - (pos - start) < 3000
    assert not any(buf._chunks[: buf._head])


def test_forgotten_or_future_samples_cannot_be_read():
    buf = PcmBuffer()
    buf.append(samples(0, 100))
    buf.forget_before(50)
    with pytest.raises(IndexError):
        buf.read(49, 2)
    with pytest.raises(IndexError):
        buf.read(90, 11)
    assert buf.read(50, 50) == samples(50, 100)
    buf.forget_before(100)
    assert buf.start == buf.end == 100 and buf.read(100, 0) == b""
    assert not any(buf._chunks)  # nothing is held once everything is forgotten
    buf.append(samples(100, 120))
    assert buf.read(100, 20) == samples(100, 120)


def test_a_mutable_block_is_copied_and_an_odd_byte_dropped():
    buf = PcmBuffer()
    data = bytearray(samples(0, 10))
    buf.append(data)
    data[:] = bytes(len(data))  # the caller reuses its buffer
    assert buf.read(0, 10) == samples(0, 10)
    buf.append(samples(10, 12) + b"\x01")
    assert buf.end == 12 and buf.read(10, 2) == samples(10, 12)
    buf.append(b"")
    assert buf.end == 12
