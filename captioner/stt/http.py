"""A small JSON POST for protocols that log in over HTTPS before connecting.

Runs urllib in a worker thread so DNS and TLS never block the event loop.
Certificates are verified against the OS's trust store (`tls.py`). The system's
proxy is chosen as for the WebSocket (looked up per request, so a changed
setting applies without a restart), never for loopback.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import urllib.error
import urllib.request

from captioner.stt.protocol import HttpRequest
from captioner.stt.tls import client_context
from captioner.stt.urls import proxy_for


class ProxyRefused(OSError):
    """The HTTP proxy answered the CONNECT for an https:// request with an error."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the proxy refused the connection (HTTP {status})")
        self.status = status


class NotHttp(OSError):
    """What answered the request is not an HTTP server (no status line):
    http.client's BadStatusLine, which is no OSError, went up as a crash."""

    def __init__(self, line: str) -> None:
        super().__init__(f"the server did not answer in HTTP ({line!r:.60})")
        self.line = line


_TUNNEL_FAILED = re.compile(r"Tunnel connection failed: (\d{3})")


def _proxies(url: str) -> dict[str, str] | None:
    """urllib's form of the WebSocket's proxy decision (`proxy_for`): none for
    loopback, an HTTP `all_proxy` when it is the only setting, else None
    (urllib's own lookup: the environment and the OS settings). urllib
    cannot speak SOCKS, so a SOCKS `all_proxy` is not used here."""
    proxy = proxy_for(url)
    if proxy is None:
        return {}
    if isinstance(proxy, str) and proxy.startswith(("http://", "https://")):
        return {"http": proxy, "https": proxy}
    return None


def _post(request: HttpRequest, timeout: float) -> tuple[int, bytes]:
    data = json.dumps(request.body).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "application/json", **request.headers}
    req = urllib.request.Request(request.url, data=data, headers=headers, method="POST")
    # Built per request: urlopen() would keep the proxies it found on first use
    # for the life of the process.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler(_proxies(request.url)),
                                         urllib.request.HTTPSHandler(context=client_context()))
    try:
        with opener.open(req, timeout=timeout) as resp:  # noqa: S310 (http(s) only, checked by caller)
            return resp.status, resp.read(1 << 20)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(1 << 20)
    except http.client.RemoteDisconnected:
        raise  # an OSError too: it hung up without a word
    except http.client.HTTPException as exc:  # BadStatusLine and kin: not HTTP at all
        raise NotHttp(str(exc).strip()) from None
    except urllib.error.URLError as exc:
        reason = exc.reason if isinstance(exc.reason, OSError) else OSError(str(exc.reason))
        tunnel = _TUNNEL_FAILED.match(str(reason))  # http.client's words for a refused CONNECT
        if tunnel:
            raise ProxyRefused(int(tunnel.group(1))) from None
        raise reason from None


async def post_json(request: HttpRequest, timeout: float = 10.0) -> tuple[int, bytes]:
    """POST `request.body` as JSON; returns (status, body). Raises OSError when
    the server cannot be reached."""
    return await asyncio.to_thread(_post, request, timeout)
