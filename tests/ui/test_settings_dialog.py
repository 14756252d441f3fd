"""The settings dialog as a keyboard and screen-reader user meets it: a key
typed and confirmed with Save/Enter really reaches the keyring (off the event
loop, never logged), hotkey fields refuse Esc/Enter/Tab and duplicates, every
style control has a label a screen reader announces, and the colour swatches
keep their text readable (WCAG contrast)."""

from __future__ import annotations

import asyncio
import logging
import threading
from itertools import product

import keyring
import pytest
from keyring.backends.fail import Keyring as FailKeyring
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible, QColor, QKeySequence, QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QWidget

from captioner.ui.settings_dialog import ColorButton, SettingsDialog, contrast_ratio, readable_ink
from captioner.ui.theme import PRESETS, OverlayStyle
from tests.conftest import MemoryKeyring

SECRET = "ap_test_key_0123456789"
COLOR_FIELDS = ("text_color", "partial_color", "speaker_color", "background_color", "effect_color")


class ThreadRecordingKeyring(MemoryKeyring):
    """Remembers which thread stored each key, and can hold a store until released."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[threading.Thread] = []
        self.release = threading.Event()
        self.release.set()

    def set_password(self, service: str, username: str, password: str) -> None:
        self.threads.append(threading.current_thread())
        self.release.wait(5)
        super().set_password(service, username, password)


@pytest.fixture
def dialog(qtbot, qapp, settings):  # noqa: ANN001, ANN201
    # as in the app (captioner.app sets this too): closing the only window must not end the loop
    quits = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    d = SettingsDialog(settings)
    qtbot.addWidget(d)
    d.show()
    d.activateWindow()
    QApplication.processEvents()
    yield d
    qapp.setQuitOnLastWindowClosed(quits)


def save_button(d: SettingsDialog):  # noqa: ANN201
    return d.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Save)


def press(widget: QWidget, key: Qt.Key, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    """A key press delivered where a real one goes: to the focused widget.
    (No processEvents() afterwards: inside a running test task it would run
    tasks the press started in a nested drain, which asyncio refuses.)"""
    widget.setFocus()
    QTest.keyClick(QApplication.focusWidget(), key, modifiers)


def labels_of(widget: QWidget) -> list[str]:
    iface = QAccessible.queryAccessibleInterface(widget)
    return [r[0].text(QAccessible.Text.Name) for r in iface.relations(QAccessible.RelationFlag.Label)]


# ------------------------------------------------------------------ keys
async def test_enter_in_a_key_field_stores_the_key_and_closes(dialog, settings, caplog):
    caplog.set_level(logging.DEBUG)
    backend = ThreadRecordingKeyring()
    keyring.set_keyring(backend)
    edit = dialog.key_edits["audiopod"]
    edit.setFocus()
    QTest.keyClicks(edit, SECRET)
    press(edit, Qt.Key.Key_Return)
    await dialog.settle()
    assert backend.store[("captioner", "audiopod")] == SECRET
    assert backend.threads and all(t is not threading.main_thread() for t in backend.threads)  # off the loop
    assert not dialog.isVisible() and dialog.result() == QDialog.DialogCode.Accepted
    assert edit.text() == ""
    assert SECRET not in caplog.text


async def test_dialog_save_stores_every_typed_key_while_the_loop_keeps_running(dialog, settings, caplog):
    caplog.set_level(logging.DEBUG)
    backend = ThreadRecordingKeyring()
    backend.release.clear()  # the keyring is slow (a D-Bus round trip, an unlock prompt)
    keyring.set_keyring(backend)
    dialog.key_edits["audiopod"].setText(SECRET)
    dialog.key_edits["smallest"].setText("sm_other_key_42")
    dialog.lines_spin.setValue(7)
    save_button(dialog).click()
    ticks = 0
    for _ in range(5):  # the loop is free while the keyring works
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 5 and dialog.isVisible() and not save_button(dialog).isEnabled()
    assert "keyring" in dialog.save_message.text()
    backend.release.set()
    await dialog.settle()
    assert backend.store[("captioner", "audiopod")] == SECRET
    assert backend.store[("captioner", "smallest")] == "sm_other_key_42"
    assert not dialog.isVisible() and settings.style().lines == 7
    assert SECRET not in caplog.text


async def test_when_the_keyring_refuses_the_dialog_stays_open_and_says_why(dialog, settings, caplog):
    caplog.set_level(logging.DEBUG)
    keyring.set_keyring(FailKeyring())
    dialog.key_edits["audiopod"].setText(SECRET)
    dialog.lines_spin.setValue(9)
    applied: list[bool] = []
    dialog.applied.connect(lambda: applied.append(True))
    save_button(dialog).click()
    await dialog.settle()
    assert dialog.isVisible() and applied == []
    assert settings.style().lines != 9  # nothing was half-saved
    assert dialog.tabs.currentIndex() == 0 and dialog.key_edits["audiopod"].text() == SECRET  # the key is not lost
    message = dialog.save_message.text()
    assert message.startswith("Not saved: the AudioPod key could not be stored in the keyring")
    assert dialog.key_status["audiopod"].text().startswith("Not saved: the OS keyring is not available")
    assert save_button(dialog).isEnabled()
    assert SECRET not in message and SECRET not in caplog.text
    # clearing the field lets the rest be saved
    dialog.key_edits["audiopod"].setFocus()
    QTest.keyClick(dialog.key_edits["audiopod"], Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(dialog.key_edits["audiopod"], Qt.Key.Key_Delete)
    assert dialog.save_message.isHidden()  # the old failure no longer stands
    save_button(dialog).click()
    await dialog.settle()
    assert not dialog.isVisible() and settings.style().lines == 9


async def test_cancel_while_the_keyring_works_saves_nothing_else(dialog, settings):
    backend = ThreadRecordingKeyring()
    backend.release.clear()
    keyring.set_keyring(backend)
    applied: list[bool] = []
    dialog.applied.connect(lambda: applied.append(True))
    dialog.key_edits["audiopod"].setText(SECRET)
    dialog.lines_spin.setValue(8)
    dialog.save()
    await asyncio.sleep(0.01)
    dialog.reject()
    backend.release.set()
    await dialog.settle()
    assert dialog.result() == QDialog.DialogCode.Rejected and applied == []
    assert settings.style().lines != 8


async def test_reading_and_testing_a_stored_key_keeps_it_out_of_debug_logs(dialog, memory_keyring, caplog):
    caplog.set_level(logging.DEBUG)  # qasync's executor logs each call's arguments and result at DEBUG
    memory_keyring.store[("captioner", "audiopod")] = SECRET
    await dialog.load_key_states()
    assert dialog.key_edits["audiopod"].placeholderText() == "stored — type a new key to replace it"
    dialog.endpoint_for = lambda _pid: "ws://127.0.0.1:9/"  # nothing listens: the test fails fast, offline
    await dialog.test_key("audiopod")
    assert dialog.key_status["audiopod"].text().startswith("? Could not reach AudioPod")
    assert SECRET not in caplog.text


async def test_without_typed_keys_save_is_immediate(dialog, settings):
    dialog.lines_spin.setValue(4)
    dialog.save()
    assert not dialog.isVisible() and settings.style().lines == 4


# --------------------------------------------------------------- hotkeys
async def test_escape_in_a_hotkey_field_cancels_the_dialog_and_is_not_recorded(dialog, settings):
    dialog.tabs.setCurrentIndex(2)
    edit = dialog.hotkey_edits["toggle_pin"]
    press(edit, Qt.Key.Key_Escape)
    assert edit.keySequence().toString() == "Ctrl+Shift+L"
    assert not dialog.isVisible() and dialog.result() == QDialog.DialogCode.Rejected
    assert settings.hotkeys()["toggle_pin"] == "Ctrl+Shift+L"


@pytest.mark.parametrize("key", [Qt.Key.Key_Return, Qt.Key.Key_Enter])
async def test_enter_in_a_hotkey_field_is_not_recorded_and_saves(dialog, settings, key):
    dialog.tabs.setCurrentIndex(2)
    edit = dialog.hotkey_edits["toggle_overlay"]
    press(edit, key, Qt.KeyboardModifier.KeypadModifier if key == Qt.Key.Key_Enter else Qt.KeyboardModifier.NoModifier)
    assert edit.keySequence().toString() == "Ctrl+Shift+O"
    assert dialog.result() == QDialog.DialogCode.Accepted  # Enter is the dialog's Save, as in every other field
    assert settings.hotkeys()["toggle_overlay"] == "Ctrl+Shift+O"


@pytest.mark.parametrize(
    ("key", "modifiers"),
    [(Qt.Key.Key_Tab, Qt.KeyboardModifier.NoModifier), (Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)],
)
async def test_tab_moves_on_and_is_not_recorded(dialog, key, modifiers):
    dialog.tabs.setCurrentIndex(2)
    edit = dialog.hotkey_edits["toggle_overlay"]
    press(edit, key, modifiers)
    assert edit.keySequence().toString() == "Ctrl+Shift+O"
    assert QApplication.focusWidget() is not edit and dialog.isVisible()


@pytest.mark.parametrize("wait", [False, True], ids=["focus-leaves", "recording-times-out"])
async def test_a_lone_modifier_does_not_erase_the_hotkey(dialog, qtbot, wait):
    edit = dialog.hotkey_edits["start_stop"]
    edit.setFocus()
    QTest.keyPress(edit, Qt.Key.Key_Control)  # Qt empties the field here and waits for a chord
    QTest.keyRelease(edit, Qt.Key.Key_Control)
    if wait:  # Qt gives up after a second without a chord
        qtbot.waitUntil(lambda: edit.keySequence().toString() == "Ctrl+Shift+R", timeout=3000)
    dialog.key_edits["audiopod"].setFocus()
    assert edit.keySequence().toString() == "Ctrl+Shift+R"


async def test_a_real_chord_is_still_recorded(dialog, settings):
    edit = dialog.hotkey_edits["toggle_pin"]
    press(edit, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
    assert edit.keySequence().toString() == "Ctrl+Alt+K"
    dialog.save()
    assert settings.hotkeys()["toggle_pin"] == "Ctrl+Alt+K"


async def test_hotkey_fields_have_a_clear_button_and_take_one_chord(dialog):
    for edit in dialog.hotkey_edits.values():
        assert edit.isClearButtonEnabled() and edit.maximumSequenceLength() == 1


async def test_a_duplicate_hotkey_is_refused_next_to_the_field_and_blocks_save(dialog, settings):
    pin, overlay = dialog.hotkey_edits["toggle_pin"], dialog.hotkey_edits["toggle_overlay"]
    overlay.setKeySequence(QKeySequence("Ctrl+Shift+L"))
    message = dialog.hotkey_messages["toggle_overlay"]
    assert not message.isHidden()
    assert message.text() == "Ctrl+Shift+L is also the shortcut for “Pin / unpin the overlay”. Choose another one."
    assert overlay.accessibleDescription() == message.text()
    assert dialog.hotkey_messages["toggle_pin"].text().startswith("Ctrl+Shift+L is also the shortcut for “Show / hide")
    assert not save_button(dialog).isEnabled()
    assert "Hotkeys" in dialog.save_message.text() and dialog.save_message.isVisibleTo(dialog)
    dialog.save()  # called anyway (Enter, a script): refused, nothing written
    assert dialog.isVisible() and settings.hotkeys()["toggle_overlay"] == "Ctrl+Shift+O"
    assert dialog.tabs.currentIndex() == 2
    pin.clear()  # resolved: both messages go, Save comes back
    assert message.isHidden() and dialog.hotkey_messages["toggle_pin"].text() == ""
    assert overlay.accessibleDescription() == ""
    assert save_button(dialog).isEnabled() and not dialog.save_message.isVisibleTo(dialog)
    dialog.save()
    assert settings.hotkeys() == {"toggle_pin": "", "toggle_overlay": "Ctrl+Shift+L", "start_stop": "Ctrl+Shift+R"}


async def test_a_reserved_key_saved_by_an_older_version_is_flagged(qtbot, settings):
    settings.set_hotkeys({"toggle_pin": "Esc"})
    d = SettingsDialog(settings)
    qtbot.addWidget(d)
    assert d.hotkey_messages["toggle_pin"].text() == "Esc closes dialogs and cannot be a hotkey. Choose another one."
    assert not save_button(d).isEnabled()


# ---------------------------------------------------------- screen reader
async def test_every_style_control_has_a_label_a_screen_reader_announces(dialog):
    expected = {
        dialog.font_combo: "Font:",
        dialog.size_spin: "Size",
        dialog.effect_combo: "Outline:",
        dialog.align_combo: "Alignment",
        dialog.lines_spin: "Lines",
        dialog.clear_spin: "Clear after silence",
        dialog.opacity_slider: "Opacity",
        dialog.preset_combo: "Preset:",
        dialog.color_buttons["text_color"]: "Text",
        dialog.color_buttons["partial_color"]: "Live words",
        dialog.color_buttons["speaker_color"]: "Speakers",
        dialog.color_buttons["background_color"]: "Background:",
    }
    for widget, label in expected.items():
        assert label in labels_of(widget), (widget.accessibleName(), labels_of(widget))
    for action, edit in dialog.hotkey_edits.items():
        assert labels_of(edit) and labels_of(edit)[0].endswith(":")


# --------------------------------------------------------------- contrast
def preset_colors() -> set[str]:
    return {getattr(style, f) for style in [OverlayStyle(), *PRESETS.values()] for f in COLOR_FIELDS}


@pytest.mark.parametrize("color", sorted(preset_colors()))
def test_swatch_text_is_readable_on_every_preset_colour(qapp, color):
    button = ColorButton("Text", color)
    button.ensurePolished()
    pal = button.palette()
    assert pal.color(QPalette.ColorRole.Button).name() == color
    assert contrast_ratio(pal.color(QPalette.ColorRole.ButtonText), QColor(color)) >= 4.5


def test_high_contrast_yellow_and_cyan_get_black_text(qapp):
    for color in ("#ffff00", "#00ffff"):
        button = ColorButton("Live words", color)
        button.ensurePolished()
        assert button.palette().color(QPalette.ColorRole.ButtonText).name() == "#000000"


def test_ink_has_the_better_contrast_across_the_colour_cube(qapp):
    black, white = QColor("#000000"), QColor("#ffffff")
    for r, g, b in product(range(0, 256, 15), repeat=3):
        bg = QColor(r, g, b)
        ink = QColor(readable_ink(bg))
        ratio = contrast_ratio(ink, bg)
        assert ratio >= 4.5 and ratio == max(contrast_ratio(black, bg), contrast_ratio(white, bg)), (bg.name(), ink.name())


def test_contrast_ratio_matches_wcag_reference_values(qapp):
    assert contrast_ratio(QColor("#000000"), QColor("#ffffff")) == pytest.approx(21.0)
    assert contrast_ratio(QColor("#ffffff"), QColor("#ffff00")) == pytest.approx(1.07, abs=0.01)
    assert contrast_ratio(QColor("#ffffff"), QColor("#00ffff")) == pytest.approx(1.25, abs=0.01)
    assert contrast_ratio(QColor("#777777"), QColor("#ffffff")) == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize(
    ("key", "modifiers", "shown"),
    [
        (Qt.Key.Key_L, Qt.KeyboardModifier.NoModifier, "L"),
        (Qt.Key.Key_A, Qt.KeyboardModifier.ShiftModifier, "Shift+A"),
        (Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier, "Space"),
        (Qt.Key.Key_5, Qt.KeyboardModifier.NoModifier, "5"),
        (Qt.Key.Key_Left, Qt.KeyboardModifier.NoModifier, "Left"),
    ],
)
async def test_a_key_that_types_or_moves_is_refused_as_a_hotkey(dialog, settings, key, modifiers, shown):
    """Application-wide, a bare Space would stop pressing the focused button
    and a letter would stop selecting rows in every Captioner window."""
    dialog.tabs.setCurrentIndex(2)
    edit = dialog.hotkey_edits["toggle_pin"]
    edit.setFocus()
    press(edit, key, modifiers)
    assert edit.keySequence().toString() == shown
    message = dialog.hotkey_messages["toggle_pin"]
    assert message.text().startswith(f"{shown} alone types or moves in every Captioner window")
    assert "Add Ctrl, Alt or Meta, or use a function key" in message.text() and not message.isHidden()
    assert not save_button(dialog).isEnabled()
    dialog.save()
    assert settings.hotkeys()["toggle_pin"] == "Ctrl+Shift+L"


@pytest.mark.parametrize(
    ("key", "modifiers", "shown"),
    [
        (Qt.Key.Key_F9, Qt.KeyboardModifier.NoModifier, "F9"),
        (Qt.Key.Key_Space, Qt.KeyboardModifier.AltModifier, "Alt+Space"),
        (Qt.Key.Key_K, Qt.KeyboardModifier.MetaModifier, "Meta+K"),
        (Qt.Key.Key_Left, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier, "Ctrl+Shift+Left"),
    ],
)
async def test_chords_and_function_keys_are_good_hotkeys(dialog, settings, key, modifiers, shown):
    edit = dialog.hotkey_edits["toggle_pin"]
    edit.setFocus()
    press(edit, key, modifiers)
    assert edit.keySequence().toString() == shown
    assert dialog.hotkey_messages["toggle_pin"].text() == "" and save_button(dialog).isEnabled()
    dialog.save()
    assert settings.hotkeys()["toggle_pin"] == shown
