"""A strict fake of VoiceRun Transcribe's WebSocket.

Follows protocols/voicerun.md: the upgrade is always accepted and a bad or
missing key is a close with 4001 (documented); a header-less client may
authenticate with a first `{"type":"auth","token":…}` frame (browser example).
`session.created` is the first frame; audio before `session.update`, a wrong
`session.update`, bad base64 or an unknown message each get an error frame
`{"type":"error","error":{"code","message"}}` (codes are ours: VoiceRun's are
undocumented). Transcripts come from the audio actually received (tones.py);
speech.started comes from a separate energy detector, as a real VAD would.
`session.close` → remaining `transcription.completed` → `session.closed` →
close 1000.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tests.fakes.base import ENDS_SESSION, ConnRecord, FakeServer
from tests.fakes.tones import FRAME_S, ToneRecognizer

SESSION_KEYS = {"model", "provider", "language", "prompt", "input_audio_format", "sample_rate"}
PROVIDERS = {"DEEPGRAM", "OPENAI", "CARTESIA", "QWEN3"}
MAX_CHUNK_BYTES = 3200  # 100 ms of pcm16 at 16 kHz: a bound of our own (the overview only recommends 20 ms chunks)


class EnergyVad:
    """Speech onset from frame energy (20 ms frames), independent of the recognizer."""

    def __init__(self, rate: int = 16000, threshold: float = 10 ** (-30 / 20)) -> None:
        self.frame = int(FRAME_S * rate)
        self.threshold = threshold
        self._pending = np.zeros(0, np.float32)

    def onset(self, pcm: bytes) -> bool:
        data = np.concatenate([self._pending, np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0])
        n = len(data) // self.frame
        self._pending = data[n * self.frame :]
        if n == 0:
            return False
        frames = data[: n * self.frame].reshape(n, self.frame)
        return bool((np.sqrt(np.mean(frames**2, axis=1)) >= self.threshold).any())


class FakeVoiceRun(FakeServer):
    path = "/ws"

    def __init__(
        self,
        key: str = "vr_test_key_0123456789",
        refuse_with: tuple[str, str] | None = None,  # (code, message) error frame right after session.update
        word_times: bool = False,  # add undocumented "words" (start/end in seconds) to completed events
        on_close: str = "closed",  # after session.close: "closed" (session.closed, close 1000), "close" (1000 only),
        # or "hang" (nothing more, socket open): session.closed is not in the readable docs
    ) -> None:
        super().__init__()
        self.on_close = on_close
        self.key = key
        self.refuse_with = refuse_with
        self.word_times = word_times
        self.updates: list[dict] = []
        self.auth_modes: list[str] = []

    async def _error(self, ws: ServerConnection, code: str, message: str) -> None:
        await ws.send(json.dumps({"type": "error", "error": {"code": code, "message": message}}))

    async def _authenticate(self, ws: ServerConnection, record: ConnRecord) -> bool:
        header = ws.request.headers.get("Authorization")
        if header is not None:
            if header != f"Bearer {self.key}":
                self.violation(record, "bad Authorization header")
                await ws.close(4001, "Unauthorized")
                return False
            self.auth_modes.append("header")
            return True
        try:
            first = json.loads(await asyncio.wait_for(ws.recv(), 5))
        except (asyncio.TimeoutError, ConnectionClosed, ValueError, TypeError):
            first = None
        if isinstance(first, dict):
            record.messages.append({**first, "token": "***"} if "token" in first else first)
        if not (isinstance(first, dict) and first.get("type") == "auth" and first.get("token") == self.key):
            self.violation(record, "no valid key (header or auth message)")
            await ws.close(4001, "Unauthorized")
            return False
        self.auth_modes.append("message")
        return True

    async def session(self, ws: ServerConnection, record: ConnRecord) -> None:
        try:
            if not await self._authenticate(ws, record):
                return
            n = len(self.records)
            await ws.send(json.dumps({"type": "session.created", "session": {"id": f"ts_{n:012x}"}}))
            await self._loop(ws, record)
        except ConnectionClosed:
            return

    async def _loop(self, ws: ServerConnection, record: ConnRecord) -> None:
        rec = ToneRecognizer(16000)
        vad = EnergyVad()
        configured = False
        in_speech = False
        async for raw in ws:
            if isinstance(raw, bytes):
                self.violation(record, "binary frame")
                await self._error(ws, "invalid_message", "binary frames are not supported; send audio.append")
                continue
            try:
                msg: Any = json.loads(raw)
            except ValueError:
                self.violation(record, "malformed JSON")
                await self._error(ws, "invalid_json", "message is not valid JSON")
                continue
            kind = msg.get("type") if isinstance(msg, dict) else None
            if kind == "audio.append":
                record.messages.append({"type": "audio.append", "bytes": None})
                if not configured:
                    self.violation(record, "audio before session.update")
                    await self._error(ws, "session_not_configured", "send session.update before audio")
                    continue
                pcm = self._audio(msg)
                if pcm is None:
                    self.violation(record, "bad audio payload")
                    await self._error(ws, "invalid_audio", "audio must be base64 pcm16 (whole samples)")
                    continue
                record.messages[-1]["bytes"] = len(pcm)
                if len(pcm) > MAX_CHUNK_BYTES:
                    self.violation(record, f"audio chunk of {len(pcm)} bytes is over 100 ms")
                step = await self.take_audio(ws, record, pcm)
                if step in ENDS_SESSION:
                    return
                if step == "silent":
                    continue
                if not in_speech and vad.onset(pcm):
                    in_speech = True
                    await ws.send(json.dumps({"type": "speech.started"}))
                elif in_speech:
                    vad.onset(pcm)
                for event_kind, words in rec.feed(pcm):
                    in_speech = await self._send_result(ws, event_kind, words, in_speech)
                continue
            record.messages.append(msg)
            if kind == "session.update":
                problem = self._check_update(msg)
                if problem:
                    self.violation(record, problem)
                    await self._error(ws, "invalid_session_config", problem)
                    continue
                configured = True
                self.updates.append(msg)
                if self.refuse_with:
                    await self._error(ws, *self.refuse_with)
                    continue
                await ws.send(json.dumps({"type": "session.updated", "session": dict(msg["session"])}))
            elif kind == "session.close":
                if not record.silenced:
                    for event_kind, words in rec.flush():
                        in_speech = await self._send_result(ws, event_kind, words, in_speech)
                    if self.on_close == "hang":
                        async for _ in ws:
                            pass
                        return
                    if self.on_close == "closed":
                        await ws.send(json.dumps({"type": "session.closed"}))
                    await ws.close(1000)
                return
            else:
                self.violation(record, f"unexpected message type {kind!r}")
                await self._error(ws, "unknown_message_type", f"unknown message type {kind!r}")

    async def _send_result(self, ws: ServerConnection, kind: str, words: list, in_speech: bool) -> bool:
        text = " ".join(w.text for w in words)
        if kind == "partial":
            await ws.send(json.dumps({"type": "transcription.partial", "text": text}))
            return in_speech
        completed: dict[str, Any] = {"type": "transcription.completed", "text": text}
        if self.word_times:
            completed["words"] = [{"word": w.text, "start": w.start, "end": w.end} for w in words]
        await ws.send(json.dumps(completed))
        if in_speech:
            await ws.send(json.dumps({"type": "speech.stopped"}))
        return False

    @staticmethod
    def _audio(msg: dict) -> bytes | None:
        audio = msg.get("audio")
        if not isinstance(audio, str) or set(msg) != {"type", "audio"}:
            return None
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            return None
        return pcm if pcm and len(pcm) % 2 == 0 else None

    @staticmethod
    def _check_update(msg: dict) -> str | None:
        session = msg.get("session")
        if set(msg) != {"type", "session"} or not isinstance(session, dict):
            return "session.update needs exactly a session object"
        extra = set(session) - SESSION_KEYS
        if extra:
            return f"unknown session fields {sorted(extra)}"
        if not isinstance(session.get("model"), str) or not session["model"]:
            return "model is required"
        if session.get("provider") not in PROVIDERS:
            return f"provider must be one of {sorted(PROVIDERS)}"
        for name in ("language", "prompt"):
            if name in session and not isinstance(session[name], str):
                return f"{name} must be a string"
        if session.get("input_audio_format", "pcm16") != "pcm16":
            return "this fake only takes pcm16"
        if session.get("sample_rate", 16000) != 16000:
            return "this fake only takes 16000 Hz"
        return None
