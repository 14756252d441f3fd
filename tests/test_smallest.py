"""Smallest.ai Waves end to end against the strict fake: both surfaces (unified
`stt/live` / `pulse/get_text`, and the seed's Lightning), Bearer auth, query
parameters, 4096-byte binary audio, words and times, the end-of-stream
handshake (`close_stream` / `end` → `is_last`), error frames, HTTP 401/400,
close 1008, bad frames, reconnect with replay, VAD, the CLI contract, and a
fuzzed decoder."""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
from pathlib import Path

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from captioner.audio.sources import WavFileSource
from captioner.captioning import CaptionJob, caption_source, make_session
from captioner.stt.events import Final, Partial, ProviderFailure, SpeechStarted, SpeechStopped
from captioner.stt.options import OptionError, build_options
from captioner.stt.protocol import Decoded, ProtocolError
from captioner.stt.providers.smallest import SmallestOptions, SmallestProtocol
from captioner.stt.session import RetryPolicy, SessionConfig
from tests.conftest import SCRIPT
from tests.fakes.base import Fault
from tests.fakes.smallest import LIGHTNING_PATH, UNIFIED_PATHS, FakeSmallest
from tests.test_exports import parse_srt_strict
from tests.helpers import EventLog, assert_times_match

FAST_RETRY = RetryPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.05)
REPO = Path(__file__).resolve().parent.parent
WHOLE_QUERY = {"language": "en", "encoding": "linear16", "sample_rate": "16000", "word_timestamps": "true"}


async def run(fake: FakeSmallest, wav, key: str | None = None, options=None, config=None, speed: float = 0, endpoint=None):
    job = CaptionJob("smallest", options or {}, endpoint or fake.url)
    session = make_session(job, key or fake.key, config, FAST_RETRY)
    log = EventLog()
    transcript = await caption_source(WavFileSource(wav, speed=speed), session, [log], live=False, provider="smallest")
    return transcript, log, session


# ----------------------------------------------------------------- streaming
async def test_streams_whole_audio_and_gets_timed_finals(tone_wav):
    wav, spoken = tone_wav
    async with FakeSmallest() as fake:
        transcript, log, _ = await run(fake, wav)
    assert fake.violations == []
    assert [f.text for f in log.finals] == [" ".join(u) for u in SCRIPT]
    assert_times_match(log.finals, spoken)
    record = fake.records[0]
    assert record.headers["Authorization"] == f"Bearer {fake.key}"
    assert fake.queries == [{"model": "pulse", **WHOLE_QUERY}]
    assert fake.key not in record.path  # the key never travels in the URL
    assert abs(len(record.audio) / 32000 - WavFileSource(wav).duration) < 0.02
    assert record.messages[-1] == {"type": "close_stream"}
    assert [m for m in record.messages if not isinstance(m, int)] == [{"type": "close_stream"}]
    assert record.close_code == 1000
    assert log.partials and log.partials[0].text == "alpha"
    assert log.states[0] == "connecting" and "live" in log.states and log.states[-1] == "closed"
    assert transcript.text == "alpha bravo charlie delta echo foxtrot golf hotel india"


async def test_audio_is_binary_4096_byte_frames(tone_wav):
    """Live audio goes in the documented 4096-byte chunks; audio that is already
    late (an unpaced file) in chunks up to the documented 8192-byte maximum."""
    wav, _ = tone_wav
    async with FakeSmallest() as fake:
        await run(fake, wav, speed=2)
        await run(fake, wav, speed=0)
    live, late = ([m for m in r.messages if isinstance(m, int)] for r in fake.records)
    assert live[:-1] == [4096] * (len(live) - 1) and 0 < live[-1] <= 4096
    assert max(late) == 8192 and all(size % 2 == 0 for size in late)
    assert sum(late) == sum(live)


