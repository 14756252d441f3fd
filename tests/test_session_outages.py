"""StreamSession across many drops and long outages: a connection that
captioned is healthy whatever its age, a live session outlasts an outage of
any length, and silence the provider already heard is neither replayed nor
reported lost."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import pytest

from captioner.audio.sources import WavFileSource
from captioner.captioning import CaptionJob, caption_source, make_session
from captioner.stt.events import Gap, ProviderFailure
from captioner.stt.session import RetryPolicy, SessionConfig, _unreachable
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.base import Fault
from tests.fakes.tones import synthesize, write_wav
from tests.helpers import EventLog, assert_times_match

UTTERANCES = [["alpha", "bravo"], ["charlie", "delta"], ["echo", "foxtrot"], ["golf", "hotel"], ["india", "juliet"],
              ["kilo", "lima"], ["mike", "november"], ["oscar", "papa"]]
BYTES_PER_S = 32000  # what the fake counts: 16 kHz Int16 mono


def _session(fake: FakeAudioPod, retry: RetryPolicy, **config):
    return make_session(CaptionJob("audiopod", {}, fake.url), fake.key, SessionConfig(fake.url, **config), retry)


@pytest.mark.parametrize("retry", [
    # unpaced, every connection dies within quick_death (wall time) of opening
    RetryPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.05),
    # more drops than attempts allowed, none living `healthy_after`
    RetryPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.05, max_attempts=2, quick_death=0.0),
], ids=["quick-deaths", "attempt-limit"])
async def test_connections_that_caption_before_each_drop_are_healthy(tmp_path, retry):
    """A drop every 2.5 s of audio on each of 5 connections, each having
    captioned an utterance first: the session failed with "3 connections in a
    row died right after opening" (unpaced) or "gave up after 2 reconnect
    attempts"; now every word arrives once, at its time."""
    audio, spoken = synthesize(UTTERANCES, rate=16000)
    wav = write_wav(tmp_path / "talk.wav", audio, 16000)
    async with FakeAudioPod() as fake:
        fake.faults += [Fault("drop", after_bytes=int(2.5 * BYTES_PER_S), on_connection=i) for i in range(5)]
        s = _session(fake, retry)
        log = EventLog()
        await asyncio.wait_for(caption_source(WavFileSource(wav, speed=0), s, [log], live=False), 30)
    assert len(fake.records) == 6 and s.stats.reconnects == 5
    assert_times_match(log.finals, spoken)
    assert not [e for e in log.events if isinstance(e, Gap)]
    assert log.states[-1] == "closed"


class Network:
    """A TCP relay in front of a fake that can be switched off as Wi-Fi is:
    off, its listener is closed (connections refused) and open connections
    are reset; on again, it listens on the same port."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port, self.port = upstream_port, 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._hung: set[asyncio.StreamWriter] = set()

    async def on(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def off(self) -> None:
        assert self._server is not None
        self._server.close()
        self.reset()

    def reset(self) -> None:
        """Open connections are reset; new ones still get through."""
        for writer in list(self._writers):
            writer.transport.abort()

    def hang(self) -> None:
        """Open connections go quiet both ways, as a vanished route does
        (nothing is reset or refused); new ones still get through."""
        self._hung |= self._writers

    def url(self, fake: FakeAudioPod) -> str:
        return fake.url.replace(f":{fake.port}/", f":{self.port}/")

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if dst in self._hung or writer in self._hung:
                        continue
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


FAST = RetryPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.05, max_attempts=3)


async def _through_an_outage(tmp_path, live: bool, off_at: float, on_at: float, backlog_seconds: float = 30.0):
    """The talk, paced at 2x, through a network that is off from `off_at` to
    `on_at` (s of wall time): (session, events, the error or None, truth)."""
    audio, spoken = synthesize(UTTERANCES, rate=16000)
    wav = write_wav(tmp_path / "talk.wav", audio, 16000)
    async with FakeAudioPod() as fake:
        net = Network(fake.port)
        await net.on()
        url = net.url(fake)
        s = make_session(CaptionJob("audiopod", {}, url), fake.key, SessionConfig(url, backlog_seconds=backlog_seconds), FAST)
        log = EventLog()
        loop = asyncio.get_running_loop()
        loop.call_later(off_at, net.off)
        back = loop.call_later(on_at, lambda: asyncio.ensure_future(net.on()))
        error = None
        try:
            await asyncio.wait_for(caption_source(WavFileSource(wav, speed=2), s, [log], live=live), 30)
        except ProviderFailure as exc:
            error = exc
        back.cancel()
        net.off()
    return s, log, error, spoken


async def test_a_live_session_outlasts_an_outage_and_resumes_on_its_clock(tmp_path):
    """Network off for 2.5 s (5 s of audio), far past the 3 attempts allowed:
    the live session failed ("gave up after 3 reconnect attempts") and
    nothing resumed. Now it keeps trying, says why, and captions everything
    once the network is back, at the words' times (the replay buffer held
    the outage's audio: no gap)."""
    s, log, error, spoken = await _through_an_outage(tmp_path, live=True, off_at=1.5, on_at=4.0)
    assert error is None
    assert s.stats.reconnects > 3  # past the file's limit
    reconnecting = [e.detail for e in log.events if getattr(e, "state", None) is not None and e.state.value == "reconnecting"]
    assert reconnecting and all(d for d in reconnecting)  # each says why
    assert any("connection refused" in d for d in reconnecting), reconnecting
    assert "failed" not in log.states and log.states[-1] == "closed"
    assert "live" in log.states[log.states.index("reconnecting"):]
    assert_times_match(log.finals, spoken)
    assert not [e for e in log.events if isinstance(e, Gap)]


