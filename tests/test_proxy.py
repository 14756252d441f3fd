"""Behind a proxy, as in many offices: captions flow through the proxy the
system names (https_proxy, all_proxy), the certificate is still verified end
to end, a proxy that wants a password says so at once, and a local endpoint
never goes through a proxy, which could not reach it anyway.

The endpoint is named wss://stt.example:PORT (the test certificate is issued
for that name); the proxies tunnel every request to 127.0.0.1:PORT, where the
fake provider listens.
"""

from __future__ import annotations

import asyncio

import pytest

from captioner.audio.sources import WavFileSource
from captioner.captioning import CaptionJob, caption_source, make_session
from captioner.stt.events import ProviderFailure
from captioner.stt.session import SessionConfig
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.inworld import FakeInworld
from tests.fakes.proxy import ConnectProxy, Socks5Proxy
from tests.fakes.smallest import FakeSmallest
from tests.fakes.uglabs import FakeUgLabs
from tests.fakes.voicerun import FakeVoiceRun
from tests.helpers import EventLog

FAKES = {"audiopod": FakeAudioPod, "smallest": FakeSmallest, "voicerun": FakeVoiceRun, "inworld": FakeInworld,
         "uglabs": FakeUgLabs}


def _key(fake) -> str:
    return getattr(fake, "key", None) or fake.api_key


def _tls_fake(provider: str, tls_certificate, monkeypatch):
    """The provider's fake serving wss:// with the test certificate, which the client trusts."""
    cert, server_ctx = tls_certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    fake = FAKES[provider]()
    fake.tls = server_ctx
    return fake


def _remote(fake) -> str:
    """The fake's URL under the remote-looking name its certificate also holds."""
    return fake.url.replace("wss://localhost:", "wss://stt.example:")


async def _caption(provider: str, fake, endpoint: str, wav) -> EventLog:
    session = make_session(CaptionJob(provider, {}, endpoint), _key(fake), SessionConfig(endpoint))
    log = EventLog()
    await asyncio.wait_for(caption_source(WavFileSource(wav, speed=0), session, [log], live=False, provider=provider), 20)
    return log


@pytest.mark.parametrize("provider", sorted(FAKES))
async def test_captions_flow_through_an_http_proxy_with_a_password(provider, tls_certificate, tone_wav, monkeypatch):
    wav, spoken = tone_wav
    fake = _tls_fake(provider, tls_certificate, monkeypatch)
    async with fake, ConnectProxy("alice", "pr0xy-pass") as proxy:
        monkeypatch.setenv("https_proxy", proxy.url())
        log = await _caption(provider, fake, _remote(fake), wav)
    assert log.errors == [] and not fake.violations
    assert " ".join(f.text for f in log.finals).split() == [w for w, _, _ in spoken.words]
    # Every connection went through the proxy, by name (the proxy resolves it),
    # with the proxy's credentials; none was refused.
    expected = [("stt.example", fake.port)] * (2 if provider == "uglabs" else 1)  # UG Labs logs in over https:// first
    assert proxy.tunnels == expected and proxy.refused == []
    assert set(proxy.auth_seen) == {"Basic YWxpY2U6cHIweHktcGFzcw=="}  # alice:pr0xy-pass


async def test_captions_flow_through_a_socks_proxy(tls_certificate, tone_wav, monkeypatch):
    wav, spoken = tone_wav
    fake = _tls_fake("audiopod", tls_certificate, monkeypatch)
    async with fake, Socks5Proxy() as proxy:
        monkeypatch.setenv("all_proxy", proxy.url())
        log = await _caption("audiopod", fake, _remote(fake), wav)
    assert log.errors == []
    assert " ".join(f.text for f in log.finals).split() == [w for w, _, _ in spoken.words]
    assert proxy.tunnels == [("stt.example", fake.port)]  # socks5h: the proxy resolved the name