@pytest.mark.parametrize(
    "path, end, model",
    [(UNIFIED_PATHS[0], "close_stream", True), (UNIFIED_PATHS[1], "close_stream", True), (LIGHTNING_PATH, "end", False)],
    ids=["stt-live", "pulse-get-text", "lightning"],
)
async def test_the_endpoint_path_alone_selects_the_surface(tone_wav, path, end, model):
    wav, spoken = tone_wav
    async with FakeSmallest(path=path) as fake:
        _, log, _ = await run(fake, wav, endpoint=fake.url_for(path))
    assert fake.violations == []
    assert fake.queries == [({"model": "pulse"} if model else {}) | WHOLE_QUERY]
    assert fake.records[0].messages[-1] == {"type": end}
    # unified words come in words[], Lightning's in word_timestamps[] (and with no "type")
    assert_times_match(log.finals, spoken)


async def test_user_query_parameters_in_the_endpoint_are_kept(tone_wav):
    wav, spoken = tone_wav
    async with FakeSmallest() as fake:
        url = fake.url + "?external_session_id=meeting-42&capitalize=false"
        _, log, _ = await run(fake, wav, endpoint=url)
    assert fake.queries[0] == {"external_session_id": "meeting-42", "capitalize": "false", "model": "pulse", **WHOLE_QUERY}
    assert_times_match(log.finals, spoken)


async def test_options_reach_the_query_and_speakers_the_finals(tone_wav):
    wav, spoken = tone_wav
    async with FakeSmallest(speaker=1) as fake:  # speaker as an integer (changelog 2026-08-06)
        transcript, log, _ = await run(
            fake, wav, options={"language": "hi", "diarize": "true", "eou_timeout_ms": "600", "punctuate": "false"}
        )
    query = fake.queries[0]
    assert (query["language"], query["diarize"], query["eou_timeout_ms"], query["punctuate"]) == ("hi", "true", "600", "false")
    assert all(f.speaker == "1" for f in log.finals) and all(w.speaker == "1" for f in log.finals for w in f.words)
    assert transcript.segments[0].speaker == "1"
    assert_times_match(log.finals, spoken)


async def test_string_speakers_are_kept(tone_wav):
    wav, _ = tone_wav
    async with FakeSmallest(speaker="speaker_a") as fake:  # string in the stt-live spec
        _, log, _ = await run(fake, wav, options={"diarize": "true"})
    assert {f.speaker for f in log.finals} == {"speaker_a"}


async def test_vad_events_become_speech_started_and_stopped(tone_wav):
    wav, spoken = tone_wav
    async with FakeSmallest() as fake:
        _, log, _ = await run(fake, wav, options={"vad_events": "true"})
    assert fake.queries[0]["vad_events"] == "true"
    vad = [e for e in log.events if isinstance(e, (SpeechStarted, SpeechStopped))]
    assert [type(e).__name__ for e in vad] == ["SpeechStarted", "SpeechStopped"] * len(SCRIPT)
    for (start, stop), utterance in zip(zip(vad[::2], vad[1::2]), spoken.utterances):
        assert abs(start.at - utterance[0][1]) <= 0.08
        assert abs(stop.at - utterance[-1][2]) <= 0.08


# ---------------------------------------------------------- end of stream
async def test_session_waits_for_is_last_before_finishing(tone_wav):
    """The last utterance is only flushed by close_stream; it must not be lost."""
    wav, spoken = tone_wav
    async with FakeSmallest() as fake:
        _, log, _ = await run(fake, wav)
    assert log.finals[-1].text == " ".join(SCRIPT[-1])
    assert log.finals[-1].words[-1].text == "india"
    assert_times_match(log.finals, spoken)


async def test_fake_rejects_the_other_surfaces_end_message():
    async with FakeSmallest() as fake:
        async with websockets.connect(fake.url + "?model=pulse&language=en", additional_headers={"Authorization": f"Bearer {fake.key}"}) as ws:
            await ws.send(b"\x00\x00" * 2048)
            await ws.send(json.dumps({"type": "end"}))
            reply = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
    assert reply == {"type": "error", "status": "error", "message": "unknown message type"}
    assert fake.violations == ["end message 'end' is not the unified surface's"]


