"""What the control window shows is what counts: Settings → Test tries the
endpoint the window holds, choices made without starting a session survive
a restart, a keyring notice goes when no key is needed, a failed export is
not contradicted by the last one's "Saved", and a key test's answer is read
in full in the keys grid."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import keyring
from keyring.backends.fail import Keyring as FailKeyring
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from captioner.app import CaptionerApp, build_parser
from captioner.settings import Settings, open_qsettings
from captioner.transcript.model import Segment, Transcript
from captioner.ui.controller import CaptionController
from captioner.ui.settings_dialog import SettingsDialog
from tests.conftest import MemoryKeyring
from tests.fakes.audiopod import FakeAudioPod

DEAD = "ws://127.0.0.1:9/nothing-listens"  # refused at once: offline and fast
DEVICES = [
    SimpleNamespace(name="Desk Mic", display_name="Desk Mic", hostapi="ALSA", is_default=True, is_system=False),
    SimpleNamespace(name="USB Headset", display_name="USB Headset", hostapi="ALSA", is_default=False, is_system=False),
]


def make_app(settings: Settings, args: list[str] | None = None) -> CaptionerApp:
    return CaptionerApp(
        settings, build_parser().parse_args(args or []), CaptionController(), tray_available=False,
        device_lister=lambda: list(DEVICES),
    )


async def shown(qtbot, capp: CaptionerApp) -> None:  # noqa: ANN001
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    capp.show()
    await capp.after_first_paint()


async def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait, the loop running, until `condition` holds (or fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


def reopen(path: Path) -> Settings:
    """The settings a restarted Captioner reads from the file."""
    return Settings(open_qsettings(str(path)))


# ------------------------------------------------------- key test (item 1)
async def test_settings_test_uses_the_endpoint_typed_in_the_window_not_the_last_started_one(qtbot, settings):
    settings.provider = "audiopod"
    settings.set_endpoint("audiopod", DEAD)  # what the last session was started with
    async with FakeAudioPod() as fake:
        capp = make_app(settings)
        await shown(qtbot, capp)
        w = capp.window
        w.endpoint_edit.setText(fake.url)  # typed now, nothing started since
        capp.open_settings()
        d = capp.dialog
        qtbot.addWidget(d)
        d.key_edits["audiopod"].setText(fake.key)
        ok, message = await d.test_key("audiopod")
        assert ok is True, message
        assert d.key_status["audiopod"].text() == "✔ Accepted by AudioPod"
        assert len(fake.records) == 1  # the window's endpoint was the one tried
        d.reject()
        # ... and the other way round: a dead endpoint in the window is not "accepted"
        w.endpoint_edit.setText(DEAD)
        capp.open_settings()
        d = capp.dialog
        d.key_edits["audiopod"].setText(fake.key)
        ok, _ = await d.test_key("audiopod")
        assert ok is not True and len(fake.records) == 1
        d.reject()
    w._option_widgets["language"].setText("de")
    assert d.options_for("audiopod")["language"] == "de"  # the window's options too
    assert d.endpoint_for("smallest") == settings.endpoint("smallest")  # not shown: the saved one
    await capp.shutdown()
    await capp.settle()


# ------------------------------------------- the test's answer (item 2)
def test_a_long_key_test_answer_is_shown_whole_even_in_a_short_dialog(qtbot, settings):
    d = SettingsDialog(settings)
    qtbot.addWidget(d)
    d.show()
    answer = ("? Could not reach Smallest.ai Waves: gave up after 0 reconnect attempts, last: could not connect: "
              "[Errno -2] Name or service not known (the endpoint is wss://waves-api.smallest.ai/api/v1/lightning)")
    for pid in d.key_status:
        d._key_state(pid, answer)
    d.resize(d.minimumSizeHint().width(), 300)
    for _ in range(3):  # the resize, then the layout requests it causes
        QApplication.processEvents()
    for pid, label in d.key_status.items():
        assert label.wordWrap()
        needed = label.heightForWidth(label.width())
        assert needed > label.fontMetrics().height() * 2  # several lines at this width
        assert label.height() >= needed, f"{pid}: {label.height()} px for {needed} px of text"
    d.reject()


# ------------------------------------------- remembered choices (item 4)
async def test_provider_endpoint_options_and_input_are_remembered_without_starting(qtbot, settings, settings_path):
    capp = make_app(settings)
    await shown(qtbot, capp)
    w = capp.window
    w.provider_combo.setCurrentIndex(w.provider_combo.findData("smallest"))
    w.endpoint_edit.setFocus()
    QTest.keyClicks(w.endpoint_edit, "ws://127.0.0.1:1/relay")
    w._option_widgets["language"].setFocus()  # focus moves on: the endpoint is remembered now
    w._option_widgets["language"].setText("fr")
    w.device_combo.setCurrentIndex(w.device_combo.findData("USB Headset"))
    await eventually(lambda: reopen(settings_path).options("smallest").get("language") == "fr")  # once typing pauses
    again = reopen(settings_path)
    assert again.provider == "smallest"
    assert again.endpoint("smallest") == "ws://127.0.0.1:1/relay"
    assert again.device == "USB Headset"
    await capp.shutdown()
    await capp.settle()
    # a restart opens with them
    capp2 = make_app(reopen(settings_path))
    await shown(qtbot, capp2)
    w2 = capp2.window
    assert w2.provider_id == "smallest"
    assert w2.endpoint_edit.text() == "ws://127.0.0.1:1/relay"
    assert w2.option_values()["language"] == "fr"
    assert w2.device_combo.currentData() == "USB Headset"
    await capp2.shutdown()
    await capp2.settle()


async def test_an_endpoint_typed_for_one_provider_is_kept_when_another_is_chosen(qtbot, settings):
    capp = make_app(settings, ["--provider", "audiopod"])
    await shown(qtbot, capp)
    w = capp.window
    w.endpoint_edit.setText("ws://127.0.0.1:2/audiopod-relay")  # no pause, no focus change
    w.provider_combo.setCurrentIndex(w.provider_combo.findData("voicerun"))
    assert w.endpoint_edit.text() == ""
    w.provider_combo.setCurrentIndex(w.provider_combo.findData("audiopod"))
    assert w.endpoint_edit.text() == "ws://127.0.0.1:2/audiopod-relay"
    assert settings.endpoint("voicerun") == ""  # not given to the provider chosen next
    await capp.shutdown()
    await capp.settle()


# ------------------------------------------------ keyring notice (item 3)
async def test_the_keyring_notice_goes_when_the_built_in_engine_is_chosen(qtbot, settings):
    keyring.set_keyring(FailKeyring())
    capp = make_app(settings, ["--provider", "audiopod"])
    await shown(qtbot, capp)
    w = capp.window
    assert "Keyring: " in w.banner.text() and w.banner.isVisible()
    w.provider_combo.setCurrentIndex(w.provider_combo.findData("local"))
    await w.settle()
    assert w.key_status.text() == "Key: none needed — audio stays on this computer"
    assert "Keyring" not in w.banner.text()
    assert w.key_status.toolTip() == ""
    # another notice is not taken away with it
    w.show_notice("Audio input: the device stopped")
    await w.refresh_key_status()
    assert "Audio input: the device stopped" in w.banner.text()
    await capp.shutdown()
    await capp.settle()


class SlowFailingKeyring(MemoryKeyring):
    """A keyring that answers only when released, and then fails."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = threading.Event()
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.asked.set()
        self.release.wait(5)
        raise keyring.errors.KeyringLocked("the keyring is locked")


