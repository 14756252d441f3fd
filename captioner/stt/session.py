"""StreamSession: one captioning session over one or more provider connections.

Everything that is hard about streaming lives here once, for every provider:
the socket, concurrent send and receive, the sample clock, retries with
backoff, replay of the audio after the last final on reconnect, the
dead-connection watchdog, and the end-of-stream drain.

The clock is samples, not wall time. `stream position` counts the samples that
were kept for sending; `session time` also counts audio that had to be dropped
(a bounded backlog overflowed), so caption times always match the source.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import random
import re
import socket
import ssl
import time
from dataclasses import dataclass, field, replace
from typing import Any, AsyncIterator, Callable
from urllib.parse import urlsplit

import numpy as np
import websockets
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidProxy,
    InvalidProxyStatus,
    InvalidStatus,
    InvalidURI,
)
from websockets.proxy import get_proxy
from websockets.uri import parse_uri

from captioner.stt.events import (
    CaptionEvent,
    ErrorKind,
    Final,
    Gap,
    Partial,
    ProviderError,
    ProviderFailure,
    SessionState,
    SpeechStarted,
    SpeechStopped,
    Usage,
    Word,
)
from captioner.stt.core import SessionCore
from captioner.stt.http import NotHttp, ProxyRefused, post_json
from captioner.stt.paging import frame_levels
from captioner.stt.pcm_buffer import PcmBuffer
from captioner.stt.protocol import ProtocolError, WireProtocol, http_detail, short_text
from captioner.stt.tls import client_context
from captioner.stt.words import join_words
from captioner.stt.urls import proxy_address, proxy_for, proxy_secrets, redact_text, remember_secret, validate_endpoint

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RetryPolicy:
    """Backoff with jitter: the first retry is fast, later ones back off to a cap.

    A connection that delivered a final (one that moved the captioned
    position) was healthy however briefly it lived: the attempt count, the
    back-off and the quick-death count start again after it. Wall time alone
    misjudged both ways: a file sent unpaced captions a minute of audio in
    under `quick_death`, and a real-time connection that captioned its 15 s
    before each drop never reached `healthy_after`, so such sessions failed
    ("died right after opening", "gave up after 8 reconnect attempts")
    although every connection worked. A connection that captions something
    every time cannot loop for ever on a file: each one moves the position.
    So does one whose audio the provider heard for `healthy_progress`
    seconds of silence (no final can come in a pause).

    The back-off spares a service that answers but fails. When nothing
    answers at all (no route, no name, refused, no reply to the connect),
    a try costs the service nothing, so a live session that was captioning
    tries every `unreachable_delay` s at most: captions come back within
    ~2 s of the Wi-Fi, not up to `max_delay` (10 s) later."""

    first_delay: float = 0.05
    base_delay: float = 0.5
    max_delay: float = 10.0
    max_attempts: int = 8  # per outage
    healthy_after: float = 20.0  # seconds live that end an outage
    quick_death: float = 2.0  # a connection that dies this soon after opening...
    max_quick_deaths: int = 3  # ...this many times in a row is a fatal error
    healthy_progress: float = 5.0  # seconds of audio covered (silence heard) that make a connection healthy
    unreachable_delay: float = 2.0  # the cap while the service cannot be reached at all (live, once captioning)

    def delay(self, attempt: int) -> float:
        if attempt <= 0:
            return self.first_delay
        # (the exponent bounded: a live session retries for hours, and 2.0 ** 1024 overflows)
        return min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 64)) * random.uniform(0.5, 1.0)


@dataclass(slots=True)
class SessionConfig:
    endpoint: str
    replay_seconds: float = 60.0  # audio kept after the last final, for replay
    backlog_seconds: float = 30.0  # unsent audio kept while the network lags
    watchdog_seconds: float = 30.0  # no server frame while audio flows → dead
    open_timeout: float = 10.0
    drain_timeout: float = 30.0  # after end-of-stream, the longest wait for "done"
    untimed_margin: float = 1.5  # replay margin kept behind finals that carry no times
    # The fastest a file goes (x real time) to a protocol whose times are
    # estimates, instead of its own `estimate_pace`; 0: unpaced (times wrong:
    # a benchmark of the client's own cost; it also lifts a protocol's
    # `min_frame_interval`). Others are never paced.
    estimate_pace: float | None = None
    pace_burst: float = 0.1  # a paced file goes in bursts this long (s of audio), as a device's blocks do
    file_read_ahead_paced: float = 2.0  # a paced file's read-ahead: a stop ends within it
    # A live source's replay (and the audio that waited during the outage) to
    # such a protocol goes at up to this many times its pace, to catch up.
    live_catch_up: float = 2.0
    # Provider times may stray this far (s) outside the audio sent on their
    # connection (rounding, frame edges); beyond it a final's times are impossible.
    time_tolerance: float = 0.5
    # Times the audio after the last final is sent again when a provider
    # finished (or went quiet) after end of stream with sound left uncaptioned.
    # One: a server that went quiet once answers the replay; one that
    # answers it with nothing again most likely heard no speech (applause, noise).
    tail_retries: int = 1


@dataclass(slots=True)
class SessionStats:
    connections: int = 0
    reconnects: int = 0
    rollovers: int = 0
    bytes_sent: int = 0
    messages_sent: int = 0
    dropped_seconds: float = 0.0
    gaps: int = 0
    bad_frames: int = 0


def _proxy_refused(status: int) -> ProviderError:
    """The proxy answered CONNECT with an error. 407 (it wants credentials
    it was not given, or refused those it was) will not pass by retrying;
    a 502/503/504 from a busy or unreachable upstream may."""
    if status == 407:
        return ProviderError(
            "PROXY_AUTH",
            "the proxy asks for a user name and password (HTTP 407): put them in the proxy setting, "
            "as https_proxy=http://<user>:<password>@<proxy>:<port>",
        )
    kind = ErrorKind.RETRYABLE if status >= 500 else ErrorKind.FATAL
    return ProviderError("PROXY_REFUSED", f"the proxy refused the connection (HTTP {status})", kind)


class _Retry(Exception):
    def __init__(self, error: ProviderError, opened_at: float | None, unreachable: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.opened_at = opened_at
        #: Nothing answered (no route, no name, refused, the connect timed
        #: out): a try cost the service nothing (`RetryPolicy.unreachable_delay`).
        self.unreachable = unreachable


class _Done(Exception):
    """The connection finished its work (end of stream drained)."""


@dataclass(slots=True)
class _Connection:
    protocol: WireProtocol
    origin: int  # stream position of this connection's first sample
    sent: int = 0  # samples sent on this connection
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ending: bool = False
    ending_at: float = 0.0  # monotonic time the end-of-stream messages went out
    opened_at: float | None = None
    last_frame_at: float = 0.0
    sent_at_last_frame: int = 0
    next_send: float = 0.0  # loop time the next frame of a paced file may go
    audio_frame_at: float = -math.inf  # loop time the latest audio frame went (`min_frame_interval`)
    catching_up: bool = False  # a live source's replay/backlog goes paced until this connection caught up
    # Where a final with impossible times is placed from (this connection's
    # time): the end of its latest final, or the start of an untimed one whose
    # end is only where the clock stood (not an estimate paced to hold).
    placed_to: float = 0.0
    recv_timeout: Any = None  # the receive loop's asyncio.timeout() (3.11+), ended only during a wait
    waiting: bool = False  # a recv() is pending: only then may the timeout fire
    recv_cut_by_sender: bool = False  # the wait began while sending: the sender's end cuts it short
    recv_due: float = 0.0  # loop time at which the pending recv() times out
    recv_window: float = 0.0  # how long that wait was given when it was armed
    watch_handle: asyncio.TimerHandle | None = None
    watch_at: float = 0.0
    awaiting_credit: bool = False  # the sender waits for the protocol to take audio again
    captioned: int = 0  # finals on this connection that moved the covered position (a healthy connection)
    covered_from: int = 0  # the covered position when it opened

    def wake_receiver(self, _: object = None) -> None:
        """End the pending receive wait now (the timeout that applies changed)."""
        if self.waiting and self.recv_cut_by_sender and self.recv_timeout is not None:
            self.recv_timeout.reschedule(asyncio.get_running_loop().time())

    def arm(self, loop: asyncio.AbstractEventLoop, window: float) -> None:
        """Time out the pending recv() `window` seconds from now. One timer
        serves many frames: it is moved only when due comes earlier, and when
        it fires before the (since extended) due it re-arms itself. A timer
        per frame cost ~13 % of the client's CPU at 10 frames a second."""
        due = self.recv_due = loop.time() + window
        self.recv_window = window
        if self.watch_handle is not None and self.watch_at <= due:
            return
        if self.watch_handle is not None:
            self.watch_handle.cancel()
        self.watch_at = due
        self.watch_handle = loop.call_at(due, self._watch, loop)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self.watch_handle = None
        if not self.waiting or self.recv_timeout is None:
            return  # no receive pending: the next one arms again
        now = loop.time()
        if _stood_still(now - self.recv_due, self.recv_window):
            # This process stood still (the computer slept, it was stopped or
            # starved): the server had no chance to answer. Not a silent server:
            # it gets a whole window from now.
            self.recv_due = now + self.recv_window
            self.watch_at = self.recv_due
            self.watch_handle = loop.call_at(self.recv_due, self._watch, loop)
        elif now >= self.recv_due:
            self.recv_timeout.reschedule(now)  # the pending recv() ends with TimeoutError
        else:
            self.watch_at = self.recv_due
            self.watch_handle = loop.call_at(self.recv_due, self._watch, loop)


