"""Inworld STT (bidirectional WebSocket): the wire protocol.

`Authorization: Basic <key>` where the key is the Base64 credential copied
from the Inworld portal, sent verbatim. Client frames are one-key JSON objects
(protobuf oneof): `transcribeConfig` first, then `audioChunk` (base64 LINEAR16,
100 ms), `closeStream` at the end. Server frames are wrapped in `result`
(`transcription` with `isFinal` and `wordTimestamps`, `speechStarted`,
`speechStopped`, `usage`) or are `{"error":{code,message,details}}` with a gRPC
status code. proto3 JSON allows snake_case names and omits default values, so
both spellings are read and absent fields mean false / empty.

There is no "done" message after `closeStream`: the session finishes after
`end_idle_timeout` of quiet (or when the server closes). `endTurn` is never sent
before `closeStream` (it makes Inworld emit a second, hallucinated final).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from captioner.stt.events import ErrorKind, Final, Partial, ProviderError, SpeechStarted, SpeechStopped, Usage
from captioner.stt.options import OptionError, option
from captioner.stt.protocol import ConnectRequest, Decoded, Outgoing, ProtocolError, WireProtocol, as_float, parse_json_object
from captioner.stt.words import UnitlessWordTimes, join_words, span

DEFAULT_ENDPOINT = "wss://api.inworld.ai/stt/v1/transcribe:streamBidirectional"


@dataclass(frozen=True)
class InworldOptions:
    model_id: str = option("inworld/inworld-stt-1", "model, e.g. inworld/inworld-stt-1 or assemblyai/universal-streaming-english")
    language: str | None = option("en-US", "BCP-47 language code; none = let the model decide")
    include_word_timestamps: bool = option(True, "ask for word times (without them finals are placed by the sample clock)")
    word_time_units: str = option(
        "auto", "unit of unit-less word startTime/endTime, disputed: auto (told from the words' lengths), s or ms",
        ("auto", "s", "ms"),
    )
    end_idle_seconds: float = option(2.5, "after closeStream, finish once the server has been quiet this long")

    def validate(self) -> None:
        if not self.model_id or "/" not in self.model_id:
            raise OptionError(f"model_id {self.model_id!r} should look like vendor/model, e.g. inworld/inworld-stt-1")
        if self.language is not None and not (2 <= len(self.language) <= 16):
            raise OptionError(f"language {self.language!r} does not look like a BCP-47 code")
        if not (0.1 <= self.end_idle_seconds <= 30):
            raise OptionError("end_idle_seconds must be between 0.1 and 30")


# gRPC status codes (google.rpc.Code) → (name, kind, what it means for the user)
_GRPC: dict[int, tuple[str, ErrorKind, str]] = {
    1: ("CANCELLED", ErrorKind.RETRYABLE, "the request was cancelled"),
    2: ("UNKNOWN", ErrorKind.RETRYABLE, "unknown server error"),
    3: ("INVALID_ARGUMENT", ErrorKind.FATAL, "Inworld rejected the configuration"),
    4: ("DEADLINE_EXCEEDED", ErrorKind.RETRYABLE, "the server timed out"),
    5: ("NOT_FOUND", ErrorKind.FATAL, "Inworld could not find what was asked for"),
    7: ("PERMISSION_DENIED", ErrorKind.FATAL, "this key may not use this model or service"),
    8: ("RESOURCE_EXHAUSTED", ErrorKind.RETRYABLE, "rate or concurrency limit reached"),
    9: ("FAILED_PRECONDITION", ErrorKind.FATAL, "Inworld refused the request"),
    10: ("ABORTED", ErrorKind.RETRYABLE, "the stream was aborted"),
    11: ("OUT_OF_RANGE", ErrorKind.RETRYABLE, "a limit of the stream was reached"),
    12: ("UNIMPLEMENTED", ErrorKind.FATAL, "not supported by this model"),
    13: ("INTERNAL", ErrorKind.RETRYABLE, "internal server error"),
    14: ("UNAVAILABLE", ErrorKind.RETRYABLE, "the service is unavailable"),
    15: ("DATA_LOSS", ErrorKind.RETRYABLE, "data loss on the server"),
    16: ("UNAUTHENTICATED", ErrorKind.FATAL, "Inworld rejected the API key"),
}
_BY_NAME = {name: number for number, (name, _, _) in _GRPC.items()}
# RESOURCE_EXHAUSTED covers both rate limits (wait and retry) and spent quota
# (retrying cannot help): the message tells which.
_QUOTA = re.compile(r"(?i)quota|credit|billing|balance|payment|insufficient")
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d*)?)s\s*$")  # proto3 JSON google.protobuf.Duration
_CAMEL = re.compile(r"_([a-z0-9])")


class InworldProtocol(WireProtocol):
    """One Inworld connection. Word times are read in every documented shape
    (startTime/endTime in seconds or as Duration strings, startTimeMs/endTimeMs,
    startTimeSeconds/endTimeSeconds); unit-less numbers follow `word_time_units` (auto: told from the words)."""

    sample_rate = 16000
    frame_ms = 100
    ready_on_open = True  # there is no acknowledgement of transcribeConfig

    def __init__(self, options: InworldOptions, key: str) -> None:
        self.options = options
        self._key = key
        self.end_idle_timeout = options.end_idle_seconds
        self._word_times = UnitlessWordTimes(options.word_time_units)
        if not options.include_word_timestamps:
            # Finals then end where the sample clock stood when they came:
            # an estimate that holds only at real time (as VoiceRun's).
            self.estimate_pace = 1.0
        self._last_end = 0.0
        self._speech_at: float | None = None

    # ------------------------------------------------------------ outgoing
    def connect_request(self, endpoint: str) -> ConnectRequest:
        key = self._key.strip()
        if key[:6].lower() == "basic ":  # pasted with its scheme: do not say it twice
            key = key[6:].strip()
        return ConnectRequest(endpoint, {"Authorization": f"Basic {key}"})

    def transcribe_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "modelId": self.options.model_id,
            "audioEncoding": "LINEAR16",
            "sampleRateHertz": self.sample_rate,
            "numberOfChannels": 1,
        }
        if self.options.language is not None:
            config["language"] = self.options.language
        config["includeWordTimestamps"] = self.options.include_word_timestamps
        return config

    def on_open(self) -> list[Outgoing]:
        return [json.dumps({"transcribeConfig": self.transcribe_config()})]

    def encode_audio(self, pcm: bytes) -> list[Outgoing]:
        return [json.dumps({"audioChunk": {"content": base64.b64encode(pcm).decode("ascii")}})]

    def end_stream(self) -> list[Outgoing]:
        return [json.dumps({"closeStream": {}})]

    # ------------------------------------------------------------ incoming
    def decode(self, frame: Outgoing, audio_sent: float) -> Decoded:
        msg = _camel(parse_json_object(frame, "Inworld"))
        if "error" in msg:
            return Decoded([self._error(msg["error"])])
        body = msg.get("result", msg)  # the seed shows bodies without the wrapper
        if not isinstance(body, dict):
            raise _bad("a result that is not an object")
        events: list[Any] = []
        known = False
        for name, value in body.items():
            handler = _HANDLERS.get(name)
            if handler is None:
                continue
            if not isinstance(value, dict):
                raise _bad(f"{name} that is not an object")
            known = True
            events.extend(handler(self, value, audio_sent))
        if body and not known:
            raise _bad(f"an unknown message ({', '.join(sorted(map(str, body)))[:80]})")
        return Decoded(events)

    def _transcription(self, t: dict[str, Any], audio_sent: float) -> list[Any]:
        text = t.get("transcript", "")
        if not isinstance(text, str):
            raise _bad("a transcript that is not text")
        words = self._word_times.parse(_word_items(t.get("wordTimestamps")), audio_sent)
        text = text.strip() or join_words(words)
        if not t.get("isFinal"):
            start = span(words)[0] if words else self._utterance_start(audio_sent)
            return [Partial(text, start=start, end=span(words)[1] if words else None)]
        if words:
            final = Final(text, *span(words), words)
        else:
            # No word times: place the turn by its speechStarted and the sample clock.
            start = self._utterance_start(audio_sent)
            final = Final(text, start, max(start, audio_sent), timed=False)
        self._last_end = max(self._last_end, final.end)
        self._speech_at = None
        return [final]

    def _utterance_start(self, audio_sent: float) -> float:
        start = self._speech_at if self._speech_at is not None else self._last_end
        return min(start, audio_sent)

    def _speech_started(self, s: dict[str, Any], audio_sent: float) -> list[Any]:
        ms = as_float(s.get("startTimeMs"))
        at = ms / 1000.0 if ms is not None else audio_sent
        self._speech_at = at
        return [SpeechStarted(at)]

    def _speech_stopped(self, s: dict[str, Any], audio_sent: float) -> list[Any]:
        # Only the silence length is given: speech stopped that long before now.
        silence = as_float(s.get("silenceDurationMs"))
        return [SpeechStopped(max(0.0, audio_sent - (silence or 0.0) / 1000.0))]

    def _usage(self, u: dict[str, Any], audio_sent: float) -> list[Any]:
        ms = as_float(u.get("transcribedAudioMs"))
        return [Usage(seconds=None if ms is None else ms / 1000.0, raw=u)]

    def _error(self, body: Any) -> ProviderError:
        if not isinstance(body, dict):
            return ProviderError("ERROR", str(body or "Inworld reported an error"), ErrorKind.RETRYABLE)
        raw = body.get("code")
        message = str(body.get("message") or "")
        number: int | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            number = raw
        elif isinstance(raw, str):
            number = int(raw) if raw.strip().isdigit() else _BY_NAME.get(raw.strip().upper())
        if number not in _GRPC:
            return ProviderError(str(raw or "ERROR"), message or "Inworld reported an error", ErrorKind.RETRYABLE)
        name, kind, meaning = _GRPC[number]  # type: ignore[index]
        if number == 8 and _QUOTA.search(message):
            kind, meaning = ErrorKind.FATAL, "the account's quota is spent"
        if number == 16:
            name = "KEY_REJECTED"
        return ProviderError(name, f"{meaning}{': ' + message if message else ''}", kind)


_HANDLERS = {
    "transcription": InworldProtocol._transcription,
    "speechStarted": InworldProtocol._speech_started,
    "speechStopped": InworldProtocol._speech_stopped,
    "usage": InworldProtocol._usage,
}


def _camel(value: Any) -> Any:
    """proto3 JSON field names in lowerCamelCase, whichever spelling arrived."""
    if isinstance(value, dict):
        return {(_CAMEL.sub(lambda m: m.group(1).upper(), k) if isinstance(k, str) else k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _word_items(items: Any) -> Any:
    """Word items with Duration strings ("1.250s") made into explicit seconds."""
    if not isinstance(items, list):
        return items
    out = []
    for item in items:
        if isinstance(item, dict):
            item = dict(item)
            for key in ("startTime", "endTime"):
                value = item.get(key)
                match = _DURATION.match(value) if isinstance(value, str) else None
                if match:
                    item[key + "Seconds"] = float(match.group(1))
                    del item[key]
        out.append(item)
    return out


def _bad(what: str) -> ProtocolError:
    return ProtocolError(ProviderError("BAD_FRAME", f"Inworld sent {what}", ErrorKind.RETRYABLE))
