"""What a provider can send or be that must not end or falsify a session.

1. A time that is not a finite number ("NaN", "Infinity") in a final ended
   the whole session with a traceback (AudioPod, Inworld, VoiceRun).
2. Impossible times in a well-formed final (`start: 1e12`, negative, past
   the audio sent) became cues hours long or out of order.
3. A provider that went quiet near the end (Inworld has no "done" message)
   finished "cleanly": the last captions were lost with no word.
4. An endpoint that is no WebSocket server was retried for half a minute
   and ended in "did not receive a valid HTTP response" (UG Labs: an HTML
   page in every warning).
5. VoiceRun live: the replay after a reconnect went in one burst, so its
   finals (estimated from when replies arrive) were placed at its end.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading
import time

import numpy as np
import pytest

from captioner.audio.sources import WavFileSource
from captioner.captioning import CaptionJob, caption_source, make_session
from captioner.stt.events import Gap, ProviderError, ProviderFailure, StateChanged
from captioner.stt.session import RetryPolicy, SessionConfig
from tests.conftest import SCRIPT
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.base import Fault
from tests.fakes.inworld import FakeInworld
from tests.fakes.smallest import FakeSmallest
from tests.fakes.tones import synthesize, write_wav
from tests.fakes.uglabs import FakeUgLabs
from tests.fakes.voicerun import FakeVoiceRun
from tests.helpers import EventLog, assert_times_match

FAST = RetryPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.05)
WORDS = [w for u in SCRIPT for w in u]


def _key(fake) -> str:
    return getattr(fake, "key", None) or fake.api_key


async def transcribe(provider, fake, wav, options=None, config=None, retry=FAST, live=False, speed=0.0, url=None):
    url = url or fake.url
    config = config or SessionConfig(url, drain_timeout=3.0, estimate_pace=4.0 if provider == "voicerun" else None)
    session = make_session(CaptionJob(provider, options or {}, url), _key(fake) if fake else "k_test_1234", config, retry)
    log = EventLog()
    await caption_source(WavFileSource(wav, speed=speed), session, [log], live=live, provider=provider)
    return log, session


def warnings(log: EventLog, code: str) -> list[ProviderError]:
    return [e for e in log.errors if e.code == code]


def spoken_words(log: EventLog) -> list[str]:
    return " ".join(f.text for f in log.finals).split()


# ------------------------------------------------ 1. NaN / Infinity times
NAN_FINALS = {
    "audiopod": {"type": "final", "text": "zz", "words": [{"word": "zz", "start": "Infinity", "end": "1"}]},
    "inworld": {"result": {"transcription": {"transcript": "zz", "isFinal": True,
                                             "wordTimestamps": [{"word": "zz", "startTimeMs": "NaN", "endTimeMs": "5"}]}}},
    "voicerun": {"type": "transcription.completed", "text": "zz", "words": [{"word": "zz", "start": "NaN", "end": "1"}]},
}
FAKES = {"audiopod": FakeAudioPod, "inworld": FakeInworld, "voicerun": FakeVoiceRun}
OPTIONS = {"inworld": {"end_idle_seconds": "0.3"}}


@pytest.mark.parametrize("provider", list(NAN_FINALS))
async def test_a_final_with_a_nan_or_infinite_time_keeps_its_text_and_the_session(provider, tone_wav):
    """It crashed the session (OverflowError / ValueError in the sample clock)."""
    wav, spoken = tone_wav
    async with FAKES[provider]() as fake:
        fake.faults.append(Fault("inject", after_bytes=80000, payload=json.dumps(NAN_FINALS[provider])))
        log, session = await transcribe(provider, fake, wav, OPTIONS.get(provider))
    assert log.states[-1] == "closed" and session.stats.connections == 1
    (zz,) = [f for f in log.finals if f.text == "zz"]
    assert not zz.timed and zz.words == ()  # its time was no time: placed by the clock
    assert 0.0 <= zz.start <= zz.end <= 5.55
    assert [w for w in spoken_words(log) if w != "zz"] == WORDS


async def test_one_bad_word_time_keeps_every_word_of_its_final(tone_wav):
    """Dropping only the bad word would drop it from the captions (cues are
    built from words): the final keeps all its text, placed by the clock."""
    wav, _ = tone_wav
    final = {"type": "final", "text": "yy zz", "words": [{"word": "yy", "start": 2.0, "end": 2.1},
                                                         {"word": "zz", "start": 2.2, "end": "-Infinity"}]}
    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("inject", after_bytes=80000, payload=json.dumps(final)))
        log, _ = await transcribe("audiopod", fake, wav)
    (yz,) = [f for f in log.finals if f.text == "yy zz"]
    assert not yz.timed and yz.words == ()


# -------------------------------------------------- 2. impossible times
@pytest.mark.parametrize(
    "provider, final",
    [
        ("voicerun", {"type": "transcription.completed", "text": "bogus", "words": [{"word": "bogus", "start": 1e12, "end": -1}]}),
        ("audiopod", {"type": "final", "text": "bogus", "words": [{"word": "bogus", "start": -5, "end": 1e12}]}),
        ("inworld", {"result": {"transcription": {"transcript": "bogus", "isFinal": True,
                                                  "wordTimestamps": [{"word": "bogus", "startTime": 400.0, "endTime": 401.0}]}}}),
        ("smallest", {"type": "transcription", "transcript": "bogus", "is_final": True, "is_last": False,
                      "words": [{"word": "bogus", "start": 900.0, "end": 901.0}]}),
    ],
    ids=["voicerun-1e12", "audiopod-negative", "inworld-past-the-audio", "smallest-past-the-audio"],
)
async def test_impossible_times_are_placed_by_the_clock_with_a_warning(provider, final, tone_wav):
    """`start: 1e12` became a cue at 277777777:46:40 and pushed the next real
    cue out of order. A time outside the audio sent so far cannot be true."""
    wav, spoken = tone_wav
    fake_class = {**FAKES, "smallest": FakeSmallest}[provider]
    async with fake_class() as fake:
        fake.faults.append(Fault("inject", after_bytes=80000, payload=json.dumps(final)))
        log, session = await transcribe(provider, fake, wav, OPTIONS.get(provider))
    assert log.states[-1] == "closed"
    (bogus,) = [f for f in log.finals if f.text == "bogus"]
    assert not bogus.timed and bogus.words == ()
    # placed from the end of the first final (before it came) to the clock, within the audio
    first = log.finals[0]
    assert first.text == "alpha bravo charlie" and bogus.start == pytest.approx(first.end, abs=0.01)
    assert bogus.start <= bogus.end <= 5.55
    (warning,) = warnings(log, "BAD_TIMES")
    assert "impossible time" in warning.message and warning.retryable
    assert session.stats.bad_frames == 1
    real = [f for f in log.finals if f.text != "bogus"]
    if provider == "voicerun":
        assert [f.text for f in real] == [" ".join(u) for u in SCRIPT]
    else:
        assert_times_match(real, spoken)  # every real final keeps its own times
    starts = [f.start for f in log.finals]
    assert starts == sorted(starts) and max(f.end for f in log.finals) <= 5.55


async def test_a_run_of_finals_with_impossible_times_is_spread_over_the_audio_not_stacked(tmp_path):
    """Every final of a provider whose unit was misread is impossible: each
    was placed at the same start, and the SRT had cues of 1 ms at 0:00."""
    wav = write_wav(tmp_path / "hum.wav", np.full(16000 * 5, 0.01, dtype=np.float32), 16000)  # no real finals between
    bogus = [{"type": "final", "text": f"bogus {n}", "words": [{"word": "bogus", "start": 1e9, "end": 1e9 + 1}]} for n in range(3)]
    async with FakeAudioPod() as fake:
        for n, final in enumerate(bogus):
            fake.faults.append(Fault("inject", after_bytes=40000 + 40000 * n, payload=json.dumps(final)))
        log, _ = await transcribe("audiopod", fake, wav, speed=4.0)  # paced: they come as the audio goes
    placed = [f for f in log.finals if f.text.startswith("bogus")]
    assert [f.text for f in placed] == ["bogus 0", "bogus 1", "bogus 2"]
    for a, b in zip(placed, placed[1:]):
        assert b.start >= a.end - 0.01 and b.start - a.start > 0.5  # after each other, ~1.25 s of audio apart


async def test_times_a_little_outside_the_audio_are_clamped_without_a_warning(tone_wav):
    """Rounding at the edges (a word starting at -0.2 s) is no error."""
    wav, _ = tone_wav
    final = {"type": "final", "text": "edge", "words": [{"word": "edge", "start": -0.2, "end": 0.1}]}
    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("inject", after_bytes=32000, payload=json.dumps(final)))
        log, _ = await transcribe("audiopod", fake, wav)
    (edge,) = [f for f in log.finals if f.text == "edge"]
    assert edge.timed and (edge.start, edge.end) == (0.0, 0.1) and edge.words[0].start == 0.0
    assert warnings(log, "BAD_TIMES") == []


# ----------------------------------------- 3. quiet after end of stream
@pytest.mark.parametrize("after_close", ["close", "silent"])
async def test_inworld_going_quiet_before_the_end_is_not_a_clean_finish(after_close, tone_wav):
    """The fake stops answering 3 s in (after the first final) and, after
    closeStream, closes 1000 or stays open and quiet. Both counted as a clean
    finish: 2 of 3 utterances lost, exit 0, no warning. Now the uncaptioned
    sound is sent again on a new connection, and nothing is lost."""
    wav, spoken = tone_wav
    async with FakeInworld(after_close=after_close) as fake:
        fake.faults.append(Fault("silence", after_bytes=96000))
        log, session = await transcribe("inworld", fake, wav, OPTIONS["inworld"])
    assert len(fake.records) == 2 and fake.violations == []
    assert_times_match(log.finals, spoken)
    reconnecting = [e.detail for e in log.events if isinstance(e, StateChanged) and e.state.value == "reconnecting"]
    assert len(reconnecting) == 1 and "without captions for the last" in reconnecting[0]
    # the new connection started 0.5 s before the first sound after the last
    # final (2.24 s; the pause before it was heard), not at zero
    assert len(fake.records[1].audio) / 32000 == pytest.approx(5.55 - (2.24 - 0.5), abs=0.1)
    assert log.states[-1] == "closed"


async def test_a_provider_that_never_captions_the_tail_ends_with_a_gap(tone_wav):
    """Retries are bounded: still nothing after `tail_retries` (1) replays is
    a visible gap with its reason, not an endless loop and not silence."""
    wav, _ = tone_wav
    async with FakeInworld() as fake:
        fake.faults += [Fault("silence", after_bytes=96000), Fault("silence", on_connection=1)]
        log, session = await transcribe("inworld", fake, wav, OPTIONS["inworld"])
    assert len(fake.records) == 2 and log.states[-1] == "closed"
    assert spoken_words(log) == SCRIPT[0]
    (gap,) = [e for e in log.events if isinstance(e, Gap)]
    # from the replay's start (0.5 s before the first sound after the last final) plus the tail's grace
    assert gap.start == pytest.approx(2.24 - 0.5 + 0.25, abs=0.05) and gap.end == pytest.approx(5.55, abs=0.01)
    assert "no captions" in gap.reason and "sent 2 times" in gap.reason and session.stats.gaps == 1


async def test_silence_after_the_last_final_is_a_clean_finish(tmp_path):
    """4 s of silence at the end of a file: no final can cover it, nor must."""
    audio, spoken = synthesize(SCRIPT, rate=16000, tail_s=4.0)
    wav = write_wav(tmp_path / "tail.wav", audio, 16000)
    async with FakeInworld(after_close="silent") as fake:
        log, session = await transcribe("inworld", fake, wav, OPTIONS["inworld"])
    assert len(fake.records) == 1 and session.stats.reconnects == 0
    assert_times_match(log.finals, spoken)
    assert not [e for e in log.events if isinstance(e, Gap)]


# ------------------------------------------- 4. not a WebSocket endpoint
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def web_server(tmp_path):
    """python -m http.server: HTTP/1.0, a directory page for GET, 501 + HTML for POST."""
    (tmp_path / "index.html").write_text("<html><head><title>A page</title></head><body>\n<h1>Hello</h1>\n</body></html>\n")
    handler = lambda *a, **k: _Quiet(*a, directory=str(tmp_path), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


async def _raw_server(reply: bytes):
    async def answer(reader, writer):
        await reader.read(1000)
        writer.write(reply)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


async def _fails_fast(provider: str, url: str, wav) -> ProviderError:
    retry = RetryPolicy(first_delay=0.3, base_delay=0.3, max_delay=0.3, max_attempts=8)  # retries would take 2.4 s
    began = time.monotonic()
    with pytest.raises(ProviderFailure) as info:
        await transcribe(provider, None, wav, retry=retry, url=url)
    assert time.monotonic() - began < 1.5  # no retries
    error = info.value.error
    assert "\n" not in error.message and "<" not in error.message and len(error.message) < 200
    return error


async def test_a_web_server_is_not_a_websocket_endpoint(web_server, tone_wav):
    wav, _ = tone_wav
    error = await _fails_fast("audiopod", f"ws://127.0.0.1:{web_server}/", wav)
    assert error.code == "NOT_WEBSOCKET"
    assert error.message.startswith(f"127.0.0.1:{web_server} is not a WebSocket endpoint (HTTP 200")


@pytest.mark.parametrize(
    "reply, expected",
    [
        (b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 96\r\n\r\n"
         b"<html><head><title>404 Not Found</title></head><body>\n<h1>404 Not Found</h1>\n<hr>nginx</body></html>",
         "/api/v1/transcription/stream is not a WebSocket endpoint (HTTP 404: 404 Not Found)"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "is not a WebSocket endpoint (HTTP 200: hello)"),
        (b"\x00\xffgarbage\r\n\r\n", "did not answer in HTTP"),
        (b"\x15\x03\x01\x00\x02\x02\x46\r\n", "speaks TLS: use wss://"),
    ],
    ids=["404-html", "200", "garbage", "tls-alert"],
)
async def test_a_reply_that_is_no_handshake_is_fatal_at_once(reply, expected, tone_wav):
    wav, _ = tone_wav
    server = await _raw_server(reply)
    port = server.sockets[0].getsockname()[1]
    try:
        error = await _fails_fast("audiopod", f"ws://127.0.0.1:{port}/api/v1/transcription/stream", wav)
    finally:
        server.close()
    assert expected in error.message and error.code in ("NOT_WEBSOCKET", "NOT_TLS_URL")


@pytest.mark.parametrize(("provider", "fake_class"), [("audiopod", FakeAudioPod), ("uglabs", FakeUgLabs)])
async def test_a_tls_port_reached_with_ws_says_use_wss(tls_certificate, tone_wav, provider, fake_class):
    """Python's TLS server hangs up on plain HTTP without a word: a TLS hello
    then tells that the port speaks TLS (UG Labs: at its login already)."""
    wav, _ = tone_wav
    _, context = tls_certificate
    fake = fake_class()
    fake.tls = context
    async with fake:
        url = fake.url.replace("wss://localhost", "ws://127.0.0.1")
        error = await _fails_fast(provider, url, wav)
    assert error.code == "NOT_TLS_URL" and error.message == f"127.0.0.1:{fake.port} speaks TLS: use wss:// instead of ws://"
    assert fake.records == []


async def test_a_closed_port_is_retried_and_says_nothing_listens(tone_wav):
    wav, _ = tone_wav
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = EventLog()
    session = make_session(CaptionJob("audiopod", {}, f"ws://127.0.0.1:{port}/x"), "k_test_1234",
                           SessionConfig(f"ws://127.0.0.1:{port}/x"), RetryPolicy(first_delay=0.01, base_delay=0.01, max_delay=0.01, max_attempts=2))
    with pytest.raises(ProviderFailure) as info:
        await caption_source(WavFileSource(wav, speed=0), session, [log], live=False)
    assert info.value.error.code == "CONNECT_FAILED" and log.states.count("reconnecting") == 2
    assert f"nothing is listening on 127.0.0.1:{port} (connection refused)" in info.value.error.message


async def test_uglabs_login_to_a_web_server_is_fatal_in_one_short_line(web_server, tone_wav):
    """The login POST got 501 with a 10-line HTML page: retried 8 times, the
    page in every warning. 501 says the request is not supported there."""
    wav, _ = tone_wav
    error = await _fails_fast("uglabs", f"ws://127.0.0.1:{web_server}/interact", wav)
    assert error.message.startswith("UG Labs login: the server does not support this request (HTTP 501")


async def test_uglabs_login_answered_by_no_http_server_is_fatal_not_a_crash(tone_wav):
    """http.client's BadStatusLine is no OSError: it went up as a traceback."""
    wav, _ = tone_wav
    server = await _raw_server(b"\x00\xffgarbage\r\n\r\n")
    port = server.sockets[0].getsockname()[1]
    try:
        error = await _fails_fast("uglabs", f"ws://127.0.0.1:{port}/interact", wav)
    finally:
        server.close()
    assert error.code == "NOT_HTTP" and error.message.startswith(f"the login at 127.0.0.1:{port} did not answer in HTTP")


