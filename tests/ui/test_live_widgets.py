"""The control window's fast-changing widgets: the level meter and the line
of words being recognized."""

from __future__ import annotations

from PySide6.QtGui import QImage

from captioner.ui.live_widgets import LevelMeter, LiveTextLine


def _render(widget) -> QImage:
    img = QImage(widget.size(), QImage.Format.Format_ARGB32)
    img.fill(0)
    widget.render(img)
    return img


def _green_columns(img: QImage) -> int:
    y = img.height() // 2
    return sum(1 for x in range(img.width()) if img.pixelColor(x, y).green() > 140 and img.pixelColor(x, y).red() < 80)


def test_level_meter_clamps_and_fills_in_proportion(qtbot):
    m = LevelMeter(60)
    qtbot.addWidget(m)
    m.resize(200, 14)
    assert m.value() == 0 and m.maximum() == 60 and _green_columns(_render(m)) == 0
    m.setValue(30)
    half = _green_columns(_render(m))
    m.setValue(99)
    assert m.value() == 60
    full = _green_columns(_render(m))
    m.setValue(-5)
    assert m.value() == 0
    assert 90 <= half <= 100 and full >= 190, (half, full)


def test_live_line_keeps_the_newest_words_when_too_long(qtbot):
    line = LiveTextLine(lines=2)
    qtbot.addWidget(line)
    line.resize(220, line.height())
    line.setText("short words")
    assert line.visible_text() == "short words"
    words = [f"word{i}" for i in range(80)]
    line.setText(" ".join(words))
    shown = line.visible_text()
    assert shown.startswith("… ") and shown.endswith("word79")
    kept = shown[2:].split()
    assert kept == words[-len(kept):] and 4 <= len(kept) < 40
    assert line._lay_out(shown, line.width() - 4)[1]
    assert not line._lay_out("… " + " ".join(words[-len(kept) - 1:]), line.width() - 4)[1]  # as many as fit
    img = _render(line)
    assert any(img.pixelColor(x, y).blue() > 120 and img.pixelColor(x, y).red() < 120
               for x in range(0, img.width(), 2) for y in range(img.height()))  # text is drawn
    line.resize(440, line.height())  # wider: laid out again, more of the newest words
    wider = line.visible_text()[2:].split()
    assert wider == words[-len(wider):] and len(wider) > len(kept)
    line.clear()
    assert line.text() == "" and line.visible_text() == ""


def test_live_line_paints_the_layout_it_fitted(qtbot, monkeypatch):
    """A paint draws the text laid out when it was fitted, bottom-aligned,
    without laying it out again."""
    line = LiveTextLine(lines=2)
    qtbot.addWidget(line)
    line.resize(220, line.height())
    line.setText(" ".join(f"word{i}" for i in range(40)))
    shown = line.visible_text()
    made: list[str] = []
    real = line._lay_out
    monkeypatch.setattr(line, "_lay_out", lambda text, width: made.append(text) or real(text, width))
    img = _render(line)
    assert made == []
    rows = [y for y in range(img.height()) if any(
        img.pixelColor(x, y).blue() > 120 and img.pixelColor(x, y).red() < 120 for x in range(0, img.width(), 2))]
    assert rows and rows[-1] >= img.height() - line.fontMetrics().descent() - 6  # ink reaches the bottom line
    assert rows[0] >= 2 and shown.startswith("… ")


def test_live_line_keeps_the_newest_characters_of_text_without_spaces(qtbot):
    """A long Japanese partial (or a URL) is one "word": it showed as "… "
    alone. Its newest characters are shown, as many as fit."""
    line = LiveTextLine(lines=2)
    qtbot.addWidget(line)
    line.resize(220, line.height())
    # Three sentences: too long for two lines whatever font draws them (with
    # no CJK font installed, Qt draws narrow boxes and one sentence fits).
    text = "今日は良い天気です明日も晴れるでしょう東京では桜が咲き始めました週末には多くの人が花見に出かける予定です" * 3
    for long in (text, "https://example.com/" + "abcdefghij" * 20):
        line.setText(long)
        shown = line.visible_text()
        assert shown.startswith("…") and len(shown) > 8 and long.endswith(shown[1:])
        assert line._lay_out(shown, line.width() - 4)[1]
        assert not line._lay_out("…" + long[-len(shown):], line.width() - 4)[1]  # one more does not fit
