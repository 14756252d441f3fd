"""The control window for screen-reader and keyboard-only users: focus stays
where the user is when captioning stops, state changes are announced without
moving the focus, accessible names say what is shown (WCAG 2.5.3), the
custom-painted widgets expose their value and words, the window grows for
notices that come after it opened, and the History window closes by keyboard."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QAccessible
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QApplication, QWidget

from captioner.stt.events import Final, Partial
from captioner.transcript.journal import sessions_dir
from captioner.ui import accessible, control_window
from captioner.ui.controller import CaptionController
from captioner.ui.history import HistoryWindow
from captioner.ui.live_widgets import LevelMeter, LiveTextLine
from tests.ui.conftest import show_active

POLITE = QAccessible.AnnouncementPoliteness.Polite
ASSERTIVE = QAccessible.AnnouncementPoliteness.Assertive


@pytest.fixture
def spoken(monkeypatch) -> list[tuple[str, object]]:  # noqa: ANN001
    """Every announcement sent, as (message, politeness)."""
    out: list[tuple[str, object]] = []

    def record(event) -> None:  # noqa: ANN001
        if isinstance(event, accessible.QAccessibleAnnouncementEvent):
            out.append((event.message(), event.politeness()))

    monkeypatch.setattr(accessible, "dispatch", record)
    return out


@pytest.fixture
def capp(spoken, a11y_app):  # noqa: ANN001, ANN201
    """The app, made after `spoken` records announcements."""
    return a11y_app


def name_of(w: QWidget) -> str:
    return QAccessible.queryAccessibleInterface(w).text(QAccessible.Text.Name)


def description_of(w: QWidget) -> str:
    return QAccessible.queryAccessibleInterface(w).text(QAccessible.Text.Description)


def words(text: str) -> str:
    """Visible text as a voice-control user would say it: no mnemonic, ellipsis or punctuation."""
    text = re.sub(r"&(?!&)|…|\.\.\.|[:()]", " ", text)
    return re.sub(r"\s+", " ", text).strip().lower()


class Running:
    """The controller said to be running (no session), Stop recorded."""

    def __init__(self, monkeypatch, controller: CaptionController) -> None:  # noqa: ANN001
        self.on = True
        self.stops = 0
        monkeypatch.setattr(CaptionController, "running", property(lambda _c: self.on))
        monkeypatch.setattr(controller, "stop", self.stop)

    def stop(self) -> None:
        self.stops += 1


# ---------------------------------------------------------------- focus
def test_stopping_from_the_keyboard_keeps_the_focus_on_the_button(qtbot, capp, monkeypatch):  # noqa: ANN001
    """The button was disabled while "Stopping…": the focus jumped to "Show
    the caption overlay" and the next Space hid the overlay (WCAG 2.4.3)."""
    w, c = capp.window, capp.controller
    capp.overlay.set_shown(True)
    show_active(qtbot, w)
    running = Running(monkeypatch, c)
    c.running_changed.emit(True)
    w.start_button.setFocus(Qt.FocusReason.TabFocusReason)
    assert w.start_button.text() == "Stop captioning"

    QTest.keyClick(w.start_button, Qt.Key.Key_Space)  # Stop
    QApplication.processEvents()
    assert running.stops == 1
    assert w.start_button.text() == "Stopping…"
    assert w.start_button.hasFocus(), QApplication.focusWidget()

    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Space)  # impatient: pressed again while stopping
    QApplication.processEvents()
    assert running.stops == 1  # ignored, not a second stop nor a start
    assert capp.overlay.isVisible() and w.show_overlay_check.isChecked()

    running.on = False
    c.running_changed.emit(False)  # the provider finished
    assert w.start_button.hasFocus() and w.start_button.isEnabled()
    assert w.start_button.text() == "Start captioning"


# --------------------------------------------------------- announcements
def test_state_changes_are_announced_errors_assertively(capp, spoken):  # noqa: ANN001
    w = capp.window
    assert spoken == []  # the window opening says nothing
    for state, detail in (("connecting", ""), ("live", ""), ("reconnecting", "network down"), ("live", ""),
                          ("draining", ""), ("idle", ""), ("idle", ""), ("error", "KEY_REJECTED: bad key")):
        w._on_state(state, detail)
    assert spoken == [
        ("Connecting…", POLITE),
        ("Live", POLITE),
        ("Reconnecting… (network down)", POLITE),
        ("Live", POLITE),
        ("Finishing the last words…", POLITE),
        ("Not captioning", POLITE),  # once, though the state came twice
        ("Error: KEY_REJECTED: bad key — replace the key in Settings → API keys", ASSERTIVE),
    ]
    assert description_of(w.status_label) == spoken[-1][0]


