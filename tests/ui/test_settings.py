"""Settings persistence (QSettings in a temp INI file), the settings dialog
(keys in the keyring only, live style preview, hotkeys, start options), the
key test against the fake provider, and: no key ever lands in QSettings."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import keyring
import pytest
from keyring.backends.fail import Keyring as FailKeyring
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QKeySequence

from captioner import keys
from captioner.app import CaptionerApp, build_parser
from captioner.settings import SecretInSettings, Settings, StartOptions, open_qsettings
from captioner.ui.controller import CaptionController, test_key
from captioner.ui.overlay import CaptionOverlay, screen_key
from captioner.ui.settings_dialog import SettingsDialog
from captioner.ui.theme import PRESETS, OverlayStyle
from tests.fakes.audiopod import FakeAudioPod

SECRET = "ap_test_key_0123456789"


def reopen(path: Path) -> Settings:
    return Settings(open_qsettings(str(path)))


def test_settings_round_trip(settings, settings_path):
    style = OverlayStyle(font_family="DejaVu Serif", font_size=64, bold=False, text_color="#ffee00",
                         background_opacity=0.4, effect="shadow", align="center", lines=7, clear_after=12.0,
                         speaker_labels=False)
    settings.provider = "smallest"
    settings.device = "USB Mic"
    settings.set_endpoint("smallest", "wss://example.test/stt")
    settings.set_options("smallest", {"language": "de", "diarize": True})
    settings.set_style(style)
    settings.set_overlay_geometry("HDMI-1@1920x1080", QRect(10, 20, 800, 200))
    settings.set_overlay_geometry("eDP-1@2560x1600", QRect(30, 40, 900, 300))
    settings.pinned = True
    settings.set_hotkeys({"toggle_pin": "Ctrl+Alt+P"})
    settings.set_start_options(StartOptions(start_on_launch=True, show_overlay=False))
    settings.sync()
    again = reopen(settings_path)
    assert again.provider == "smallest" and again.device == "USB Mic"
    assert again.endpoint("smallest") == "wss://example.test/stt" and again.endpoint("audiopod") == ""
    assert again.options("smallest") == {"language": "de", "diarize": "True"}
    assert again.style() == style
    assert again.overlay_geometry("HDMI-1@1920x1080") == QRect(10, 20, 800, 200)
    assert again.overlay_geometry("eDP-1@2560x1600") == QRect(30, 40, 900, 300)
    assert again.last_screen == "eDP-1@2560x1600"
    assert again.pinned is True
    assert again.hotkeys()["toggle_pin"] == "Ctrl+Alt+P" and again.hotkeys()["start_stop"] == "Ctrl+Shift+R"
    assert again.start_options() == StartOptions(start_on_launch=True, show_overlay=False)


def test_hand_edited_style_is_clamped(settings, settings_path):
    settings.qs.setValue("overlay/style/font_size", "9999")
    settings.qs.setValue("overlay/style/lines", "0")
    settings.qs.setValue("overlay/style/text_color", "not a colour")
    settings.qs.setValue("overlay/style/effect", "sparkles")
    settings.qs.setValue("overlay/style/background_opacity", "7")
    s = settings.style()
    assert (s.font_size, s.lines, s.text_color, s.effect, s.background_opacity) == (160, 1, "#ffffff", "outline", 1.0)


@pytest.mark.parametrize("value", ["inf", "1e400", "-inf", "nan"])
def test_a_hand_edited_infinite_number_is_ignored_not_a_crash(settings, value):
    """`font_size=inf` in the INI stopped the app from opening (OverflowError)."""
    for name in ("font_size", "lines", "background_opacity", "clear_after"):
        settings.qs.setValue(f"overlay/style/{name}", value)
    s = settings.style()
    assert 8 <= s.font_size <= 160 and 1 <= s.lines <= 10
    assert 0.0 <= s.background_opacity <= 1.0 and 0.0 <= s.clear_after <= 600.0


def test_a_hand_edited_huge_overlay_position_is_ignored(qtbot, settings):
    from captioner.ui.overlay import CaptionOverlay, screen_key
    from PySide6.QtGui import QGuiApplication

    key = screen_key(QGuiApplication.primaryScreen())
    from captioner.settings import _safe

    settings.qs.setValue(f"overlay/geometry/{_safe(key)}", "3000000000,5,800,200")
    assert settings.overlay_geometry(key) is None
    ov = CaptionOverlay(settings)  # opens where an overlay opens first: the app starts
    qtbot.addWidget(ov)
    assert QGuiApplication.primaryScreen().availableGeometry().contains(ov.geometry())


@pytest.mark.parametrize("name", ["providers/x/api_key", "providers/x/options/token", "secret", "session/password", "key"])
def test_secret_looking_names_are_refused(settings, name):
    with pytest.raises(SecretInSettings):
        settings._set(name, "value")


def test_ordinary_option_names_with_key_inside_are_fine(settings):
    settings.set_options("x", {"keywords": "alpha,bravo", "monkey": "1"})
    assert settings.options("x")["keywords"] == "alpha,bravo"


def make_dialog(qtbot, settings) -> SettingsDialog:  # noqa: ANN001
    d = SettingsDialog(settings)
    qtbot.addWidget(d)
    return d


async def test_keys_go_to_the_keyring_never_to_settings(qtbot, settings, settings_path, memory_keyring):
    d = make_dialog(qtbot, settings)
    await d.load_key_states()
    edit = d.key_edits["audiopod"]
    assert edit.echoMode() == edit.EchoMode.Password  # masked entry
    assert edit.placeholderText() == "no key stored"
    edit.setText(SECRET)
    assert await d.save_key("audiopod")
    assert memory_keyring.store[("captioner", "audiopod")] == SECRET
    assert edit.text() == "" and d.key_status["audiopod"].text() == "Saved in the OS keyring."
    d.lines_spin.setValue(4)
    d.save()  # what else changed in the dialog is written to QSettings
    settings.sync()
    text = settings_path.read_text()
    assert "overlay" in text and SECRET not in text and "api_key" not in text.lower()
    await d.delete_key("audiopod")
    assert ("captioner", "audiopod") not in memory_keyring.store
    assert d.key_status["audiopod"].text() == "Deleted."


async def test_keyring_unavailable_is_said_in_words(qtbot, settings):
    keyring.set_keyring(FailKeyring())
    d = make_dialog(qtbot, settings)
    await d.load_key_states()
    # said once, above the keys, and each row says which variable can supply its key instead
    assert d.keyring_banner.isVisibleTo(d) and d.keyring_banner.text().startswith("No key can be stored: the OS keyring is not available")
    assert d.key_status["audiopod"].text() == (
        "Keyring unavailable: the key can come from the environment variable CAPTIONER_AUDIOPOD_KEY")
    assert d.key_status["audiopod"].textFormat() == Qt.TextFormat.PlainText  # an "<X>" in a message is shown, not parsed
    assert "not available" not in d.key_status["voicerun"].text()
    d.key_edits["audiopod"].setText(SECRET)
    assert not await d.save_key("audiopod")
    assert d.key_status["audiopod"].text().startswith("Not saved: the OS keyring is not available")
    assert SECRET not in d.key_status["audiopod"].text()


async def test_test_key_reports_accepted_and_refused(qtbot, settings):
    async with FakeAudioPod() as fake:
        ok, message = await test_key("audiopod", fake.key, fake.url)
        assert ok is True and message == "accepted by AudioPod"
        # the fake got a real session with one second of silence, then end
        assert fake.records[0].messages[0]["type"] == "start"
        assert len(fake.records[0].audio) == 32000
        assert fake.records[0].messages[-1] == {"type": "end"}
        ok, message = await test_key("audiopod", "ap_wrong", fake.url)
        assert ok is False and "rejected the API key" in message and "ap_wrong" not in message
        # through the dialog, with the endpoint the user configured
        settings.set_endpoint("audiopod", fake.url)
        d = make_dialog(qtbot, settings)
        d.key_edits["audiopod"].setText(fake.key)
        assert (await d.test_key("audiopod"))[0] is True
        assert d.key_status["audiopod"].text() == "✔ Accepted by AudioPod"
    ok, message = await test_key("audiopod", "anything", fake.url)  # the server is gone now
    assert ok is None and message.startswith("could not reach AudioPod")


async def test_style_preview_is_live_and_cancel_restores(qtbot, settings):
    settings.set_style(OverlayStyle(font_size=30))
    capp = CaptionerApp(settings, build_parser().parse_args([]), CaptionController(), tray_available=False, device_lister=lambda: [])
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    capp.open_settings()
    d = capp.dialog
    d.size_spin.setValue(72)
    assert capp.overlay.renderer.style.font_size == 72  # the real overlay previews it
    assert d.preview.renderer.style.font_size == 72
    d.preset_combo.setCurrentIndex(d.preset_combo.findData("High contrast"))
    d._preset_chosen()
    hc = PRESETS["High contrast"]
    assert capp.overlay.renderer.style.background_opacity == 1.0
    assert d.color_buttons["partial_color"].color == hc.partial_color
    assert d.size_spin.value() == hc.font_size
    d.reject()
    assert capp.overlay.renderer.style.font_size == 30  # cancelled: back as it was
    assert settings.style().font_size == 30
    await capp.settle()


def _saved_overlay_rect(path: Path, overlay: CaptionOverlay) -> QRect | None:
    """The overlay geometry a new start would read, in global coordinates."""
    screen = overlay._current_screen()
    saved = reopen(path).overlay_geometry(screen_key(screen))
    return None if saved is None else saved.translated(screen.geometry().topLeft())


def _shown_app(qtbot, settings) -> CaptionerApp:  # noqa: ANN001
    capp = CaptionerApp(settings, build_parser().parse_args([]), CaptionController(), tray_available=False, device_lister=lambda: [])
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    capp.show()
    qtbot.waitExposed(capp.overlay)
    return capp


async def test_quitting_with_a_style_preview_open_is_cancel_overlay_size_and_all(qtbot, settings, settings_path):
    """Quit (tray, menu, Ctrl+Q) with Settings previewing 72 pt / 8 lines
    saved the preview's full-height overlay with the old 28 pt / 3 lines."""
    capp = _shown_app(qtbot, settings)
    before = QRect(capp.overlay.geometry())
    capp.overlay.save_geometry()
    capp.open_settings()
    d = capp.dialog
    d.size_spin.setValue(72)
    d.lines_spin.setValue(8)
    assert capp.overlay.height() > before.height() + 100  # the preview grew the overlay
    await asyncio.sleep(capp.overlay._save_timer.interval() / 1000 + 0.2)
    assert _saved_overlay_rect(settings_path, capp.overlay) == before  # a preview's size is not saved meanwhile
    await capp.shutdown()
    assert not d.isVisible()  # closed as Cancel
    again = reopen(settings_path)
    assert (again.style().font_size, again.style().lines) == (28, 3)
    assert _saved_overlay_rect(settings_path, capp.overlay) == before
    await capp.settle()


