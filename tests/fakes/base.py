"""Shared plumbing for protocol-faithful fake provider servers on 127.0.0.1.

A fake records every connection (the request, each message received, the
audio bytes decoded) so tests can assert exactly what the client sent, and
offers faults on demand: drop the TCP connection, close with a code, go
silent, send a scripted error.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response


@dataclass
class ConnRecord:
    path: str
    headers: dict[str, str]
    messages: list[Any] = field(default_factory=list)  # decoded JSON or bytes, in order
    audio: bytearray = field(default_factory=bytearray)
    close_code: int | None = None
    violations: list[str] = field(default_factory=list)
    audio_times: list[float] = field(default_factory=list)  # when each audio frame was read (fakes that pace-check)
    silenced: bool = False  # a "silence" fault came: the fake reads on and answers nothing


@dataclass
class Fault:
    """One scripted fault, applied once to the connection number `on_connection`
    (0-based) when that connection has received `after_bytes` of audio."""

    action: str  # "drop" | "close" | "silence" | "error" (send payload, close 1000) | "inject" (send payload, go on)
    # | "bad-utf8" (a text frame with invalid UTF-8, then stop)
    after_bytes: int = 0
    on_connection: int = 0
    code: int = 1011
    payload: Any = None


ENDS_SESSION = frozenset({"drop", "close", "error"})  # fault actions after which a session loop returns


class FakeServer:
    """Base: subclasses implement `session(ws, record)`."""

    path = "/"

    def __init__(self) -> None:
        self.records: list[ConnRecord] = []
        self.faults: list[Fault] = []
        self._server: Any = None
        self.port = 0
        #: Serve wss:// (and https:// for a login) with this context, as the
        #: real providers do; set before entering. The URL then names
        #: "localhost", the name a test certificate is issued for.
        self.tls: ssl.SSLContext | None = None

    # -- lifecycle
    async def __aenter__(self) -> "FakeServer":
        self._server = await serve(self._handler, "127.0.0.1", 0, process_request=self._process_request, max_size=2**22,
                                   max_queue=None, ssl=self._ws_tls())
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def _ws_tls(self) -> ssl.SSLContext | None:
        """The context of the WebSocket listener (a fake with a front door of
        its own keeps its inner listener plain)."""
        return self.tls

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return self.url_for(self.path)

    def url_for(self, path: str) -> str:
        if self.tls is not None:
            return f"wss://localhost:{self.port}{path}"
        return f"ws://127.0.0.1:{self.port}{path}"

    # -- handshake
    def check_request(self, request: Request) -> tuple[int, str] | None:
        """Return (status, body) to refuse the upgrade, or None to accept."""
        return None

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path != self.path:
            return connection.respond(404, f"no such path {path}\n")
        refusal = self.check_request(request)
        if refusal is not None:
            status, body = refusal
            return connection.respond(status, body)
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        record = ConnRecord(ws.request.path, dict(ws.request.headers.raw_items()))
        self.records.append(record)
        try:
            await self.session(ws, record)
        finally:
            record.close_code = ws.close_code

    async def session(self, ws: ServerConnection, record: ConnRecord) -> None:
        raise NotImplementedError

    # -- faults
    async def maybe_fault(self, ws: ServerConnection, record: ConnRecord) -> str | None:
        """Apply a due fault; returns its action ("drop", "close", "silence",
        "error", "inject") or None. After one in ENDS_SESSION the connection
        is over and the session loop returns; after "silence" it keeps
        reading and answers nothing."""
        index = len(self.records) - 1
        injected = None
        for fault in list(self.faults):
            if fault.on_connection == index and len(record.audio) >= fault.after_bytes:
                self.faults.remove(fault)
                if fault.action == "inject":  # every one due, however large the client's frames
                    await ws.send(fault.payload)  # raw str or bytes, possibly garbage
                    injected = "inject"
                    continue
                if fault.action == "drop":
                    ws.transport.abort()
                elif fault.action == "close":
                    await ws.close(fault.code, "fault injected")
                elif fault.action == "error":
                    await ws.send(json.dumps(fault.payload))
                    await ws.close(1000)
                elif fault.action == "bad-utf8":
                    await ws.send(b'{"type": "partial", "text": "\xff\xfe"}', text=True)  # a text frame that is not UTF-8
                    return "inject"  # keep serving: the client must fail the connection (1007)
                return fault.action
        return injected

    async def take_audio(self, ws: ServerConnection, record: ConnRecord, pcm: bytes) -> str | None:
        """Keep a client's audio, then apply a due fault: its action when it
        ends the session (ENDS_SESSION: return), "silent" after a "silence"
        fault, now or earlier (read on, answer nothing), else None (answer)."""
        record.audio += pcm
        if record.silenced:
            return "silent"
        fault = await self.maybe_fault(ws, record)
        if fault in ENDS_SESSION:
            return fault
        if fault == "silence":
            record.silenced = True
            return "silent"
        return None

    def violation(self, record: ConnRecord, what: str) -> None:
        record.violations.append(what)

    @property
    def violations(self) -> list[str]:
        return [v for r in self.records for v in r.violations]


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.01)


Handler = Callable[[ServerConnection, ConnRecord], Awaitable[None]]
