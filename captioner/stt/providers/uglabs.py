"""UG Labs Interaction API: the wire protocol.

Not a streaming recognizer but a JSON request/response RPC: the server buffers
audio sent with `add_audio` and answers one `transcribe` request with the text
of at most 30 s of it — no partials, no word times. So this module cuts the
live audio into pages at pauses (`captioner.stt.paging`), sends each page as
ONE WAV file in `add_audio` chunks of at most 32,000 raw bytes, asks for
`transcribe`, then `clear_audio` (the server keeps its buffer otherwise), and
reports each page as one Final placed where its speech is.

Flow control lives here and is driven by replies, never by timers: requests
go out one at a time (add_audio chunks optionally pipelined), each matched to
its reply by a fresh uuid4 `uid`; `Decoded.send` releases the next request.
While a page is in flight the audio is only buffered, and `accepts_audio()`
tells the session to hold back once a full page is waiting.

Auth: POST <http(s) base of the endpoint>/api/auth/login {"api_key"} → an
access token (`expires_in` optional, 3600 s assumed); then an `authenticate`
request. Near the token's expiry the protocol asks for a ROLLOVER between
pages, so the session logs in again on a fresh connection.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import uuid
import wave
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from time import monotonic
from typing import Any, Callable

from captioner.stt.events import CaptionEvent, ErrorKind, Final, ProviderError
from captioner.stt.options import OptionError, option
from captioner.stt.paging import Page, PageRules, Pager
from captioner.stt.protocol import (
    ConnectRequest,
    Decoded,
    HttpRequest,
    Outgoing,
    ProtocolError,
    WireProtocol,
    as_float,
    parse_json_object,
)
from captioner.stt.urls import http_base

DEFAULT_ENDPOINT = "wss://pug.stg.uglabs.app/interact"
LOGIN_PATH = "/api/auth/login"
MAX_CHUNK_BYTES = 32_000  # the seed's limit per add_audio message, before base64
MAX_PAGE_S = 30.0  # the service's limit per transcribe
DEFAULT_TOKEN_TTL_S = 3600.0  # when the login reply gives no expires_in


@dataclass(frozen=True)
class UgLabsOptions:
    language: str = option("en", "language_code sent with each transcribe request")
    team_name: str | None = option(None, "team_name for the login (optional)")
    federated_id: str | None = option(None, "federated_id for the login, with a service-account key (optional)")
    sample_rate: int = option(16000, "sample rate of the WAV pages (UG Labs recommends 48000)", (8000, 16000, 22050, 24000, 32000, 44100, 48000))
    # Live captions want short pages (a page's caption comes when it is
    # transcribed); 30 s is only UG Labs' ceiling. Longer targets mean fewer
    # requests and more context per request, at the cost of caption delay.
    page_target_s: float = option(8.0, "seconds after which a page is cut at the best pause so far")
    page_max_s: float = option(30.0, "hard page length limit in seconds (at most 30)")
    page_min_s: float = option(4.0, "pauses earlier than this in a page are not preferred as cut points")
    min_pause_s: float = option(0.3, "a silence at least this long counts as a pause")
    silence_dbfs: float = option(-50.0, "level below which audio is never speech (silent pages are not sent)")
    chunk_bytes: int = option(MAX_CHUNK_BYTES, "raw WAV bytes per add_audio message (at most 32000)")
    max_in_flight: int = option(1, "add_audio messages sent before their replies (1 = strictly one at a time)")
    rate_field: str = option("sampling_rate", "name of the rate in add_audio config (docs disagree)", ("sampling_rate", "sample_rate"))
    time_field: str = option("client_start_time", "request timestamp field: SDKs vs the seed", ("client_start_time", "timestamp"))
    auth_header: bool = option(False, "also send Authorization: Bearer <token> on the handshake (seed, Unity SDK)")
    keepalive_s: float = option(10.0, "seconds of audio without a request before a ping (0 = never)")
    token_margin_s: float = option(300.0, "start a new connection this long before the access token expires")

    def validate(self) -> None:
        if not (2 <= len(self.language) <= 12):
            raise OptionError(f"language {self.language!r} does not look like a language code")
        if not 0 < self.page_max_s <= MAX_PAGE_S:
            raise OptionError(f"page_max_s must be more than 0 and at most {MAX_PAGE_S:g} (UG Labs' limit per transcribe)")
        if not 0 < self.page_min_s <= self.page_target_s <= self.page_max_s:
            raise OptionError("need 0 < page_min_s <= page_target_s <= page_max_s")
        if not 0 < self.min_pause_s < self.page_min_s:
            raise OptionError("min_pause_s must be more than 0 and less than page_min_s")
        if not 1024 <= self.chunk_bytes <= MAX_CHUNK_BYTES:
            raise OptionError(f"chunk_bytes must be between 1024 and {MAX_CHUNK_BYTES}")
        if not 1 <= self.max_in_flight <= 16:
            raise OptionError("max_in_flight must be between 1 and 16")
        if self.keepalive_s < 0 or self.token_margin_s < 0:
            raise OptionError("keepalive_s and token_margin_s must not be negative")

    def page_rules(self) -> PageRules:
        return PageRules(
            rate=self.sample_rate,
            target_s=self.page_target_s,
            max_s=self.page_max_s,
            min_page_s=self.page_min_s,
            min_pause_s=self.min_pause_s,
            silence_dbfs=self.silence_dbfs,
        )


@dataclass
class _Request:
    uid: str
    kind: str
    text: str  # the serialized message
    final: tuple[float, float] | None = None  # a page's Final bounds, reported on this reply

    @property
    def barrier(self) -> bool:
        """Only add_audio chunks may overlap; anything else goes alone, in order."""
        return self.kind != "add_audio"


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    """One complete mono 16-bit WAV file holding `pcm`."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UgLabsProtocol(WireProtocol):
    reply_within = None  # captions come a page at a time (~8 s and more), never sooner
    frame_ms = 100

    def __init__(self, options: UgLabsOptions, key: str, clock: Callable[[], float] | None = None) -> None:
        self.options = options
        self.sample_rate = options.sample_rate
        # A page in flight plus a full one waiting (see accepts_audio), beyond the usual replay bound.
        self.replay_extra_seconds = options.page_max_s + options.page_target_s
        self._key = key
        self._clock = clock
        self._token: str | None = None
        self._refresh_at = math.inf
        self._authed = False
        self._pager = Pager(options.page_rules())
        self._queue: deque[_Request] = deque()
        self._inflight: dict[str, _Request] = {}
        self._ending = False
        self._idle_samples = 0  # audio taken since the last request went out
        self._finals = 0  # pages reported on this connection

    # ------------------------------------------------------------ login
    def login_request(self, endpoint: str) -> HttpRequest:
        body: dict[str, Any] = {"api_key": self._key}
        if self.options.team_name:
            body["team_name"] = self.options.team_name
        if self.options.federated_id:
            body["federated_id"] = self.options.federated_id
        return HttpRequest(http_base(endpoint) + LOGIN_PATH, body)

    def accept_login(self, status: int, body: bytes) -> None:
        if not 200 <= status < 300:
            err = self.classify_http(status, body)
            raise ProtocolError(ProviderError(err.code, "UG Labs login: " + err.message, err.kind))
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token.strip():
            raise ProtocolError(ProviderError("BAD_LOGIN", "UG Labs login answered without an access token", ErrorKind.RETRYABLE))
        ttl = as_float(data.get("expires_in"))
        if ttl is None or ttl < 0 or not math.isfinite(ttl):
            ttl = DEFAULT_TOKEN_TTL_S
        self._token = token.strip()
        self._refresh_at = self._time() + ttl - min(self.options.token_margin_s, ttl / 2)

    def secrets(self) -> tuple[str, ...]:
        return (self._token,) if self._token else ()

    def _time(self) -> float:
        return self._clock() if self._clock is not None else monotonic()

    # ---------------------------------------------------------- connect
    def connect_request(self, endpoint: str) -> ConnectRequest:
        headers = {}
        if self.options.auth_header and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return ConnectRequest(endpoint, headers)

    def on_open(self) -> list[Outgoing]:
        # The session always logs in first; without a token the server's refusal says why.
        self._queue.append(self._request("authenticate", access_token=self._token or ""))
        return self._release(1)

    # ------------------------------------------------------------ audio
    def accepts_audio(self) -> bool:
        # Hold back once a whole page waits behind the one in flight: bounded
        # memory, and the session's replay buffer still covers everything unanswered.
        return not self._busy or self._pager.buffered < self._pager.rules.target_samples

    def encode_audio(self, pcm: bytes) -> list[Outgoing]:
        self._pager.push(pcm)
        self._idle_samples += len(pcm) // 2
        if self._busy or not self._authed:
            return []
        self._next_work()
        return self._release(1)  # later ones go out from decode(), in order

    def end_stream(self) -> list[Outgoing]:
        self._ending = True
        if self._busy:
            return []  # the last pages follow the replies
        page = self._pager.next_page(final=True)
        if page is not None:
            self._queue_page(page)
        else:
            self._queue.append(self._request("ping"))  # its reply says "done"
        return self._release(1)

    @property
    def _busy(self) -> bool:
        return bool(self._queue or self._inflight)

    def _next_work(self) -> None:
        """When idle: queue the next page if one is due, else a keepalive ping
        once enough audio went by without any request (the session's watchdog
        wants to hear from the server while audio flows)."""
        page = self._pager.next_page()
        if page is not None:
            self._queue_page(page)
        elif self.options.keepalive_s > 0 and self._idle_samples >= self.options.keepalive_s * self.sample_rate:
            self._queue.append(self._request("ping"))

    def _queue_page(self, page: Page) -> None:
        rate = self.sample_rate
        if page.speech is None:
            # Nothing to transcribe, but its time is done: a ping carries its (empty) Final.
            self._queue.append(self._request("ping", final=(page.start / rate, page.end / rate)))
            return
        wav = wav_bytes(page.pcm, rate)
        config = {"mime_type": "audio/wav", self.options.rate_field: rate}
        step = self.options.chunk_bytes
        for at in range(0, len(wav), step):
            audio = base64.b64encode(wav[at : at + step]).decode("ascii")
            self._queue.append(self._request("add_audio", audio=audio, config=config))
        start, end = page.speech
        self._queue.append(self._request("transcribe", final=(start / rate, end / rate), language_code=self.options.language))
        self._queue.append(self._request("clear_audio"))

    def _request(self, kind: str, final: tuple[float, float] | None = None, **fields: Any) -> _Request:
        uid = str(uuid.uuid4())
        message = {"type": "request", "uid": uid, "kind": kind, self.options.time_field: _now_iso(), **fields}
        return _Request(uid, kind, json.dumps(message), final)

    def _release(self, limit: int) -> list[Outgoing]:
        """Move requests from the queue onto the wire: at most `limit`, within
        the window, and never past a request that must go alone."""
        out: list[Outgoing] = []
        window = self.options.max_in_flight
        while self._queue and len(out) < limit and len(self._inflight) < window:
            request = self._queue[0]
            if request.barrier and self._inflight:
                break
            self._queue.popleft()
            self._inflight[request.uid] = request
            out.append(request.text)
            self._idle_samples = 0
            if request.barrier:
                break
        return out

    # ----------------------------------------------------------- decode
    def decode(self, frame: Outgoing, audio_sent: float) -> Decoded:
        msg = parse_json_object(frame, "UG Labs")
        mtype = msg.get("type")
        if mtype == "debug":
            return Decoded()
        if mtype == "error":
            # The SDK's server side sends this for any failure of its own
            # ("Unexpected message format", an internal error) and closes:
            # a broken connection to reconnect from, unless it names the key.
            detail = _text(msg.get("error") or msg.get("message")) or "no reason given"
            if _KEY_WORDS.search(detail):
                return Decoded([ProviderError("KEY_REJECTED", f"UG Labs refused the key: {detail}")])
            return Decoded([ProviderError("SERVER_ERROR", f"UG Labs reported an error: {detail}", ErrorKind.RETRYABLE)])
        if mtype not in ("response", None):  # docs.uglabs.app shows replies without "type"
            raise _bad(f"unknown message type {_short(mtype)}")
        uid = msg.get("uid")
        if not isinstance(uid, str):
            raise _bad("a reply without a uid")
        request = self._inflight.get(uid)
        if request is None:
            raise _bad("a reply to no pending request")
        kind = msg.get("kind")
        if kind == "error":
            del self._inflight[uid]
            return Decoded([self._request_error(request, msg.get("error"))])
        if kind != request.kind and not (request.kind == "authenticate" and kind == "authenticated"):
            raise _bad(f"a {_short(kind)} reply to a {request.kind!r} request")
        del self._inflight[uid]
        events: list[CaptionEvent] = []
        if request.kind == "authenticate":
            if msg.get("success") is False:
                return Decoded([self._request_error(request, msg.get("error") or "success: false")])
            self._authed = True
            return Decoded(ready=True)
        if request.kind == "transcribe":
            text = msg.get("text")
            if not isinstance(text, str):
                return Decoded([ProviderError("BAD_REPLY", "UG Labs answered transcribe without text", ErrorKind.RETRYABLE)])
            events.append(self._final(" ".join(text.split()), request))
        elif request.final is not None:
            events.append(self._final("", request))
        return self._after_reply(events)

    def _final(self, text: str, request: _Request) -> Final:
        assert request.final is not None
        self._finals += 1
        start, end = request.final
        return Final(text, start, end, timed=True)

    def _after_reply(self, events: list[CaptionEvent]) -> Decoded:
        if not self._busy:
            if self._ending:
                page = self._pager.next_page(final=True)
                if page is None:
                    return Decoded(events, done=True)
                self._queue_page(page)
            elif self._finals and self._time() >= self._refresh_at:
                events.append(
                    ProviderError(
                        "TOKEN_EXPIRING",
                        "the UG Labs access token is about to expire; continuing on a new connection",
                        ErrorKind.ROLLOVER,
                    )
                )
                return Decoded(events)
            else:
                self._next_work()
        return Decoded(events, send=self._release(self.options.max_in_flight))

    def _request_error(self, request: _Request, error: Any) -> ProviderError:
        detail = _text(error) or "no reason given"
        if request.kind == "authenticate" or "not authenticated" in detail.lower():
            # A fresh connection logs in again; repeated quick failures become fatal in the session.
            return ProviderError("AUTH_FAILED", f"UG Labs did not accept the access token: {detail}", ErrorKind.RETRYABLE)
        return ProviderError("REQUEST_FAILED", f"UG Labs refused {request.kind}: {detail}", ErrorKind.RETRYABLE)


_KEY_WORDS = re.compile(r"(?i)api[ _-]?key|unauthori[sz]ed|forbidden|invalid (?:credentials|token)")


def _text(value: Any) -> str:
    return value.strip()[:300] if isinstance(value, str) else ""


def _short(value: Any) -> str:
    return repr(value)[:40]


def _bad(what: str) -> ProtocolError:
    return ProtocolError(ProviderError("BAD_FRAME", f"UG Labs sent a malformed frame: {what}", ErrorKind.RETRYABLE))
