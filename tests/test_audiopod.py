"""AudioPod end to end against the strict fake: handshake, streaming, words and
times, end-of-stream, every documented error code, rollover, reconnects."""

from __future__ import annotations

import json

import pytest

from captioner.audio.sources import WavFileSource
from captioner.captioning import CaptionJob, caption_source, make_session
from captioner.stt.events import ProviderFailure
from captioner.stt.providers.audiopod import AudioPodOptions, AudioPodProtocol
from captioner.stt.session import RetryPolicy, SessionConfig
from captioner.stt.protocol import ProtocolError
from tests.conftest import SCRIPT
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.base import Fault
from tests.helpers import EventLog, assert_times_match

FAST_RETRY = RetryPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.05)


async def run(fake: FakeAudioPod, wav, key: str | None = None, options=None, config=None, speed: float = 0):
    job = CaptionJob("audiopod", options or {}, fake.url)
    session = make_session(job, key or fake.key, config, FAST_RETRY)
    log = EventLog()
    source = WavFileSource(wav, speed=speed)
    transcript = await caption_source(source, session, [log], live=False, provider="audiopod")
    return transcript, log, session


async def test_streams_whole_audio_and_gets_timed_finals(tone_wav):
    wav, spoken = tone_wav
    async with FakeAudioPod() as fake:
        transcript, log, _ = await run(fake, wav)
    assert fake.violations == []
    assert [f.text for f in log.finals] == [" ".join(u) for u in SCRIPT]
    assert_times_match(log.finals, spoken)
    # the provider got the whole file, resampled to 16 kHz mono, nothing more
    duration = WavFileSource(wav).duration
    assert abs(len(fake.records[0].audio) / 32000 - duration) < 0.02
    assert fake.starts == [{"type": "start", "language": "en", "diarize": False, "sample_rate": 16000, "channels": 1}]
    assert fake.records[0].messages[-1] == {"type": "end"}
    assert log.partials and log.partials[0].text == "alpha"
    assert log.states[0] == "connecting" and "live" in log.states and log.states[-1] == "closed"
    assert transcript.text == "alpha bravo charlie delta echo foxtrot golf hotel india"


async def test_audio_frames_are_100ms_binary(tone_wav):
    """Live audio goes in 100-ms frames; audio that is already late (an unpaced
    file, a replay) in frames of up to 1 s."""
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        await run(fake, wav, speed=2)
        await run(fake, wav, speed=0)
    live, late = ([m for m in r.messages if isinstance(m, int)] for r in fake.records)
    assert live[:-1] == [3200] * (len(live) - 1) and 0 < live[-1] <= 3200
    assert max(late) == 32000 and all(size % 2 == 0 for size in late)
    assert sum(late) == sum(live)


async def test_key_travels_in_query_and_is_refused_when_wrong(tone_wav):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        with pytest.raises(ProviderFailure) as info:
            await run(fake, wav, key="ap_wrong_key_zzzz")
    assert info.value.error.code == "KEY_REJECTED"
    assert "ap_wrong_key_zzzz" not in str(info.value)
    assert fake.records == []  # refused at the handshake, never retried into a storm


@pytest.mark.parametrize("code", ["INSUFFICIENT_CREDITS", "PREMIUM_TIER_REQUIRED", "INVALID_CONFIG"])
async def test_fatal_codes_stop_at_once_with_reason(tone_wav, code):
    wav, _ = tone_wav
    async with FakeAudioPod(refuse_with=code) as fake:
        with pytest.raises(ProviderFailure) as info:
            await run(fake, wav)
    assert info.value.error.code == code
    assert len(fake.records) == 1  # no retry on a refusal


async def test_options_reach_the_start_frame(tone_wav):
    wav, _ = tone_wav
    async with FakeAudioPod(speaker="1") as fake:
        transcript, log, _ = await run(fake, wav, options={"language": "auto", "diarize": "true"})
    assert fake.starts[0]["language"] is None and fake.starts[0]["diarize"] is True
    assert all(f.speaker == "1" for f in log.finals)
    assert transcript.segments[0].speaker == "1"


async def test_millisecond_word_units_option(tone_wav):
    wav, spoken = tone_wav
    async with FakeAudioPod(word_units="ms") as fake:
        _, log, _ = await run(fake, wav, options={"word_units": "ms"})
    assert_times_match(log.finals, spoken)


