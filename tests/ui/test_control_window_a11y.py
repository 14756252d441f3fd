"""The control window for keyboard users and small screens: a visible focus
indicator on every control, a tab order that follows the screen, a window
that fits a 1024x768 screen, and hotkeys that work from any Captioner window."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QImage, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from captioner.ui import control_window
from captioner.ui.control_window import ControlWindow
from tests.ui.conftest import show_active


@pytest.fixture
def capp(a11y_app):  # noqa: ANN001, ANN201
    return a11y_app


def tabbable(w: QWidget) -> list[QWidget]:
    """The widgets Tab reaches, in the order Tab reaches them (one round)."""
    out: list[QWidget] = []
    cur = w.nextInFocusChain()
    while cur is not w:
        if (
            cur.focusPolicy() & Qt.FocusPolicy.TabFocus == Qt.FocusPolicy.TabFocus
            and cur.isVisibleTo(w)
            and cur.isEnabled()
            and cur.focusProxy() is None
        ):
            out.append(cur)
        cur = cur.nextInFocusChain()
    return out


def tab_to(w: QWidget, target: QWidget) -> None:
    """Focus `target` the way a keyboard user does: Tab from the one before it."""
    chain = tabbable(w)
    before = chain[chain.index(target) - 1]
    before.setFocus(Qt.FocusReason.OtherFocusReason)
    QTest.keyClick(before, Qt.Key.Key_Tab)
    assert target.hasFocus(), f"Tab from {before!r} went to {QApplication.focusWidget()!r}, not {target!r}"


def _linear(v: int) -> float:
    c = v / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(rgb: int) -> float:
    c = QColor(rgb)
    return 0.2126 * _linear(c.red()) + 0.7152 * _linear(c.green()) + 0.0722 * _linear(c.blue())


def contrast(a: int, b: int) -> float:
    la, lb = luminance(a), luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def strong_changes(before: QImage, after: QImage) -> int:
    """Pixels whose colour changed by at least 3:1 (WCAG 1.4.11 / 2.4.13)."""
    n = 0
    for x in range(before.width()):
        for y in range(before.height()):
            a, b = before.pixel(x, y), after.pixel(x, y)
            if a != b and contrast(a, b) >= 3.0:
                n += 1
    return n


def focus_ring(w: QWidget, target: QWidget) -> tuple[int, int]:
    """(pixels of `target` that change by >= 3:1 when it takes the keyboard
    focus, its perimeter). A 2 px ring changes about twice the perimeter."""
    tab_to(w, target)  # first: the page may scroll to show it
    target.clearFocus()  # does not scroll back
    QApplication.processEvents()
    rect = QRect(target.mapTo(w, QPoint(0, 0)), target.size())
    before = w.grab(rect).toImage()
    target.setFocus(Qt.FocusReason.TabFocusReason)
    w.setAttribute(Qt.WidgetAttribute.WA_KeyboardFocusChange)  # as Tab leaves it
    QApplication.processEvents()
    assert QRect(target.mapTo(w, QPoint(0, 0)), target.size()) == rect
    after = w.grab(rect).toImage()
    return strong_changes(before, after), 2 * (target.width() + target.height())


def screen(monkeypatch, width: int, height: int) -> None:  # noqa: ANN001
    """Pretend the screen's free area is width x height."""
    monkeypatch.setattr(control_window, "available_geometry", lambda _w: QRect(0, 0, width, height), raising=False)


def settle() -> None:
    """Let posted layout requests run (each level of nesting takes a round)."""
    for _ in range(8):
        QApplication.processEvents()


def provider(w: ControlWindow, pid: str) -> None:
    w.provider_combo.setCurrentIndex(w.provider_combo.findData(pid))
    settle()


@pytest.mark.parametrize(("pid", "screen_size"), [("audiopod", (1280, 1000)), ("local", (1024, 728)), ("uglabs", (512, 364))])
def test_every_control_shows_a_strong_focus_indicator(qtbot, capp, monkeypatch, pid, screen_size):  # noqa: ANN001
    """Side by side and stacked (the page scrolls to each control)."""
    screen(monkeypatch, *screen_size)
    w = capp.window
    provider(w, pid)
    show_active(qtbot, w)
    weak = []
    for target in tabbable(w):
        changed, perimeter = focus_ring(w, target)
        if changed < perimeter:
            label = getattr(target, "text", lambda: "")() if hasattr(target, "text") else ""
            weak.append(f"{type(target).__name__} {target.accessibleName() or label!r}: {changed} px >= 3:1, want {perimeter}")
    assert not weak, "\n".join(weak)
    assert w.columns.stacked == (screen_size[0] < 800)  # both arrangements were checked


