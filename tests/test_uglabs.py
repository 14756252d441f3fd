"""UG Labs end to end against the strict fake: login (URL, token refresh by
rollover, wrong key), authenticate, pages of WAV at pauses with exact words and
times, error replies, malformed frames, reconnects, the CLI contract — and the
pure protocol driven without sockets (flow control, exact messages, fuzz)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import sys
import uuid
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.audio.sources import WavFileSource
from captioner.captioning import CaptionJob, caption_source, make_session
from captioner.stt.events import ErrorKind, Final, Gap, Partial, ProviderError, ProviderFailure
from captioner.stt.options import OptionError
from captioner.stt.protocol import Decoded, ProtocolError
from captioner.stt.providers import uglabs as ug
from captioner.stt.providers.uglabs import UgLabsOptions, UgLabsProtocol
from captioner.stt.registry import get_provider
from captioner.stt.session import RetryPolicy, SessionConfig
from tests.fakes.base import Fault
from tests.fakes.tones import VOCAB, ToneRecognizer, synthesize, write_wav
from tests.fakes.uglabs import FakeUgLabs
from tests.test_exports import parse_srt_strict
from tests.helpers import EventLog

FAST_RETRY = RetryPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.05)
RATE = 16000
LONG = [[VOCAB[(3 * i + j) % 16] for j in range(2 + i % 3)] for i in range(36)]  # ~63 s of speech


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory: pytest.TempPathFactory):
    audio, spoken = synthesize(LONG, rate=RATE)
    return write_wav(tmp_path_factory.mktemp("uglabs") / "long.wav", audio, RATE), spoken


# Long pages, as these tests were written for: one silent page in the middle, a
# drop after the first page (the default, 8 s pages, is covered by the others).
LONG_PAGES = {"page_target_s": "26", "page_min_s": "10"}


async def run(fake: FakeUgLabs, wav: Path, key: str | None = None, options=None, config=None, listeners=()):
    job = CaptionJob("uglabs", options or {}, fake.url)
    session = make_session(job, key or fake.api_key, config, FAST_RETRY)
    log = EventLog()
    source = WavFileSource(wav, speed=0)
    transcript = await caption_source(source, session, [log, *listeners], live=False, provider="uglabs")
    return transcript, log, session


def all_words(spoken) -> list[str]:
    return [w for w, _, _ in spoken.words]


def assert_pages_match(finals: list[Final], spoken, tolerance: float = 0.3) -> None:
    """Exact words in order, once each; every page's Final sits on its speech."""
    assert " ".join(f.text for f in finals).split() == all_words(spoken)
    at = 0
    last_end = -1.0
    for final in finals:
        assert final.timed and final.words == ()
        assert final.start >= last_end - 1e-6 and final.end >= final.start
        last_end = final.end
        tokens = final.text.split()
        if not tokens:
            continue
        span = spoken.words[at : at + len(tokens)]
        assert abs(final.start - span[0][1]) <= tolerance, (final, span[0])
        assert abs(final.end - span[-1][2]) <= tolerance, (final, span[-1])
        at += len(tokens)


def kinds(record) -> list[str]:
    return [m["kind"] for m in record.messages]


# ------------------------------------------------------------------ login


@pytest.mark.parametrize(
    "endpoint, login",
    [
        ("wss://pug.stg.uglabs.app/interact", "https://pug.stg.uglabs.app/api/auth/login"),
        ("wss://example.org:9443/some/path/interact?x=1", "https://example.org:9443/api/auth/login"),
        ("ws://127.0.0.1:8765/interact", "http://127.0.0.1:8765/api/auth/login"),
        ("ws://localhost/interact", "http://localhost/api/auth/login"),
    ],
)
def test_login_url_derives_from_the_endpoint(endpoint, login):
    request = UgLabsProtocol(UgLabsOptions(), "ug_key").login_request(endpoint)
    assert request.url == login
    assert request.body == {"api_key": "ug_key"}


def test_login_body_carries_team_and_federated_id():
    opts = UgLabsOptions(team_name="acme", federated_id="player-7")
    body = UgLabsProtocol(opts, "k").login_request(ug.DEFAULT_ENDPOINT).body
    assert body == {"api_key": "k", "team_name": "acme", "federated_id": "player-7"}


