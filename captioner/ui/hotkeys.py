"""Which key combinations can be Captioner's hotkeys, and why not: the
settings dialog refuses them beside their field, and the control window
never installs one from a settings file (older, or edited by hand) that
fails the same checks."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence

from captioner.settings import HOTKEY_LABELS

# Keys that keep their dialog meaning in a hotkey field (QDialog/focus handling
# owns them), so they are never recorded as a shortcut.
RESERVED_KEYS = {
    Qt.Key.Key_Escape: "Esc closes dialogs",
    Qt.Key.Key_Return: "Enter confirms dialogs",
    Qt.Key.Key_Enter: "Enter confirms dialogs",
    Qt.Key.Key_Tab: "Tab moves between fields",
    Qt.Key.Key_Backtab: "Shift+Tab moves between fields",
}

# Keys that, without Ctrl, Alt or Meta, move the cursor or the focus or press
# the focused button; printable keys (code < 0x01000000) type text.
_EDITING_KEYS = {
    Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Home, Qt.Key.Key_End,
    Qt.Key.Key_PageUp, Qt.Key.Key_PageDown, Qt.Key.Key_Backspace, Qt.Key.Key_Delete, Qt.Key.Key_Insert,
}
_CHORD_MODIFIERS = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.MetaModifier


def _types_or_moves(key: int, modifiers: Qt.KeyboardModifier) -> bool:
    """A key that, as an application-wide hotkey, would be taken from every
    button and list (Space would no longer press a button, a letter would
    no longer select a row). Shift alone does not make a chord."""
    if modifiers & _CHORD_MODIFIERS:
        return False
    return key < 0x01000000 or key in _EDITING_KEYS


def is_reserved(key: int, modifiers: Qt.KeyboardModifier) -> bool:
    """A bare Esc/Enter/Tab (the keypad flag and Shift+Tab's Shift do not count):
    with Ctrl, Alt or Meta they are ordinary chords the dialog does not use."""
    extra = modifiers & ~Qt.KeyboardModifier.KeypadModifier
    if key == Qt.Key.Key_Backtab:
        extra &= ~Qt.KeyboardModifier.ShiftModifier
    return key in RESERVED_KEYS and not extra


def hotkey_problems(values: dict[str, str]) -> dict[str, str]:
    """action -> why its shortcut (PortableText) cannot be used: taken by
    another action (Qt would then fire neither), a key the dialogs need, a
    key that types or moves, or no key at all."""
    problems: dict[str, str] = {}
    for action, seq in values.items():
        if not seq:
            continue
        keys = QKeySequence(seq)
        native = keys.toString(QKeySequence.SequenceFormat.NativeText)
        if keys.isEmpty() or keys[0].key() in (Qt.Key.Key_unknown, 0):
            problems[action] = f"“{seq}” is not a key Captioner knows. Choose another one."
            continue
        combo = keys[0]
        if keys.count() == 1 and is_reserved(combo.key(), combo.keyboardModifiers()):
            problems[action] = f"{RESERVED_KEYS[combo.key()]} and cannot be a hotkey. Choose another one."
            continue
        if keys.count() == 1 and _types_or_moves(combo.key(), combo.keyboardModifiers()):
            problems[action] = (f"{native} alone types or moves in every Captioner window: as a hotkey it would "
                                "stop working there. Add Ctrl, Alt or Meta, or use a function key such as F9.")
            continue
        others = [HOTKEY_LABELS.get(a, a) for a, s in values.items() if a != action and s == seq]
        if others:
            problems[action] = f"{native} is also the shortcut for “{others[0]}”. Choose another one."
    return problems