def test_start_button_focus_ring_while_running(qtbot, capp):  # noqa: ANN001
    """The red Stop state keeps a focus ring of >= 3:1 too."""
    w = capp.window
    show_active(qtbot, w)
    w.start_button.setProperty("running", "true")
    w.start_button.style().unpolish(w.start_button)
    w.start_button.style().polish(w.start_button)
    changed, perimeter = focus_ring(w, w.start_button)
    assert changed >= perimeter


# ------------------------------------------------------------- tab order
def visual_order(w: ControlWindow) -> list[QWidget]:
    """Top to bottom, left to right, as the window shows them."""
    order = [
        w.provider_combo, w.device_combo, w.refresh_devices_button, w.mix_check, w.mix_combo, w.test_input_button,
        w.endpoint_edit, *w._option_widgets.values(), w.start_button, w.show_overlay_check, w.pin_check, *w.place_buttons.values(),
        w.settings_button, w.quit_button, w.transcript_view, *w.export_buttons.values(), w.history_button,
        w.open_folder_button,
    ]
    return [x for x in order if x.isVisibleTo(w) and x.isEnabled()]


def tab_walk(w: QWidget, start: QWidget, steps: int) -> list[QWidget]:
    start.setFocus(Qt.FocusReason.OtherFocusReason)
    seen = [QApplication.focusWidget()]
    for _ in range(steps):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
    return seen


@pytest.mark.parametrize("pids", [["audiopod"], ["audiopod", "local"], ["local", "uglabs", "smallest"]])
def test_tab_follows_the_screen_also_after_a_provider_change(qtbot, capp, monkeypatch, pids):  # noqa: ANN001
    screen(monkeypatch, 1280, 1000)
    w = capp.window
    w.mix_combo.addItem("Monitor of speakers", "monitor")  # a system device: the mix controls take part
    w._sync_mix_enabled()
    show_active(qtbot, w)
    for pid in pids:  # each change rebuilds the options
        provider(w, pid)
    expected = visual_order(w)
    assert w.mix_check in expected and len(w._option_widgets) >= 2
    names = lambda ws: [x.accessibleName() for x in ws]  # noqa: E731
    assert names(tab_walk(w, w.provider_combo, len(expected) - 1)) == names(expected)
    # and that is the screen's order: down the controls column, left to right in a row
    column = expected[: expected.index(w.transcript_view)]
    centres = [x.mapTo(w, x.rect().center()) for x in column]
    for a, b in zip(centres, centres[1:]):
        assert (b.x() > a.x()) if abs(b.y() - a.y()) <= 12 else (b.y() > a.y())


# ------------------------------------------------------------ small screens
def leaf_controls(w: ControlWindow) -> list[QWidget]:
    from PySide6.QtWidgets import QAbstractButton, QComboBox, QLabel, QLineEdit, QPlainTextEdit, QProgressBar

    kinds = (QAbstractButton, QComboBox, QLabel, QLineEdit, QPlainTextEdit, QProgressBar)
    page = w.page.widget()
    out = []
    for x in page.findChildren(QWidget):
        if not isinstance(x, kinds) or not x.isVisibleTo(w) or x.objectName().startswith("qt_"):
            continue
        parent = x.parentWidget()
        inner = False
        while parent is not None and parent is not page:
            inner = inner or isinstance(parent, (QComboBox, QLineEdit, QAbstractButton))
            parent = parent.parentWidget()
        if not inner:  # not a part of another control (a line edit's clear button)
            out.append(x)
    return out