async def test_fake_flags_frames_larger_than_documented():
    async with FakeSmallest() as fake:
        async with websockets.connect(fake.url + "?model=pulse&language=en", additional_headers={"Authorization": f"Bearer {fake.key}"}) as ws:
            await ws.send(bytes(8192))
            await ws.send(bytes(65536))
            await ws.send(json.dumps({"type": "close_stream"}))
            async for _ in ws:
                pass
    assert fake.violations == ["an audio frame of 65536 bytes (at most 8192)"]


async def test_fake_rejects_odd_byte_counts_and_unknown_text():
    async with FakeSmallest(path=LIGHTNING_PATH) as fake:
        url = fake.url_for(LIGHTNING_PATH) + "?language=en"
        headers = {"Authorization": f"Bearer {fake.key}"}
        for frame in (b"\x00\x00\x00", json.dumps({"type": "start"}), json.dumps({"type": "close_stream"})):
            async with websockets.connect(url, additional_headers=headers) as ws:
                await ws.send(frame)
                assert json.loads(await ws.recv())["type"] == "error"
                with pytest.raises(websockets.ConnectionClosed):
                    await ws.recv()
    assert fake.violations == [
        "odd byte count",
        "unexpected text frame {'type': 'start'}",
        "end message 'close_stream' is not the lightning surface's",
    ]


async def test_finalize_flushes_without_ending_on_the_unified_surface():
    async with FakeSmallest() as fake:
        async with websockets.connect(fake.url + "?model=pulse&language=en&word_timestamps=true", additional_headers={"Authorization": f"Bearer {fake.key}"}) as ws:
            from tests.fakes.tones import synthesize

            audio, _ = synthesize([["kilo", "lima"]], rate=16000, tail_s=0.05)
            pcm = (audio[:, 0] * 32767).astype("<i2").tobytes()
            for at in range(0, len(pcm), 4096):  # frames of at most 8192 bytes
                await ws.send(pcm[at:at + 4096])
            await ws.send(json.dumps({"type": "finalize"}))
            replies = []
            while not replies or not replies[-1]["is_final"]:
                replies.append(json.loads(await ws.recv()))
            assert ws.state.name == "OPEN"
    final = replies[-1]
    assert (final["transcript"], final["from_finalize"], final["is_last"]) == ("kilo lima", True, False)
    assert fake.violations == []


# ------------------------------------------------------------ refusals
async def test_wrong_key_is_refused_with_401_and_never_retried(tone_wav):
    wav, _ = tone_wav
    async with FakeSmallest() as fake:
        with pytest.raises(ProviderFailure) as info:
            await run(fake, wav, key="sk_wrong_key_zzzz")
    assert info.value.error.code == "KEY_REJECTED"
    assert "HTTP 401" in info.value.error.message and "Invalid API key" in info.value.error.message
    assert "sk_wrong_key_zzzz" not in str(info.value)
    assert fake.records == [] and [s for s, _ in fake.refusals] == [401]


async def test_fake_refuses_a_missing_bearer_header():
    async with FakeSmallest() as fake:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(fake.url + "?model=pulse&language=en"):
                pass
    assert info.value.response.status_code == 401
    assert json.loads(info.value.response.body) == {"message": "Unauthorized: missing Authorization header"}


@pytest.mark.parametrize(
    "options, said",
    [({"model": "none"}, "model is required (model=pulse)"), ({"language": "xx"}, "unsupported language 'xx'")],
    ids=["no-model", "bad-language"],
)
async def test_bad_parameters_are_refused_with_400_and_the_servers_words(tone_wav, options, said):
    wav, _ = tone_wav
    async with FakeSmallest() as fake:
        with pytest.raises(ProviderFailure) as info:
            await run(fake, wav, options=options)
    assert info.value.error.code == "BAD_REQUEST"
    assert info.value.error.message.endswith(f"(HTTP 400): {said}")
    assert fake.records == [] and len(fake.refusals) == 1


async def test_forcing_the_lightning_surface_on_a_unified_path_leaves_out_model(tone_wav):
    wav, _ = tone_wav
    async with FakeSmallest() as fake:
        with pytest.raises(ProviderFailure) as info:
            await run(fake, wav, options={"surface": "lightning"})
    assert "model is required" in info.value.error.message


