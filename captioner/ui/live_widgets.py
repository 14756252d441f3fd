"""Control-window widgets that change several times a second while captioning.

Under the window's style sheet, a QProgressBar or a word-wrapping QLabel is
drawn by QStyleSheetStyle and a QLabel re-lays out the window on every
setText: together ~0.7 % of a core at 10 level and 5 partial updates a second
(bench/RESULTS.md). These two paint themselves with a few QPainter calls,
opaquely (so the styled group box behind them is not repainted too), and
never ask for a new layout, so an update costs only its own small repaint.

For screen readers each has a role and an accessible description (the level
in dB, the words), brought up to date at most twice a second
(accessible.ThrottledDescription): a change costs a clock read, no event.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QAccessible, QColor, QFont, QPainter, QPaintEvent, QPen, QTextLayout, QTextOption
from PySide6.QtWidgets import QSizePolicy, QWidget

from captioner.ui.accessible import ThrottledDescription, set_role


class LevelMeter(QWidget):
    """A horizontal input-level bar with QProgressBar's value API (0..maximum).
    The value is decibels above -maximum dBFS (full is 0 dBFS), as its
    description says to screen readers: "-18 dB", or "silent" at 0."""

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
        set_role(LevelMeter, QAccessible.Role.ProgressBar)
        self.setAccessibleName("Input level")
        self.setAccessibleDescription(self.level_text())
        self.a11y = ThrottledDescription(self, self.level_text)

    def level_text(self) -> str:
        return "silent" if self._value == 0 else f"{self._value - self._maximum} dB"

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
            self.a11y.changed()

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
        self._shown: tuple[tuple[str, int] | None, tuple[str, QTextLayout | None, float]] = (None, ("", None, 0.0))
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        font = QFont(self.font())
        font.setItalic(True)
        self.setFont(font)
        self.setFixedHeight(self.fontMetrics().lineSpacing() * lines + 4)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        set_role(LiveTextLine, QAccessible.Role.StaticText)
        self.a11y = ThrottledDescription(self, self.text)  # the whole text, not the elided one

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:  # noqa: N802
        if text != self._text:
            self._text = text
            self.update()
            self.a11y.changed()

    def clear(self) -> None:
        self.setText("")

    def visible_text(self) -> str:
        """What fits: the whole text, or "…" and its newest words. Laid out
        once per text and width (a paint can come without either changing)."""
        return self._fitted_layout()[0]

    def _fitted_layout(self) -> tuple[str, QTextLayout | None, float]:
        """(what fits, its layout with lines placed, its height); the paint
        draws this layout instead of laying the text out once more."""
        width = max(1, self.width() - 4)
        key = (self._text, width)
        if self._shown[0] != key:
            self._shown = (key, self._fitted(self._text, width))
        return self._shown[1]

    def _fitted(self, text: str, width: int) -> tuple[str, QTextLayout | None, float]:
        layout, fits, height = self._lay_out(text, width)
        if fits:
            return text, layout, height
        words = text.split()
        lo, hi = 0, len(words)  # smallest cut whose tail fits
        best: tuple[QTextLayout, float] | None = None
        while lo < hi:
            mid = (lo + hi) // 2
            layout, fits, height = self._lay_out("… " + " ".join(words[mid:]), width)
            if fits:
                hi, best = mid, (layout, height)
            else:
                lo = mid + 1
        shown = "… " + " ".join(words[lo:])
        if best is None:
            # Not even the last word fits: a run without spaces (Chinese,
            # Japanese, a URL). Its newest characters are shown instead.
            lo, hi = 0, len(text)
            while lo < hi:
                mid = (lo + hi) // 2
                layout, fits, height = self._lay_out("…" + text[mid:].lstrip(), width)
                if fits:
                    hi, best = mid, (layout, height)
                else:
                    lo = mid + 1
            shown = "…" + text[lo:].lstrip()
            if best is None:  # not even one character fits: "…" alone, never tried above
                layout, _, height = self._lay_out(shown, width)
                best = (layout, height)
        return shown, best[0], best[1]

    def _lay_out(self, text: str, width: int) -> tuple[QTextLayout, bool, float]:
        """Wrapped at `width`: (layout, whether it fits in our lines, height)."""
        layout = QTextLayout(text, self.font())
        option = QTextOption()
        option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        layout.setTextOption(option)
        layout.beginLayout()
        lines, y = 0, 0.0
        while True:
            line = layout.createLine()
            if not line.isValid():
                break
            line.setLineWidth(width)
            line.setPosition(QPointF(0, y))
            y += line.height()
            lines += 1
            if lines > self._lines:
                break
        layout.endLayout()
        return layout, lines <= self._lines, y

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), self._background)
        if not self._text:
            p.end()
            return
        _, layout, height = self._fitted_layout()
        if layout is not None:
            p.setPen(self.COLOR)
            rect = QRect(self.rect()).adjusted(2, 2, -2, -2)
            layout.draw(p, QPointF(rect.left(), rect.top() + rect.height() - height))  # bottom-aligned
        p.end()