async def test_wss_to_a_plain_http_port_says_use_ws(web_server, tone_wav):
    wav, _ = tone_wav
    error = await _fails_fast("audiopod", f"wss://127.0.0.1:{web_server}/x", wav)
    assert error.code == "NOT_TLS" and error.message == f"127.0.0.1:{web_server} does not speak TLS: use ws:// instead of wss://"


# ------------------------------------------------ 5. VoiceRun live replay
async def test_voicerun_live_replay_is_paced_so_its_times_hold(tone_wav):
    """A drop 2.5 s in, and 0.4 s (1.6 s of audio at this 4x "real time")
    before the reconnect: the replay from the first final's end went out in
    one burst and "delta echo" was placed ~2 s late, where the burst ended.
    Paced at twice the protocol's pace it is placed within one reply delay,
    and the captions catch up with the source."""
    wav, spoken = tone_wav
    async with FakeVoiceRun() as fake:
        fake.faults.append(Fault("drop", after_bytes=80000))
        # this test's "real time" is 4x (the source's speed); a burst is 0.1 s
        # of audio at any pace (25 ms of wall time here)
        config = SessionConfig(fake.url, estimate_pace=4.0)
        retry = RetryPolicy(first_delay=0.4, base_delay=0.4, max_delay=0.4)
        began = time.monotonic()
        log, session = await transcribe("voicerun", fake, wav, config=config, retry=retry, live=True, speed=4.0)
        took = time.monotonic() - began
    assert session.stats.reconnects == 1 and fake.violations == []
    assert [f.text for f in log.finals] == [" ".join(u) for u in SCRIPT]
    for final, utterance in zip(log.finals, spoken.utterances):
        assert abs(final.start - utterance[0][1]) <= 0.5, (final, utterance)
        assert abs(final.end - utterance[-1][2]) <= 0.6, (final, utterance)
    assert took < 5.55 / 4 + 1.0  # caught up: not a replay at 1x after the source ended