@pytest.mark.parametrize("error_frame", [True, False], ids=["error-frame-then-1008", "bare-1008"])
async def test_concurrency_limit_is_explained_and_not_retried(tone_wav, error_frame):
    wav, _ = tone_wav
    async with FakeSmallest(concurrency_limit=0, concurrency_error_frame=error_frame) as fake:
        with pytest.raises(ProviderFailure) as info:
            await run(fake, wav)
    assert info.value.error.code == "CONCURRENCY_LIMIT"
    assert "limit of concurrent streaming sessions" in info.value.error.message
    assert len(fake.records) == 1  # no retry storm


async def test_close_1008_mid_stream_keeps_what_was_captioned(tone_wav):
    wav, _ = tone_wav
    async with FakeSmallest() as fake:
        fake.faults.append(Fault("close", after_bytes=100000, code=1008))
        with pytest.raises(ProviderFailure) as info:
            await run(fake, wav)
    assert info.value.error.code == "CONCURRENCY_LIMIT" and len(fake.records) == 1
    assert [s.text for s in info.value.transcript.segments] == [" ".join(SCRIPT[0])]


async def test_fatal_error_frame_stops_at_once(tone_wav):
    wav, _ = tone_wav
    async with FakeSmallest() as fake:
        payload = {"type": "error", "status": "error", "message": "Language not enabled in region", "error_code": "LANGUAGE_NOT_ENABLED_IN_REGION"}
        fake.faults.append(Fault("error", after_bytes=4096, payload=payload))
        with pytest.raises(ProviderFailure) as info:
            await run(fake, wav)
    assert info.value.error.code == "LANGUAGE_NOT_ENABLED_IN_REGION"
    assert "Language not enabled in region" in info.value.error.message
    assert len(fake.records) == 1


def span_ok(record, least_gap: float = 0.045) -> bool:
    """The audio frames of one connection came no faster than one per
    `least_gap`: checked over the whole run (a busy reader can bunch single
    frames, but the last cannot arrive before the sender let it go)."""
    times = record.audio_times
    return len(times) < 2 or times[-1] - times[0] >= (len(times) - 1) * least_gap


async def test_a_file_goes_in_frames_spaced_as_the_service_asks(tone_wav):
    """Best practices: frames of 1024–8192 bytes "every 50–100 ms (≥ 20 ms
    apart)"; unpaced, a 5.5-s file went in ~20 frames within milliseconds."""
    wav, spoken = tone_wav
    async with FakeSmallest() as fake:
        _, log, _ = await run(fake, wav)
    record = fake.records[0]
    assert len(record.audio_times) > 10 and all(n <= 8192 for n in record.messages if isinstance(n, int))
    assert span_ok(record)
    assert_times_match(log.finals, spoken)


async def test_the_replay_after_a_reconnect_is_spaced_too(tone_wav):
    wav, spoken = tone_wav
    async with FakeSmallest() as fake:
        fake.faults.append(Fault("drop", after_bytes=80000))
        _, log, _ = await run(fake, wav)
    assert len(fake.records) == 2 and len(fake.records[1].audio_times) > 5
    assert span_ok(fake.records[1])
    assert_times_match(log.finals, spoken)


async def test_an_invalid_something_said_mid_session_is_retried_not_the_end(tone_wav):
    """"invalid", "unsupported" or "not enabled" ended the session for good
    even 6 s in; refusing the session is what they mean only before any
    transcription came."""
    wav, spoken = tone_wav
    payload = {"type": "error", "status": "error", "message": "Invalid audio chunk received"}
    async with FakeSmallest() as fake:
        fake.faults.append(Fault("error", after_bytes=100000, payload=payload))
        _, log, session = await run(fake, wav)
    assert len(fake.records) == 2 and session.stats.reconnects == 1
    assert_times_match(log.finals, spoken)
    assert log.states[-1] == "closed"