_HAS_TIMEOUT = hasattr(asyncio, "timeout")  # Python 3.11+
_STOP_OPEN_TIMEOUT = 5.0  # opening the one connection tried after Stop
_STOOD_STILL = 1.0  # a timer this late (s) means the process itself stood still
_FINALS_BATCH = 10.0  # s of room finals make before a file held back for them reads on
_STALL_BACKLOG = 0.5  # s of live audio waiting to go: the process stood still (paced out, `_catch_up_pace`)
# End of stream: sound (20 ms frames at or above this level, this much in all)
# after the latest final's end, past this grace, was not captioned.
_TAIL_LEVEL_DBFS = -40.0
_TAIL_SOUND = 0.25
_TAIL_GRACE = 0.25
# Silence the provider already heard counts as covered (see `_cover_quiet`).
# Quieter than this is never speech (as paging judges pauses): a conservative
# bound, lower than the tail's, so quiet speech is still replayed.
_QUIET_DBFS = -50.0
_QUIET_POWER = 32768.0**2 * 10 ** (_QUIET_DBFS / 10)  # that mean power of Int16 samples
_SOUND_LEAD = 0.5  # a replay starts this long before the first sound no final covers
_OLD_HTTP = re.compile(r"expected HTTP/1\.1: HTTP/1\.0 (\d{3})")  # websockets' words for an HTTP/1.0 reply


def _stood_still(late: float, window: float) -> bool:
    """Whether a receive timer that fired `late` seconds after it was due
    means this process stood still, not that the server was silent."""
    return late > max(_STOOD_STILL, window / 2)


async def _wait_at_most(event: asyncio.Event, seconds: float) -> None:
    """`event.wait()` that raises TimeoutError after `seconds`. On 3.11+ a
    cancel scope: `wait_for` made a task per wait (a file held back for
    finals waits once a final)."""
    if _HAS_TIMEOUT:
        async with asyncio.timeout(seconds):
            await event.wait()
    else:
        await asyncio.wait_for(event.wait(), seconds)


def _final_times(final: Final) -> Any:
    yield "start", final.start
    yield "end", final.end
    for word in final.words:
        yield "a word's start", word.start
        yield "a word's end", word.end


def _clamped(final: Final, sent: float) -> Final:
    """A final whose times stray within the tolerance, put inside [0, sent]."""
    def at(t: float) -> float:
        return min(max(t, 0.0), sent)

    words = tuple(replace(w, start=at(w.start), end=at(w.end)) for w in final.words)
    return replace(final, start=at(final.start), end=at(final.end), words=words)


_CHECK_PROXY = "check the proxy setting (https_proxy, all_proxy or the system's)"


_NO_ROUTE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.ETIMEDOUT,
                       errno.EADDRNOTAVAIL})


def _unreachable(exc: BaseException) -> bool:
    """Whether a failed connect or login means nothing answered: no name,
    no route, refused, or no reply in time (each such try already took the
    whole open timeout). A TLS, HTTP or proxy answer is not this."""
    if isinstance(exc, (socket.gaierror, ConnectionRefusedError, asyncio.TimeoutError, TimeoutError)):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and exc.errno in _NO_ROUTE


def _refused(url: str) -> str:
    """Why a connection to `url` was refused, naming the proxy when there is one."""
    proxy = proxy_address(url)
    if proxy is not None:
        return f"nothing is listening on the proxy at {proxy} (connection refused): {_CHECK_PROXY}"
    return f"nothing is listening on {_host_port(url)} (connection refused)"