def test_login_reply_sets_the_refresh_deadline():
    now = [100.0]
    p = UgLabsProtocol(UgLabsOptions(), "k", clock=lambda: now[0])
    p.accept_login(200, json.dumps({"access_token": "eyJ.a.b", "expires_in": 1200}).encode())
    assert p._refresh_at == 100.0 + 1200 - 300
    p.accept_login(200, json.dumps({"access_token": "eyJ.a.b"}).encode())  # expires_in is optional
    assert p._refresh_at == 100.0 + 3600 - 300
    p.accept_login(200, json.dumps({"access_token": "eyJ.a.b", "expires_in": 60}).encode())
    assert p._refresh_at == 100.0 + 30  # short tokens: refresh at half their life


@pytest.mark.parametrize(
    "status, body, code, kind",
    [
        (401, b'{"error": "Invalid API key"}', "KEY_REJECTED", ErrorKind.FATAL),
        (403, b'{"detail": "forbidden"}', "KEY_REJECTED", ErrorKind.FATAL),
        (429, b"", "RATE_LIMITED", ErrorKind.RETRYABLE),
        (503, b"busy", "HTTP_503", ErrorKind.RETRYABLE),
        (200, b"{}", "BAD_LOGIN", ErrorKind.RETRYABLE),
        (200, b"not json", "BAD_LOGIN", ErrorKind.RETRYABLE),
        (200, b'{"access_token": 5}', "BAD_LOGIN", ErrorKind.RETRYABLE),
    ],
)
def test_login_refusals_are_mapped(status, body, code, kind):
    with pytest.raises(ProtocolError) as info:
        UgLabsProtocol(UgLabsOptions(), "ug_secret_key").accept_login(status, body)
    assert (info.value.error.code, info.value.error.kind) == (code, kind)
    assert "ug_secret_key" not in str(info.value)


async def test_wrong_key_is_fatal_without_a_retry_storm(long_wav):
    wav, _ = long_wav
    async with FakeUgLabs() as fake:
        with pytest.raises(ProviderFailure) as info:
            await run(fake, wav, key="ug_wrong_key_zzzz")
    assert info.value.error.code == "KEY_REJECTED"
    assert "Invalid API key" in info.value.error.message
    assert "ug_wrong_key_zzzz" not in str(info.value)
    assert len(fake.logins) == 1 and fake.records == []  # one login, never a socket


class _EchoingUgLabs(FakeUgLabs):
    """A server that quotes the access token it refused (some do)."""

    async def _error(self, ws, msg, error):
        if msg.get("kind") == "authenticate":
            error = f"{error}: {msg.get('access_token')}"
        await super()._error(ws, msg, error)


async def test_an_access_token_a_server_quotes_back_is_redacted_like_the_key(long_wav, caplog):
    """The login's token is a bearer credential for an hour: it must never
    reach a message, a state's detail or a log line."""
    wav, _ = long_wav
    async with _EchoingUgLabs(reject_tokens=1) as fake:
        _, log, session = await run(fake, wav)
    tokens = list(fake.tokens)
    assert len(tokens) >= 2  # the refused one, and the one that worked
    shown = " ".join([*(str(e) for e in log.events), caplog.text])
    assert "did not accept the access token" in shown  # the refusal was reported...
    assert not any(token in shown for token in tokens)  # ...without the token


# ------------------------------------------------------- streaming pages


async def test_long_audio_in_pages_gives_exact_words_at_their_times(long_wav):
    wav, spoken = long_wav
    async with FakeUgLabs() as fake:
        transcript, log, session = await run(fake, wav)
    assert fake.violations == []
    assert spoken.words[-1][2] > 60
    assert_pages_match(log.finals, spoken)
    assert log.partials == [] and len(log.finals) == len(fake.transcribes) >= 3
    assert transcript.text.split() == all_words(spoken)
    assert fake.logins == [{"api_key": fake.api_key}]
    assert len(fake.records) == 1 and session.stats.reconnects == 0
    # pages: at most 30 s, one WAV each in ≤32,000-byte chunks, then transcribe, then clear_audio
    assert all(t["seconds"] <= 30 and t["rate"] == RATE and t["language_code"] == "en" for t in fake.transcribes)
    assert max(fake.add_audio_sizes) == 32000
    seq = kinds(fake.records[0])
    assert seq[0] == "authenticate"
    # keepalive pings (every 10 s of audio without a request) only ever come between pages
    assert re.fullmatch(r"(?:(?:ping,)*(?:add_audio,)+transcribe,clear_audio,?)+", ",".join(seq[1:]))
    assert seq.count("transcribe") == len(fake.transcribes)
    assert log.states[0] == "connecting" and "live" in log.states and log.states[-1] == "closed"
    # the pages together hold the whole file (the short lead/tail silences included)
    assert abs(len(fake.records[0].audio) / 2 / RATE - WavFileSource(wav).duration) < 0.01