async def test_millisecond_word_times_are_told_apart_without_the_option(tone_wav):
    """AudioPod does not document its unit: by default the words' lengths tell."""
    wav, spoken = tone_wav
    for units in ("ms", "s"):
        async with FakeAudioPod(word_units=units) as fake:
            _, log, _ = await run(fake, wav)
        assert_times_match(log.finals, spoken)


async def test_max_duration_rolls_over_without_losing_words(tone_wav):
    wav, spoken = tone_wav
    async with FakeAudioPod(max_duration_seconds=3.0) as fake:
        _, log, session = await run(fake, wav)
    assert len(fake.records) >= 2 and session.stats.rollovers >= 1
    assert_times_match(log.finals, spoken)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("drop", after_bytes=80000),
        Fault("close", after_bytes=80000, code=1011),
        Fault("error", after_bytes=80000, payload={"type": "error", "code": "UPSTREAM_ERROR", "message": "engine hiccup"}),
    ],
    ids=["tcp-drop", "close-1011", "upstream-error"],
)
async def test_reconnect_replays_from_last_final(tone_wav, fault):
    wav, spoken = tone_wav
    async with FakeAudioPod() as fake:
        fake.faults.append(fault)
        _, log, session = await run(fake, wav)
    assert len(fake.records) == 2 and session.stats.reconnects == 1
    # exact words, once each, at the right times
    assert_times_match(log.finals, spoken)
    # the second connection started at the end of the last final, not at zero
    assert 0 < len(fake.records[1].audio) < WavFileSource(wav).duration * 32000


async def test_silent_server_is_detected_by_watchdog(tone_wav):
    wav, spoken = tone_wav
    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("silence", after_bytes=30000))
        config = SessionConfig(fake.url, watchdog_seconds=0.5)
        _, log, session = await run(fake, wav, config=config, speed=4)
    assert session.stats.reconnects >= 1
    assert_times_match(log.finals, spoken)


def proto(**opts) -> AudioPodProtocol:
    return AudioPodProtocol(AudioPodOptions(**opts), "ap_secret_key")


def test_decoder_rejects_frames_before_ready_and_garbage():
    p = proto()
    with pytest.raises(ProtocolError):
        p.decode(json.dumps({"type": "partial", "text": "x"}), 0.0)
    assert p.decode(json.dumps({"type": "ready", "job_id": "j"}), 0.0).ready
    nan_word = '{"type": "final", "text": "x", "words": [{"word": "x", "start": NaN, "end": 1}]}'
    lone_surrogate = '{"type": "partial", "text": "\\ud800 secret"}'
    for bad in ["{", "[]", b"\x00\x01", json.dumps({"type": "final"}), json.dumps({"type": "mystery"}), nan_word, lone_surrogate]:
        with pytest.raises(ProtocolError) as info:
            p.decode(bad, 0.0)
        assert info.value.error.retryable and info.value.error.code == "BAD_FRAME"
        assert "secret" not in str(info.value)  # the report names the fault, never the content


def test_decoder_maps_error_codes():
    p = proto()
    p.decode(json.dumps({"type": "ready"}), 0)
    kinds = {}
    for code in ["INVALID_CONFIG", "INSUFFICIENT_CREDITS", "PREMIUM_TIER_REQUIRED", "UPSTREAM_ERROR", "MAX_DURATION_REACHED"]:
        (err,) = p.decode(json.dumps({"type": "error", "code": code, "message": "m"}), 0).events
        kinds[code] = err.kind.value
    assert kinds == {
        "INVALID_CONFIG": "fatal",
        "INSUFFICIENT_CREDITS": "fatal",
        "PREMIUM_TIER_REQUIRED": "fatal",
        "UPSTREAM_ERROR": "retryable",
        "MAX_DURATION_REACHED": "rollover",
    }


def test_final_without_words_is_estimated_from_the_sample_clock():
    p = proto()
    p.decode(json.dumps({"type": "ready"}), 0)
    (final,) = p.decode(json.dumps({"type": "final", "text": "hello", "speech_final": True}), 3.5).events
    assert (final.start, final.end, final.timed) == (0.0, 3.5, False)


def test_key_goes_in_url_but_never_in_redacted_display():
    from captioner.stt.urls import redact_url

    req = proto().connect_request("wss://api.audiopod.ai/api/v1/transcription/stream")
    assert "api_key=ap_secret_key" in req.url
    assert "ap_secret_key" not in redact_url(req.url)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
