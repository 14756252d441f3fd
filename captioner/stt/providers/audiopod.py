"""AudioPod live transcription: the wire protocol.

`?api_key=` on the URL; a JSON `start` frame; the server's first frame is
`ready`; binary Int16LE 16 kHz mono audio in ~100 ms frames; `partial`,
`final` (words, `speech_final`), `usage`; `{"type":"end"}` → finals →
`completed`. Error codes are mapped to fatal / retryable / rollover.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

from captioner.stt.events import ErrorKind, Final, Partial, ProviderError, Usage
from captioner.stt.options import OptionError, option
from captioner.stt.protocol import (
    ConnectRequest,
    Decoded,
    Outgoing,
    ProtocolError,
    WireProtocol,
    as_float,
    parse_json_object,
)
from captioner.stt.urls import with_query
from captioner.stt.words import UnitlessWordTimes, join_words, majority_speaker, span

DEFAULT_ENDPOINT = "wss://api.audiopod.ai/api/v1/transcription/stream"


@dataclass(frozen=True)
class AudioPodOptions:
    language: str | None = option("en", "language code, or auto to let AudioPod detect it")
    diarize: bool = option(False, "label speakers")
    word_units: str = option(
        "auto", "unit of word start/end, undocumented by AudioPod: auto (told from the words' lengths), s or ms",
        ("auto", "s", "ms"),
    )
    rollover_margin_s: float = option(
        20.0, "start a new session up to this long before the session limit (ready.max_duration_seconds), right after "
        "an utterance's final, so the limit never cuts a word in two; 0: wait for MAX_DURATION_REACHED",
    )

    def validate(self) -> None:
        if self.language is not None and not (2 <= len(self.language) <= 12):
            raise OptionError(f"language {self.language!r} does not look like a language code")
        if not self.rollover_margin_s >= 0:
            raise OptionError("rollover_margin_s must not be negative")


_FATAL = {
    "INVALID_CONFIG": "AudioPod rejected the session configuration",
    "INSUFFICIENT_CREDITS": "not enough AudioPod credits to start a session; top up and retry",
    "PREMIUM_TIER_REQUIRED": "live transcription needs a paid AudioPod plan",
    "UNAUTHORIZED": "AudioPod rejected the API key",
    "INVALID_API_KEY": "AudioPod rejected the API key",
    "AUTHENTICATION_FAILED": "AudioPod rejected the API key",
}


class AudioPodProtocol(WireProtocol):
    sample_rate = 16000
    frame_ms = 100  # "send audio in small chunks (e.g. 100 ms) for the lowest latency"
    # Backlog only (files, replay): no documented limit. 1 s (32 KB) halves the
    # per-message cost on both ends of a file against 500 ms (the client: ~14 %
    # of its CPU, bench/RESULTS.md), and is as much as some streaming services
    # take in one message: larger would measure better and might be refused.
    max_frame_ms = 1000
    ping_interval = 8.0  # the official SDK's heartbeat
    secret_params: ClassVar[tuple[str, ...]] = ("api_key", "token")

    def __init__(self, options: AudioPodOptions, key: str) -> None:
        self.options = options
        self._key = key
        self._ready = False
        self._last_end = 0.0
        self._word_times = UnitlessWordTimes(options.word_units)
        self._roll_at: float | None = None  # seconds of this session's audio after which to roll over at a pause

    def connect_request(self, endpoint: str) -> ConnectRequest:
        # A short-lived JWT (browser/session clients) travels as ?token=, a key as ?api_key=.
        param = "token" if self._key.startswith("eyJ") and self._key.count(".") == 2 else "api_key"
        return ConnectRequest(with_query(endpoint, {param: self._key}))

    def on_open(self) -> list[Outgoing]:
        start = {
            "type": "start",
            "language": self.options.language,
            "diarize": self.options.diarize,
            "sample_rate": self.sample_rate,
            "channels": 1,
        }
        return [json.dumps(start)]

    def encode_audio(self, pcm: bytes) -> list[Outgoing]:
        return [pcm]

    def end_stream(self) -> list[Outgoing]:
        return [json.dumps({"type": "end"})]

    def decode(self, frame: Outgoing, audio_sent: float) -> Decoded:
        msg = parse_json_object(frame, "AudioPod")
        kind = msg.get("type")
        if not self._ready and kind not in ("ready", "error"):
            raise ProtocolError(ProviderError("BAD_FRAME", f"AudioPod sent {kind!r} before ready", ErrorKind.RETRYABLE))
        # (the usual frames first: partials and usage come several a second)
        if kind == "partial":
            text = msg.get("text")
            if not isinstance(text, str):
                raise _bad("partial without text")
            return Decoded([Partial(text.strip(), start=self._last_end)])
        if kind == "usage":
            return Decoded([Usage(credits=as_float(msg.get("credits_used")), raw=msg)])
        if kind == "final":
            final = self._final(msg, audio_sent)
            if self._roll_at is not None and final.end_of_utterance and audio_sent >= self._roll_at:
                # At the limit AudioPod finalizes mid-word, and the audio after
                # the last final is sent again to the next session: the cut
                # word would be heard twice. Between utterances nothing is cut.
                self._roll_at = None
                return Decoded([final, ProviderError(
                    "SESSION_LIMIT_NEAR", "the AudioPod session is near its length limit; continuing on a new session",
                    ErrorKind.ROLLOVER)])
            return Decoded([final])
        if kind == "ready":
            self._ready = True
            limit = as_float(msg.get("max_duration_seconds"))
            margin = self.options.rollover_margin_s
            if limit is not None and limit > 0 and margin > 0:
                self._roll_at = limit - min(margin, limit / 3)
            return Decoded(ready=True)
        if kind == "completed":
            usage = Usage(seconds=as_float(msg.get("streamed_seconds")), credits=as_float(msg.get("credits_used")), raw=msg)
            return Decoded([usage], done=True)
        if kind == "error":
            return Decoded([self._error(msg)])
        raise _bad(f"unknown message type {kind!r}")

    def _final(self, msg: dict, audio_sent: float) -> Final:
        text = msg.get("text")
        if not isinstance(text, str):
            raise _bad("final without text")
        words = self._word_times.parse(msg.get("words"), audio_sent)
        end_of_utterance = msg.get("speech_final") is not False
        speaker = msg.get("speaker")
        speaker = str(speaker) if speaker is not None else majority_speaker(words)
        if words:
            final = Final(text.strip(), *span(words), words, speaker, end_of_utterance)
        else:
            start = min(self._last_end, audio_sent)
            final = Final(text.strip() or join_words(words), start, audio_sent, (), speaker, end_of_utterance, timed=False)
        self._last_end = max(self._last_end, final.end)
        return final

    def _error(self, msg: dict) -> ProviderError:
        code = str(msg.get("code") or "ERROR")
        message = str(msg.get("message") or "")
        if code in _FATAL:
            return ProviderError(code, f"{_FATAL[code]}{': ' + message if message else ''}")
        if code == "MAX_DURATION_REACHED":
            return ProviderError(code, message or "the session reached its maximum length", ErrorKind.ROLLOVER)
        return ProviderError(code, message or "AudioPod reported an error", ErrorKind.RETRYABLE)

    def classify_close(self, code: int, reason: str) -> ProviderError:
        if code in (4001, 4003, 4401, 4403):
            return ProviderError("KEY_REJECTED", f"AudioPod rejected the API key ({code} {reason})".strip())
        return super().classify_close(code, reason)


def _bad(what: str) -> ProtocolError:
    return ProtocolError(ProviderError("BAD_FRAME", f"AudioPod sent a malformed frame: {what}", ErrorKind.RETRYABLE))