async def test_requests_are_enveloped_with_fresh_uids_and_iso_times(long_wav):
    wav, _ = long_wav
    async with FakeUgLabs() as fake:
        await run(fake, wav)
    messages = fake.records[0].messages
    uids = [m["uid"] for m in messages]
    assert len(set(uids)) == len(uids) and all(uuid.UUID(u).version == 4 for u in uids)
    assert all(m["type"] == "request" and m["client_start_time"].endswith("Z") for m in messages)
    first = next(m for m in messages if m["kind"] == "add_audio")
    assert first["config"] == {"mime_type": "audio/wav", "sampling_rate": RATE}
    assert base64.b64decode(first["audio"])[:4] == b"RIFF"
    assert messages[0]["access_token"].startswith("eyJ")
    assert "authorization" not in {k.lower() for k in fake.records[0].headers}


async def test_silent_pages_are_not_sent_but_their_time_counts(tmp_path):
    first, spoken1 = synthesize([["alpha", "bravo"], ["charlie", "delta"]], rate=RATE, tail_s=0.0)
    second, spoken2 = synthesize([["echo", "foxtrot"], ["golf"]], rate=RATE, lead_s=0.0)
    gap = np.zeros((RATE * 40, 1), np.float32)
    audio = np.concatenate([first, gap, second])
    offset = (len(first) + len(gap)) / RATE
    spoken1.words += [(w, s + offset, e + offset) for w, s, e in spoken2.words]
    wav = write_wav(tmp_path / "gap.wav", audio, RATE)
    async with FakeUgLabs() as fake:
        transcript, log, _ = await run(fake, wav, options=LONG_PAGES)
    assert fake.violations == []
    assert len(fake.transcribes) == 2  # the silent page in the middle was never transcribed
    assert "ping" in kinds(fake.records[0])
    assert [f.text for f in log.finals if not f.text] == [""]  # ...but reported as done
    assert_pages_match(log.finals, spoken1)
    assert abs(transcript.segments[1].start - offset) < 0.3


async def test_options_reach_the_wire(long_wav):
    wav, spoken = long_wav
    options = {
        "sample_rate": "48000", "rate_field": "sample_rate", "time_field": "timestamp",
        "auth_header": "true", "language": "de", "team_name": "acme",
    }
    async with FakeUgLabs(rate_field="sample_rate", time_field="timestamp") as fake:
        _, log, _ = await run(fake, wav, options=options)
    assert fake.violations == []
    assert_pages_match(log.finals, spoken)
    assert {t["rate"] for t in fake.transcribes} == {48000}
    assert {t["language_code"] for t in fake.transcribes} == {"de"}
    assert fake.records[0].headers["Authorization"].startswith("Bearer eyJ")
    assert fake.logins[0] == {"api_key": fake.api_key, "team_name": "acme"}


async def test_pipelined_add_audio_keeps_order(long_wav):
    wav, spoken = long_wav
    async with FakeUgLabs() as fake:
        _, log, _ = await run(fake, wav, options={"max_in_flight": "4"})
    assert fake.violations == []
    assert_pages_match(log.finals, spoken)


async def test_debug_and_garbage_frames_are_ignored(long_wav):
    wav, spoken = long_wav
    async with FakeUgLabs(debug_frames=True, garbage_before_transcribe="{not json") as fake:
        _, log, session = await run(fake, wav)
    assert_pages_match(log.finals, spoken)
    assert session.stats.bad_frames == len(fake.transcribes)
    assert session.stats.reconnects == 0


# ------------------------------------------------------ tokens and auth


