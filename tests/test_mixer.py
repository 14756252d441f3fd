"""Mixing sources: headroom (never above full scale), lengths and alignment,
stalled inputs filled with silence and counted, rates reconciled, and the
mix captioned: both speakers' words come out."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from captioner.audio.feed import AudioSourceError, FeedStats
from captioner.audio.mixer import LIMIT_KNEE, MixedSource, Mixer, mix, soft_limit
from captioner.audio.sources import pcm_blocks
from tests.fakes.tones import ToneRecognizer, synthesize

floats = st.floats(-4.0, 4.0, allow_nan=False, width=32)


@given(hnp.arrays(np.float32, st.integers(0, 400), elements=floats))
def test_soft_limit_never_reaches_full_scale_and_keeps_quiet_audio_exact(x):
    y = soft_limit(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.all(np.abs(y) < 1.0)
    quiet = np.abs(x) <= LIMIT_KNEE
    assert np.array_equal(y[quiet], x[quiet])
    assert np.all(np.sign(y) == np.sign(x))
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(y[order]) >= 0)  # monotonic: no folding, no distortion of order


@given(
    st.integers(1, 3).flatmap(
        lambda k: st.lists(hnp.arrays(np.float32, 64, elements=st.floats(-1, 1, width=32)), min_size=k, max_size=k)
    )
)
def test_sum_with_headroom_never_clips_and_is_exact_below_the_knee(blocks):
    out = mix(blocks, gain=10 ** (-6 / 20))
    assert np.all(np.abs(out) < 1.0)
    linear = sum(b.astype(np.float64) for b in blocks) * 10 ** (-6 / 20)
    below = np.abs(linear) <= LIMIT_KNEE - 1e-3
    assert np.allclose(out[below], linear[below], atol=1e-6)


def test_two_full_scale_inputs_at_minus_6_db_stay_below_full_scale():
    ones = np.ones(480, np.float32)
    assert float(mix([ones, ones], 10 ** (-6 / 20)).max()) < 1.0
    assert float(mix([ones, -ones], 10 ** (-6 / 20)).max()) == 0.0


chunks = st.lists(st.integers(1, 700), min_size=0, max_size=25)


def _ready(mixer: Mixer) -> list[np.ndarray]:
    """Every block the mixer can give now."""
    out = []
    while (blk := mixer.next_block()) is not None:
        out.append(blk)
    return out


def _finish(mixer: Mixer, out: list[np.ndarray]) -> np.ndarray:
    """End both inputs, take the rest, and return the whole mix."""
    mixer.end(0)
    mixer.end(1)
    out += _ready(mixer)
    return np.concatenate(out) if out else np.zeros(0, np.float32)


@settings(max_examples=150, deadline=None)
@given(chunks, chunks, st.data())
def test_without_stalls_the_mix_is_the_aligned_sum(a_sizes, b_sizes, data):
    """Whatever the block sizes and arrival order, output = zero-padded sum."""
    n, gain = 160, 0.5
    rng = np.random.default_rng(len(a_sizes) * 31 + len(b_sizes))
    a = (rng.uniform(-0.8, 0.8, sum(a_sizes))).astype(np.float32)
    b = (rng.uniform(-0.8, 0.8, sum(b_sizes))).astype(np.float32)
    mixer = Mixer(2, n, max_lag_frames=10**9, gain=gain)
    pending = [(0, s) for s in a_sizes] + [(1, s) for s in b_sizes]
    order = data.draw(st.permutations(range(len(pending))))
    pos = [0, 0]
    arrivals = {0: [s for s in a_sizes], 1: [s for s in b_sizes]}
    out = []
    for k in order:  # interleave arrivals, keeping each input's own order
        i = pending[k][0]
        if not arrivals[i]:
            continue
        size = arrivals[i].pop(0)
        src = a if i == 0 else b
        mixer.put(i, src[pos[i] : pos[i] + size])
        pos[i] += size
        out += _ready(mixer)
    got = _finish(mixer, out)
    total = max(len(a), len(b))
    assert len(got) == total and mixer.done
    expected = np.zeros(total, np.float32)
    expected[: len(a)] += a
    expected[: len(b)] += b
    assert np.allclose(got, soft_limit(expected * np.float32(gain)), atol=1e-6)
    assert mixer.filled_frames == [0, 0] and mixer.stalls == [0, 0]


@settings(max_examples=100, deadline=None)
@given(chunks, chunks, st.integers(0, 800))
def test_with_stalls_no_audio_is_lost_and_lengths_add_up(a_sizes, b_sizes, lag):
    """Input A arrives whole before B: B stalls, is filled with silence, and its
    audio still comes out afterwards; every input's frames are accounted for."""
    n = 160
    mixer = Mixer(2, n, max_lag_frames=lag, gain=1.0)
    a = np.full(sum(a_sizes), 0.25, np.float32)
    b = np.full(sum(b_sizes), -0.5, np.float32)
    out = []
    at = 0
    for s in a_sizes:
        mixer.put(0, a[at : at + s])
        at += s
        out += _ready(mixer)
    at = 0
    for s in b_sizes:
        mixer.put(1, b[at : at + s])
        at += s
        out += _ready(mixer)
    got = _finish(mixer, out)
    # Every real sample of each input is in the output, in full.
    assert int(np.sum(np.isclose(got, 0.25) | np.isclose(got, -0.25))) == len(a)
    assert int(np.sum(np.isclose(got, -0.5) | np.isclose(got, -0.25))) == len(b)
    assert len(got) == max(len(a) + mixer.filled_frames[0], len(b) + mixer.filled_frames[1])
    if len(a) >= n + lag and len(b) > 0:
        assert mixer.stalls[1] == 1 and mixer.filled_frames[1] > 0


