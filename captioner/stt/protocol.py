"""The interface every provider module implements: its wire protocol, pure.

A `WireProtocol` never touches a socket, a timer or a retry. It says where to
connect and with which headers, turns audio and control into messages, and
turns server messages into normalized events (times in seconds relative to the
first sample sent on *this* connection). `StreamSession` drives it; a new
instance is made for every connection, so per-connection state lives here.
"""

from __future__ import annotations

import abc
import html
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence, Union

import orjson

from captioner.stt.events import CaptionEvent, ErrorKind, ProviderError

Outgoing = Union[str, bytes]


@dataclass(slots=True)
class ConnectRequest:
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class HttpRequest:
    """A plain HTTPS request a protocol needs before connecting (e.g. a login)."""

    url: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Decoded:
    """What one server frame means: events to publish, replies to send, and
    whether the connection became ready for audio or finished its work."""

    events: list[CaptionEvent] = field(default_factory=list)
    send: Sequence[Outgoing] = ()  # (most frames send nothing back: no list each)
    ready: bool = False
    done: bool = False


class WireProtocol(abc.ABC):
    """One provider's wire protocol for one connection."""

    #: Sample rate of the Int16LE mono PCM handed to `encode_audio`.
    sample_rate: int = 16000
    #: Preferred duration of one audio message.
    frame_ms: int = 100
    #: The longest audio message the protocol allows. When audio is already
    #: waiting (a file, the replay after a reconnect) frames up to this long go
    #: out: small frames buy latency only for audio that is not late yet.
    #: None: always `frame_ms`.
    max_frame_ms: int | None = None
    #: True when audio may flow right after `on_open` without waiting for a reply.
    ready_on_open: bool = False
    #: WebSocket keepalive ping interval in seconds (None: no pings).
    ping_interval: float | None = 20.0
    #: After `end_stream`, finish once no frame arrived for this long (for
    #: protocols with no "done" message). None: wait for `Decoded.done`.
    end_idle_timeout: float | None = None

    @property
    def says_done(self) -> bool:
        """Whether the protocol ends a session with a message of its own
        (`Decoded.done`), rather than by going quiet or closing."""
        return self.end_idle_timeout is None
    #: Replay margin (seconds) kept behind finals without times; None: the
    #: session's `untimed_margin`. A protocol whose estimate of a final's end is
    #: already conservative sets a smaller one (a larger margin doubles words).
    untimed_margin: float | None = None
    #: Audio (seconds) this protocol may hold unanswered beyond a streaming
    #: provider's open utterance (e.g. a page in flight plus the next one); the
    #: session keeps that much more for replay so a reconnect loses nothing.
    replay_extra_seconds: float = 0.0
    #: None: the times in this protocol's events are the provider's own. A
    #: number: they are estimates made from when its replies arrive (the
    #: sample clock at `decode`), late by the reply delay times the rate the
    #: audio goes at, so the session sends a file (and its replay) no faster
    #: than this many times real time. A live source is real time already.
    estimate_pace: float | None = None
    #: The least time between two audio frames the service accepts (seconds):
    #: a backlog, a replay after a reconnect or a file is spaced so; live
    #: audio comes slower than that by itself.
    min_frame_interval: float = 0.0
    #: Seconds of sound within which the service answers (a partial, a
    #: final): more without a word from it and the captions are behind, as
    #: `StreamSession.lag` says. None: it answers in pages (UG Labs).
    reply_within: float | None = 3.0
    #: The largest server message accepted.
    max_message_bytes: int = 4 * 1024 * 1024
    #: Names of query parameters that carry secrets (redacted in displays).
    secret_params: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def connect_request(self, endpoint: str) -> ConnectRequest:
        """URL and headers for the WebSocket handshake."""

    def login_request(self, endpoint: str) -> HttpRequest | None:
        """An HTTP request to make before connecting, if the protocol needs one."""
        return None

    def accept_login(self, status: int, body: bytes) -> None:
        """Take the login reply; raise `ProtocolError` when it refuses."""

    def secrets(self) -> tuple[str, ...]:
        """Credentials the login gave (an access token): redacted from every
        message and log, as the key is."""
        return ()

    def on_open(self) -> list[Outgoing]:
        """Messages to send as soon as the socket is open."""
        return []

    @abc.abstractmethod
    def encode_audio(self, pcm: bytes) -> list[Outgoing]:
        """Messages that carry one block of Int16LE mono PCM."""

    @abc.abstractmethod
    def end_stream(self) -> list[Outgoing]:
        """Messages that ask the server to flush and finish."""

    @abc.abstractmethod
    def decode(self, frame: Outgoing, audio_sent: float) -> Decoded:
        """Interpret one server frame. `audio_sent` is the seconds of audio sent
        on this connection so far (the sample clock, for providers that give no
        times). Raise `ProtocolError` for a frame that breaks the protocol."""

    def accepts_audio(self) -> bool:
        """Flow control: False while the protocol holds all the audio it should
        until the server answers (e.g. a request/response API). The session
        then waits for the next server frame before `encode_audio`, and its
        watchdog counts a quiet server as dead. Streaming protocols keep True."""
        return True

    def classify_http(self, status: int, body: bytes) -> ProviderError:
        """An HTTP status that refused the WebSocket upgrade, in words."""
        detail = http_detail(body)
        if status in (401, 403):
            return ProviderError("KEY_REJECTED", f"the provider rejected the API key (HTTP {status}){detail}")
        if status == 429:
            return ProviderError("RATE_LIMITED", f"too many requests (HTTP 429){detail}", ErrorKind.RETRYABLE)
        if status == 404:
            return ProviderError("NOT_FOUND", f"nothing at this address (HTTP 404){detail}: check the endpoint URL")
        if status in (501, 505):  # the server cannot do this request at all: retrying cannot change that
            return ProviderError("HTTP_%d" % status, f"the server does not support this request (HTTP {status}){detail}")
        if 400 <= status < 500:
            return ProviderError("HTTP_%d" % status, f"the provider refused the request (HTTP {status}){detail}")
        return ProviderError("HTTP_%d" % status, f"server error (HTTP {status}){detail}", ErrorKind.RETRYABLE)

    def classify_close(self, code: int, reason: str) -> ProviderError:
        """A close the client did not ask for, in words."""
        if code in (1000, 1001):
            return ProviderError("CLOSED", f"the server closed the connection ({code} {reason})".strip(), ErrorKind.RETRYABLE)
        if code == 1008:
            return ProviderError("POLICY", f"the server closed the connection for a policy violation: {reason or 'no reason given'}")
        return ProviderError(f"CLOSE_{code}", f"connection closed ({code} {reason})".strip(), ErrorKind.RETRYABLE)