async def test_a_file_still_gives_up_after_the_attempt_limit(tmp_path):
    s, log, error, _ = await _through_an_outage(tmp_path, live=False, off_at=1.5, on_at=4.0)
    assert error is not None and "gave up after 3 reconnect attempts" in error.error.message
    assert log.states[-1] == "failed"


async def test_a_live_session_that_never_got_through_still_gives_up(tone_wav):
    """A wrong endpoint is not an outage: said at once, not retried for ever."""
    wav, _ = tone_wav
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    url = f"ws://127.0.0.1:{port}/api/v1/transcription/stream"
    s = make_session(CaptionJob("audiopod", {}, url), "k", SessionConfig(url), FAST)
    with pytest.raises(ProviderFailure) as info:
        await asyncio.wait_for(caption_source(WavFileSource(wav, speed=1), s, [], live=True), 10)
    assert info.value.error.code == "CONNECT_FAILED" and "gave up after 3 reconnect attempts" in info.value.error.message


# A back-off that waits 4-8 s after the first quick retry, and tries every 0.15-0.3 s while nothing answers.
SLOW_BACKOFF = RetryPolicy(first_delay=0.01, base_delay=8.0, max_delay=8.0, max_attempts=3, unreachable_delay=0.3)


async def _live_talk_with(fake: FakeAudioPod, url: str, tmp_path, at: float, fault, mend, log: EventLog):
    """The talk at 2x, live, to `url`; `fault()` at `at` s of wall time and
    `mend()` 1.5 s later. Returns the loop times (mended, first "live" after)."""
    audio, spoken = synthesize(UTTERANCES, rate=16000)
    wav = write_wav(tmp_path / "talk.wav", audio, 16000)
    loop = asyncio.get_running_loop()
    s = make_session(CaptionJob("audiopod", {}, url), fake.key, SessionConfig(url), SLOW_BACKOFF)
    times: dict[str, float] = {}

    def watch(event) -> None:
        if getattr(event, "state", None) is not None and event.state.value == "live" and "mended" in times:
            times.setdefault("live", loop.time())

    def mended() -> None:
        times["mended"] = loop.time()
        mend()

    loop.call_later(at, fault)
    loop.call_later(at + 1.5, mended)
    await asyncio.wait_for(caption_source(WavFileSource(wav, speed=2), s, [log, watch], live=True), 30)
    return s, spoken, times


async def test_captions_resume_soon_after_the_network_comes_back(tmp_path):
    """Wi-Fi off for 1.5 s under a back-off that waits 4-8 s: nothing
    answered (connection refused), so each try cost the service nothing,
    and the session tried every 0.3 s at most. It was live again within a
    second of the network; it waited out the 4-8 s before."""
    async with FakeAudioPod() as fake:
        net = Network(fake.port)
        await net.on()
        log = EventLog()
        s, spoken, times = await _live_talk_with(fake, net.url(fake), tmp_path, 1.0, net.off,
                                                 lambda: asyncio.ensure_future(net.on()), log)
        net.off()
    assert times["live"] - times["mended"] < 1.0, times
    assert s.stats.reconnects >= 3 and log.states[-1] == "closed"
    assert_times_match(log.finals, spoken)


