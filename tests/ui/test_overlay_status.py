"""The overlay's status as a deaf user who keeps only the overlay on screen
reads it: an error is shown in full (wrapped down the empty caption area,
not cut to "…Invalid API key (KEY_REJEC…"), readable and inside the overlay,
while captions keep their place when there are any; and the unpinned hint
reads at 4.5:1 over any desktop (WCAG 1.4.3)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QImage, QPainter

from captioner.stt.events import Final, SessionState, StateChanged
from captioner.ui.overlay import EDGE, MARGIN, CaptionOverlay
from captioner.ui.theme import PRESETS
from tests.ui.test_control_window_a11y import contrast

REASON = "AudioPod: the provider rejected the API key (HTTP 401): Invalid API key (KEY_REJECTED)"
FULL = f"Error: {REASON} — replace the key in Settings → API keys"  # the reason, then where the fix is
WHITE, BLACK = QColor("#ffffff"), QColor("#000000")


def make(qtbot, preset: str, width: int, lines: int = 3) -> CaptionOverlay:  # noqa: ANN001
    ov = CaptionOverlay(None, replace(PRESETS[preset], font_family="DejaVu Sans", lines=lines, clear_after=0))
    qtbot.addWidget(ov)
    ov.resize(width, ov.height_for_lines())
    return ov


def over(ov: CaptionOverlay, desktop: QColor) -> QImage:
    """The translucent overlay as it shows over a plain desktop."""
    img = QImage(ov.size(), QImage.Format.Format_RGB32)
    img.fill(desktop)
    p = QPainter(img)
    p.drawImage(0, 0, ov.grab().toImage())
    p.end()
    return img


def caption_area(ov: CaptionOverlay) -> QRect:
    """Below the status line, inside the edge (where the dashed border and grip are)."""
    sh = ov._status_height()
    return QRect(EDGE + 2, sh + 2, ov.width() - 2 * EDGE - 4, ov.height() - sh - 2 * EDGE)


def marked_rows(img: QImage, area: QRect) -> list[int]:
    """The y of every row of `area` with a pixel unlike the panel's (its bottom-right corner's)."""
    bg = img.pixel(area.right(), area.bottom())
    return [y for y in range(area.top(), area.bottom() + 1)
            if any(img.pixel(x, y) != bg for x in range(area.left(), area.right() + 1, 2))]


# widths: the default overlay (62 % of the screen) on 1366x768 and 1600x900, and a half-width one
@pytest.mark.parametrize(("preset", "width"), [("Standard", 846), ("Large print", 992), ("Large print", 846),
                                               ("No background", 423), ("Dark on light", 661)])
def test_an_error_is_shown_in_full_down_the_empty_caption_area(qtbot, preset, width):  # noqa: ANN001
    ov = make(qtbot, preset, width)
    ov.on_event(StateChanged(SessionState.FAILED, REASON))
    img = over(ov, WHITE)
    rows = marked_rows(img, caption_area(ov))
    assert rows, "the caption area stayed empty"  # no captions: the status takes their room
    assert " ".join(ov.status_shown) == FULL and len(ov.status_shown) > 1  # every word, in order
    # inside the overlay: nothing below the caption area's bottom edge
    assert max(ov._text_rect().bottom(), *rows) == ov._text_rect().bottom()
    # readable: white on the status block, over the lightest desktop there is
    text_rows = ov.status_shown
    block = QRect(MARGIN + int(ov._status_text_x()), 6, 40, len(text_rows) * ov._status_metrics.lineSpacing())
    colors = {img.pixel(x, y) for x in range(block.left(), block.right()) for y in range(block.top(), block.bottom())}
    darkest = min(colors, key=lambda c: QColor(c).lightness())
    assert contrast(darkest, WHITE.rgb()) >= 4.5


def test_a_status_wraps_only_when_there_are_no_captions(qtbot):  # noqa: ANN001
    ov = make(qtbot, "Standard", 846)
    ov.on_event(StateChanged(SessionState.FAILED, REASON))
    ov.grab()
    assert len(ov.status_shown) > 1
    ov.on_event(Final("What was said before the error stays readable.", 0.0, 1.0))
    ov.grab()
    assert len(ov.status_shown) == 1 and ov.status_shown[0].endswith("…")  # captions keep their place
    ov.clear_captions()
    ov.grab()
    assert " ".join(ov.status_shown) == FULL


@pytest.mark.parametrize("state", [SessionState.CONNECTING, SessionState.LIVE])
def test_short_statuses_keep_their_one_line_pill(qtbot, state):  # noqa: ANN001
    ov = make(qtbot, "No background", 846)
    ov.on_event(StateChanged(state, ""))
    img = over(ov, WHITE)
    assert ov.status_shown == [ov.status_text()[0]]
    assert not marked_rows(img, caption_area(ov))  # the caption area is left to the captions


def test_a_tiny_overlay_elides_the_last_row_it_has(qtbot):  # noqa: ANN001
    ov = make(qtbot, "Standard", 240, lines=1)
    ov.on_event(StateChanged(SessionState.FAILED, REASON))
    ov.grab()
    assert 1 < len(ov.status_shown) and ov.status_shown[-1].endswith("…")
    shown = " ".join(ov.status_shown)[:-1]
    assert FULL.startswith(shown.rstrip())


def hint_contrast(ov: CaptionOverlay, desktop: QColor) -> float:
    """Contrast of the hint's text with its pill, as painted over `desktop`:
    the pill's colour is the most common pixel inside it, the text's the one
    furthest from it (a glyph's solid core)."""
    img = over(ov, desktop)
    fm = ov._status_metrics
    _shown, hint = ov.status_layout(ov.status_text()[0], ov.width() - 2 * MARGIN)
    assert hint.startswith("drag to move")
    pill_h = fm.height() + 4
    right = ov.width() - MARGIN
    box = QRect(right - (fm.horizontalAdvance(hint) + 20) + pill_h // 2, 4 + 1, fm.horizontalAdvance(hint) + 20 - pill_h, pill_h - 2)
    counts: dict[int, int] = {}
    for y in range(box.top(), box.bottom() + 1):
        for x in range(box.left(), box.right() + 1):
            c = img.pixel(x, y)
            counts[c] = counts.get(c, 0) + 1
    pill = max(counts, key=counts.__getitem__)
    return max(contrast(pill, c) for c in counts)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_the_unpinned_hint_reads_over_any_desktop(qtbot, preset):  # noqa: ANN001
    ov = make(qtbot, preset, 1400)
    worst = min(hint_contrast(ov, WHITE), hint_contrast(ov, BLACK))
    assert worst >= 4.5, f"{preset}: {worst:.2f}:1"