class ProtocolError(Exception):
    """A server frame (or login reply) that breaks the protocol, or a refusal."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(str(error))
        self.error = error


def parse_json_object(frame: Outgoing, provider: str) -> dict[str, Any]:
    """Decode a text frame holding one JSON object, or raise a retryable
    `ProtocolError` that names what was wrong (never the frame's content).

    orjson, not json: every server frame of every provider passes here (10+ a
    second), and it parses them ~3x faster. It is also stricter, which suits a
    wire check: NaN/Infinity and lone surrogates are malformed JSON."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        raise ProtocolError(ProviderError("BAD_FRAME", f"{provider} sent a binary frame where JSON text was expected", ErrorKind.RETRYABLE))
    try:
        data = orjson.loads(frame)
    except ValueError as exc:
        raise ProtocolError(ProviderError("BAD_FRAME", f"{provider} sent malformed JSON ({exc.msg} at {exc.pos})", ErrorKind.RETRYABLE)) from None
    if not isinstance(data, dict):
        raise ProtocolError(ProviderError("BAD_FRAME", f"{provider} sent JSON that is not an object", ErrorKind.RETRYABLE))
    return data


def http_detail(body: bytes) -> str:
    """The server's own words from a refusal body ({"message"}, {"error"},
    {"detail"}, or {"error": {"message"}}), as ": words", or "". Always one
    short line: an HTML error page gives its title or first words, never
    its markup (it went into every retry warning, ten lines at a time)."""
    if not body:
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        text = short_text(body[:4096].decode("utf-8", "replace"))
        return f": {text}" if text else ""
    if isinstance(data, dict):
        for key in ("message", "error", "detail"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return f": {short_text(value)}"
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return f": {short_text(value['message'])}"
    return ""


_HTML_NOISE = re.compile(r"(?is)<(head|script|style)\b.*?</\1\s*>|<!--.*?-->|<![^>]*>")
_TITLE = re.compile(r"(?is)<title\b[^>]*>(.*?)</title\s*>")
_TAG = re.compile(r"(?s)<[^>]*>")


def short_text(text: str, limit: int = 100) -> str:
    """`text` from a server as one short line for a message: HTML reduced to
    its title (or, without one, its words), whitespace and control
    characters collapsed, cut at `limit` characters."""
    if "<" in text and ">" in text:
        title = _TITLE.search(text)
        text = title.group(1) if title else _TAG.sub(" ", _HTML_NOISE.sub(" ", text))
        text = html.unescape(text)
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def as_float(value: Any) -> float | None:
    """A JSON number as a finite float, or None when absent, not a number, or
    not finite: "NaN" and "Infinity" (strings, as proto3 JSON writes them)
    are no time, count or length, and one that got through would crash the
    sample clock (int(round(inf))) and end the session."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, str)):
        try:
            number = float(value)
        except (ValueError, OverflowError):  # OverflowError: an int beyond a double
            return None
        return number if math.isfinite(number) else None
    return None
