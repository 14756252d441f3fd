"""Right-to-left captions (Arabic, Hebrew) read in the right order and start
at the right, as Qt's own bidi text layout draws them; left-to-right captions
are untouched."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter

from captioner.ui.caption_text import has_rtl, starts_rtl
from captioner.ui.overlay import CaptionRenderer
from captioner.ui.theme import OverlayStyle

ARABIC = "مرحبا بكم في الاجتماع"
HEBREW = "שלום לכולם בפגישה"
W, H = 700, 60
PLAIN = OverlayStyle(font_family="DejaVu Sans", font_size=28, effect="none", text_color="#ffffff", lines=1,
                     clear_after=0)


def rendered(style: OverlayStyle, text: str) -> QImage:
    r = CaptionRenderer(style)
    r.add_final(text)
    img = QImage(W, H, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(QColor("black"))
    p = QPainter(img)
    r.paint_text(p, QRect(0, 0, W, r.line_height))
    p.end()
    return img


def qt_drawn(style: OverlayStyle, text: str, align: Qt.AlignmentFlag) -> QImage:
    r = CaptionRenderer(style)
    img = QImage(W, H, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(QColor("black"))
    p = QPainter(img)
    p.setFont(r.font)
    p.setPen(QColor(style.text_color))
    p.drawText(QRect(0, 0, W, r.line_height), align | Qt.AlignmentFlag.AlignVCenter, text)
    p.end()
    return img


def ink_columns(img: QImage) -> list[int]:
    return [x for x in range(img.width()) if any(QColor(img.pixel(x, y)).lightness() > 100 for y in range(0, img.height(), 2))]


def mismatch(a: QImage, b: QImage) -> float:
    """Share of inked columns that are inked in one image and not the other."""
    ca, cb = set(ink_columns(a)), set(ink_columns(b))
    return len(ca ^ cb) / max(1, len(ca | cb))


def test_direction_is_read_from_the_text():
    assert has_rtl(ARABIC) and has_rtl(HEBREW) and has_rtl("the word שלום inside")
    assert starts_rtl(ARABIC) and starts_rtl("12 " + HEBREW)
    assert not starts_rtl("the word שלום inside") and not has_rtl("hello, world 12")


def test_arabic_and_hebrew_read_in_order_from_the_right(qapp):  # noqa: ANN001
    for text in (ARABIC, HEBREW):
        ours = rendered(PLAIN, text)
        assert mismatch(ours, qt_drawn(PLAIN, text, Qt.AlignmentFlag.AlignRight)) < 0.1, text  # (a pixel of rounding apart)
        # drawn word by word from the left (the old way), the words were reversed and left-aligned
        assert mismatch(ours, qt_drawn(PLAIN, text, Qt.AlignmentFlag.AlignLeft)) > 0.5
        assert max(ink_columns(ours)) > W - 10


def test_outlined_rtl_captions_are_drawn_whole_too(qapp):  # noqa: ANN001
    style = replace(PLAIN, effect="outline", effect_color="#000000")
    ours = rendered(style, HEBREW)
    assert mismatch(ours, qt_drawn(PLAIN, HEBREW, Qt.AlignmentFlag.AlignRight)) < 0.1


def test_left_to_right_captions_still_start_at_the_left(qapp):  # noqa: ANN001
    text = "the meeting starts now"
    ours = rendered(PLAIN, text)
    assert mismatch(ours, qt_drawn(PLAIN, text, Qt.AlignmentFlag.AlignLeft)) < 0.05
    assert min(ink_columns(ours)) < 10


def test_a_speaker_label_does_not_turn_a_hebrew_caption_left_to_right(qapp):  # noqa: ANN001
    """"Speaker 2: " is Latin: the caption's direction was read from it."""
    style = replace(PLAIN, speaker_labels=True)
    r = CaptionRenderer(style)
    r.add_final(HEBREW, speaker="1")
    (_, runs), = r.row_layout(QRect(0, 0, W, r.line_height))
    (label, _, label_x, _), (body, _, body_x, _) = runs
    assert label == "Speaker 2: " and label_x > body_x  # the label first, at the right
    assert label_x + r.metrics.horizontalAdvance(label) == W


def test_a_row_of_a_hebrew_caption_that_starts_with_a_latin_word_reads_right_to_left(qapp):  # noqa: ANN001
    text = "John Smith ו-Mary Jones יצטרפו"
    r = CaptionRenderer(PLAIN)
    r.add_final(HEBREW + " " + text)
    r.visible_rows = lambda width, max_rows: [(r.lines[-1], 1, text)]  # the caption's second row
    (_, runs), = r.row_layout(QRect(0, 0, W, r.line_height))
    (body, _, x, _), = runs
    assert body == "\u200f" + text  # laid out as part of a right-to-left paragraph
    assert x + r.metrics.horizontalAdvance(text) == W  # and starting at the right
    img = QImage(W, H, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(QColor("black"))
    p = QPainter(img)
    r.paint_text(p, QRect(0, 0, W, r.line_height))
    p.end()
    right_to_left = qt_drawn(PLAIN, "\u200f" + text, Qt.AlignmentFlag.AlignRight)
    left_to_right = qt_drawn(PLAIN, "\u200e" + text, Qt.AlignmentFlag.AlignRight)
    assert mismatch(img, right_to_left) < 0.1 and mismatch(right_to_left, left_to_right) > 0.2