def test_captions_are_not_announced(capp, spoken):  # noqa: ANN001
    """The transcript view already reports its new text; the words being
    recognized would be a flood."""
    w = capp.window
    w._on_state("live", "")
    spoken.clear()
    for i in range(5):
        w._on_caption_event(Partial(text=f"hello {i}", start=0.0, end=1.0))
    w._on_caption_event(Final(text="hello there", start=0.0, end=1.0))
    assert spoken == []


def test_lag_is_announced_when_it_starts_and_ends_not_every_second(capp, spoken, monkeypatch):  # noqa: ANN001
    w, c = capp.window, capp.controller
    w._on_state("live", "")
    monkeypatch.setattr(c, "state", "live")
    spoken.clear()
    for lag in (0.5, 3.0, 4.0, 6.0, 1.5, 1.8, 2.5, 0.4, 0.2, 3.2):
        w._on_lag(lag)
    # 1.5 / 1.8 / 2.5 hover at the threshold: said neither caught up nor behind again.
    assert [m for m, _ in spoken] == ["Captions are behind by 3 s", "Captions have caught up", "Captions are behind by 3 s"]
    assert all(p == POLITE for _, p in spoken)


def test_the_status_accessible_description_follows_the_lag(capp, monkeypatch):  # noqa: ANN001
    """It said "Live" while the label showed "Live — captions are behind by 6 s"."""
    w, c = capp.window, capp.controller
    w._on_state("live", "")
    monkeypatch.setattr(c, "state", "live")
    w._on_lag(6.2)
    assert w.status_label.text() == "Live — captions are behind by 6 s"
    assert description_of(w.status_label) == "Live — captions are behind by 6 s"
    w._on_lag(0.3)
    assert description_of(w.status_label) == w.status_label.text() == "Live"


# ----------------------------------------------------------------- names
def test_start_button_is_named_by_what_it_shows(capp, monkeypatch):  # noqa: ANN001
    w, c = capp.window, capp.controller
    assert name_of(w.start_button) == "Start captioning"
    Running(monkeypatch, c)
    c.running_changed.emit(True)
    assert name_of(w.start_button) == "Stop captioning"
    w.toggle_start()
    assert name_of(w.start_button) == "Stopping…" and "finishing" in description_of(w.start_button)
    c.running_changed.emit(False)
    assert name_of(w.start_button) == "Start captioning"


def test_test_input_button_is_named_by_what_it_shows(capp):  # noqa: ANN001
    w = capp.window
    assert name_of(w.test_input_button) == "Test input"
    w._on_monitoring(True)
    assert name_of(w.test_input_button) == "Stop test"
    w._on_monitoring(False)
    assert name_of(w.test_input_button) == "Test input"


async def test_every_button_name_contains_its_label_the_reported_ones_start_with_it(qtbot, capp):  # noqa: ANN001
    """WCAG 2.5.3 (label in name), in the control window, the recovery bar and History."""
    w = capp.window
    history = await w.open_history()
    w.recovery.show()
    controls = [x for x in (*w.findChildren(QAbstractButton), *history.findChildren(QAbstractButton)) if words(x.text())]
    assert len(controls) > 20
    for x in controls:
        assert words(x.text()) in words(name_of(x)), (x.text(), name_of(x))
    for x in (w.start_button, w.test_input_button, w.open_folder_button, w.recovery.open_button,
              history.refresh_button, w.pin_check):
        assert words(name_of(x)).startswith(words(x.text())), (x.text(), name_of(x))
        assert description_of(x), x.text()  # the longer explanation moved here
    await w.settle()
    await capp.shutdown()


# ---------------------------------------------------- live-painted widgets
@pytest.fixture
def listening(monkeypatch):  # noqa: ANN001, ANN201
    """A screen reader is connected (offscreen, none is)."""
    from captioner.ui import accessible

    monkeypatch.setattr(accessible, "active", lambda: True)


def test_with_no_screen_reader_a_level_change_costs_no_timer_and_no_description(qtbot):  # noqa: ANN001
    """The live app changes the level ten times a second: a timer of its own
    would be a wake-up it pays for all day."""
    meter = LevelMeter(60)
    qtbot.addWidget(meter)
    for v in (42, 30, 20):
        meter.setValue(v)
    assert not meter.a11y._timer.isActive() and meter.accessibleDescription() == "silent"


def test_level_meter_exposes_its_level_at_most_twice_a_second(qtbot, listening):  # noqa: ANN001
    meter = LevelMeter(60)
    qtbot.addWidget(meter)
    iface = QAccessible.queryAccessibleInterface(meter)
    assert iface.role() == QAccessible.Role.ProgressBar
    assert iface.text(QAccessible.Text.Name) == "Input level"
    assert description_of(meter) == "silent"
    described: list[str] = []
    original = meter.setAccessibleDescription
    meter.setAccessibleDescription = lambda text: (described.append(text), original(text))  # type: ignore[method-assign]
    meter.setValue(42)
    assert description_of(meter) == "-18 dB"  # the first change at once
    for v in range(10, 40):  # ten updates a second would be ~3 s of this
        meter.setValue(v)
    assert description_of(meter) == "-18 dB"
    qtbot.waitUntil(lambda: description_of(meter) == "-21 dB", timeout=1500)  # the newest, after the interval
    assert described == ["-18 dB", "-21 dB"]
    meter.setValue(0)
    qtbot.waitUntil(lambda: description_of(meter) == "silent", timeout=1500)


