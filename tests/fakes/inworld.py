"""A strict fake of Inworld STT's bidirectional WebSocket.

Follows protocols/inworld.md: `Authorization: Basic <key>` exactly, else HTTP
401 at the handshake (what third-party clients observe); the first frame must
be `{"transcribeConfig":{…}}` with exactly the documented fields, else
`{"error":{"code":3,…}}` and close 1000; `audioChunk.content` is strict base64
of whole 16-bit samples. Results are `{"result":{…}}`: `speechStarted`,
interim and final `transcription` (with `wordTimestamps` in a configurable
shape, since the real field names and units are disputed), `speechStopped`.
`endTurn` finalizes the open turn. After `closeStream` the fake flushes, then
(configurably) closes 1000, stays open and silent (there is no "done" message),
or keeps chattering. Transcripts come from the audio actually received.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from tests.fakes.base import ENDS_SESSION, ConnRecord, FakeServer
from tests.fakes.tones import END_OF_UTTERANCE_S, ToneRecognizer
from tests.fakes.voicerun import EnergyVad

MODELS = {"inworld/inworld-stt-1", "assemblyai/universal-streaming-multilingual", "assemblyai/universal-streaming-english"}
CONFIG_TYPES = {
    "modelId": str,
    "audioEncoding": str,
    "sampleRateHertz": int,
    "numberOfChannels": int,
    "language": str,
    "includeWordTimestamps": bool,
}
# How word times are spelled: the field names/units are disputed upstream.
WORD_VARIANTS = ("seconds", "ms", "explicit_seconds", "unitless_ms", "duration", "string_ms")
AFTER_CLOSE = ("close", "silent", "usage_then_silent", "chatter")


def _snake(value: Any) -> Any:
    if isinstance(value, dict):
        return {re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), k): _snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake(v) for v in value]
    return value


class FakeInworld(FakeServer):
    path = "/stt/v1/transcribe:streamBidirectional"

    def __init__(
        self,
        key: str = "aW53b3JsZF90ZXN0OnNlY3JldA==",  # base64 "inworld_test:secret", as the portal gives it
        word_variant: str = "seconds",
        after_close: str = "close",
        snake_case: bool = False,  # answer with proto field names (snake_case) instead of camelCase
        refuse_with: tuple[int, str] | None = None,  # error right after the config, then close 1000
    ) -> None:
        super().__init__()
        assert word_variant in WORD_VARIANTS and after_close in AFTER_CLOSE
        self.key = key
        self.word_variant = word_variant
        self.after_close = after_close
        self.snake_case = snake_case
        self.refuse_with = refuse_with
        self.configs: list[dict] = []
        self.finished_at: list[float] = []  # loop time each connection's handler ended

    def check_request(self, request: Request) -> tuple[int, str] | None:
        if request.headers.get("Authorization") != f"Basic {self.key}":
            return 401, json.dumps({"error": {"code": 16, "message": "Unauthenticated", "details": []}})
        return None

    async def _send(self, ws: ServerConnection, body: dict) -> None:
        await ws.send(json.dumps(_snake(body) if self.snake_case else body))

    async def _fail(self, ws: ServerConnection, record: ConnRecord, code: int, message: str) -> None:
        self.violation(record, message)
        await ws.send(json.dumps({"error": {"code": code, "message": message, "details": []}}))
        await ws.close(1000)

    async def session(self, ws: ServerConnection, record: ConnRecord) -> None:
        try:
            await self._session(ws, record)
        except ConnectionClosed:
            pass
        finally:
            self.finished_at.append(asyncio.get_running_loop().time())

    async def _session(self, ws: ServerConnection, record: ConnRecord) -> None:
        try:
            first = json.loads(await asyncio.wait_for(ws.recv(), 5))
        except asyncio.TimeoutError:
            return
        except (ValueError, TypeError):
            return await self._fail(ws, record, 3, "first message is not JSON")
        record.messages.append(first)
        config = first.get("transcribeConfig", first.get("transcribe_config")) if isinstance(first, dict) else None
        if len(first) != 1 or not isinstance(config, dict):
            return await self._fail(ws, record, 3, "the first message must be transcribeConfig")
        problem = self._check_config(config)
        if problem:
            return await self._fail(ws, record, 3, problem)
        self.configs.append(config)
        if self.refuse_with:
            code, message = self.refuse_with
            await ws.send(json.dumps({"error": {"code": code, "message": message, "details": []}}))
            await ws.close(1000)
            return
        with_words = bool(config.get("includeWordTimestamps"))
        rec = ToneRecognizer(16000)
        vad = EnergyVad()
        in_speech = False
        async for raw in ws:
            try:
                msg: Any = json.loads(raw)
            except (ValueError, TypeError):
                return await self._fail(ws, record, 3, "messages must be JSON text")
            if not isinstance(msg, dict) or len(msg) != 1:
                return await self._fail(ws, record, 3, "a message must hold exactly one of audioChunk, endTurn, closeStream")
            name, body = next(iter(msg.items()))
            if name in ("audioChunk", "audio_chunk"):
                pcm = self._audio(body)
                if pcm is None:
                    return await self._fail(ws, record, 3, "audioChunk.content must be base64 LINEAR16")
                record.messages.append({"audioChunk": len(pcm)})
                step = await self.take_audio(ws, record, pcm)
                if step in ENDS_SESSION:
                    return
                if step == "silent":
                    continue
                onset = vad.onset(pcm)
                for kind, words in rec.feed(pcm):
                    in_speech = await self._result(ws, kind, words, with_words, in_speech)
                if not in_speech and onset:
                    in_speech = True
                    await self._send(ws, {"result": {"speechStarted": {"startTimeMs": self._onset_ms(rec, pcm), "confidence": 0.9}}})
                continue
            record.messages.append(msg)
            if body != {}:
                return await self._fail(ws, record, 3, f"{name} takes an empty object")
            if name in ("endTurn", "end_turn"):
                for kind, words in rec.flush():
                    in_speech = await self._result(ws, kind, words, with_words, in_speech)
            elif name in ("closeStream", "close_stream"):
                await self._close_stream(ws, record, rec, with_words, in_speech)
                return
            else:
                return await self._fail(ws, record, 3, f"unknown message {name!r}")

    async def _close_stream(self, ws: ServerConnection, record: ConnRecord, rec: ToneRecognizer, with_words: bool, in_speech: bool) -> None:
        if not record.silenced:
            for kind, words in rec.flush():
                in_speech = await self._result(ws, kind, words, with_words, in_speech)
        if self.after_close == "close":
            await ws.close(1000)
            return
        if self.after_close == "usage_then_silent":
            await self._send(ws, {"result": {"usage": {"transcribedAudioMs": int(rec.seconds * 1000), "modelId": self.configs[-1]["modelId"]}}})
        while True:  # stay open until the client leaves, silent or chattering
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.1)
            except asyncio.TimeoutError:
                if self.after_close == "chatter":
                    await self._send(ws, {"result": {"usage": {"transcribedAudioMs": int(rec.seconds * 1000)}}})
                continue
            self.violation(record, "a message after closeStream")
            record.messages.append(raw)

    @staticmethod
    def _onset_ms(rec: ToneRecognizer, pcm: bytes) -> int:
        """Where the first loud 20 ms frame of this chunk is, in ms since the first sample."""
        import numpy as np

        samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
        loud = np.flatnonzero(np.abs(samples) >= 10 ** (-30 / 20))
        first = int(loud[0]) if len(loud) else 0
        return int(round((rec.total_samples - len(samples) + first) / 16))

    async def _result(self, ws: ServerConnection, kind: str, words: list, with_words: bool, in_speech: bool) -> bool:
        body: dict[str, Any] = {"transcript": " ".join(w.text for w in words)}
        if kind == "final":
            body["isFinal"] = True  # interim results omit it: proto3 leaves out false
        if with_words:
            body["wordTimestamps"] = [self._word(w) for w in words]
        await self._send(ws, {"result": {"transcription": body}})
        if kind == "final" and in_speech:
            await self._send(ws, {"result": {"speechStopped": {"silenceDurationMs": int(END_OF_UTTERANCE_S * 1000)}}})
            return False
        return in_speech

    def _word(self, w: Any) -> dict[str, Any]:
        item: dict[str, Any] = {"word": w.text, "confidence": 0.91}
        v = self.word_variant
        if v == "seconds":
            item.update(startTime=w.start, endTime=w.end)
        elif v == "ms":
            item.update(startTimeMs=round(w.start * 1000), endTimeMs=round(w.end * 1000))
        elif v == "explicit_seconds":
            item.update(startTimeSeconds=w.start, endTimeSeconds=w.end)
        elif v == "unitless_ms":
            item.update(startTime=round(w.start * 1000), endTime=round(w.end * 1000))
        elif v == "duration":
            item.update(startTime=f"{w.start:.3f}s", endTime=f"{w.end:.3f}s")
        elif v == "string_ms":  # proto3 JSON writes int64 as strings
            item.update(startTimeMs=str(round(w.start * 1000)), endTimeMs=str(round(w.end * 1000)))
        return item

    @staticmethod
    def _audio(body: Any) -> bytes | None:
        if not isinstance(body, dict) or set(body) != {"content"} or not isinstance(body["content"], str):
            return None
        try:
            pcm = base64.b64decode(body["content"], validate=True)
        except (binascii.Error, ValueError):
            return None
        return pcm if pcm and len(pcm) % 2 == 0 else None

    @staticmethod
    def _check_config(config: dict) -> str | None:
        """The seed's own example has no numberOfChannels (proto3: absent is
        the default) and proto3 JSON takes an int32 as a number or a decimal
        string; anything else of the wrong type is refused."""
        extra = set(config) - set(CONFIG_TYPES)
        if extra:
            return f"unknown transcribeConfig fields {sorted(extra)}"
        for name, kind in CONFIG_TYPES.items():
            if name in ("includeWordTimestamps", "language", "numberOfChannels") and name not in config:
                continue
            if name not in config:
                return f"transcribeConfig.{name} is required"
            value = config[name]
            if kind is int and isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
                return f"transcribeConfig.{name} has the wrong type"
        if config["modelId"] not in MODELS:
            return f"No STT client found for model {config['modelId']}"
        if config["audioEncoding"] != "LINEAR16":
            return "only LINEAR16 is supported for streaming"
        if int(config["sampleRateHertz"]) != 16000 or int(config.get("numberOfChannels", 1)) != 1:
            return "this fake only takes 16 kHz mono"
        return None
