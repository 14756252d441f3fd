"""The caption overlay: a frameless, translucent, always-on-top window.

Unpinned it can be dragged and resized; pinned it is click-through
(`Qt.WindowTransparentForInput`): the mouse reaches the window below.

Rendering is O(1) per event: the renderer keeps only the last MAX_LINES
captions (the most any style shows: a preview of fewer lines, put back,
loses none) plus the live partial and shows the newest N; each line is
wrapped once (its rows are cached until the width or the font changes),
and a paint touches at most N lines.
Painting is cheap: text is drawn once per word into cached images and rows
are composed from them (caption_text.RowImages), the panel/status layer is
one cached image, and a changed partial repaints only the rows it changed.
Captions are anchored to the bottom and the window never resizes itself
while captioning, so nothing jumps. With no captions to show, a status too
long for its line (an error, its reason and what to do) wraps down the
caption area rather than being cut short: the overlay may be all a deaf
user keeps on screen.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QMouseEvent,
    QImage,
    QPainter,
    QPaintEvent,
    QPen,
    QRegion,
    QScreen,
)
from PySide6.QtWidgets import QMenu, QWidget

from captioner.stt.events import Final, Gap, Partial, ProviderError, SessionState, StateChanged
from captioner.transcript.spacing import single_spaced
from captioner.ui.caption_text import RowImages, Runs, dpi_of, starts_rtl, wrapped_rows
from captioner.ui.theme import MAX_LINES, OverlayStyle

MARGIN = 14  # px around the text
EDGE = 10  # px from the border that resize instead of move


@dataclass(eq=False)
class CaptionLine:
    """One caption (a final, the partial, or a gap marker) and its wrapped rows."""

    text: str
    kind: str = "final"  # final | partial | gap
    label: str = ""  # "Speaker 2: " when the speaker changed
    rows: list[str] = field(default_factory=list)
    cache_key: tuple[Any, ...] | None = None

    @property
    def full(self) -> str:
        return self.label + self.text


class CaptionRenderer:
    """Holds the visible captions and paints them; shared by the overlay and
    the style preview in the settings dialog."""

    def __init__(self, style: OverlayStyle | None = None) -> None:
        # As many as the largest style shows, whatever this style's lines: a
        # preview of 1 line, cancelled, must show the same 3 captions again.
        self.lines: collections.deque[CaptionLine] = collections.deque(maxlen=MAX_LINES)
        self.partial: CaptionLine | None = None
        self._last_speaker: str | None = None
        self.layouts_made = 0  # how many lines were wrapped (tests check O(1))
        self.version = 0  # bumped by every change to what is shown or how
        self._rects: tuple[tuple, list[tuple[QRect, tuple]]] | None = None
        self.images = RowImages()
        self.set_style(style or OverlayStyle())

    # -------------------------------------------------------------- style
    def set_style(self, style: OverlayStyle) -> None:
        self.style = style.normalized()
        font = QFont(self.style.font_family) if self.style.font_family else QFont()
        if not self.style.font_family:
            font.setStyleHint(QFont.StyleHint.SansSerif)
        font.setPointSize(self.style.font_size)
        font.setBold(self.style.bold)
        self.font = font
        self.metrics = QFontMetrics(font)
        self._line_height = self.metrics.lineSpacing()
        self._font_key = (font.toString(), self.style.font_size, self.style.bold)
        self.version += 1

    @property
    def line_height(self) -> int:
        return self._line_height

    def text_height(self, lines: int | None = None) -> int:
        return (lines or self.style.lines) * self.line_height

    # ------------------------------------------------------------- content
    def _label_for(self, speaker: str | None) -> str:
        if not self.style.speaker_labels or speaker is None or speaker == self._last_speaker:
            return ""
        from captioner.transcript.export import speaker_label  # not needed before the first paint

        return f"{speaker_label(speaker)}: "

    def add_final(self, text: str, speaker: str | None = None) -> bool:
        """Returns whether what is shown changed."""
        had_partial = self.partial is not None
        self.partial = None
        text = single_spaced(text)  # no-break spaces kept
        if not text:
            if had_partial:
                self.version += 1
            return had_partial
        self.lines.append(CaptionLine(text, "final", self._label_for(speaker)))
        if speaker is not None:
            self._last_speaker = speaker
        self.version += 1
        return True

    def set_partial(self, text: str, speaker: str | None = None) -> bool:
        """Returns whether what is shown changed: providers repeat a partial
        often (several a second with no new word), and those cost nothing."""
        text = single_spaced(text)  # no-break spaces kept
        if not text:
            had_partial = self.partial is not None
            self.partial = None
            if had_partial:
                self.version += 1
            return had_partial
        label = self._label_for(speaker)
        old = self.partial
        if old is not None and old.text == text and old.label == label:
            return False
        self.partial = CaptionLine(text, "partial", label)
        self.version += 1
        return True

    def add_gap(self) -> None:
        self.lines.append(CaptionLine("[…]", "gap"))
        self.version += 1

    def clear(self) -> None:
        self.lines.clear()
        self.partial = None
        self._last_speaker = None
        self.version += 1

    @property
    def empty(self) -> bool:
        return not self.lines and self.partial is None

    # -------------------------------------------------------------- layout
    def _wrap(self, line: CaptionLine, width: int) -> list[str]:
        key = (width, self._font_key)
        if line.cache_key == key:
            return line.rows
        self.layouts_made += 1
        rows = [row.rstrip() for _, row in wrapped_rows(line.full, self.font, width)]
        line.rows, line.cache_key = rows or [""], key
        return line.rows

    def visible_rows(self, width: int, max_rows: int) -> list[tuple[CaptionLine, int, str]]:
        """The last `max_rows` wrapped rows, oldest first: (line, row index, text).
        Touches at most `style.lines` captions whatever the session length."""
        out: list[tuple[CaptionLine, int, str]] = []
        sources = ([self.partial] if self.partial is not None else []) + list(reversed(self.lines))
        for line in sources:
            rows = self._wrap(line, width)
            for i in range(len(rows) - 1, -1, -1):
                out.append((line, i, rows[i]))
                if len(out) >= max_rows:
                    return out[::-1]
        return out[::-1]

    # --------------------------------------------------------------- paint
    def paint_background(self, p: QPainter, rect: QRectF, radius: float = 10.0) -> None:
        if self.style.background_opacity <= 0:
            return
        color = QColor(self.style.background_color)
        color.setAlphaF(self.style.background_opacity)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(color)
        p.drawRoundedRect(rect, radius, radius)

    def row_layout(self, rect: QRect) -> list[tuple[int, Runs]]:
        """Bottom-anchored rows inside `rect`: (top y, runs) each, runs as
        (text, colour, x from rect.left()). Nothing is drawn."""
        lh = self.line_height
        max_rows = max(1, min(self.style.lines, rect.height() // lh if lh else 1))
        rows = self.visible_rows(rect.width(), max_rows)
        y = rect.bottom() + 1 - len(rows) * lh
        st = self.style
        out: list[tuple[int, Runs]] = []
        for line, index, text in rows:
            color = st.text_color if line.kind == "final" else st.partial_color
            live = line.kind == "partial" and st.underline_live
            label = line.label if index == 0 and line.label and text.startswith(line.label.rstrip()) else ""
            body = text[len(label):]
            runs: list[tuple[str, str, int, bool]] = []
            # The caption's own direction: not its speaker label's, nor that of the
            # first word of a wrapped row ("John Smith ו-Mary …" in a Hebrew caption).
            rtl = starts_rtl(line.text)
            if rtl and body and not starts_rtl(body):
                body = "\u200f" + body  # RLM: the row is laid out right to left as a whole
            if st.align != "center" and rtl:
                # A right-to-left caption starts at the right, its speaker label first.
                x = rect.width()
                if label:
                    x -= self.metrics.horizontalAdvance(label)
                    runs.append((label, st.speaker_color, max(0, x), False))
                if body:
                    runs.append((body, color, max(0, x - self.metrics.horizontalAdvance(body)), live))
            else:
                x = 0
                if st.align == "center":
                    x += max(0, (rect.width() - self.metrics.horizontalAdvance(text)) // 2)
                if label:
                    runs.append((label, st.speaker_color, x, False))
                    x += self.metrics.horizontalAdvance(label)
                if body:
                    runs.append((body, color, x, live))
            out.append((y, tuple(runs)))
            y += lh
        return out

    def row_rects(self, rect: QRect) -> list[tuple[QRect, tuple]]:
        """Each visible row's painted area (with room for outline and shadow)
        and what it shows: the overlay repaints only rows whose pair changed."""
        key = (self.version, rect.getRect(), self.images.look)
        if self._rects is not None and self._rects[0] == key:
            return self._rects[1]  # laid out when the repaint was asked for; painted now
        pad = self.images.pad if self.images.look is not None else self.line_height
        w = rect.width()
        rows = [(QRect(rect.left() - pad, y - pad, w + 2 * pad, self.line_height + 2 * pad), (runs, w))
                for y, runs in self.row_layout(rect)]
        self._rects = (key, rows)
        return rows

    def prepare(self, device: Any) -> None:
        """Match the image cache to the style and the device (pixel ratio, DPI)."""
        st = self.style
        m = self.metrics
        self.images.configure(self.font, m.lineSpacing(), m.ascent(), m.height(), st.effect, st.effect_color,
                              st.font_size, float(device.devicePixelRatioF()), dpi_of(device))

    def paint_text(self, p: QPainter, rect: QRect) -> list[tuple[QRect, tuple]]:
        """Bottom-anchored rows inside `rect`, copied from cached row images.
        Returns `row_rects(rect)` as painted."""
        self.prepare(p.device())
        images = self.images
        rows = self.row_rects(rect)
        for area, (runs, width) in rows:
            if runs:
                p.drawImage(area.topLeft(), images.row(runs, width))
        images.end_paint()
        return rows


def screen_key(screen: QScreen) -> str:
    """Names a screen the way position memory keys it: connector and size."""
    g = screen.geometry()
    return f"{screen.name() or 'screen'}@{g.width()}x{g.height()}"


def edge_margin(area: QRect) -> int:
    """How far the overlay keeps from the top or bottom of the screen's free
    area when placed there (off a taskbar that hides itself, say)."""
    return int(area.height() * 0.06)


def fit_into(rect: QRect, area: QRect) -> QRect:
    """`rect` shrunk to fit `area` and moved inside it."""
    w, h = min(rect.width(), area.width()), min(rect.height(), area.height())
    x = max(area.left(), min(rect.left(), area.right() + 1 - w))
    y = max(area.top(), min(rect.top(), area.bottom() + 1 - h))
    return QRect(x, y, w, h)


STATUS_COLORS = {
    "live": "#3ddc84",
    "connecting": "#ffb020",
    "reconnecting": "#ffb020",
    "draining": "#7cc4ff",
    "behind": "#ffb020",
    "error": "#ff5a4f",
    "idle": "#9aa4b2",
}


def error_advice(detail: str) -> str:
    """What to do about an error, said after it (the overlay may be all the user looks at)."""
    return " — replace the key in Settings → API keys" if "KEY_REJECTED" in detail else ""


#: The status and hint pills: white text on it is 7.4:1 over a white desktop
#: and more over anything darker (WCAG 1.4.3 asks 4.5:1 of small text).
PILL_COLOR = QColor(0, 0, 0, 170)


class CaptionOverlay(QWidget):
    """The always-on-top caption window."""

    pinned_changed = Signal(bool)
    shown_changed = Signal(bool)
    control_window_requested = Signal()
    settings_requested = Signal()
    first_painted = Signal()  # start-up builds the rest of the app after this

    LAG_WARN_S = 2.0

    def __init__(self, settings: Any = None, style: OverlayStyle | None = None) -> None:
        super().__init__(None)
        self.settings = settings
        self._pinned = False
        self._adjusting = False  # flag changes / restores must not count as user moves
        #: (geometry the user gave, (lines, line height) it was for): style changes size from it
        self._style_anchor: tuple[QRect, tuple[int, int]] | None = None
        self._style_placed = QRect()  # the geometry the last style change set
        self._style_remembered = True  # whether that geometry is to be saved (not for a preview)
        self.setWindowTitle("Captioner overlay")
        self.setAccessibleName("Captions overlay")
        self.setWindowFlags(
            Qt.WindowType.Tool
            | Qt.WindowType.FramelessWindowHint
            | Qt.WindowType.WindowStaysOnTopHint
            | Qt.WindowType.WindowDoesNotAcceptFocus
        )
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setAttribute(Qt.WidgetAttribute.WA_MacAlwaysShowToolWindow)
        self.setMouseTracking(True)
        self.renderer = CaptionRenderer(style or (settings.style() if settings is not None else OverlayStyle()))
        self.status_state = "idle"
        self.status_detail = ""
        self.status_shown: list[str] = []  # the status rows as last painted (wrapped or elided)
        self.lag = 0.0
        self._base: tuple[tuple, QImage] | None = None  # background layer and its key
        self._painted: tuple[tuple | None, list[tuple[QRect, tuple]]] | None = None  # what the last paint showed
        self._status_font = QFont()
        self._status_font.setBold(True)
        self._size_status_font()
        self._drag: tuple[str, QPoint, QRect] | None = None  # (edges or "move", press pos, start geometry)
        self._clear_timer = QTimer(self)
        self._clear_timer.setSingleShot(True)
        self._clear_timer.timeout.connect(self.clear_captions)
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(400)
        self._save_timer.timeout.connect(self.save_geometry)
        self.setMinimumSize(220, self._min_height())
        app = QGuiApplication.instance()
        if app is not None:
            app.screenRemoved.connect(self._on_screens_changed)  # type: ignore[attr-defined]
            app.screenAdded.connect(self._watch_screen)  # type: ignore[attr-defined]
            for screen in QGuiApplication.screens():
                self._watch_screen(screen)
        self.restore_geometry()
        if settings is not None and settings.pinned:
            self.set_pinned(True)

    def _size_status_font(self) -> None:
        """The status line grows with the captions (readable at a glance), within limits."""
        self._status_font.setPointSize(max(10, min(18, round(self.renderer.style.font_size * 0.4))))
        self._status_metrics = QFontMetrics(self._status_font)

    # ---------------------------------------------------------- geometry
    def _status_height(self) -> int:
        return self._status_metrics.height() + 8

    def _min_height(self) -> int:
        return self._status_height() + self.renderer.line_height + 2 * MARGIN

    def height_for_lines(self) -> int:
        return self._status_height() + self.renderer.text_height() + 2 * MARGIN

    def default_rect(self, screen: QScreen) -> QRect:
        area = screen.availableGeometry()
        w = max(360, min(area.width() - 40, int(area.width() * 0.62)))
        h = min(area.height(), self.height_for_lines())
        return QRect(area.left() + (area.width() - w) // 2, area.bottom() + 1 - h - edge_margin(area), w, h)

    def restore_geometry(self) -> None:
        """Place the overlay where it was on the screen it was last on (or the
        primary screen), falling back to bottom-centre."""
        screens = {screen_key(s): s for s in QGuiApplication.screens()}
        primary = QGuiApplication.primaryScreen()
        if primary is None:
            return
        order = []
        if self.settings is not None and self.settings.last_screen in screens:
            order.append(screens[self.settings.last_screen])
        order.append(primary)
        rect, target = None, primary
        for screen in order:
            rel = self.settings.overlay_geometry(screen_key(screen)) if self.settings is not None else None
            if rel is not None:
                rect, target = rel.translated(screen.geometry().topLeft()), screen
                break
        if rect is None:
            rect = self.default_rect(primary)
        self._style_anchor = None
        self._adjusting = True
        try:
            self.setGeometry(fit_into(rect, target.availableGeometry()))
        finally:
            self._adjusting = False

    def save_geometry(self) -> None:
        self._save_timer.stop()
        if self.settings is None:
            return
        screen = self._current_screen()
        if screen is None:
            return
        rel = self.geometry().translated(-screen.geometry().topLeft())
        self.settings.set_overlay_geometry(screen_key(screen), rel)

    def _current_screen(self) -> QScreen | None:
        screen = QGuiApplication.screenAt(self.geometry().center())
        return screen or self.screen() or QGuiApplication.primaryScreen()

    def ensure_on_screen(self) -> None:
        """Bring the overlay back when its screen disappeared or shrank."""
        center = self.geometry().center()
        for screen in QGuiApplication.screens():
            if screen.availableGeometry().contains(center):
                return
        self.restore_geometry()
        screens = QGuiApplication.screens()
        if screens and not any(s.availableGeometry().contains(self.geometry().center()) for s in screens):
            primary = QGuiApplication.primaryScreen()
            self._adjusting = True
            try:
                self.setGeometry(self.default_rect(primary))
            finally:
                self._adjusting = False

    def place(self, where: str) -> None:
        """Move the overlay, at its size, to the top or bottom centre of the
        screen it is on. It never takes keyboard focus (it must not steal it
        from the meeting), so this is how it is moved without dragging."""
        screen = self._current_screen()
        if screen is None:
            return
        area = screen.availableGeometry()
        geo = fit_into(self.geometry(), area)
        margin = edge_margin(area)
        y = area.top() + margin if where == "top" else area.bottom() + 1 - margin - geo.height()
        geo.moveTo(area.left() + (area.width() - geo.width()) // 2, max(area.top(), y))
        self._style_anchor = None  # the user placed it: style changes size from here
        self.setGeometry(geo)
        self._save_timer.start()  # remembered for this screen (a hidden window gets no moveEvent yet)

    def _watch_screen(self, screen: QScreen) -> None:
        screen.availableGeometryChanged.connect(self._on_screens_changed)

    def _on_screens_changed(self, *_: object) -> None:
        QTimer.singleShot(0, self.ensure_on_screen)

    def moveEvent(self, event: Any) -> None:  # noqa: N802
        super().moveEvent(event)
        if not self._adjusting:
            self._geometry_reported()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        if not self._adjusting:
            self._geometry_reported()

    def _geometry_reported(self) -> None:
        # A window manager reports our own setGeometry later, outside
        # _adjusting: only a geometry we did not set is the user's.
        if self._style_anchor is not None and self.geometry() == self._style_placed:
            if self._style_remembered:  # a preview's size is not saved
                self._save_timer.start()
            return
        self._style_anchor = None
        self._save_timer.start()

    # ------------------------------------------------------------- pin
    @property
    def pinned(self) -> bool:
        return self._pinned

    def set_pinned(self, pinned: bool) -> None:
        """Pinned: click-through and still on top. Changing a window flag
        re-creates the native window, so geometry and visibility are kept."""
        pinned = bool(pinned)
        if pinned == self._pinned:
            return
        self._pinned = pinned
        geometry, visible = self.geometry(), self.isVisible()
        self._adjusting = True
        try:
            self.setWindowFlag(Qt.WindowType.WindowTransparentForInput, pinned)
            self.setGeometry(geometry)
            if visible:
                self.show()
        finally:
            self._adjusting = False
        if pinned:
            self._drag = None
            self.unsetCursor()
        if self.settings is not None:
            self.settings.pinned = pinned
        self.pinned_changed.emit(pinned)
        self.update()

    def toggle_pinned(self) -> None:
        self.set_pinned(not self._pinned)

    def set_shown(self, shown: bool) -> None:
        self.setVisible(bool(shown))

    def hide_for_quit(self) -> None:
        """Hide without recording it as the user's choice: the overlay must
        come back on the next start if it was shown when the app quit."""
        self._adjusting = True
        try:
            self.hide()
        finally:
            self._adjusting = False

    def toggle_shown(self) -> None:
        self.set_shown(not self.isVisible())

    def showEvent(self, event: Any) -> None:  # noqa: N802
        super().showEvent(event)
        if not self._adjusting:
            if self.settings is not None:
                self.settings.overlay_visible = True
            self.shown_changed.emit(True)

    def hideEvent(self, event: Any) -> None:  # noqa: N802
        super().hideEvent(event)
        if not self._adjusting:
            if self._save_timer.isActive():
                self.save_geometry()
            if self.settings is not None:
                self.settings.overlay_visible = False
            self.shown_changed.emit(False)

    # ----------------------------------------------------------- content
    def set_style(self, style: OverlayStyle, fit_height: bool = True, remember: bool = True) -> None:
        """Apply a style at once (the settings dialog previews live through
        this, with `remember` off: the size a preview gives is not saved)."""
        if not remember and self._save_timer.isActive():
            self.save_geometry()  # the user's last move, before the preview changes the size
        old_lines = self.renderer.style.lines
        old_height = self.renderer.line_height
        before = QRect(self.geometry())  # a new minimum size may grow the window at once
        self.renderer.set_style(style)
        self._size_status_font()
        self._adjusting = True  # not the user resizing: keep the style anchor
        try:
            self.setMinimumSize(220, self._min_height())
        finally:
            self._adjusting = False
        if fit_height and (old_lines != self.renderer.style.lines or old_height != self.renderer.line_height):
            self._fit_height_to_style(before, (old_lines, old_height), remember)
        if not self.renderer.style.clear_after:
            self._clear_timer.stop()
        self.update()

    def _fit_height_to_style(self, before: QRect, old_key: tuple[int, int], remember: bool = True) -> None:
        """Grow or shrink to the style's lines, keeping the bottom edge, always
        from the geometry the user last gave: a preview of a huge font may push
        the overlay up against the screen edge, and going back to the old style
        must put it back exactly, not leave it where the clamp moved it."""
        key = (self.renderer.style.lines, self.renderer.line_height)
        if self._style_anchor is None:
            self._style_anchor = (before, old_key)
        anchor, anchor_key = self._style_anchor
        rect = QRect(anchor)
        if key != anchor_key:
            rect.setHeight(self.height_for_lines())
            rect.moveBottom(anchor.bottom())
            screen = self._current_screen()
            if screen is not None:
                rect = fit_into(rect, screen.availableGeometry())
        self._style_placed, self._style_remembered = rect, remember
        self._adjusting = True
        try:
            self.setGeometry(rect)
        finally:
            self._adjusting = False
        if remember:
            self._save_timer.start()

    def on_event(self, event: Any) -> None:
        """Take one caption event: O(1) work, one repaint scheduled."""
        if isinstance(event, Partial):
            self._touch(self.renderer.set_partial(event.text, event.speaker))
        elif isinstance(event, Final):
            self._touch(self.renderer.add_final(event.text, event.speaker))
        elif isinstance(event, Gap):
            self.renderer.add_gap()
            self._touch()
        elif isinstance(event, StateChanged):
            self.set_status(event.state.value, event.detail)
        elif isinstance(event, ProviderError) and not event.retryable:
            self.set_status("failed", str(event))

    def _touch(self, changed: bool = True) -> None:
        """Captions arrived: keep them up (clear-after restarts) and repaint
        the rows that changed, if any."""
        clear_after = self.renderer.style.clear_after
        if clear_after > 0:
            self._clear_timer.start(int(clear_after * 1000))
        if changed:
            self._repaint_captions()

    def clear_captions(self) -> None:
        self.renderer.clear()
        self.update()

    def set_status(self, state: str, detail: str = "") -> None:
        """States: idle, connecting, live, reconnecting, draining, closed, failed/error."""
        if state == SessionState.CLOSED.value:
            state = "idle"
        if state == SessionState.FAILED.value:
            state = "error"
        if state == "error" and not detail and self.status_state == "error":
            detail = self.status_detail
        self.status_state, self.status_detail = state, detail
        if state != "live":
            self.lag = 0.0
        self.update()

    def set_lag(self, seconds: float) -> None:
        if abs(seconds - self.lag) >= 0.5 or (seconds < self.LAG_WARN_S) != (self.lag < self.LAG_WARN_S):
            self.lag = seconds
            self.update()

    def status_text(self) -> tuple[str, str]:
        """(text, colour key) of the status line."""
        s, d = self.status_state, self.status_detail
        if s == "live":
            if self.lag >= self.LAG_WARN_S:
                return f"Live · behind by {self.lag:.0f} s", "behind"
            return "Live", "live"
        if s == "connecting":
            return "Connecting…", "connecting"
        if s == "reconnecting":
            return ("Reconnecting… " + d).strip(), "reconnecting"
        if s == "draining":
            return "Finishing…", "draining"
        if s == "error":
            return (f"Error: {d}{error_advice(d)}" if d else "Error"), "error"
        return ("" if self._pinned else "Not captioning"), "idle"

    # ------------------------------------------------------------- paint
    def _text_rect(self) -> QRect:
        sh = self._status_height()
        return QRect(MARGIN, sh + MARGIN // 2, self.width() - 2 * MARGIN, self.height() - sh - MARGIN - MARGIN // 2)

    def _base_key(self) -> tuple:
        """Everything the background layer (panel, border, grip, status) depends on."""
        status, color_key = self.status_text()
        empty = self.renderer.empty
        show_bg = not empty or not self._pinned or bool(status and color_key != "live")
        # With no captions to show, a status too long for its line takes the caption area
        # (measured only then: while captioning the key costs what it did).
        wrap = empty and bool(status) and self._status_overflows(status, self.width() - 2 * MARGIN)
        st = self.renderer.style
        return (self.width(), self.height(), self.devicePixelRatioF(), self.logicalDpiX(), self.logicalDpiY(),
                self._pinned, show_bg, st.background_color, st.background_opacity, status, color_key,
                self._status_font.pointSize(), wrap)

    def _base_image(self) -> QImage:
        """The background layer, drawn once per change (not per caption)."""
        key = self._base_key()
        if self._base is not None and self._base[0] == key:
            return self._base[1]
        w, h, d, dpi_x, dpi_y, _pinned, show_bg, *_rest = key
        status, color_key = key[9], key[10]
        img = QImage(max(1, math.ceil(w * d)), max(1, math.ceil(h * d)), QImage.Format.Format_ARGB32_Premultiplied)
        img.setDotsPerMeterX(round(dpi_x / 0.0254))
        img.setDotsPerMeterY(round(dpi_y / 0.0254))
        img.setDevicePixelRatio(d)
        img.fill(0)
        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        rect = QRectF(0, 0, w, h).adjusted(0.5, 0.5, -0.5, -0.5)
        if show_bg:
            self.renderer.paint_background(p, rect)
        if not self._pinned:
            self._paint_edge(p, rect)
        self.status_shown = []
        if status:
            rect = QRect(MARGIN, 4, w - 2 * MARGIN, self._status_height() - 4)
            if key[12]:  # down to the caption area's bottom edge
                rect.setBottom(self._text_rect().bottom())
            self._paint_status(p, status, color_key, rect)
        p.end()
        self._base = (key, img)
        return img

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        # The layer replaces the (cleared) window pixels: a copy, not a blend.
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        p.drawImage(QPointF(0, 0), self._base_image())
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
        rows = self.renderer.paint_text(p, self._text_rect())
        p.end()
        first = self._painted is None
        self._painted = (self._base[0] if self._base else None, rows)
        if first:
            self.first_painted.emit()

    @property
    def has_painted(self) -> bool:
        return self._painted is not None

    def _repaint_captions(self) -> None:
        """Schedule a repaint of only the caption rows that changed since the
        last paint (a growing partial is usually one row)."""
        painted = self._painted
        if painted is None or not self.isVisible() or painted[0] != self._base_key():
            self.update()
            return
        self.renderer.prepare(self)
        before = {(r.getRect(), k) for r, k in painted[1]}
        after = {(r.getRect(), k) for r, k in self.renderer.row_rects(self._text_rect())}
        region = QRegion()
        for rect, _ in before ^ after:
            region += QRect(*rect)
        if not region.isEmpty():
            self.update(region)

    #: What the unpinned overlay says about itself, longest first: it only
    #: takes the room the status leaves (the status is what the user needs).
    HINTS = ("drag to move · edges resize · right-click for menu", "right-click for menu", "")

    def _status_overflows(self, text: str, width: int) -> bool:
        """Whether the status pill is wider than a status line `width` px wide."""
        return self._status_text_x() + self._status_metrics.horizontalAdvance(text) + 10 > width

    def status_rows(self, text: str, width: int, height: int) -> list[str]:
        """The status wrapped between words into rows that fit a `width` px
        pill (its dot's room kept), as many as `height` px hold; the last row
        is elided only when even that is not enough."""
        fm = self._status_metrics
        room = max(1, int(width - self._status_text_x() - 10))
        max_rows = max(1, (height - 4) // fm.lineSpacing())
        rows: list[str] = []
        for start, row in wrapped_rows(text, self._status_font, room):
            if len(rows) == max_rows - 1:  # the last row there is room for: the rest, elided if need be
                rest = text.encode("utf-16-le")[2 * start:].decode("utf-16-le", errors="ignore").strip()
                rows.append(fm.elidedText(rest, Qt.TextElideMode.ElideRight, room))
                break
            rows.append(row.strip())
        return rows or [""]

    def status_layout(self, text: str, width: int) -> tuple[str, str]:
        """(status as shown, hint) for a status line `width` px wide: the hint
        (also on a dark pill, so it reads over any background) only if it fits
        beside the whole status; the status is elided only when it alone is
        wider than the overlay (and then only while captions take the room
        below it: `_paint_status` wraps it otherwise)."""
        fm = self._status_metrics
        pill_w = self._status_text_x() + fm.horizontalAdvance(text) + 10
        hint = ""
        if not self._pinned:
            for candidate in self.HINTS:
                if not candidate or pill_w + 24 + fm.horizontalAdvance(candidate) + 20 <= width:
                    hint = candidate
                    break
        if pill_w > width:
            text = fm.elidedText(text, Qt.TextElideMode.ElideRight, max(1, int(width - self._status_text_x() - 10)))
        return text, hint

    def _status_text_x(self) -> float:
        return 8 + self._status_metrics.height() * 0.75  # pad, dot (half the height), gap (a quarter)

    def _paint_status(self, p: QPainter, text: str, key: str, rect: QRect) -> None:
        """The status pill on the status line. Given a `rect` taller than the
        line (no captions to show), a status too long for one line wraps down
        it, on one dark block, instead of being cut short: an error's reason
        and what to do about it are read in full."""
        fm = self._status_metrics
        pill_h = fm.height() + 4
        if rect.height() > pill_h and self._status_overflows(text, rect.width()):
            rows, hint = self.status_rows(text, rect.width(), rect.height()), ""
        else:
            shown, hint = self.status_layout(text, rect.width())
            rows = [shown]
        d = fm.height() * 0.5
        text_x = self._status_text_x()
        step = fm.lineSpacing()
        p.setFont(self._status_font)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(PILL_COLOR)
        pill = QRectF(rect.left(), rect.top(), text_x + max(fm.horizontalAdvance(r) for r in rows) + 10,
                      pill_h + (len(rows) - 1) * step)
        radius = pill_h / 2 if len(rows) == 1 else pill_h / 3
        p.drawRoundedRect(pill, radius, radius)
        p.setBrush(QColor(STATUS_COLORS.get(key, "#9aa4b2")))
        p.drawEllipse(QRectF(pill.left() + 8, pill.top() + pill_h / 2 - d / 2, d, d))
        self.status_shown = rows
        p.setPen(QColor("#ffffff"))
        for i, row in enumerate(rows):
            p.drawText(QPointF(pill.left() + text_x, pill.top() + 2 + fm.ascent() + i * step), row)
        if hint:
            box = QRectF(rect.right() + 1 - (fm.horizontalAdvance(hint) + 20), rect.top(), fm.horizontalAdvance(hint) + 20, pill_h)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(PILL_COLOR)
            p.drawRoundedRect(box, pill_h / 2, pill_h / 2)
            p.setPen(QColor("#ffffff"))
            p.drawText(QPointF(box.left() + 10, box.top() + 2 + fm.ascent()), hint)

    def _paint_edge(self, p: QPainter, rect: QRectF) -> None:
        """The unpinned overlay's dashed edge and resize grip, dark under
        light so they show on a light panel as on a dark one."""
        p.setBrush(Qt.BrushStyle.NoBrush)
        for pen in (QPen(QColor(0, 0, 0, 140), 1), QPen(QColor(255, 255, 255, 190), 1, Qt.PenStyle.DashLine)):
            p.setPen(pen)
            p.drawRoundedRect(rect, 10, 10)
        self._paint_grip(p)

    def _paint_grip(self, p: QPainter) -> None:
        r = self.rect()
        for pen in (QPen(QColor(0, 0, 0, 150), 3.0), QPen(QColor(255, 255, 255, 200), 1.5)):
            p.setPen(pen)  # a dark underlay: the white lines show on a light panel too
            for i in (4, 8, 12):
                p.drawLine(r.right() - i, r.bottom() - 3, r.right() - 3, r.bottom() - i)

    # ------------------------------------------------------------- mouse
    def _edges_at(self, pos: QPoint) -> Qt.Edge:
        edges = Qt.Edge(0)
        r = self.rect()
        if pos.x() <= EDGE:
            edges |= Qt.Edge.LeftEdge
        elif pos.x() >= r.width() - EDGE:
            edges |= Qt.Edge.RightEdge
        if pos.y() <= EDGE:
            edges |= Qt.Edge.TopEdge
        elif pos.y() >= r.height() - EDGE:
            edges |= Qt.Edge.BottomEdge
        return edges

    _CURSORS = {
        (Qt.Edge.LeftEdge).value: Qt.CursorShape.SizeHorCursor,
        (Qt.Edge.RightEdge).value: Qt.CursorShape.SizeHorCursor,
        (Qt.Edge.TopEdge).value: Qt.CursorShape.SizeVerCursor,
        (Qt.Edge.BottomEdge).value: Qt.CursorShape.SizeVerCursor,
        (Qt.Edge.LeftEdge | Qt.Edge.TopEdge).value: Qt.CursorShape.SizeFDiagCursor,
        (Qt.Edge.RightEdge | Qt.Edge.BottomEdge).value: Qt.CursorShape.SizeFDiagCursor,
        (Qt.Edge.RightEdge | Qt.Edge.TopEdge).value: Qt.CursorShape.SizeBDiagCursor,
        (Qt.Edge.LeftEdge | Qt.Edge.BottomEdge).value: Qt.CursorShape.SizeBDiagCursor,
    }

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pinned or event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        pos = event.position().toPoint()
        edges = self._edges_at(pos)
        handle = self.windowHandle()
        # Let the window manager move/resize when it can (required on Wayland).
        if handle is not None and QGuiApplication.platformName() not in ("offscreen", "minimal"):
            started = handle.startSystemResize(edges) if edges.value else handle.startSystemMove()
            if started:
                event.accept()
                return
        self._drag = (str(edges.value) if edges.value else "move", event.globalPosition().toPoint(), QRect(self.geometry()))
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pinned:
            return
        if self._drag is None:
            edges = self._edges_at(event.position().toPoint()).value
            shape = self._CURSORS.get(edges, Qt.CursorShape.SizeAllCursor)
            self.setCursor(shape)
            return
        mode, start, geo = self._drag
        delta = event.globalPosition().toPoint() - start
        if mode == "move":
            self.move(geo.topLeft() + delta)
        else:
            self.setGeometry(self.resized_geometry(geo, Qt.Edge(int(mode)), delta))
        event.accept()

    def resized_geometry(self, geo: QRect, edges: Qt.Edge, delta: QPoint) -> QRect:
        r = QRect(geo)
        minw, minh = self.minimumWidth(), self.minimumHeight()
        if edges & Qt.Edge.LeftEdge:
            r.setLeft(min(r.left() + delta.x(), r.right() - minw))
        if edges & Qt.Edge.RightEdge:
            r.setRight(max(r.right() + delta.x(), r.left() + minw))
        if edges & Qt.Edge.TopEdge:
            r.setTop(min(r.top() + delta.y(), r.bottom() - minh))
        if edges & Qt.Edge.BottomEdge:
            r.setBottom(max(r.bottom() + delta.y(), r.top() + minh))
        return r

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._drag is not None:
            self._drag = None
            self.save_geometry()
        super().mouseReleaseEvent(event)

    def contextMenuEvent(self, event: Any) -> None:  # noqa: N802
        if self._pinned:
            return
        menu = QMenu(self)
        pin = QAction("Pin (click-through)", menu)
        pin.triggered.connect(lambda: self.set_pinned(True))
        menu.addAction(pin)
        for where in ("top", "bottom"):
            move = QAction(f"Move to the {where} of the screen", menu)
            move.triggered.connect(lambda _checked=False, w=where: self.place(w))
            menu.addAction(move)
        clear = QAction("Clear captions", menu)
        clear.triggered.connect(self.clear_captions)
        menu.addAction(clear)
        style = QAction("Style…", menu)
        style.triggered.connect(self.settings_requested.emit)
        menu.addAction(style)
        control = QAction("Control window", menu)
        control.triggered.connect(self.control_window_requested.emit)
        menu.addAction(control)
        hide = QAction("Hide overlay", menu)
        hide.triggered.connect(self.hide)
        menu.addAction(hide)
        menu.exec(event.globalPos())