def test_a_stalled_input_is_filled_only_after_the_bound_then_recovers():
    n, lag = 100, 300
    mixer = Mixer(2, n, max_lag_frames=lag, gain=1.0)
    one = np.full(n, 0.1, np.float32)
    for _ in range(3):
        mixer.put(0, one)
        assert mixer.next_block() is None  # within the jitter bound: wait
    mixer.put(0, one)  # A now holds n + lag frames: B is declared stalled
    blocks = []
    while (blk := mixer.next_block()) is not None:
        blocks.append(blk)
    assert len(blocks) == 4 and mixer.stalls == [0, 1] and mixer.filled_frames == [0, 4 * n]
    mixer.put(0, one)  # while stalled, A is not held back at all
    assert mixer.next_block() is not None and mixer.filled_frames[1] == 5 * n
    mixer.put(1, np.full(n, 0.2, np.float32))  # B is back: waiting resumes
    mixer.put(0, one)
    assert np.allclose(mixer.next_block(), 0.3)
    mixer.put(0, one)
    assert mixer.next_block() is None and mixer.stalls == [0, 1]


class ListSource:
    """A source of given blocks, paced by sleeps; `hang` never ends it."""

    def __init__(self, blocks, rate, delay=0.0, hang=False, error=None, name="src"):
        self.blocks, self.sample_rate, self.delay, self.hang, self.error = blocks, rate, delay, hang, error
        self.name = name
        self.stats = FeedStats()
        self.entered = self.exited = self.stopped = False
        self.on_notice = None

    async def __aenter__(self):
        self.entered = True
        return self

    async def __aexit__(self, *exc):
        self.exited = True

    def stop(self):
        self.stopped = True

    def __aiter__(self):
        return self._gen()

    async def _gen(self):
        for block in self.blocks:
            if self.delay:
                await asyncio.sleep(self.delay)
            self.stats.frames += len(block)
            yield block
        if self.error is not None:
            raise self.error
        if self.hang:
            await asyncio.Event().wait()


def _split(audio, rate, ms=20):
    step = rate * ms // 1000
    return [audio[i : i + step] for i in range(0, len(audio), step)]


async def test_mixed_speakers_at_different_rates_are_both_captioned():
    """The user (mic, 16 kHz) speaks, then the meeting (48 kHz stereo) answers:
    the mix at 48 kHz, resampled to 16 kHz, recognizes both, in order."""
    mic, _ = synthesize([["alpha", "bravo", "charlie"]], rate=16000, lead_s=0.2, tail_s=2.6)
    meet, _ = synthesize([["hotel", "india", "juliet"]], rate=48000, lead_s=2.0, tail_s=0.8, channels=2)
    a = ListSource(_split(mic, 16000, 20), 16000, name="Mic")
    b = ListSource(_split(meet, 48000, 10), 48000, name="speakers.monitor")
    mixed = MixedSource(a, b)
    assert (mixed.sample_rate, mixed.name) == (48000, "Mic + speakers.monitor")
    async with mixed:
        assert a.entered and b.entered
        pcm = b"".join([p async for p in pcm_blocks(mixed, 16000)])
    assert a.exited and b.exited
    assert abs(len(pcm) / 32000 - max(len(mic) / 16000, len(meet) / 48000)) < 0.03
    rec = ToneRecognizer()
    finals = [e for e in rec.feed(pcm) + rec.flush() if e[0] == "final"]
    assert [[w.text for w in f[1]] for f in finals] == [["alpha", "bravo", "charlie"], ["hotel", "india", "juliet"]]
    assert mixed.stats.filled_frames == [0, 0] and mixed.stats.frames == len(pcm) // 2 * 3


async def test_a_source_that_stalls_does_not_stall_the_mix():
    rate = 16000
    speech, _ = synthesize([["delta", "echo"]], rate=rate, lead_s=0.2, tail_s=0.4)
    live = ListSource(_split(speech, rate), rate, delay=0.002)
    stuck = ListSource([np.zeros((320, 1), np.float32)], rate, hang=True)
    mixed = MixedSource(live, stuck, max_lag_s=0.1)
    got = 0

    async def consume():
        nonlocal got
        async for block in mixed:
            got += len(block)
            if got >= len(speech) - 320:
                return

    async with mixed:
        await asyncio.wait_for(consume(), 5)
    stats = mixed.stats
    assert stats.stalls == [0, 1]
    # Everything but the one block the stuck source gave was filled in, and counted.
    assert abs(stats.filled_frames[1] - (got - 320)) <= 320


async def test_an_input_error_ends_the_mix_with_that_error():
    ok = ListSource([np.zeros((160, 1), np.float32)] * 50, 16000, delay=0.001)
    bad = ListSource([np.zeros((160, 1), np.float32)] * 2, 16000, error=AudioSourceError("mic unplugged"))
    with pytest.raises(AudioSourceError, match="mic unplugged"):
        async for _ in MixedSource(ok, bad):
            pass


def test_notices_and_stop_reach_every_input():
    a, b = ListSource([], 16000), ListSource([], 48000)
    mixed = MixedSource(a, b, gain_db=-6)
    seen = []
    mixed.on_notice = seen.append
    a.on_notice("lost")
    b.on_notice("back")
    assert seen == ["lost", "back"]
    mixed.stop()
    assert a.stopped and b.stopped
    a.stats.dropped_frames, b.stats.device_overflows = 7, 2
    assert (mixed.stats.dropped_frames, mixed.stats.device_overflows) == (7, 2)
    with pytest.raises(ValueError):
        MixedSource()