async def test_a_service_that_answers_but_fails_is_spared_the_quick_retries(tmp_path):
    """The same outage, but the service answers every handshake with 503:
    it is up and struggling, so the back-off holds (one quick retry, then
    4-8 s), however soon a try would be answered."""
    async with FakeAudioPod() as fake:
        net = Network(fake.port)
        await net.on()
        plain, refused = fake.check_request, []

        def busy(request):
            refused.append(request)
            return 503, "overloaded"

        def fail() -> None:
            fake.check_request = busy
            net.reset()  # the open connection drops too

        def mend() -> None:
            fake.check_request = plain

        log = EventLog()
        s, spoken, times = await _live_talk_with(fake, net.url(fake), tmp_path, 1.0, fail, mend, log)
        net.off()
    assert len(refused) <= 2, len(refused)  # the quick first retry, then the back-off
    assert log.states[-1] == "closed"
    assert_times_match(log.finals, spoken)


async def test_a_route_that_vanishes_is_unanswered_pings_not_a_broken_protocol(tmp_path, monkeypatch):
    """The connection goes quiet both ways (a route gone during sleep): our
    keepalive pings go unanswered and websockets closes it with 1011
    "keepalive ping timeout". That was reported as "the server sent data
    that breaks the WebSocket protocol"; the server sent nothing at all."""
    from captioner.stt.providers.audiopod import AudioPodProtocol

    monkeypatch.setattr(AudioPodProtocol, "ping_interval", 0.5)
    async with FakeAudioPod() as fake:
        net = Network(fake.port)
        await net.on()
        log = EventLog()
        s, spoken, _ = await _live_talk_with(fake, net.url(fake), tmp_path, 1.0, net.hang, lambda: None, log)
        net.off()
    reconnecting = [e.detail for e in log.events if getattr(e, "state", None) is not None and e.state.value == "reconnecting"]
    assert reconnecting == ["the server stopped answering (no reply to a keepalive ping within 0.5 s)"], reconnecting
    assert s.stats.reconnects == 1 and log.states[-1] == "closed"
    assert_times_match(log.finals, spoken)


async def test_the_watchdog_gives_the_server_a_new_window_after_this_process_stood_still(tmp_path):
    """The server goes silent, then this process stands still for 3 s (a
    laptop lid): its 1.5-s watchdog came due during the freeze and fired
    the moment it woke ("no reply … while audio was flowing"), before the
    server could have said anything. It now waits a whole window from the
    wake, then reconnects."""
    import time

    audio, _ = synthesize(UTTERANCES, rate=16000)
    wav = write_wav(tmp_path / "talk.wav", audio, 16000)
    loop = asyncio.get_running_loop()
    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("silence", after_bytes=int(0.5 * BYTES_PER_S)))
        s = _session(fake, FAST, watchdog_seconds=1.5)
        woke: list[float] = []
        dog: list[float] = []

        def freeze() -> None:
            time.sleep(3.0)  # the whole process stands still
            woke.append(loop.time())

        def watch(event) -> None:
            if getattr(event, "state", None) is not None and event.state.value == "reconnecting" and "no reply" in event.detail:
                dog.append(loop.time())

        loop.call_later(0.6, freeze)
        await asyncio.wait_for(caption_source(WavFileSource(wav, speed=2), s, [watch], live=True), 30)
    assert dog and woke and dog[0] - woke[0] >= 1.2, (dog, woke)


@pytest.mark.parametrize("exc, unreachable", [
    (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), True),
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), True),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), True),
    (OSError(errno.EHOSTUNREACH, "No route to host"), True),
    (asyncio.TimeoutError(), True),
    (ConnectionResetError(errno.ECONNRESET, "reset by peer"), False),  # something answered
    (ssl.SSLError(1, "handshake failure"), False),
    (OSError("no errno"), False),
])
def test_what_counts_as_nothing_answering(exc, unreachable):
    assert _unreachable(exc) is unreachable