def test_an_invalid_setting_before_any_transcription_still_ends_the_session():
    from captioner.stt.providers.smallest import SmallestOptions, SmallestProtocol

    p = SmallestProtocol(SmallestOptions(), "k")
    frame = json.dumps({"type": "error", "message": "Unsupported sample_rate"})
    (refused,) = p.decode(frame, 0.0).events
    assert not refused.retryable and refused.message.startswith("Smallest.ai refused the session")
    p.decode(json.dumps({"type": "transcription", "transcript": "hi", "is_final": False}), 1.0)
    (hiccup,) = p.decode(json.dumps({"type": "error", "message": "Invalid audio chunk received"}), 2.0).events
    assert hiccup.retryable and "Invalid audio chunk received" in hiccup.message


# ------------------------------------------------------- reconnect, replay
@pytest.mark.parametrize(
    "fault",
    [
        Fault("drop", after_bytes=80000),
        Fault("close", after_bytes=80000, code=1011),
        Fault("error", after_bytes=80000, payload={"type": "error", "status": "error", "message": "transcription engine hiccup"}),
        Fault("error", after_bytes=80000, payload={"type": "mystery", "session_id": "s"}),
        Fault("error", after_bytes=80000, payload="{not json"),
    ],
    ids=["tcp-drop", "close-1011", "error-frame", "unknown-frame", "malformed-frame"],
)
async def test_reconnect_replays_from_last_final(tone_wav, fault):
    wav, spoken = tone_wav
    async with FakeSmallest() as fake:
        if fault.payload == "{not json":
            async def send_raw(ws, record, _orig=fake.maybe_fault):
                if fake.faults and len(record.audio) >= fault.after_bytes:
                    fake.faults.clear()
                    await ws.send("{not json")
                    return "error"
                return None
            fake.maybe_fault = send_raw  # type: ignore[method-assign]
        fake.faults.append(fault)
        _, log, session = await run(fake, wav)
    assert len(fake.records) == 2 and session.stats.reconnects == 1
    assert_times_match(log.finals, spoken)  # exact words, once each, at the right times
    assert 0 < len(fake.records[1].audio) < WavFileSource(wav).duration * 32000
    if fault.action == "error" and fault.payload != {"type": "error", "status": "error", "message": "transcription engine hiccup"}:
        assert session.stats.bad_frames == 1
    assert fake.violations == []


async def test_silent_server_is_detected_by_watchdog(tone_wav):
    wav, spoken = tone_wav
    async with FakeSmallest() as fake:
        fake.faults.append(Fault("silence", after_bytes=30000))
        config = SessionConfig(fake.url, watchdog_seconds=0.5)
        _, log, session = await run(fake, wav, config=config, speed=4)
    assert session.stats.reconnects >= 1
    assert_times_match(log.finals, spoken)


# -------------------------------------------------------------------- CLI
async def test_cli_transcribe_prints_finals_and_writes_a_timed_srt(tone_wav, tmp_path):
    wav, spoken = tone_wav
    srt = tmp_path / "out.srt"
    async with FakeSmallest() as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTIONER_")}
        env["CAPTIONER_SMALLEST_KEY"] = fake.key
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "captioner", "transcribe", str(wav), "--provider", "smallest",
            "--endpoint", fake.url, "--speed", "0", "--srt", str(srt),
            cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().splitlines() == [" ".join(u) for u in SCRIPT]
    assert fake.key not in out.decode() + err.decode()
    assert fake.violations == [] and fake.records[0].headers["Authorization"] == f"Bearer {fake.key}"
    cues = [(start, end, " ".join(lines)) for start, end, lines in parse_srt_strict(srt.read_text("utf-8"))]
    assert [c[2] for c in cues] == [" ".join(u) for u in SCRIPT]
    for (start, end, _), utterance in zip(cues, spoken.utterances):
        first, last = utterance[0][1], utterance[-1][2]
        assert abs(start - first) <= 0.08
        assert abs(end - max(last, first + 0.8)) <= 0.08  # cues last at least 0.8 s


