"""Endpoint URLs: validation (no plain ws:// off this machine) and redaction of
secrets carried in query strings (AudioPod puts its key in the URL)."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: Query parameters whose values are secrets wherever they appear.
SECRET_PARAMS = frozenset({"api_key", "apikey", "key", "token", "access_token", "authorization", "auth"})

_SECRET_IN_TEXT = re.compile(
    r"(?i)\b(" + "|".join(sorted(SECRET_PARAMS, key=len, reverse=True)) + r")=([^&\s\"'#]+)"
)


class EndpointError(ValueError):
    """An endpoint URL the app will not connect to."""


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_endpoint(url: str) -> str:
    """Accept wss:// anywhere and ws:// only on loopback (tests, local relays)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise EndpointError(f"endpoint must be a ws:// or wss:// URL, got {redact_url(url)!r}")
    if not parts.hostname:
        raise EndpointError(f"endpoint has no host: {redact_url(url)!r}")
    if parts.scheme == "ws" and not is_loopback(parts.hostname):
        raise EndpointError(
            f"refusing unencrypted ws:// to {parts.hostname}: use wss:// (ws:// is only for 127.0.0.1/localhost)"
        )
    return url


def with_query(url: str, params: dict[str, str]) -> str:
    """Add or replace query parameters, keeping those the user put in the URL."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({k: v for k, v in params.items() if v is not None})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def redact_url(url: str) -> str:
    """The URL with secret query values replaced by ***."""
    return redact_text(url)


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Text with secret query values and any known secret strings replaced."""
    out = _SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}=***", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    return out


def http_base(url: str) -> str:
    """ws→http, wss→https, same host and port (for REST calls beside a socket)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))
