"""Caption rows as cached images.

Stroking an outline (`QPainter.strokePath` of a text path) costs milliseconds
per row, and a live partial changes ~10 times a second. So each word is drawn
once (outline or shadow included) into a small image, each visible row is
composed once from its words, and a paint only copies row images. A partial
that grows by a word renders that one word and re-composes one row.

The result is pixel-for-pixel what drawing each run directly gives: a word is
drawn at the same fractional position it has inside its run (the run's text
advance up to the word) and copied at a whole device pixel, and words never
overlap (a space is wider than the outline), so drawing them one by one
equals drawing the run. tests/ui/test_overlay_cache.py compares the two.
A run with right-to-left script is drawn whole (Qt orders its words).
"""

from __future__ import annotations

import collections
import math
import re
from typing import Any, Iterator

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPainterPath, QPen, QTextLayout, QTextOption

WORD = re.compile(r"\S+")
#: Hebrew, Arabic, Syriac, Thaana, N'Ko … and their presentation forms.
_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff\U00010800-\U00010fff\U0001e800-\U0001efff]")
_LETTER = re.compile(r"[^\W\d_]")


def has_rtl(text: str) -> bool:
    """Whether `text` holds right-to-left script: then only Qt's bidi layout
    of the whole run puts its words in the right visual order."""
    return _RTL.search(text) is not None


def starts_rtl(text: str) -> bool:
    """Whether the first letter is right-to-left: the caption's base direction
    (Unicode's rule for a paragraph), which decides which side it starts at."""
    m = _LETTER.search(text)
    return m is not None and _RTL.match(m.group()) is not None
_FORMAT = QImage.Format.Format_ARGB32_Premultiplied
_SUB = 64  # fractional positions are kept in 1/64 px (Qt's own text precision)

#: One row: runs of (text, colour, x, underlined) with x in whole px from the
#: row's left; underlined marks live words that may still change.
Runs = tuple[tuple[str, str, int, bool], ...]


def draw_run(p: QPainter, x: float, baseline: float, text: str, color: str, font: QFont, effect: str,
             effect_color: str, font_size: int) -> None:
    """Draw one run of text the way captions look (outline, shadow or plain).
    The painter's font must be `font`."""
    if not text:
        return
    if effect == "outline":
        path = text_path(x, baseline, text, font)
        stroke_outline(p, path, effect_color, font_size)
        p.fillPath(path, QColor(color))
        return
    if effect == "shadow":
        off = shadow_offset(font_size)
        shadow = QColor(effect_color)
        shadow.setAlphaF(0.85)
        p.setPen(shadow)
        p.drawText(QPointF(x + off, baseline + off), text)
    p.setPen(QColor(color))
    p.drawText(QPointF(x, baseline), text)


def draw_underline(p: QPainter, x: float, baseline: float, text: str, color: str, font: QFont, effect: str,
                   effect_color: str, font_size: int) -> None:
    """Underline live words, as input methods underline text not yet
    committed: the words that may still change are told apart without
    relying on colour (WCAG 1.4.1). Drawn before the words, so their outline
    cuts it round descenders; whole pixels, so cached and direct drawing agree."""
    text = text.rstrip()
    if not text:
        return
    fm = QFontMetricsF(font)
    thick = max(1, round(font_size / 14))
    left, right = round(x), round(x + fm.horizontalAdvance(text))
    top = round(baseline + max(1.0, fm.underlinePos()))
    if effect == "outline":
        grow = max(1, round(outline_width(font_size) / 2))
        p.fillRect(left - grow, top - grow, right - left + 2 * grow, thick + 2 * grow, QColor(effect_color))
    elif effect == "shadow":
        off = round(shadow_offset(font_size))
        shadow = QColor(effect_color)
        shadow.setAlphaF(0.85)
        p.fillRect(left + off, top + off, right - left, thick, shadow)
    p.fillRect(left, top, right - left, thick, QColor(color))


def text_path(x: float, baseline: float, text: str, font: QFont) -> QPainterPath:
    path = QPainterPath()
    path.addText(QPointF(x, baseline), font, text)
    return path


def stroke_outline(p: QPainter, path: QPainterPath, effect_color: str, font_size: int) -> None:
    """The outline under a text path (its fill goes on top)."""
    pen = QPen(QColor(effect_color), outline_width(font_size))
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    p.strokePath(path, pen)


def outline_width(font_size: int) -> float:
    return max(2.0, font_size / 9)


