"""A strict fake of UG Labs' Interaction API (login + transcription RPC).

UG Labs wants an HTTP POST (`/api/auth/login`) and a WebSocket (`/interact`)
on the same host:port, and websockets' server only parses GET. So a small
asyncio front reads each request head: it answers the login itself and hands
`GET /interact` to the internal websockets server (a byte proxy to another
loopback port), which is a `FakeServer` with its records and faults. A "drop"
fault aborts the internal socket; the front then aborts the client's.

Strict, after protocols/uglabs.md: text frames only; `authenticate` with a
token this fake issued first (else `kind:"error"`, "session is not
authenticated"); unique uuid4 uids; ISO-8601 request times; every reply has
the request's uid and kind plus server_start_time/server_end_time. add_audio
carries base64 WAV data of at most 32,000 raw bytes with a config whose
sampling_rate matches the WAV header; raw PCM is refused. The buffer holds ONE
WAV, parsed with `wave` at `transcribe` (error beyond 30 s) and kept until
`clear_audio`. Transcripts come from the audio received (tones.ToneRecognizer).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import ssl
import struct
import uuid
import wave
from datetime import datetime, timezone
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from tests.fakes.base import ENDS_SESSION, ConnRecord, FakeServer
from tests.fakes.tones import ToneRecognizer

LOGIN_PATH = "/api/auth/login"
MAX_CHUNK = 32_000
MAX_SECONDS = 30.0
FIELDS = {
    "authenticate": {"access_token"},
    "add_audio": {"audio", "config"},
    "transcribe": {"language_code"},
    "clear_audio": set(),
    "ping": set(),
}


def _iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class FakeUgLabs(FakeServer):
    path = "/interact"

    def __init__(
        self,
        api_key: str = "ug_test_key_0123456789",
        expires_in: float | None = 3600.0,  # None: the login reply has no expires_in
        rate_field: str = "sampling_rate",
        time_field: str = "client_start_time",
        fail_transcribe: tuple[int, ...] = (),  # 0-based transcribe numbers answered with kind:"error"
        reject_tokens: int = 0,  # refuse this many authenticate requests first
        debug_frames: bool = False,  # interleave {"type":"debug"} frames
        garbage_before_transcribe: Any = None,  # a raw frame sent before each transcribe reply
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.expires_in = expires_in
        self.rate_field = rate_field
        self.time_field = time_field
        self.fail_transcribe = set(fail_transcribe)
        self.reject_tokens = reject_tokens
        self.debug_frames = debug_frames
        self.garbage_before_transcribe = garbage_before_transcribe
        self.logins: list[dict[str, Any]] = []  # login bodies, in order
        self.tokens: dict[str, float] = {}  # token → loop time it expires
        self.transcribes: list[dict[str, Any]] = []  # one per page transcribed
        self.add_audio_sizes: list[int] = []  # raw bytes per add_audio message
        self._front: asyncio.AbstractServer | None = None
        self._ws_port = 0
        self._writers: set[asyncio.StreamWriter] = set()

    # ---------------------------------------------------------- lifecycle
    async def __aenter__(self) -> "FakeUgLabs":
        await super().__aenter__()
        self._ws_port = self.port
        self._front = await asyncio.start_server(self._front_conn, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._front.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._front is not None
        self._front.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await super().__aexit__(*exc)

    @property
    def login_url(self) -> str:
        if self.tls is not None:
            return f"https://localhost:{self.port}{LOGIN_PATH}"
        return f"http://127.0.0.1:{self.port}{LOGIN_PATH}"

    def _ws_tls(self) -> ssl.SSLContext | None:
        return None  # behind the front door, which speaks TLS when asked to

    # ------------------------------------------------------------- front
    async def _front_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                return self._respond(writer, 400, {"detail": "bad request line"})
            method, target, _ = parts
            headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if ":" in l)}
            path = target.split("?", 1)[0]
            if path == LOGIN_PATH:
                if method != "POST":
                    return self._respond(writer, 405, {"detail": "Method Not Allowed"})
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, payload = self._login(headers, body)
                return self._respond(writer, status, payload)
            if path == self.path and method == "GET":
                return await self._proxy(head, reader, writer)
            return self._respond(writer, 404, {"detail": "Not Found"})
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.close()

    def _respond(self, writer: asyncio.StreamWriter, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 422: "Unprocessable Entity"}
        writer.write(
            f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
        )

    def _login(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        if not headers.get("content-type", "").startswith("application/json"):
            self.logins.append({})
            return 422, {"detail": "expected a JSON body"}
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self.logins.append({})
            return 422, {"detail": "expected a JSON object"}
        self.logins.append(data)
        extra = set(data) - {"api_key", "team_name", "federated_id"}
        if extra or any(not isinstance(v, str) for v in data.values()):
            return 422, {"detail": f"unexpected login fields {sorted(extra)}"}
        if data.get("api_key") != self.api_key:
            return 401, {"error": "Invalid API key"}
        n = len(self.tokens)
        claims = base64.urlsafe_b64encode(json.dumps({"sub": "fake", "n": n}).encode()).rstrip(b"=").decode()
        token = f"eyJhbGciOiJIUzI1NiJ9.{claims}.fakesig{n}"
        ttl = 3600.0 if self.expires_in is None else self.expires_in
        self.tokens[token] = asyncio.get_running_loop().time() + ttl
        reply: dict[str, Any] = {"access_token": token}
        if self.expires_in is not None:
            reply["expires_in"] = self.expires_in
        return 200, reply

    async def _proxy(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._ws_port)
        up_writer.write(head)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> bool:
            """Copy until EOF; False when the source was reset (a dropped socket)."""
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                return False
            return True

        down = asyncio.ensure_future(pipe(up_reader, writer))
        up = asyncio.ensure_future(pipe(reader, up_writer))
        done, _ = await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
        if down in done:
            # The server side ended: mirror a reset as a reset, an EOF as a close.
            if not down.result() or self._dropped:
                writer.transport.abort()
            up.cancel()
        else:
            up_writer.close()
            down.cancel()
        await asyncio.gather(down, up, return_exceptions=True)
        up_writer.transport.abort()
        self._dropped = False

    _dropped = False

    def check_request(self, request: Request) -> tuple[int, str] | None:
        auth = request.headers.get("Authorization")
        if auth is not None:
            token = auth.removeprefix("Bearer ")
            if not auth.startswith("Bearer ") or not self._token_ok(token):
                return 401, json.dumps({"error": "invalid access token"})
        return None

    def _token_ok(self, token: object) -> bool:
        expires = self.tokens.get(token) if isinstance(token, str) else None
        return expires is not None and asyncio.get_running_loop().time() < expires

    # ---------------------------------------------------------- websocket
    async def session(self, ws: ServerConnection, record: ConnRecord) -> None:
        authed = False
        uids: set[str] = set()
        buf = bytearray()  # raw WAV bytes since the last clear_audio
        buf_rate: int | None = None
        try:
            async for raw in ws:
                if isinstance(raw, bytes):
                    self.violation(record, "binary frame")
                    await ws.send(json.dumps({"type": "error", "error": "binary frames are not supported"}))
                    await ws.close(1003)
                    return
                try:
                    msg = json.loads(raw)
                except ValueError:
                    msg = None
                if not isinstance(msg, dict):
                    self.violation(record, "not a JSON object")
                    await ws.send(json.dumps({"type": "error", "error": "invalid message"}))
                    await ws.close(1003)
                    return
                record.messages.append(msg)
                if record.silenced:
                    continue
                problem = self._check_envelope(msg, uids)
                uid, kind = msg.get("uid"), msg.get("kind")
                if problem:
                    self.violation(record, problem)
                    if isinstance(uid, str):
                        await self._error(ws, msg, problem)
                        continue
                    await ws.send(json.dumps({"type": "error", "error": problem}))
                    await ws.close(1008)
                    return
                uids.add(uid)
                if kind != "authenticate" and not authed:
                    self.violation(record, f"{kind} before authenticate")
                    await self._error(ws, msg, "session is not authenticated")
                    continue
                if self.debug_frames:
                    await ws.send(json.dumps({"type": "debug", "message": f"handling {kind}"}))
                if kind == "authenticate":
                    if self.reject_tokens > 0 or not self._token_ok(msg["access_token"]):
                        self.reject_tokens = max(0, self.reject_tokens - 1)
                        await self._error(ws, msg, "invalid or expired access token")
                        continue
                    authed = True
                    await self._reply(ws, msg)
                elif kind == "add_audio":
                    error, buf_rate = self._add_audio(msg, buf, buf_rate, record)
                    if error:
                        await self._error(ws, msg, error)
                    else:
                        await self._reply(ws, msg)
                elif kind == "transcribe":
                    error, pcm, rate = self._parse_buffer(buf, buf_rate, record)
                    if error:
                        await self._error(ws, msg, error)
                        continue
                    step = await self.take_audio(ws, record, pcm)
                    if step in ENDS_SESSION:
                        self._dropped = step == "drop"
                        return
                    if step == "silent":
                        continue
                    number = len(self.transcribes)
                    text = self._recognize(pcm, rate)
                    self.transcribes.append(
                        {"connection": len(self.records) - 1, "seconds": len(pcm) / 2 / rate, "rate": rate,
                         "text": text, "language_code": msg["language_code"], "failed": number in self.fail_transcribe}
                    )
                    if self.garbage_before_transcribe is not None:
                        await ws.send(self.garbage_before_transcribe)
                    if number in self.fail_transcribe:
                        await self._error(ws, msg, "transcription failed: upstream timeout")
                        continue
                    await self._reply(ws, msg, text=text)
                elif kind == "clear_audio":
                    buf.clear()
                    buf_rate = None
                    await self._reply(ws, msg)
                else:  # ping
                    await self._reply(ws, msg)
        except ConnectionClosed:
            return

    def _check_envelope(self, msg: dict[str, Any], uids: set[str]) -> str | None:
        if msg.get("type") != "request":
            return "type must be 'request'"
        uid = msg.get("uid")
        if not isinstance(uid, str):
            return "uid must be a string"
        try:
            if uuid.UUID(uid).version != 4:
                return "uid is not a uuid4"
        except ValueError:
            return "uid is not a uuid"
        if uid in uids:
            return "uid reused"
        kind = msg.get("kind")
        if kind not in FIELDS:
            return f"unknown request kind {kind!r}"
        stamp = msg.get(self.time_field)
        if not isinstance(stamp, str):
            return f"missing {self.time_field}"
        try:
            if datetime.fromisoformat(stamp.replace("Z", "+00:00")).tzinfo is None:
                return f"{self.time_field} has no time zone"
        except ValueError:
            return f"{self.time_field} is not ISO-8601"
        extra = set(msg) - {"type", "uid", "kind", self.time_field} - FIELDS[kind]
        if extra:
            return f"unexpected fields {sorted(extra)} in {kind}"
        missing = FIELDS[kind] - set(msg)
        if missing:
            return f"missing fields {sorted(missing)} in {kind}"
        if kind == "transcribe" and not (isinstance(msg["language_code"], str) and 2 <= len(msg["language_code"]) <= 12):
            return "language_code must be a language code"
        return None

    def _add_audio(self, msg: dict[str, Any], buf: bytearray, buf_rate: int | None, record: ConnRecord) -> tuple[str | None, int | None]:
        audio, config = msg["audio"], msg["config"]
        if not isinstance(audio, str):
            return "audio must be a base64 string", buf_rate
        try:
            chunk = base64.b64decode(audio.replace("\n", ""), validate=True)
        except (binascii.Error, ValueError):
            return "audio is not valid base64", buf_rate
        self.add_audio_sizes.append(len(chunk))
        if len(chunk) > MAX_CHUNK:
            self.violation(record, f"add_audio of {len(chunk)} bytes")
            return f"audio chunk larger than {MAX_CHUNK} bytes", buf_rate
        if not isinstance(config, dict) or set(config) != {"mime_type", self.rate_field}:
            self.violation(record, f"bad config {config!r}")
            return f"config must hold mime_type and {self.rate_field}", buf_rate
        rate = config[self.rate_field]
        if config["mime_type"] != "audio/wav" or not isinstance(rate, int) or isinstance(rate, bool):
            self.violation(record, f"bad config {config!r}")
            return "unsupported audio config", buf_rate
        if not buf:
            if len(chunk) < 44 or chunk[:4] != b"RIFF" or chunk[8:12] != b"WAVE":
                self.violation(record, "add_audio without a WAV header (raw PCM?)")
                return "invalid audio: expected a WAV file (audio/wav)", buf_rate
            header_rate = struct.unpack_from("<I", chunk, 24)[0]
            if header_rate != rate:
                self.violation(record, f"config rate {rate} but WAV header rate {header_rate}")
                return "sampling_rate does not match the WAV header", buf_rate
            buf_rate = rate
        elif rate != buf_rate:
            self.violation(record, "sampling_rate changed within one buffer")
            return "sampling_rate does not match the buffered audio", buf_rate
        buf += chunk
        return None, buf_rate

    def _parse_buffer(self, buf: bytearray, rate: int | None, record: ConnRecord) -> tuple[str | None, bytes, int]:
        if not buf or rate is None:
            self.violation(record, "transcribe with no audio")
            return "no audio to transcribe", b"", 0
        try:
            with wave.open(io.BytesIO(bytes(buf)), "rb") as w:
                channels, width, frame_rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
                pcm = w.readframes(frames)
        except (wave.Error, EOFError, struct.error) as exc:
            self.violation(record, f"buffer is not one WAV file: {exc}")
            return f"invalid audio: {exc}", b"", 0
        if (channels, width, frame_rate) != (1, 2, rate) or len(pcm) != frames * 2:
            self.violation(record, "WAV is not mono 16-bit at the configured rate, or truncated")
            return "invalid audio format", b"", 0
        riff_size = struct.unpack_from("<I", buf, 4)[0]
        if riff_size + 8 != len(buf):
            self.violation(record, "buffer holds more or less than one WAV file")
            return "invalid audio: trailing or missing bytes", b"", 0
        if frames / rate > MAX_SECONDS:
            self.violation(record, f"transcribe of {frames / rate:.2f} s")
            return "audio longer than 30 seconds; paginate", b"", 0
        return None, pcm, rate

    @staticmethod
    def _recognize(pcm: bytes, rate: int) -> str:
        rec = ToneRecognizer(rate)
        events = rec.feed(pcm) + rec.flush()
        return " ".join(w.text for kind, words in events if kind == "final" for w in words)

    async def _reply(self, ws: ServerConnection, msg: dict[str, Any], **fields: Any) -> None:
        await ws.send(json.dumps({
            "type": "response", "uid": msg["uid"], "kind": msg["kind"],
            "client_start_time": msg.get(self.time_field), "server_start_time": _iso(), "server_end_time": _iso(),
            **fields,
        }))

    async def _error(self, ws: ServerConnection, msg: dict[str, Any], error: str) -> None:
        await ws.send(json.dumps({
            "type": "response", "uid": msg.get("uid"), "kind": "error", "error": error,
            "client_start_time": msg.get(self.time_field), "server_start_time": _iso(), "server_end_time": _iso(),
        }))
