"""Overlay styles (with accessibility presets), the control window's style
sheet and the app icon.

Styles are plain frozen dataclasses so settings can store them field by
field and the settings dialog can preview a change before it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

EFFECTS = ("none", "outline", "shadow")
ALIGNMENTS = ("left", "center")
MIN_FONT_PT, MAX_FONT_PT = 10, 160
MIN_LINES, MAX_LINES = 1, 10


@dataclass(frozen=True)
class OverlayStyle:
    """How captions look. Colours are #rrggbb strings."""

    font_family: str = ""  # empty: the system's sans-serif
    font_size: int = 28  # points
    bold: bool = True
    text_color: str = "#ffffff"
    partial_color: str = "#a8d8ff"  # the live, still-changing text
    speaker_color: str = "#ffd866"
    background_color: str = "#101418"
    background_opacity: float = 0.72  # 0 (none) … 1 (opaque)
    effect: str = "outline"  # none | outline | shadow
    effect_color: str = "#000000"
    align: str = "left"  # left keeps live text still while it grows
    lines: int = 3  # caption lines shown (1–10)
    clear_after: float = 8.0  # seconds of silence before the overlay clears; 0 = never
    speaker_labels: bool = True
    #: Live words are underlined as well as coloured: told apart without colour
    #: (WCAG 1.4.1), as input methods mark text that is not yet committed.
    underline_live: bool = True

    def normalized(self) -> "OverlayStyle":
        """Clamp every field into its valid range (settings files can be edited by hand)."""
        return replace(
            self,
            font_size=max(MIN_FONT_PT, min(MAX_FONT_PT, int(self.font_size))),
            background_opacity=max(0.0, min(1.0, float(self.background_opacity))),
            effect=self.effect if self.effect in EFFECTS else "outline",
            align=self.align if self.align in ALIGNMENTS else "left",
            lines=max(MIN_LINES, min(MAX_LINES, int(self.lines))),
            clear_after=max(0.0, min(600.0, float(self.clear_after))),
            text_color=_color_or(self.text_color, "#ffffff"),
            partial_color=_color_or(self.partial_color, "#a8d8ff"),
            speaker_color=_color_or(self.speaker_color, "#ffd866"),
            background_color=_color_or(self.background_color, "#101418"),
            effect_color=_color_or(self.effect_color, "#000000"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "OverlayStyle":
        """Build from loosely typed values (QSettings returns strings)."""
        base = cls()
        out: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in values:
                continue
            raw, default = values[f.name], getattr(base, f.name)
            try:
                if isinstance(default, bool):
                    out[f.name] = raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")
                elif isinstance(default, int):
                    out[f.name] = int(float(raw))
                elif isinstance(default, float):
                    out[f.name] = float(raw)
                else:
                    out[f.name] = str(raw)
            except (TypeError, ValueError, OverflowError):  # "inf" or 1e400 in a hand-edited file
                continue
        return replace(base, **out).normalized()


def _color_or(value: str, fallback: str) -> str:
    v = str(value).strip()
    if len(v) == 7 and v.startswith("#"):
        try:
            int(v[1:], 16)
            return v.lower()
        except ValueError:
            pass
    return fallback


#: Presets keep the user's line count, clearing delay, font family and live-word
#: underline; they set the look.
PRESETS: dict[str, OverlayStyle] = {
    "Standard": OverlayStyle(),
    "High contrast": OverlayStyle(
        font_size=32, bold=True, text_color="#ffffff", partial_color="#ffff00", speaker_color="#00ffff",
        background_color="#000000", background_opacity=1.0, effect="none",
    ),
    "Large print": OverlayStyle(
        font_size=48, bold=True, text_color="#ffffff", partial_color="#ffe08a", speaker_color="#9be9a8",
        background_color="#000000", background_opacity=0.85, effect="outline",
    ),
    "Yellow on black": OverlayStyle(
        font_size=30, bold=True, text_color="#ffd500", partial_color="#ffffff", speaker_color="#7fdbff",
        background_color="#000000", background_opacity=0.9, effect="none",
    ),
    "Dark on light": OverlayStyle(
        font_size=28, bold=True, text_color="#111111", partial_color="#1f4fa0", speaker_color="#8a2be2",
        background_color="#fafafa", background_opacity=0.92, effect="none", effect_color="#ffffff",
    ),
    "No background": OverlayStyle(
        font_size=30, bold=True, text_color="#ffffff", partial_color="#cfe8ff", background_opacity=0.0,
        effect="outline", effect_color="#000000",
    ),
}


def apply_preset(current: OverlayStyle, name: str) -> OverlayStyle:
    preset = PRESETS[name]
    return replace(preset, lines=current.lines, clear_after=current.clear_after, font_family=current.font_family,
                   underline_live=current.underline_live)


# ------------------------------------------------------------ resources

def _resources_dir() -> Path:
    """The installed `captioner.resources` package (wheel or editable install),
    else captioner/resources beside this package (the PyInstaller bundle packs
    the files there, as data: the package cannot be imported in it), else the
    repository's resources/ folder."""
    try:
        from importlib.resources import files

        folder = Path(str(files("captioner.resources")))
        if (folder / "icons").is_dir():
            return folder
    except (ImportError, TypeError, ValueError):
        pass
    package = Path(__file__).resolve().parents[1]
    bundled = package / "resources"
    return bundled if (bundled / "icons").is_dir() else package.parent / "resources"


RESOURCES = _resources_dir()

#: The keyboard focus ring: at least 3:1 against white, the light window
#: background and the unfocused borders it replaces (WCAG 1.4.11, 2.4.7).
FOCUS_COLOR = "#0b3d91"
#: Input borders: 3:1 against white, so a field's edge is visible.
FIELD_BORDER = "#8a94a3"

# Every focusable control gets a 2 px focus ring; the Start/Stop button, filled
# green or red, a 3 px black one (a blue ring would be under 2:1 on its fill).
# Rules on #startButton outrank plain QPushButton:focus, so it has its own.
# Combo boxes keep the native look (a style-sheet border loses their arrow):
# they paint FOCUS_COLOR themselves (control_window.FocusCombo).
CONTROL_STYLE = """
QMainWindow, QDialog { background: #f6f7f9; }
QGroupBox { font-weight: 600; border: 1px solid #d5d9e0; border-radius: 6px; margin-top: 14px; padding: 8px; background: #ffffff; }
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; color: #1d2733; }
QPushButton { padding: 5px 12px; border: 1px solid #b8c0cc; border-radius: 5px; background: #ffffff; color: #1d2733; }
QPushButton:hover { background: #eef3fb; }
QPushButton:focus { border: 2px solid FOCUS; padding: 4px 11px; }
QPushButton:disabled { color: #8a94a3; background: #f0f1f3; }
QPushButton#startButton { font-weight: 700; font-size: 15px; padding: 8px 22px; background: #1f7a3f; color: #ffffff; border: 1px solid #17612f; }
QPushButton#startButton:hover { background: #23904a; }
QPushButton#startButton[running="true"] { background: #b42318; border-color: #8f1c13; }
QPushButton#startButton[running="stopping"] { background: #e4e7ec; color: #1d2733; border-color: #8a94a3; }
QPushButton#startButton:focus { border: 3px solid #000000; padding: 6px 20px; }
QCheckBox { border: 2px solid transparent; border-radius: 4px; padding: 1px 2px; }
QCheckBox:focus { border-color: FOCUS; }
QLineEdit { border: 1px solid FIELD; border-radius: 4px; padding: 3px 5px; background: #ffffff; color: #1d2733; }
QLineEdit:focus { border: 2px solid FOCUS; padding: 2px 4px; }
QLineEdit:disabled { background: #f0f1f3; color: #8a94a3; border-color: #c3c9d2; }
QLabel#banner { background: #fff4d6; color: #4a3500; border: 1px solid #e6c66a; border-radius: 5px; padding: 6px 8px; }
QLabel#status { font-weight: 700; }
QPlainTextEdit { background: #ffffff; color: #111111; border: 1px solid #d5d9e0; border-radius: 4px; font-size: 14px; }
QPlainTextEdit:focus { border: 2px solid FOCUS; }
QProgressBar { border: 1px solid #b8c0cc; border-radius: 3px; background: #eceff3; height: 12px; text-align: center; }
QProgressBar::chunk { background: #2e9d57; border-radius: 2px; }
""".replace("FOCUS", FOCUS_COLOR).replace("FIELD", FIELD_BORDER)


def icon_path(name: str = "captioner.svg") -> Path:
    return RESOURCES / "icons" / name


def app_icon() -> Any:
    """The app icon: the SVG and its PNG renderings when present, else drawn."""
    from PySide6.QtGui import QIcon

    icon = QIcon()
    folder = RESOURCES / "icons"
    for size in (16, 24, 32, 48, 64, 128, 256):
        png = folder / f"captioner-{size}.png"
        if png.exists():
            icon.addFile(str(png))
    svg = folder / "captioner.svg"
    if svg.exists():
        icon.addFile(str(svg))
    if icon.isNull():
        icon = QIcon(draw_icon(64))
    return icon


def draw_icon(size: int) -> Any:
    """The icon painted with Qt (a fallback when the resource files are not shipped)."""
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QColor, QPainter, QPixmap

    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = size / 64
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#1b2a41"))
    p.drawRoundedRect(QRectF(4 * s, 8 * s, 56 * s, 48 * s), 9 * s, 9 * s)
    p.setBrush(QColor("#ffffff"))
    p.drawRoundedRect(QRectF(12 * s, 22 * s, 40 * s, 7 * s), 3.5 * s, 3.5 * s)
    p.setBrush(QColor("#7cc4ff"))
    p.drawRoundedRect(QRectF(12 * s, 35 * s, 26 * s, 7 * s), 3.5 * s, 3.5 * s)
    p.end()
    return pm