async def test_token_near_expiry_rolls_over_and_logs_in_again(long_wav, monkeypatch):
    wav, spoken = long_wav
    now = [1000.0]
    monkeypatch.setattr(ug, "monotonic", lambda: now[0])

    def age_token(event) -> None:
        if isinstance(event, Final) and now[0] == 1000.0:
            now[0] = 1000.0 + 3600 - 299  # inside the 300 s margin of the first token

    async with FakeUgLabs() as fake:
        _, log, session = await run(fake, wav, listeners=[age_token])
    assert fake.violations == []
    assert session.stats.rollovers == 1 and session.stats.reconnects == 0
    assert len(fake.logins) == 2 and len(fake.records) == 2
    tokens = [r.messages[0]["access_token"] for r in fake.records]
    assert tokens[0] != tokens[1] and set(tokens) == set(fake.tokens)
    assert_pages_match(log.finals, spoken)  # nothing lost, nothing doubled
    assert len(fake.records[0].messages) and kinds(fake.records[0])[-1] == "clear_audio"


async def test_rejected_token_retries_with_a_fresh_login(long_wav):
    wav, spoken = long_wav
    async with FakeUgLabs(reject_tokens=1) as fake:
        _, log, session = await run(fake, wav)
    assert len(fake.logins) == 2 and session.stats.reconnects == 1
    assert_pages_match(log.finals, spoken)


async def test_token_always_rejected_becomes_fatal_quickly(long_wav):
    wav, _ = long_wav
    async with FakeUgLabs(reject_tokens=1000) as fake:
        with pytest.raises(ProviderFailure) as info:
            await run(fake, wav)
    assert info.value.error.code == "AUTH_FAILED"
    assert len(fake.logins) <= 4


# ----------------------------------------------------- errors and faults


async def test_transcribe_error_reply_reconnects_without_loss(long_wav):
    wav, spoken = long_wav
    async with FakeUgLabs(fail_transcribe=(1,)) as fake:
        _, log, session = await run(fake, wav)
    assert session.stats.reconnects == 1 and len(fake.records) == 2
    assert any(e.code == "REQUEST_FAILED" for e in [session.last_error] if e)
    assert_pages_match(log.finals, spoken)


@pytest.mark.parametrize(
    "fault",
    [Fault("drop", after_bytes=1_000_000), Fault("close", after_bytes=1_000_000, code=1011)],
    ids=["tcp-drop", "close-1011"],
)
async def test_reconnect_after_a_drop_loses_and_doubles_nothing(long_wav, fault):
    wav, spoken = long_wav
    async with FakeUgLabs() as fake:
        fake.faults.append(fault)
        _, log, session = await run(fake, wav, options=LONG_PAGES)
    assert len(fake.records) == 2 and session.stats.reconnects == 1 and len(fake.logins) == 2
    assert_pages_match(log.finals, spoken)
    assert not [e for e in log.events if isinstance(e, Gap)]
    # the second connection resumed after the first page's speech (at most 0.5 s
    # before the next sound: the pause after it was heard), not at zero
    first_page_end = log.finals[0].end
    resumed_at = WavFileSource(wav).duration - len(fake.records[1].audio) / 2 / RATE
    assert first_page_end - 0.05 <= resumed_at <= first_page_end + 0.5


async def test_silent_server_is_caught_by_the_watchdog(long_wav):
    wav, spoken = long_wav
    async with FakeUgLabs() as fake:
        fake.faults.append(Fault("silence", after_bytes=1))
        config = SessionConfig(fake.url, watchdog_seconds=0.5)
        _, log, session = await run(fake, wav, config=config)
    assert session.stats.reconnects == 1
    assert_pages_match(log.finals, spoken)
    # the file ran ahead by a page in flight, a page waiting and the session's backlog:
    # the replay window still covered all of it
    assert not [e for e in log.events if isinstance(e, Gap)]


async def test_a_top_level_error_is_reconnected_from_without_losing_pages(long_wav):
    """The SDK's server sends {"type": "error"} for any failure of its own and
    closes: it was fatal, and a 30-s file ended after one page of five."""
    wav, spoken = long_wav
    async with FakeUgLabs() as fake:
        fake.faults.append(Fault("error", after_bytes=300000, payload={"type": "error", "error": "internal server error, please retry"}))
        _, log, session = await run(fake, wav)
    assert len(fake.records) == 2 and session.stats.reconnects == 1
    assert_pages_match(log.finals, spoken)


async def test_a_top_level_error_about_the_key_is_fatal(long_wav):
    wav, _ = long_wav
    async with FakeUgLabs() as fake:
        fake.faults.append(Fault("error", after_bytes=1, payload={"type": "error", "error": "Unauthorized: invalid API key"}))
        with pytest.raises(ProviderFailure) as info:
            await run(fake, wav)
    assert info.value.error.code == "KEY_REJECTED" and "invalid API key" in info.value.error.message
    assert len(fake.records) == 1


