"""VoiceRun Transcribe: the wire protocol.

`Authorization: Bearer <key>` on the handshake (or, browser style, a first
`{"type":"auth","token":…}` message); the server opens with `session.created`;
we answer `session.update` (model, upstream provider, language, pcm16, 16 kHz);
`session.updated` means ready. Audio is base64 inside JSON `audio.append`
frames of 40 ms (the overview recommends 20 ms chunks; 40 ms halves the
messages, and no limit is documented; the fake takes up to 100 ms). The server sends
`speech.started` / `speech.stopped`, `transcription.partial` (replaces) and
`transcription.completed` (final). `session.close` → `session.closed` ends it (or, as
`session.closed` is undocumented, `end_idle_timeout` of quiet after it).
A bad key is a close with code 4001 after the upgrade, not an HTTP 401.

VoiceRun documents no timestamps, so finals are normally `Final(timed=False)`
whose times are estimated from the sample clock (see `VoiceRunProtocol`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from captioner.stt.events import ErrorKind, Final, Partial, ProviderError, SpeechStarted, SpeechStopped
from captioner.stt.options import OptionError, option
from captioner.stt.protocol import ConnectRequest, Decoded, Outgoing, ProtocolError, WireProtocol, parse_json_object
from captioner.stt.words import UnitlessWordTimes, join_words, span

DEFAULT_ENDPOINT = "wss://transcribe.voicerun.com/ws"
UPSTREAMS = ("DEEPGRAM", "OPENAI", "CARTESIA", "QWEN3")
#: Default end-of-utterance silence of each upstream engine on the VoiceRun
#: platform (docs: agent-building/speech-to-text). Used only to estimate where
#: an utterance ended; not documented for the Transcribe API itself.
ENDPOINTING_MS = {"DEEPGRAM": 300, "OPENAI": 500, "CARTESIA": 300, "QWEN3": 800}


@dataclass(frozen=True)
class VoiceRunOptions:
    model: str = option("nova-3", "speech model, e.g. nova-3 (Deepgram) or gpt-4o-transcribe (OpenAI)")
    provider: str = option("DEEPGRAM", "upstream engine that runs the model", UPSTREAMS)
    language: str = option("en", "BCP-47 language code; auto or multi = detect it; none = the server's default (en)")
    prompt: str | None = option(None, "keywords (Deepgram) or context (OpenAI) to bias recognition")
    auth: str = option(
        "header", "send the key as an Authorization header, or as a first auth message (browser style)", ("header", "message")
    )
    endpointing_ms: int | None = option(
        None, "silence (ms) after which the engine ends an utterance; estimates where untimed finals end (default per engine)"
    )
    word_units: str = option(
        "auto", "unit of unit-less word start/end, should a completed event carry any: auto (told from the words' "
        "lengths), s or ms", ("auto", "s", "ms"),
    )

    def validate(self) -> None:
        if not self.model or not self.model.strip():
            raise OptionError("model must not be empty (e.g. nova-3)")
        if not (2 <= len(self.language) <= 16):
            raise OptionError(f"language {self.language!r} does not look like a BCP-47 code")
        if self.endpointing_ms is not None and not (0 <= self.endpointing_ms <= 5000):
            raise OptionError("endpointing_ms must be between 0 and 5000")


# Error codes are undocumented: these word fragments are how an error says it
# is about the key, money or the configuration (retrying cannot fix those).
_KEY_WORDS = ("auth", "api_key", "apikey", "forbidden", "permission", "token")
_FATAL_WORDS = ("invalid", "unsupported", "config", "quota", "credit", "payment", "insufficient", "billing", "model")
# Checked first: specific, so "unsupported_sample_rate" is no rate limit.
_RETRY_WORDS = ("rate_limit", "ratelimit", "rate limit", "too_many", "timeout", "unavailable", "upstream", "internal",
                "overload")


class VoiceRunProtocol(WireProtocol):
    """One VoiceRun connection.

    Times: VoiceRun documents no timestamps. A final's start is where the sample
    clock stood when `speech.started` arrived (else the end of the previous
    final); its end is the clock when `speech.stopped` or the final arrived,
    minus the engine's endpointing silence (the engine only ends an utterance
    after that much silence). Such finals are `timed=False`; the replay margin
    after them is that same endpointing silence. Estimates run late by the
    network delay and only hold when audio is paced in real time, which is why
    the protocol declares `estimate_pace` (the session paces files). Should a
    `completed` event carry word or segment times, they are used instead.
    """

    sample_rate = 16000
    frame_ms = 40
    #: After `session.close`, finish once the server has been quiet this long:
    #: `session.closed` is "not shown in readable docs", and waiting for it
    #: cost every file the whole drain timeout against a server without it.
    end_idle_timeout = 3.0
    #: Real time, no faster: a final is placed where the clock stood when its
    #: reply arrived, so at k x real time it lands k reply delays late (a
    #: 300 ms round trip at 4x: 1.2 s). At 1x the error is one reply delay,
    #: as when captioning live, and an estimated end never runs ahead of the
    #: audio the engine has heard by more than that.
    estimate_pace = 1.0

    def __init__(self, options: VoiceRunOptions, key: str) -> None:
        self.options = options
        self._key = key
        self._word_times = UnitlessWordTimes(options.word_units)
        ms = options.endpointing_ms if options.endpointing_ms is not None else ENDPOINTING_MS.get(options.provider, 500)
        self._endpointing = ms / 1000.0
        # The final's end estimate already sits one endpointing window behind
        # the clock, so the session needs no further replay margin.
        self.untimed_margin = 0.0
        self._created = False
        self._ready = False
        self._last_end = 0.0  # end of the previous final, connection time
        self._speech_at: float | None = None  # clock when speech.started arrived
        self._stopped_at: float | None = None  # clock when speech.stopped arrived

    # ------------------------------------------------------------ outgoing
    def connect_request(self, endpoint: str) -> ConnectRequest:
        if self.options.auth == "header":
            return ConnectRequest(endpoint, {"Authorization": f"Bearer {self._key}"})
        return ConnectRequest(endpoint)

    def on_open(self) -> list[Outgoing]:
        if self.options.auth == "message":
            return [json.dumps({"type": "auth", "token": self._key})]
        return []

    def session_update(self) -> dict[str, Any]:
        session: dict[str, Any] = {"model": self.options.model, "provider": self.options.provider}
        language = self.options.language
        if language.lower() == "auto":
            language = "multi"  # VoiceRun's word for it; left out, the server would assume English
        if language.lower() != "none":
            session["language"] = language
        if self.options.prompt:
            session["prompt"] = self.options.prompt
        session["input_audio_format"] = "pcm16"
        session["sample_rate"] = self.sample_rate
        return {"type": "session.update", "session": session}

    def encode_audio(self, pcm: bytes) -> list[Outgoing]:
        return [json.dumps({"type": "audio.append", "audio": base64.b64encode(pcm).decode("ascii")})]

    def end_stream(self) -> list[Outgoing]:
        return [json.dumps({"type": "session.close"})]

    # ------------------------------------------------------------ incoming
    def decode(self, frame: Outgoing, audio_sent: float) -> Decoded:
        msg = parse_json_object(frame, "VoiceRun")
        kind = msg.get("type")
        if not isinstance(kind, str):
            raise _bad("a frame without a type")
        if kind == "error":
            return Decoded([self._error(msg.get("error"))])
        if kind == "session.created":
            if self._created:
                raise _bad("a second session.created")
            self._created = True
            return Decoded(send=[json.dumps(self.session_update())])
        if not self._created:
            raise _bad(f"{kind!r} before session.created")
        if kind == "session.updated":
            self._check_echo(msg.get("session"))
            self._ready = True
            return Decoded(ready=True)
        if kind == "session.closed":
            return Decoded(done=True)
        if not self._ready:
            raise _bad(f"{kind!r} before session.updated")
        if kind == "speech.started":
            self._speech_at, self._stopped_at = audio_sent, None
            return Decoded([SpeechStarted(audio_sent)])
        if kind == "speech.stopped":
            self._stopped_at = audio_sent
            return Decoded([SpeechStopped(audio_sent)])
        if kind == "transcription.partial":
            return Decoded([Partial(_text(msg, "transcription.partial"), start=self._utterance_start(audio_sent))])
        if kind == "transcription.completed":
            return Decoded([self._final(msg, audio_sent)])
        raise _bad(f"unknown message type {kind!r}")

    def _utterance_start(self, audio_sent: float) -> float:
        start = self._speech_at if self._speech_at is not None else self._last_end
        return min(start, audio_sent)

    def _final(self, msg: dict[str, Any], audio_sent: float) -> Final:
        text = _text(msg, "transcription.completed")
        words = self._word_times.parse(msg.get("words"), audio_sent)
        if words:
            final = Final(text or join_words(words), *span(words), words)
        else:
            # Segment-level times, should the event carry any (read like one word).
            segment = self._word_times.parse([{**msg, "text": text}], audio_sent)
            if segment:
                final = Final(text, segment[0].start, segment[0].end)
            else:
                start = self._utterance_start(audio_sent)
                heard = self._stopped_at if self._stopped_at is not None else audio_sent
                end = max(start, heard - self._endpointing)
                final = Final(text, start, end, timed=False)
        self._last_end = max(self._last_end, final.end)
        self._speech_at = self._stopped_at = None
        return final

    def _check_echo(self, session: Any) -> None:
        """The echo in `session.updated` must describe the audio we will send."""
        if not isinstance(session, dict):
            return
        rate, fmt = session.get("sample_rate"), session.get("input_audio_format")
        if (rate is not None and rate != self.sample_rate) or (fmt is not None and fmt != "pcm16"):
            raise ProtocolError(
                ProviderError(
                    "CONFIG_REJECTED",
                    f"VoiceRun set up the session for {fmt} at {rate} Hz instead of pcm16 at {self.sample_rate} Hz",
                )
            )

    def _error(self, body: Any) -> ProviderError:
        if isinstance(body, dict):
            code = str(body.get("code") or "ERROR")
            message = str(body.get("message") or "")
        else:
            code, message = "ERROR", str(body or "")
        low = code.lower()
        detail = f": {message}" if message else ""
        if any(w in low for w in _RETRY_WORDS):
            return ProviderError(code, message or "VoiceRun reported a temporary error", ErrorKind.RETRYABLE)
        if any(w in low for w in _KEY_WORDS) or low in ("unauthorized", "4001"):
            return ProviderError("KEY_REJECTED", f"VoiceRun rejected the API key ({code}){detail}")
        if any(w in low for w in _FATAL_WORDS):
            return ProviderError(code, f"VoiceRun refused the session{detail}")
        return ProviderError(code, message or "VoiceRun reported an error", ErrorKind.RETRYABLE)

    def classify_close(self, code: int, reason: str) -> ProviderError:
        if code in (4001, 4003, 4401, 4403):
            return ProviderError("KEY_REJECTED", f"VoiceRun rejected the API key ({code} {reason})".strip())
        return super().classify_close(code, reason)


def _text(msg: dict[str, Any], what: str) -> str:
    text = msg.get("text")
    if not isinstance(text, str):
        raise _bad(f"{what} without text")
    return text.strip()


def _bad(what: str) -> ProtocolError:
    return ProtocolError(ProviderError("BAD_FRAME", f"VoiceRun sent {what}", ErrorKind.RETRYABLE))