def layout_problems(w: ControlWindow) -> list[str]:
    """Controls cut off on the right, squeezed under their minimum, or overlapping."""
    page = w.page.widget()
    problems = []
    rects: list[tuple[QWidget, QRect]] = []
    for x in leaf_controls(w):
        name = x.accessibleName() or getattr(x, "text", lambda: "")() or type(x).__name__
        if x.width() < x.minimumSizeHint().width():
            problems.append(f"{name!r} squeezed to {x.width()} px, needs {x.minimumSizeHint().width()}")
        if x.hasHeightForWidth() and x.height() < x.heightForWidth(x.width()):
            problems.append(f"{name!r} is {x.height()} px high, its text needs {x.heightForWidth(x.width())}")
        visible = QRect(QPoint(0, 0), x.size())
        a: QWidget = x
        while a is not page:  # clip by every ancestor, as the screen does
            visible = visible.translated(a.pos()).intersected(QRect(QPoint(0, 0), a.parentWidget().size()))
            a = a.parentWidget()
        full = QRect(x.mapTo(page, QPoint(0, 0)), x.size())
        if visible.width() < full.width() and not visible.isEmpty():
            problems.append(f"{name!r} is cut on the side: {full} shows as {visible}")
        if w.columns.stacked and visible != full:  # one page: only the page itself scrolls
            problems.append(f"{name!r} is clipped: {full} shows as {visible}")
        if full.right() >= w.page.viewport().width():
            problems.append(f"{name!r} ends at x={full.right()}, past the window ({w.page.viewport().width()} px)")
        rects.append((x, visible))
    for i, (a, ra) in enumerate(rects):
        for b, rb in rects[i + 1:]:
            if ra.intersects(rb) and not a.isAncestorOf(b) and not b.isAncestorOf(a):
                problems.append(f"{a.accessibleName() or a.text()!r} overlaps {b.accessibleName() or b.text()!r}")
    return problems


def test_minimum_width_is_small_and_the_window_reflows(qtbot, capp, monkeypatch):  # noqa: ANN001
    screen(monkeypatch, 1600, 1000)
    w = capp.window
    provider(w, "audiopod")
    w.show()
    QApplication.processEvents()
    smallest = w.minimumSizeHint().width()
    assert smallest <= 640
    for width, stacked in ((1000, False), (900, False), (700, True), (smallest, True)):
        w.resize(width, 620)
        settle()
        assert w.width() == width
        assert w.columns.stacked == stacked, width
        assert layout_problems(w) == [], width
        if stacked:  # the transcript comes below the controls, full width
            assert w.transcript_view.mapTo(w, QPoint(0, 0)).y() > w.quit_button.mapTo(w, QPoint(0, 0)).y()
    for pid in ("local", "uglabs", "audiopod"):  # other options, other sizes: still nothing cut
        provider(w, pid)
        settle()
        assert layout_problems(w) == [], pid
    w.resize(900, 620)
    QApplication.processEvents()
    assert not w.columns.stacked and layout_problems(w) == []


@pytest.mark.parametrize("free", [(1024, 728), (512, 364)])  # 1024x768 less a panel, at 100 % and at 200 %
def test_the_window_opens_inside_a_1024x768_screen(qtbot, capp, monkeypatch, free):  # noqa: ANN001
    """Every control is on the screen (the page scrolls), none cut or on another."""
    screen(monkeypatch, *free)
    w = capp.window
    capp.settings.provider = "audiopod"
    provider(w, "audiopod")
    w.resize(1400, 900)  # a size from a bigger monitor
    w.show()
    settle()
    assert QRect(0, 0, *free).contains(w.frameGeometry())
    assert layout_problems(w) == []
    for control in (w.start_button, w.pin_check, w.quit_button, w.transcript_view, w.history_button):
        w.page.ensureWidgetVisible(control)  # what Tab does
        QApplication.processEvents()
        shown = QRect(control.mapTo(w, QPoint(0, 0)), control.size())
        assert w.rect().contains(shown.topLeft()) and shown.right() < w.width(), control.accessibleName()
    w.hide()
    w.move(3000, 2000)  # off every screen (a monitor unplugged while in the tray)
    w.show()
    QApplication.processEvents()
    assert QRect(0, 0, *free).contains(w.frameGeometry())


# ---------------------------------------------------------------- hotkeys
def press_on(widget: QWidget, seq: str) -> None:
    QTest.keySequence(widget, QKeySequence(seq))
    QApplication.processEvents()


