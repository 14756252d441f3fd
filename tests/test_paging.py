"""The page cutter: pages at pauses, never inside a word when a pause exists,
never longer than the limit, and pages that concatenate back to the input."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.stt.paging import PageRules, Pager, find_cut, speech_bounds
from tests.fakes.tones import VOCAB, WORD_GAP_S, synthesize

RATE = 16000


def pcm(audio: np.ndarray) -> bytes:
    mono = audio[:, 0] if audio.ndim == 2 else audio
    return (np.clip(mono, -1, 1) * 32767).astype("<i2").tobytes()


def tone(seconds: float, hz: float = 600.0, amp: float = 0.5, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), np.float32)


def pages_of(data: bytes, rules: PageRules, block: int = 1600) -> list:
    """Feed like a live session (100 ms blocks), then flush at the end."""
    pager = Pager(rules)
    pages = []
    for at in range(0, len(data), block * 2):
        pager.push(data[at : at + block * 2])
        while (page := pager.next_page()) is not None:
            pages.append(page)
    while (page := pager.next_page(final=True)) is not None:
        pages.append(page)
    assert pager.buffered == 0
    return pages


def inside_a_word(sample: int, spoken, rate: int = RATE) -> bool:
    t = sample / rate
    return any(start < t < end for _, start, end in spoken.words)


def test_cuts_at_utterance_pauses_after_the_target():
    utterances = [[VOCAB[(i + j) % 16] for j in range(3)] for i in range(40)]
    audio, spoken = synthesize(utterances, rate=RATE)
    rules = PageRules(RATE)
    pages = pages_of(pcm(audio), rules)
    assert len(pages) >= 3
    gaps = [(a[-1][2], b[0][1]) for a, b in zip(spoken.utterances, spoken.utterances[1:])]
    for page in pages[:-1]:
        t = page.end / RATE
        assert any(g0 < t < g1 for g0, g1 in gaps), f"page end {t:.2f} s is not in an utterance pause"
        assert rules.min_page_s <= page.samples / RATE <= rules.max_s
        # the latest pause before the target is taken (utterances are ~2.1 s apart)
        assert page.samples / RATE > rules.target_s - 2.5


def test_never_cuts_inside_a_word_when_only_short_gaps_exist():
    # 40 s of words separated only by 0.1 s word gaps: no pause of min_pause_s
    words = [VOCAB[i % 16] for i in range(115)]
    audio, spoken = synthesize([words], rate=RATE)
    assert spoken.words[-1][2] > 40
    pages = pages_of(pcm(audio), PageRules(RATE))
    assert len(pages) == 2
    cut = pages[0].end
    assert not inside_a_word(cut, spoken)
    assert pages[0].samples <= 30 * RATE
    assert pages[0].samples >= 29 * RATE  # the best pause is near the limit (all equal, latest wins)


def test_continuous_tone_is_cut_at_the_hard_limit():
    pages = pages_of(pcm(tone(70.0)), PageRules(RATE))
    assert [round(p.samples / RATE, 1) for p in pages[:2]] == [30.0, 30.0]
    assert all(p.samples <= 30 * RATE for p in pages)
    assert sum(p.samples for p in pages) == 70 * RATE


def test_prefers_the_longest_pause_then_the_latest():
    rules = PageRules(RATE)
    parts = [tone(12.0), silence(1.5), tone(4.0), silence(0.4), tone(8.5), silence(0.35), tone(2.0)]
    samples = np.frombuffer(pcm(np.concatenate(parts)), "<i2")
    cut = find_cut(samples[: int(26.5 * RATE)], rules)
    assert cut is not None and abs(cut / RATE - 12.75) < 0.03  # middle of the 1.5 s pause
    # equal pauses: the most recent one
    parts = [tone(11.0), silence(0.5), tone(6.0), silence(0.5), tone(9.0)]
    samples = np.frombuffer(pcm(np.concatenate(parts)), "<i2")
    cut = find_cut(samples, rules)
    assert cut is not None and abs(cut / RATE - 17.75) < 0.03


def test_waits_for_a_pause_between_target_and_limit():
    rules = PageRules(RATE)
    samples = np.frombuffer(pcm(np.concatenate([tone(27.0)])), "<i2")
    assert find_cut(samples, rules) is None  # no pause yet and below the limit: wait
    assert find_cut(samples[: 20 * RATE], rules) is None  # below the target: wait
    assert find_cut(samples[: 20 * RATE], rules, final=True) == 20 * RATE  # end of stream: all of it


def test_pauses_before_the_minimum_page_are_used_only_at_the_limit():
    rules = PageRules(RATE)
    samples = np.frombuffer(pcm(np.concatenate([tone(5.0), silence(0.5), tone(30.0)])), "<i2")
    assert find_cut(samples[: 27 * RATE], rules) is None
    cut = find_cut(samples, rules)
    assert cut is not None and abs(cut / RATE - 5.25) < 0.03  # a pause beats a cut inside sound


def test_speech_bounds_trim_silence_and_silent_pages_have_none():
    rules = PageRules(RATE)
    samples = np.frombuffer(pcm(np.concatenate([silence(2.0), tone(3.0), silence(4.0)])), "<i2")
    start, end = speech_bounds(samples, rules)
    assert abs(start / RATE - 1.95) < 0.03 and abs(end / RATE - 5.05) < 0.03
    assert speech_bounds(np.zeros(RATE * 5, "<i2"), rules) is None
    quiet_noise = (np.random.default_rng(1).standard_normal(RATE * 5) * 20).astype("<i2")  # about -64 dBFS
    assert speech_bounds(quiet_noise, rules) is None


def test_speech_is_found_over_a_noise_floor():
    rules = PageRules(RATE)
    noise = np.random.default_rng(2).standard_normal(RATE * 12).astype(np.float32) * 0.01  # -40 dBFS
    noise[int(3 * RATE) : int(6 * RATE)] += tone(3.0, amp=0.3)
    start, end = speech_bounds(np.frombuffer(pcm(noise), "<i2"), rules)
    assert abs(start / RATE - 2.95) < 0.05 and abs(end / RATE - 6.05) < 0.05


def test_page_positions_and_speech_are_on_the_stream_timeline():
    audio = np.concatenate([tone(20.0), silence(1.0), tone(20.0), silence(0.5)])
    pages = pages_of(pcm(audio), PageRules(RATE))
    assert pages[0].start == 0 and pages[1].start == pages[0].end
    assert abs(pages[1].speech[0] / RATE - 20.95) < 0.03


def test_paging_is_fast_on_long_audio():
    utterances = [[VOCAB[(i + j) % 16] for j in range(4)] for i in range(300)]  # ~10 min
    audio, _ = synthesize(utterances, rate=RATE)
    data = pcm(audio)
    t0 = time.perf_counter()
    pages = pages_of(data, PageRules(RATE))
    assert time.perf_counter() - t0 < 3.0
    assert b"".join(p.pcm for p in pages) == data


def test_rules_are_validated():
    with pytest.raises(ValueError):
        PageRules(RATE, target_s=31.0)
    with pytest.raises(ValueError):
        PageRules(RATE, min_page_s=0)


segment = st.tuples(
    st.sampled_from(["silence", "tone", "noise", "quiet"]),
    st.floats(min_value=0.0, max_value=12.0),
)


@settings(max_examples=60, deadline=None)
@given(
    segments=st.lists(segment, min_size=1, max_size=12),
    block=st.integers(min_value=20, max_value=4000),
    target=st.floats(min_value=1.0, max_value=6.0),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_pages_concatenate_back_to_exactly_the_input(segments, block, target, seed):
    rate = 1000  # small rate keeps the property test fast; the logic is rate-independent
    rng = np.random.default_rng(seed)
    parts = []
    for kind, seconds in segments:
        n = int(seconds * rate)
        if kind == "silence":
            parts.append(np.zeros(n, np.float32))
        elif kind == "tone":
            parts.append(0.5 * np.sin(2 * np.pi * 90 * np.arange(n) / rate).astype(np.float32))
        elif kind == "noise":
            parts.append(rng.uniform(-1, 1, n).astype(np.float32))
        else:
            parts.append(rng.uniform(-0.001, 0.001, n).astype(np.float32))
    data = pcm(np.concatenate(parts))
    rules = PageRules(rate, target_s=target, max_s=target + 2.0, min_page_s=target / 2, min_pause_s=0.2)
    pages = pages_of(data, rules, block=block)
    assert b"".join(p.pcm for p in pages) == data
    position = 0
    for page in pages:
        assert page.start == position and 0 < page.samples <= rules.max_samples
        position = page.end
        if page.speech is not None:
            assert page.start <= page.speech[0] < page.speech[1] <= page.end
