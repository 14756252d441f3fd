"""A small JSON POST for protocols that log in over HTTPS before connecting.

Runs urllib in a worker thread so DNS and TLS never block the event loop.
Certificate verification stays on (urllib's default context).
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from captioner.stt.protocol import HttpRequest


def _post(request: HttpRequest, timeout: float) -> tuple[int, bytes]:
    data = json.dumps(request.body).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "application/json", **request.headers}
    req = urllib.request.Request(request.url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http(s) only, checked by caller)
            return resp.status, resp.read(1 << 20)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(1 << 20)
    except urllib.error.URLError as exc:
        reason = exc.reason if isinstance(exc.reason, OSError) else OSError(str(exc.reason))
        raise reason from None


async def post_json(request: HttpRequest, timeout: float = 10.0) -> tuple[int, bytes]:
    """POST `request.body` as JSON; returns (status, body). Raises OSError when
    the server cannot be reached."""
    return await asyncio.to_thread(_post, request, timeout)