# ---------------------------------------------------------------- decoder
def proto(**opts) -> SmallestProtocol:
    return SmallestProtocol(SmallestOptions(**opts), "sk_secret_key_1234")


def test_chinese_japanese_and_korean_go_to_the_us_region_from_the_default_endpoint():
    """The India region (the default host) refuses zh, yue, ja, ko."""
    from captioner.stt.providers.smallest import DEFAULT_ENDPOINT

    for language in ("zh", "yue", "ja", "ko"):
        url = proto(language=language).connect_request(DEFAULT_ENDPOINT).url
        assert url.startswith("wss://api.us.smallest.ai/waves/v1/stt/live?model=pulse&language=" + language)
    assert proto(language="ta").connect_request(DEFAULT_ENDPOINT).url.startswith(DEFAULT_ENDPOINT + "?")
    own = "wss://relay.example/waves/v1/stt/live"  # an endpoint the user chose is kept
    assert proto(language="ja").connect_request(own).url.startswith(own + "?")


@pytest.mark.parametrize("language, path, ok", [
    ("multi-asian", None, True), ("gu", None, True), ("north_indic", None, True),
    ("multi", None, False),  # Lightning's auto-detect, not the unified endpoint's
    ("multi", LIGHTNING_PATH, True),
])
async def test_the_documented_languages_are_taken_where_they_are_documented(tone_wav, language, path, ok):
    wav, _ = tone_wav
    async with FakeSmallest() as fake:
        endpoint = fake.url_for(path) if path else None
        if ok:
            _, log, _ = await run(fake, wav, options={"language": language}, endpoint=endpoint)
            assert log.finals and fake.queries[0]["language"] == language
        else:
            with pytest.raises(ProviderFailure) as info:
                await run(fake, wav, options={"language": language}, endpoint=endpoint)
            assert info.value.error.code == "BAD_REQUEST" and "unsupported language" in info.value.error.message


def test_language_auto_is_refused_before_connecting_with_what_to_choose():
    with pytest.raises(OptionError) as info:
        build_options(SmallestOptions, {"language": "auto"}).validate()
    assert "does not detect the language" in str(info.value) and "multi-asian" in str(info.value)


def test_connect_request_builds_the_query_in_one_place():
    p = proto(vad_events=True, keywords="Captioner:2")
    req = p.connect_request("wss://api.smallest.ai/waves/v1/stt/live?language=de&format=true")
    assert req.headers == {"Authorization": "Bearer sk_secret_key_1234"}
    assert "sk_secret_key_1234" not in req.url
    assert req.url == (
        "wss://api.smallest.ai/waves/v1/stt/live?language=en&format=true&model=pulse&encoding=linear16"
        "&sample_rate=16000&word_timestamps=true&vad_events=true&keywords=Captioner%3A2"
    )
    assert p.end_stream() == ['{"type": "close_stream"}']
    legacy = proto()
    req = legacy.connect_request("wss://waves-api.smallest.ai/api/v1/lightning/get_text")
    assert "model=" not in req.url and legacy.end_stream() == ['{"type": "end"}']


def test_surface_and_end_message_can_be_forced():
    p = proto(surface="lightning")
    assert "model=" not in p.connect_request("wss://relay.example/stt").url
    assert p.end_stream() == ['{"type": "end"}']
    p = proto(end_message="end")
    p.connect_request("wss://api.smallest.ai/waves/v1/stt/live")
    assert p.end_stream() == ['{"type": "end"}']
    p = proto()
    p.connect_request("wss://relay.example/somewhere")  # unknown path: the current surface
    assert p.end_stream() == ['{"type": "close_stream"}']


def test_options_are_validated_before_connecting():
    with pytest.raises(OptionError):
        build_options(SmallestOptions, {"eou_timeout_ms": "0"})
    with pytest.raises(OptionError):
        build_options(SmallestOptions, {"surface": "pulse-pro"})
    with pytest.raises(OptionError):
        build_options(SmallestOptions, {"language": "e n"})
    assert build_options(SmallestOptions, {"model": "none"}).model is None


