"""Proxies on 127.0.0.1 for the proxy tests: an HTTP proxy that tunnels with
CONNECT (as corporate proxies do for https:// and wss://) and a SOCKS5 proxy.

Both send every tunnel to 127.0.0.1 at the port asked for, whatever the host
name, so a test can name a remote-looking host (stt.example) whose
certificate the client verifies, while the fake provider listens here. Each
records what it was asked for, so a test can prove the traffic went through it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct


class _Relay:
    def __init__(self) -> None:
        self.tunnels: list[tuple[str, int]] = []  # (host, port) as the client asked for them
        self.refused: list[str] = []
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self.port = 0

    async def __aenter__(self) -> "_Relay":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.write_eof()

        try:
            await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        finally:
            up_writer.close()


class ConnectProxy(_Relay):
    """An HTTP proxy that only tunnels. A request other than CONNECT (an
    http:// or ws:// URL sent in the clear) is refused with 405 and recorded."""

    def __init__(self, user: str | None = None, password: str | None = None) -> None:
        super().__init__()
        self.user, self.password = user, password
        self.auth_seen: list[str | None] = []  # each CONNECT's Proxy-Authorization

    def url(self, with_credentials: bool = True) -> str:
        auth = f"{self.user}:{self.password}@" if with_credentials and self.user is not None else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.split("\r\n")
        method, target, _version = request_line.split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if ":" in line)}
        if method != "CONNECT":
            self.refused.append(request_line)
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        auth = headers.get("proxy-authorization")
        self.auth_seen.append(auth)
        if self.user is not None:
            expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            if auth != expected:
                self.refused.append(request_line)
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\n"
                             b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                return
        host, _, port = target.rpartition(":")
        self.tunnels.append((host.strip("[]"), int(port)))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await self._pipe(reader, writer, int(port))


class Socks5Proxy(_Relay):
    """SOCKS5 (RFC 1928), no authentication, CONNECT only."""

    def url(self) -> str:
        return f"socks5h://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version, n = await reader.readexactly(2)
        methods = await reader.readexactly(n)
        if version != 5 or 0 not in methods:
            writer.write(b"\x05\xff")
            return
        writer.write(b"\x05\x00")
        version, command, _reserved, kind = await reader.readexactly(4)
        if kind == 1:
            host = ".".join(str(b) for b in await reader.readexactly(4))
        elif kind == 3:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode("idna")
        else:
            writer.write(b"\x05\x08\x00\x01" + bytes(6))  # address type not supported
            return
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if version != 5 or command != 1:
            writer.write(b"\x05\x07\x00\x01" + bytes(6))  # command not supported
            return
        self.tunnels.append((host, port))
        writer.write(b"\x05\x00\x00\x01" + bytes(6))
        await self._pipe(reader, writer, port)