def _talk_quiet_talk(tmp_path, quiet: float):
    """Two utterances, `quiet` s of digital silence, one more: (wav, truth)."""
    import numpy as np

    first, spoken = synthesize([["alpha", "bravo", "charlie"], ["delta", "echo"]], rate=16000)
    last, later = synthesize([["golf", "hotel", "india"]], rate=16000)
    offset = (len(first) + int(quiet * 16000)) / 16000
    spoken.words.extend((w, a + offset, b + offset) for w, a, b in later.words)
    audio = np.concatenate([first, np.zeros((int(quiet * 16000), 1), np.float32), last])
    return write_wav(tmp_path / "quiet.wav", audio, 16000), spoken


async def test_silence_the_provider_heard_is_neither_replayed_nor_lost(tmp_path):
    """A drop 8 s into a 10-s pause, with a 2-s replay buffer: the replay
    re-sent the pause's last 2 s and called the 6 s before them "replay
    buffer exceeded; audio lost", although all of it had reached the
    provider. Now nothing is lost, and of the pause only its last 0.5 s
    (a lead-in for the provider) is sent again."""
    wav, spoken = _talk_quiet_talk(tmp_path, quiet=10.0)
    pause_end = spoken.words[5][1]  # "golf"
    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("drop", after_bytes=int((pause_end - 2.0) * BYTES_PER_S)))
        s = _session(fake, FAST, replay_seconds=2.0)
        log = EventLog()
        await asyncio.wait_for(caption_source(WavFileSource(wav, speed=10), s, [log], live=True), 30)
    assert not [e for e in log.events if isinstance(e, Gap)]
    assert_times_match(log.finals, spoken)
    sent_before = len(fake.records[0].audio) / BYTES_PER_S
    assert len(fake.records) == 2
    assert len(fake.records[1].audio) / BYTES_PER_S == pytest.approx(s.audio_time - sent_before + 0.5, abs=0.15)


async def test_speech_after_the_last_final_is_still_replayed(tmp_path):
    """The drop comes inside "golf hotel india", before its final: the
    replay starts just before its first sound, not at the end of the pause
    (nor at the last final, 10 s of silence earlier)."""
    wav, spoken = _talk_quiet_talk(tmp_path, quiet=10.0)
    golf = spoken.words[5][1]
    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("drop", after_bytes=int((golf + 0.4) * BYTES_PER_S)))
        s = _session(fake, FAST, replay_seconds=2.0)
        log = EventLog()
        await asyncio.wait_for(caption_source(WavFileSource(wav, speed=10), s, [log], live=True), 30)
    assert not [e for e in log.events if isinstance(e, Gap)]
    assert_times_match(log.finals, spoken)
    replayed = s.audio_time - len(fake.records[1].audio) / BYTES_PER_S  # where the second connection began
    assert golf - 0.6 <= replayed <= golf - 0.3


async def test_a_session_limit_met_in_a_quiet_stretch_rolls_over_and_goes_on(tmp_path):
    """AudioPod sessions of 3 s of audio, a 8-s pause: the limit came in the
    pause, the next session was sent the pause again from the last final,
    met the limit at once, and the session failed with "3 connections in a
    row died right after opening". Now each new session starts at the audio
    not yet heard, and every word arrives once, at its time."""
    wav, spoken = _talk_quiet_talk(tmp_path, quiet=8.0)
    async with FakeAudioPod(max_duration_seconds=3.0) as fake:
        s = _session(fake, FAST)
        log = EventLog()
        await asyncio.wait_for(caption_source(WavFileSource(wav, speed=10), s, [log], live=True), 30)
        per_connection = [len(r.audio) / BYTES_PER_S for r in fake.records]
    assert log.states[-1] == "closed" and s.stats.rollovers >= 3
    assert_times_match(log.finals, spoken)
    assert not [e for e in log.events if isinstance(e, Gap)]
    assert sum(per_connection) < s.audio_time + 3.0, per_connection  # the pause was not sent again and again