def test_hotkeys_work_with_this_window_in_the_tray(qtbot, capp):  # noqa: ANN001
    """Closed to the tray, the overlay on screen, Settings (opened from the
    overlay's menu) active: the hotkeys still act. (The overlay itself never
    takes the keyboard: it is a window that does not accept focus.)"""
    w, ov = capp.window, capp.overlay
    started = []
    w.toggle_start = lambda: started.append(1)  # type: ignore[method-assign]
    capp.show()
    ov.set_pinned(False)
    ov.show()
    w.close()  # to the tray
    assert not w.isVisible() and ov.isVisible()
    ov.settings_requested.emit()
    d = capp.dialog
    show_active(qtbot, d)
    QApplication.processEvents()
    press_on(d, "Ctrl+Shift+L")
    assert ov.pinned
    press_on(d, "Ctrl+Shift+L")
    assert not ov.pinned
    press_on(d, "Ctrl+Shift+R")
    assert started == [1]
    d.reject()


def test_hotkeys_work_from_settings_with_every_other_window_hidden(qtbot, capp):  # noqa: ANN001
    w, ov = capp.window, capp.overlay
    capp.show()
    ov.hide()
    capp.open_settings()
    d = capp.dialog
    w.hide()
    for shown in (True, False, True):  # show the overlay again from Settings, hide it, show it
        show_active(qtbot, d)  # (the offscreen platform activates a shown overlay; a desktop does not)
        QApplication.processEvents()
        press_on(d, "Ctrl+Shift+O")
        assert ov.isVisible() == shown
    d.reject()


def test_one_shortcut_per_hotkey_with_both_windows_shown(qtbot, capp):  # noqa: ANN001
    """Two live shortcuts for one key would be ambiguous: neither fires."""
    w, ov = capp.window, capp.overlay
    capp.show()
    ov.set_pinned(False)
    ov.show()
    show_active(qtbot, w)
    QApplication.processEvents()
    press_on(w, "Ctrl+Shift+L")
    assert ov.pinned
    press_on(w, "Ctrl+Shift+L")
    assert not ov.pinned


def test_hotkeys_from_an_older_or_hand_edited_file_are_checked_like_the_dialogs(qtbot, capp):  # noqa: ANN001
    """`toggle_pin=A` in the INI pinned the overlay when "a" was typed in the
    provider list; a duplicate or an unknown key was installed too."""
    w = capp.window
    w.apply_hotkeys({"toggle_pin": "A", "toggle_overlay": "Ctrl+Shift+O", "start_stop": "notakey"})
    assert [sc.key().toString() for sc in w._shortcuts] == ["Ctrl+Shift+O"]
    hint = w.hotkey_hint.text()
    assert hint.startswith("Hotkeys: Ctrl+Shift+O show/hide overlay\nNot used (fix in Settings → Hotkeys): ")
    assert "pin/unpin: A alone types or moves" in hint and "start/stop: “notakey” is not a key" in hint
    w.apply_hotkeys({"toggle_pin": "Ctrl+Shift+R", "toggle_overlay": "", "start_stop": "Ctrl+Shift+R"})
    assert w._shortcuts == []
    assert "is also the shortcut for" in w.hotkey_hint.text()


def test_no_hotkeys_is_said_in_words(qtbot, capp):  # noqa: ANN001
    w = capp.window
    w.apply_hotkeys({"toggle_pin": "", "toggle_overlay": "", "start_stop": ""})
    assert w.hotkey_hint.text() == "No hotkeys are set (Settings → Hotkeys)."
    assert w._shortcuts == []
    w.apply_hotkeys({"toggle_pin": "Ctrl+Shift+L", "toggle_overlay": "", "start_stop": ""})
    assert w.hotkey_hint.text() == "Hotkeys: Ctrl+Shift+L pin/unpin"


@pytest.mark.parametrize("pid", ["local", "audiopod"])
def test_first_shown_every_control_is_in_sight_on_a_1600x900_screen(qtbot, capp, monkeypatch, pid):  # noqa: ANN001
    """At the old fixed 1000x660, Settings… (where "add a key" points) and the
    overlay's Move buttons were scrolled out of sight on first run."""
    screen(monkeypatch, 1600, 900)
    w = capp.window
    provider(w, pid)
    show_active(qtbot, w)
    qtbot.waitUntil(lambda: w._grown and w.controls_column.verticalScrollBar().maximum() == 0, timeout=2000)
    settle()
    assert w.height() <= 900
    column = w.controls_column
    assert column.verticalScrollBar().maximum() == 0  # nothing to scroll to
    for control in (w.settings_button, *w.place_buttons.values(), w.quit_button):
        top = control.mapTo(column.viewport(), QPoint(0, 0)).y()
        assert 0 <= top and top + control.height() <= column.viewport().height(), control.text()
