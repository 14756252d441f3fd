"""The overlay's own chrome as a user meets it: it comes back after Quit if it
was shown, the status line is never cut short by the unpinned hint, the
unpinned edge shows on a light panel, and a style preview that pushed the
overlay against the screen edge puts it back when the style goes back."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QGuiApplication, QImage

from captioner.app import CaptionerApp, build_parser
from captioner.settings import Settings, open_qsettings
from captioner.ui.controller import CaptionController
from captioner.ui.overlay import CaptionOverlay
from captioner.ui.theme import PRESETS, OverlayStyle

STYLE = OverlayStyle(font_family="DejaVu Sans", font_size=28, lines=2, clear_after=0)


def make(qtbot, settings=None, style: OverlayStyle = STYLE, width: int = 700) -> CaptionOverlay:  # noqa: ANN001
    ov = CaptionOverlay(settings, style)
    qtbot.addWidget(ov)
    ov.resize(width, ov.height_for_lines())
    return ov


async def started_app(qtbot, settings: Settings) -> CaptionerApp:  # noqa: ANN001
    capp = CaptionerApp(settings, build_parser().parse_args([]), CaptionController(), tray_available=False,
                        device_lister=lambda: [])
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    capp.show()
    await capp.after_first_paint()
    return capp


async def test_a_shown_overlay_is_shown_again_after_quit(qtbot, settings_path):
    settings = Settings(open_qsettings(str(settings_path)))
    capp = await started_app(qtbot, settings)
    assert capp.overlay.isVisible() and settings.overlay_visible
    await capp.shutdown()
    assert not capp.overlay.isVisible()
    settings.sync()
    again = Settings(open_qsettings(str(settings_path)))
    assert again.overlay_visible  # quitting is not the user hiding it


async def test_an_overlay_the_user_hid_stays_hidden_after_quit(qtbot, settings_path):
    settings = Settings(open_qsettings(str(settings_path)))
    capp = await started_app(qtbot, settings)
    capp.overlay.set_shown(False)
    await capp.shutdown()
    settings.sync()
    assert not Settings(open_qsettings(str(settings_path))).overlay_visible


def test_the_status_is_never_cut_short_by_the_hint(qtbot):
    ov = make(qtbot, style=PRESETS["Large print"])
    status = "Live · behind by 12 s"
    fm = ov._status_metrics
    for width in (1400, 992, 700, 650, 420):
        shown, hint = ov.status_layout(status, width)
        assert shown == status, width  # whole, at every width that can hold it
        if hint:  # and the hint only where both fit
            assert ov._status_text_x() + fm.horizontalAdvance(status) + 10 + 24 + fm.horizontalAdvance(hint) + 20 <= width
    assert ov.status_layout(status, 1400)[1].startswith("drag to move")
    assert ov.status_layout(status, 650)[1] in ("right-click for menu", "")
    shown, hint = ov.status_layout(status, 120)  # narrower than the status itself: elided, no hint
    assert shown.endswith("…") and hint == ""
    ov.set_pinned(True)
    assert ov.status_layout(status, 1400) == (status, "")  # pinned: no hint at all


def _edge_contrast(ov: CaptionOverlay) -> int:
    """Largest luminance difference along the top edge row of the overlay's panel, against the panel."""
    img = ov.grab().toImage().convertToFormat(QImage.Format.Format_ARGB32)
    panel = QColor(img.pixel(img.width() // 2, img.height() // 2)).lightness()
    y = 0
    best = 0
    for x in range(20, img.width() - 20):
        c = QColor(img.pixel(x, y))
        if c.alpha() > 100:
            best = max(best, abs(c.lightness() - panel))
    return best


def test_the_unpinned_edge_shows_on_a_light_panel(qtbot):
    light = replace(PRESETS["Dark on light"], font_family="DejaVu Sans", clear_after=0, background_opacity=1.0)
    ov = make(qtbot, style=light)
    assert _edge_contrast(ov) > 80  # was white dashes on a near-white panel
    dark = make(qtbot, style=replace(STYLE, background_color="#000000", background_opacity=1.0))
    assert _edge_contrast(dark) > 80


def test_a_previewed_style_puts_the_overlay_back_where_it_was(qtbot, settings):
    area = QGuiApplication.primaryScreen().availableGeometry()
    ov = make(qtbot, settings)
    start = QRect(area.left() + 100, area.bottom() - 260, 700, ov.height_for_lines())
    ov.setGeometry(start)
    ov.show()
    qtbot.waitExposed(ov)
    huge = replace(STYLE, font_size=120, lines=4)
    ov.set_style(huge)  # taller than the room above the bottom edge allows: clamped
    assert ov.geometry() != start
    ov.set_style(replace(huge, font_size=160))  # a still larger minimum size grows the window first
    ov.set_style(STYLE)  # the preview is cancelled
    assert ov.geometry() == start
    qtbot.waitUntil(lambda: not ov._save_timer.isActive(), timeout=2000)
    assert settings.overlay_geometry(settings.last_screen) == start


def test_a_move_after_a_style_change_is_kept_by_the_next_one(qtbot, settings):
    area = QGuiApplication.primaryScreen().availableGeometry()
    ov = make(qtbot, settings)
    ov.setGeometry(QRect(area.left() + 50, area.top() + 50, 700, ov.height_for_lines()))
    ov.show()
    qtbot.waitExposed(ov)
    ov.set_style(replace(STYLE, lines=3))
    moved = QRect(ov.geometry()).translated(30, 40)
    ov.setGeometry(moved)  # the user drags it
    ov.set_style(STYLE)
    assert ov.geometry().bottom() == moved.bottom() and ov.geometry().left() == moved.left()
    assert ov.geometry().height() == ov.height_for_lines()