frames = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["ready", "partial", "final", "usage", "completed", "error", "x"])},
        optional={"text": json_values, "words": json_values, "code": json_values, "message": json_values,
                  "credits_used": json_values, "streamed_seconds": json_values, "speech_final": json_values},
    ).map(json.dumps),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(frames, max_size=6), st.floats(0, 100))
def test_decoder_fuzz_only_raises_protocol_errors(sequence, sent):
    """Hostile input: whatever the server sends, decoding yields events or a
    ProtocolError in words — never another exception."""
    p = proto()
    for frame in sequence:
        try:
            decoded = p.decode(frame, sent)
        except ProtocolError as exc:
            assert exc.error.message
            continue
        for event in decoded.events:
            assert event is not None


async def test_oversized_frame_reconnects_without_losing_words(tone_wav):
    wav, spoken = tone_wav
    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("error", after_bytes=80000, payload={"type": "partial", "text": "x" * (5 << 20)}))
        _, log, session = await run(fake, wav)
    assert session.stats.reconnects == 1
    assert_times_match(log.finals, spoken)


async def test_garbage_frames_are_reported_and_nothing_is_lost(tone_wav):
    wav, spoken = tone_wav
    async with FakeAudioPod() as fake:
        fake.faults += [
            Fault("inject", after_bytes=20000, payload=b"\x00\xff\xfe"),
            Fault("inject", after_bytes=40000, payload="{not json"),
            Fault("inject", after_bytes=60000, payload='{"type": "telepathy"}'),
            Fault("inject", after_bytes=70000, payload=b'{"type": "partial", "text": "\xff\xfe"}'),
        ]
        _, log, session = await run(fake, wav)
    assert session.stats.bad_frames == 4 and session.stats.reconnects == 0
    # the two binary frames are one complaint, said once
    assert len(log.errors) == 3 and all(e.retryable for e in log.errors)
    assert_times_match(log.finals, spoken)


async def test_a_new_message_type_sent_every_utterance_is_one_warning(tone_wav):
    """A provider that adds a message type sends it again and again: one
    warning says so, not one per frame."""
    wav, spoken = tone_wav
    async with FakeAudioPod() as fake:
        fake.faults += [Fault("inject", after_bytes=n, payload='{"type": "metadata"}') for n in (20000, 50000, 80000)]
        _, log, session = await run(fake, wav)
    assert session.stats.bad_frames == 3
    assert [e.message for e in log.errors] == ["AudioPod sent a malformed frame: unknown message type 'metadata'"]
    assert_times_match(log.finals, spoken)


async def test_invalid_utf8_text_frame_reconnects_without_losing_words(tone_wav):
    wav, spoken = tone_wav
    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("bad-utf8", after_bytes=80000))
        _, log, session = await run(fake, wav)
    assert session.stats.reconnects == 1
    from captioner.stt.events import StateChanged

    reasons = [e.detail for e in log.events if isinstance(e, StateChanged) and e.state.value == "reconnecting"]
    assert len(reasons) == 1 and "1007" in reasons[0]  # the client closed: invalid UTF-8
    assert_times_match(log.finals, spoken)


def _talk(seconds: float, tmp_path):
    """Continuous talk in the tone language: utterances of 3-5 words."""
    from tests.fakes.tones import VOCAB, synthesize, write_wav

    script, t, i = [], 0.5, 0
    while t < seconds:
        n = 3 + i % 3
        script.append([VOCAB[(i * 7 + k) % len(VOCAB)] for k in range(n)])
        t += n * 0.35 + 0.8
        i += 1
    audio, spoken = synthesize(script, rate=16000)
    return write_wav(tmp_path / "talk.wav", audio, 16000), spoken


@pytest.mark.parametrize("limit", [12.0, 13.5])
async def test_the_session_limit_is_met_between_utterances_so_no_word_is_heard_twice(tmp_path, limit):
    """ready.max_duration_seconds: the client starts the next session right
    after an utterance's final once it is near the limit, instead of letting
    AudioPod cut the session (and a word) at the limit."""
    wav, spoken = _talk(40.0, tmp_path)
    async with FakeAudioPod(max_duration_seconds=limit) as fake:
        transcript, log, session = await run(fake, wav, speed=5)  # paced, as live audio is
    assert transcript.text.split() == [w for w, _, _ in spoken.words]
    assert_times_match(log.finals, spoken)
    assert len(fake.records) >= 3 and session.stats.rollovers >= 2
    assert all(len(r.audio) / 32000 < limit for r in fake.records)  # the limit was never reached
    assert not any(getattr(e, "code", "") == "MAX_DURATION_REACHED" for e in log.events)
