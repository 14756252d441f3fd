"""The control window: choose provider, input and options, start and stop,
watch the live transcript, export it, and reach every overlay action (so the
app is fully usable without a system tray and by keyboard / screen reader).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

import shiboken6
from PySide6.QtCore import QEvent, QMargins, QRect, QRectF, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QDesktopServices,
    QGuiApplication,
    QKeySequence,
    QPainter,
    QPen,
    QShortcut,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QApplication,
    QBoxLayout,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from captioner.ui import accessible
from captioner.ui.tasks import TaskSet
from captioner.settings import Settings
from captioner.stt.events import Final, Gap, Partial
from captioner.stt.local.events import ModelProgress
from captioner.transcript.export import speaker_label
from captioner.transcript.spacing import single_spaced
from captioner.ui.controller import CaptionController
from captioner.ui.live_widgets import LevelMeter, LiveTextLine
from captioner.ui.overlay import CaptionOverlay, error_advice
from captioner.ui.theme import FOCUS_COLOR

log = logging.getLogger(__name__)

EXPORT_FILTERS = {
    "srt": "SubRip subtitles (*.srt)",
    "vtt": "WebVTT subtitles (*.vtt)",
    "txt": "Plain text (*.txt)",
    "json": "Captioner JSON (*.json)",
}

SHORT_LABELS = {"toggle_pin": "pin/unpin", "toggle_overlay": "show/hide overlay", "start_stop": "start/stop"}

STATE_TEXT = {
    "idle": ("Not captioning", "#4b5563"),
    "connecting": ("Connecting…", "#a15c00"),
    "live": ("Live", "#1f7a3f"),
    "reconnecting": ("Reconnecting…", "#a15c00"),
    "draining": ("Finishing the last words…", "#2457a6"),
    "error": ("Error", "#b42318"),
}

WAYLAND_NOTE = (
    "This is a Wayland session: Wayland does not let applications keep a window on top of others "
    "or make it click-through reliably. For a pinned overlay, start Captioner under XWayland: "
    "QT_QPA_PLATFORM=xcb captioner"
)
NO_TRAY_NOTE = (
    "No system tray was found: use this window (or the hotkeys) to start/stop, pin/unpin and "
    "show/hide the overlay. Closing this window quits Captioner."
)


def is_wayland() -> bool:
    return QGuiApplication.platformName().lower().startswith("wayland")


def list_devices() -> list[Any]:
    from captioner.audio.sources import list_input_devices

    return list_input_devices(system=True)


def refresh_devices() -> list[Any]:
    """Re-list after a hot-plug (PortAudio re-scanned while no stream is open)."""
    from captioner.audio.sources import refresh_input_devices

    return refresh_input_devices(system=True)


def _system_help(devices: list[Any]) -> str | None:
    from captioner.audio.sources import system_audio_help

    return system_audio_help(devices)


SYSTEM_HEADER = "Speakers — what you hear"
NO_INPUT_ITEM = "No input device found"
NO_INPUT_HELP = ("No microphone or other audio input was found: connect one (on Linux, check that PulseAudio or "
                 "PipeWire is running), then press Refresh.")
DEVICE_REFRESH_MS = 15_000  # re-list devices this often while idle (hot-plug)
PARTIAL_EVERY_S = 0.2  # the live-words line follows partials this often at most
LAG_CALM_S = 1.0  # "caught up" is said once the lag is this far under the overlay's warning
KEYRING_NOTICE = "Keyring: "  # how the banner's notice about an unreadable keyring begins
EXPORT_FAILED = "Export failed: "
CHOICE_SAVE_MS = 400  # a typed endpoint or option is remembered this long after the last keystroke


class _WrappedLabel(QLabel):
    """A word-wrapped label that asks for the height its text needs at the
    width it has. QLabel's own hint is a narrow, tall block, and a form row
    with room to spare gives it that height: blank lines around the text.
    (Wrapped labels placed straight in a box layout are sized right already.)"""

    def sizeHint(self) -> QSize:  # noqa: N802
        hint = super().sizeHint()
        if self.width() > hint.width():
            hint.setHeight(self.heightForWidth(self.width()))
        return hint

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self.updateGeometry()  # the hint follows the width


class FocusCombo(QComboBox):
    """A combo box in the native look with a 2 px keyboard-focus ring of
    FOCUS_COLOR over its edge. The native ring (Fusion's) is under 3:1, and a
    style-sheet border would replace the whole native combo, arrow included."""

    def paintEvent(self, event: Any) -> None:  # noqa: N802
        super().paintEvent(event)
        if self.hasFocus():
            p = QPainter(self)
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(QPen(QColor(FOCUS_COLOR), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(QRectF(self.rect()).adjusted(1, 1, -1, -1), 3, 3)
            p.end()


class _ColumnScroll(QScrollArea):
    """A column that scrolls vertically rather than squeeze a row, as wide as
    its content plus the scroll bar (nothing is clipped on the right).
    Unrolled, it is as tall as its content and never scrolls itself: the
    page around it scrolls instead (one scroll bar, not two nested)."""

    def __init__(self, inner: QWidget) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidgetResizable(True)
        self.setWidget(inner)
        # The window's own background shows through (setWidget turned it on).
        inner.setAutoFillBackground(False)
        self.viewport().setAutoFillBackground(False)
        # Tab goes to the controls inside (the area scrolls to each one); the
        # column itself would be a stop with no name and no visible focus.
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.unrolled = False

    def set_unrolled(self, on: bool) -> None:
        self.unrolled = on
        policy = Qt.ScrollBarPolicy.ScrollBarAlwaysOff if on else Qt.ScrollBarPolicy.ScrollBarAsNeeded
        self.setVerticalScrollBarPolicy(policy)
        self.updateGeometry()

    def _width(self) -> int:
        # The scroll bar's width counts even when unrolled: a column whose
        # minimum changed with the arrangement could flip it back and forth.
        return self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()

    def content_height(self) -> int:
        inner = self.widget()
        if inner.hasHeightForWidth():
            return max(inner.heightForWidth(self.viewport().width()), inner.minimumSizeHint().height())
        return inner.sizeHint().height()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(self._width(), self.content_height() if self.unrolled else super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(self._width(), self.content_height() if self.unrolled else super().minimumSizeHint().height())

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.unrolled and event.oldSize().width() != event.size().width():
            self.updateGeometry()  # wrapped text needs another height at another width

    def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # new options or notes: the column's size follows
        return super().eventFilter(watched, event)


class _Reflow(QWidget):
    """Two parts side by side where both fit at their minimum widths, else one
    above the other, so a narrow window (a 1024x768 screen, or 200 % scaling)
    cuts nothing off. Its minimum width is the stacked one."""

    def __init__(
        self, first: QWidget, second: QWidget, spacing: int, on_stacked: Callable[[bool], None] | None = None
    ) -> None:
        super().__init__()
        self.parts = (first, second)
        self.on_stacked = on_stacked
        self.box = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.box.setSpacing(spacing)
        self.box.addWidget(first, 0)
        self.box.addWidget(second, 1)

    @property
    def stacked(self) -> bool:
        return self.box.direction() == QBoxLayout.Direction.TopToBottom

    def side_by_side_width(self) -> int:
        return sum(_min_width(p) for p in self.parts) + self.box.spacing()

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        heights = [max(p.minimumSizeHint().height(), p.minimumHeight()) for p in self.parts]
        height = sum(heights) + self.box.spacing() if self.stacked else max(heights)
        return QSize(max(_min_width(p) for p in self.parts), height)

    def sizeHint(self) -> QSize:  # noqa: N802
        hints = [p.sizeHint() for p in self.parts]
        if self.stacked:
            return QSize(max(h.width() for h in hints), sum(h.height() for h in hints) + self.box.spacing())
        return QSize(sum(h.width() for h in hints) + self.box.spacing(), max(h.height() for h in hints))

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.arrange(event.size().width())

    def event(self, event: Any) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:
            # A part changed size (other options): it may no longer fit beside
            # the other, and the page around needs the new height either way.
            self.arrange(self.width())
            self.updateGeometry()
        return super().event(event)

    def arrange(self, width: int) -> None:
        stacked = width < self.side_by_side_width()
        if stacked == self.stacked:
            return
        self.box.setDirection(QBoxLayout.Direction.TopToBottom if stacked else QBoxLayout.Direction.LeftToRight)
        if self.on_stacked is not None:
            self.on_stacked(stacked)
        self.updateGeometry()  # the minimum height changed
        self.box.activate()


def _min_width(w: QWidget) -> int:
    return max(w.minimumSizeHint().width(), w.minimumWidth())


class ControlWindow(QMainWindow):
    settings_requested = Signal()
    quit_requested = Signal()

    def __init__(
        self,
        settings: Settings,
        controller: CaptionController,
        overlay: CaptionOverlay,
        tray_available: bool = False,
        device_lister: Callable[[], list[Any]] = list_devices,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.controller = controller
        self.overlay = overlay
        self.tray_available = tray_available
        self.device_lister = device_lister
        #: Re-lists after a hot-plug; a custom lister (tests) is used for both.
        self.device_refresher = refresh_devices if device_lister is list_devices else device_lister
        self.devices: list[Any] = []
        self.history: Any = None
        self._device_lock = asyncio.Lock()  # listing, the input test and start never overlap
        self._listing = False
        self.ask_save_path: Callable[[str], str | None] = self._ask_save_path
        self.open_url: Callable[[QUrl], Any] = QDesktopServices.openUrl
        self.tasks = TaskSet(self.show_notice)
        self._option_widgets: dict[str, QWidget] = {}
        self._last_speaker: str | None = None
        self._trailing_gaps: list[float] = []  # starts of the gap lines at the end of the transcript view
        self._shortcuts: list[QShortcut] = []
        self._hotkeys: dict[str, str] = {}
        self._shortcut_owner: QWidget | None = None
        self._notice: str | None = None  # the passing notice the banner shows, if any
        self._shown_provider = ""  # whose endpoint and options the fields hold
        self._filling_choices = False  # the fields are being filled from the settings: nothing to remember
        # Typed endpoints and options are remembered once typing pauses (QSettings
        # writes its file itself, once per burst of changes).
        self._choice_timer = QTimer(self)
        self._choice_timer.setSingleShot(True)
        self._choice_timer.setInterval(CHOICE_SAVE_MS)
        self._choice_timer.timeout.connect(self._remember_provider_choices)
        # Re-chosen after any window of the app shows, hides or takes the focus.
        self._owner_timer = QTimer(self)
        self._owner_timer.setSingleShot(True)
        self._owner_timer.setInterval(0)
        self._owner_timer.timeout.connect(self._attach_hotkeys)
        self.setWindowTitle("Captioner")
        self.setAccessibleName("Captioner control window")
        self._build()
        self._wire()
        self.apply_hotkeys(settings.hotkeys())
        self.overlay.shown_changed.connect(self._windows_changed)
        app = QGuiApplication.instance()
        if app is not None:
            app.focusWindowChanged.connect(self._windows_changed)
        self._shown_second = 0
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._tick)
        self._device_timer = QTimer(self)
        self._device_timer.setInterval(DEVICE_REFRESH_MS)
        self._device_timer.timeout.connect(self._auto_refresh_devices)
        self._device_timer.start()
        self._refresh_notes()

    # ------------------------------------------------------------ layout
    def _build(self) -> None:
        from captioner.stt.registry import PROVIDERS

        # The page scrolls as a whole when the window is shorter than what it
        # holds (a 1024x768 screen at 200 %): nothing is squeezed or cut.
        page = QWidget()
        outer = QVBoxLayout(page)
        self.banner = QLabel()
        self.banner.setTextFormat(Qt.TextFormat.PlainText)  # text from providers, devices and files: never markup
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setAccessibleName("Notices")
        self.banner.hide()
        outer.addWidget(self.banner)
        from captioner.ui.history import RecoveryBar

        self.recovery = RecoveryBar(self._active_journal, self)
        outer.addWidget(self.recovery)

        # The controls scroll rather than squeeze: a wrapped help text (the
        # macOS one is five lines) would otherwise be cut off mid-line.
        left_panel = QWidget()
        left = QVBoxLayout(left_panel)
        left.setContentsMargins(0, 0, 0, 0)
        self.controls_column = _ColumnScroll(left_panel)
        source = QGroupBox("Captioning")
        form = QFormLayout(source)
        self.provider_combo = FocusCombo()
        self.provider_combo.setAccessibleName("Speech-to-text provider")
        for p in PROVIDERS.values():
            self.provider_combo.addItem(p.name, p.id)
        index = self.provider_combo.findData(self.settings.provider or _first_run_provider())
        if index < 0:  # a provider this version does not have: as on a first run, not the list's first
            index = self.provider_combo.findData(_first_run_provider())
        self.provider_combo.setCurrentIndex(max(0, index))
        form.addRow("&Provider:", self.provider_combo)
        self.provider_info = QLabel()
        self.provider_info.setAccessibleName("Provider capabilities")
        form.addRow("", self.provider_info)
        self.key_status = QLabel("Key: checking…")
        self.key_status.setTextFormat(Qt.TextFormat.PlainText)  # text from providers, devices and files: never markup
        self.key_status.setAccessibleName("API key status")
        form.addRow("", self.key_status)
        self.model_progress = QProgressBar()  # the offline engine's first-run model download
        self.model_progress.setAccessibleName("Speech model download")
        self.model_progress.setFormat("Downloading the speech model… %p%")
        self.model_progress.hide()
        form.addRow("", self.model_progress)

        device_row = QHBoxLayout()
        self.device_combo = FocusCombo()
        self.device_combo.setAccessibleName("Input device")
        self.device_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.device_combo.setMinimumContentsLength(18)
        self.device_combo.addItem("System default input", "")
        if self.settings.device:
            self.device_combo.addItem(self.settings.device, self.settings.device)
            self.device_combo.setCurrentIndex(1)
        device_row.addWidget(self.device_combo, 1)
        self.refresh_devices_button = QPushButton("Refresh")
        self.refresh_devices_button.setAccessibleName("Refresh the list of input devices")
        device_row.addWidget(self.refresh_devices_button)
        device_label = QLabel("&Input:")
        device_label.setBuddy(self.device_combo)
        form.addRow(device_label, device_row)
        mix_row = QHBoxLayout()
        self.mix_check = QCheckBox("Also caption what I &hear:")
        self.mix_check.setAccessibleName("Also caption what I hear: mix system audio with the input")
        self.mix_check.setChecked(self.settings.mix_enabled)
        self.mix_combo = FocusCombo()
        self.mix_combo.setAccessibleName("System audio to mix with the input")
        self.mix_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mix_combo.setMinimumContentsLength(14)
        if self.settings.mix_device:
            self.mix_combo.addItem(self.settings.mix_device, self.settings.mix_device)
        mix_row.addWidget(self.mix_check)
        mix_row.addWidget(self.mix_combo, 1)
        form.addRow("", mix_row)
        self.system_help = _WrappedLabel()
        self.system_help.setWordWrap(True)
        self.system_help.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.system_help.setStyleSheet("color: #4b5563;")
        self.system_help.setAccessibleName("How to caption system audio")
        self.system_help.hide()
        form.addRow("", self.system_help)
        meter_row = QHBoxLayout()
        self.level_meter = LevelMeter(60)
        self.level_meter.setAccessibleName("Input level")
        meter_row.addWidget(self.level_meter, 1)
        self.test_input_button = QPushButton("Test input")
        self.test_input_button.setCheckable(True)
        self.test_input_button.setAccessibleName("Test input")
        self.test_input_button.setAccessibleDescription("The level meter moves without captioning; nothing is sent.")
        self.test_input_button.setToolTip("Opens the input for up to 30 s so you can see its level; nothing is sent.")
        meter_row.addWidget(self.test_input_button)
        form.addRow("Level:", meter_row)
        self.endpoint_edit = QLineEdit()
        self.endpoint_edit.setAccessibleName("Endpoint URL (leave empty for the provider's default)")
        self.endpoint_edit.setClearButtonEnabled(True)
        form.addRow("&Endpoint:", self.endpoint_edit)
        left.addWidget(source)

        self.options_box = QGroupBox("Language and provider options")
        self.options_form = QFormLayout(self.options_box)
        left.addWidget(self.options_box)

        run_row = QHBoxLayout()
        self.start_button = QPushButton()
        self.start_button.setObjectName("startButton")
        self._stop_pressed = False  # "Stopping…": presses are ignored until the session ended
        self._set_start_button("Start captioning", "false")
        run_row.addWidget(self.start_button)
        self.timer_label = QLabel("00:00:00")
        self.timer_label.setAccessibleName("Session time")
        # A fixed size: its text changes every second, and a label that may
        # change size asks the whole window to lay itself out again.
        self.timer_label.setFixedSize(self.timer_label.sizeHint().grownBy(QMargins(0, 0, 2, 0)))
        run_row.addWidget(self.timer_label)
        run_row.addStretch(1)
        left.addLayout(run_row)
        self.status_label = QLabel()
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)  # text from providers, devices and files: never markup
        self.status_label.setObjectName("status")
        self.status_label.setWordWrap(True)
        self.status_label.setAccessibleName("Captioning status")
        left.addWidget(self.status_label)

        overlay_box = QGroupBox("Overlay")
        ov = QVBoxLayout(overlay_box)
        self.show_overlay_check = QCheckBox("Show the caption overlay")
        self.show_overlay_check.setAccessibleName("Show the caption overlay")
        self.pin_check = QCheckBox("Pin the overlay (click-through, stays on top)")
        self.pin_check.setAccessibleName(self.pin_check.text())
        self.pin_check.setAccessibleDescription("Clicks pass through the overlay to the window below.")
        ov.addWidget(self.show_overlay_check, 0, Qt.AlignmentFlag.AlignLeft)
        ov.addWidget(self.pin_check, 0, Qt.AlignmentFlag.AlignLeft)
        # The overlay never takes focus, so it is moved from here without a mouse.
        place = QHBoxLayout()
        place_label = QLabel("Move to:")
        place.addWidget(place_label)
        self.place_buttons: dict[str, QPushButton] = {}
        for where, text in (("top", "&Top"), ("bottom", "&Bottom")):
            button = QPushButton(text)
            button.setAccessibleName(f"Move the overlay to the {where} of the screen")
            button.clicked.connect(lambda _checked=False, w=where: self.overlay.place(w))
            place.addWidget(button)
            self.place_buttons[where] = button
        place.addStretch(1)
        ov.addLayout(place)
        buttons = QHBoxLayout()
        self.settings_button = QPushButton("Settings…")
        self.settings_button.setAccessibleName("Open settings: API keys, overlay style, hotkeys")
        self.quit_button = QPushButton("Quit")
        self.quit_button.setAccessibleName("Quit Captioner")
        buttons.addWidget(self.settings_button)
        buttons.addStretch(1)
        buttons.addWidget(self.quit_button)
        ov.addLayout(buttons)
        self.hotkey_hint = QLabel()
        self.hotkey_hint.setTextFormat(Qt.TextFormat.PlainText)  # a hand-edited hotkey is shown as written
        self.hotkey_hint.setWordWrap(True)
        self.hotkey_hint.setStyleSheet("color: #4b5563;")
        ov.addWidget(self.hotkey_hint)
        left.addWidget(overlay_box)
        left.addStretch(1)

        right_panel = QWidget()
        right = QVBoxLayout(right_panel)
        right.setContentsMargins(0, 0, 0, 0)
        tbox = QGroupBox("Transcript of this session")
        tl = QVBoxLayout(tbox)
        self.transcript_view = QPlainTextEdit()
        self.transcript_view.setReadOnly(True)
        self.transcript_view.setAccessibleName("Transcript of this session")
        self.transcript_view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.transcript_view.setMinimumSize(300, 120)
        tl.addWidget(self.transcript_view, 1)
        self.partial_label = LiveTextLine(lines=2)  # fixed size: a growing partial never re-lays out the window
        self._pending_partial = ""
        self._partial_shown_at = -1.0
        # Only a fallback for the last partial of a burst: the next partial
        # usually shows the pending one, in a wake-up the app has anyway.
        self._partial_timer = QTimer(self)
        self._partial_timer.setSingleShot(True)
        self._partial_timer.setInterval(round(PARTIAL_EVERY_S * 1000 * 1.25))
        self._partial_timer.timeout.connect(self._show_partial)
        self.partial_label.setAccessibleName("Words being recognized now")
        tl.addWidget(self.partial_label)
        export_part = QWidget()
        export_row = QHBoxLayout(export_part)
        export_row.setContentsMargins(0, 0, 0, 0)
        export_row.addWidget(QLabel("Export:"))
        self.export_buttons: dict[str, QPushButton] = {}
        for fmt in EXPORT_FILTERS:
            b = QPushButton(fmt.upper())
            b.setAccessibleName(f"Export the transcript as {fmt.upper()}")
            b.setEnabled(False)
            b.clicked.connect(lambda _=False, f=fmt: self.spawn(self.export_dialog(f)))
            self.export_buttons[fmt] = b
            export_row.addWidget(b)
        export_row.addStretch(1)
        sessions_part = QWidget()
        sessions_row = QHBoxLayout(sessions_part)
        sessions_row.setContentsMargins(0, 0, 0, 0)
        self.history_button = QPushButton("History…")
        self.history_button.setAccessibleName("Open the history of past sessions")
        sessions_row.addWidget(self.history_button)
        self.open_folder_button = QPushButton("Open saved sessions")
        self.open_folder_button.setAccessibleName("Open saved sessions")
        self.open_folder_button.setAccessibleDescription("Opens the folder of saved sessions.")
        sessions_row.addWidget(self.open_folder_button)
        sessions_row.addStretch(1)
        self.export_reflow = _Reflow(export_part, sessions_part, spacing=6)
        tl.addWidget(self.export_reflow)
        right.addWidget(tbox, 1)
        self.columns = _Reflow(self.controls_column, right_panel, spacing=10, on_stacked=self.controls_column.set_unrolled)
        outer.addWidget(self.columns, 1)
        self.page = _ColumnScroll(page)
        self.setCentralWidget(self.page)
        self.resize(1000, 660)
        self._grown = False  # grown to fit its controls when first shown
        self._app_size: QSize | None = None  # the size the app last gave it: another is the user's
        # Notices, the recovery bar and the system-audio help come after the
        # first show: the window grows for them too (once their layout is done).
        self._grow_timer = QTimer(self)
        self._grow_timer.setSingleShot(True)
        self._grow_timer.setInterval(0)
        self._grow_timer.timeout.connect(self._grow_to_controls)
        self._provider_changed(check_key=False)  # the key is checked after the first paint

    def _wire(self) -> None:
        c = self.controller
        c.caption_event.connect(self._on_caption_event)
        c.state_changed.connect(self._on_state)
        c.level.connect(self._on_level)
        c.lag_changed.connect(self._on_lag)
        c.running_changed.connect(self._on_running)
        c.notice.connect(self.show_notice)
        self.provider_combo.currentIndexChanged.connect(lambda _i: self._provider_chosen())
        self.refresh_devices_button.clicked.connect(lambda: self.spawn(self.load_devices()))
        self.start_button.clicked.connect(self.toggle_start)
        self.show_overlay_check.toggled.connect(self.overlay.set_shown)
        self.pin_check.toggled.connect(self.overlay.set_pinned)
        self.overlay.pinned_changed.connect(self._sync_overlay_checks)
        self.overlay.shown_changed.connect(self._sync_overlay_checks)
        self.settings_button.clicked.connect(self.settings_requested.emit)
        self.quit_button.clicked.connect(self.quit_requested.emit)
        self.open_folder_button.clicked.connect(lambda: self.spawn(self.open_sessions_folder()))
        self.history_button.clicked.connect(lambda: self.spawn(self.open_history()))
        self.recovery.open_requested.connect(lambda path: self.spawn(self.open_history(path)))
        self.device_combo.activated.connect(lambda _i: self._input_chosen())
        self.mix_combo.activated.connect(lambda _i: self._input_chosen())
        self.mix_check.toggled.connect(lambda _on: self._input_chosen(only_if_testing=True))
        # Chosen is remembered, started or not (a restart used to forget what was not started).
        self.device_combo.currentIndexChanged.connect(lambda _i: self._remember_input())
        self.mix_combo.currentIndexChanged.connect(lambda _i: self._remember_input())
        self.mix_check.toggled.connect(lambda _on: self._remember_input())
        self.endpoint_edit.textChanged.connect(lambda _t: self._choice_edited())
        self.endpoint_edit.editingFinished.connect(self.remember_choices)
        self.test_input_button.toggled.connect(self._test_toggled)
        c.monitoring_changed.connect(self._on_monitoring)
        self._sync_overlay_checks()
        self._spoken_status = STATE_TEXT["idle"][0]  # what the window opens with is not announced
        self._on_state("idle", "")

    # ------------------------------------------------------------- tasks
    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task | None:
        """Run a coroutine on the loop; failures are shown, never lost."""
        return self.tasks.spawn(coro)

    async def settle(self) -> None:
        """Await every task this window started (tests and shutdown)."""
        await self.tasks.settle()
        await self.recovery.settle()
        if self.history is not None:
            await self.history.settle()

    # ---------------------------------------------------------- provider
    @property
    def provider_id(self) -> str:
        return str(self.provider_combo.currentData())

    def _provider_chosen(self) -> None:
        """Another provider was chosen: the last one's endpoint and options
        are kept for it, and this one is the provider the app reopens with."""
        self.remember_choices()
        self.settings.provider = self.provider_id
        self._provider_changed()

    def _provider_changed(self, *_: object, check_key: bool = True) -> None:
        from captioner.stt.registry import PROVIDERS

        p = PROVIDERS[self.provider_id]
        caps = [
            "live partials" if p.partials else "finals only (pages)",
            "word times" if p.word_times else "no word times",
            "speaker labels" if p.diarization else "no speaker labels",
        ]
        self.provider_info.setText(" · ".join(caps))
        self.provider_info.setToolTip(f"Languages: {p.languages}\nLimits: {p.limits}\nAuth: {p.auth}")
        self.provider_info.setAccessibleDescription(f"Languages: {p.languages}")
        self.endpoint_edit.setPlaceholderText(p.default_endpoint or "none: runs on this computer")
        self._filling_choices = True
        try:
            self.endpoint_edit.setText(self.settings.endpoint(p.id))
            self._build_options(p)
        finally:
            self._filling_choices = False
        self._shown_provider = p.id
        if self.settings.removed_secrets and hasattr(self, "_base_notes"):
            self._show_notes()  # "the saved endpoint held a key: it was removed"
        self._order_tabs()
        self.controller.provider_selected(p.id)  # the last session's error about another provider goes
        if check_key:
            self.spawn(self.refresh_key_status())

    def _order_tabs(self) -> None:
        """Tab follows the screen: the provider options, built last (again on
        each provider change), sit between Endpoint and Start."""
        chain: list[QWidget] = [
            self.provider_combo, self.device_combo, self.refresh_devices_button, self.mix_check, self.mix_combo,
            self.test_input_button, self.endpoint_edit, *self._option_widgets.values(), self.start_button,
            self.show_overlay_check, self.pin_check, *self.place_buttons.values(), self.settings_button,
            self.quit_button, self.transcript_view, *self.export_buttons.values(), self.history_button,
            self.open_folder_button,
        ]
        for first, second in zip(chain, chain[1:]):
            QWidget.setTabOrder(first, second)

    def _build_options(self, provider: Any) -> None:
        from captioner.stt.options import describe_options

        while self.options_form.rowCount():
            self.options_form.removeRow(0)
        self._option_widgets = {}
        try:
            described = describe_options(provider.options_class)
        except ImportError as exc:
            note = QLabel(f"{provider.name} is not available in this build ({exc.name}).")
            note.setWordWrap(True)
            self.options_form.addRow(note)
            return
        saved = self.settings.options(provider.id)
        described.sort(key=lambda d: d[0] != "language")
        for name, default, help_text, choices in described:
            value = saved.get(name)
            label = name.replace("_", " ").capitalize() + ":"
            if isinstance(default, bool):
                w: QWidget = QCheckBox()
                checked = default if value is None else value.strip().lower() in ("1", "true", "yes", "on")
                w.setChecked(checked)  # type: ignore[attr-defined]
                # Its own size, not the row's: the focus ring hugs the box.
                w.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
                w.toggled.connect(lambda _on: self._choice_edited())  # type: ignore[attr-defined]
            elif choices:
                w = FocusCombo()
                for ch in choices:
                    w.addItem(str(ch), str(ch))  # type: ignore[attr-defined]
                current = str(default) if value is None else value
                w.setCurrentIndex(max(0, w.findData(current)))  # type: ignore[attr-defined]
                w.currentIndexChanged.connect(lambda _i: self._choice_edited())  # type: ignore[attr-defined]
            else:
                w = QLineEdit()
                w.setText(("" if default is None else str(default)) if value is None else value)  # type: ignore[attr-defined]
                w.setPlaceholderText("auto" if default is None else str(default))  # type: ignore[attr-defined]
                w.textChanged.connect(lambda _t: self._choice_edited())  # type: ignore[attr-defined]
                w.editingFinished.connect(self.remember_choices)  # type: ignore[attr-defined]
            w.setToolTip(help_text)
            w.setAccessibleName(f"{label.rstrip(':')}: {help_text}")
            self._option_widgets[name] = w
            self.options_form.addRow(label, w)

    # ------------------------------------------------- remembered choices
    def _choice_edited(self) -> None:
        """An endpoint or option was edited: remembered once typing pauses."""
        if not self._filling_choices:
            self._choice_timer.start()

    def remember_choices(self) -> None:
        """Remember an edit now rather than after the pause (focus moved on,
        another provider was chosen, the window closes)."""
        if self._choice_timer.isActive():
            self._remember_provider_choices()

    def _remember_provider_choices(self) -> None:
        """The shown provider's endpoint and options, as the fields hold them
        (a value with a key or password in it is not remembered: Settings)."""
        self._choice_timer.stop()
        pid = self._shown_provider
        if not pid or self._filling_choices or self.controller.running:
            return
        self.settings.set_endpoint(pid, self.endpoint_edit.text().strip())
        self.settings.set_options(pid, self.option_values())

    def _remember_input(self) -> None:
        """The input (and what is mixed with it) the app reopens with."""
        if self.controller.running:
            return  # start() remembered it (re-listing blocks the combos' signals)
        device, _ = self.chosen_devices()
        self.settings.device = device
        self.settings.mix_enabled = self.mix_check.isChecked()
        if self.mix_combo.currentData():
            self.settings.mix_device = self.mix_combo.currentData()

    def endpoint_for(self, provider_id: str) -> str:
        """The endpoint to use for `provider_id` now (Settings → Test): what
        this window shows for it, not what the last Start saved."""
        if provider_id == self._shown_provider:
            return self.endpoint_edit.text().strip()
        return self.settings.endpoint(provider_id)

    def options_for(self, provider_id: str) -> dict[str, str]:
        """The options to use for `provider_id` now, as endpoint_for."""
        if provider_id == self._shown_provider:
            return self.option_values()
        return self.settings.options(provider_id)

    def option_values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, w in self._option_widgets.items():
            if isinstance(w, QCheckBox):
                out[name] = "true" if w.isChecked() else "false"
            elif isinstance(w, QComboBox):
                out[name] = str(w.currentData())
            elif isinstance(w, QLineEdit):
                out[name] = w.text().strip()
        return out

    async def refresh_key_status(self) -> None:
        """Say where the shown provider's key comes from. The keyring notice
        stays only while a provider that needs a key cannot read it."""
        from captioner import keys
        from captioner.stt.registry import PROVIDERS

        pid = self.provider_id
        if not PROVIDERS[pid].needs_key:
            self._set_key_status("Key: none needed — audio stays on this computer")
            self._withdraw_notice(KEYRING_NOTICE)
            return
        try:
            where = await asyncio.to_thread(_key_where, pid)
        except keys.KeyStoreError as exc:
            if pid != self.provider_id:
                return  # another provider was chosen meanwhile: its own check speaks
            self._set_key_status("Key: the OS keyring is not available", str(exc))
            self.show_notice(f"{KEYRING_NOTICE}{exc}")
            return
        if pid != self.provider_id:
            return
        self._withdraw_notice(KEYRING_NOTICE)  # this provider's key is read without it
        if where == "environment":
            self._set_key_status(f"Key: from the environment ({keys.env_var(pid)})")
        elif where == "keyring":
            self._set_key_status("Key: stored in the OS keyring")
        else:
            self._set_key_status("Key: none yet — add one in Settings → API keys")

    def _set_key_status(self, text: str, why: str = "") -> None:
        self.key_status.setText(text)
        self.key_status.setToolTip(why)

    # ----------------------------------------------------------- devices
    async def load_devices(self, refresh: bool = False) -> None:
        """Fill the device lists off the loop (PortAudio can take a while);
        `refresh` re-scans for devices plugged in since start-up."""
        from captioner.audio.feed import AudioSourceError

        lister = self.device_refresher if refresh else self.device_lister
        self.refresh_devices_button.setEnabled(False)
        self._listing = True
        help_text: str | None = None
        listed = False
        try:
            async with self._device_lock:
                devices, help_text = await asyncio.to_thread(_list_with_help, lister)
            listed = True
        except AudioSourceError as exc:
            self.show_notice(f"Audio input: {exc}")
            devices = []
        finally:
            self._listing = False
            self.refresh_devices_button.setEnabled(not self.controller.running)
        self.devices = devices
        system = [d for d in devices if getattr(d, "is_system", False)]
        inputs = [d for d in devices if not getattr(d, "is_system", False)]
        wanted = self.device_combo.currentData() or self.settings.device
        combo = self.device_combo
        combo.blockSignals(True)
        combo.clear()
        # With nothing at all to capture, "System default input" would promise
        # a device that is not there: say so, and how to get one.
        combo.addItem(NO_INPUT_ITEM if listed and not devices else "System default input", "")
        if listed and not devices:
            help_text = NO_INPUT_HELP + (f"\n{help_text}" if help_text else "")
        for dev in inputs:
            combo.addItem(_device_text(dev), dev.name)
            combo.setItemData(combo.count() - 1, f"{dev.name} ({dev.hostapi})", Qt.ItemDataRole.ToolTipRole)
        if system:
            combo.insertSeparator(combo.count())
            combo.addItem(SYSTEM_HEADER)
            combo.model().item(combo.count() - 1).setEnabled(False)  # a heading, not a choice
            for dev in system:
                combo.addItem(f"    {_device_text(dev)}", dev.name)
                combo.setItemData(combo.count() - 1, f"System audio: {dev.name} ({dev.hostapi})", Qt.ItemDataRole.ToolTipRole)
        if wanted and combo.findData(wanted) < 0:
            combo.addItem(f"{wanted} (not connected)", wanted)
        combo.setCurrentIndex(max(0, combo.findData(wanted or "")))
        combo.blockSignals(False)

        mix_wanted = self.mix_combo.currentData() or self.settings.mix_device
        self.mix_combo.blockSignals(True)
        self.mix_combo.clear()
        for dev in system:
            self.mix_combo.addItem(_device_text(dev), dev.name)
            self.mix_combo.setItemData(self.mix_combo.count() - 1, _device_text(dev), Qt.ItemDataRole.ToolTipRole)
        if mix_wanted and self.mix_combo.findData(mix_wanted) < 0 and system:
            self.mix_combo.addItem(f"{mix_wanted} (not connected)", mix_wanted)
        self.mix_combo.setCurrentIndex(max(0, self.mix_combo.findData(mix_wanted)) if system else -1)
        self.mix_combo.blockSignals(False)
        self.system_help.setText(help_text or "")
        self.system_help.setVisible(bool(help_text))
        self._sync_mix_enabled()
        self.grow_soon()

    def _sync_mix_enabled(self) -> None:
        idle = not self.controller.running
        has_system = self.mix_combo.count() > 0
        self.mix_check.setEnabled(idle and has_system)
        self.mix_combo.setEnabled(idle and has_system)

    def _auto_refresh_devices(self) -> None:
        """Hot-plug: re-list now and then while idle and nothing is open."""
        c = self.controller
        if (
            self.isVisible()
            and not c.running
            and not c.monitoring
            and not self._listing
            and not self.device_combo.view().isVisible()
            and not self.mix_combo.view().isVisible()
        ):
            self.spawn(self.load_devices(refresh=True))

    def chosen_devices(self) -> tuple[str, str | None]:
        """(input device name or "" for the default, system device to mix or None)."""
        device = self.device_combo.currentData() or ""
        mix = self.mix_combo.currentData() if self.mix_check.isChecked() and self.mix_check.isEnabled() else None
        return device, (mix or None)

    # -------------------------------------------------------- input test
    def _input_chosen(self, only_if_testing: bool = False) -> None:
        """A device was picked: show its level at once (the input test)."""
        if self.controller.running or (only_if_testing and not self.controller.monitoring):
            return
        self.spawn(self.test_input())

    def _test_toggled(self, on: bool) -> None:
        if on and not self.controller.monitoring:
            self.spawn(self.test_input())
        elif not on and self.controller.monitoring:
            self.spawn(self.controller.stop_monitor())

    async def test_input(self) -> bool:
        """Open the chosen input for the meter only (closed again on start)."""
        device, mix = self.chosen_devices()
        async with self._device_lock:
            ok = await self.controller.start_monitor(device or None, mix)
        if not ok:
            self._on_monitoring(self.controller.monitoring)
        return ok

    def _on_monitoring(self, on: bool) -> None:
        self.test_input_button.blockSignals(True)
        self.test_input_button.setChecked(on)
        self.test_input_button.setText("Stop test" if on else "Test input")
        self.test_input_button.setAccessibleName(self.test_input_button.text())
        self.test_input_button.blockSignals(False)
        if not on and not self.controller.running:
            self.level_meter.setValue(0)

    # --------------------------------------------------------- start/stop
    def toggle_start(self) -> None:
        if self._stop_pressed:
            return  # "Stopping…" until the provider finished: a second press changes nothing
        if self.controller.running:
            self._stop_pressed = True
            self.controller.stop()
            # Not disabled: a disabled button loses the keyboard focus, and the
            # next Space went to the control after it (it hid the overlay).
            self._set_start_button("Stopping…", "stopping")
        else:
            self.spawn(self.start())

    def _set_start_button(self, text: str, running: str) -> None:
        """Its words, its accessible name (the same words, so a voice-control
        user can say what they see: WCAG 2.5.3) and its look."""
        b = self.start_button
        b.setText(text)
        b.setAccessibleName(text)
        b.setAccessibleDescription(
            "Wait: the provider is finishing the last words." if running == "stopping"
            else "Captions what the chosen input hears, with the chosen provider."
        )
        if b.property("running") != running:
            b.setProperty("running", running)
            b.style().unpolish(b)
            b.style().polish(b)

    async def start(self) -> bool:
        pid = self.provider_id
        options = self.option_values()
        endpoint = self.endpoint_edit.text().strip()
        device, mix = self.chosen_devices()
        self.settings.provider = pid
        self.settings.set_options(pid, options)
        self.settings.set_endpoint(pid, endpoint)
        self.settings.device = device
        self.settings.mix_enabled = self.mix_check.isChecked()
        if self.mix_combo.currentData():
            self.settings.mix_device = self.mix_combo.currentData()
        self.transcript_view.clear()
        self._trailing_gaps = []
        self.partial_label.clear()
        self._last_speaker = None
        self.overlay.clear_captions()
        self._show_notes()  # a notice about the last session (its device, its journal) is not about this one
        async with self._device_lock:  # not while devices are re-scanned
            return await self.controller.start(pid, options, endpoint or None, device or None, mix)

    def _on_running(self, running: bool) -> None:
        self._stop_pressed = False
        self._set_start_button("Stop captioning" if running else "Start captioning", "true" if running else "false")
        for w in (self.provider_combo, self.device_combo, self.endpoint_edit, self.options_box, self.refresh_devices_button, self.test_input_button):
            w.setEnabled(not running)
        self._sync_mix_enabled()
        if running:
            self._timer.start()
            self._tick()
        else:
            self._timer.stop()
            self._tick()
            self.level_meter.setValue(0)
        # Something to export: a caption, not only gaps. A session that is
        # starting has none yet (the transcript here is still the last one's).
        transcript = None if running else self.controller.live_transcript()
        has_text = transcript is not None and any(not s.gap for s in transcript.segments)
        for b in self.export_buttons.values():
            b.setEnabled(has_text)

    def _show_partial(self) -> None:
        self._partial_timer.stop()
        self._partial_shown_at = time.monotonic()
        self.partial_label.setText(self._pending_partial)

    def _tick(self) -> None:
        s = self._shown_second = int(self.controller.elapsed)
        self.timer_label.setText(f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}")

    # ------------------------------------------------------------ events
    def _on_caption_event(self, event: Any) -> None:
        if isinstance(event, ModelProgress):
            self.model_progress.setRange(0, 1000 if event.total else 0)  # 0..0: busy, size unknown
            self.model_progress.setValue(int((event.fraction or 0.0) * 1000))
            self.model_progress.show()
            return
        if isinstance(event, Partial):
            # The overlay shows every partial; this line only needs to keep up
            # with reading: at most one repaint per PARTIAL_EVERY_S.
            self._pending_partial = event.text
            if time.monotonic() - self._partial_shown_at >= PARTIAL_EVERY_S:
                self._show_partial()
            elif not self._partial_timer.isActive():
                self._partial_timer.start()
        elif isinstance(event, Final):
            self._partial_timer.stop()
            self._pending_partial = ""
            self.partial_label.clear()
            text = single_spaced(event.text)
            if text:
                if event.speaker is not None and event.speaker != self._last_speaker:
                    text = f"{speaker_label(event.speaker)}: {text}"
                    self._last_speaker = event.speaker
                self._append_final_text(text, event.start)
                for b in self.export_buttons.values():
                    b.setEnabled(True)
        elif isinstance(event, Gap):
            self.transcript_view.appendPlainText(f"[…] (no captions for {event.end - event.start:.1f} s of audio: {event.reason})")
            self._trailing_gaps.append(event.start)
        self.overlay.on_event(event)

    def _append_final_text(self, text: str, start: float) -> None:
        """Append a final's line, or put it before the gap lines just shown
        that begin after it: an outage is reported when it begins, and the
        words said just before it are finalized later (as the transcript
        model orders them)."""
        gaps = self._trailing_gaps
        later = 0
        while later < len(gaps) and gaps[len(gaps) - 1 - later] > start:
            later += 1
        if not later:
            self.transcript_view.appendPlainText(text)
            gaps.clear()
            return
        doc = self.transcript_view.document()
        cursor = QTextCursor(doc.findBlockByNumber(doc.blockCount() - later))
        cursor.insertText(text + "\n")
        del gaps[: len(gaps) - later]  # the gaps before it are no longer at the end

    def _on_state(self, state: str, detail: str) -> None:
        if state != "connecting":
            self.model_progress.hide()
        text, color = STATE_TEXT.get(state, (state.capitalize(), "#4b5563"))
        if state == "error" and detail:
            text = f"Error: {detail}{error_advice(detail)}"  # say where the fix is
        elif state == "reconnecting" and detail:
            text = f"Reconnecting… ({detail})"
        self.status_label.setStyleSheet(f"color: {color};")
        self._set_status(text)
        if text != self._spoken_status:
            # Spoken without moving the focus (WCAG 4.1.3); an error at once.
            self._spoken_status = text
            accessible.announce(self.status_label, text, assertive=state == "error")
        if state in ("idle", "error", "connecting", "reconnecting", "draining", "live"):
            self.overlay.set_status(state, detail)
        self._lag_spoken = False

    def _set_status(self, text: str) -> None:
        """The status line, its accessible description saying the same."""
        self.status_label.setText(text)
        self.status_label.setAccessibleDescription(text)

    def _on_lag(self, lag: float) -> None:
        self.overlay.set_lag(lag)
        if self.controller.state != "live":
            return
        behind = lag >= CaptionOverlay.LAG_WARN_S
        text = f"Live — captions are behind by {lag:.0f} s" if behind else "Live"
        if self.status_label.text() != text:
            self._set_status(text)
        # Spoken when it starts and when it is over, not every second; the
        # margin keeps a lag hovering at the threshold from being said again and again.
        if behind and not self._lag_spoken:
            self._lag_spoken = True
            accessible.announce(self.status_label, f"Captions are behind by {lag:.0f} s")
        elif self._lag_spoken and lag < CaptionOverlay.LAG_WARN_S - LAG_CALM_S:
            self._lag_spoken = False
            accessible.announce(self.status_label, "Captions have caught up")

    def _on_level(self, dbfs: float) -> None:
        if self._timer.isActive():
            # Audio is flowing: the clock moves on with it instead of waking the
            # app once more every second (the timer stays as the fallback).
            self._timer.start()
            if int(self.controller.elapsed) != self._shown_second:
                self._tick()
        value = int(max(0.0, min(60.0, dbfs + 60.0)))
        if abs(value - self.level_meter.value()) >= 2 or value == 0:  # a change under 2 dB is not worth a repaint
            self.level_meter.setValue(value)

    # ------------------------------------------------------------ overlay
    def _sync_overlay_checks(self, *_: object) -> None:
        for check, value in ((self.pin_check, self.overlay.pinned), (self.show_overlay_check, self.overlay.isVisible())):
            check.blockSignals(True)
            check.setChecked(value)
            check.blockSignals(False)

    def apply_hotkeys(self, hotkeys: dict[str, str]) -> None:
        """QShortcuts work while a Captioner window is active; Qt has no global hotkeys."""
        from captioner.ui.hotkeys import hotkey_problems

        wanted = {action: seq for action, seq in hotkeys.items() if seq and action in SHORT_LABELS}
        # A settings file from before a check, or edited by hand, is checked as the dialog checks.
        problems = hotkey_problems(wanted)
        self._hotkeys = {action: seq for action, seq in wanted.items() if action not in problems}
        self._shortcut_owner = None  # make them anew
        self._attach_hotkeys()
        hints = [
            f"{QKeySequence(seq).toString(QKeySequence.SequenceFormat.NativeText)} {SHORT_LABELS[action]}"
            for action, seq in self._hotkeys.items()
        ]
        text = "Hotkeys: " + " · ".join(hints) if hints else "No hotkeys are set (Settings → Hotkeys)."
        if problems:
            text += "\nNot used (fix in Settings → Hotkeys): " + " ".join(
                f"{SHORT_LABELS[action]}: {why}" for action, why in problems.items())
        self.hotkey_hint.setText(text)
        self.hotkey_hint.setToolTip(
            "These work while a Captioner window is active. Qt has no system-wide hotkeys: "
            "to unpin from another application, use the tray icon."
        )
        self.hotkey_hint.setAccessibleDescription(self.hotkey_hint.toolTip())

    def _hotkey_owner(self) -> QWidget:
        """A shown window to own the shortcuts. Application-wide shortcuts fire
        from any active window of the app, but only while their owner is
        visible: this window in the tray would silence them all."""
        for window in (self, self.overlay):
            if window.isVisible():
                return window
        active = QApplication.activeWindow()  # Settings or History with both others hidden
        return active if active is not None else self

    def _attach_hotkeys(self) -> None:
        owner = self._hotkey_owner()
        if owner is self._shortcut_owner:
            return
        for sc in self._shortcuts:
            if shiboken6.isValid(sc):  # gone with a closed dialog that owned it
                sc.setEnabled(False)
                sc.deleteLater()
        self._shortcuts = []
        self._shortcut_owner = owner
        actions = {
            "toggle_pin": self.overlay.toggle_pinned,
            "toggle_overlay": self.overlay.toggle_shown,
            "start_stop": self.toggle_start,
        }
        for action, seq in self._hotkeys.items():
            sc = QShortcut(QKeySequence(seq), owner)
            sc.setContext(Qt.ShortcutContext.ApplicationShortcut)
            sc.activated.connect(actions[action])
            self._shortcuts.append(sc)

    def _windows_changed(self, *_: object) -> None:
        self._owner_timer.start()  # once the show, hide or focus change is done

    # ------------------------------------------------------------- notes
    def _refresh_notes(self) -> None:
        notes = []
        if is_wayland():
            notes.append(WAYLAND_NOTE)
        if not self.tray_available:
            notes.append(NO_TRAY_NOTE)
        self._base_notes = notes
        self._show_notes()

    def add_note(self, text: str) -> None:
        """A lasting note in the banner (not replaced by the next notice)."""
        self._base_notes.append(text)
        self._show_notes()

    def _show_notes(self, extra: list[str] | None = None) -> None:
        self._notice = extra[-1] if extra else None
        notes = list(self._base_notes) + list(self.settings.removed_secrets) + (extra or [])
        self.banner.setText("\n\n".join(notes))
        self.banner.setVisible(bool(notes))
        self.grow_soon()

    def show_notice(self, text: str) -> None:
        self._show_notes([text])

    def _withdraw_notice(self, prefix: str) -> None:
        """Take the passing notice away once it no longer holds (it begins
        with `prefix`); any other notice stays."""
        if self._notice is not None and self._notice.startswith(prefix):
            self._show_notes()

    # ------------------------------------------------------------- export
    def _ask_save_path(self, fmt: str) -> str | None:
        name = f"captions.{fmt}"
        path, _ = QFileDialog.getSaveFileName(self, f"Export {fmt.upper()}", name, EXPORT_FILTERS[fmt])
        return path or None

    async def export_dialog(self, fmt: str) -> str | None:
        from captioner.transcript.export import ExportError

        path = self.ask_save_path(fmt)
        if not path:
            return None
        try:
            await self.controller.export(fmt, path)
        except (ExportError, LookupError) as exc:
            self.statusBar().clearMessage()  # "Saved …" was the last export's, not this one's
            self.show_notice(f"{EXPORT_FAILED}{getattr(exc, 'strerror', None) or exc}")
            return None
        self._withdraw_notice(EXPORT_FAILED)  # the last export's failure is not this one's
        self.statusBar().showMessage(f"Saved {path}", 8000)
        return path

    async def open_sessions_folder(self) -> None:
        try:
            from captioner.transcript.journal import sessions_dir
        except ImportError:  # hook: the journal module ships separately
            self.show_notice("Saved sessions are not available in this build.")
            return
        try:
            path = await asyncio.to_thread(sessions_dir)
        except OSError as exc:
            self.show_notice(f"Cannot open the sessions folder: {exc}")
            return
        if not self.open_url(QUrl.fromLocalFile(str(path))):
            self.show_notice(f"Saved sessions are in {path}")

    # ------------------------------------------------------------ history
    def _active_journal(self) -> Any:
        """The running session's journal path (never offered, deleted or renamed)."""
        return getattr(self.controller.journal, "path", None)

    async def open_history(self, select: Any = None) -> Any:
        """Show the History window (one, non-modal) and load it off the loop."""
        from captioner.ui.history import HistoryWindow

        if self.history is None:
            self.history = HistoryWindow(self._active_journal, self)
            self.history.setStyleSheet(self.styleSheet())
            self.history.recovered.connect(self.recovery.forget)
            self.history.deleted.connect(self.recovery.forget)
            self.controller.running_changed.connect(self._reload_history)
        self.history.show()
        self.history.raise_()
        self.history.activateWindow()
        await self.history.load(select=select)
        return self.history

    def _reload_history(self, running: bool) -> None:
        """A session started or ended: the open history shows it at once."""
        if self.history is not None and self.history.isVisible():
            self.history.tasks.spawn(self.history.load())

    async def offer_recovery(self) -> list[Any]:
        """Offer sessions a crash left unfinished (not the one running now)."""
        found = await self.recovery.check()
        self.grow_soon()
        return found

    # -------------------------------------------------------------- close
    def showEvent(self, event: Any) -> None:  # noqa: N802
        super().showEvent(event)
        if not event.spontaneous():
            self.fit_to_screen()
            if not self._grown:
                self._grown = True
                self._grow_timer.start()  # once laid out at its first size
        self._owner_timer.start()

    def grow_soon(self) -> None:
        """Content was added after the first show (a notice, the recovery
        bar, the system-audio help): grow for it once it is laid out."""
        if self._grown and self.isVisible():
            self._grow_timer.start()

    def _grow_to_controls(self) -> None:
        """Tall enough for every control (Settings… and Quit were scrolled
        out of sight on a 1600x900 screen), as far as the screen allows: when
        first shown, and again when content is added, unless the user has
        sized (or maximized) the window since."""
        if not self.isVisible() or self.isMaximized() or self.isFullScreen():
            return
        if self._app_size is not None and self.size() != self._app_size:
            return  # the user's size is kept
        column = self.controls_column
        if not column.unrolled:  # stacked in a narrow window, the page scrolls, as designed
            missing = column.content_height() - column.viewport().height()
            if missing > 0:
                self.resize(self.width(), self.height() + missing)
                self.fit_to_screen()
        self._app_size = self.size()

    def fit_to_screen(self) -> None:
        """Never larger than the screen's free area, and on it (a 1024x768
        screen, 200 % scaling, or a geometry from a bigger monitor)."""
        if self.isMaximized() or self.isFullScreen():
            return
        avail = available_geometry(self)
        if avail is None:
            return
        frame = self.frameGeometry()
        dw, dh = frame.width() - self.width(), frame.height() - self.height()
        if not self.isVisible() or (dw == 0 and dh == 0):  # no frame yet: leave room for one
            dw, dh = 8, self.style().pixelMetric(QStyle.PixelMetric.PM_TitleBarHeight) + 8
        width = max(self.minimumWidth(), min(self.width(), avail.width() - dw))
        height = max(self.minimumHeight(), min(self.height(), avail.height() - dh))
        if (width, height) != (self.width(), self.height()):
            resized_by_app = self._app_size is None or self.size() == self._app_size
            self.resize(width, height)
            if resized_by_app:
                self._app_size = self.size()
        x = max(avail.left(), min(frame.x(), avail.left() + avail.width() - width - dw))
        y = max(avail.top(), min(frame.y(), avail.top() + avail.height() - height - dh))
        # Only a window with a position of its own is moved: a new one is
        # placed by the window manager, on the screen.
        if self.testAttribute(Qt.WidgetAttribute.WA_Moved) and (x, y) != (frame.x(), frame.y()):
            self.move(x, y)

    def hideEvent(self, event: Any) -> None:  # noqa: N802
        self.remember_choices()  # typed just before closing
        if self.controller.monitoring:  # the input test never runs unseen
            self.spawn(self.controller.stop_monitor())
        super().hideEvent(event)
        self._owner_timer.start()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.tray_available:
            event.ignore()
            self.hide()
        else:
            event.ignore()
            self.quit_requested.emit()


def available_geometry(widget: QWidget) -> QRect | None:
    """The free area (without panels) of the screen the widget is on."""
    screen = widget.screen() or QGuiApplication.primaryScreen()
    return None if screen is None else screen.availableGeometry()


def _device_text(dev: Any) -> str:
    name = getattr(dev, "display_name", None) or dev.name
    return f"{name} (default)" if getattr(dev, "is_default", False) else name


def _list_with_help(lister: Callable[[], list[Any]]) -> tuple[list[Any], str | None]:
    """The devices and, when none is system audio, how to get it (blocking)."""
    devices = list(lister())
    try:
        help_text = _system_help(devices)
    except Exception:  # the help is a nicety: never lose the device list over it
        help_text = None
    return devices, help_text


def _key_where(provider: str) -> str | None:
    """Where the key comes from, raising KeyStoreError when the keyring is down."""
    from captioner import keys

    if keys.get_key(provider) is None:
        return None
    return keys.key_source(provider) or "keyring"


def _first_run_provider() -> str:
    """Before any session: a cloud provider whose key is in the environment,
    else the built-in offline engine, so a newcomer sees captions at once.
    (Keyring keys are not read here: that can block the first paint, and a
    key stored through the app comes with a saved provider choice.)"""
    import os

    from captioner.stt.registry import default_provider_id

    return default_provider_id(lambda pid: bool(os.environ.get(f"CAPTIONER_{pid.upper()}_KEY")))