async def test_an_http_all_proxy_alone_carries_the_login_and_the_socket(tls_certificate, tone_wav, monkeypatch):
    """curl's all_proxy, which neither websockets nor urllib reads by itself:
    UG Labs' https:// login and its WebSocket both go through it."""
    wav, spoken = tone_wav
    fake = _tls_fake("uglabs", tls_certificate, monkeypatch)
    async with fake, ConnectProxy("alice", "pr0xy-pass") as proxy:
        monkeypatch.setenv("all_proxy", proxy.url())
        log = await _caption("uglabs", fake, _remote(fake), wav)
    assert log.errors == []
    assert " ".join(f.text for f in log.finals).split() == [w for w, _, _ in spoken.words]
    assert proxy.tunnels == [("stt.example", fake.port)] * 2 and proxy.refused == []


@pytest.mark.parametrize("provider", ["audiopod", "uglabs"])  # the WebSocket itself; UG Labs' https:// login
async def test_a_proxy_that_wants_a_password_fails_at_once_and_says_how_to_give_it(provider, tls_certificate, tone_wav,
                                                                                   monkeypatch):
    wav, _ = tone_wav
    fake = _tls_fake(provider, tls_certificate, monkeypatch)
    async with fake, ConnectProxy("alice", "pr0xy-pass") as proxy:
        monkeypatch.setenv("https_proxy", proxy.url(with_credentials=False))
        endpoint = _remote(fake)
        session = make_session(CaptionJob(provider, {}, endpoint), _key(fake), SessionConfig(endpoint))
        with pytest.raises(ProviderFailure) as info:
            await asyncio.wait_for(caption_source(WavFileSource(wav, speed=0), session, live=False, provider=provider), 5)
    assert info.value.error.code == "PROXY_AUTH"
    assert "407" in info.value.error.message and "<user>:<password>@" in info.value.error.message
    assert session.stats.connections == 1 and session.stats.reconnects == 0  # no retries against a missing password
    assert len(proxy.refused) == 1 and proxy.tunnels == []


@pytest.mark.parametrize(
    "setting, password, named, hidden, where",
    [
        # no such kind of proxy: the whole user:password@ goes
        ("ftp://alice:hunter2secret@proxy.example:21", "hunter2secret", "proxy.example", "alice", "proxy.example:21"),
        # curl takes user:password@host:port without a scheme; websockets does
        # not, and its error quotes the setting whole ("scheme alice": a user
        # name is no secret, its password is), and says what a setting looks like
        ("alice:PWLEAK99@127.0.0.1:9", "PWLEAK99", "http://host:port", "alice:", "127.0.0.1:9"),
    ],
    ids=["unknown-scheme", "no-scheme"],
)
async def test_a_broken_proxy_setting_is_a_clear_error_that_keeps_its_password(tls_certificate, tone_wav, monkeypatch,
                                                                               setting, password, named, hidden, where):
    wav, _ = tone_wav
    monkeypatch.setenv("https_proxy", setting)
    fake = _tls_fake("audiopod", tls_certificate, monkeypatch)
    async with fake:
        endpoint = _remote(fake)
        session = make_session(CaptionJob("audiopod", {}, endpoint), _key(fake), SessionConfig(endpoint))
        log = EventLog()
        with pytest.raises(ProviderFailure) as info:
            await asyncio.wait_for(caption_source(WavFileSource(wav, speed=0), session, [log], live=False), 5)
    assert info.value.error.code == "PROXY_CONFIG"
    assert named in info.value.error.message
    shown = " ".join([str(info.value), *(str(e) for e in log.events)])
    assert password not in shown and hidden not in shown
    assert where in shown  # where the setting points is still said
    assert fake.records == []


@pytest.mark.parametrize("provider", ["audiopod", "uglabs"])
async def test_a_local_endpoint_never_goes_through_the_proxy(provider, tone_wav, monkeypatch):
    """A relay on this machine (ws://127.0.0.1) is reached directly: the
    configured proxy (here one that nothing listens on) is not used."""
    wav, spoken = tone_wav
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    async with FAKES[provider]() as fake:
        log = await _caption(provider, fake, fake.url, wav)
    assert log.errors == []
    assert " ".join(f.text for f in log.finals).split() == [w for w, _, _ in spoken.words]


def test_proxy_credentials_never_reach_a_message():
    from captioner.stt.urls import redact_text

    assert redact_text("http://alice:pr0xy-pass@proxy.corp:8080 isn't a valid proxy") == "http://***@proxy.corp:8080 isn't a valid proxy"
    assert redact_text("via socks5h://token123@10.0.0.1:1080") == "via socks5h://***@10.0.0.1:1080"
    assert redact_text("write to a@b.example") == "write to a@b.example"  # an address is not a URL's credentials
    assert redact_text("as http://<user>:<password>@<proxy>:<port>").endswith("<user>:<password>@<proxy>:<port>")


