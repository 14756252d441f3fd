"""Control-window widgets that change several times a second while captioning.

Under the window's style sheet, a QProgressBar or a word-wrapping QLabel is
drawn by QStyleSheetStyle and a QLabel re-lays out the window on every
setText: together ~0.7 % of a core at 10 level and 5 partial updates a second
(bench/RESULTS.md). These two paint themselves with a few QPainter calls,
opaquely (so the styled group box behind them is not repainted too), and
never ask for a new layout, so an update costs only its own small repaint.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen, QTextLayout, QTextOption
from PySide6.QtWidgets import QSizePolicy, QWidget


class LevelMeter(QWidget):
    """A horizontal input-level bar with QProgressBar's value API (0..maximum)."""

    BORDER = QColor("#b8c0cc")
    TROUGH = QColor("#eceff3")
    FILL = QColor("#2e9d57")

    def __init__(self, maximum: int = 60, background: str = "#ffffff", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._maximum = max(1, maximum)
        self._value = 0
        self._background = QColor(background)  # the colour of what it sits on
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(120, 14)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(40, 14)

    def value(self) -> int:
        return self._value

    def maximum(self) -> int:
        return self._maximum

    def setValue(self, value: int) -> None:  # noqa: N802
        value = max(0, min(self._maximum, int(value)))
        if value != self._value:
            self._value = value
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), self._background)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        outer = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(QPen(self.BORDER, 1))
        p.setBrush(self.TROUGH)
        p.drawRoundedRect(outer, 3, 3)
        if self._value:
            inner = outer.adjusted(1.5, 1.5, -1.5, -1.5)
            inner.setWidth(inner.width() * self._value / self._maximum)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(self.FILL)
            p.drawRoundedRect(inner, 2, 2)
        p.end()


class LiveTextLine(QWidget):
    """The words being recognized now: at most `lines` wrapped lines, the
    newest words kept when the text is longer (the start is elided)."""

    COLOR = QColor("#2457a6")

    def __init__(self, lines: int = 2, background: str = "#ffffff", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._lines = lines
        self._background = QColor(background)  # the colour of what it sits on
        self._shown: tuple[tuple[str, int] | None, str] = (None, "")  # ((text, width), what fits)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        font = QFont(self.font())
        font.setItalic(True)
        self.setFont(font)
        self.setFixedHeight(self.fontMetrics().lineSpacing() * lines + 4)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:  # noqa: N802
        if text != self._text:
            self._text = text
            self.update()

    def clear(self) -> None:
        self.setText("")

    def visible_text(self) -> str:
        """What fits: the whole text, or "…" and its newest words. Laid out
        once per text and width (a paint can come without either changing)."""
        width = max(1, self.width() - 4)
        key = (self._text, width)
        if self._shown[0] != key:
            self._shown = (key, self._fitted(self._text, width))
        return self._shown[1]

    def _fitted(self, text: str, width: int) -> str:
        if self._fits(text, width):
            return text
        words = text.split()
        lo, hi = 0, len(words)  # smallest cut whose tail fits
        while lo < hi:
            mid = (lo + hi) // 2
            if self._fits("… " + " ".join(words[mid:]), width):
                hi = mid
            else:
                lo = mid + 1
        return "… " + " ".join(words[lo:])

    def _fits(self, text: str, width: int) -> bool:
        layout = QTextLayout(text, self.font())
        option = QTextOption()
        option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        layout.setTextOption(option)
        layout.beginLayout()
        lines = 0
        while True:
            line = layout.createLine()
            if not line.isValid():
                break
            line.setLineWidth(width)
            lines += 1
            if lines > self._lines:
                break
        layout.endLayout()
        return lines <= self._lines

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), self._background)
        if not self._text:
            p.end()
            return
        p.setPen(self.COLOR)
        p.setFont(self.font())
        rect = QRect(self.rect()).adjusted(2, 2, -2, -2)
        flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom | Qt.TextFlag.TextWordWrap
        p.drawText(rect, int(flags), self.visible_text())
        p.end()