# ------------------------------------------------------------------ CLI


async def test_cli_transcribe_prints_pages_and_writes_srt(long_wav, tmp_path):
    wav, spoken = long_wav
    srt = tmp_path / "out.srt"
    async with FakeUgLabs() as fake:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "captioner", "transcribe", str(wav), "--provider", "uglabs",
            "--endpoint", fake.url, "--speed", "0", "--srt", str(srt),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "CAPTIONER_UGLABS_KEY": fake.api_key},
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines == [t["text"] for t in fake.transcribes]
    assert " ".join(lines).split() == all_words(spoken)
    assert fake.api_key not in out.decode() + err.decode()
    cues = [(start, end, " ".join(lines)) for start, end, lines in parse_srt_strict(srt.read_text("utf-8"))]
    assert " ".join(c[2] for c in cues).split() == all_words(spoken)
    for (s0, e0, _), (s1, _, _) in zip(cues, cues[1:]):
        assert s0 < e0 <= s1 + 1e-3  # ordered, no overlaps
    # Cues sit on the speech of their page: the first cue of a page starts at its
    # first word, and no cue leaves the page's speech (beyond the 0.8 s minimum cue).
    pages, at = [], 0
    for line in lines:
        span = spoken.words[at : at + len(line.split())]
        pages.append((span[0][1], span[-1][2], len(span)))
        at += len(span)
    cue_words = [len(c[2].split()) for c in cues]
    index = 0
    for start, end, count in pages:
        first = index
        while count > 0:
            count -= cue_words[index]
            index += 1
        assert count == 0, "a cue spans two pages"
        assert abs(cues[first][0] - start) <= 0.3
        for cue_start, cue_end, _ in cues[first:index]:
            assert start - 0.3 <= cue_start and cue_end <= max(end + 0.3, cue_start + 0.801)


# ------------------------------------- the protocol alone, no sockets


def reply(message: str, **fields) -> str:
    msg = json.loads(message)
    return json.dumps({"type": "response", "uid": msg["uid"], "kind": msg["kind"], **fields})


def ready_protocol(now: list[float] | None = None, **opts) -> tuple[UgLabsProtocol, str]:
    clock = (lambda: now[0]) if now is not None else None
    p = UgLabsProtocol(UgLabsOptions(**opts), "ug_secret_key", clock=clock)
    p.accept_login(200, json.dumps({"access_token": "eyJtok.x.y", "expires_in": 3600}).encode())
    (auth,) = p.on_open()
    assert json.loads(auth)["kind"] == "authenticate" and json.loads(auth)["access_token"] == "eyJtok.x.y"
    assert p.decode(reply(auth), 0).ready
    return p, auth


class MiniServer:
    """Answers requests the way the fake does, synchronously, and checks the
    client never has more outstanding than allowed or passes a barrier."""

    def __init__(self, proto: UgLabsProtocol, window: int = 1) -> None:
        self.proto = proto
        self.window = window
        self.outstanding: list[str] = []
        self.buffer = bytearray()
        self.log: list[dict] = []
        self.events: list = []
        self.done = False

    def take(self, messages) -> None:
        for m in messages:
            msg = json.loads(m)
            self.log.append(msg)
            if msg["kind"] != "add_audio":
                assert self.outstanding == [], "a barrier request overtook earlier ones"
            if self.outstanding:
                assert json.loads(self.outstanding[-1])["kind"] == "add_audio"
            self.outstanding.append(m)
            assert len(self.outstanding) <= self.window

    def answer_one(self) -> None:
        m = self.outstanding.pop(0)
        msg = json.loads(m)
        fields = {}
        if msg["kind"] == "add_audio":
            chunk = base64.b64decode(msg["audio"])
            assert len(chunk) <= 32000 and msg["config"]["mime_type"] == "audio/wav"
            self.buffer += chunk
        elif msg["kind"] == "transcribe":
            with wave.open(io.BytesIO(bytes(self.buffer))) as w:
                pcm = w.readframes(w.getnframes())
                rate = w.getframerate()
            rec = ToneRecognizer(rate)
            fields["text"] = " ".join(x.text for k, ws in rec.feed(pcm) + rec.flush() if k == "final" for x in ws)
        elif msg["kind"] == "clear_audio":
            self.buffer.clear()
        decoded = self.proto.decode(reply(m, **fields), 0)
        self.events += decoded.events
        self.done = self.done or decoded.done
        self.take(decoded.send)


