"""Smallest.ai Waves real-time STT: the wire protocol.

`Authorization: Bearer <key>`; every setting travels in the query string (no
handshake message); binary Int16LE 16 kHz mono audio in 4096-byte frames;
`transcription` messages with `is_final` (replace vs fix) and `is_last`
(the session is done); opt-in VAD `speech_started`/`speech_ended`.

Two surfaces exist (protocols/smallest.md): the current unified endpoint
`/waves/v1/stt/live?model=pulse` (also `/waves/v1/pulse/get_text`), which ends
with `{"type":"close_stream"}` and names word times `words[]`, and the seed's
legacy Lightning endpoint `/api/v1/lightning/get_text`, which ends with
`{"type":"end"}` and names them `word_timestamps[]`. The endpoint path picks
the surface unless the `surface` option forces one; both word-array names are
accepted on either surface because the seed and the specs disagree.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from captioner.stt.events import (
    CaptionEvent,
    ErrorKind,
    Final,
    Partial,
    ProviderError,
    SpeechStarted,
    SpeechStopped,
    Word,
)
from captioner.stt.options import OptionError, option
from captioner.stt.protocol import (
    ConnectRequest,
    Decoded,
    Outgoing,
    ProtocolError,
    WireProtocol,
    http_detail,
    as_float,
    parse_json_object,
)
from captioner.stt.urls import with_query
from captioner.stt.words import join_words, majority_speaker, parse_words, span

DEFAULT_ENDPOINT = "wss://api.smallest.ai/waves/v1/stt/live"
#: The same in the US region, the only one that serves these languages
#: (South-Indian ones are India-only: the default endpoint's region).
US_ENDPOINT = "wss://api.us.smallest.ai/waves/v1/stt/live"
US_ONLY_LANGUAGES = frozenset({"zh", "yue", "ja", "ko"})
LEGACY_ENDPOINT = "wss://waves-api.smallest.ai/api/v1/lightning/get_text"

#: Reported times above this (seconds, ~11 days) are treated as malformed.
MAX_SECONDS = 1e6

UNIFIED = "unified"
LIGHTNING = "lightning"

#: End-of-session message of each surface.
END_MESSAGE = {UNIFIED: "close_stream", LIGHTNING: "end"}
#: The word-time array each surface documents (read first; the other is a fallback).
WORDS_FIELD = {UNIFIED: "words", LIGHTNING: "word_timestamps"}


@dataclass(frozen=True)
class SmallestOptions:
    language: str = option(
        "en",
        "language: en, hi, de, es, ru, it, fr, nl, pt, zh, yue, ja, ko, gu, mr, or, bn, ta, te, kn, ml, or an "
        "aggregator: north_indic, multi-asian, multi-south-indic (multi on the legacy Lightning endpoint); "
        "zh, yue, ja and ko are served in the US region, which the default endpoint then uses",
    )
    surface: str = option(
        "auto",
        "which API surface: auto = from the endpoint path (stt/live and pulse/get_text are unified, "
        "lightning/get_text is the seed's legacy one)",
        ("auto", UNIFIED, LIGHTNING),
    )
    model: str | None = option("pulse", "model= sent on the unified surface (none: do not send it)")
    end_message: str = option(
        "auto",
        "end-of-session message: auto = close_stream (unified) or end (lightning)",
        ("auto", "close_stream", "end"),
    )
    diarize: bool = option(False, "label speakers")
    vad_events: bool = option(False, "ask for speech_started / speech_ended events (unified surface)")
    punctuate: bool | None = option(None, "punctuation (none: the server's default)")
    eou_timeout_ms: int | None = option(None, "end-of-utterance silence in ms, 100-10000 (none: server default 800)")
    keywords: str | None = option(None, "boosted words, e.g. 'Captioner:2,Waves:1.5'")

    def validate(self) -> None:
        if self.language.lower() == "auto":
            raise OptionError("Smallest.ai's live endpoint does not detect the language: choose one (en, hi, de, …) "
                              "or an aggregator (multi-asian, multi-south-indic, north_indic; multi on the Lightning endpoint)")
        if not (2 <= len(self.language) <= 20) or not all(c.isalnum() or c in "-_" for c in self.language):
            raise OptionError(f"language {self.language!r} does not look like a language code")
        if self.eou_timeout_ms is not None and not (100 <= self.eou_timeout_ms <= 10000):
            # 0 is documented to break the connection (livekit/agents #5953).
            raise OptionError(f"eou_timeout_ms must be between 100 and 10000, got {self.eou_timeout_ms}")
        if self.model is not None and not self.model.strip():
            raise OptionError("model must not be empty (use none to leave it out)")


def surface_of(endpoint: str, forced: str = "auto") -> str:
    """The surface an endpoint speaks: the option when forced, else its path.
    Unknown paths (a local relay) get the current unified surface."""
    if forced != "auto":
        return forced
    path = urlsplit(endpoint).path.rstrip("/")
    if path.endswith("/lightning/get_text"):
        return LIGHTNING
    return UNIFIED


def _fatal_words(message: str) -> str | None:
    """A code for error frames that retrying cannot fix. The service sends no
    error codes on the socket, so this reads the message [inf]; anything not
    recognised is retried (the session caps retries and quick deaths). A
    settings complaint ("invalid", "unsupported") counts only before the
    first transcription (`SmallestProtocol._error_event`)."""
    low = message.lower().replace("_", " ")
    if "concurren" in low:
        return "CONCURRENCY_LIMIT"
    if any(w in low for w in ("unauthor", "api key", "invalid key", "forbidden")):
        return "KEY_REJECTED"
    if any(w in low for w in ("credit", "quota", "insufficient", "billing", "payment")):
        return "NO_CREDITS"
    if any(w in low for w in ("not enabled", "not supported", "unsupported", "invalid")):
        return "INVALID_CONFIG"
    return None


CONCURRENCY_TEXT = (
    "Smallest.ai closed the session because your organisation reached its limit of concurrent "
    "streaming sessions; stop other sessions (or raise the plan's limit) and start again"
)


class SmallestProtocol(WireProtocol):
    sample_rate = 16000
    frame_ms = 128  # 2048 samples = 4096 bytes, the documented chunk size
    max_frame_ms = 256  # 8192 bytes: the top of the documented 1024–8192 range (backlog only)
    #: "every 50–100 ms (≥ 20 ms apart)" (best practices; the seed's examples
    #: sleep 50 ms a chunk): a backlog or a file goes at most 5× real time.
    min_frame_interval = 0.05
    ready_on_open = True  # all configuration is in the URL; no handshake reply
    end_idle_timeout = None  # wait for is_last
    secret_params: ClassVar[tuple[str, ...]] = ("token",)

    def __init__(self, options: SmallestOptions, key: str) -> None:
        self.options = options
        self._key = key
        self.surface = surface_of(DEFAULT_ENDPOINT, options.surface)
        self._last_end = 0.0
        self._transcribing = False  # a transcription came: the settings were taken

    # ---------------------------------------------------------- requests
    def query_params(self) -> dict[str, str]:
        """Every query parameter this client sets, built in this one place."""
        o = self.options
        params: dict[str, str] = {}
        if self.surface == UNIFIED and o.model is not None:
            params["model"] = o.model
        params.update(
            language=o.language,
            encoding="linear16",
            sample_rate=str(self.sample_rate),
            word_timestamps="true",
        )
        if o.diarize:
            params["diarize"] = "true"
        if o.vad_events:
            params["vad_events"] = "true"
        if o.punctuate is not None:
            params["punctuate"] = "true" if o.punctuate else "false"
        if o.eou_timeout_ms is not None:
            params["eou_timeout_ms"] = str(o.eou_timeout_ms)
        if o.keywords:
            params["keywords"] = o.keywords
        return params

    def connect_request(self, endpoint: str) -> ConnectRequest:
        self.surface = surface_of(endpoint, self.options.surface)
        if endpoint == DEFAULT_ENDPOINT and self.options.language in US_ONLY_LANGUAGES:
            endpoint = US_ENDPOINT  # the India region refuses them (LANGUAGE_NOT_ENABLED_IN_REGION)
        return ConnectRequest(with_query(endpoint, self.query_params()), {"Authorization": f"Bearer {self._key}"})

    def encode_audio(self, pcm: bytes) -> list[Outgoing]:
        return [pcm]

    @property
    def end_message(self) -> str:
        chosen = self.options.end_message
        return END_MESSAGE[self.surface] if chosen == "auto" else chosen

    def end_stream(self) -> list[Outgoing]:
        return [json.dumps({"type": self.end_message})]

    # ----------------------------------------------------------- decoding
    def decode(self, frame: Outgoing, audio_sent: float) -> Decoded:
        msg = parse_json_object(frame, "Smallest.ai")
        kind = msg.get("type")
        # The seed's example response carries no "type" at all.
        if kind == "transcription" or (kind is None and ("transcript" in msg or "is_final" in msg)):
            return self._transcription(msg, audio_sent)
        if kind == "error" or msg.get("status") == "error":
            return Decoded([self._error_event(msg)])
        if kind in ("speech_started", "speech_ended"):
            at = as_float(msg.get("timestamp"))
            if "timestamp" in msg and (at is None or not _sane_time(at)):
                raise _bad(f"{kind} with a bad timestamp")
            return Decoded([SpeechStarted(at) if kind == "speech_started" else SpeechStopped(at)])
        raise _bad(f"unknown message type {kind!r}" if kind is not None else "a message without a type")

    def _transcription(self, msg: dict[str, Any], audio_sent: float) -> Decoded:
        self._transcribing = True
        text = msg.get("transcript", msg.get("transcription", ""))
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise _bad("transcript is not a string")
        is_final, is_last = _flag(msg, "is_final"), _flag(msg, "is_last")
        words = self._words(msg)
        speaker = msg.get("speaker")
        if isinstance(speaker, (dict, list, bool)):
            speaker = None
        speaker = str(speaker) if speaker is not None else majority_speaker(words)
        text = text.strip() or join_words(words)
        events: list[CaptionEvent] = []
        if not is_final and not is_last:
            if text:
                start = span(words)[0] if words else self._last_end
                events.append(Partial(text, start=start, end=span(words)[1] if words else None, speaker=speaker))
        elif text or words:
            events.append(self._final(text, words, speaker, audio_sent, msg.get("from_finalize") is not True))
        return Decoded(events, done=is_last)

    def _words(self, msg: dict[str, Any]) -> tuple[Word, ...]:
        own = WORDS_FIELD[self.surface]
        other = WORDS_FIELD[LIGHTNING if self.surface == UNIFIED else UNIFIED]
        for name in (own, other):
            items = msg.get(name)
            if items is not None and not isinstance(items, list):
                raise _bad(f"{name} is not a list")
            if items:
                words = parse_words(items, "s")
                if not all(_sane_time(w.start) and _sane_time(w.end) for w in words):
                    raise _bad(f"{name} holds a time that is negative, not finite or absurdly large")
                return words
        return ()

    def _final(self, text: str, words: tuple[Word, ...], speaker: str | None, audio_sent: float, eou: bool) -> Final:
        if words:
            final = Final(text, *span(words), words, speaker, eou)
        else:
            start = min(self._last_end, audio_sent)
            final = Final(text, start, max(start, audio_sent), (), speaker, eou, timed=False)
        self._last_end = max(self._last_end, final.end)
        return final

    def _error_event(self, msg: dict[str, Any]) -> ProviderError:
        raw = msg.get("message", msg.get("error"))
        message = raw if isinstance(raw, str) else ""
        given = msg.get("error_code", msg.get("code"))
        code = str(given) if isinstance(given, (str, int)) and not isinstance(given, bool) else None
        fatal = _fatal_words(f"{code or ''} {message}")
        if fatal == "INVALID_CONFIG" and self._transcribing:
            # The session's settings were taken: "Invalid audio chunk" mid-stream
            # is a hiccup to reconnect from, not a refusal.
            fatal = None
        if fatal == "CONCURRENCY_LIMIT":
            return ProviderError(fatal, f"{CONCURRENCY_TEXT} (server said: {message})")
        if fatal is not None:
            return ProviderError(code or fatal, f"Smallest.ai refused the session: {message or 'no reason given'}")
        return ProviderError(code or "SERVER_ERROR", f"Smallest.ai reported an error: {message or 'no reason given'}", ErrorKind.RETRYABLE)

    # -------------------------------------------------------------- errors
    def classify_http(self, status: int, body: bytes) -> ProviderError:
        detail = http_detail(body)
        if status == 401:
            return ProviderError("KEY_REJECTED", f"Smallest.ai rejected the API key (HTTP 401){detail}")
        if status == 400:
            return ProviderError(
                "BAD_REQUEST", f"Smallest.ai refused the session settings (HTTP 400){detail or ': no reason given'}"
            )
        if status == 410:
            return ProviderError(
                "ENDPOINT_RETIRED",
                f"Smallest.ai retired this endpoint (HTTP 410){detail}; try the default {DEFAULT_ENDPOINT}",
            )
        return super().classify_http(status, body)

    def classify_close(self, code: int, reason: str) -> ProviderError:
        if code == 1008:
            return ProviderError("CONCURRENCY_LIMIT", f"{CONCURRENCY_TEXT} (close 1008{': ' + reason if reason else ''})")
        return super().classify_close(code, reason)


def _sane_time(seconds: float) -> bool:
    """Seconds from the connection's first sample: finite, not negative, and
    below a bound that keeps sample arithmetic exact (NaN/inf are valid JSON
    to Python's parser)."""
    return math.isfinite(seconds) and 0.0 <= seconds < MAX_SECONDS


def _flag(msg: dict[str, Any], name: str) -> bool:
    value = msg.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(f"{name} is not a boolean")
    return value



def _bad(what: str) -> ProtocolError:
    return ProtocolError(ProviderError("BAD_FRAME", f"Smallest.ai sent a malformed frame: {what}", ErrorKind.RETRYABLE))
