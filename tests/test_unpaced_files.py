"""A file sent as fast as it can be read (`transcribe --speed 0`).

A file can be read far faster than a provider answers. Two things must then
still hold: times are on the audio's own clock (VoiceRun's are estimated from
when replies arrive, so its audio goes no faster than real time), and a
dropped connection loses nothing (a file never runs further ahead of the
finals than a reconnect can replay). Neither rule may stall a file whose
provider gives no final for a long time, nor touch a live source.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time

import numpy as np
import pytest

from captioner.audio.sources import WavFileSource
from captioner.captioning import CaptionJob, caption_source, make_session
from captioner.stt.events import Final, Gap
from captioner.stt.session import RetryPolicy, SessionConfig
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.base import Fault
from tests.fakes.inworld import FakeInworld
from tests.fakes.smallest import FakeSmallest
from tests.fakes.tones import VOCAB, synthesize, write_wav
from tests.fakes.uglabs import FakeUgLabs
from tests.fakes.voicerun import FakeVoiceRun
from tests.helpers import EventLog, assert_times_match

FAST = RetryPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.05)
FAKES = {"audiopod": FakeAudioPod, "smallest": FakeSmallest, "inworld": FakeInworld, "uglabs": FakeUgLabs}


def _key(fake) -> str:
    return getattr(fake, "key", None) or fake.api_key


async def transcribe(provider: str, fake, wav, config: SessionConfig | None = None, live: bool = False, speed: float = 0):
    session = make_session(CaptionJob(provider, {}, fake.url), _key(fake), config or SessionConfig(fake.url), FAST)
    log = EventLog()
    await caption_source(WavFileSource(wav, speed=speed), session, [log], live=live, provider=provider)
    return log, session


def gaps(log: EventLog) -> list[Gap]:
    return [e for e in log.events if isinstance(e, Gap)]


def assert_estimates_hold(finals: list[Final], spoken, tolerance: float = 0.6) -> None:
    """VoiceRun's untimed finals: one per utterance, each near its speech."""
    assert [f.text for f in finals] == [" ".join(w for w, _, _ in u) for u in spoken.utterances]
    for final, utterance in zip(finals, spoken.utterances):
        assert not final.timed
        assert abs(final.start - utterance[0][1]) <= tolerance, (final, utterance)
        assert abs(final.end - utterance[-1][2]) <= tolerance, (final, utterance)


# ------------------------------------------------- estimated times (VoiceRun)
async def test_voicerun_file_sent_unpaced_keeps_true_times(tone_wav):
    """Unpaced, the whole file went out before the first reply, and every
    final was placed near the end of the file (17 of 28 cues stacked at the
    end of a 60 s file). Now it goes at VoiceRun's pace: real time."""
    wav, spoken = tone_wav
    began = time.monotonic()
    async with FakeVoiceRun() as fake:
        log, session = await transcribe("voicerun", fake, wav)
    took = time.monotonic() - began
    assert fake.violations == []
    assert_estimates_hold(log.finals, spoken)
    duration = WavFileSource(wav).duration
    assert took >= duration * 0.9  # paced at 1x...
    assert abs(len(fake.records[0].audio) / 32000 - duration) < 0.02  # ...and all of it sent, once
    assert session.stats.reconnects == 0


async def test_voicerun_unpaced_drop_loses_no_word(tone_wav):
    """A drop in the second utterance: the estimated end of the first final
    was where the unpaced sender stood (the end of the file), so the replay
    started there and the rest was lost with no gap and no warning."""
    wav, spoken = tone_wav
    async with FakeVoiceRun() as fake:
        fake.faults.append(Fault("drop", after_bytes=80000))  # 2.5 s: inside "delta echo"
        log, session = await transcribe("voicerun", fake, wav)
    assert len(fake.records) == 2 and session.stats.reconnects == 1
    assert fake.violations == []
    assert gaps(log) == []
    assert_estimates_hold(log.finals, spoken)  # the replay is paced too: its times hold
    # the second connection replayed from near the first final's end (1.45 s),
    # before the second utterance (2.25 s), not from where the sender stood
    assert len(fake.records[1].audio) / 32000 > WavFileSource(wav).duration - 2.2


# ------------------------------------------ replay window (every provider)
def long_script(utterances: int, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(VOCAB) for _ in range(rng.randint(2, 4))] for _ in range(utterances)]


@pytest.fixture
def long_wav(tmp_path):
    """~37 s of speech in 20 utterances, at 16 kHz mono."""
    audio, spoken = synthesize(long_script(20), rate=16000)
    return write_wav(tmp_path / "long.wav", audio, 16000), spoken


@pytest.mark.parametrize("provider", list(FAKES))
async def test_unpaced_file_drop_replays_everything(provider, long_wav):
    """A replay window of 8 s and a drop 22 s into a 37 s file: unpaced, the
    file had been sent far beyond what the provider had finalized, further
    than the window could replay (Smallest and Inworld lost 43-160 s of a
    12-minute file). Now a file waits for finals: nothing is lost."""
    wav, spoken = long_wav
    async with FAKES[provider]() as fake:
        fake.faults.append(Fault("drop", after_bytes=22 * 32000))
        config = SessionConfig(fake.url, replay_seconds=8.0)
        log, session = await transcribe(provider, fake, wav, config)
    assert len(fake.records) >= 2 and session.stats.reconnects >= 1, "the fault did not happen"
    assert not fake.violations
    assert gaps(log) == []
    said = [w for w, _, _ in spoken.words]
    assert " ".join(f.text for f in log.finals).split() == said
    if provider != "uglabs":  # UG Labs gives page times, not word times
        assert_times_match(log.finals, spoken)


