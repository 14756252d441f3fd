"""Keyboard-focus rings for controls that a style sheet cannot ring.

The control window's style sheet (theme.CONTROL_STYLE) gives buttons, check
boxes and text fields a 2 px FOCUS_COLOR border when focused. Combo boxes,
spin boxes, sliders and tab bars keep the native look instead: a style-sheet
border would replace the whole native control (a combo's arrow, a spin box's
buttons, a slider's groove), and the native focus hint (Fusion's) is a 1 px
change under 3:1. These subclasses paint the same 2 px ring over their edge
after the native paint, so every control shows focus alike (WCAG 1.4.11,
2.4.7).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFontComboBox,
    QSlider,
    QSpinBox,
    QTabBar,
    QTabWidget,
    QWidget,
)

from captioner.ui.theme import FOCUS_COLOR

RING_WIDTH = 2


def paint_focus_ring(widget: QWidget, rect: QRectF | None = None, color: str = FOCUS_COLOR) -> None:
    """A RING_WIDTH px rounded ring just inside `rect` (the widget's own by default)."""
    area = QRectF(widget.rect()) if rect is None else QRectF(rect)
    half = RING_WIDTH / 2
    p = QPainter(widget)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QPen(QColor(color), RING_WIDTH))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(area.adjusted(half, half, -half, -half), 3, 3)
    p.end()


class _Ringed:
    """Paints the focus ring after the widget's own paint (a mix-in before the Qt class)."""

    def paintEvent(self, event: Any) -> None:  # noqa: N802
        super().paintEvent(event)  # type: ignore[misc]
        if self.hasFocus():  # type: ignore[attr-defined]
            paint_focus_ring(self, self.focus_ring_rect())  # type: ignore[arg-type]

    def focus_ring_rect(self) -> QRectF:
        return QRectF(self.rect())  # type: ignore[attr-defined]


class RingedComboBox(_Ringed, QComboBox):
    pass


class RingedFontComboBox(_Ringed, QFontComboBox):
    pass


class RingedSpinBox(_Ringed, QSpinBox):
    pass


class RingedDoubleSpinBox(_Ringed, QDoubleSpinBox):
    pass


class RingedSlider(_Ringed, QSlider):
    pass


class RingedTabBar(_Ringed, QTabBar):
    """The ring goes round the current tab: the one the arrow keys move from."""

    def focus_ring_rect(self) -> QRectF:
        return QRectF(self.tabRect(self.currentIndex()))


class RingedTabWidget(QTabWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTabBar(RingedTabBar(self))
