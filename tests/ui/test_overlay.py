"""The overlay: window flags, click-through pinning, partial vs final
rendering, last-N lines in O(1), wrapping, speakers, clearing, styling,
status, dragging/resizing and position memory."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

from captioner.settings import Settings, open_qsettings
from captioner.stt.events import Final, Gap, Partial, SessionState, StateChanged
from captioner.ui.overlay import CaptionOverlay, CaptionRenderer
from captioner.ui.theme import MAX_LINES, OverlayStyle

PLAIN = OverlayStyle(
    font_family="DejaVu Sans", font_size=20, bold=False, text_color="#ff0000", partial_color="#00ff00",
    background_color="#000000", background_opacity=1.0, effect="none", lines=3, clear_after=0,
)


def make(qtbot, settings=None, style=PLAIN) -> CaptionOverlay:  # noqa: ANN001
    ov = CaptionOverlay(settings, style)
    qtbot.addWidget(ov)
    ov.resize(640, ov.height_for_lines())
    return ov


def count_color(img: QImage, rgb: tuple[int, int, int], tol: int = 60) -> int:
    n = 0
    for y in range(0, img.height(), 2):
        for x in range(0, img.width(), 2):
            c = QColor(img.pixel(x, y))
            if abs(c.red() - rgb[0]) + abs(c.green() - rgb[1]) + abs(c.blue() - rgb[2]) < tol:
                n += 1
    return n


def test_window_flags_frameless_translucent_on_top(qtbot):
    ov = make(qtbot)
    flags = ov.windowFlags()
    assert flags & Qt.WindowType.FramelessWindowHint
    assert flags & Qt.WindowType.WindowStaysOnTopHint
    assert flags & Qt.WindowType.Tool
    assert flags & Qt.WindowType.WindowDoesNotAcceptFocus
    assert not flags & Qt.WindowType.WindowTransparentForInput
    assert ov.testAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
    assert ov.testAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)


def test_pin_toggles_click_through_and_keeps_window(qtbot, settings):
    ov = make(qtbot, settings)
    ov.setGeometry(QRect(50, 60, 600, 150))
    ov.show()
    qtbot.waitExposed(ov)
    seen = []
    ov.pinned_changed.connect(seen.append)
    ov.set_pinned(True)
    assert ov.pinned and settings.pinned
    assert ov.windowFlags() & Qt.WindowType.WindowTransparentForInput
    assert ov.windowHandle().flags() & Qt.WindowType.WindowTransparentForInput
    assert ov.windowFlags() & Qt.WindowType.WindowStaysOnTopHint  # still on top
    assert ov.isVisible() and ov.geometry() == QRect(50, 60, 600, 150)
    ov.set_pinned(False)
    assert not ov.windowFlags() & Qt.WindowType.WindowTransparentForInput
    assert not ov.windowHandle().flags() & Qt.WindowType.WindowTransparentForInput
    assert ov.isVisible() and ov.geometry() == QRect(50, 60, 600, 150)
    assert seen == [True, False] and not settings.pinned


def test_pinned_state_is_restored(qtbot, settings):
    settings.pinned = True
    ov = make(qtbot, settings)
    assert ov.pinned and ov.windowFlags() & Qt.WindowType.WindowTransparentForInput


def test_partial_is_drawn_distinct_from_finals_and_replaced(qtbot):
    ov = make(qtbot)
    ov.on_event(Final("alpha bravo", 0.0, 1.0))
    ov.on_event(Partial("charlie"))
    img = ov.grab().toImage()
    assert count_color(img, (255, 0, 0)) > 20  # final in the text colour
    assert count_color(img, (0, 255, 0)) > 20  # partial in the partial colour
    ov.on_event(Partial("charlie delta"))
    assert ov.renderer.partial.text == "charlie delta" and len(ov.renderer.lines) == 1
    ov.on_event(Final("charlie delta", 1.0, 2.0))
    img = ov.grab().toImage()
    assert count_color(img, (0, 255, 0)) == 0  # the partial became a final
    assert [line.text for line in ov.renderer.lines] == ["alpha bravo", "charlie delta"]


def longest_run(img: QImage, rgb: tuple[int, int, int], tol: int = 60) -> tuple[int, int]:
    """(length, y) of the longest horizontal run of pixels near `rgb`."""
    best = (0, -1)
    for y in range(img.height()):
        run = 0
        for x in range(img.width()):
            c = QColor(img.pixel(x, y))
            if abs(c.red() - rgb[0]) + abs(c.green() - rgb[1]) + abs(c.blue() - rgb[2]) < tol:
                run += 1
                best = max(best, (run, y))
            else:
                run = 0
    return best


def test_live_words_are_underlined_so_colour_is_not_the_only_cue(qtbot):
    """WCAG 1.4.1: with the live and final colours the same, the live words
    still differ: one unbroken line under them, across the gap between words,
    below the baseline; gone once they are final, and when turned off."""
    same_colour = replace(PLAIN, partial_color=PLAIN.text_color)
    ov = make(qtbot, style=same_colour)
    m = ov.renderer.metrics
    words = "ooo ooo"
    ov.on_event(Partial(words))
    length, y = longest_run(ov.grab().toImage(), (255, 0, 0))
    assert length >= m.horizontalAdvance(words) - 2  # under both words and the space
    text_rect = ov._text_rect()
    baseline = text_rect.bottom() + 1 - ov.renderer.line_height + m.ascent() + (ov.renderer.line_height - m.height()) // 2
    assert baseline < y <= baseline + m.descent()
    ov.on_event(Final(words, 0.0, 1.0))
    assert longest_run(ov.grab().toImage(), (255, 0, 0))[0] < m.horizontalAdvance("ooo")
    ov.set_style(replace(same_colour, underline_live=False))
    ov.on_event(Partial("ooo ooo ooo"))
    assert longest_run(ov.grab().toImage(), (255, 0, 0))[0] < m.horizontalAdvance("ooo")


def test_shows_only_last_n_lines_bottom_anchored(qtbot):
    ov = make(qtbot, style=replace(PLAIN, lines=2))
    for i, word in enumerate(["one", "two", "three", "four", "five"]):
        ov.on_event(Final(word, i, i + 0.5))
    rows = ov.renderer.visible_rows(600, 2)
    assert [text for _, _, text in rows] == ["four", "five"]
    ov.on_event(Partial("six"))
    assert [text for _, _, text in ov.renderer.visible_rows(600, 2)] == ["five", "six"]


def test_updates_are_o1_whatever_the_session_length(qtbot):
    ov = make(qtbot)
    r = ov.renderer
    for i in range(3000):
        ov.on_event(Partial(f"word {i}"))
        ov.on_event(Final(f"word {i} done", i, i + 1))
        r.visible_rows(600, 3)
    assert len(r.lines) == MAX_LINES  # only as many as the largest style shows are kept
    before = r.layouts_made
    for _ in range(5):
        r.visible_rows(600, 3)
    assert r.layouts_made == before  # rows are cached: repaints wrap nothing
    ov.on_event(Final("one more", 0, 1))
    r.visible_rows(600, 3)
    assert r.layouts_made == before + 1  # a new line wraps itself only


def shown_rows(ov: CaptionOverlay) -> list[str]:
    """The caption rows a paint draws now, top to bottom."""
    return ["".join(run[0] for run in runs) for _, runs in ov.renderer.row_layout(ov._text_rect())]


def test_a_preview_of_fewer_lines_put_back_shows_the_same_captions(qtbot):
    """Settings previewing 1 line, then Cancel, left 1 caption under a blank
    row until new finals came (even 3 -> 2 -> 3 with the spin box kept 2)."""
    ov = make(qtbot)
    for i, text in enumerate(["alpha bravo", "charlie delta", "echo foxtrot"]):
        ov.on_event(Final(text, i, i + 1))
    assert shown_rows(ov) == ["alpha bravo", "charlie delta", "echo foxtrot"]
    for lines in (2, 3, 1):
        ov.set_style(replace(PLAIN, lines=lines), remember=False)
    assert shown_rows(ov) == ["echo foxtrot"]  # the preview shows the newest only
    ov.set_style(PLAIN, remember=False)  # Cancel
    assert shown_rows(ov) == ["alpha bravo", "charlie delta", "echo foxtrot"]
    ov.set_style(replace(PLAIN, lines=5))  # more lines than were ever shown: the older ones come back too
    ov.on_event(Final("golf", 3, 4))
    assert shown_rows(ov) == ["alpha bravo", "charlie delta", "echo foxtrot", "golf"]


def test_long_captions_wrap_within_width(qtbot):
    r = CaptionRenderer(PLAIN)
    text = "this caption is much too long to fit on one narrow line of the overlay window"
    r.add_final(text)
    rows = r.visible_rows(220, 10)
    assert len(rows) > 2
    assert " ".join(t for _, _, t in rows) == text
    assert all(r.metrics.horizontalAdvance(t) <= 220 for _, _, t in rows)


def test_speaker_labels_when_speaker_changes(qtbot):
    r = CaptionRenderer(replace(PLAIN, lines=5))
    r.add_final("hello", "0")
    r.add_final("again", "0")
    r.add_final("hi there", "1")
    r.set_partial("and", "0")
    assert [line.full for line in r.lines] == ["Speaker 1: hello", "again", "Speaker 2: hi there"]
    assert r.partial.full == "Speaker 1: and"
    off = CaptionRenderer(replace(PLAIN, speaker_labels=False))
    off.add_final("hello", "0")
    assert off.lines[0].full == "hello"


def test_gap_is_shown(qtbot):
    ov = make(qtbot)
    ov.on_event(Gap(1.0, 3.0, "network"))
    assert ov.renderer.lines[-1].text == "[…]"


async def test_clears_after_silence(qtbot):
    ov = make(qtbot, style=replace(PLAIN, clear_after=0.1))
    ov.on_event(Final("alpha", 0, 1))
    assert not ov.renderer.empty
    await asyncio.sleep(0.05)
    ov.on_event(Partial("bravo"))  # speech restarts the silence timer
    await asyncio.sleep(0.07)
    assert not ov.renderer.empty
    await asyncio.sleep(0.2)
    assert ov.renderer.empty


def test_styling_font_size_colours_outline(qtbot):
    ov = make(qtbot)
    small = ov.height()
    ov.set_style(replace(PLAIN, font_size=96))
    assert ov.renderer.font.pointSize() == 96
    assert ov.height() > small * 2  # fits 3 lines of the new size
    clear_bg = replace(PLAIN, background_opacity=0.0, text_color="#ffffff", effect="outline", effect_color="#0000ff")
    ov.set_style(clear_bg)
    ov.resize(700, ov.height_for_lines())
    ov.on_event(Final("WWW MMM", 0, 1))
    img = ov.grab().toImage()
    assert count_color(img, (0, 0, 255)) > 20  # the outline is drawn
    ov.set_style(replace(clear_bg, effect="none"))
    img = ov.grab().toImage()
    assert count_color(img, (0, 0, 255)) == 0
    ov.set_style(replace(clear_bg, effect="shadow"))
    assert count_color(ov.grab().toImage(), (0, 0, 255)) > 20
    # background opacity is real alpha (translucent window)
    ov.set_style(replace(PLAIN, background_opacity=0.5))
    c = ov.grab().toImage().pixelColor(ov.width() // 2, ov.height() - 4)
    assert 100 <= c.alpha() <= 150


def test_status_at_a_glance(qtbot):
    ov = make(qtbot)
    assert ov.status_text()[0] == "Not captioning"
    ov.on_event(StateChanged(SessionState.CONNECTING))
    assert ov.status_text()[0] == "Connecting…"
    ov.on_event(StateChanged(SessionState.LIVE))
    assert ov.status_text() == ("Live", "live")
    ov.set_lag(6.2)
    assert ov.status_text() == ("Live · behind by 6 s", "behind")
    ov.on_event(StateChanged(SessionState.RECONNECTING, "network error: reset"))
    assert ov.status_text()[0] == "Reconnecting… network error: reset"
    ov.set_status("error", "AudioPod rejected the API key")
    assert ov.status_text() == ("Error: AudioPod rejected the API key", "error")


def _mouse(ov, kind, local: QPoint, button=Qt.MouseButton.LeftButton):  # noqa: ANN001
    glob = ov.mapToGlobal(local)
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
    ev = QMouseEvent(kind, QPointF(local), QPointF(glob), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(ov, ev)


def test_drag_moves_and_edges_resize_when_unpinned(qtbot, settings):
    ov = make(qtbot, settings)
    ov.setGeometry(QRect(40, 40, 500, 150))
    ov.show()
    qtbot.waitExposed(ov)
    _mouse(ov, QEvent.Type.MouseButtonPress, QPoint(200, 80))
    _mouse(ov, QEvent.Type.MouseMove, QPoint(230, 100))
    _mouse(ov, QEvent.Type.MouseButtonRelease, QPoint(230, 100))
    assert ov.geometry() == QRect(70, 60, 500, 150)
    _mouse(ov, QEvent.Type.MouseButtonPress, QPoint(498, 70))  # right edge
    _mouse(ov, QEvent.Type.MouseMove, QPoint(548, 70))
    _mouse(ov, QEvent.Type.MouseButtonRelease, QPoint(548, 70))
    assert ov.geometry() == QRect(70, 60, 550, 150)
    assert settings.overlay_geometry(settings.last_screen) == QRect(70, 60, 550, 150)
    ov.set_pinned(True)
    _mouse(ov, QEvent.Type.MouseButtonPress, QPoint(200, 80))
    _mouse(ov, QEvent.Type.MouseMove, QPoint(260, 120))
    assert ov.geometry() == QRect(70, 60, 550, 150)  # pinned: no drag


def test_position_and_size_remembered_per_screen(qtbot, settings_path):
    s1 = Settings(open_qsettings(str(settings_path)))
    ov = make(qtbot, s1)
    ov.setGeometry(QRect(120, 90, 420, 140))
    ov.save_geometry()
    s1.sync()
    screen = QGuiApplication.primaryScreen()
    key = s1.last_screen
    assert key.endswith(f"@{screen.geometry().width()}x{screen.geometry().height()}")
    s2 = Settings(open_qsettings(str(settings_path)))
    again = CaptionOverlay(s2, PLAIN)
    qtbot.addWidget(again)
    assert again.geometry() == QRect(120, 90, 420, 140)


def test_comes_back_when_off_screen(qtbot, settings):
    ov = make(qtbot, settings)
    ov.setGeometry(QRect(120, 90, 420, 140))
    ov.save_geometry()
    ov.move(5000, 4000)  # its screen went away
    ov.ensure_on_screen()
    area = QGuiApplication.primaryScreen().availableGeometry()
    assert area.contains(ov.geometry().center())
    assert ov.geometry() == QRect(120, 90, 420, 140)  # where it was on this screen


def test_saved_geometry_larger_than_screen_is_fitted(qtbot, settings):
    screen = QGuiApplication.primaryScreen()
    from captioner.ui.overlay import screen_key

    settings.set_overlay_geometry(screen_key(screen), QRect(-300, 5000, 9000, 200))
    ov = make(qtbot, settings)
    ov.restore_geometry()
    assert screen.availableGeometry().contains(ov.geometry())


def test_moved_to_the_top_or_bottom_without_a_mouse_and_remembered(qtbot, settings_path):
    settings = Settings(open_qsettings(str(settings_path)))
    ov = make(qtbot, settings)
    ov.setGeometry(QRect(37, 211, 500, 150))
    ov.show()
    qtbot.waitExposed(ov)
    area = QGuiApplication.primaryScreen().availableGeometry()
    margin = int(area.height() * 0.06)
    centred_x = area.left() + (area.width() - 500) // 2
    ov.place("top")
    assert ov.geometry() == QRect(centred_x, area.top() + margin, 500, 150)  # its size kept
    ov.place("bottom")
    bottom = QRect(centred_x, area.bottom() + 1 - margin - 150, 500, 150)
    assert ov.geometry() == bottom
    qtbot.waitUntil(lambda: settings.overlay_geometry(settings.last_screen) == bottom, timeout=3000)
    settings.sync()
    again = CaptionOverlay(Settings(open_qsettings(str(settings_path))), PLAIN)
    qtbot.addWidget(again)
    assert again.geometry() == bottom  # where it starts next time


def test_a_hidden_or_oversized_overlay_is_placed_inside_the_screen(qtbot, settings):
    ov = make(qtbot, settings)
    area = QGuiApplication.primaryScreen().availableGeometry()
    ov.setGeometry(QRect(area.left() - 50, area.top(), area.width() + 400, 150))
    ov.place("bottom")  # never shown: no moveEvent, still remembered
    assert area.contains(ov.geometry()) and ov.geometry().bottom() < area.bottom()
    qtbot.waitUntil(lambda: settings.overlay_geometry(settings.last_screen) == ov.geometry(), timeout=3000)
