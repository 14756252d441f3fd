"""StreamSession behaviour that every provider shares: backlog bounds and gaps,
retry limits, quick-death detection, replay-buffer overflow, graceful stop."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from captioner.audio.sources import WavFileSource
from captioner.captioning import CaptionJob, caption_source, make_session
from captioner.stt.events import Final, Gap, ProviderFailure
from captioner.stt.session import RetryPolicy, SessionConfig
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.base import Fault
from tests.helpers import EventLog, assert_times_match

FAST = RetryPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.05, max_attempts=3)


def session_for(url: str, key: str, **config):
    return make_session(CaptionJob("audiopod", {}, url), key, SessionConfig(url, **config), FAST)


async def test_live_backlog_overflow_drops_audio_but_keeps_time_true():
    s = session_for("ws://127.0.0.1:9/x", "k", backlog_seconds=1.0)
    log = EventLog()
    s.subscribe(log)
    second = np.zeros(16000, "<i2").tobytes()
    for _ in range(3):
        s._append(second)  # nothing is being sent: the backlog fills
    s._end_drop()  # the session's end (or a block kept again) ends the run of drops
    gaps = [e for e in log.events if isinstance(e, Gap)]
    assert [(g.start, g.end) for g in gaps] == [(1.0, 3.0)]  # blocks dropped in a row are one gap
    assert s.audio_time == 3.0  # session time counts the dropped audio
    assert s.stats.dropped_seconds == 2.0
    # positions after the hole map past it
    # the first sample kept after the hole plays at 3.0 s on the session timeline
    assert s.session_time(15999) == pytest.approx(15999 / 16000) and s.session_time(16000) == 3.0


async def test_connections_that_die_at_once_are_fatal_not_a_storm(tone_wav):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        fake.faults += [Fault("close", after_bytes=0, on_connection=i, code=1011) for i in range(5)]
        s = session_for(fake.url, fake.key)
        with pytest.raises(ProviderFailure) as info:
            await caption_source(WavFileSource(wav, speed=0), s, live=False)
    assert "died right after opening" in info.value.error.message
    assert len(fake.records) == 3


async def test_clean_close_without_the_done_message_recovers_the_tail(tmp_path):
    """AudioPod ends with `completed`; a close 1000 after our `end` without it
    may have dropped the last words (here the last utterance, said right up to
    the end, is finalized only by the end): the sound after the last final is
    sent again on a new connection, once."""
    from tests.conftest import SCRIPT
    from tests.fakes.tones import synthesize, write_wav

    audio, spoken = synthesize(SCRIPT, rate=16000, tail_s=0.05)
    wav = write_wav(tmp_path / "abrupt.wav", audio, 16000)
    async with FakeAudioPod() as fake:
        fake.close_on_end = {0}
        s = session_for(fake.url, fake.key)
        log = EventLog()
        await caption_source(WavFileSource(wav, speed=0), s, [log], live=False)
    assert len(fake.records) == 2 and s.stats.reconnects == 1
    assert fake.records[0].messages[-1] == {"type": "end"} and fake.records[1].messages[-1] == {"type": "end"}
    assert_times_match(log.finals, spoken)  # every word, once, at its time
    assert fake.violations == []


@pytest.mark.parametrize("how", ["close", "quiet"])
async def test_a_server_that_never_says_done_ends_the_session_once_the_tail_is_captioned(tone_wav, how):
    """Every word came, then a close 1000 (or silence) instead of `completed`:
    reconnecting for the missing "done" went on until the retry limit (close)
    or for ever (quiet: each connection lived long enough to reset the count)."""
    wav, spoken = tone_wav
    async with FakeAudioPod() as fake:
        if how == "close":
            fake.close_on_end = {0, 1, 2, 3}
        else:
            fake.silent_on_end = True
        s = session_for(fake.url, fake.key, drain_timeout=1.0)
        log = EventLog()
        await asyncio.wait_for(caption_source(WavFileSource(wav, speed=0), s, [log], live=False), 20)
    assert len(fake.records) == 1 and s.stats.reconnects == 0
    assert_times_match(log.finals, spoken)
    assert log.states[-1] == "closed"


async def test_unreachable_server_gives_up_after_the_retry_limit(tone_wav):
    wav, _ = tone_wav
    s = session_for("ws://127.0.0.1:9/api/v1/transcription/stream", "k")
    log = EventLog()
    with pytest.raises(ProviderFailure) as info:
        await caption_source(WavFileSource(wav, speed=0), s, [log], live=False)
    assert info.value.error.code == "CONNECT_FAILED"
    assert "gave up after 3 reconnect attempts" in info.value.error.message
    assert log.states.count("reconnecting") == 3 and log.states[-1] == "failed"


async def test_replay_overflow_is_a_visible_gap(tone_wav):
    wav, spoken = tone_wav
    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("drop", after_bytes=110000))  # ~3.4 s in, inside utterance 3's lead-in
        s = session_for(fake.url, fake.key, replay_seconds=0.5)
        log = EventLog()
        transcript = await caption_source(WavFileSource(wav, speed=4), s, [log], live=False)
    gaps = [e for e in log.events if isinstance(e, Gap)]
    # it starts in the pause after "echo" (2.86 s): the pause the provider heard is not lost audio
    assert len(gaps) == 1 and 2.86 <= gaps[0].start <= 3.2
    assert any(seg.gap and seg.text == "[…]" for seg in transcript.segments)
    words = [w.text for f in log.finals for w in f.words]
    assert words[:5] == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert len(words) == len(set(words))  # nothing doubled


async def test_stop_ends_gracefully_with_the_last_final(tone_wav):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        s = session_for(fake.url, fake.key)
        log = EventLog()
        asyncio.get_running_loop().call_later(1.9, s.stop)  # during the second utterance
        await caption_source(WavFileSource(wav, speed=1), s, [log], live=True)
    assert [f.text for f in log.finals][0] == "alpha bravo charlie"
    assert log.states[-2:] == ["draining", "closed"]
    assert fake.records[0].messages[-1] == {"type": "end"}
    assert len(fake.records[0].audio) / 32000 < 2.2


async def test_lag_is_provider_latency_plus_unsent_audio(tone_wav):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        s = session_for(fake.url, fake.key)
        at_finals = []
        s.subscribe(lambda e: at_finals.append(s.lag) if isinstance(e, Final) else None)
        await caption_source(WavFileSource(wav, speed=4), s, live=True)
    # the fake finalizes after 0.4 s of silence; frames are 0.1 s: never "behind by seconds"
    assert len(at_finals) == 3 and all(0.3 <= lag < 1.0 for lag in at_finals), at_finals
    assert s.provider_time == pytest.approx(4.96, abs=0.05)
    # audio that could not be sent (no connection) is lag
    idle = session_for("ws://127.0.0.1:9/x", "k")
    idle._append(np.zeros(24000, "<i2").tobytes())
    assert idle.lag == pytest.approx(1.5)


async def test_marked_gap_shifts_later_times():
    s = session_for("ws://127.0.0.1:9/x", "k")
    log = EventLog()
    s.subscribe(log)
    s._append(np.zeros(8000, "<i2").tobytes())
    s.mark_gap(2.0, "input device interrupted for 2.0 s")
    s._append(np.zeros(8000, "<i2").tobytes())
    (gap,) = [e for e in log.events if isinstance(e, Gap)]
    assert (gap.start, gap.end) == (0.5, 2.5)
    assert s.session_time(8000) == 2.5 and s.audio_time == 3.0


async def test_tls_certificates_are_always_verified(tmp_path, tone_wav):
    """A wss:// server with a certificate the system does not trust is refused
    at once (no retry storm, no fallback to an unverified connection)."""
    import ssl
    import subprocess

    from websockets.asyncio.server import serve

    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    reached = []

    async def handler(ws):
        reached.append(ws)

    async with serve(handler, "localhost", 0, ssl=ctx) as server:
        port = server.sockets[0].getsockname()[1]
        url = f"wss://localhost:{port}/api/v1/transcription/stream"
        s = session_for(url, "ap_key")
        with pytest.raises(ProviderFailure) as info:
            await caption_source(WavFileSource(tone_wav[0], speed=0), s, live=False)
    assert info.value.error.code == "TLS_FAILED"
    assert "self-signed" in info.value.error.message or "verify" in info.value.error.message
    assert reached == []


async def test_events_keep_the_providers_times_unless_the_timeline_moves_them():
    """A word time of 1.001 s read from milliseconds (1001 * 0.001) is not on
    the sample grid exactly; the session must not nudge it (or copy the event)
    for sub-nanosecond float noise. After a gap, the shift is real."""
    from captioner.stt.session import _Connection

    s = session_for("ws://127.0.0.1:9/x", "k")
    log = EventLog()
    s.subscribe(log)
    s._append(np.zeros(64000, "<i2").tobytes())
    conn = _Connection(s._factory(), origin=0, sent=64000)
    start = 1001 * 0.001
    assert start != 1.001 and s.session_time(round(start * 16000)) - start != 0.0
    final = Final("hi", start, 1.5, ())
    s._publish(final, conn)
    assert log.events[-1] is final
    s.mark_gap(2.0, "device lost")
    later = _Connection(s._factory(), origin=64000, sent=16000)
    s._publish(Final("yo", 0.25, 0.5, ()), later)
    assert (log.events[-1].start, log.events[-1].end) == (6.25, 6.5)


@pytest.mark.skipif(not hasattr(asyncio, "timeout"), reason="3.11+ only: on 3.10 each wait times itself, no shared scope")
async def test_a_watchdog_that_comes_due_as_a_frame_arrives_does_not_cut_the_next_wait():
    """The receive loop's timeout may fire only during a wait. When the
    watchdog comes due in the same loop turn as a frame, the frame wins and the
    due timeout must not land on the next wait (a spurious quiet period)."""
    import json

    from captioner.stt.session import _Connection

    s = session_for("ws://127.0.0.1:9/x", "k")
    conn = _Connection(s._factory(), origin=0)
    conn.ready.set()
    frames: list[asyncio.Future] = []

    class FakeWs:
        async def recv(self) -> str:
            frames.append(asyncio.get_running_loop().create_future())
            return await frames[-1]

    quiet: list[int] = []
    s._on_quiet = lambda c: quiet.append(1)  # type: ignore[method-assign]
    sender = asyncio.get_running_loop().create_future()  # still sending
    task = asyncio.ensure_future(s._receive(FakeWs(), conn, sender))
    await asyncio.sleep(0)
    assert conn.waiting and len(frames) == 1
    frames[0].set_result(json.dumps({"type": "ready"}))
    conn.recv_timeout.reschedule(asyncio.get_running_loop().time())  # the watchdog, in the same turn
    for _ in range(5):
        await asyncio.sleep(0)
    assert quiet == [] and len(frames) == 2 and not frames[1].done() and conn.waiting
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


SLOW_BACKOFF = RetryPolicy(first_delay=5.0, base_delay=5.0, max_delay=5.0, max_attempts=8, max_quick_deaths=99)


async def _stopped_during_backoff(fake: FakeAudioPod, wav) -> tuple[EventLog, float]:
    """Stop 2 s in, while the session waits out a 5-s back-off after a drop
    1 s in: (events, seconds from Stop to the end of the session)."""
    s = make_session(CaptionJob("audiopod", {}, fake.url), fake.key, SessionConfig(fake.url), SLOW_BACKOFF)
    log = EventLog()
    loop = asyncio.get_running_loop()
    stopped_at: list[float] = []
    loop.call_later(2.0, lambda: (stopped_at.append(loop.time()), s.stop()))
    await caption_source(WavFileSource(wav, speed=1), s, [log], live=True)
    return log, loop.time() - stopped_at[0]


async def test_stop_while_reconnecting_tries_once_at_once_and_finishes_the_tail(tone_wav):
    """A drop, then Stop during the back-off: the session did not end until
    the back-off and the whole reconnect schedule had run. Now one try at
    once, and the replayed audio is captioned."""
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("drop", after_bytes=32000))
        log, took = await _stopped_during_backoff(fake, wav)
    assert took < 1.5 and len(fake.records) == 2
    assert [f.text for f in log.finals] == ["alpha bravo charlie"]  # heard again on the try after Stop
    assert log.states[-1] == "closed" and "failed" not in log.states
    assert not [e for e in log.events if isinstance(e, Gap)]


async def test_stop_while_the_provider_stays_unreachable_ends_at_once_with_a_gap(tone_wav):
    """Every reconnect is refused: Stop ended only when the provider gave up
    ("gave up after 8 reconnect attempts", a failed session). Now the try
    after Stop fails, the session closes (stopped, not failed), and the
    uncaptioned audio is a Gap that says why."""
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("drop", after_bytes=32000))
        fake.faults += [Fault("close", on_connection=n, code=1011) for n in range(1, 10)]
        log, took = await _stopped_during_backoff(fake, wav)
    assert took < 1.5 and len(fake.records) == 2
    assert log.states[-1] == "closed" and "failed" not in log.states
    (gap,) = [e for e in log.events if isinstance(e, Gap)]
    assert gap.start == pytest.approx(0.0, abs=0.05) and gap.end == pytest.approx(2.0, abs=0.15)
    assert gap.reason.startswith("not captioned: stopped while the provider was unreachable")


async def test_stop_while_connecting_to_a_server_that_never_answers_ends_within_its_open_timeout(tone_wav):
    """A TCP port that accepts and then says nothing: the connection that
    was opening when Stop came is the last one tried (it took 113 s of
    attempts and back-offs before)."""
    wav, _ = tone_wav
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/stream"
    s = make_session(CaptionJob("audiopod", {}, url), "k", SessionConfig(url, open_timeout=1.0), SLOW_BACKOFF)
    log = EventLog()
    loop = asyncio.get_running_loop()
    loop.call_later(0.5, s.stop)
    t0 = loop.time()
    await caption_source(WavFileSource(wav, speed=1), s, [log], live=True)
    server.close()
    assert loop.time() - t0 < 2.0
    assert log.states[-1] == "closed" and "failed" not in log.states
    (gap,) = [e for e in log.events if isinstance(e, Gap)]
    assert gap.reason.startswith("not captioned: stopped while") and gap.end == pytest.approx(0.5, abs=0.15)


async def test_a_final_with_lost_audio_inside_is_split_at_the_hole():
    """An outage longer than the backlog drops audio; the replay sends what
    was kept before the hole and what came after, and the provider heard one
    utterance across it. One offset from its start put the words after the
    hole (here 30 s later) where the hole began, in a cue cut short at the
    `[…]`. Each side of the hole is now a final on its own side; an untimed
    final's ends are placed apart."""
    from captioner.stt.events import Word
    from captioner.stt.session import _Connection

    s = session_for("ws://127.0.0.1:9/x", "k")
    log = EventLog()
    s.subscribe(log)
    s._append(np.zeros(32000, "<i2").tobytes())  # 2 s
    s._add_hole(30 * 16000, "replay buffer exceeded; audio lost")  # 30 s dropped in an outage
    s._append(np.zeros(32000, "<i2").tobytes())  # 2 s more
    conn = _Connection(s._factory(), origin=16000, sent=48000)  # the replay: from 1 s, 3 s of audio
    words = (Word("lima", 0.2, 0.5), Word("juliet", 0.6, 0.9), Word("papa", 1.1, 1.4), Word("hotel", 1.5, 1.8))
    s._publish(Final("Lima juliet papa hotel.", 0.2, 1.8, words), conn)
    first, second = log.finals
    assert [(w.text, w.start, w.end) for w in first.words] == [("lima", 1.2, 1.5), ("juliet", 1.6, 1.9)]
    assert [(w.text, w.start, w.end) for w in second.words] == [("papa", 32.1, 32.4), ("hotel", 32.5, 32.8)]
    assert (first.text, first.start, first.end, first.end_of_utterance) == ("lima juliet", 1.2, 1.9, False)
    assert (second.text, second.start, second.end, second.end_of_utterance) == ("papa hotel", 32.1, 32.8, True)
    s._publish(Final("untimed", 0.5, 2.5, (), timed=False), conn)
    assert (log.finals[-1].start, log.finals[-1].end) == (1.5, 33.5)
    s._publish(Final("after", 2.1, 2.5, (Word("after", 2.1, 2.5),)), conn)  # wholly after the hole: one piece
    assert (log.finals[-1].text, log.finals[-1].start) == ("after", 33.1)