def _host_port(url: str) -> str:
    """host:port of an endpoint, as a message names it (no path, no query)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if parts.scheme in ("wss", "https") else 80)
    host = parts.hostname or ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _path(url: str) -> str:
    path = urlsplit(url).path
    return path if path not in ("", "/") else ""


async def _speaks_tls(url: str) -> bool:
    """Whether the server of a ws:// (or login http://) URL that hung up on
    the handshake completes a TLS handshake instead: then the URL wants
    wss://. A probe for the message only: nothing is sent over it and its
    certificate does not matter (it is never trusted with anything). Not
    through a proxy."""
    if url.startswith("http:"):
        url = "ws:" + url[5:]
    proxy = proxy_for(url)
    if proxy is True:  # websockets' own lookup decides
        with contextlib.suppress(Exception):
            proxy = get_proxy(parse_uri(url))
    if proxy is not None:
        return False
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=probe), 3.0)
    except (OSError, asyncio.TimeoutError, ValueError):
        return False
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    return True


class StreamSession(SessionCore):
    """Streams PCM to a provider and publishes normalized events.

    Feed it an async iterator of Int16LE mono PCM at `sample_rate` with `run()`;
    subscribe listeners for events. `stop()` ends the stream gracefully (the
    provider flushes its last finals); cancelling `run()` aborts at once.
    """

    def __init__(
        self,
        protocol_factory: Callable[[], WireProtocol],
        config: SessionConfig,
        retry: RetryPolicy | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        validate_endpoint(config.endpoint)
        self._factory = protocol_factory
        self.config = config
        self.retry = retry or RetryPolicy()
        # A proxy's password too: an error about the proxy quotes its setting.
        self._secrets = tuple(s for s in secrets if s) + proxy_secrets()
        probe = protocol_factory()
        self._init_core(probe.sample_rate)
        self._frame_samples = max(1, probe.sample_rate * probe.frame_ms // 1000)
        self._max_frame_samples = max(self._frame_samples, probe.sample_rate * (probe.max_frame_ms or 0) // 1000)
        self._replay_extra = max(0.0, probe.replay_extra_seconds)
        # Sample counts from the (fixed) config, taken once: they are checked per block.
        self._backlog_cap = int(config.backlog_seconds * self.sample_rate)  # unsent audio kept while the network lags
        # Audio kept for replay: the configured bound plus what the protocol may
        # hold unanswered beyond a streaming provider (whole pages).
        self._replay_window = int((config.replay_seconds + self._replay_extra) * self.sample_rate)
        self._read_ahead_cap = self._backlog_cap  # run() lowers it for a paced file
        pace = probe.estimate_pace  # only a protocol whose times are estimates is paced
        if pace is not None and config.estimate_pace is not None:
            pace = config.estimate_pace
        self._estimate_pace = pace if pace and pace > 0 else None
        # Frames spaced as the service asks, unless a benchmark measures the
        # client's own cost unpaced (`estimate_pace=0`).
        self._frame_gap = 0.0 if config.estimate_pace == 0 else max(0.0, probe.min_frame_interval)
        self._pace = 0.0  # samples a second a file may be sent at (run() sets it); 0: unpaced
        self.stats = SessionStats()
        self._bad_said: set[str] = set()  # bad-frame warnings given (each once a session)
        # Audio by stream position, from `_buf.start` to `_stream_end` (== `_buf.end`).
        self._buf = PcmBuffer()
        self._trim_at = 0  # stream position at which _append next looks for audio to forget
        self._final_end = 0  # stream position up to which finals cover the audio
        self._said_to = 0  # stream position the latest final's end reached (no replay margin)
        self._dropping: Gap | None = None  # the Gap of the blocks being dropped (see `_drop`)
        self._tail_tries = 0  # end-of-stream tails sent again (see `_check_tail`)
        self._live_pace = 0.0  # samples a second a live replay may go at; 0: unpaced
        self._sent_high = 0  # the furthest stream position ever sent
        self._space = asyncio.Event()  # set when sending or a final frees room for a file to read on
        # The `_sent_high` from which a send wakes a file waiting in `_file_room`
        # (for room on the network, or for the sender to finish): woken by
        # every frame sent, it mostly found neither.
        self._space_at = 0
        self._source_done = False
        self._source_error: BaseException | None = None
        self._data = asyncio.Event()
        self._conn: _Connection | None = None
        self._stop_requested = asyncio.Event()  # set by stop(); also wakes a reconnect's back-off
        self._tries_after_stop = 0
        self._live = True  # run() sets it: a device's session outlasts any outage (see `_run_connections`)
        # (stream position of the last server frame, measured to, first sound after it): `_unanswered`
        self._unanswered_at: tuple[int, int, int | None] = (-1, 0, None)
        self._went_live = False  # a connection was accepted at least once
        self.provider_time = 0.0  # latest session time a provider reported
        self._event_latency = 0.0  # sent audio beyond the latest caption's end, at its arrival
        self.last_error: ProviderError | None = None

    def _redact(self, text: str) -> str:
        return redact_text(text, self._secrets)

    @property
    def lag(self) -> float:
        """How far captions trail the audio (seconds, sample clock): audio taken
        in but not yet sent (a slow network, a reconnect), plus how far behind
        the sent audio the provider's latest caption was when it arrived.
        Silence is not lag: a provider that has nothing to say is not behind."""
        backlog = self._backlog() / self.sample_rate
        return max(0.0, backlog) + max(self._event_latency, self._unanswered())

    def _unanswered(self) -> float:
        """Seconds of sound sent live since the provider last said anything,
        once more than its protocol's `reply_within`. A connection that died
        without a reset looks like a quiet room until the watchdog gives up
        (30 s), unless what went out had sound in it: then the captions are
        behind, and the user is told so. Each call measures only the audio
        sent since the previous one."""
        conn = self._conn
        if conn is None or not self._live or conn.ending:
            return 0.0
        wait, rate = conn.protocol.reply_within, self.sample_rate
        start, end = conn.origin + conn.sent_at_last_frame, conn.origin + conn.sent
        if wait is None or end - start <= wait * rate:
            return 0.0
        mark, checked, sound = self._unanswered_at
        if mark != start:
            checked, sound = start, None
        if sound is None:
            lo = max(checked, self._buf.start)
            found = self._first_sound(lo, end) if lo < end else end
            sound = found if found < end else None
            checked = end
        self._unanswered_at = (start, checked, sound)
        seconds = 0.0 if sound is None else (end - sound) / rate
        return seconds if seconds > wait else 0.0

    # --------------------------------------------------------------- input
    def stop(self) -> None:
        """End the audio here; the provider finishes what it has. While the
        provider is unreachable, one more connection is tried at once (no
        back-off), and what it cannot caption is a Gap: Stop never waits out
        the reconnect schedule."""
        self._stop_requested.set()
        self._source_done = True
        self._data.set()
        self._space.set()  # a file waiting for room ends now

    @property
    def _stopping(self) -> bool:
        return self._stop_requested.is_set()

    def _append(self, pcm: bytes) -> None:
        samples = len(pcm) >> 1
        if samples == 0:
            return
        if self._backlog() + samples > self._backlog_cap:
            # The network is slower than the audio: drop this block, keep time true.
            self.stats.dropped_seconds += samples / self.sample_rate
            self._drop(samples)
            return
        if self._dropping is not None:  # (per block: no call unless a drop just ended)
            self._end_drop()
        self._buf.append(pcm)
        self._stream_end += samples
        if self._stream_end >= self._trim_at:  # every 2 s of audio, not every block: trimming is only memory
            conn = self._conn
            self._trim(conn.origin + conn.sent if conn else self._final_end)
            self._trim_at = self._stream_end + 2 * self.sample_rate
        self._data.set()

    def _drop(self, samples: int) -> None:
        """A block dropped for the backlog bound: a hole in the clock and a
        Gap. Blocks dropped in a row are one hole and one Gap, given when the
        run ends (`_end_drop`): a live session now outlasts a long outage,
        and a block at a time was 300 Gaps ("[…]" in the transcript) and 300
        holes (each event's time walks them) for every half minute of it."""
        gap = self._dropping
        if gap is not None and self._holes and self._holes[-1][0] == self._stream_end:
            at, held = self._holes[-1]
            self._holes[-1] = (at, held + samples)
            self._dropping = Gap(gap.start, gap.end + samples / self.sample_rate, gap.reason)
            return
        self._end_drop()
        start = self.session_time(self._stream_end)
        self._holes.append((self._stream_end, samples))
        self.stats.gaps += 1
        self._dropping = Gap(start, start + samples / self.sample_rate, "network too slow; audio dropped")

    def _end_drop(self) -> None:
        """Give the Gap of the blocks dropped in a row so far, if any."""
        gap, self._dropping = self._dropping, None
        if gap is not None:
            self._emit(gap)

    def mark_gap(self, seconds: float, reason: str) -> None:
        self._end_drop()  # first the drop before it, and its hole stays its own
        super().mark_gap(seconds, reason)

    def _cover_quiet(self) -> None:
        """Count silence the provider already received as covered, as a final
        covers speech: move the covered position (`_final_end`) over sent
        audio up to `_SOUND_LEAD` before the first sound after it (or before
        the end of what was sent: a replay gives the provider that much
        silence before the speech it is to caption).

        Only finals used to mark audio covered, so after a long quiet stretch
        a drop replayed up to the whole replay window of silence, and called
        what did not fit "replay buffer exceeded; audio lost" although it had
        reached the provider; and a session limit (AudioPod's
        MAX_DURATION_REACHED) met in a quiet stretch replayed that stretch to
        the next session, which met the limit again at once. Silence has no
        words to lose, so it need not be sent twice; speech after the last
        final still is (the replay exists for it), and so is any sound the
        level cannot tell from speech. A sound ending within `_TAIL_GRACE`
        of the latest final's end is the fading tail of a word it captioned
        (as the end-of-stream tail check judges it). Sent means handed to
        the socket: silence lost in flight with a dropped connection had no
        words either, and a connection's times count from its own first
        sample.

        Judged only when it matters (a connection ended, or uncovered audio
        is about to leave the replay window), from the kept audio: nothing
        is measured while audio streams."""
        covered, sent = self._final_end, min(self._sent_high, self._buf.end)
        lead = int(_SOUND_LEAD * self.sample_rate)
        if sent - lead <= covered or covered < self._buf.start:
            return  # nothing to cover, or audio before the kept audio is unknown
        start = covered
        if covered >= self._said_to:  # a captioned word's fading tail is not new sound
            start = max(covered, min(self._said_to + int(_TAIL_GRACE * self.sample_rate), sent))
        to = min(self._first_sound(start, sent), sent) - lead
        if to > covered:
            self._final_end = to
            self._space.set()  # a file held back for finals may read on

    def _first_sound(self, start: int, end: int) -> int:
        """Stream position of the first 20-ms frame (as the tail check
        measures) in kept audio [start, end) whose mean power reaches
        _QUIET_DBFS, or `end`. A second at a time: it stops at the first."""
        frame = max(1, self.sample_rate // 50)
        step = 50 * frame
        pos = start
        while pos < end:
            n = min(step, end - pos)
            x = np.frombuffer(self._buf.read(pos, n), "<i2").astype(np.int64)
            whole = n // frame
            energy = np.square(x[: whole * frame]).reshape(whole, frame).sum(axis=1)
            loud = np.flatnonzero(energy >= _QUIET_POWER * frame)
            if len(loud):
                return pos + int(loud[0]) * frame
            rest = x[whole * frame :]
            if len(rest) and float(np.square(rest).sum()) >= _QUIET_POWER * len(rest):
                return pos + whole * frame
            pos += n
        return end

    def _backlog(self) -> int:
        """Samples taken in but never sent on any connection (replayed audio
        was sent before, so it does not count)."""
        return self._stream_end - self._sent_high

    def _trim(self, sent_pos: int) -> None:
        """Forget audio that is both sent and covered by a final, or older than
        the replay bound."""
        floor = sent_pos - self._replay_window
        if self._final_end < floor:
            self._cover_quiet()  # before uncovered audio is forgotten: was it silence?
        keep_from = min(self._final_end, sent_pos)
        self._buf.forget_before(max(keep_from, floor))

    def _replay_start(self) -> tuple[int, Gap | None]:
        """Where a new connection starts: the end of the last final, or the
        oldest audio still kept (then the audio in between is a gap)."""
        start = max(self._final_end, 0)
        floor = self._stream_end - self._replay_window
        if self._conn is not None:
            floor = min(floor, self._conn.origin + self._conn.sent)
        lost_to = max(start, floor, self._buf.start)
        gap = None
        if lost_to > start:
            gap = Gap(self.session_time(start), self.session_time(lost_to), "replay buffer exceeded; audio lost")
            self._final_end = lost_to
            self._space.set()
        return lost_to, gap

    async def _read_source(self, blocks: AsyncIterator[bytes], live: bool) -> None:
        stopping = self._stop_requested.is_set
        # Samples a file may surely take without looking again: the room only
        # grows meanwhile (sending and finals move its bounds on). A look per
        # block, and a coroutine per block before that, were ~15 % of the
        # unpaced client's CPU.
        credit = 0
        try:
            async for pcm in blocks:
                if stopping():
                    break
                if not live:
                    samples = len(pcm) >> 1
                    if samples > credit:
                        if not self._room_for(samples):
                            await self._file_room(samples)
                            if stopping():
                                break
                        credit = min(self._read_ahead_cap - self._backlog(), self._finals_room())
                    credit -= samples
                self._append(pcm)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # device lost etc.: finish what we have, then report
            self._source_error = exc
        finally:
            self._source_done = True
            self._data.set()

    async def _file_room(self, samples: int) -> None:
        """A file waits, where a live source would drop audio or outrun replay.

        1. For the network: no more than the read-ahead unsent.
        2. For finals: no further than half the replay window past the last
           final, so that a reconnect can replay everything not yet final (a
           file read unpaced can be minutes ahead of a provider's answers).
           Past that it reads on when finals have made `_FINALS_BATCH` of
           room (a quarter of the window at most), or when the provider has
           had all the audio read so far and one block's length passes with no
           final: it may need more to finish an utterance (a long one, silence,
           a provider that finalizes only at the end). A fast provider's
           finals come a few milliseconds apart, and a round of reading and
           sending per final (frames cut to the utterance, both tasks woken,
           the provider's socket woken) was ~20 % of the unpaced client's
           CPU; a provider that takes longer than a block's length over a
           final gets the read-on at each pause as before. Then the file goes at
           real time, as a live source would, and the other half of the window
           is what a reconnect can still replay of it. It never deadlocks: the
           wait for the sender ends with the connection (retries are bounded),
           the other with time; the sender is waited for only while it has a
           frame to send."""
        batch = min(self._replay_window >> 2, int(_FINALS_BATCH * self.sample_rate))
        while not self._stopping:
            if self._room_for(samples, batch):
                return
            backlog = self._backlog()
            # The sender goes on by itself with a frame or more to send; with
            # less, it waits for this very block.
            sending = backlog >= self._frame_samples
            full = self._network_full(backlog, samples)
            self._space.clear()
            if full and self._pace:  # a paced sender frees room at its pace: no wake-up per frame
                await asyncio.sleep((backlog + samples - self._read_ahead_cap) / self._pace)
                continue
            if sending:  # wait for the sender (or a final)
                end = self._stream_end
                # Woken by the send that makes room for the network, or that
                # leaves the sender with less than a frame (waiting itself);
                # any final wakes it too.
                idle_at = end - self._frame_samples + 1
                self._space_at = min(end + samples - self._read_ahead_cap, idle_at) if full else idle_at
                await self._space.wait()
                continue
            try:  # the provider has all there is to send, and no final covers it
                await _wait_at_most(self._space, samples / self.sample_rate)
            except asyncio.TimeoutError:
                return

    def _room_for(self, samples: int, batch: int = 0) -> bool:
        """Whether a file may take `samples` more now (see `_file_room`), and
        `batch` more as far as finals go."""
        if self._network_full(self._backlog(), samples):
            return False
        return max(samples, batch) <= self._finals_room()

    def _finals_room(self) -> int:
        """Samples a file may still read before it is half the replay window
        past the latest final (see `_file_room`)."""
        return (self._replay_window >> 1) - (self._stream_end - self._final_end)

    def _network_full(self, backlog: int, samples: int) -> bool:
        """The network's share of a file's read-ahead is full, and the sender is at it."""
        return backlog >= self._frame_samples and backlog + samples > self._read_ahead_cap

    @property
    def file_pace(self) -> float | None:
        """How fast a file goes (× real time) because the provider's times are
        estimates; None: as fast as the provider takes it."""
        return self._estimate_pace

    # ----------------------------------------------------------------- run
    async def run(self, blocks: AsyncIterator[bytes], live: bool = True) -> None:
        """Stream `blocks` to completion. Raises `ProviderFailure` on a fatal
        provider error, or the source's own exception after draining.

        `live` sources (a device) cannot wait: when the network lags past the
        backlog bound their audio is dropped and reported as a gap. Other
        sources (a file) are paused instead: for the network, for finals
        (see `_file_room`), and for a protocol whose times are estimates, to
        its `estimate_pace`. A live source's replay after a reconnect to such a
        protocol is paced too, faster, to catch up (`_catch_up_pace`)."""
        self._live = live
        self._pace = 0.0 if live or self._estimate_pace is None else self._estimate_pace * self.sample_rate
        if self._pace:
            self._read_ahead_cap = min(self._backlog_cap, int(self.config.file_read_ahead_paced * self.sample_rate))
        if live and self._estimate_pace is not None:
            self._live_pace = self._estimate_pace * max(1.0, self.config.live_catch_up) * self.sample_rate
        reader = asyncio.ensure_future(self._read_source(blocks, live))
        try:
            await self._run_connections()
        finally:
            if not reader.done():
                reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            self._end_drop()
        if self._source_error is not None:
            raise self._source_error

    async def _run_connections(self) -> None:
        """Connect, and reconnect after every retryable error.

        A file (`live=False`), and a live source that never got through
        (a wrong endpoint or proxy says so at once), give up after
        `RetryPolicy.max_attempts` or `max_quick_deaths`. A live source
        (microphone, system audio) that was captioning does not: an outage of
        any length (Wi-Fi off for a minute) used to end the session for good
        after ~30 s of attempts, and nothing resumed when the network came
        back. It keeps trying at the capped back-off (`max_delay`), in the
        reconnecting state with the reason, until a connection gets through,
        the user stops it or the source ends; the caption times stay on the
        session's clock and the audio the replay buffer could not keep is a
        Gap. Fatal errors (a refused key) still end it at once."""
        attempt = 0
        quick_deaths = 0
        origin = 0
        last_rollover_at = -1
        self._set_state(SessionState.CONNECTING)
        while True:
            try:
                if self._stopping:
                    self._tries_after_stop += 1
                await self._connection(origin)
                self._set_state(SessionState.CLOSED)
                return
            except _Retry as exc:
                err = exc.error
                self.last_error = err
                self._cover_quiet()  # before judging the connection and where to replay from
                lived = (time.monotonic() - exc.opened_at) if exc.opened_at is not None else None
                if err.kind is ErrorKind.FATAL:
                    await self._fail(err)
                if self._stopping and (self._tries_after_stop or not (self._conn and self._conn.ready.is_set())):
                    # Stopped, and the try after Stop (or the connection that was
                    # opening when Stop came) failed: end now, and say what is uncaptioned.
                    self._end_unreachable(err)
                    return
                progressed = self._final_end > last_rollover_at
                if err.kind is ErrorKind.ROLLOVER and progressed:
                    # A session limit: continue in a new provider session at once.
                    # (A rollover that made no progress is retried like any error,
                    # so a limit shorter than one utterance cannot loop forever.)
                    last_rollover_at = self._final_end
                    self.stats.rollovers += 1
                    attempt = 0
                    delay = 0.0
                else:
                    if self._healthy(self._conn):
                        # It captioned (or the provider heard a pause on it):
                        # whatever its age, it worked, so this is a new outage.
                        attempt, quick_deaths, lived = 0, 0, None
                    if lived is not None and lived >= self.retry.healthy_after:
                        attempt, quick_deaths = 0, 0
                    if lived is not None and lived < self.retry.quick_death:
                        quick_deaths += 1
                    elif lived is not None:
                        quick_deaths = 0
                    # A live source that was captioning outlasts any outage: it
                    # tries again, the back-off capped, until it gets through or
                    # the user stops it (see `_run_connections`). Once the
                    # source has ended, what is left is finished like a file's.
                    endless = self._live and self._went_live and not self._source_done
                    if quick_deaths >= self.retry.max_quick_deaths and not endless:
                        await self._fail(
                            ProviderError(
                                err.code,
                                f"{quick_deaths} connections in a row died right after opening; last: {err.message}",
                            )
                        )
                    if attempt >= self.retry.max_attempts and not endless:
                        await self._fail(
                            ProviderError(err.code, f"gave up after {attempt} reconnect attempts; last: {err.message}")
                        )
                    if endless and quick_deaths >= self.retry.max_quick_deaths:
                        attempt = max(attempt, self.retry.max_attempts)  # no storm: the capped back-off
                    delay = 0.0 if self._stopping else self.retry.delay(attempt)
                    if endless and exc.unreachable:
                        delay = min(delay, self.retry.unreachable_delay * random.uniform(0.5, 1.0))
                    attempt += 1
                    self.stats.reconnects += 1
                origin, gap = self._replay_start()
                if gap is not None:
                    self.stats.gaps += 1
                    self._emit(gap)
                self._set_state(SessionState.RECONNECTING, f"{err.message}")
                if delay:
                    try:  # Stop cuts the back-off short
                        await asyncio.wait_for(self._stop_requested.wait(), delay)
                    except asyncio.TimeoutError:
                        pass

    def _healthy(self, conn: _Connection | None) -> bool:
        """Whether a connection that ended worked, whatever its age: it
        delivered a final, or the provider heard `healthy_progress` s of
        silence on it (see `RetryPolicy`)."""
        if conn is None:
            return False
        progress = (min(self._final_end, conn.origin + conn.sent) - conn.covered_from) / self.sample_rate  # its own audio
        return bool(conn.captioned) or progress >= self.retry.healthy_progress

    @property
    def _open_timeout(self) -> float:
        """How long opening a connection may take; after Stop, at most
        `_STOP_OPEN_TIMEOUT` (the user is waiting for the session to end)."""
        return min(self.config.open_timeout, _STOP_OPEN_TIMEOUT) if self._stopping else self.config.open_timeout

    def _end_unreachable(self, err: ProviderError) -> None:
        """Stop while the provider cannot be reached: the audio no final
        covers is a Gap with the reason, and the session is closed (stopped,
        not failed)."""
        self._end_drop()
        start, gap = self._replay_start()
        if gap is not None:
            self.stats.gaps += 1
            self._emit(gap)
        if self._stream_end - start >= int(0.1 * self.sample_rate):
            self.stats.gaps += 1
            self._emit(Gap(self.session_time(start), self.session_time(self._stream_end),
                           f"not captioned: stopped while the provider was unreachable ({err.message})"))
        log.info("stopped while the provider was unreachable: %s", err.message)
        self._set_state(SessionState.CLOSED)

    def _tls_refused(self, exc: ssl.SSLCertVerificationError) -> ProviderError:
        """Fatal: never retried and never bypassed, for the login as for the
        WebSocket. A certificate that does not verify is not a network blip."""
        reason = self._redact(exc.verify_message or str(exc))
        return ProviderError("TLS_FAILED", f"the server's certificate was not accepted: {reason}")

    async def _fail(self, error: ProviderError) -> None:
        self._end_drop()
        error = ProviderError(error.code, self._redact(error.message), ErrorKind.FATAL)
        self.last_error = error
        self._emit(error)
        self._set_state(SessionState.FAILED, str(error))
        raise ProviderFailure(error)

    # ---------------------------------------------------------- connection
    async def _connection(self, origin: int) -> None:
        proto = self._factory()
        conn = _Connection(proto, origin, covered_from=self._final_end)
        self._conn = conn
        self.stats.connections += 1
        # a reconnection of a live source: its replay goes paced (see `_catch_up_pace`)
        conn.catching_up = bool(self._live_pace) and self.stats.connections > 1
        login = proto.login_request(self.config.endpoint)
        if login is not None:
            try:
                status, body = await post_json(login, timeout=self._open_timeout)
            except ssl.SSLCertVerificationError as exc:
                raise _Retry(self._tls_refused(exc), None) from None
            except ProxyRefused as exc:
                raise _Retry(_proxy_refused(exc.status), None) from None
            except NotHttp:
                proxy = proxy_address(login.url)
                if proxy is not None:
                    raise _Retry(ProviderError("PROXY_NOT_HTTP", f"the proxy at {proxy} did not answer in HTTP: "
                                               f"{_CHECK_PROXY}"), None) from None
                raise _Retry(ProviderError("NOT_HTTP", f"the login at {_host_port(login.url)} did not answer in HTTP: "
                                           "check the endpoint URL"), None) from None
            except ConnectionRefusedError:
                raise _Retry(ProviderError("LOGIN_FAILED", f"login failed: {_refused(login.url)}", ErrorKind.RETRYABLE),
                             None, unreachable=True) from None
            except OSError as exc:
                if login.url.startswith("http:") and await _speaks_tls(login.url):
                    raise _Retry(ProviderError("NOT_TLS_URL", f"{_host_port(login.url)} speaks TLS: use wss:// instead of ws://"),
                                 None) from None
                reason = self._redact(str(exc) or type(exc).__name__)
                raise _Retry(ProviderError("LOGIN_FAILED", f"login failed: {reason}", ErrorKind.RETRYABLE), None,
                             unreachable=_unreachable(exc)) from None
            try:
                proto.accept_login(status, body)
            except ProtocolError as exc:
                raise _Retry(exc.error, None) from None
            for secret in proto.secrets():  # a login's token is a credential as much as the key
                remember_secret(secret)
                self._secrets += (secret,)
        request = proto.connect_request(self.config.endpoint)
        try:
            ws = await asyncio.wait_for(
                websockets.connect(
                    request.url,
                    additional_headers=request.headers or None,
                    open_timeout=self._open_timeout,
                    ping_interval=proto.ping_interval,
                    ping_timeout=proto.ping_interval,
                    max_size=proto.max_message_bytes,
                    compression=None,
                    close_timeout=2.0,
                    user_agent_header=None,
                    # The system's proxy, as a browser would use it; never for
                    # this machine's own loopback.
                    proxy=proxy_for(request.url),
                    ssl=client_context() if request.url.startswith("wss:") else None,
                ),
                self._open_timeout + 1,
            )
        except InvalidProxy as exc:
            raise _Retry(ProviderError("PROXY_CONFIG", f"the configured proxy cannot be used: {self._redact(str(exc))} "
                                       "(a proxy setting is a URL: http://host:port, or socks5h://host:port)"), None) from None
        except InvalidProxyStatus as exc:
            raise _Retry(_proxy_refused(exc.response.status_code), None) from None
        except InvalidStatus as exc:
            status, body = exc.response.status_code, exc.response.body or b""
            raise _Retry(self._not_websocket(request.url, status, body) or proto.classify_http(status, body), None) from None
        except InvalidURI as exc:
            raise _Retry(ProviderError("BAD_ENDPOINT", self._redact(str(exc))), None) from None
        except ssl.SSLCertVerificationError as exc:
            raise _Retry(self._tls_refused(exc), None) from None
        except InvalidMessage as exc:
            raise _Retry(await self._no_handshake(request.url, exc), None) from None
        except ConnectionRefusedError:
            raise _Retry(ProviderError("CONNECT_FAILED", _refused(request.url), ErrorKind.RETRYABLE), None,
                         unreachable=True) from None
        except ssl.SSLError as exc:
            if exc.reason == "WRONG_VERSION_NUMBER":  # the server answered the TLS hello in plain text
                raise _Retry(ProviderError("NOT_TLS", f"{_host_port(request.url)} does not speak TLS: use ws:// instead of wss://"),
                             None) from None
            reason = self._redact(str(exc) or type(exc).__name__)
            raise _Retry(ProviderError("CONNECT_FAILED", f"could not connect: {reason}", ErrorKind.RETRYABLE), None) from None
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
            reason = self._redact(str(exc) or type(exc).__name__)
            raise _Retry(ProviderError("CONNECT_FAILED", f"could not connect: {reason}", ErrorKind.RETRYABLE), None,
                         unreachable=_unreachable(exc)) from None
        conn.opened_at = time.monotonic()
        conn.last_frame_at = conn.opened_at
        try:
            async with ws:
                for message in proto.on_open():
                    await self._send(ws, message)
                if proto.ready_on_open:
                    self._mark_live(conn)
                sender = asyncio.ensure_future(self._send_audio(ws, conn))
                sender.add_done_callback(conn.wake_receiver)
                try:
                    await self._receive(ws, conn, sender)
                except _Done:
                    pass  # leave the block normally: a finished session closes 1000, not 1011
                finally:
                    if not sender.done():
                        sender.cancel()
                    await asyncio.gather(sender, return_exceptions=True)
        except _Done:
            pass
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            reason = exc.rcvd.reason if exc.rcvd is not None else "no close frame"
            if conn.ending and code == 1000:
                # A clean close after we asked to end finishes the session. One
                # that came without the protocol's "done" (AudioPod `completed`,
                # Smallest `is_last`…) may not have captioned the tail: the tail
                # check sends sound after the last final again, a bounded number
                # of times. (Reconnecting for the missing "done" itself looped.)
                self._check_tail(conn)
                return
            sent = exc.sent
            if sent is not None and sent.code == 1011 and "keepalive" in sent.reason and not exc.rcvd_then_sent:
                # websockets closed it: our pings went unanswered. The server
                # (or the network to it) went quiet; it sent nothing wrong.
                raise _Retry(ProviderError("NO_PONG", f"the server stopped answering (no reply to a keepalive ping "
                                           f"within {proto.ping_interval:g} s)", ErrorKind.RETRYABLE), conn.opened_at) from None
            if sent is not None and sent.code not in (1000, 1001) and not exc.rcvd_then_sent:
                # We closed first because the server broke the protocol (1007
                # invalid UTF-8, 1009 too big, 1002): that is the reason to report.
                error = ProviderError(
                    f"CLOSE_{sent.code}", f"the server sent data that breaks the WebSocket protocol ({sent.code} {sent.reason})",
                    ErrorKind.RETRYABLE,
                )
                raise _Retry(error, conn.opened_at) from None
            raise _Retry(proto.classify_close(code, reason), conn.opened_at) from None
        except OSError as exc:
            raise _Retry(ProviderError("NETWORK", f"network error: {exc}", ErrorKind.RETRYABLE), conn.opened_at) from None
        self._check_tail(conn)

    def _check_tail(self, conn: _Connection) -> None:
        """A connection finished cleanly (its "done", a close, or quiet after
        end of stream): did its finals reach the end of the sound it was sent?

        A provider that goes silent near the end (Inworld has no "done": its
        quiet counted as success) lost the last captions with exit 0 and no
        word. Sound after the latest final's end (beyond a short grace for a
        word's fading tail) is sent again on a new connection, at most
        `tail_retries` times; what is still uncaptioned then is a Gap with
        its reason (it may be only noise: a warning, not a silent success).
        Silence after the last final is a clean finish."""
        rate = self.sample_rate
        end = conn.origin + conn.sent
        start = max(self._said_to, self._final_end, self._buf.start) + int(_TAIL_GRACE * rate)
        if end - start < int(_TAIL_SOUND * rate):
            return
        levels = frame_levels(np.frombuffer(self._buf.read(start, end - start), "<i2"), int(0.02 * rate), tail=False)
        sound = int((levels >= _TAIL_LEVEL_DBFS).sum()) * 0.02
        if sound < _TAIL_SOUND:
            return
        left = (end - start) / rate
        if self._tail_tries < self.config.tail_retries:
            self._tail_tries += 1
            raise _Retry(
                ProviderError("UNFINISHED", f"the provider finished without captions for the last {left:.1f} s of audio; "
                              "sending it again", ErrorKind.RETRYABLE),
                conn.opened_at,
            )
        tries = self._tail_tries + 1
        log.warning("the provider gave no captions for the last %.1f s of audio (sent %d times)", left, tries)
        self.stats.gaps += 1
        self._emit(Gap(self.session_time(start), self.session_time(end),
                       f"sound the provider returned no captions for, sent {tries} times: speech there may be missing"))

    def _not_websocket(self, url: str, status: int, body: bytes) -> ProviderError | None:
        """A handshake answered by a web server that is no WebSocket endpoint
        (a page, a redirect it could not follow, 404/405), fatal at once:
        retrying for half a minute cannot change that. None: the provider's
        own refusal (`classify_http`)."""
        where = _host_port(url)
        if status == 400 and url.startswith("ws:") and b"HTTPS" in body:  # nginx: "plain HTTP request was sent to HTTPS port"
            return ProviderError("NOT_TLS_URL", f"{where} speaks TLS: use wss:// instead of ws://")
        if status < 400 or status in (404, 405):
            return ProviderError("NOT_WEBSOCKET", f"{where}{_path(url)} is not a WebSocket endpoint (HTTP {status}"
                                 f"{self._redact(http_detail(body))}): check the endpoint URL")
        return None

    async def _no_handshake(self, url: str, exc: InvalidMessage) -> ProviderError:
        """What answered the handshake, when it was not HTTP 1.1 at all."""
        where = _host_port(url)
        cause = exc.__cause__
        text = str(cause) if cause is not None else ""
        status = _OLD_HTTP.search(text)
        if status:  # HTTP/1.0: a plain web server (python -m http.server)
            return ProviderError("NOT_WEBSOCKET", f"{where}{_path(url)} is not a WebSocket endpoint "
                                 f"(HTTP {status.group(1)} from a web server that cannot upgrade): check the endpoint URL")
        if url.startswith("ws:") and ("\x15\x03" in text or "\x16\x03" in text or await _speaks_tls(url)):
            # a TLS record in reply to plain HTTP, or a server that hung up and takes a TLS hello
            return ProviderError("NOT_TLS_URL", f"{where} speaks TLS: use wss:// instead of ws://")
        if isinstance(cause, ValueError):
            return ProviderError("NOT_WEBSOCKET", f"{where} did not answer in HTTP ({short_text(self._redact(text), 60)}): "
                                 "it is not a WebSocket endpoint; check the endpoint URL")
        if isinstance(cause, EOFError):
            return ProviderError("CONNECT_FAILED", f"{where} closed the connection without answering the WebSocket handshake",
                                 ErrorKind.RETRYABLE)
        reason = self._redact(f"{exc}: {cause}" if cause is not None else str(exc))
        return ProviderError("CONNECT_FAILED", f"could not connect: {reason}", ErrorKind.RETRYABLE)

    def _mark_live(self, conn: _Connection) -> None:
        if not conn.ready.is_set():
            conn.ready.set()
            self._went_live = True
            self._set_state(SessionState.LIVE)

    async def _send(self, ws: websockets.ClientConnection, message: str | bytes) -> None:
        await ws.send(message)
        self.stats.messages_sent += 1
        self.stats.bytes_sent += len(message)

    async def _send_audio(self, ws: websockets.ClientConnection, conn: _Connection) -> None:
        """Send audio from the connection's position as it becomes available,
        then the end-of-stream messages once the source is done."""
        await asyncio.wait_for(conn.ready.wait(), self._open_timeout)
        frame = self._frame_samples
        proto = conn.protocol
        burst = self.config.pace_burst
        frame_gap = self._frame_gap
        loop = asyncio.get_running_loop()
        while True:
            pos = conn.origin + conn.sent
            available = self._stream_end - pos
            if available > 0 and not proto.accepts_audio():
                self._data.clear()  # flow control: a decoded frame wakes us
                conn.awaiting_credit = True
                try:
                    await self._data.wait()
                finally:
                    conn.awaiting_credit = False
                continue
            if available >= frame or (self._source_done and available > 0):
                pace = self._pace or self._catch_up_pace(conn, available)
                if pace:
                    # A file to a protocol whose times are estimates goes at its
                    # pace, its replay too: frame by frame, a burst of frames a
                    # wake-up (never more than `burst` ahead of the clock, as a
                    # device's blocks), and a late burst never lets the next
                    # one catch up by more than a burst. A live source's replay
                    # goes so too, faster (`_catch_up_pace`).
                    n = min(frame, available)
                    # `burst` is audio; the lead is the wall time it lasts at
                    # this pace (at 4x a 0.1-s burst is 25 ms ahead, not 0.4 s
                    # of audio, which would put every estimate that much late).
                    lead = burst * self.sample_rate / pace
                    now = loop.time()
                    if conn.next_send > now + lead:
                        await asyncio.sleep(conn.next_send - now)
                        continue
                    conn.next_send = max(conn.next_send, now - lead) + n / pace
                else:
                    # Live audio goes frame by frame; audio that is already late
                    # (backlog) goes in the largest frames the protocol allows.
                    n = min(available, self._max_frame_samples) if available >= 2 * frame else min(frame, available)
                if frame_gap:
                    # A service that wants its frames spaced (a backlog or a
                    # file would otherwise go back to back).
                    wait = conn.audio_frame_at + frame_gap - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                        continue
                    conn.audio_frame_at = loop.time()
                pcm = self._buf.read(pos, n)
                for message in proto.encode_audio(pcm):
                    await self._send(ws, message)
                conn.sent += n
                if pos + n > self._sent_high:
                    self._sent_high = pos + n
                    if pos + n >= self._space_at:
                        self._space.set()
                continue
            if self._source_done:
                break
            self._data.clear()
            await self._data.wait()
        conn.ending = True
        conn.ending_at = time.monotonic()
        self._set_state(SessionState.DRAINING)
        for message in proto.end_stream():
            await self._send(ws, message)

    def _catch_up_pace(self, conn: _Connection, available: int) -> float:
        """The pace of a live source's replay to a protocol whose times are
        estimates (samples a second), or 0: unpaced.

        Sent in one burst, every replayed final was placed where the burst
        ended. The estimate of a reply runs late by the reply delay times the
        pace: at `live_catch_up` 2x and the usual 0.1-0.25 s between audio
        and the provider's event, 0.2-0.5 s (as good as a file's at 1x plus
        one delay), and the backlog shrinks by 1 s a second, so captions are
        live again after as long as the replay and the outage took. Once the
        connection has caught up with the source it is real time by itself.
        A backlog past half the bound where a live source drops audio goes
        unpaced: audio before times."""
        if not conn.catching_up:
            if not self._live_pace or available < int(_STALL_BACKLOG * self.sample_rate):
                return 0.0
            # A backlog on a live connection: this process stood still (a
            # starved CPU, a stopped process) and the device's audio piled up.
            # Sent at once, every reply in it was placed where the burst ended
            # (VoiceRun finals 4-7 s late after a 12-s stall): it goes paced too.
            conn.catching_up = True
        if available < 2 * self._frame_samples:
            conn.catching_up = False
            return 0.0
        if self._backlog() > self._backlog_cap // 2:
            return 0.0
        return self._live_pace

    async def _receive(self, ws: websockets.ClientConnection, conn: _Connection, sender: asyncio.Future) -> None:
        """Read and act on server frames until the connection's end (raised).

        A wait that times out ends the run of frames with TimeoutError; what
        that means (finished, a silent server, or only a new timeout now that
        the audio has all gone out) is `_on_quiet`'s call."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with self._wait_scope(conn):
                    while True:  # per server frame: kept lean (partials, usage: 10+ a second)
                        if sender.done():
                            self._check_sender(sender, conn)
                        timeout = self._receive_timeout(conn)
                        if _HAS_TIMEOUT:
                            # A plain recv() in the loop's scope, with no timer of
                            # its own (see `_next_frame`).
                            conn.recv_cut_by_sender = not sender.done()
                            conn.arm(loop, timeout)
                            conn.waiting = True
                            try:
                                frame = await ws.recv()
                            finally:
                                conn.waiting = False
                            if conn.recv_timeout.when() is not None:
                                # it came due as the frame arrived: it must not land later
                                conn.recv_timeout.reschedule(None)
                        else:
                            frame = await self._next_frame(ws, conn, sender, timeout)
                        await self._on_frame(ws, conn, frame)
            except (TimeoutError, asyncio.TimeoutError):
                if conn.recv_cut_by_sender and sender.done():
                    continue  # the end of stream went out: wait again with the drain timeout
                self._on_quiet(conn)
            finally:
                conn.recv_timeout = None

    @staticmethod
    def _wait_scope(conn: _Connection) -> Any:
        """The cancel scope that ends a receive wait (3.11+): one for a whole
        run of frames, which the watchdog may fire only while a recv() is
        pending. An asyncio.timeout() per frame was ~10 % of the client's CPU
        on the unpaced benchmark. On 3.10 each wait times itself."""
        if _HAS_TIMEOUT:
            conn.recv_timeout = asyncio.timeout(None)
            return conn.recv_timeout
        return contextlib.nullcontext()

    @staticmethod
    def _check_sender(sender: asyncio.Future, conn: _Connection) -> None:
        if sender.done() and not sender.cancelled() and sender.exception() is not None:
            exc = sender.exception()
            # A send that failed because the socket closed: read what the
            # server sent before closing first; recv() raises after that.
            if isinstance(exc, ConnectionClosed):
                return
            if isinstance(exc, asyncio.TimeoutError):
                raise _Retry(ProviderError("NOT_READY", "the provider did not accept the session in time", ErrorKind.RETRYABLE), conn.opened_at)
            raise exc

    async def _on_frame(self, ws: websockets.ClientConnection, conn: _Connection, frame: str | bytes) -> None:
        proto = conn.protocol
        conn.last_frame_at = time.monotonic()
        conn.sent_at_last_frame = conn.sent
        try:
            decoded = proto.decode(frame, conn.sent / self.sample_rate)
        except ProtocolError as exc:
            if exc.error.kind is ErrorKind.FATAL:
                raise _Retry(exc.error, conn.opened_at) from None
            self.stats.bad_frames += 1
            if exc.error.message in self._bad_said:
                # Said already: a provider that added a message type sends it
                # every utterance, and one warning is enough.
                log.debug("ignored a bad frame again: %s", exc.error)
                return
            if len(self._bad_said) < 100:
                self._bad_said.add(exc.error.message)
            log.warning("ignored a bad frame: %s", exc.error)
            self._emit(ProviderError(exc.error.code, exc.error.message, ErrorKind.RETRYABLE))
            return
        for message in decoded.send:
            await self._send(ws, message)
        if decoded.ready:
            self._mark_live(conn)
        if conn.awaiting_credit:
            self._data.set()  # this reply may let the protocol take audio again
        for event in decoded.events:
            self._publish(event, conn)
        if decoded.done:
            if conn.ending:
                raise _Done()
            raise _Retry(ProviderError("ENDED", "the provider ended the session early", ErrorKind.RETRYABLE), conn.opened_at)

    @staticmethod
    async def _next_frame(ws: websockets.ClientConnection, conn: _Connection, sender: asyncio.Future, timeout: float) -> str | bytes:
        """The next server frame, or TimeoutError when `timeout` passed or the
        sender finished first (the timeout that applies changes then). Python
        3.10 only.

        3.11+ (inline in `_receive`): a plain recv() inside the receive loop's
        scope, with no timer of its own: the connection's watchdog timer
        (`arm`) or the sender's completion ends the wait. recv() is
        cancellation-safe in websockets: no message is lost."""
        # only a wait that began while sending may be cut short by the sender's end
        conn.recv_cut_by_sender = not sender.done()
        recv = asyncio.ensure_future(ws.recv())
        watch = {recv, sender} if conn.recv_cut_by_sender else {recv}
        loop = asyncio.get_running_loop()
        due = loop.time() + timeout
        try:
            while True:
                done, _ = await asyncio.wait(watch, timeout=max(0.0, due - loop.time()), return_when=asyncio.FIRST_COMPLETED)
                now = loop.time()
                if done or not _stood_still(now - due, timeout):
                    break
                due = now + timeout  # this process stood still: a whole window from now, as `_Connection._watch`
        finally:
            if not recv.done():
                recv.cancel()
                await asyncio.gather(recv, return_exceptions=True)
        if recv.cancelled():
            raise asyncio.TimeoutError
        return recv.result()  # raises ConnectionClosed like recv() would

    def _receive_timeout(self, conn: _Connection) -> float:
        if conn.ending:
            # The whole drain is bounded, even if the server keeps talking.
            left = max(0.0, self.config.drain_timeout - (time.monotonic() - conn.ending_at))
            idle = conn.protocol.end_idle_timeout
            return left if idle is None else min(idle, left)
        if not conn.ready.is_set():
            return self._open_timeout
        return self.config.watchdog_seconds

    def _on_quiet(self, conn: _Connection) -> None:
        if conn.ending:
            if conn.protocol.says_done:
                # Its "done" never came: what matters is whether the tail was
                # captioned (sent again, a bounded number of times, if not).
                # Retrying for the "done" itself never ended against a server
                # that does not send one.
                log.warning("the provider did not finish within %g s after end of stream", self.config.drain_timeout)
            self._check_tail(conn)
            raise _Done()
        if not conn.ready.is_set():
            raise _Retry(ProviderError("NOT_READY", "the provider did not accept the session in time", ErrorKind.RETRYABLE), conn.opened_at)
        if conn.sent > conn.sent_at_last_frame or not conn.protocol.accepts_audio():
            raise _Retry(
                ProviderError("WATCHDOG", f"no reply for {self.config.watchdog_seconds:g} s while audio was flowing", ErrorKind.RETRYABLE),
                conn.opened_at,
            )

    def _note_latency(self, caption_end: float, conn: _Connection) -> None:
        sent = self.session_time(conn.origin + conn.sent)
        self._event_latency = max(0.0, sent - caption_end)

    def _offset(self, conn: _Connection, provider_time: float) -> float:
        """Session time minus the provider's time for an event starting at
        `provider_time` on this connection. Float noise under a nanosecond (the
        round trip through the sample grid) counts as none, so the usual event
        (one connection, no holes) is passed on as it is, not copied."""
        if not self._holes:  # the usual case: the connection's start, as it is
            return conn.origin / self.sample_rate
        offset = self.session_time(conn.origin + int(round(provider_time * self.sample_rate))) - provider_time
        return 0.0 if -1e-9 < offset < 1e-9 else offset

    def _on_session_clock(self, final: Final, conn: _Connection) -> list[Final]:
        """A final on the session's timeline. Audio lost inside it (the
        backlog overflowed in an outage, or the input stood still) puts its
        words on both sides of a hole: one offset from its start put the
        words after the hole minutes early, in a cue cut short at the `[…]`.
        Such a final is split at each hole, each part on its own side (an
        untimed final has no words to split: its ends are placed apart)."""
        rate = self.sample_rate
        start = conn.origin + int(round(final.start * rate))
        holes = self._holes
        if not holes or holes[-1][0] <= start:  # holes come in order: none inside (the usual case)
            return [final.shifted(self._offset(conn, final.start))]
        end = conn.origin + int(round(final.end * rate))
        inside = [at for at, _ in holes if start < at < end]
        if not inside:
            return [final.shifted(self._offset(conn, final.start))]
        if not final.words:
            ended = self.session_time(end)
            return [replace(final, start=final.start + self._offset(conn, final.start), end=max(ended, final.start))]
        parts: list[list[Word]] = [[]]
        bounds = iter(inside)
        bound = next(bounds, None)
        for word in final.words:
            while bound is not None and conn.origin + int(round(word.start * rate)) >= bound:
                parts.append([])
                bound = next(bounds, None)
            parts[-1].append(word)
        parts = [p for p in parts if p]
        pieces = []
        for i, words in enumerate(parts):
            offset = self._offset(conn, words[0].start)
            piece = Final(join_words(words), words[0].start, words[-1].end, tuple(words), final.speaker,
                          final.end_of_utterance and i == len(parts) - 1, final.timed)
            pieces.append(piece.shifted(offset))
        return pieces

    def _publish(self, event: CaptionEvent, conn: _Connection) -> None:
        kind = type(event)
        if kind is Usage:  # (no time: as it is)
            self._emit(event)
            return
        rate = self.sample_rate
        if kind is ProviderError:
            raise _Retry(event, conn.opened_at)  # the retry loop acts on its kind
        if kind is Final:
            checked = self._checked_final(event, conn)
            end_pos = conn.origin + int(round(checked.end * rate))
            self._said_to = max(self._said_to, min(end_pos, conn.origin + conn.sent))
            if checked is not event and not checked.timed:
                # Its times were impossible: where its speech ends is unknown,
                # so a replay still starts where the previous final ended.
                end_pos = conn.origin + int(round(checked.start * rate))
            elif not checked.timed:
                margin = conn.protocol.untimed_margin
                margin = self.config.untimed_margin if margin is None else margin
                end_pos = min(end_pos, conn.origin + conn.sent - int(margin * rate))
            event = checked
            covered = min(end_pos, conn.origin + conn.sent)
            if covered > self._final_end:
                self._final_end = covered
                conn.captioned += 1
                self._space.set()  # a file held back for finals may read on
            *before, event = self._on_session_clock(event, conn)
            for piece in before:
                self._emit(piece)
            self.provider_time = max(self.provider_time, event.end)
            self._note_latency(event.end, conn)
        elif kind is Partial:
            if not (self._possible(event.start, conn) and self._possible(event.end, conn)):
                event = Partial(event.text, None, None, event.speaker)  # interim: its times are only dropped
            offset = self.session_time(conn.origin) if event.start is None else self._offset(conn, event.start)
            event = event.shifted(offset)
            if event.end is not None:
                self.provider_time = max(self.provider_time, event.end)
                self._note_latency(event.end, conn)
        else:
            if isinstance(event, (SpeechStarted, SpeechStopped)) and not self._possible(event.at, conn):
                event = type(event)(None)
            event = event.shifted(self.session_time(conn.origin))
        self._emit(event)

    def _possible(self, at: float | None, conn: _Connection) -> bool:
        """Whether a provider time (its connection's clock) can be true:
        finite, and within the audio sent so far give or take the tolerance."""
        if at is None:
            return True
        tolerance = self.config.time_tolerance
        return -tolerance <= at <= conn.sent / self.sample_rate + tolerance  # False for NaN too

    def _checked_final(self, final: Final, conn: _Connection) -> Final:
        """One rule for every provider's times: a final's start, end and word
        times lie in the audio its connection sent (give or take
        `time_tolerance`, clamped into it), and it does not end before it
        starts. A final with an impossible time (NaN or infinity that got
        past a provider, `start: 1e12`, a negative time, an end before the
        start; ms read as s) keeps its text, which is good, and loses its
        times, which are not: it is placed by the sample clock as an untimed
        final, after the connection's previous final, so the transcript
        stays in order. Rejecting the frame would lose the words; clamping
        the times would stack them at one edge of the audio. A warning says
        so, as for any malformed frame, and the session goes on."""
        sent = conn.sent / self.sample_rate
        tolerance = self.config.time_tolerance
        low, high = -tolerance, sent + tolerance
        bad = None
        clamp = False
        for name, value in _final_times(final):
            if not low <= value <= high:  # NaN fails too
                bad = f"{name} {value:g} s"
                break
            if value < 0.0 or value > sent:
                clamp = True
        if bad is None and final.end < final.start:
            bad = f"an end ({final.end:g} s) before its start ({final.start:g} s)"
        if bad is None:
            if clamp:
                final = _clamped(final, sent)
            estimated = final.timed or conn.protocol.estimate_pace is not None  # an end meant to hold
            conn.placed_to = max(conn.placed_to, final.end if estimated else final.start)
            return final
        self.stats.bad_frames += 1
        message = (f"the provider sent a final with an impossible time ({bad}; {sent:.1f} s of audio sent on this "
                   "connection): its text is kept and placed by the sample clock")
        log.info("%s", message)  # the event below is the warning
        self._emit(ProviderError("BAD_TIMES", message, ErrorKind.RETRYABLE))
        start = min(max(conn.placed_to, 0.0), sent)
        text = final.text or " ".join(w.text for w in final.words if w.text)
        # The next such final covers the audio after this one came: left at
        # `start`, a run of them all began there (cues of a millisecond each).
        conn.placed_to = sent
        return Final(text, start, sent, (), final.speaker, final.end_of_utterance, timed=False)
