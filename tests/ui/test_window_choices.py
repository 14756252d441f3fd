"""What the control window shows is what counts: choices made without
starting a session survive a restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from PySide6.QtTest import QTest

from captioner.app import CaptionerApp, build_parser
from captioner.settings import Settings, open_qsettings
from captioner.ui.controller import CaptionController

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
