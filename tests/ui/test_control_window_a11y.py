"""The control window for keyboard users and small screens: a visible focus
indicator on every control, a tab order that follows the screen, a window
that fits a 1024x768 screen, and hotkeys that work from any Captioner window."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from captioner.app import CaptionerApp, build_parser
from captioner.ui.control_window import ControlWindow


@pytest.fixture
def capp(qtbot, settings, monkeypatch):  # noqa: ANN001
    for name in ("AUDIOPOD", "UGLABS", "VOICERUN", "SMALLEST", "INWORLD"):
        monkeypatch.delenv(f"CAPTIONER_{name}_KEY", raising=False)
    app = CaptionerApp(settings, build_parser().parse_args([]), tray_available=True, device_lister=lambda: [])
    qtbot.addWidget(app.window)
    qtbot.addWidget(app.overlay)
    yield app
    app.window.hide()
    app.overlay.hide()
    if app.tray is not None:
        app.tray.hide()


def show_active(qtbot, w: QWidget) -> None:  # noqa: ANN001
    w.show()
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=2000)


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
    tab_to(w, target)  # first: a scroll area may scroll to show it
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


def settle() -> None:
    """Let posted layout requests run (each level of nesting takes a round)."""
    for _ in range(8):
        QApplication.processEvents()


def provider(w: ControlWindow, pid: str) -> None:
    w.provider_combo.setCurrentIndex(w.provider_combo.findData(pid))
    settle()


@pytest.mark.parametrize("pid", ["audiopod", "local"])
def test_every_control_shows_a_strong_focus_indicator(qtbot, capp, pid):  # noqa: ANN001
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


def test_start_button_focus_ring_while_running(qtbot, capp):  # noqa: ANN001
    """The red Stop state keeps a focus ring of >= 3:1 too."""
    w = capp.window
    show_active(qtbot, w)
    w.start_button.setProperty("running", "true")
    w.start_button.style().unpolish(w.start_button)
    w.start_button.style().polish(w.start_button)
    changed, perimeter = focus_ring(w, w.start_button)
    assert changed >= perimeter
