"""The overlay's image caches (caption_text.RowImages and the background
layer) must not change what the user sees: every frame equals drawing the
captions directly, the way the overlay did before the caches. Also: a
changed partial repaints its row only, a style change re-renders, and the
work per event stays O(1)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import QRect, QRectF
from PySide6.QtGui import QImage, QPainter, QRegion

from captioner.stt.events import Final, Partial, SessionState, StateChanged
from captioner.ui.caption_text import draw_run, draw_underline
from captioner.ui.overlay import MARGIN, CaptionOverlay
from captioner.ui.theme import PRESETS, OverlayStyle

BASE = OverlayStyle(font_family="DejaVu Sans", clear_after=0)
STYLES = {
    "outline": BASE,
    "shadow": replace(BASE, effect="shadow", font_size=30),
    "none, centred": replace(BASE, effect="none", align="center", font_size=24),
    "large outline, 2 lines": replace(BASE, font_size=48, lines=2),
    "no background": replace(PRESETS["No background"], font_family="DejaVu Sans", clear_after=0),
    "dark on light": replace(PRESETS["Dark on light"], font_family="DejaVu Sans", clear_after=0),
}


def reference(ov: CaptionOverlay) -> QImage:
    """The overlay drawn directly, with no cache: the pre-cache paintEvent."""
    r = ov.renderer
    img = QImage(ov.size(), QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(0)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    rect = QRectF(img.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
    status, color_key = ov.status_text()
    if not r.empty or not ov.pinned or (status and color_key != "live"):
        r.paint_background(p, rect)
    if not ov.pinned:
        ov._paint_edge(p, rect)
    sh = ov._status_height()
    if status:
        ov._paint_status(p, status, color_key, QRect(MARGIN, 4, ov.width() - 2 * MARGIN, sh - 4))
    text_rect = QRect(MARGIN, sh + MARGIN // 2, ov.width() - 2 * MARGIN, ov.height() - sh - MARGIN - MARGIN // 2)
    lh, m, st = r.line_height, r.metrics, r.style
    rows = r.visible_rows(text_rect.width(), max(1, min(st.lines, text_rect.height() // lh)))
    p.setFont(r.font)
    y = text_rect.bottom() + 1 - len(rows) * lh
    for line, index, text in rows:
        color = st.text_color if line.kind == "final" else st.partial_color
        x = text_rect.left()
        if st.align == "center":
            x += max(0, (text_rect.width() - m.horizontalAdvance(text)) // 2)
        baseline = y + m.ascent() + (lh - m.height()) // 2
        if index == 0 and line.label and text.startswith(line.label.rstrip()):
            draw_run(p, x, baseline, line.label, st.speaker_color, r.font, st.effect, st.effect_color, st.font_size)
            x += m.horizontalAdvance(line.label)
            text = text[len(line.label):]
        if line.kind == "partial" and st.underline_live:
            draw_underline(p, x, baseline, text, color, r.font, st.effect, st.effect_color, st.font_size)
        draw_run(p, x, baseline, text, color, r.font, st.effect, st.effect_color, st.font_size)
        y += lh
    p.end()
    return img


def shown(ov: CaptionOverlay) -> QImage:
    return ov.grab().toImage().convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


def differing(a: QImage, b: QImage, tol: int = 0) -> int:
    """Pixels where some channel differs by more than `tol` (of 255)."""
    assert a.size() == b.size()
    n = 0
    for y in range(a.height()):
        for x in range(a.width()):
            pa, pb = a.pixel(x, y), b.pixel(x, y)
            if pa != pb and max(abs((pa >> s & 255) - (pb >> s & 255)) for s in (0, 8, 16, 24)) > tol:
                n += 1
    return n


def same(a: QImage, b: QImage) -> bool:
    """Equal to the eye and nearly to the bit: a shadow (85 % alpha) blended
    onto a word image and then onto the panel rounds differently from
    blending it onto the panel directly, by at most 1/255 per channel."""
    return differing(a, b, tol=1) == 0


def make(qtbot, style: OverlayStyle, width: int = 700) -> CaptionOverlay:  # noqa: ANN001
    ov = CaptionOverlay(None, style)
    qtbot.addWidget(ov)
    ov.resize(width, ov.height_for_lines())
    return ov


@pytest.mark.parametrize("name", list(STYLES))
def test_cached_frames_equal_direct_drawing(qtbot, name):  # noqa: ANN001
    ov = make(qtbot, STYLES[name])
    ov.on_event(Final("The quick brown fox jumps over the lazy dog, fifty-five times.", 0, 1, speaker="0"))
    ov.on_event(Final("Waves Ave. office: Tv, AV & ffl — «naïve» café", 1, 2, speaker="1"))
    ov.on_event(Partial("and then we talked about", speaker="1"))
    assert same(shown(ov), reference(ov))
    ov.on_event(Partial("and then we talked about the weather for a long, long while", speaker="1"))
    assert same(shown(ov), reference(ov))
    ov.set_status("live")
    ov.set_pinned(True)
    if STYLES[name].background_opacity > 0:
        assert same(shown(ov), reference(ov))
    else:
        # No panel: outlined words on a fully transparent window. When this
        # runs first in its process (as pytest-xdist may run it), ~20 single
        # pixels on outline edges come out up to 25/255 apart in alpha between
        # the two ways of drawing (premultiplied rounding; not yet explained
        # why only then). What the user sees is the window over whatever is
        # behind it: over grey, a wrong or missing word changes thousands of
        # pixels by far more than this allows.
        a, b = over_grey(shown(ov)), over_grey(reference(ov))
        assert differing(a, b, tol=8) <= 60 and differing(a, b, tol=48) == 0


def over_grey(img: QImage) -> QImage:
    out = QImage(img.size(), QImage.Format.Format_ARGB32_Premultiplied)
    out.fill(0xFF808080)
    p = QPainter(out)
    p.drawImage(0, 0, img)
    p.end()
    return out


def test_a_changed_partial_changes_the_pixels(qtbot):  # noqa: ANN001
    ov = make(qtbot, BASE)
    ov.on_event(Partial("alpha"))
    first = shown(ov)
    ov.on_event(Partial("alpha bravo"))
    second = shown(ov)
    assert differing(first, second) > 50
    assert same(second, reference(ov))
    ov.on_event(Partial("alpha"))  # revised back: the cached words come back exactly
    assert differing(shown(ov), first) == 0
    ov.on_event(Final("alpha", 0, 1))  # same words, final colour
    assert differing(shown(ov), first) > 50
    assert same(shown(ov), reference(ov))


def test_style_change_rerenders(qtbot):  # noqa: ANN001
    ov = make(qtbot, BASE)
    ov.on_event(Final("colour check", 0, 1))
    before = shown(ov)
    assert same(before, reference(ov))
    for style in (replace(BASE, text_color="#ff0000"), replace(BASE, effect_color="#00ff00"),
                  replace(BASE, effect="shadow"), replace(BASE, font_size=40), replace(BASE, bold=False),
                  replace(BASE, background_color="#336699"), replace(BASE, background_opacity=0.2)):
        ov.set_style(style, fit_height=False)
        now = shown(ov)
        assert differing(now, before) > 50, style
        assert same(now, reference(ov)), style
    ov.set_style(BASE, fit_height=False)
    # (not compared with `before`: Qt itself draws a glyph outline a few
    # levels differently once other sizes of the font were used)
    assert same(shown(ov), reference(ov))


def test_status_and_pin_changes_redraw_the_background_layer(qtbot):  # noqa: ANN001
    ov = make(qtbot, BASE)
    idle = shown(ov)
    ov.on_event(StateChanged(SessionState.LIVE))
    live = shown(ov)
    assert differing(idle, live) > 50 and same(live, reference(ov))
    ov.set_pinned(True)  # pinned and live: the status pill only
    assert same(shown(ov), reference(ov))
    ov.on_event(StateChanged(SessionState.CLOSED))  # pinned, idle, no captions: nothing at all
    alpha = shown(ov).convertToFormat(QImage.Format.Format_Alpha8)
    assert bytes(alpha.constBits()).count(0) == alpha.sizeInBytes() == ov.width() * ov.height()
    ov.on_event(Partial("words"))  # captions bring the panel back
    assert same(shown(ov), reference(ov)) and differing(shown(ov), live) > 50


class _Spy(CaptionOverlay):
    """Records the region of each update() the overlay asks for."""

    def __init__(self, *a, **k) -> None:  # noqa: ANN002, ANN003
        self.asked: list[QRegion | None] = []
        super().__init__(*a, **k)

    def update(self, *args) -> None:  # noqa: ANN002
        self.asked.append(QRegion(args[0]) if args else None)
        super().update(*args)


def _shown_spy(qtbot) -> _Spy:  # noqa: ANN001
    """A shown overlay that records its update requests, one final on it."""
    ov = _Spy(None, BASE)
    qtbot.addWidget(ov)
    ov.resize(900, ov.height_for_lines())
    with qtbot.waitExposed(ov):
        ov.show()
    ov.on_event(Final("first line", 0, 1))
    return ov


def test_a_growing_partial_repaints_only_its_row(qtbot):  # noqa: ANN001
    ov = _shown_spy(qtbot)
    ov.on_event(Partial("second"))
    ov.repaint()
    ov.asked.clear()
    ov.on_event(Partial("second line"))
    assert len(ov.asked) == 1 and ov.asked[0] is not None
    area = ov.asked[0].boundingRect()
    lh = ov.renderer.line_height
    assert area.height() < 2 * lh  # one row (plus room for the outline), not the window
    assert area.bottom() >= ov._text_rect().bottom()  # the bottom row: where the partial is
    ov.repaint()
    ov.asked.clear()
    ov.on_event(Partial("second line"))  # the same words again: nothing to repaint
    assert ov.asked == []


def test_a_repeated_partial_costs_no_layout(qtbot, monkeypatch):  # noqa: ANN001
    """Providers resend the open partial several times a second with no new
    word: those must not even lay the rows out again."""
    ov = _shown_spy(qtbot)
    ov.on_event(Partial("second"))
    ov.repaint()
    laid_out = []
    real = ov.renderer.row_rects
    monkeypatch.setattr(ov.renderer, "row_rects", lambda rect: laid_out.append(rect) or real(rect))
    for _ in range(5):
        ov.on_event(Partial("second"))
    assert laid_out == []
    for _ in range(3):
        ov.on_event(Partial(""))  # an empty partial clears the open one, once
    assert len(laid_out) == 1 and ov.renderer.partial is None
    assert ov.asked and ov.asked[-1] is not None  # and repaints that row
    laid_out.clear()
    ov.on_event(Final("  ", 1, 2))  # an empty final with no partial open: nothing changes
    assert laid_out == []
    ov.on_event(Final("second", 1, 2))
    assert len(laid_out) == 1


def test_a_change_is_laid_out_once_for_the_repaint_request_and_the_paint(qtbot, monkeypatch):  # noqa: ANN001
    ov = _shown_spy(qtbot)
    ov.repaint()
    layouts = []
    real = ov.renderer.row_layout
    monkeypatch.setattr(ov.renderer, "row_layout", lambda rect: layouts.append(rect) or real(rect))
    ov.on_event(Partial("second"))
    ov.repaint()
    assert len(layouts) == 1  # asked for the changed rows, then painted them from the same layout
    ov.resize(700, ov.height())  # a new width is a new layout
    ov.repaint()
    assert len(layouts) == 2
    ov.renderer.set_style(replace(BASE, font_size=BASE.font_size + 4))  # so is a new style
    ov.repaint()
    assert len(layouts) == 3
    assert "second" in [run[0] for _, (runs, _w) in ov._painted[1] for run in runs]


def test_work_per_event_is_o1(qtbot):  # noqa: ANN001
    ov = make(qtbot, BASE, width=900)
    with qtbot.waitExposed(ov):
        ov.show()
    images = ov.renderer.images
    for i in range(200):
        ov.on_event(Final(f"line number {i} says something", i, i + 1))
        ov.on_event(Partial(f"partial {i}"))
        ov.repaint()
    words, rows = images.words_drawn, images.rows_composed
    ov.on_event(Partial("partial 199 grows"))
    ov.repaint()
    assert images.words_drawn - words == 1  # only the new word is drawn
    assert images.rows_composed - rows == 1  # only its row is composed
    for _ in range(5):
        ov.repaint()  # repaints copy cached rows
    assert (images.words_drawn, images.rows_composed) == (words + 1, rows + 1)
    assert len(images._words) <= images._max_words and len(images._rows) <= ov.renderer.style.lines + 1


def test_a_partial_that_becomes_final_is_recoloured_not_stroked_again(qtbot):  # noqa: ANN001
    ov = make(qtbot, BASE, width=900)
    with qtbot.waitExposed(ov):
        ov.show()
    images = ov.renderer.images
    ov.on_event(Partial("we agreed on the budget"))
    ov.repaint()
    stroked, drawn = images.outlines_stroked, images.words_drawn
    ov.on_event(Final("we agreed on the budget", 0, 2))
    ov.repaint()
    # five words in the final's colour, but no outline stroked again
    assert images.words_drawn - drawn == 5
    assert images.outlines_stroked == stroked
    assert same(shown(ov), reference(ov))
    assert len(images._outlines) <= images.MAX_OUTLINES