async def test_a_late_keyring_failure_for_the_last_provider_says_nothing_about_the_new_one(qtbot, settings):
    capp = make_app(settings)
    qtbot.addWidget(capp.window)
    capp.show()
    w = capp.window
    backend = SlowFailingKeyring()
    keyring.set_keyring(backend)
    w.provider_combo.setCurrentIndex(w.provider_combo.findData("audiopod"))
    await eventually(backend.asked.is_set)  # its key check waits on the keyring ...
    w.provider_combo.setCurrentIndex(w.provider_combo.findData("local"))  # ... while the user moves on
    backend.release.set()
    await w.settle()
    assert w.key_status.text() == "Key: none needed — audio stays on this computer"
    assert "Keyring" not in w.banner.text()
    await capp.shutdown()
    await capp.settle()


# ------------------------------------------------- export status (item 6)
async def test_a_failed_export_is_not_contradicted_by_the_last_ones_saved_message(qtbot, settings, tmp_path):
    capp = make_app(settings)
    await shown(qtbot, capp)
    w = capp.window
    capp.controller.transcript = Transcript(provider="audiopod", segments=[Segment("Hello there.", 0.5, 1.9)])
    good = tmp_path / "captions.txt"
    w.ask_save_path = lambda _fmt: str(good)
    assert await w.export_dialog("txt") == str(good)
    assert w.statusBar().currentMessage() == f"Saved {good}"
    w.ask_save_path = lambda _fmt: str(tmp_path / "no such folder" / "captions.txt")
    assert await w.export_dialog("txt") is None
    assert "Export failed: " in w.banner.text()
    assert not w.statusBar().currentMessage().startswith("Saved")
    # and a good export after it: the failure is no longer announced
    w.ask_save_path = lambda _fmt: str(good)
    assert await w.export_dialog("txt") == str(good)
    assert "Export failed" not in w.banner.text()
    assert w.statusBar().currentMessage() == f"Saved {good}"
    await capp.shutdown()
    await capp.settle()
