"""What settings refuse and what they take: a secret never lands in the INI
file (not under a secret's name, not inside an endpoint URL), while an option
that merely mentions one (UG Labs' token_margin_s) is an ordinary setting, so
every provider can be started from the window."""

from __future__ import annotations

import pytest

from captioner import keys
from captioner.app import CaptionerApp, build_parser
from captioner.settings import SecretInSettings
from captioner.stt.urls import EndpointError, carries_secret, validate_endpoint
from captioner.ui.controller import CaptionController


@pytest.mark.parametrize("name", ["providers/uglabs/options/token_margin_s", "session/key_file", "keywords", "monkey"])
def test_names_that_only_mention_a_secret_are_stored(settings, name):
    settings._set(name, "5")
    assert settings.qs.value(name) == "5"


@pytest.mark.parametrize("name", ["providers/x/access_token", "providers/x/api-key", "refresh.token", "credentials"])
def test_names_that_end_in_a_secret_are_refused(settings, name):
    with pytest.raises(SecretInSettings):
        settings._set(name, "value")


@pytest.mark.parametrize("url", [
    "wss://api.example/live?api_key=ap_live_123", "wss://api.example/x?lang=en&token=t0k3n",
    "wss://user:pa55@api.example/", "wss://api.example/?KEY=abc",
])
def test_an_endpoint_with_a_key_in_it_is_refused_and_never_stored(settings, settings_path, url):
    assert carries_secret(url)
    with pytest.raises(EndpointError) as err:
        validate_endpoint(url)
    assert "keyring" in str(err.value) and "ap_live_123" not in str(err.value) and "pa55" not in str(err.value)
    settings.set_endpoint("audiopod", url)
    with pytest.raises(SecretInSettings):
        settings._set("providers/audiopod/endpoint", url)
    settings.sync()
    text = settings_path.read_text() if settings_path.exists() else ""
    assert "ap_live_123" not in text and "t0k3n" not in text and "pa55" not in text and "abc" not in text


def test_ordinary_endpoints_pass():
    for url in ("wss://api.example/live?language=en&model=fast", "ws://127.0.0.1:8765/", "wss://[::1]:9000/x"):
        assert validate_endpoint(url) == url and not carries_secret(url)


def test_an_impossible_port_is_a_clear_endpoint_error():
    with pytest.raises(EndpointError, match="invalid port"):
        validate_endpoint("ws://localhost:65536/")


async def test_uglabs_starts_from_the_window_with_its_options_saved(qtbot, settings, tone_wav):
    wav, _ = tone_wav
    from captioner.audio.sources import WavFileSource
    from tests.fakes.uglabs import FakeUgLabs

    async with FakeUgLabs() as fake:
        keys.set_key("uglabs", fake.api_key)
        controller = CaptionController(source_factory=lambda _device: WavFileSource(wav, speed=0.0))
        capp = CaptionerApp(settings, build_parser().parse_args(["--provider", "uglabs", "--endpoint", fake.url]),
                            controller, tray_available=False, device_lister=lambda: [])
        qtbot.addWidget(capp.window)
        qtbot.addWidget(capp.overlay)
        capp.show()
        await capp.after_first_paint()
        assert capp.window.provider_id == "uglabs"
        assert await capp.window.start()  # was: "refusing to store '…/token_margin_s' in settings"
        await capp.settle()
        await controller.wait()
        await capp.settle()
        assert "token_margin_s" in settings.options("uglabs")
        assert not capp.window.status_label.text().startswith("Error")
        await capp.shutdown()


async def test_starting_with_a_key_in_the_endpoint_says_where_the_key_belongs(qtbot, settings, settings_path, tone_wav):
    wav, _ = tone_wav
    from captioner.audio.sources import WavFileSource

    keys.set_key("audiopod", "ap_key_in_keyring_000")
    controller = CaptionController(source_factory=lambda _device: WavFileSource(wav, speed=0.0))
    capp = CaptionerApp(settings, build_parser().parse_args(["--provider", "audiopod"]), controller,
                        tray_available=False, device_lister=lambda: [])
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    capp.show()
    await capp.after_first_paint()
    capp.window.endpoint_edit.setText("wss://api.example/live?api_key=ap_pasted_key_999")
    assert not await capp.window.start()
    status = capp.window.status_label.text()
    assert "keyring" in status and "ap_pasted_key_999" not in status
    settings.sync()
    assert "ap_pasted_key_999" not in settings_path.read_text()
    await capp.shutdown()


def test_a_key_in_an_endpoint_from_an_older_settings_file_is_removed_and_never_shown(qtbot, settings, settings_path):
    """An older version (or a hand edit) left `endpoint=…?api_key=…` in the
    INI: the Endpoint field showed the key and the file kept it."""
    from captioner.app import CaptionerApp, build_parser

    settings.qs.setValue("providers/audiopod/endpoint", "wss://api.audiopod.ai/stream?api_key=SECRET123")
    settings.qs.setValue("providers/local/options/model_url", "https://user:hunter2@models.example/small.zip")
    settings.provider = "audiopod"
    settings.sync()
    capp = CaptionerApp(settings, build_parser().parse_args([]), tray_available=True, device_lister=lambda: [])
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    w = capp.window
    assert w.endpoint_edit.text() == ""
    assert "the saved endpoint for audiopod held a key or password: it was removed" in w.banner.text()
    assert w.banner.isVisibleTo(w) and "SECRET123" not in w.banner.text()
    w.provider_combo.setCurrentIndex(w.provider_combo.findData("local"))
    assert "hunter2" not in str(w.option_values()) and "the saved model_url for local held a password" in w.banner.text()
    settings.sync()
    text = settings_path.read_text()
    assert "SECRET123" not in text and "hunter2" not in text


def test_an_option_holding_a_password_is_used_but_not_remembered(settings, settings_path):
    """Start did nothing at all (SecretInSettings from set_options)."""
    settings.set_options("local", {"model_url": "https://user:hunter2@models.example/m.zip", "engine": "vosk"})
    settings.sync()
    assert settings.options("local") == {"engine": "vosk"} and "hunter2" not in settings_path.read_text()
