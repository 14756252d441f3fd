"""Inworld STT end to end against the strict fake: Basic auth sent verbatim,
the wrapped transcribeConfig / audioChunk / closeStream frames, every word-time
shape, the end of stream without a "done" message (server closes, stays
silent, or keeps talking), gRPC error codes, bad frames, reconnects, the CLI
contract, and a fuzzed decoder."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.audio.sources import WavFileSource
from captioner.captioning import CaptionJob, caption_source, make_session
from captioner.stt.events import ErrorKind, Final, ProviderFailure, SessionState, StateChanged, Usage
from captioner.stt.protocol import ProtocolError
from captioner.stt.providers.inworld import InworldOptions, InworldProtocol
from captioner.stt.session import RetryPolicy, SessionConfig
from tests.conftest import SCRIPT
from tests.fakes.base import Fault
from tests.fakes.inworld import WORD_VARIANTS, FakeInworld
from tests.fakes.tones import synthesize, write_wav
from tests.helpers import EventLog, assert_times_match

FAST_RETRY = RetryPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.05)
ROOT = Path(__file__).resolve().parent.parent
QUICK_END = {"end_idle_seconds": "0.3"}


async def run(fake: FakeInworld, wav, key: str | None = None, options=None, config=None, speed: float = 0):
    job = CaptionJob("inworld", {**QUICK_END, **(options or {})}, fake.url)
    session = make_session(job, key or fake.key, config, FAST_RETRY)
    log = EventLog()
    transcript = await caption_source(WavFileSource(wav, speed=speed), session, [log], live=False, provider="inworld")
    return transcript, log, session


async def test_streams_whole_audio_and_gets_timed_finals(tone_wav):
    wav, spoken = tone_wav
    async with FakeInworld() as fake:
        transcript, log, _ = await run(fake, wav)
    assert fake.violations == []
    assert_times_match(log.finals, spoken)
    assert fake.records[0].headers["Authorization"] == f"Basic {fake.key}"
    assert fake.configs == [
        {
            "modelId": "inworld/inworld-stt-1",
            "audioEncoding": "LINEAR16",
            "sampleRateHertz": 16000,
            "numberOfChannels": 1,
            "language": "en-US",
            "includeWordTimestamps": True,
        }
    ]
    duration = WavFileSource(wav).duration
    assert abs(len(fake.records[0].audio) / 32000 - duration) < 0.02
    assert log.partials and log.partials[0].text == "alpha"
    assert log.states[0] == "connecting" and "live" in log.states and log.states[-1] == "closed"
    assert transcript.text == "alpha bravo charlie delta echo foxtrot golf hotel india"


async def test_frames_are_wrapped_100ms_chunks_and_end_with_close_stream_only(tone_wav):
    wav, _ = tone_wav
    async with FakeInworld() as fake:
        await run(fake, wav)
    messages = fake.records[0].messages
    assert list(messages[0]) == ["transcribeConfig"]
    sizes = [m["audioChunk"] for m in messages[1:-1]]
    assert sizes[:-1] == [3200] * (len(sizes) - 1) and 0 < sizes[-1] <= 3200
    assert messages[-1] == {"closeStream": {}}
    assert not any("endTurn" in m for m in messages)  # endTurn before closeStream hallucinates a final


@pytest.mark.parametrize("variant", WORD_VARIANTS)
async def test_every_word_time_variant(tone_wav, variant):
    wav, spoken = tone_wav
    units = "ms" if variant == "unitless_ms" else "s"
    async with FakeInworld(word_variant=variant) as fake:
        _, log, _ = await run(fake, wav, options={"word_time_units": units})
    assert_times_match(log.finals, spoken)


@pytest.mark.parametrize("variant", WORD_VARIANTS)
async def test_every_word_time_variant_is_read_right_without_choosing_a_unit(tone_wav, variant):
    """The unit is disputed: by default it is told from the words' lengths.
    Unit-less milliseconds read as seconds put every caption at 0:00."""
    wav, spoken = tone_wav
    async with FakeInworld(word_variant=variant) as fake:
        _, log, _ = await run(fake, wav)
    assert_times_match(log.finals, spoken)
    assert not [e for e in log.errors if e.code == "BAD_TIMES"]


async def test_unitless_ms_read_as_seconds_is_visibly_wrong(tone_wav):
    """The units option matters: the same frames under the wrong unit fail the check."""
    wav, spoken = tone_wav
    async with FakeInworld(word_variant="unitless_ms") as fake:
        _, log, _ = await run(fake, wav, options={"word_time_units": "s"})
    with pytest.raises(AssertionError):
        assert_times_match(log.finals, spoken)


@pytest.mark.parametrize("config, refused", [
    ({"modelId": "assemblyai/universal-streaming-multilingual", "audioEncoding": "LINEAR16", "sampleRateHertz": 16000,
      "language": "en-US"}, None),  # the seed's own example: no numberOfChannels
    ({"modelId": "inworld/inworld-stt-1", "audioEncoding": "LINEAR16", "sampleRateHertz": "16000"}, None),  # proto3 JSON int32
    ({"modelId": "inworld/inworld-stt-1", "audioEncoding": "LINEAR16", "sampleRateHertz": "fast"}, "wrong type"),
    ({"modelId": "inworld/inworld-stt-1", "audioEncoding": "LINEAR16", "sampleRateHertz": 16000, "speed": 2}, "unknown"),
    ({"modelId": "inworld/inworld-stt-1", "audioEncoding": "LINEAR16"}, "required"),
])
async def test_the_fake_takes_what_the_seed_and_proto3_json_allow_and_refuses_the_rest(config, refused):
    import websockets

    async with FakeInworld() as fake:
        async with websockets.connect(fake.url, additional_headers={"Authorization": f"Basic {fake.key}"}) as ws:
            await ws.send(json.dumps({"transcribeConfig": config}))
            await ws.send(json.dumps({"audioChunk": {"content": base64.b64encode(bytes(3200)).decode()}}))
            await ws.send(json.dumps({"closeStream": {}}))
            replies = [json.loads(m) async for m in ws]
    errors = [r["error"] for r in replies if "error" in r]
    if refused is None:
        assert errors == [] and fake.violations == []
    else:
        assert len(errors) == 1 and errors[0]["code"] == 3 and refused in errors[0]["message"]


async def test_snake_case_answers(tone_wav):
    wav, spoken = tone_wav
    async with FakeInworld(snake_case=True, word_variant="ms") as fake:
        _, log, _ = await run(fake, wav)
    assert_times_match(log.finals, spoken)
    assert any(type(e).__name__ == "SpeechStarted" for e in log.events)


async def test_without_word_timestamps_finals_are_placed_by_the_clock(tone_wav):
    """Such times hold only if the audio goes at real time (or near it): a
    file is paced, whatever speed it was read at (unpaced, each cue ran on
    to the next one's start)."""
    wav, spoken = tone_wav
    untimed = {"include_word_timestamps": "false", "language": "none"}
    assert make_session(CaptionJob("inworld", untimed, "wss://x.example/"), "k").file_pace == 1.0
    assert make_session(CaptionJob("inworld", {}, "wss://x.example/"), "k").file_pace is None
    async with FakeInworld() as fake:
        config = SessionConfig(fake.url, estimate_pace=4.0)  # paced, but 4x for a quick test
        _, log, _ = await run(fake, wav, options=untimed, config=config, speed=0)
    assert fake.configs[0]["includeWordTimestamps"] is False and "language" not in fake.configs[0]
    assert [f.text for f in log.finals] == [" ".join(w for w, _, _ in u) for u in spoken.utterances]
    for final, utterance in zip(log.finals, spoken.utterances):
        assert not final.timed
        assert abs(final.start - utterance[0][1]) < 0.1  # speechStarted carries startTimeMs
        assert 0 <= final.end - utterance[-1][2] < 1.0


async def test_wrong_key_is_refused_at_the_handshake(tone_wav):
    wav, _ = tone_wav
    async with FakeInworld() as fake:
        with pytest.raises(ProviderFailure) as info:
            await run(fake, wav, key="bm90IGl0")
    assert info.value.error.code == "KEY_REJECTED" and "401" in info.value.error.message
    assert "bm90IGl0" not in str(info.value)
    assert fake.records == []


async def test_key_is_sent_verbatim_even_if_pasted_with_scheme(tone_wav):
    wav, spoken = tone_wav
    async with FakeInworld() as fake:
        _, log, _ = await run(fake, wav, key=f"Basic {fake.key}")
    assert fake.records[0].headers["Authorization"] == f"Basic {fake.key}"
    assert_times_match(log.finals, spoken)


@pytest.mark.parametrize(
    "after_close, idle, drain, most",
    # (server behaviour after closeStream, idle option, drain bound, longest acceptable run)
    [("close", "2.5", 30.0, 2.0), ("silent", "0.3", 30.0, 2.5), ("usage_then_silent", "0.3", 30.0, 2.5), ("chatter", "0.3", 1.0, 3.0)],
)
async def test_end_of_stream_without_done_message(tone_wav, after_close, idle, drain, most):
    wav, spoken = tone_wav
    async with FakeInworld(after_close=after_close) as fake:
        config = SessionConfig(fake.url, drain_timeout=drain)
        started = time.monotonic()
        _, log, session = await run(fake, wav, options={"end_idle_seconds": idle}, config=config)
        took = time.monotonic() - started
        await asyncio.sleep(0.05)
    assert took < most, took
    if after_close in ("silent", "usage_then_silent"):
        assert took >= 0.3  # waited for the quiet, did not cut the last final off
    if after_close == "chatter":
        assert took >= 1.0  # a talking server is not "quiet"; the drain bound ended it
    assert_times_match(log.finals, spoken)
    assert fake.violations == [] and len(fake.records) == 1
    assert fake.records[0].close_code == 1000 and len(fake.finished_at) == 1
    assert log.states[-2:] == ["draining", "closed"] and log.errors == []
    usage = [e for e in log.events if isinstance(e, Usage)]
    if after_close == "usage_then_silent":
        assert len(usage) == 1 and abs(usage[0].seconds - WavFileSource(wav).duration) < 0.02


async def test_quiet_after_close_stream_ends_the_session_promptly(tmp_path):
    """Live-like pacing: the last final arrives before closeStream and the server
    then says nothing. The session must end after the idle time, not after the
    watchdog's 30 s that applied while audio was still flowing."""
    audio, spoken = synthesize(SCRIPT, rate=16000, tail_s=1.2)
    wav = write_wav(tmp_path / "quiet_end.wav", audio, 16000)
    draining_at: list[float] = []

    def on_event(event) -> None:
        if isinstance(event, StateChanged) and event.state is SessionState.DRAINING:
            draining_at.append(time.monotonic())

    async with FakeInworld(after_close="silent") as fake:
        job = CaptionJob("inworld", QUICK_END, fake.url)
        session = make_session(job, fake.key, SessionConfig(fake.url, watchdog_seconds=30.0), FAST_RETRY)
        session.subscribe(on_event)
        log = EventLog()
        await caption_source(WavFileSource(wav, speed=4), session, [log], live=False)
        ended = time.monotonic()
    assert_times_match(log.finals, spoken)
    assert fake.records[0].messages[-1] == {"closeStream": {}}
    assert 0.3 <= ended - draining_at[0] < 1.5


@pytest.mark.parametrize(
    "code, message, expected",
    [
        (3, "No STT client found for model", "INVALID_ARGUMENT"),
        (16, "Unauthenticated", "KEY_REJECTED"),
        (7, "model not enabled for this workspace", "PERMISSION_DENIED"),
        (8, "quota exceeded for workspace", "RESOURCE_EXHAUSTED"),
    ],
)
async def test_fatal_error_frames_stop_at_once(tone_wav, code, message, expected):
    wav, _ = tone_wav
    async with FakeInworld(refuse_with=(code, message)) as fake:
        with pytest.raises(ProviderFailure) as info:
            await run(fake, wav)
    assert info.value.error.code == expected and message in info.value.error.message
    assert len(fake.records) == 1


async def test_fake_rejects_a_model_it_does_not_know(tone_wav):
    wav, _ = tone_wav
    async with FakeInworld() as fake:
        with pytest.raises(ProviderFailure) as info:
            await run(fake, wav, options={"model_id": "inworld/stt-v1"})
    assert info.value.error.code == "INVALID_ARGUMENT" and "No STT client found" in info.value.error.message
    assert fake.violations == ["No STT client found for model inworld/stt-v1"]


@pytest.mark.parametrize(
    "fault",
    [
        Fault("drop", after_bytes=80000),
        Fault("close", after_bytes=80000, code=1011),
        Fault("error", after_bytes=80000, payload={"error": {"code": 14, "message": "upstream unavailable", "details": []}}),
        Fault("error", after_bytes=80000, payload={"error": {"code": 8, "message": "too many concurrent streams", "details": []}}),
    ],
    ids=["tcp-drop", "close-1011", "unavailable", "rate-limited"],
)
async def test_reconnect_replays_from_last_final(tone_wav, fault):
    wav, spoken = tone_wav
    async with FakeInworld() as fake:
        fake.faults.append(fault)
        _, log, session = await run(fake, wav)
    assert len(fake.records) == 2 and session.stats.reconnects == 1
    assert fake.violations == []
    assert_times_match(log.finals, spoken)  # exact words, once each, at the right times
    assert 0 < len(fake.records[1].audio) < WavFileSource(wav).duration * 32000


async def test_unknown_and_malformed_frames_are_skipped(tone_wav):
    wav, spoken = tone_wav
    junk = [
        (40000, json.dumps({"result": {"somethingNew": {"x": 1}}})),
        (50000, "{not json"),
        (60000, json.dumps({"result": {"transcription": "not an object"}})),
        (70000, b"\x00\x01 a binary frame"),
    ]
    async with FakeInworld() as fake:
        fake.faults += [Fault("inject", after_bytes=after, payload=frame) for after, frame in junk]
        _, log, session = await run(fake, wav)
    assert len(fake.records) == 1 and session.stats.bad_frames == 4
    assert [e.code for e in log.errors] == ["BAD_FRAME"] * 4
    assert_times_match(log.finals, spoken)


async def test_cli_contract(tone_wav, tmp_path):
    wav, spoken = tone_wav
    srt = tmp_path / "out.srt"
    async with FakeInworld(after_close="silent") as fake:
        env = {**os.environ, "CAPTIONER_INWORLD_KEY": fake.key, "PYTHONPATH": str(ROOT)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "captioner", "transcribe", str(wav), "--provider", "inworld",
            "--endpoint", fake.url, "--speed", "0", "--srt", str(srt), "-o", "end_idle_seconds=0.5",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=str(ROOT),
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().splitlines() == [" ".join(w for w, _, _ in u) for u in spoken.utterances]
    text = srt.read_text()
    assert "00:00:00,500 --> " in text and "foxtrot golf hotel india" in text
    assert fake.key not in out.decode() + err.decode()


# ------------------------------------------------------------------ decoder
def proto(**opts) -> InworldProtocol:
    return InworldProtocol(InworldOptions(**opts), "c2VjcmV0OmtleQ==")


def test_requests_and_messages():
    p = proto()
    assert p.connect_request("wss://x/stt").headers == {"Authorization": "Basic c2VjcmV0OmtleQ=="}
    assert p.ready_on_open and p.end_idle_timeout == 2.5
    assert json.loads(p.on_open()[0]) == {"transcribeConfig": p.transcribe_config()}
    (chunk,) = p.encode_audio(b"\x01\x00\x02\x00")
    assert base64.b64decode(json.loads(chunk)["audioChunk"]["content"]) == b"\x01\x00\x02\x00"
    assert [json.loads(m) for m in p.end_stream()] == [{"closeStream": {}}]


@pytest.mark.parametrize(
    "item, units",
    [
        ({"word": "hi", "startTime": 1.25, "endTime": 1.5}, "s"),
        ({"word": "hi", "startTime": 1250, "endTime": 1500}, "ms"),
        ({"word": "hi", "startTimeMs": 1250, "endTimeMs": 1500}, "s"),
        ({"word": "hi", "startTimeMs": "1250", "endTimeMs": "1500"}, "s"),
        ({"word": "hi", "startTimeSeconds": 1.25, "endTimeSeconds": 1.5}, "ms"),
        ({"word": "hi", "startTime": "1.250s", "endTime": "1.5s"}, "ms"),
        ({"word": "hi", "start_time_ms": 1250, "end_time_ms": 1500}, "s"),
        ({"word": "hi", "start_time_seconds": 1.25, "end_time_seconds": 1.5}, "s"),
    ],
)
def test_word_time_shapes(item, units):
    p = proto(word_time_units=units)
    frame = {"result": {"transcription": {"transcript": "hi", "isFinal": True, "wordTimestamps": [item]}}}
    (final,) = p.decode(json.dumps(frame), 9.0).events
    assert (final.start, final.end, final.timed) == (1.25, 1.5, True)
    assert final.words[0].text == "hi"


def test_snake_case_and_unwrapped_frames():
    p = proto()
    (started,) = p.decode(json.dumps({"result": {"speech_started": {"start_time_ms": 1200}}}), 2.0).events
    assert started.at == 1.2
    (partial,) = p.decode(json.dumps({"transcription": {"transcript": "hel"}}), 2.0).events
    assert (partial.text, partial.start) == ("hel", 1.2)
    (final,) = p.decode(json.dumps({"result": {"transcription": {"transcript": "hello", "is_final": True}}}), 3.0).events
    assert (final.text, final.start, final.end, final.timed) == ("hello", 1.2, 3.0, False)
    (stopped,) = p.decode(json.dumps({"result": {"speech_stopped": {"silence_duration_ms": 750}}}), 3.5).events
    assert stopped.at == 2.75
    (usage,) = p.decode(json.dumps({"result": {"usage": {"transcribed_audio_ms": "3500", "model_id": "m"}}}), 3.5).events
    assert usage.seconds == 3.5
    assert p.decode(json.dumps({"result": {}}), 3.5).events == []


def test_empty_final_still_ends_the_turn():
    p = proto()
    (final,) = p.decode(json.dumps({"result": {"transcription": {"isFinal": True}}}), 2.0).events
    assert final.text == "" and isinstance(final, Final)


def test_grpc_error_codes():
    p = proto()
    expected = {
        3: ("INVALID_ARGUMENT", ErrorKind.FATAL),
        16: ("KEY_REJECTED", ErrorKind.FATAL),
        7: ("PERMISSION_DENIED", ErrorKind.FATAL),
        8: ("RESOURCE_EXHAUSTED", ErrorKind.RETRYABLE),
        14: ("UNAVAILABLE", ErrorKind.RETRYABLE),
        13: ("INTERNAL", ErrorKind.RETRYABLE),
        "UNAUTHENTICATED": ("KEY_REJECTED", ErrorKind.FATAL),
        "14": ("UNAVAILABLE", ErrorKind.RETRYABLE),
        99: ("99", ErrorKind.RETRYABLE),
    }
    for code, want in expected.items():
        (err,) = p.decode(json.dumps({"error": {"code": code, "message": "m", "details": []}}), 0).events
        assert (err.code, err.kind) == want, code
    (err,) = p.decode(json.dumps({"error": {"code": 8, "message": "Quota exceeded"}}), 0).events
    assert err.kind is ErrorKind.FATAL


def test_bad_frames_raise_protocol_error():
    p = proto()
    for bad in ["{", "[]", b"\x00", json.dumps({"result": {"mystery": {}}}), json.dumps({"result": 5}),
                json.dumps({"result": {"transcription": {"transcript": 7}}})]:
        with pytest.raises(ProtocolError) as info:
            p.decode(bad, 0.0)
        assert info.value.error.retryable


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
    max_leaves=10,
)
_keys = st.sampled_from(["transcription", "speechStarted", "speech_stopped", "usage", "other"])
_word = st.fixed_dictionaries(
    {"word": st.one_of(st.text(max_size=5), st.integers())},
    optional={k: st.one_of(st.floats(allow_nan=True), st.integers(), st.text(max_size=6)) for k in
              ("startTime", "endTime", "startTimeMs", "endTimeMs", "start_time_seconds", "endTimeSeconds")},
)
_frames = st.one_of(
    st.binary(max_size=20),
    st.text(max_size=30),
    _json.map(json.dumps),
    st.builds(lambda k, v: json.dumps({"result": {k: v}}), _keys, _json),
    st.builds(lambda c, m: json.dumps({"error": {"code": c, "message": m}}), _json, _json),
    st.builds(
        lambda text, fin, words: json.dumps({"result": {"transcription": {"transcript": text, "isFinal": fin, "wordTimestamps": words}}}),
        st.one_of(st.text(max_size=8), st.integers()), _json, st.lists(_word, max_size=3),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_frames, max_size=8))
def test_fuzz_every_frame_decodes_or_raises_protocol_error(frames):
    p = proto()
    for frame in frames:
        try:
            p.decode(frame, 1.0)
        except ProtocolError:
            continue