async def test_voicerun_audio_piled_up_by_a_stall_goes_paced_so_its_times_hold(tone_wav):
    """A live input whose process stood still for 3 s of audio (a starved
    CPU): the device's audio piled up and went out in one burst, and every
    VoiceRun estimate in it was placed where the burst ended (a CPU-starved
    tester saw finals 4.5-6.7 s late). The pile goes paced, as a replay
    after a reconnect does, and the estimates hold."""
    import soundfile

    from tests.helpers import ScriptedInput

    wav, spoken = tone_wav
    audio, rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
    block = rate // 10

    class StallingInput(ScriptedInput):
        async def _gen(self):  # 100-ms blocks at this test's 4x "real time"; 3 s of audio piled up at 1.6 s
            for i, at in enumerate(range(0, len(audio), block)):
                if not 16 <= i < 46:
                    await asyncio.sleep(0.025)
                elif i == 16:
                    await asyncio.sleep(0.75)
                yield audio[at:at + block]

    async with FakeVoiceRun() as fake:
        config = SessionConfig(fake.url, drain_timeout=3.0, estimate_pace=4.0)
        session = make_session(CaptionJob("voicerun", {}, fake.url), _key(fake), config, FAST)
        log = EventLog()
        await caption_source(StallingInput("mic", rate), session, [log], live=True, provider="voicerun")
    assert fake.violations == [] and session.stats.reconnects == 0
    assert [f.text for f in log.finals] == [" ".join(u) for u in SCRIPT]
    for final, utterance in zip(log.finals, spoken.utterances):
        assert abs(final.start - utterance[0][1]) <= 0.6, (final, utterance)
        assert abs(final.end - utterance[-1][2]) <= 0.7, (final, utterance)