async def test_saving_a_previewed_style_remembers_the_overlay_size_it_gave(qtbot, settings, settings_path):
    capp = _shown_app(qtbot, settings)
    before = QRect(capp.overlay.geometry())
    capp.open_settings()
    capp.dialog.lines_spin.setValue(6)
    capp.dialog.save()
    grown = QRect(capp.overlay.geometry())
    assert grown.height() > before.height() and grown.bottom() == before.bottom()
    assert _saved_overlay_rect(settings_path, capp.overlay) == grown
    await capp.shutdown()
    assert _saved_overlay_rect(settings_path, capp.overlay) == grown
    await capp.settle()


async def test_dialog_saves_style_hotkeys_and_start_options(qtbot, settings, settings_path):
    capp = CaptionerApp(settings, build_parser().parse_args([]), CaptionController(), tray_available=False, device_lister=lambda: [])
    qtbot.addWidget(capp.window)
    capp.open_settings()
    d = capp.dialog
    d.lines_spin.setValue(6)
    d.opacity_slider.setValue(35)
    d.hotkey_edits["toggle_pin"].setKeySequence(QKeySequence("Ctrl+Alt+U"))
    d.start_check.setChecked(True)
    d.save()
    again = reopen(settings_path)
    assert again.style().lines == 6 and again.style().background_opacity == 0.35
    assert again.hotkeys()["toggle_pin"] == "Ctrl+Alt+U"
    assert again.start_options().start_on_launch
    assert capp.overlay.renderer.style.lines == 6
    assert "Ctrl+Alt+U" in {sc.key().toString() for sc in capp.window._shortcuts}
    from PySide6.QtWidgets import QLabel

    assert any("no system-wide (global) hotkeys" in label.text() for label in d.findChildren(QLabel))
    await capp.settle()