def shadow_offset(font_size: int) -> float:
    return max(1.0, font_size / 14)


class RowImages:
    """Word and row images for one look (font, effect, device pixel ratio).
    `configure` drops everything when the look changes."""

    #: Outline layers kept for recolouring: a word is usually seen as a partial
    #: and, moments later, as the same word of the final in the final's colour.
    MAX_OUTLINES = 64

    def __init__(self, max_words: int = 600) -> None:
        self._max_words = max_words
        self._words: collections.OrderedDict[tuple, tuple[QImage, int, int]] = collections.OrderedDict()
        self._outlines: collections.OrderedDict[tuple, tuple[QImage, QPainterPath]] = collections.OrderedDict()
        self._rows: dict[tuple, QImage] = {}
        self._rows_used: dict[tuple, QImage] = {}
        self._look: tuple | None = None
        self.words_drawn = 0  # counters for tests and benchmarks
        self.outlines_stroked = 0
        self.rows_composed = 0

    def configure(self, font: QFont, line_height: int, ascent: int, height: int, effect: str, effect_color: str,
                  font_size: int, dpr: float, dpi: tuple[int, int]) -> None:
        look = (font.toString(), line_height, effect, effect_color, font_size, dpr, dpi)
        if look == self._look:
            return
        self._look = look
        self._words.clear()
        self._outlines.clear()
        self._rows.clear()
        self._rows_used.clear()
        self.font, self.effect, self.effect_color, self.font_size = font, effect, effect_color, font_size
        self.fm = QFontMetricsF(font)
        self.dpr, self.dpi = dpr, dpi
        self.line_height = line_height
        extra = outline_width(font_size) / 2 if effect == "outline" else shadow_offset(font_size) if effect == "shadow" else 0.0
        #: Room around a row for outline, shadow and glyphs that overhang the line box.
        self.pad = math.ceil(extra) + max(2, line_height // 4)
        self.baseline = self.pad + ascent + (line_height - height) // 2

    @property
    def look(self) -> tuple | None:
        return self._look

    # ------------------------------------------------------------- rows
    def row(self, runs: Runs, width: int) -> QImage:
        """The image of one row, `pad` px larger than the row box on every side
        (device pixel ratio set: draw it at logical coordinates)."""
        key = (runs, width)
        img = self._rows.get(key) or self._rows_used.get(key)
        if img is None:
            img = self._compose(runs, width)
        self._rows_used[key] = img
        return img

    def end_paint(self) -> None:
        """Keep the rows drawn by this paint (and the previous one), forget older ones."""
        self._rows, self._rows_used = self._rows_used, {}

    def _compose(self, runs: Runs, width: int) -> QImage:
        """The row's words in one image that ends where its ink ends (a live
        partial is usually far shorter than the row: filling and copying the
        empty rest was most of a repaint). Drawn over the background, the
        missing transparent tail changes nothing."""
        self.rows_composed += 1
        d = self.dpr
        iy, fy = _split(self.baseline * d)
        placed = []
        for text, color, x, _ in runs:
            # Right-to-left words are drawn as one run: drawn one by one from
            # the left, they would read in the wrong order.
            units = [(0, text)] if has_rtl(text) else [(m.start(), m.group()) for m in WORD.finditer(text)]
            for start, unit in units:
                ix, fx = _split((self.pad + x + self.fm.horizontalAdvance(text[:start])) * d)
                word, ox, oy = self._word(unit, color, fx, fy)
                placed.append((ix + ox, iy + oy, word))
        full = math.ceil((width + 2 * self.pad) * d)
        w = max((x + word.width() for x, _, word in placed), default=1)
        lined = [(text, color, x) for text, color, x, underlined in runs if underlined and text.strip()]
        for text, _, x in lined:  # the underline's outline can reach past the last word's ink
            w = max(w, math.ceil((self.pad + x + self.fm.horizontalAdvance(text) + self.pad) * d))
        w = min(full, w)
        h = math.ceil((self.line_height + 2 * self.pad) * d)
        img = QImage(max(1, w), max(1, h), _FORMAT)
        img.fill(0)
        p = QPainter(img)
        if lined:
            p.save()
            p.scale(d, d)
            for text, color, x in lined:
                draw_underline(p, self.pad + x, self.baseline, text, color, self.font, self.effect,
                               self.effect_color, self.font_size)
            p.restore()
        for x, y, word in placed:
            p.drawImage(x, y, word)
        p.end()
        img.setDevicePixelRatio(d)
        return img

    # ------------------------------------------------------------ words
    def _word(self, text: str, color: str, fx: int, fy: int) -> tuple[QImage, int, int]:
        """(image, left, top) of one word whose pen position is (fx, fy)/64 px
        inside a whole device pixel; left/top are where the image starts
        relative to that pixel (device px)."""
        key = (text, color, fx, fy)
        hit = self._words.get(key)
        if hit is not None:
            self._words.move_to_end(key)
            return hit
        self.words_drawn += 1
        d = self.dpr
        ink = self.fm.boundingRect(text)
        extra = self.pad  # outline/shadow plus a margin, logical px
        left = math.floor((min(0.0, ink.left()) - extra) * d)
        right = math.ceil((max(self.fm.horizontalAdvance(text), ink.right()) + extra) * d) + 1
        top = math.floor((min(-self.fm.ascent(), ink.top()) - extra) * d)
        bottom = math.ceil((max(self.fm.descent(), ink.bottom()) + extra) * d) + 1
        pos = ((-left + fx / _SUB) / d, (-top + fy / _SUB) / d)
        if self.effect == "outline":
            img = self._outlined(text, color, fx, fy, right - left, bottom - top, pos)
        else:
            img = self._blank(right - left, bottom - top)
            p = self._painter(img)
            draw_run(p, pos[0], pos[1], text, color, self.font, self.effect, self.effect_color, self.font_size)
            p.end()
        img.setDevicePixelRatio(1.0)  # composed in device pixels
        hit = (img, left, top)
        self._words[key] = hit
        if len(self._words) > self._max_words:
            self._words.popitem(last=False)
        return hit

    def _outlined(self, text: str, color: str, fx: int, fy: int, w: int, h: int, pos: tuple[float, float]) -> QImage:
        """An outlined word: its outline layer (the dear part: stroking the
        text path) is kept a while, so the same word at the same place in
        another colour only fills its text path on a copy. Same operations in
        the same order as `draw_run`, so the pixels are the same."""
        key = (text, fx, fy)
        layer = self._outlines.get(key)
        if layer is None:
            self.outlines_stroked += 1
            outline = self._blank(w, h)
            path = text_path(pos[0], pos[1], text, self.font)
            p = self._painter(outline)
            stroke_outline(p, path, self.effect_color, self.font_size)
            p.end()
            layer = (outline, path)
            self._outlines[key] = layer
            if len(self._outlines) > self.MAX_OUTLINES:
                self._outlines.popitem(last=False)
        else:
            self._outlines.move_to_end(key)
        img = layer[0].copy()
        img.setDevicePixelRatio(self.dpr)
        p = self._painter(img)
        p.fillPath(layer[1], QColor(color))
        p.end()
        return img

    def _blank(self, w: int, h: int) -> QImage:
        img = QImage(w, h, _FORMAT)
        img.setDotsPerMeterX(round(self.dpi[0] / 0.0254))
        img.setDotsPerMeterY(round(self.dpi[1] / 0.0254))
        img.fill(0)
        img.setDevicePixelRatio(self.dpr)
        return img

    def _painter(self, img: QImage) -> QPainter:
        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        p.setFont(self.font)
        return p


def _split(v: float) -> tuple[int, int]:
    """A device coordinate as (whole pixel, 1/64 fraction)."""
    q = round(v * _SUB)
    return q // _SUB, q % _SUB


def wrapped_rows(text: str, font: QFont, width: int) -> Iterator[tuple[int, str]]:
    """`text` wrapped at `width` px the way Qt wraps it (between words, inside
    a word only when it alone is wider): (start in UTF-16 units, row text)
    for each row, trailing spaces kept. Lazy: a caller may stop early."""
    layout = QTextLayout(text, font)
    option = QTextOption()
    option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
    layout.setTextOption(option)
    utf16 = text.encode("utf-16-le")
    layout.beginLayout()
    try:
        while True:
            row = layout.createLine()
            if not row.isValid():
                return
            row.setLineWidth(max(1, width))
            start = row.textStart()
            yield start, utf16[2 * start : 2 * (start + row.textLength())].decode("utf-16-le", errors="ignore")
    finally:
        layout.endLayout()


def dpi_of(device: Any) -> tuple[int, int]:
    try:
        return int(device.logicalDpiX()), int(device.logicalDpiY())
    except AttributeError:
        return 96, 96
