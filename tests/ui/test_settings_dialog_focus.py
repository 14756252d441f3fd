"""Keyboard focus in the settings dialog is as visible as in the control
window: every control a Tab reaches, on every tab (the tab bar too), shows a
ring that changes its pixels by at least 3:1 (WCAG 1.4.11, 2.4.7, 2.4.11),
whatever colours the colour swatches hold. Measured as the control window's
test measures it (tests/ui/test_control_window_a11y.py)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QTabBar, QWidget

from captioner.ui.settings_dialog import ColorButton, SettingsDialog
from captioner.ui.theme import CONTROL_STYLE
from tests.ui.test_control_window_a11y import show_active, strong_changes, tab_to, tabbable


@pytest.fixture
def dialog(qtbot, qapp, settings):  # noqa: ANN001, ANN201
    quits = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    d = SettingsDialog(settings)
    d.setStyleSheet(CONTROL_STYLE)  # as captioner.app opens it
    qtbot.addWidget(d)
    show_active(qtbot, d)
    yield d
    d.hide()
    qapp.setQuitOnLastWindowClosed(quits)


def ring_area(target: QWidget) -> QRect:
    """Where the focus shows, in the target's coordinates: a tab bar's is its current tab."""
    if isinstance(target, QTabBar):
        return target.tabRect(target.currentIndex())
    return target.rect()


def focus_change(d: QWidget, target: QWidget) -> tuple[int, int]:
    """(pixels that change by >= 3:1 when `target` takes the focus from the
    keyboard, the perimeter of where its focus shows). A 2 px ring changes
    about twice the perimeter."""
    tab_to(d, target)
    target.clearFocus()
    QApplication.processEvents()
    area = ring_area(target)
    rect = QRect(target.mapTo(d, area.topLeft()), area.size())
    before = d.grab(rect).toImage()
    target.setFocus(Qt.FocusReason.TabFocusReason)
    d.setAttribute(Qt.WidgetAttribute.WA_KeyboardFocusChange)  # as Tab leaves it
    QApplication.processEvents()
    after = d.grab(rect).toImage()
    return strong_changes(before, after), 2 * (area.width() + area.height())


def weak_controls(d: SettingsDialog) -> list[str]:
    weak = []
    for target in tabbable(d):
        changed, perimeter = focus_change(d, target)
        if changed < perimeter:
            weak.append(f"{type(target).__name__} {target.accessibleName()!r}: {changed} px >= 3:1, want {perimeter}")
    return weak


@pytest.mark.parametrize("tab", range(4), ids=["keys", "style", "hotkeys", "start"])
def test_every_control_on_every_tab_shows_a_strong_focus_indicator(dialog, tab):  # noqa: ANN001
    dialog.tabs.setCurrentIndex(tab)
    QApplication.processEvents()
    chain = tabbable(dialog)
    assert dialog.tabs.tabBar() in chain  # the tab bar is a stop too
    assert len(chain) >= 4
    assert not weak_controls(dialog), "\n".join(weak_controls(dialog))


@pytest.mark.parametrize("color", ["#0b3d91", "#f6f7f9", "#000000", "#ffffff", "#ffff00"])
def test_colour_swatches_show_focus_whatever_their_colour(dialog, color):  # noqa: ANN001
    """A swatch may hold the ring's own colour or the dialog's background."""
    dialog.tabs.setCurrentIndex(1)
    buttons = dialog.findChildren(ColorButton)
    assert len(buttons) == 5
    weak = []
    for b in buttons:
        b.set_color(color)
        QApplication.processEvents()
        changed, perimeter = focus_change(dialog, b)
        if changed < perimeter:
            weak.append(f"{b.accessibleName()!r} at {color}: {changed} px >= 3:1, want {perimeter}")
    assert not weak, "\n".join(weak)


def test_the_tab_bar_ring_follows_the_current_tab(dialog):  # noqa: ANN001
    bar = dialog.tabs.tabBar()
    bar.setFocus(Qt.FocusReason.TabFocusReason)
    QTest.keyClick(bar, Qt.Key.Key_Right)  # the arrows change the tab; the ring goes with it
    assert dialog.tabs.currentIndex() == 1 and bar.hasFocus()
    changed, perimeter = focus_change(dialog, bar)
    assert changed >= perimeter