async def test_live_word_underline_can_be_turned_off_and_presets_keep_the_choice(qtbot, settings, settings_path):
    assert settings.style().underline_live  # on unless the user turns it off
    capp = CaptionerApp(settings, build_parser().parse_args([]), CaptionController(), tray_available=False, device_lister=lambda: [])
    qtbot.addWidget(capp.window)
    capp.open_settings()
    d = capp.dialog
    assert d.underline_check.isChecked() and d.underline_check.text() == "&Underline live words"
    d.underline_check.setChecked(False)
    assert not capp.overlay.renderer.style.underline_live  # previewed on the real overlay
    d.preset_combo.setCurrentIndex(d.preset_combo.findData("Large print"))
    d._preset_chosen()
    assert not d.underline_check.isChecked()  # a preset sets the look, not this preference
    d.save()
    assert reopen(settings_path).style().underline_live is False
    await capp.settle()


def test_a_dialog_opened_before_another_save_writes_only_its_own_changes(qtbot, settings, settings_path):
    """Two Captioners open: B saves font 60 and F8 for pin; A's dialog, open
    since before, saved with only its lines changed, put back font 28 and
    Ctrl+Shift+L from the values it had read."""
    from captioner.ui.settings_dialog import SettingsDialog

    d = SettingsDialog(settings)  # A's dialog is open ...
    qtbot.addWidget(d)
    other = reopen(settings_path)  # ... while B saves
    other.set_style(replace(other.style(), font_size=60))
    other.set_hotkeys({"toggle_pin": "F8"})
    other.sync()
    d.lines_spin.setValue(5)
    d.save()
    final = reopen(settings_path)
    assert (final.style().font_size, final.style().lines, final.hotkeys()["toggle_pin"]) == (60, 5, "F8")


async def test_settings_that_cannot_be_saved_are_said_once_the_window_is_up(qtbot, tmp_path):
    """A folder where the INI should be: the app ran on defaults and lost
    every change without a word."""
    from captioner.app import CaptionerApp, build_parser
    from captioner.settings import Settings, open_qsettings

    folder = tmp_path / "captioner.ini"
    folder.mkdir()
    settings = Settings(open_qsettings(str(folder)))
    assert settings.unsaved_reason() == f"{folder} is a folder, not a settings file"
    capp = CaptionerApp(settings, build_parser().parse_args([]), tray_available=True, device_lister=lambda: [])
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    capp.show()
    await capp.after_first_paint()
    text = capp.window.banner.text()
    assert f"Settings cannot be saved: {folder} is a folder, not a settings file." in text
    assert capp.window.banner.isVisibleTo(capp.window)
    await capp.shutdown()


def test_a_writable_settings_file_has_no_unsaved_reason(settings):
    assert settings.unsaved_reason() is None
