"""A strict fake of AudioPod's live transcription WebSocket.

Follows the seed and protocols/audiopod.md: `?api_key=` checked at the
handshake (HTTP 401 otherwise — undocumented upstream, our choice); the first
frame must be the exact `start` text frame (16 kHz, mono); `ready` first;
binary Int16LE audio only after `ready`, even byte counts only; `end` →
remaining finals → `completed` → close 1000. Transcripts come from the audio
actually received (the tone language in tones.py).
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from tests.fakes.base import ENDS_SESSION, ConnRecord, FakeServer
from tests.fakes.tones import ToneRecognizer

START_KEYS = {"type", "language", "diarize", "sample_rate", "channels"}


class FakeAudioPod(FakeServer):
    path = "/api/v1/transcription/stream"

    def __init__(
        self,
        key: str = "ap_test_key_0123456789",
        refuse_with: str | None = None,  # e.g. "INSUFFICIENT_CREDITS" right after start
        max_duration_seconds: float = 3600.0,
        word_units: str = "s",
        speaker: str | None = None,  # label every word with this speaker when diarize is on
    ) -> None:
        super().__init__()
        self.key = key
        self.refuse_with = refuse_with
        self.max_duration_seconds = max_duration_seconds
        self.word_units = word_units
        # Connections (0-based) that answer `end` with a bare close 1000: no
        # flush, no `completed` (a server that fails while finishing).
        self.close_on_end: set[int] = set()
        self.silent_on_end = False  # after `end`: the last captions, then nothing, socket open
        self.speaker = speaker
        self.starts: list[dict] = []

    def check_request(self, request: Request) -> tuple[int, str] | None:
        query = parse_qs(urlsplit(request.path).query)
        if query.get("api_key") != [self.key]:
            return 401, json.dumps({"message": "Invalid API key"})
        return None

    async def _error(self, ws: ServerConnection, code: str, message: str) -> None:
        await ws.send(json.dumps({"type": "error", "code": code, "message": message}))
        await ws.close(1000)

    async def session(self, ws: ServerConnection, record: ConnRecord) -> None:
        try:
            first = await asyncio.wait_for(ws.recv(), 5)
        except (asyncio.TimeoutError, ConnectionClosed):
            return
        if isinstance(first, bytes):
            self.violation(record, "audio before start")
            return await self._error(ws, "INVALID_CONFIG", "expected a start frame first")
        start = json.loads(first)
        record.messages.append(start)
        problem = self._check_start(start)
        if problem:
            self.violation(record, problem)
            return await self._error(ws, "INVALID_CONFIG", problem)
        self.starts.append(start)
        if self.refuse_with:
            return await self._error(ws, self.refuse_with, f"refused: {self.refuse_with}")
        n = len(self.records)
        await ws.send(
            json.dumps(
                {
                    "type": "ready",
                    "job_id": f"job_{n}",
                    "session_id": f"sess_{n}",
                    "taste": "premium",
                    "max_duration_seconds": self.max_duration_seconds,
                }
            )
        )
        rec = ToneRecognizer(16000)
        diarize = bool(start.get("diarize"))
        usage_at = 1.0
        try:
            async for msg in ws:
                if isinstance(msg, bytes):
                    record.messages.append(len(msg))
                    if len(msg) % 2:
                        self.violation(record, "odd byte count")
                        return await self._error(ws, "INVALID_CONFIG", "audio frames must hold whole 16-bit samples")
                    step = await self.take_audio(ws, record, msg)
                    if step in ENDS_SESSION:
                        return
                    if step == "silent":
                        continue
                    for kind, words in rec.feed(msg):
                        await ws.send(json.dumps(self._event(kind, words, diarize)))
                    while rec.seconds >= usage_at:  # one a second of audio, whatever the frame size
                        await ws.send(json.dumps({"type": "usage", "credits_used": round(usage_at / 60 * 220, 3)}))
                        usage_at += 1.0
                    if rec.seconds >= self.max_duration_seconds:
                        # "it was finalized and saved": flush the open utterance first
                        for kind, words in rec.flush():
                            await ws.send(json.dumps(self._event(kind, words, diarize)))
                        await ws.send(json.dumps({"type": "error", "code": "MAX_DURATION_REACHED", "message": "session limit"}))
                        await ws.send(json.dumps(self._completed(rec)))
                        await ws.close(1000)
                        return
                    continue
                data = json.loads(msg)
                record.messages.append(data)
                if data == {"type": "end"}:
                    if record.silenced:
                        continue
                    if len(self.records) - 1 in self.close_on_end:
                        await ws.close(1000)
                        return
                    for kind, words in rec.flush():
                        await ws.send(json.dumps(self._event(kind, words, diarize)))
                    if self.silent_on_end:  # every caption sent, no `completed`, the socket left open
                        async for _ in ws:
                            pass
                        return
                    await ws.send(json.dumps(self._completed(rec)))
                    await ws.close(1000)
                    return
                self.violation(record, f"unexpected text frame {data!r}")
                return await self._error(ws, "INVALID_CONFIG", "unexpected message")
        except ConnectionClosed:
            return

    def _check_start(self, start: object) -> str | None:
        if not isinstance(start, dict) or start.get("type") != "start":
            return "first frame is not a start frame"
        extra = set(start) - START_KEYS
        if extra:
            return f"unknown start fields {sorted(extra)}"
        if start.get("sample_rate") != 16000 or start.get("channels") != 1:
            return "only 16 kHz mono is supported"
        if not isinstance(start.get("diarize", False), bool):
            return "diarize must be a boolean"
        if start.get("language") is not None and not isinstance(start.get("language"), str):
            return "language must be a string or null"
        return None

    def _event(self, kind: str, words: list, diarize: bool) -> dict:
        text = " ".join(w.text for w in words)
        if kind == "partial":
            return {"type": "partial", "text": text}
        scale = 1000.0 if self.word_units == "ms" else 1.0
        items = []
        for w in words:
            item = {"word": w.text, "start": w.start * scale, "end": w.end * scale, "confidence": 0.93}
            if diarize and self.speaker is not None:
                item["speaker"] = self.speaker
            items.append(item)
        return {"type": "final", "text": text, "words": items, "speech_final": True}

    def _completed(self, rec: ToneRecognizer) -> dict:
        return {
            "type": "completed",
            "job_id": f"job_{len(self.records)}",
            "credits_used": round(rec.seconds / 60 * 220, 3),
            "streamed_seconds": rec.seconds,
            "transcript_path": f"transcripts/job_{len(self.records)}.json",
        }
