"""Settings: API keys (OS keyring only, masked, with a live test), overlay
style with a live preview, hotkeys, and start options.

Keyring calls run in worker threads; a missing keyring is explained in words.
A key typed into a field is stored by the dialog's Save (or Enter) too, the
same way its row's Save button stores it; if the keyring refuses, nothing is
saved and the dialog stays open saying why.
Style changes preview at once on a sample and on the real overlay; Cancel
puts the previous style back.
Hotkey fields take one chord; Esc, Enter and Tab keep their dialog meaning
(cancel, save, move on) and are never recorded; a shortcut given to two
actions is flagged next to both fields and Save waits until it is resolved.
Every control shows keyboard focus with the control window's 2 px ring
(captioner.ui.focus paints it where a style sheet cannot), the tab bar and
the colour swatches included.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any, Awaitable, Callable, TypeVar

import shiboken6
from PySide6.QtCore import QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFocusEvent, QFont, QKeyEvent, QKeySequence, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QColorDialog,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QKeySequenceEdit,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from captioner import keys, logs
from captioner.ui.focus import (
    RingedComboBox,
    RingedDoubleSpinBox,
    RingedFontComboBox,
    RingedSlider,
    RingedSpinBox,
    RingedTabWidget,
    paint_focus_ring,
)
from captioner.ui.tasks import TaskSet
from captioner.settings import HOTKEY_LABELS, Settings, StartOptions
from captioner.ui.hotkeys import hotkey_problems, is_reserved
from captioner.ui.overlay import CaptionRenderer
from captioner.ui.theme import MAX_FONT_PT, MAX_LINES, MIN_FONT_PT, MIN_LINES, PRESETS, OverlayStyle, apply_preset

log = logging.getLogger(__name__)
T = TypeVar("T")

SAMPLE_FINALS = [
    ("Welcome, everyone.", "0"),
    ("Let's begin.", "1"),
]
SAMPLE_PARTIAL = ("Live words", "0")
GLOBAL_HOTKEY_NOTE = (
    "These shortcuts work while a Captioner window is active. Qt has no system-wide (global) hotkeys, "
    "and a pinned overlay never takes the keyboard: to unpin it from another application use the tray icon "
    "or bring up the control window."
)
_MODIFIER_KEYS = {
    Qt.Key.Key_Shift, Qt.Key.Key_Control, Qt.Key.Key_Alt, Qt.Key.Key_AltGr, Qt.Key.Key_Meta,
    Qt.Key.Key_Super_L, Qt.Key.Key_Super_R, Qt.Key.Key_Hyper_L, Qt.Key.Key_Hyper_R,
}


async def _off_loop(call: Callable[[], T]) -> T:
    """Run a keyring call in a worker thread without its arguments or result
    (a key) passing through the executor: qasync's worker logs both at DEBUG."""
    out: list[T] = []
    await asyncio.to_thread(lambda: out.append(call()))
    return out[0]


def relative_luminance(color: QColor) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0 black … 1 white)."""

    def linear(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(color.red()) + 0.7152 * linear(color.green()) + 0.0722 * linear(color.blue())


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio, 1 (none) … 21 (black on white); text needs ≥ 4.5."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable_ink(background: QColor) -> str:
    """Black or white, whichever contrasts more with `background` (always ≥ 4.58:1)."""
    black, white = QColor("#000000"), QColor("#ffffff")
    return "#000000" if contrast_ratio(black, background) >= contrast_ratio(white, background) else "#ffffff"


class StylePreview(QWidget):
    """A sample of captions drawn exactly as the overlay draws them."""

    def __init__(self, style: OverlayStyle, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.renderer = CaptionRenderer(style)
        self.setAccessibleName("Preview of the caption style")
        self._fill()
        self._fit()

    def _fit(self) -> None:
        """As tall as the overlay's text area (capped), so the preview shows what the overlay will."""
        self.setFixedHeight(max(90, min(420, self.renderer.text_height() + 30)))

    def _fill(self) -> None:
        self.renderer.clear()
        for text, speaker in SAMPLE_FINALS:
            self.renderer.add_final(text, speaker)
        self.renderer.set_partial(*SAMPLE_PARTIAL)

    def set_style(self, style: OverlayStyle) -> None:
        self.renderer.set_style(style)
        self._fill()
        self._fit()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        # a busy "desktop" behind, so opacity and outline can be judged
        w, h = self.width(), self.height()
        for i in range(0, w, 40):
            p.fillRect(QRect(i, 0, 20, h), QColor("#6d8fb3"))
            p.fillRect(QRect(i + 20, 0, 20, h), QColor("#d9e3ee"))
        self.renderer.paint_background(p, QRectF(6, 6, w - 12, h - 12))
        self.renderer.paint_text(p, QRect(18, 14, w - 36, h - 28))
        p.end()


