"""A strict fake of Smallest.ai Waves real-time STT, both surfaces at once.

Follows the seed and protocols/smallest.md:
- Handshake: `Authorization: Bearer <key>` or HTTP 401 (`{"message"}` when the
  header is missing, `{"error"}` when the key is wrong); the unified paths
  (`/waves/v1/stt/live`, `/waves/v1/pulse/get_text`) need `model=pulse`, every
  path needs a supported `language`, else HTTP 400 with the reason.
- Audio: binary Int16LE frames (whole samples only), no audio after the end;
  when each frame arrived is recorded (frames should be ≥ 20 ms apart; a
  loaded reader bunches them, so tests check a run's span, not each gap).
- Text: only `finalize` (unified), and the surface's own end message:
  `close_stream` (unified) or `end` (Lightning). Anything else is a violation
  answered with an error frame and a close.
- Replies: `transcription` partials/finals from the tone recognizer over the
  audio actually received; word times (seconds) only with word_timestamps=true,
  in `words[]` (unified) or `word_timestamps[]` (Lightning, seed shape, no
  `type`); VAD events with vad_events=true; the end flushes a final with
  `is_last: true`, then close 1000.
- Org concurrency limit: an error frame then close 1008.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.fakes.base import ENDS_SESSION, ConnRecord, FakeServer
from tests.fakes.tones import RecognizedWord, ToneRecognizer

UNIFIED_PATHS = ("/waves/v1/stt/live", "/waves/v1/pulse/get_text")
LIGHTNING_PATH = "/api/v1/lightning/get_text"
#: protocols/smallest.md: the unified (Pulse) endpoint's languages and aggregators …
LANGUAGES = {"en", "hi", "de", "es", "ru", "it", "fr", "nl", "pt", "zh", "yue", "ja", "ko", "gu", "mr", "or", "bn",
             "ta", "te", "kn", "ml", "north_indic", "multi-asian", "multi-south-indic"}
#: … and the seed-era Lightning list (with `multi` = auto-detect; its full list is not known, so the union).
LIGHTNING_LANGUAGES = LANGUAGES | {"uk", "multi"}
SAMPLE_RATES = {"8000", "16000", "22050", "24000", "44100", "48000"}
BOOL_PARAMS = {
    "word_timestamps", "sentence_timestamps", "full_transcript", "diarize", "vad_events", "vad",
    "punctuate", "capitalize", "itn_normalize", "finalize_on_words", "redact_pii", "redact_pci", "format",
}
KNOWN_PARAMS = BOOL_PARAMS | {
    "model", "language", "encoding", "sample_rate", "eou_timeout_ms", "max_words", "keywords",
    "external_session_id", "token",
}


@dataclass
class _State:
    """What one connection asked for, and where its speech is."""

    surface: str
    session_id: str
    words: bool
    diarize: bool
    vad: bool
    in_speech: bool = False


def surface_of_path(path: str) -> str:
    return "lightning" if path == LIGHTNING_PATH else "unified"


class FakeSmallest(FakeServer):
    path = UNIFIED_PATHS[0]

    def __init__(
        self,
        key: str = "sk_test_fake_0123456789abcdef",
        path: str = UNIFIED_PATHS[0],
        speaker: int | str | None = None,  # label every word with this when diarize=true
        concurrency_limit: int | None = None,  # sessions open at once before close 1008
        concurrency_error_frame: bool = True,  # send an error frame before that close
    ) -> None:
        super().__init__()
        assert path in UNIFIED_PATHS + (LIGHTNING_PATH,)
        self.path = path
        self.key = key
        self.speaker = speaker
        self.concurrency_limit = concurrency_limit
        self.concurrency_error_frame = concurrency_error_frame
        self.open_sessions = 0
        self.queries: list[dict[str, str]] = []
        self.refusals: list[tuple[int, str]] = []

    # ----------------------------------------------------------- handshake
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path not in UNIFIED_PATHS + (LIGHTNING_PATH,):
            return connection.respond(404, f"no such path {path}\n")
        refusal = self.check_request(request)
        if refusal is not None:
            self.refusals.append(refusal)
            return connection.respond(*refusal)
        return None

    def check_request(self, request: Request) -> tuple[int, str] | None:
        auth = request.headers.get("Authorization")
        if auth is None:
            return 401, json.dumps({"message": "Unauthorized: missing Authorization header"})
        if auth != f"Bearer {self.key}":
            return 401, json.dumps({"error": "Invalid API key"})
        parts = urlsplit(request.path)
        raw = parse_qs(parts.query, keep_blank_values=True)
        if any(len(v) > 1 for v in raw.values()):
            return 400, json.dumps({"message": "repeated query parameter"})
        query = {k: v[0] for k, v in raw.items()}
        if surface_of_path(parts.path) == "unified":
            if "model" not in query:
                return 400, json.dumps({"message": "model is required (model=pulse)"})
            if query["model"] != "pulse":
                return 400, json.dumps({"message": f"unsupported model {query['model']!r}"})
        if "language" not in query:
            return 400, json.dumps({"message": "language is required"})
        if query["language"] not in (LANGUAGES if surface_of_path(parts.path) == "unified" else LIGHTNING_LANGUAGES):
            return 400, json.dumps({"message": f"unsupported language {query['language']!r}"})
        if query.get("encoding", "linear16") != "linear16":
            return 400, json.dumps({"message": "this fake decodes linear16 only"})
        if query.get("sample_rate", "16000") not in SAMPLE_RATES:
            return 400, json.dumps({"message": "unsupported sample_rate"})
        for name in BOOL_PARAMS & set(query):
            if query[name] not in ("true", "false"):
                return 400, json.dumps({"message": f"{name} must be true or false"})
        eou = query.get("eou_timeout_ms")
        if eou is not None and not (eou.isdigit() and 100 <= int(eou) <= 10000):
            return 400, json.dumps({"message": "eou_timeout_ms must be 100-10000"})
        return None

    # ------------------------------------------------------------- session
    async def _fail(self, ws: ServerConnection, message: str, code: int = 1003) -> None:
        await ws.send(json.dumps({"type": "error", "status": "error", "message": message}))
        await ws.close(code, message[:100])

    async def session(self, ws: ServerConnection, record: ConnRecord) -> None:
        parts = urlsplit(ws.request.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.queries.append(query)
        for name in sorted(set(query) - KNOWN_PARAMS):
            self.violation(record, f"unknown query parameter {name!r}")
        if query.get("sample_rate", "16000") != "16000":
            self.violation(record, "the client declared a rate the fake does not decode")
        surface = surface_of_path(parts.path)
        if self.concurrency_limit is not None and self.open_sessions >= self.concurrency_limit:
            if self.concurrency_error_frame:
                await ws.send(json.dumps({"type": "error", "status": "error", "message": "Concurrency limit reached for organization"}))
            await ws.close(1008, "concurrency limit reached")
            return
        self.open_sessions += 1
        try:
            await self._stream(ws, record, surface, query)
        finally:
            self.open_sessions -= 1

    async def _stream(self, ws: ServerConnection, record: ConnRecord, surface: str, query: dict[str, str]) -> None:
        word_default = "true" if surface == "lightning" else "false"  # seed-era Lightning spec: default true
        st = _State(
            surface=surface,
            session_id=f"sess_{len(self.records)}",
            words=query.get("word_timestamps", word_default) == "true",
            diarize=query.get("diarize") == "true",
            vad="true" in (query.get("vad_events"), query.get("vad")),
        )
        end_message = {"type": "close_stream"} if surface == "unified" else {"type": "end"}
        rec = ToneRecognizer(16000)
        try:
            async for msg in ws:
                if isinstance(msg, bytes):
                    record.messages.append(len(msg))
                    record.audio_times.append(time.monotonic())  # "≥ 20 ms apart" (best practices): tests check the spacing
                    if len(msg) > 8192:  # "4096 B recommended (1024–8192)"
                        self.violation(record, f"an audio frame of {len(msg)} bytes (at most 8192)")
                    if len(msg) % 2:
                        self.violation(record, "odd byte count")
                        return await self._fail(ws, "audio frames must hold whole 16-bit samples")
                    step = await self.take_audio(ws, record, msg)
                    if step in ENDS_SESSION:
                        return
                    if step == "silent":
                        continue
                    for kind, words in rec.feed(msg):
                        for reply in self._replies(st, kind, words):
                            await ws.send(json.dumps(reply))
                    continue
                try:
                    data: Any = json.loads(msg)
                except ValueError:
                    data = msg
                record.messages.append(data)
                if record.silenced:
                    continue
                if data == end_message:
                    flushed = [words for kind, words in rec.flush() if kind == "final"]
                    if not flushed:
                        flushed = [[]]
                    for i, words in enumerate(flushed):
                        for reply in self._replies(st, "final", words, last=i == len(flushed) - 1):
                            await ws.send(json.dumps(reply))
                    await ws.close(1000)
                    return
                if data == {"type": "finalize"} and surface == "unified":
                    for words in [w for k, w in rec.flush() if k == "final"]:
                        for reply in self._replies(st, "final", words, from_finalize=True):
                            await ws.send(json.dumps(reply))
                    continue
                if data in ({"type": "close_stream"}, {"type": "end"}):
                    self.violation(record, f"end message {data['type']!r} is not the {surface} surface's")
                else:
                    self.violation(record, f"unexpected text frame {data!r}")
                return await self._fail(ws, "unknown message type")
        except ConnectionClosed:
            return

    def _replies(self, st: "_State", kind: str, words: list[RecognizedWord], last: bool = False, from_finalize: bool = False) -> list[dict]:
        out: list[dict] = []
        if st.vad and words and not st.in_speech:
            st.in_speech = True
            out.append({"type": "speech_started", "session_id": st.session_id, "timestamp": words[0].start})
        final = kind == "final"
        text = " ".join(w.text for w in words)
        body: dict[str, Any] = {
            "session_id": st.session_id,
            "transcript": text,
            "is_final": final,
            "is_last": last,
        }
        if st.surface == "unified":
            body = {"type": "transcription", "status": "success", **body, "from_finalize": from_finalize}
        elif final:
            body["full_transcript"] = text  # the seed's example carries it on finals
        if final:
            body["language"] = "en"
        if st.words and words:
            items = []
            for w in words:
                item: dict[str, Any] = {"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3), "confidence": 0.91}
                if st.diarize and self.speaker is not None:
                    item["speaker"] = self.speaker
                items.append(item)
            body["words" if st.surface == "unified" else "word_timestamps"] = items
        out.append(body)
        if st.vad and final and st.in_speech:
            st.in_speech = False
            out.append({"type": "speech_ended", "session_id": st.session_id, "timestamp": words[-1].end if words else 0.0})
        return out