async def test_an_outage_longer_than_the_backlog_is_one_gap_not_one_per_block(tmp_path):
    """The talk at 2x through 3 s off (6 s of audio) with a 1-s backlog
    bound: each 100-ms block dropped was a Gap of its own (a "[…]" each in
    the transcript) and a hole every later time walked. Now one Gap, one
    hole, and the words after it still at their times."""
    s, log, error, spoken = await _through_an_outage(tmp_path, live=True, off_at=1.5, on_at=4.5, backlog_seconds=1.0)
    assert error is None
    (gap,) = [e for e in log.events if isinstance(e, Gap)]
    assert gap.reason == "network too slow; audio dropped" and 3.5 < gap.end - gap.start < 5.5
    assert len(s._holes) == 1 and s.stats.gaps == 1
    # Utterances heard after the gap, whole or in part: "mike november" began
    # 0.1 s before its end. Before, the final across the hole put its words
    # where the hole began (4 s early); split at the hole, they are after it.
    after = [w for u in spoken.utterances if u[-1][1] >= gap.end for w in u]
    got = [w for f in log.finals for w in f.words if w.start >= gap.end]
    assert [w.text for w in got] == [w for w, _, _ in after] and len(after) == 4
    assert all(abs(w.start - max(a, gap.end)) < 0.08 for w, (_, a, _) in zip(got, after))


async def test_connections_that_heard_a_pause_before_each_drop_are_healthy(tmp_path):
    """A file read at 10x with a 40-s pause and a drop every 7 s of audio
    in it: no final can come in a pause, so each connection "died right
    after opening" by wall time and the third failed the session. Each
    heard 6.5 s of silence: healthy, and every word arrives once."""
    wav, spoken = _talk_quiet_talk(tmp_path, quiet=40.0)
    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("drop", after_bytes=int(4.0 * BYTES_PER_S)))
        fake.faults += [Fault("drop", after_bytes=7 * BYTES_PER_S, on_connection=i) for i in range(1, 5)]
        s = _session(fake, FAST)
        log = EventLog()
        await asyncio.wait_for(caption_source(WavFileSource(wav, speed=10), s, [log], live=False), 30)
    assert len(fake.records) == 6 and log.states[-1] == "closed"
    assert_times_match(log.finals, spoken)
    assert not [e for e in log.events if isinstance(e, Gap)]


# ---------------------------------------------------- a connection gone quiet


async def _max_lag_while(session, task, seconds: float) -> list[float]:
    seen = []
    end = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < end and not task.done():
        await asyncio.sleep(0.25)
        seen.append(session.lag)
    return seen


async def test_speech_a_silent_connection_does_not_answer_shows_as_lag(tone_wav):
    """A network that dies without a reset leaves the socket open and quiet:
    until the watchdog (30 s) the state stays live. Sound sent with no word
    back for more than the protocol's reply_within makes the lag grow, so
    the overlay says "behind by N s" instead of a plain "Live"."""
    from captioner.captioning import CaptionJob, caption_source, make_session
    from captioner.audio.sources import WavFileSource
    from tests.fakes.audiopod import FakeAudioPod
    from tests.fakes.base import Fault

    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("silence", after_bytes=16000))  # half a second in: nothing more comes back
        session = make_session(CaptionJob("audiopod", {}, fake.url), fake.key, SessionConfig(fake.url, watchdog_seconds=60))
        task = asyncio.ensure_future(caption_source(WavFileSource(wav, speed=1), session, [], live=True))
        seen = await _max_lag_while(session, task, 6.5)
        session.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    behind = [x for x in seen if x > 3.0]
    assert len(behind) >= 3 and behind[-1] > behind[0] + 0.5, seen  # and it grows with the unanswered speech


async def test_a_quiet_room_and_a_healthy_connection_are_not_lag(tone_wav, tmp_path):
    from captioner.captioning import CaptionJob, caption_source, make_session
    from captioner.audio.sources import WavFileSource
    from tests.fakes.audiopod import FakeAudioPod
    from tests.fakes.tones import write_wav

    import numpy as np

    wav, _ = tone_wav
    quiet = write_wav(tmp_path / "quiet.wav", np.zeros((16000 * 6, 1), np.float32), 16000)
    for source in (wav, quiet):
        async with FakeAudioPod() as fake:
            session = make_session(CaptionJob("audiopod", {}, fake.url), fake.key, SessionConfig(fake.url))
            task = asyncio.ensure_future(caption_source(WavFileSource(source, speed=1), session, [], live=True))
            seen = await _max_lag_while(session, task, 5.5)
            session.stop()
            await asyncio.gather(task, return_exceptions=True)
        assert seen and max(seen) < 2.0, (source.name, seen)
