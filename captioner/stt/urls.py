"""Endpoint URLs: validation (no plain ws:// off this machine) and redaction of
secrets carried in query strings (AudioPod puts its key in the URL)."""

from __future__ import annotations

import ipaddress
import re
import urllib.request
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

#: Query parameters whose values are secrets wherever they appear.
SECRET_PARAMS = frozenset({"api_key", "apikey", "key", "token", "access_token", "authorization", "auth"})

_SECRET_IN_TEXT = re.compile(
    r"(?i)\b(" + "|".join(sorted(SECRET_PARAMS, key=len, reverse=True)) + r")=([^&\s\"'#]+)"
)


#: Credentials in a URL's userinfo (a proxy's http://user:password@host:port).
_USERINFO_IN_TEXT = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"<>]+@")  # not a <placeholder>
#: The same without a scheme (`https_proxy=alice:password@host:port`, which
#: curl accepts): a user name, a colon, a password, an @ and a host.
_BARE_USERINFO_IN_TEXT = re.compile(r"(?<![\w.%+/:-])([\w.%+-]+):[^\s/@'\"<>]+@(?=[\w\[])")

#: Secrets known to this process (keys, a login's token, proxy passwords):
#: `redact_text` removes them from every text, whoever calls it.
_known: tuple[str, ...] = ()


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


def remember_secret(secret: str | None) -> None:
    """Redact `secret` from every text `redact_text` sees from now on."""
    global _known
    if secret and len(secret) >= 4 and secret not in _known:
        _known = _known + (secret,)


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Text with secret query values, URL credentials (user:password@), and
    `secrets` and every remembered secret replaced, also as a URL carries them
    (percent-encoded: a server may echo the query value it received)."""
    out = text
    for secret in sorted(_spellings(secrets + _known), key=len, reverse=True):
        out = out.replace(secret, "***")
    out = _SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}=***", out)
    out = _USERINFO_IN_TEXT.sub(lambda m: f"{m.group(1)}***@", out)
    return _BARE_USERINFO_IN_TEXT.sub("***@", out)


def _spellings(secrets: tuple[str, ...]) -> set[str]:
    out = set()
    for secret in secrets:
        if secret and len(secret) >= 4:
            out.update((secret, quote(secret, safe=""), quote_plus(secret, safe="")))
            out.add(quote(secret, safe="").lower())  # %2f as well as %2F
    return out


def proxy_secrets() -> tuple[str, ...]:
    """The passwords in this machine's proxy settings (environment variables
    or the OS's), with or without a scheme: an error about a proxy quotes its
    setting, and `redact_text` must know what to take out."""
    out = []
    try:
        proxies = urllib.request.getproxies()
    except Exception:  # an unreadable OS setting: nothing to redact
        return ()
    for value in proxies.values():
        if not isinstance(value, str) or "@" not in value:
            continue
        try:
            parts = urlsplit(value if "://" in value else "http://" + value)
            password = parts.password
        except ValueError:
            continue
        if password:
            out.append(password)
    return tuple(out)


def http_base(url: str) -> str:
    """ws→http, wss→https, same host and port (for REST calls beside a socket)."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))


def proxy_address(url: str) -> str | None:
    """host:port of the proxy a connection to `url` goes through, or None when
    it goes direct: an error on the way must name the proxy, not the provider,
    or the user is sent to the wrong fix. Never the proxy's credentials.
    ws/wss follow websockets' lookup, http/https urllib's (stt/http.py)."""
    choice = proxy_for(url)
    if choice is None:
        return None
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        if isinstance(choice, str):  # an all_proxy: urllib takes only an HTTP one
            return _address(choice) if choice.startswith(("http://", "https://")) else None
        found = urllib.request.getproxies().get(parts.scheme)
        if found is None or urllib.request.proxy_bypass(parts.hostname or ""):
            return None
        return _address(found)
    if isinstance(choice, str):
        return _address(choice)
    from websockets.proxy import get_proxy
    from websockets.uri import parse_uri

    try:
        found = get_proxy(parse_uri(url))
    except Exception:  # an unparsable URL or setting: the connection's own error says so
        return None
    return None if found is None else _address(found)


def _address(proxy: str) -> str | None:
    try:
        parts = urlsplit(proxy if "://" in proxy else "http://" + proxy)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}" if port else host


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