def drive(proto: UgLabsProtocol, pcm: bytes, window: int = 1, block: int = 1600) -> MiniServer:
    """Feed like the session does: wait for replies while the protocol holds back."""
    server = MiniServer(proto, window)
    for at in range(0, len(pcm), block * 2):
        while not proto.accepts_audio():
            server.answer_one()
        server.take(proto.encode_audio(pcm[at : at + block * 2]))
        if server.outstanding and at % (block * 20) == 0:
            server.answer_one()  # replies arrive while audio keeps coming
    while not proto.accepts_audio():
        server.answer_one()
    server.take(proto.end_stream())
    while server.outstanding:
        server.answer_one()
    assert server.done
    return server


@pytest.mark.parametrize("window", [1, 3])
def test_protocol_flow_control_and_exact_messages(long_wav, window):
    _, spoken = long_wav
    audio, _ = synthesize(LONG, rate=RATE)
    pcm = (audio[:, 0] * 32767).astype("<i2").tobytes()
    proto, _ = ready_protocol(max_in_flight=window)
    server = drive(proto, pcm, window)
    finals = [e for e in server.events if isinstance(e, Final)]
    assert_pages_match(finals, spoken)
    assert not [e for e in server.events if isinstance(e, (ProviderError, Partial))]


def test_accepts_audio_holds_back_a_full_page_behind_one_in_flight():
    proto, _ = ready_protocol(page_target_s=12.0, page_min_s=5.0, page_max_s=14.0, keepalive_s=0)
    tone = (0.4 * np.sin(2 * np.pi * 500 * np.arange(14 * RATE) / RATE) * 32767).astype("<i2").tobytes()
    sent = proto.encode_audio(tone)  # 14 s of continuous sound: a page is cut at the limit
    assert [json.loads(m)["kind"] for m in sent] == ["add_audio"]
    assert proto.accepts_audio()
    proto.encode_audio(tone[: 12 * RATE * 2])  # a second page's worth waits
    assert not proto.accepts_audio()


def test_keepalive_ping_after_quiet_audio():
    proto, _ = ready_protocol(keepalive_s=5.0)
    quiet = bytes(RATE * 2)  # one second of digital silence
    out = []
    for _ in range(6):
        out += proto.encode_audio(quiet)
    assert [json.loads(m)["kind"] for m in out] == ["ping"]
    assert proto.decode(reply(out[0]), 0).events == []


def test_end_stream_with_nothing_pending_finishes_after_one_reply():
    proto, _ = ready_protocol()
    (ping,) = proto.end_stream()
    assert json.loads(ping)["kind"] == "ping"
    assert proto.decode(reply(ping), 0).done


def test_token_rollover_waits_for_a_reported_page():
    now = [0.0]
    proto, _ = ready_protocol(now, keepalive_s=1.0)
    now[0] = 10_000.0
    (ping,) = proto.encode_audio(bytes(RATE * 2))
    assert proto.decode(reply(ping), 0).events == []  # no page yet: no rollover that makes no progress
    server = MiniServer(proto)
    audio, _ = synthesize([["alpha", "bravo"]] * 22, rate=RATE)  # ~31 s: one page is cut
    server.take(proto.encode_audio((audio[:, 0] * 32767).astype("<i2").tobytes()))
    while server.outstanding:
        server.answer_one()
    errors = [e for e in server.events if isinstance(e, ProviderError)]
    assert [(e.code, e.kind) for e in errors] == [("TOKEN_EXPIRING", ErrorKind.ROLLOVER)]
    assert isinstance(server.events[0], Final) and server.events[0].text.startswith("alpha bravo")


def test_decoder_maps_errors_and_rejects_strangers():
    proto, _ = ready_protocol()
    assert proto.decode(json.dumps({"type": "debug", "message": "hi"}), 0) == Decoded()
    (error,) = proto.decode(json.dumps({"type": "error", "error": "boom"}), 0).events
    assert (error.code, error.kind) == ("SERVER_ERROR", ErrorKind.RETRYABLE)
    for bad in [b"\x00", "{", "[]", json.dumps({"type": "stream"}), json.dumps({"type": "response"}),
                json.dumps({"type": "response", "uid": str(uuid.uuid4()), "kind": "transcribe", "text": "x"})]:
        with pytest.raises(ProtocolError) as info:
            proto.decode(bad, 0)
        assert info.value.error.kind is ErrorKind.RETRYABLE
    (ping,) = proto.end_stream()
    with pytest.raises(ProtocolError):
        proto.decode(json.dumps({"type": "response", "uid": json.loads(ping)["uid"], "kind": "transcribe"}), 0)
    (err,) = proto.decode(json.dumps({"type": "response", "uid": json.loads(ping)["uid"], "kind": "error", "error": "nope"}), 0).events
    assert (err.code, err.kind) == ("REQUEST_FAILED", ErrorKind.RETRYABLE) and "ping" in err.message


