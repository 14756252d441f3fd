"""Every provider over TLS, as in real use: wss:// (and, for UG Labs, its
https:// login), with a certificate the client trusts and verifies.

The other provider tests use ws:// on loopback; every real endpoint is
wss://. These prove the encrypted path works end to end: a regression that
switched verification off, named the wrong host, or sent the login in the
clear would fail here (the fakes speak only TLS once given a context).
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from captioner.audio.sources import WavFileSource
from captioner.captioning import CaptionJob, caption_source, make_session
from captioner.stt.events import ProviderFailure
from captioner.stt.session import SessionConfig
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.inworld import FakeInworld
from tests.fakes.smallest import FakeSmallest
from tests.fakes.uglabs import FakeUgLabs
from tests.fakes.voicerun import FakeVoiceRun
from tests.helpers import EventLog

FAKES = {"audiopod": FakeAudioPod, "smallest": FakeSmallest, "voicerun": FakeVoiceRun, "inworld": FakeInworld,
         "uglabs": FakeUgLabs}


@pytest.mark.parametrize("provider", sorted(FAKES))
async def test_captions_flow_over_tls_with_a_verified_certificate(provider, tls_certificate, tone_wav, monkeypatch):
    cert, server_ctx = tls_certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client's trust store: our test certificate only
    wav, spoken = tone_wav
    fake = FAKES[provider]()
    fake.tls = server_ctx
    async with fake:
        assert fake.url.startswith("wss://localhost:")
        key = getattr(fake, "key", None) or fake.api_key
        session = make_session(CaptionJob(provider, {}, fake.url), key, SessionConfig(fake.url))
        log = EventLog()
        await caption_source(WavFileSource(wav, speed=0), session, [log], live=False, provider=provider)
    assert log.errors == [] and not fake.violations
    assert " ".join(f.text for f in log.finals).split() == [w for w, _, _ in spoken.words]
    assert fake.records, "no WebSocket connection reached the fake"
    if provider == "uglabs":
        assert fake.logins and fake.logins[0].get("api_key") == key  # the login went over https://


async def test_an_untrusted_certificate_is_refused_for_the_login_too(tls_certificate, tone_wav):
    """UG Labs logs in over https:// before it connects: that request is
    verified as well, and a refusal is a clear TLS error, not a retry storm."""
    _, server_ctx = tls_certificate  # not in the client's trust store this time
    wav, _ = tone_wav
    fake = FakeUgLabs()
    fake.tls = server_ctx
    async with fake:
        session = make_session(CaptionJob("uglabs", {}, fake.url), fake.api_key, SessionConfig(fake.url))
        log = EventLog()
        with pytest.raises(ProviderFailure) as info:
            await asyncio.wait_for(caption_source(WavFileSource(wav, speed=0), session, [log], live=False,
                                                  provider="uglabs"), 5)
    assert info.value.error.code == "TLS_FAILED"
    assert "self-signed" in info.value.error.message or "verify" in info.value.error.message
    assert session.stats.reconnects == 0  # refused at once: no retries against a certificate that will not change
    assert fake.logins == [] and fake.records == []  # neither the login nor a WebSocket got through


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="macOS and Windows ask the OS's own verifier")
async def test_a_bundle_on_another_distribution_still_finds_the_systems_certificates(tls_certificate, tone_wav,
                                                                                     monkeypatch, tmp_path):
    """A packaged app carries the CA paths of the OpenSSL it was built with
    (Debian's /usr/lib/ssl, say); on Fedora or Arch they do not exist. The
    client must then find the distribution's own bundle instead of failing
    every certificate. Here OpenSSL's paths point at nothing, and the system
    bundle (the list truststore probes) holds the test certificate."""
    import truststore._openssl

    cert, server_ctx = tls_certificate
    wav, spoken = tone_wav
    empty = tmp_path / "no-certs-here"
    empty.mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(empty))
    monkeypatch.setattr(truststore._openssl, "_CA_FILE_CANDIDATES", [str(tmp_path / "absent.pem"), str(cert)])
    fake = FakeAudioPod()
    fake.tls = server_ctx
    async with fake:
        session = make_session(CaptionJob("audiopod", {}, fake.url), fake.key, SessionConfig(fake.url))
        log = EventLog()
        await asyncio.wait_for(caption_source(WavFileSource(wav, speed=0), session, [log], live=False), 10)
    assert log.errors == []
    assert " ".join(f.text for f in log.finals).split() == [w for w, _, _ in spoken.words]