def test_partials_replace_and_finals_carry_words_in_seconds():
    p = proto()
    p.connect_request("wss://api.smallest.ai/waves/v1/stt/live")
    (partial,) = p.decode(json.dumps({"type": "transcription", "transcript": "hel", "is_final": False, "is_last": False}), 0.5).events
    assert partial == Partial("hel", start=0.0)
    msg = {
        "type": "transcription", "status": "success", "session_id": "s", "transcript": "Hello world.",
        "is_final": True, "is_last": False,
        "words": [{"word": "Hello", "start": 0.5, "end": 0.9, "confidence": 0.9, "speaker": 0},
                  {"word": "world.", "start": 1.0, "end": 1.4, "confidence": 0.8, "speaker": 0}],
    }
    decoded = p.decode(json.dumps(msg), 1.6)
    (final,) = decoded.events
    assert not decoded.done
    assert (final.text, final.start, final.end, final.speaker, final.timed) == ("Hello world.", 0.5, 1.4, "0", True)
    assert [(w.text, w.start, w.end) for w in final.words] == [("Hello", 0.5, 0.9), ("world.", 1.0, 1.4)]
    last = p.decode(json.dumps({"type": "transcription", "transcript": "", "is_final": True, "is_last": True}), 2.0)
    assert last.events == [] and last.done


def test_seed_shape_without_type_and_word_timestamps_is_accepted():
    p = proto()
    p.connect_request("wss://waves-api.smallest.ai/api/v1/lightning/get_text")
    seed = {"session_id": "sess_12345abcde", "transcript": "Hello, how are you?", "full_transcript": "Hello, how are you?",
            "is_final": True, "is_last": False, "language": "en", "word_timestamps": [{"word": "Hello", "start": 0.0, "end": 0.5}]}
    (final,) = p.decode(json.dumps(seed), 1.0).events
    assert final.text == "Hello, how are you?" and [(w.text, w.start, w.end) for w in final.words] == [("Hello", 0.0, 0.5)]
    # the array names disagree between seed and specs: either surface reads both
    unified = proto()
    unified.connect_request("wss://api.smallest.ai/waves/v1/stt/live")
    (final,) = unified.decode(json.dumps(seed), 1.0).events
    assert [(w.text, w.start, w.end) for w in final.words] == [("Hello", 0.0, 0.5)]
    spec = dict(seed, word_timestamps=None, words=[{"word": "Hi", "start": 0.25, "end": 0.5}])
    (final,) = p.decode(json.dumps(spec), 1.0).events
    assert [(w.text, w.start, w.end) for w in final.words] == [("Hi", 0.25, 0.5)]


def test_text_on_the_last_message_is_never_dropped_as_a_partial():
    decoded = proto().decode(json.dumps({"type": "transcription", "transcript": "bye", "is_final": False, "is_last": True}), 1.0)
    assert [type(e).__name__ for e in decoded.events] == ["Final"] and decoded.done


def test_final_without_words_is_estimated_from_the_sample_clock():
    p = proto()
    (final,) = p.decode(json.dumps({"type": "transcription", "transcript": "hi", "is_final": True, "is_last": False}), 3.5).events
    assert (final.start, final.end, final.timed) == (0.0, 3.5, False)


def test_vad_and_error_frames():
    p = proto()
    assert p.decode(json.dumps({"type": "speech_started", "session_id": "s", "timestamp": 1.25}), 2).events == [SpeechStarted(1.25)]
    assert p.decode(json.dumps({"type": "speech_ended", "session_id": "s", "timestamp": 2.5}), 3).events == [SpeechStopped(2.5)]
    kinds = {}
    for message in ["Internal server error", "Invalid API key", "Concurrency limit reached", "Insufficient credits"]:
        (err,) = p.decode(json.dumps({"type": "error", "status": "error", "message": message}), 0).events
        kinds[message] = (err.code, err.kind.value)
    assert kinds == {
        "Internal server error": ("SERVER_ERROR", "retryable"),
        "Invalid API key": ("KEY_REJECTED", "fatal"),
        "Concurrency limit reached": ("CONCURRENCY_LIMIT", "fatal"),
        "Insufficient credits": ("NO_CREDITS", "fatal"),
    }