def test_which_proxy_an_endpoint_gets(monkeypatch):
    from captioner.stt.urls import proxy_for

    assert proxy_for("wss://api.audiopod.ai/x") is True  # nothing set: websockets looks (and finds none)
    monkeypatch.setenv("all_proxy", "socks5h://127.0.0.1:1080")
    assert proxy_for("wss://api.audiopod.ai/x") == "socks5h://127.0.0.1:1080"  # curl's all_proxy, alone
    assert proxy_for("ws://127.0.0.1:8765/relay") is None and proxy_for("ws://localhost:8765/") is None
    monkeypatch.setenv("no_proxy", "audiopod.ai")
    assert proxy_for("wss://api.audiopod.ai/x") is True  # bypassed: websockets then connects directly
    monkeypatch.delenv("no_proxy")
    monkeypatch.setenv("https_proxy", "http://proxy.corp:3128")
    assert proxy_for("wss://api.audiopod.ai/x") is True  # a scheme's own setting wins; websockets reads it


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("provider", ["audiopod", "uglabs"])
async def test_a_proxy_that_refuses_connections_is_named_not_the_provider(provider, tls_certificate, tone_wav, monkeypatch):
    from captioner.stt.session import RetryPolicy

    wav, _ = tone_wav
    port = _closed_port()
    monkeypatch.setenv("https_proxy", f"http://bob:s3cretpass@127.0.0.1:{port}")
    fake = _tls_fake(provider, tls_certificate, monkeypatch)
    async with fake:
        endpoint = _remote(fake)
        session = make_session(CaptionJob(provider, {}, endpoint), _key(fake), SessionConfig(endpoint),
                               retry=RetryPolicy(first_delay=0.01, base_delay=0.01, max_delay=0.02, max_attempts=2))
        with pytest.raises(ProviderFailure) as info:
            await asyncio.wait_for(caption_source(WavFileSource(wav, speed=0), session, [], live=False), 10)
    message = info.value.error.message
    assert f"nothing is listening on the proxy at 127.0.0.1:{port}" in message, message
    assert "check the proxy setting" in message and "stt.example" not in message
    assert "s3cretpass" not in str(info.value) and "bob" not in str(info.value)
    assert fake.records == []


def test_proxy_passwords_are_known_secrets_with_or_without_a_scheme(monkeypatch):
    from captioner.stt.urls import proxy_address, proxy_secrets, redact_text

    monkeypatch.setenv("https_proxy", "alice:p@ss-99@proxy.corp:3128")  # an unencoded @ inside the password
    monkeypatch.setenv("all_proxy", "socks5h://carol:pw-carol@127.0.0.1:1080")
    assert sorted(proxy_secrets()) == ["p@ss-99", "pw-carol"]
    assert redact_text("bad setting alice:p@ss-99@proxy.corp:3128", proxy_secrets()) == "bad setting ***@proxy.corp:3128"
    assert proxy_address("wss://api.audiopod.ai/x") == "proxy.corp:3128"
    assert proxy_address("https://api.uglabs.io/login") == "proxy.corp:3128"
    monkeypatch.setenv("no_proxy", "uglabs.io")
    assert proxy_address("https://api.uglabs.io/login") is None
    assert proxy_address("ws://127.0.0.1:8765/") is None


def test_a_secret_is_redacted_as_a_url_carries_it_too():
    """A server may echo the query value it received: percent-encoded."""
    from captioner.stt.urls import redact_text, remember_secret

    key = "KEY/LEAK+1234="
    assert redact_text("no such key: KEY%2FLEAK%2B1234%3D", (key,)) == "no such key: ***"
    assert redact_text("no such key: key%2fleak%2b1234%3d", (key,)) == "no such key: ***"
    assert redact_text("no such key: KEY/LEAK+1234=", (key,)) == "no such key: ***"
    remember_secret("remembered-9f8e7d")  # as logs.add_secret does for a key in use
    assert redact_text("echo remembered-9f8e7d") == "echo ***"
