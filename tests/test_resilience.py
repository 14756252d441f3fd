"""Never lose a word: every provider, every network fault.

For each provider's fake, one fault is injected mid-utterance — an abrupt TCP
close, a close with 1011, the provider's own retryable error frame, a server
that goes silent — and the transcript must come out exactly as spoken: the
same words, once each, in order, at the right times.
"""

from __future__ import annotations

import pytest

from captioner.audio.sources import WavFileSource
from captioner.captioning import CaptionJob, caption_source, make_session
from captioner.stt.session import RetryPolicy, SessionConfig
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.base import Fault
from tests.fakes.inworld import FakeInworld
from tests.fakes.smallest import FakeSmallest
from tests.fakes.uglabs import FakeUgLabs
from tests.fakes.voicerun import FakeVoiceRun
from tests.helpers import EventLog, assert_times_match

FAST = RetryPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.05)

# provider: (fake class, its retryable error frame or None, how its finals are timed)
PROVIDERS = {
    "audiopod": (FakeAudioPod, {"type": "error", "code": "UPSTREAM_ERROR", "message": "engine hiccup"}, "words"),
    "smallest": (FakeSmallest, {"type": "error", "status": "error", "message": "Internal server error"}, "words"),
    "voicerun": (FakeVoiceRun, {"type": "error", "error": {"code": "upstream_error", "message": "upstream unavailable"}}, "clock"),
    "inworld": (FakeInworld, {"error": {"code": 14, "message": "upstream unavailable", "details": []}}, "words"),
    "uglabs": (FakeUgLabs, None, "pages"),
}
FAULTS = {
    "tcp-drop": lambda payload: Fault("drop", after_bytes=80000),
    "close-1011": lambda payload: Fault("close", after_bytes=80000, code=1011),
    "error-frame": lambda payload: Fault("error", after_bytes=80000, payload=payload),
    "silent-server": lambda payload: Fault("silence", after_bytes=80000),
}


def _key(fake) -> str:
    return getattr(fake, "key", None) or fake.api_key


# UG Labs has no retryable error frame (its failed replies are in test_uglabs.py)
CASES = [(p, f) for p in PROVIDERS for f in FAULTS if not (f == "error-frame" and PROVIDERS[p][1] is None)]


@pytest.mark.parametrize("provider, fault_name", CASES)
async def test_the_exact_transcript_survives(provider, fault_name, tone_wav):
    fake_cls, error_payload, timing = PROVIDERS[provider]
    wav, spoken = tone_wav
    async with fake_cls() as fake:
        fake.faults.append(FAULTS[fault_name](error_payload))
        # estimate_pace: VoiceRun's files go at 4x too (the fake answers at once; the default is 1x)
        config = SessionConfig(fake.url, watchdog_seconds=0.6, estimate_pace=4)
        session = make_session(CaptionJob(provider, {}, fake.url), _key(fake), config, FAST)
        log = EventLog()
        # paced, so a silent server is noticed while audio still flows and the
        # sample-clock estimates of untimed providers mean something
        await caption_source(WavFileSource(wav, speed=4), session, [log], live=False, provider=provider)
    assert len(fake.records) >= 2 and session.stats.reconnects >= 1, "the fault did not happen"
    assert not fake.violations
    said = [w for w, _, _ in spoken.words]
    heard = " ".join(f.text for f in log.finals).split()
    assert heard == said  # same words, once each, in order
    if timing == "words":
        assert_times_match(log.finals, spoken)
    else:
        # times from the sample clock (VoiceRun) or page bounds (UG Labs): each
        # final sits on its speech, and times never run backwards
        starts = [f.start for f in log.finals]
        assert starts == sorted(starts)
        first_word = spoken.words[0][1]
        assert abs(log.finals[0].start - first_word) < 0.7
        assert abs(log.finals[-1].end - spoken.words[-1][2]) < 0.9


async def test_an_input_device_that_fails_mid_session_loses_no_caption(monkeypatch):
    """The PortAudio stream dies between two utterances (the USB mic is
    unplugged and plugged back): the device is reopened, the outage is a gap
    on the timeline, and every word spoken while it worked is captioned once,
    at its true time."""
    import asyncio
    import types

    import numpy as np

    import captioner.audio.sources as sources
    from captioner.audio.sources import MicrophoneSource
    from captioner.stt.events import Gap
    from tests.conftest import SCRIPT
    from tests.fakes.tones import synthesize
    from tests.helpers import FakeStream

    plugged = [{"name": "USB Mic", "max_input_channels": 1, "hostapi": 0, "default_samplerate": 16000.0}]
    fake_sd = types.SimpleNamespace(
        InputStream=FakeStream,
        query_devices=lambda: list(plugged),
        query_hostapis=lambda: [{"name": "ALSA"}],
        default=types.SimpleNamespace(device=(0, 0)),
        _terminate=lambda: None,
        _initialize=lambda: None,
    )
    monkeypatch.setattr(sources, "_sd", lambda: fake_sd)
    audio, spoken = synthesize(SCRIPT, rate=16000)
    blocks = [audio[i : i + 320] for i in range(0, len(audio), 320)]
    unplug_at = int(1.9 * 16000 / 320)  # after the first utterance, before the second
    ok = types.SimpleNamespace(input_overflow=False)

    async with FakeAudioPod() as fake:
        session = make_session(CaptionJob("audiopod", {}, fake.url), fake.key, SessionConfig(fake.url), FAST)
        log = EventLog()
        mic = MicrophoneSource("USB Mic", reopen_timeout=5)

        async def play() -> None:
            await asyncio.sleep(0.2)
            for n, block in enumerate(blocks):
                if n == unplug_at:
                    dead = FakeStream.instances[-1]
                    device = plugged.pop()  # unplugged: the stream dies and the device is gone
                    dead.kwargs["finished_callback"]()
                    await asyncio.sleep(0.6)
                    plugged.append(device)  # plugged back in
                    while FakeStream.instances[-1] is dead:
                        await asyncio.sleep(0.01)
                FakeStream.instances[-1].kwargs["callback"](block.copy(), len(block), None, ok)
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.3)
            session.stop()

        async with mic:
            player = asyncio.ensure_future(play())
            await caption_source(mic, session, [log], live=True, provider="audiopod")
            await player
    (gap,) = [e for e in log.events if isinstance(e, Gap)]
    assert gap.start == pytest.approx(unplug_at * 320 / 16000, abs=0.05) and gap.end - gap.start >= 0.3
    assert " ".join(f.text for f in log.finals).split() == [w for w, _, _ in spoken.words]
    outage = gap.end - gap.start
    got = [w for f in log.finals for w in f.words]
    for word, (_, start, _) in zip(got, spoken.words):
        expected = start if start < gap.start else start + outage
        assert abs(word.start - expected) < 0.08, (word, expected)
    assert np.isfinite(outage)