def test_live_line_exposes_its_words(qtbot, listening):  # noqa: ANN001
    line = LiveTextLine(lines=2)
    qtbot.addWidget(line)
    line.setAccessibleName("Words being recognized now")
    assert QAccessible.queryAccessibleInterface(line).role() == QAccessible.Role.StaticText
    line.setText("hello")
    assert description_of(line) == "hello"
    t0 = time.monotonic()
    line.setText("hello there")
    line.setText("hello there my friend")
    assert description_of(line) == "hello"  # not once per partial
    qtbot.waitUntil(lambda: description_of(line) == "hello there my friend", timeout=1500)
    assert time.monotonic() - t0 >= 0.3
    line.clear()
    qtbot.waitUntil(lambda: description_of(line) == "", timeout=1500)


# ----------------------------------------------------------------- growth
def screen(monkeypatch, width: int, height: int) -> None:  # noqa: ANN001
    monkeypatch.setattr(control_window, "available_geometry", lambda _w: QRect(0, 0, width, height), raising=False)


def settle() -> None:
    for _ in range(8):
        QApplication.processEvents()


def in_sight(w, control: QWidget) -> bool:  # noqa: ANN001
    viewport = w.controls_column.viewport()
    top = control.mapTo(viewport, QPoint(0, 0)).y()
    return 0 <= top and top + control.height() <= viewport.height()


def unfinished_journal() -> None:
    path = sessions_dir() / "20240101-090000-audiopod.jsonl"
    started = dt.datetime(2024, 1, 1, 9, tzinfo=dt.timezone.utc).isoformat()
    lines = [{"type": "session", "version": 1, "provider": "audiopod", "source": "mic", "started_at": started},
             {"type": "final", "text": "Hello.", "start": 0.5, "end": 1.5}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


async def test_the_window_grows_for_notices_that_come_after_it_opened(qtbot, capp, monkeypatch):  # noqa: ANN001
    """The recovery bar and the no-input help came after the one growth at
    first show: Settings… and Quit were cut off with half the screen free."""
    screen(monkeypatch, 1600, 900)
    w = capp.window
    show_active(qtbot, w)
    qtbot.waitUntil(lambda: w._grown and w.controls_column.verticalScrollBar().maximum() == 0, timeout=2000)
    first = w.height()
    unfinished_journal()
    await w.load_devices()  # no device at all: the help says how to get one
    assert (await w.offer_recovery()) and w.recovery.isVisible() and w.system_help.isVisible()
    qtbot.waitUntil(lambda: w.controls_column.verticalScrollBar().maximum() == 0, timeout=2000)
    settle()
    assert first < w.height() <= 900
    assert in_sight(w, w.settings_button) and in_sight(w, w.quit_button)
    await w.settle()
    await capp.shutdown()


async def test_a_window_the_user_sized_keeps_its_size(qtbot, capp, monkeypatch):  # noqa: ANN001
    screen(monkeypatch, 1600, 900)
    w = capp.window
    show_active(qtbot, w)
    qtbot.waitUntil(lambda: w._grown, timeout=2000)
    settle()  # grown
    w.resize(w.width(), 600)  # the user's choice
    settle()
    unfinished_journal()
    await w.offer_recovery()
    settle()
    assert w.height() == 600
    await w.settle()
    await capp.shutdown()


async def test_growth_stops_at_the_screen(qtbot, capp, monkeypatch):  # noqa: ANN001
    screen(monkeypatch, 1024, 700)
    w = capp.window
    show_active(qtbot, w)
    qtbot.waitUntil(lambda: w._grown, timeout=2000)
    settle()  # grown
    unfinished_journal()
    await w.load_devices()
    await w.offer_recovery()
    settle()
    assert w.frameGeometry().height() <= 700 and w.height() <= 700
    await w.settle()
    await capp.shutdown()


# ---------------------------------------------------------------- history
@pytest.mark.parametrize("key, modifier", [(Qt.Key.Key_Escape, Qt.KeyboardModifier.NoModifier),
                                           (Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)])
async def test_history_closes_with_esc_and_ctrl_w(qtbot, key, modifier):  # noqa: ANN001
    h = HistoryWindow()
    qtbot.addWidget(h)
    show_active(qtbot, h)
    await h.load()
    h.list.setFocus()
    QTest.keyClick(h.list, key, modifier)
    QApplication.processEvents()
    assert not h.isVisible()
