"""Test set-up shared by every test.

- Qt runs offscreen (set before any QApplication exists).
- The OS keyring is replaced by an in-memory backend: tests never touch a
  developer's real keyring, and no real key is ever used.
- Provider keys in the environment are cleared so tests control them, and
  so are proxy settings: on a machine with https_proxy set, connections to
  the fakes would otherwise go through it (tests/test_proxy.py sets its own).
"""

from __future__ import annotations

import os
import ssl
import subprocess

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from tests.fakes.tones import synthesize, write_wav


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `slow` (each takes a minute or more) go first: the
    workers of `-n auto` then never start one when the rest is nearly done."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` runs one worker per core, at most four: most tests wait on
    real-time audio and sockets, and the slowest single test (~1.5 min)
    bounds the run long before more workers would help."""
    return max(1, min(4, os.cpu_count() or 1))


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.store:
            raise PasswordDeleteError("no such password")
        del self.store[(service, username)]


@pytest.fixture(autouse=True)
def memory_keyring(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> MemoryKeyring:
    for name in list(os.environ):
        if name.startswith("CAPTIONER_") and name.endswith("_KEY"):
            monkeypatch.delenv(name)
    # Session journals go to a fresh folder per test, never the user's data dir.
    monkeypatch.setenv("CAPTIONER_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy", "socks_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower() in PROXY_VARIABLES:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """A self-signed certificate for localhost, 127.0.0.1 and stt.example (a
    remote-looking name the proxy tests reach through a proxy): (its PEM file,
    for SSL_CERT_FILE; a server context that presents it)."""
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,DNS:stt.example,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return cert, server


SCRIPT = [["alpha", "bravo", "charlie"], ["delta", "echo"], ["foxtrot", "golf", "hotel", "india"]]


@pytest.fixture
def tone_wav(tmp_path: Path):
    """A 44.1 kHz stereo WAV in the tone language, and where its words are."""
    audio, spoken = synthesize(SCRIPT, rate=44100, channels=2)
    return write_wav(tmp_path / "speech.wav", audio, 44100), spoken