async def test_a_long_utterance_does_not_stall_a_file(tmp_path):
    """No final for longer than half the replay window (one 8 s utterance,
    a 2 s window): the provider needs more audio to finish it, so the file
    goes on at real time (as a live source would) instead of waiting forever."""
    words = [VOCAB[i % len(VOCAB)] for i in range(23)]  # 23 x 0.35 s: ~8 s with no pause
    audio, spoken = synthesize([words, ["alpha", "bravo"]], rate=16000)
    wav = write_wav(tmp_path / "long_utterance.wav", audio, 16000)
    async with FakeAudioPod() as fake:
        config = SessionConfig(fake.url, replay_seconds=2.0)
        log, _ = await asyncio.wait_for(transcribe("audiopod", fake, wav, config), 20)
    assert not fake.violations
    assert_times_match(log.finals, spoken)


async def test_long_silence_does_not_stall_a_file(tmp_path):
    """12 s of silence gives no final at all; the file still finishes."""
    audio, spoken = synthesize([["alpha", "bravo"], ["charlie"]], rate=16000, tail_s=12.0)
    wav = write_wav(tmp_path / "silence.wav", audio, 16000)
    async with FakeSmallest() as fake:
        config = SessionConfig(fake.url, replay_seconds=20.0)
        log, _ = await asyncio.wait_for(transcribe("smallest", fake, wav, config), 20)
    assert not fake.violations
    assert_times_match(log.finals, spoken)
    assert len(fake.records[0].audio) / 32000 == pytest.approx(WavFileSource(wav).duration, abs=0.01)


# --------------------------------------------------- what does not change
async def test_a_live_source_is_never_paced_to_real_time_or_held(tone_wav):
    """A device is real time by itself: the session adds no real-time pace
    and no wait. Audio that piles up in one (the process stood still) goes at
    twice the protocol's pace, so VoiceRun's estimates hold
    (test_session_hardening.py); a source that delivers 5.5 s at once is
    such a pile: about 2.75 s, not the 5.5 s of real time."""
    wav, _ = tone_wav
    async with FakeVoiceRun() as fake:
        began = time.monotonic()
        await transcribe("voicerun", fake, wav, live=True)
        took = time.monotonic() - began
    assert took < 5.55 / 2 + 1.2  # a 5.5 s file, not paced to real time
    assert abs(len(fake.records[0].audio) / 32000 - WavFileSource(wav).duration) < 0.02


async def test_stopping_a_paced_file_ends_soon(tone_wav):
    """A paced file reads only 2 s ahead, so a stop (Ctrl-C) does not leave
    the whole read-ahead to go out at real time."""
    wav, _ = tone_wav
    async with FakeVoiceRun() as fake:
        session = make_session(CaptionJob("voicerun", {}, fake.url), fake.key, SessionConfig(fake.url), FAST)
        asyncio.get_running_loop().call_later(1.0, session.stop)
        began = time.monotonic()
        await caption_source(WavFileSource(wav, speed=0), session, [], live=False, provider="voicerun")
        took = time.monotonic() - began
    sent = len(fake.records[0].audio) / 32000
    assert 0.8 < sent < 3.5 and took < 4.0
    assert fake.records[0].messages[-1] == {"type": "session.close"}


def test_a_file_held_back_for_finals_reads_on_in_batches():
    """Held back for finals (half the replay window past the latest), a file
    reads on once they have made a batch of room (10 s at the default 60-s
    window), not after every final: a round of reading and sending per final
    (frames cut to each utterance, both tasks and the provider's socket
    woken) was a fifth of the unpaced client's CPU. The fake runs in its own
    process, as a provider does: in this one its finals came in runs while
    the file waited, which hid the rule. Nothing is lost by it."""
    from bench.common import FakeProcess

    audio, spoken = synthesize(long_script(100, seed=3), rate=16000)  # ~190 s
    pcm = (np.clip(audio[:, 0], -1, 1) * 32767).astype("<i2").tobytes()
    blocks = [pcm[i : i + 3200] for i in range(0, len(pcm), 3200)]
    log = EventLog()
    finals = 0
    resumed_after: list[int] = []  # the finals so far, at each read after one or more came

    def count(event) -> None:
        nonlocal finals
        finals += isinstance(event, Final)

    async def source():
        seen = 0
        for block in blocks:
            if finals != seen:
                seen = finals
                resumed_after.append(seen)
            yield block

    with FakeProcess("audiopod") as fake:
        session = make_session(CaptionJob("audiopod", {}, fake.url), fake.key, SessionConfig(fake.url), FAST)
        session.subscribe(log)
        session.subscribe(count)
        asyncio.run(asyncio.wait_for(session.run(source(), live=False), 60))
    assert not fake.report.get("violations")
    assert_times_match(log.finals, spoken)
    assert gaps(log) == []
    # ~1.9-s utterances, 10 s of room a batch: once held back (past the first
    # 30 s), a read-on every 5+ finals (6-8 here); after every one or two before.
    held = [n for n in resumed_after if n > 16]
    finals_a_read_on = [b - a for a, b in zip(held, held[1:])]
    assert len(finals_a_read_on) >= 3 and statistics.median(finals_a_read_on) >= 4, resumed_after