def test_authenticate_error_and_untyped_reply_variant():
    p = UgLabsProtocol(UgLabsOptions(), "k")
    p.accept_login(200, b'{"access_token": "t"}')
    (auth,) = p.on_open()
    (err,) = p.decode(reply(auth, kind="error", error="session is not authenticated"), 0).events
    assert (err.code, err.kind) == ("AUTH_FAILED", ErrorKind.RETRYABLE)
    p = UgLabsProtocol(UgLabsOptions(), "k")
    p.accept_login(200, b'{"access_token": "t"}')
    (auth,) = p.on_open()
    uid = json.loads(auth)["uid"]
    assert p.decode(json.dumps({"uid": uid, "kind": "authenticated", "success": True}), 0).ready  # docs.uglabs.app form


def test_transcribe_reply_without_text_is_a_retryable_error():
    proto, _ = ready_protocol(page_target_s=2.0, page_min_s=1.0, page_max_s=3.0)
    tone = (0.4 * np.sin(2 * np.pi * 500 * np.arange(3 * RATE) / RATE) * 32767).astype("<i2").tobytes()
    server = MiniServer(proto)
    server.take(proto.encode_audio(tone))
    while json.loads(server.outstanding[0])["kind"] != "transcribe":
        server.answer_one()
    (err,) = proto.decode(reply(server.outstanding.pop()), 0).events
    assert (err.code, err.kind) == ("BAD_REPLY", ErrorKind.RETRYABLE)


def test_options_are_validated():
    info = get_provider("uglabs")
    assert info.options({"page_max_s": "30"}).page_max_s == 30.0
    for bad in [{"page_max_s": "31"}, {"chunk_bytes": "40000"}, {"page_target_s": "5", "page_min_s": "8"},
                {"max_in_flight": "0"}, {"rate_field": "rate"}, {"sample_rate": "12345"}, {"language": "x"}]:
        with pytest.raises(OptionError):
            info.options(bad)


json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
json_value = st.recursive(json_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_decoder_fuzz_any_frame_decodes_or_raises_protocol_error(data):
    proto, _ = ready_protocol(page_target_s=2.0, page_min_s=1.0, page_max_s=3.0)
    tone = (0.4 * np.sin(2 * np.pi * 500 * np.arange(3 * RATE) / RATE) * 32767).astype("<i2").tobytes()
    (first,) = proto.encode_audio(tone)
    uids = [json.loads(first)["uid"], str(uuid.uuid4())]
    message = st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["response", "error", "debug", "stream", "request"]) | json_value,
            "uid": st.sampled_from(uids) | json_value,
            "kind": st.sampled_from(["add_audio", "transcribe", "error", "authenticated", "ping"]) | json_value,
            "text": json_value,
            "error": json_value,
            "success": json_value,
        },
    )
    frames = st.one_of(message.map(json.dumps), st.text(max_size=40), st.binary(max_size=40), json_value.map(json.dumps))
    for frame in data.draw(st.lists(frames, min_size=1, max_size=5)):
        try:
            decoded = proto.decode(frame, 0.0)
        except ProtocolError as exc:
            assert isinstance(exc.error, ProviderError)
            continue
        assert isinstance(decoded, Decoded)
        assert all(isinstance(m, str) for m in decoded.send)


async def test_default_pages_are_short_for_live_captions(long_wav):
    """A caption comes when its page is transcribed: by default pages are cut
    at the first good pause after ~8 s, not near UG Labs' 30-s ceiling."""
    wav, spoken = long_wav
    async with FakeUgLabs() as fake:
        _, log, _ = await run(fake, wav)
    assert_pages_match(log.finals, spoken)
    spans = [f.end - f.start for f in log.finals if f.text]
    assert len(spans) >= 6 and max(spans) < 12.0
