"""What the control window shows is what counts: Settings → Test tries the
endpoint the window holds, choices made without starting a session survive
a restart, and a key test's answer is read in full in the keys grid."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from captioner.app import CaptionerApp, build_parser
from captioner.settings import Settings, open_qsettings
from captioner.ui.controller import CaptionController
from captioner.ui.settings_dialog import SettingsDialog
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