class ColorButton(QPushButton):
    color_changed = Signal(str)
    RING_MARGIN = 3  # px round the swatch: room for the 2 px focus ring and a 1 px gap

    def __init__(self, label: str, color: str) -> None:
        super().__init__()
        self._label = label
        self.setAccessibleName(f"{label} colour")
        self.clicked.connect(self._choose)
        self.set_color(color)

    def set_color(self, color: str) -> None:
        self.color = QColor(color).name()
        self.setText(self.color)
        # HSL lightness misjudges yellow and cyan (white on #ffff00 is 1.07:1); WCAG luminance does not.
        # The margin is where the focus ring goes: on the dialog's background, not on the swatch,
        # so it shows whatever the swatch's colour (the ring's own, black, the background's).
        self.setStyleSheet(
            f"QPushButton {{ background: {self.color}; color: {readable_ink(QColor(self.color))}; "
            f"border: 1px solid #777; margin: {self.RING_MARGIN}px; min-width: 90px; }}"
        )
        self.setAccessibleDescription(f"{self._label} colour is {self.color}")

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        """The swatch's own style sheet outranks the dialog's `:focus` rule: the ring is painted."""
        super().paintEvent(event)
        if self.hasFocus():
            paint_focus_ring(self)

    def _choose(self) -> None:
        chosen = QColorDialog.getColor(QColor(self.color), self, f"{self._label} colour")
        if chosen.isValid():
            self.set_color(chosen.name())
            self.color_changed.emit(self.color)


class HotkeyEdit(QKeySequenceEdit):
    """A one-chord shortcut field with a clear button. Esc, Enter/Return and a
    bare Tab/Shift+Tab are not recorded: Esc cancels the dialog and Enter
    saves it (as in every other field), Tab moves to the next field. This is
    what a keyboard user expects; a field that swallowed Esc would trap them."""

    def __init__(self, sequence: QKeySequence, parent: QWidget | None = None) -> None:
        super().__init__(sequence, parent)
        self.setMaximumSequenceLength(1)  # Qt ≥ 6.5
        self.setClearButtonEnabled(True)
        # Qt empties the field as soon as a modifier goes down; if no chord
        # follows (Shift+Tab away, Ctrl pressed by mistake) the old one comes back.
        self._before: QKeySequence | None = None
        self.editingFinished.connect(self._restore_if_empty)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if is_reserved(event.key(), event.modifiers()):
            self._restore_if_empty()
            if event.key() in (Qt.Key.Key_Tab, Qt.Key.Key_Backtab):
                self.focusNextPrevChild(event.key() == Qt.Key.Key_Tab)
                return
            event.ignore()  # on to the dialog: Esc rejects, Enter presses Save
            return
        if self._before is None:
            self._before = self.keySequence()
        super().keyPressEvent(event)
        if event.key() not in _MODIFIER_KEYS:
            self._before = None  # a chord was recorded

    def focusOutEvent(self, event: QFocusEvent) -> None:  # noqa: N802
        self._restore_if_empty()
        super().focusOutEvent(event)

    def _restore_if_empty(self) -> None:
        before, self._before = self._before, None
        if before is not None and not before.isEmpty() and self.keySequence().isEmpty():
            self.setKeySequence(before)