def test_http_and_close_classification():
    p = proto()
    err = p.classify_http(401, b'{"message":"Unauthorized"}')
    assert (err.code, err.retryable) == ("KEY_REJECTED", False) and "Unauthorized" in err.message
    err = p.classify_http(400, b'{"message":"unsupported model \'pulse-pro\'"}')
    assert (err.code, err.retryable) == ("BAD_REQUEST", False) and err.message.endswith("unsupported model 'pulse-pro'")
    assert p.classify_http(503, b"").retryable
    err = p.classify_close(1008, "")
    assert (err.code, err.retryable) == ("CONCURRENCY_LIMIT", False) and "concurrent" in err.message
    assert p.classify_close(1011, "internal").retryable


@pytest.mark.parametrize(
    "bad",
    ["{", "[]", "null", b"\x00\x01", json.dumps({"type": "mystery"}), json.dumps({"status": "success"}),
     json.dumps({"type": "transcription", "transcript": 5}), json.dumps({"type": "transcription", "is_final": "yes"}),
     json.dumps({"type": "transcription", "transcript": "x", "is_final": True, "words": {"a": 1}}),
     '{"type": "transcription", "transcript": "x", "is_final": true, "words": [{"word": "x", "start": NaN, "end": 1}]}',
     json.dumps({"type": "speech_started", "timestamp": -1})],
)
def test_malformed_and_unknown_frames_raise_retryable_protocol_errors(bad):
    with pytest.raises(ProtocolError) as info:
        proto().decode(bad, 0.0)
    assert info.value.error.retryable and info.value.error.code == "BAD_FRAME"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
_KEYS = ["type", "status", "transcript", "transcription", "is_final", "is_last", "from_finalize", "words",
         "word_timestamps", "speaker", "timestamp", "message", "error", "error_code", "code", "session_id"]
_word = st.dictionaries(st.sampled_from(["word", "text", "start", "end", "speaker", "confidence", "startMs"]), _json, max_size=5)
_value = st.one_of(
    _json, st.sampled_from(["transcription", "error", "speech_started", "speech_ended", "x"]), st.lists(_word, max_size=3)
)
_time = st.one_of(st.floats(0, 1000), st.floats(0, 1000), st.floats(), st.integers(-10, 10**9), st.text(max_size=4), st.none())
_good_word = st.fixed_dictionaries(
    {"word": st.text(max_size=6), "start": _time, "end": _time},
    optional={"speaker": _json, "confidence": _time},
)
_transcription = st.fixed_dictionaries(
    {"type": st.sampled_from(["transcription", None]), "transcript": st.one_of(st.text(max_size=12), _json)},
    optional={
        "is_final": st.one_of(st.just(True), st.booleans(), _json),
        "is_last": st.one_of(st.booleans(), _json),
        "words": st.one_of(st.lists(_good_word, min_size=1, max_size=4), _json),
        "word_timestamps": st.one_of(st.lists(_good_word, max_size=4), _json),
        "speaker": _json,
        "from_finalize": _json,
    },
)
_frames = st.one_of(
    st.binary(max_size=32),
    st.text(max_size=32),
    st.dictionaries(st.sampled_from(_KEYS), _value, max_size=7).map(json.dumps),
    _transcription.map(json.dumps),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames, lightning=st.booleans())
def test_fuzz_decoder_only_ever_raises_protocol_error(frame, lightning):
    p = proto()
    p.connect_request(f"wss://h/{'api/v1/lightning/get_text' if lightning else 'waves/v1/stt/live'}")
    try:
        decoded = p.decode(frame, 1.0)
    except ProtocolError:
        return
    assert isinstance(decoded, Decoded)
    for event in decoded.events:
        if isinstance(event, Final):
            assert math.isfinite(event.start) and math.isfinite(event.end) and event.start <= event.end
            assert all(0 <= w.start <= w.end < 1e6 for w in event.words)
