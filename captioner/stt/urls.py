"""Endpoint URLs: validation (no plain ws:// off this machine) and redaction of
secrets carried in query strings (AudioPod puts its key in the URL)."""

from __future__ import annotations

import ipaddress
import re
import urllib.request
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: Query parameters whose values are secrets wherever they appear.
SECRET_PARAMS = frozenset({"api_key", "apikey", "key", "token", "access_token", "authorization", "auth"})

_SECRET_IN_TEXT = re.compile(
    r"(?i)\b(" + "|".join(sorted(SECRET_PARAMS, key=len, reverse=True)) + r")=([^&\s\"'#]+)"
)


#: Credentials in a URL's userinfo (a proxy's http://user:password@host:port).
_USERINFO_IN_TEXT = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"<>]+@")  # not a <placeholder>


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
    try:
        parts.port
    except ValueError:
        raise EndpointError(f"endpoint has an invalid port: {redact_url(url)!r}") from None
    if parts.scheme == "ws" and not is_loopback(parts.hostname):
        raise EndpointError(
            f"refusing unencrypted ws:// to {parts.hostname}: use wss:// (ws:// is only for 127.0.0.1/localhost)"
        )
    if carries_secret(url):
        raise EndpointError(
            f"the endpoint carries a key or password ({redact_url(url)}): remove it from the URL and store the key "
            "in the OS keyring (Settings → API keys, or `captioner keys set PROVIDER`); Captioner adds it when it connects"
        )
    return url


def carries_secret(url: str) -> bool:
    """Whether a URL holds credentials: a secret query parameter (api_key=…)
    or a user:password@ part. Such a URL must not be stored or shown as is."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if "@" in parts.netloc:
        return True
    return any(k.lower() in SECRET_PARAMS for k, _ in parse_qsl(parts.query, keep_blank_values=True))


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
    """Text with secret query values, URL credentials (user:password@) and
    any known secret strings replaced."""
    out = _SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}=***", text)
    out = _USERINFO_IN_TEXT.sub(lambda m: f"{m.group(1)}***@", out)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    return out


def http_base(url: str) -> str:
    """ws→http, wss→https, same host and port (for REST calls beside a socket)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))


def proxy_for(url: str) -> str | bool | None:
    """The proxy for this endpoint, in `websockets.connect(proxy=...)`'s terms
    (the HTTPS login uses the same decision): None for this machine's
    loopback (no proxy can reach it), the `all_proxy` setting when it is the
    only one (curl's convention, which neither websockets nor urllib reads),
    else True: the library's own lookup (wss_proxy, https_proxy, the OS
    settings, no_proxy)."""
    host = urlsplit(url).hostname or ""
    if is_loopback(host):
        return None
    proxies = urllib.request.getproxies()
    if "all" in proxies and not proxies.keys() & {"wss", "ws", "socks", "https", "http"}:
        if not urllib.request.proxy_bypass(host):
            return proxies["all"]
    return True