class SettingsDialog(QDialog):
    style_previewed = Signal(object)  # OverlayStyle, while editing
    applied = Signal()  # settings were saved
    key_stored = Signal(str)  # a provider's key is now in the keyring

    def __init__(self, settings: Settings, parent: QWidget | None = None, provider_id: str = "") -> None:
        super().__init__(parent)
        from captioner.stt.registry import PROVIDERS

        self.settings = settings
        self.providers = {pid: p for pid, p in PROVIDERS.items() if p.needs_key}  # the offline engine has no key
        self.setWindowTitle("Captioner settings")
        self.setAccessibleName("Captioner settings")
        self.tasks = TaskSet()
        settings.sync()  # another Captioner may have saved since this one read the file
        self._original_style = settings.style()
        self._loaded_hotkeys = settings.hotkeys()
        self._loaded_start = settings.start_options()
        self.style_value = self._original_style
        self.key_edits: dict[str, QLineEdit] = {}
        self.key_status: dict[str, QLabel] = {}
        self.key_buttons: dict[str, list[QPushButton]] = {}
        self._saving = False
        self._abandoned = False
        # Test uses the endpoint and options the control window (the parent)
        # shows for a provider, typed or not yet started; else the saved ones.
        self.endpoint_for: Callable[[str], str] = getattr(parent, "endpoint_for", settings.endpoint)
        self.options_for: Callable[[str], dict[str, str]] = getattr(parent, "options_for", settings.options)
        layout = QVBoxLayout(self)
        self.tabs = RingedTabWidget()
        layout.addWidget(self.tabs)
        self.tabs.addTab(self._keys_tab(), "API keys")
        self.tabs.addTab(self._style_tab(), "Overlay style")
        self.tabs.addTab(self._hotkeys_tab(), "Hotkeys")
        self.tabs.addTab(self._start_tab(), "Start")
        # why Save is off or did not close the dialog, right beside it
        self.save_message = QLabel()
        self.save_message.setTextFormat(Qt.TextFormat.PlainText)  # text from providers, devices and files: never markup
        self.save_message.setWordWrap(True)
        self.save_message.setAccessibleName("Save status")
        self.save_message.hide()
        layout.addWidget(self.save_message)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.save)
        box.rejected.connect(self.reject)
        self.save_button = box.button(QDialogButtonBox.StandardButton.Save)
        layout.addWidget(box)
        self._check_hotkeys()
        self.resize(760, 560)
        if provider_id in self.key_edits:
            self.key_edits[provider_id].setFocus()

    # ------------------------------------------------------------- tasks
    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task | None:
        return self.tasks.spawn(coro)

    async def settle(self) -> None:
        await self.tasks.settle()

    # -------------------------------------------------------------- keys
    def _keys_tab(self) -> QWidget:
        """The keys grid, in a page that scrolls rather than squeeze a row:
        a test's answer can take three lines, and each line must be read."""
        w = QWidget()
        v = QVBoxLayout(w)
        intro = QLabel(
            "Keys are stored in your operating system's keyring (never in the settings file). "
            "“Test” opens a session with the provider and sends one second of silence."
        )
        intro.setWordWrap(True)
        v.addWidget(intro)
        # Why no key can be stored, said once for all providers.
        self.keyring_banner = QLabel()
        self.keyring_banner.setWordWrap(True)
        self.keyring_banner.setTextFormat(Qt.TextFormat.PlainText)
        self.keyring_banner.setAccessibleName("Keyring status")
        self.keyring_banner.setStyleSheet("color: #8a1c1c;")
        self.keyring_banner.hide()
        v.addWidget(self.keyring_banner)
        grid = QGridLayout()
        for row, p in enumerate(self.providers.values()):
            name = QLabel(p.name)
            edit = QLineEdit()
            edit.setEchoMode(QLineEdit.EchoMode.Password)
            edit.setPlaceholderText("checking the keyring…")
            edit.setAccessibleName(f"{p.name} API key (hidden)")
            name.setBuddy(edit)
            save = QPushButton("Save")
            save.setAccessibleName(f"Save the {p.name} key in the keyring")
            delete = QPushButton("Delete")
            delete.setAccessibleName(f"Delete the stored {p.name} key")
            test = QPushButton("Test")
            test.setAccessibleName(f"Test the {p.name} key with the provider")
            status = QLabel("")
            status.setWordWrap(True)
            status.setTextFormat(Qt.TextFormat.PlainText)  # "<PROVIDER>" in a message is not a tag
            status.setAccessibleName(f"{p.name} key status")
            edit.textEdited.connect(lambda _t: self._key_typed())
            save.clicked.connect(lambda _=False, pid=p.id: self.spawn(self.save_key(pid)))
            delete.clicked.connect(lambda _=False, pid=p.id: self.spawn(self.delete_key(pid)))
            test.clicked.connect(lambda _=False, pid=p.id: self.spawn(self.test_key(pid)))
            grid.addWidget(name, 2 * row, 0)
            grid.addWidget(edit, 2 * row, 1)
            grid.addWidget(save, 2 * row, 2)
            grid.addWidget(delete, 2 * row, 3)
            grid.addWidget(test, 2 * row, 4)
            grid.addWidget(status, 2 * row + 1, 1, 1, 4)
            self.key_edits[p.id] = edit
            self.key_status[p.id] = status
            self.key_buttons[p.id] = [save, delete, test]
        v.addLayout(grid)
        v.addStretch(1)
        page = QScrollArea()
        page.setFrameShape(QFrame.Shape.NoFrame)
        page.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        page.setWidgetResizable(True)  # as tall as the wrapped answers need at the width it has
        page.setWidget(w)
        w.setAutoFillBackground(False)
        page.viewport().setAutoFillBackground(False)
        page.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes to the fields, not to a nameless page
        return page

    async def load_key_states(self) -> None:
        """Which providers have a key: asked off the loop, shown in words."""
        for pid in self.providers:
            try:
                stored = await _off_loop(lambda pid=pid: keys.get_key(pid) is not None)
                source = await asyncio.to_thread(keys.key_source, pid) if stored else None
            except keys.KeyStoreError as exc:
                self.keyring_banner.setText(f"No key can be stored: {exc}")
                self.keyring_banner.show()
                self._key_state(pid, f"Keyring unavailable: the key can come from the environment variable {keys.env_var(pid)}")
                self.key_edits[pid].setPlaceholderText("keyring unavailable")
                continue
            if source == "environment":
                self.key_edits[pid].setPlaceholderText(f"set by {keys.env_var(pid)}")
            else:
                self.key_edits[pid].setPlaceholderText("stored — type a new key to replace it" if stored else "no key stored")
            self._key_state(pid, "")

    def _key_typed(self) -> None:
        """A new edit answers an earlier "Not saved": that message goes."""
        if not self._saving:
            self._check_hotkeys()

    def _key_state(self, pid: str, text: str) -> None:
        self.key_status[pid].setText(text)
        self.key_status[pid].setAccessibleDescription(text)

    async def save_key(self, pid: str) -> bool:
        edit = self.key_edits[pid]
        key = edit.text().strip()
        if not key:
            self._key_state(pid, "Type the key first.")
            return False
        logs.add_secret(key)  # redacted from every log line from now on
        try:
            await _off_loop(lambda: keys.set_key(pid, key))
        except keys.KeyStoreError as exc:
            self._key_state(pid, f"Not saved: {exc}")
            return False
        edit.clear()
        edit.setPlaceholderText("stored — type a new key to replace it")
        self._key_state(pid, "Saved in the OS keyring.")
        self.key_stored.emit(pid)
        return True

    async def delete_key(self, pid: str) -> None:
        try:
            existed = await keys.delete_key_async(pid)
        except keys.KeyStoreError as exc:
            self._key_state(pid, f"Not deleted: {exc}")
            return
        self.key_edits[pid].setPlaceholderText("no key stored")
        self._key_state(pid, "Deleted." if existed else "There was no stored key.")

    async def test_key(self, pid: str) -> tuple[bool | None, str]:
        from captioner.ui.controller import test_key

        key = self.key_edits[pid].text().strip()
        if not key:
            try:
                key = await _off_loop(lambda: keys.get_key(pid)) or ""
            except keys.KeyStoreError as exc:
                self._key_state(pid, f"Cannot read the key: {exc}")
                return None, str(exc)
        if not key:
            self._key_state(pid, "Type a key (or save one) to test it.")
            return False, "no key"
        for b in self.key_buttons[pid]:
            b.setEnabled(False)
        self._key_state(pid, "Testing…")
        try:
            ok, message = await test_key(pid, key, self.endpoint_for(pid) or None, self.options_for(pid))
        finally:
            for b in self.key_buttons[pid]:
                b.setEnabled(True)
        mark = {True: "✔ ", False: "✖ ", None: "? "}[ok]
        self._key_state(pid, mark + message[0].upper() + message[1:])
        return ok, message

    # ------------------------------------------------------------- style
    def _style_tab(self) -> QWidget:
        s = self.style_value
        w = QWidget()
        v = QVBoxLayout(w)
        self.preview = StylePreview(s)
        v.addWidget(self.preview)
        form = QFormLayout()
        self.preset_combo = RingedComboBox()
        self.preset_combo.setAccessibleName("Style preset")
        self.preset_combo.addItem("Choose a preset…", "")
        for name in PRESETS:
            self.preset_combo.addItem(name, name)
        self.preset_combo.activated.connect(lambda _i: self._preset_chosen())
        form.addRow(self._label("Pre&set:", self.preset_combo), self.preset_combo)
        font_row = QHBoxLayout()
        self.font_combo = RingedFontComboBox()
        self.font_combo.setAccessibleName("Caption font")
        if s.font_family:
            self.font_combo.setCurrentFont(QFont(s.font_family))
        self.size_spin = RingedSpinBox()
        self.size_spin.setRange(MIN_FONT_PT, MAX_FONT_PT)
        self.size_spin.setSuffix(" pt")
        self.size_spin.setAccessibleName("Caption font size in points")
        self.bold_check = QCheckBox("Bold")
        self.bold_check.setAccessibleName("Bold captions")
        font_row.addWidget(self.font_combo, 1)
        font_row.addWidget(self._label("Si&ze", self.size_spin))
        font_row.addWidget(self.size_spin)
        font_row.addWidget(self.bold_check)
        form.addRow(self._label("&Font:", self.font_combo), font_row)
        colors = QHBoxLayout()
        self.color_buttons = {
            "text_color": ColorButton("Text", s.text_color),
            "partial_color": ColorButton("Live (partial) text", s.partial_color),
            "speaker_color": ColorButton("Speaker label", s.speaker_color),
        }
        for label, key in (("Text", "text_color"), ("Live words", "partial_color"), ("Speakers", "speaker_color")):
            colors.addWidget(self._label(label, self.color_buttons[key]))
            colors.addWidget(self.color_buttons[key])
        self.underline_check = QCheckBox("&Underline live words")
        self.underline_check.setAccessibleName("Underline live words")
        self.underline_check.setAccessibleDescription(
            "Words that may still change are underlined, so they are told apart without relying on colour")
        self.underline_check.setToolTip("Words that may still change are underlined as well as coloured.")
        form.addRow(self._label("Colours:", self.color_buttons["text_color"]), colors)
        form.addRow("", self.underline_check)
        bg = QHBoxLayout()
        self.color_buttons["background_color"] = ColorButton("Background", s.background_color)
        bg.addWidget(self.color_buttons["background_color"])
        self.opacity_slider = RingedSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setAccessibleName("Background opacity in percent")
        self.opacity_label = QLabel()
        bg.addWidget(self._label("O&pacity", self.opacity_slider))
        bg.addWidget(self.opacity_slider, 1)
        bg.addWidget(self.opacity_label)
        form.addRow(self._label("&Background:", self.color_buttons["background_color"]), bg)
        eff = QHBoxLayout()
        self.effect_combo = RingedComboBox()
        self.effect_combo.setAccessibleName("Text outline or shadow")
        for value, label in (("none", "None"), ("outline", "Outline"), ("shadow", "Drop shadow")):
            self.effect_combo.addItem(label, value)
        self.color_buttons["effect_color"] = ColorButton("Outline / shadow", s.effect_color)
        eff.addWidget(self.effect_combo)
        eff.addWidget(self.color_buttons["effect_color"])
        eff.addStretch(1)
        form.addRow(self._label("&Outline:", self.effect_combo), eff)
        lay = QHBoxLayout()
        self.lines_spin = RingedSpinBox()
        self.lines_spin.setRange(MIN_LINES, MAX_LINES)
        self.lines_spin.setAccessibleName("Number of caption lines shown")
        self.clear_spin = RingedDoubleSpinBox()
        self.clear_spin.setRange(0, 600)
        self.clear_spin.setDecimals(0)
        self.clear_spin.setSuffix(" s")
        self.clear_spin.setSpecialValueText("never")
        self.clear_spin.setAccessibleName("Clear the overlay after this many seconds of silence; 0 means never")
        self.align_combo = RingedComboBox()
        self.align_combo.setAccessibleName("Text alignment")
        self.align_combo.addItem("Left", "left")
        self.align_combo.addItem("Centre", "center")
        self.speakers_check = QCheckBox("Speaker labels")
        self.speakers_check.setAccessibleName("Show speaker labels when the provider gives them")
        lay.addWidget(self._label("&Lines", self.lines_spin))
        lay.addWidget(self.lines_spin)
        lay.addWidget(self._label("Clear after silence", self.clear_spin))
        lay.addWidget(self.clear_spin)
        lay.addWidget(self._label("&Alignment", self.align_combo))
        lay.addWidget(self.align_combo)
        lay.addWidget(self.speakers_check)
        lay.addStretch(1)
        form.addRow(self._label("Layout:", self.lines_spin), lay)
        v.addLayout(form)
        v.addStretch(1)
        self._load_style_widgets(s)
        self.font_combo.currentFontChanged.connect(lambda _f: self._style_edited())
        self.size_spin.valueChanged.connect(lambda _v: self._style_edited())
        self.bold_check.toggled.connect(lambda _v: self._style_edited())
        self.opacity_slider.valueChanged.connect(lambda _v: self._style_edited())
        self.effect_combo.currentIndexChanged.connect(lambda _v: self._style_edited())
        self.lines_spin.valueChanged.connect(lambda _v: self._style_edited())
        self.clear_spin.valueChanged.connect(lambda _v: self._style_edited())
        self.align_combo.currentIndexChanged.connect(lambda _v: self._style_edited())
        self.speakers_check.toggled.connect(lambda _v: self._style_edited())
        self.underline_check.toggled.connect(lambda _v: self._style_edited())
        for b in self.color_buttons.values():
            b.color_changed.connect(lambda _c: self._style_edited())
        return w

    @staticmethod
    def _label(text: str, buddy: QWidget) -> QLabel:
        """A label tied to its control: Linux screen readers announce a combo
        box's label only through this relation (its name is its current text)."""
        label = QLabel(text)
        label.setBuddy(buddy)
        return label

    def _load_style_widgets(self, s: OverlayStyle) -> None:
        self._loading = True
        try:
            if s.font_family:
                self.font_combo.setCurrentFont(QFont(s.font_family))
            self.size_spin.setValue(s.font_size)
            self.bold_check.setChecked(s.bold)
            for key, b in self.color_buttons.items():
                b.set_color(getattr(s, key))
            self.opacity_slider.setValue(round(s.background_opacity * 100))
            self.opacity_label.setText(f"{round(s.background_opacity * 100)} %")
            self.effect_combo.setCurrentIndex(max(0, self.effect_combo.findData(s.effect)))
            self.lines_spin.setValue(s.lines)
            self.clear_spin.setValue(s.clear_after)
            self.align_combo.setCurrentIndex(max(0, self.align_combo.findData(s.align)))
            self.speakers_check.setChecked(s.speaker_labels)
            self.underline_check.setChecked(s.underline_live)
        finally:
            self._loading = False

    def _style_from_widgets(self) -> OverlayStyle:
        family = self.font_combo.currentFont().family()
        return replace(
            self.style_value,
            font_family=family if (self.style_value.font_family or family != QFont().family()) else "",
            font_size=self.size_spin.value(),
            bold=self.bold_check.isChecked(),
            text_color=self.color_buttons["text_color"].color,
            partial_color=self.color_buttons["partial_color"].color,
            speaker_color=self.color_buttons["speaker_color"].color,
            background_color=self.color_buttons["background_color"].color,
            effect_color=self.color_buttons["effect_color"].color,
            background_opacity=self.opacity_slider.value() / 100,
            effect=str(self.effect_combo.currentData()),
            lines=self.lines_spin.value(),
            clear_after=float(self.clear_spin.value()),
            align=str(self.align_combo.currentData()),
            speaker_labels=self.speakers_check.isChecked(),
            underline_live=self.underline_check.isChecked(),
        ).normalized()

    def _style_edited(self) -> None:
        if self._loading:
            return
        self.opacity_label.setText(f"{self.opacity_slider.value()} %")
        self.set_style(self._style_from_widgets(), load_widgets=False)

    def _preset_chosen(self) -> None:
        name = self.preset_combo.currentData()
        if name:
            self.set_style(apply_preset(self.style_value, name))

    def set_style(self, style: OverlayStyle, load_widgets: bool = True) -> None:
        """Preview `style` on the sample and the overlay (saved only on Save)."""
        self.style_value = style.normalized()
        if load_widgets:
            self._load_style_widgets(self.style_value)
        self.preview.set_style(self.style_value)
        self.style_previewed.emit(self.style_value)

    # ----------------------------------------------------------- hotkeys
    def _hotkeys_tab(self) -> QWidget:
        w = self.hotkeys_page = QWidget()
        form = QFormLayout(w)
        self.hotkey_edits: dict[str, QKeySequenceEdit] = {}
        self.hotkey_messages: dict[str, QLabel] = {}
        for action, seq in self._loaded_hotkeys.items():
            edit = HotkeyEdit(QKeySequence(seq))
            edit.setAccessibleName(HOTKEY_LABELS[action])
            edit.keySequenceChanged.connect(lambda _s: self._check_hotkeys())
            message = QLabel()
            message.setTextFormat(Qt.TextFormat.PlainText)  # a hand-edited hotkey is shown as written
            message.setWordWrap(True)
            message.setStyleSheet("color: #b00020;")
            message.hide()
            field = QWidget()
            col = QVBoxLayout(field)
            col.setContentsMargins(0, 0, 0, 0)
            col.setSpacing(2)
            col.addWidget(edit)
            col.addWidget(message)
            self.hotkey_edits[action] = edit
            self.hotkey_messages[action] = message
            form.addRow(self._label(HOTKEY_LABELS[action] + ":", edit), field)
        note = QLabel(GLOBAL_HOTKEY_NOTE)
        note.setWordWrap(True)
        form.addRow(note)
        return w

    def hotkeys(self) -> dict[str, str]:
        return {a: e.keySequence().toString(QKeySequence.SequenceFormat.PortableText) for a, e in self.hotkey_edits.items()}

    def hotkey_problems(self) -> dict[str, str]:
        """action -> why its shortcut cannot be saved (captioner.ui.hotkeys)."""
        return hotkey_problems(self.hotkeys())

    def _check_hotkeys(self) -> bool:
        """Show each field's problem beside it; Save is off while any remains."""
        problems = self.hotkey_problems()
        for action, label in self.hotkey_messages.items():
            text = problems.get(action, "")
            label.setText(text)
            label.setVisible(bool(text))
            self.hotkey_edits[action].setAccessibleDescription(text)
        if hasattr(self, "save_button") and shiboken6.isValid(self.save_button):  # not while the dialog is torn down
            self.save_button.setEnabled(not problems and not self._saving)
            self._say("Save is unavailable until the hotkey problem on the Hotkeys tab is fixed." if problems else "")
        return not problems

    # ------------------------------------------------------------- start
    def _start_tab(self) -> QWidget:
        w = QWidget()
        v = QVBoxLayout(w)
        opts = self._loaded_start
        self.start_check = QCheckBox("Start captioning as soon as Captioner opens")
        self.start_check.setChecked(opts.start_on_launch)
        self.show_overlay_check = QCheckBox("Show the overlay when Captioner opens")
        self.show_overlay_check.setChecked(opts.show_overlay)
        v.addWidget(self.start_check)
        v.addWidget(self.show_overlay_check)
        hint = QLabel(
            "Captioner starts with the provider, input and options last used in the control window. "
            "From a terminal: captioner --provider ID [--device NAME] [--endpoint URL] [--start]"
        )
        hint.setWordWrap(True)
        v.addWidget(hint)
        v.addStretch(1)
        return w

    # -------------------------------------------------------------- save
    def _say(self, text: str) -> None:
        self.save_message.setText(text)
        self.save_message.setAccessibleDescription(text)
        self.save_message.setVisible(bool(text))

    def save(self) -> None:
        """Save (button or Enter). Keys typed but not yet stored go to the
        keyring first, in worker threads; the dialog closes only when they
        are stored, so a key is never silently dropped."""
        if self._saving:
            return
        if not self._check_hotkeys():
            self.tabs.setCurrentWidget(self.hotkeys_page)
            return
        typed = [pid for pid, edit in self.key_edits.items() if edit.text().strip()]
        if not typed:
            self._commit()
            return
        self._saving = True
        self._abandoned = False
        self.save_button.setEnabled(False)
        self._say("Storing the key in the OS keyring…")
        if self.spawn(self._store_keys_then_commit(typed)) is None:  # no loop: the app is closing
            self._saving = False
            self._check_hotkeys()
            self._say("Nothing was saved: the keyring cannot be reached while Captioner is closing.")

    async def _store_keys_then_commit(self, typed: list[str]) -> bool:
        failed: list[str] = []
        try:
            for pid in typed:
                try:
                    ok = await self.save_key(pid)
                except Exception as exc:  # noqa: BLE001 - a backend's own error; its text is not shown (could echo input)
                    self._key_state(pid, f"Not saved: the keyring failed ({type(exc).__name__}).")
                    ok = False
                if not ok:
                    failed.append(pid)
        finally:
            self._saving = False
            self._check_hotkeys()
        if self._abandoned:  # cancelled while the keyring worked: keep nothing else
            return False
        if failed:
            names = " and ".join(self.providers[pid].name for pid in failed)
            self.tabs.setCurrentIndex(0)
            self.key_edits[failed[0]].setFocus()
            self._say(
                f"Not saved: the {names} key could not be stored in the keyring (the reason is under the field). "
                "Clear the field to save everything else without it, or Cancel."
            )
            return False
        self._commit()
        return True

    def _commit(self) -> None:
        self._say("")
        # Only what was changed here is written: another Captioner's saves
        # since this dialog opened are kept, not put back to what it read.
        self.settings.set_style(self.style_value, since=self._original_style)
        self.settings.set_hotkeys({a: k for a, k in self.hotkeys().items() if self._loaded_hotkeys.get(a) != k})
        self.settings.set_start_options(
            StartOptions(start_on_launch=self.start_check.isChecked(), show_overlay=self.show_overlay_check.isChecked()),
            since=self._loaded_start,
        )
        self.settings.sync()
        self._original_style = self.style_value
        self.applied.emit()
        self.accept()

    def reject(self) -> None:
        self._abandoned = self._saving
        if self.style_value != self._original_style:
            self.style_value = self._original_style
            self.style_previewed.emit(self._original_style)
        super().reject()
