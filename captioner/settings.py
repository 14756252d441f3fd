"""Typed settings over QSettings. No secrets here, ever: API keys live in the
OS keyring (captioner.keys). A guard refuses any setting whose name looks
like a secret, so a future mistake fails loudly instead of writing a key to
a plain-text file.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QRect, QSettings

from captioner.stt.urls import carries_secret
from captioner.ui.theme import OverlayStyle

log = logging.getLogger(__name__)

ORGANIZATION = "Captioner"
APPLICATION = "Captioner"
SETTINGS_ENV = "CAPTIONER_SETTINGS_FILE"  # an INI file instead of the platform store (tests, screenshots)

#: A setting named for a secret: the name ends with one of these words
#: ("api_key", "access_token"), not merely contains one ("token_margin_s",
#: a duration, is not a secret).
_FORBIDDEN = re.compile(r"(^|[_\-.])(api_?key|key|secret|password|passwd|token|credentials?)$", re.I)

DEFAULT_HOTKEYS = {
    "toggle_pin": "Ctrl+Shift+L",
    "toggle_overlay": "Ctrl+Shift+O",
    "start_stop": "Ctrl+Shift+R",
}
HOTKEY_LABELS = {
    "toggle_pin": "Pin / unpin the overlay",
    "toggle_overlay": "Show / hide the overlay",
    "start_stop": "Start / stop captioning",
}


class SecretInSettings(ValueError):
    """A caller tried to store something that looks like a secret in QSettings."""


def open_qsettings(path: str | None = None) -> QSettings:
    """The app's QSettings: `path` (or $CAPTIONER_SETTINGS_FILE) as INI, else the platform store."""
    path = path or os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


@dataclass(frozen=True)
class StartOptions:
    start_on_launch: bool = False
    show_overlay: bool = True


class Settings:
    """Everything the app remembers between runs, with types and defaults."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.qs = qsettings if qsettings is not None else open_qsettings()
        #: What was removed because it held a secret, in words, for the window to say once.
        self.removed_secrets: list[str] = []

    # -------------------------------------------------------- primitives
    def _check(self, name: str) -> None:
        if _FORBIDDEN.search(name.rsplit("/", 1)[-1]):
            raise SecretInSettings(f"refusing to store {name!r} in settings: secrets belong in the keyring")

    def _set(self, name: str, value: Any) -> None:
        self._check(name)
        if isinstance(value, str) and carries_secret(value):
            raise SecretInSettings(f"refusing to store {name!r} in settings: its value holds a key or password")
        self.qs.setValue(name, value)

    def _str(self, name: str, default: str = "") -> str:
        value = self.qs.value(name, default)
        return default if value is None else str(value)

    def _bool(self, name: str, default: bool) -> bool:
        value = self.qs.value(name, default)
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("1", "true", "yes", "on")

    def _float(self, name: str, default: float) -> float:
        try:
            return float(self.qs.value(name, default))
        except (TypeError, ValueError):
            return default

    def sync(self) -> None:
        self.qs.sync()

    def unsaved_reason(self) -> str | None:
        """Why changes cannot be saved (the file is a folder, or not
        writable), in words; None when they can. QSettings itself only keeps
        them in memory and says nothing. (File I/O: call it off the loop.)"""
        path = Path(self.file_name)
        self.qs.sync()
        if path.is_dir():
            return f"{path} is a folder, not a settings file"
        if self.qs.status() != QSettings.Status.NoError:
            return f"{path} could not be written"
        target = path if path.exists() else next((d for d in path.parents if d.exists()), None)
        if target is not None and not os.access(target, os.W_OK):
            return f"{target} is not writable"
        return None

    @property
    def file_name(self) -> str:
        return self.qs.fileName()

    # ---------------------------------------------------------- captioning
    @property
    def provider(self) -> str:
        """The provider last used; empty before the first session (the window
        then picks a cloud provider with a key, else the built-in engine)."""
        return self._str("session/provider", "")

    @provider.setter
    def provider(self, value: str) -> None:
        self._set("session/provider", value)

    @property
    def device(self) -> str:
        """Input device name; empty means the system default."""
        return self._str("session/device", "")

    @device.setter
    def device(self, value: str | None) -> None:
        self._set("session/device", value or "")

    @property
    def mix_device(self) -> str:
        """System-audio device captioned along with the input (by name); empty: the first one."""
        return self._str("session/mix_device", "")

    @mix_device.setter
    def mix_device(self, value: str | None) -> None:
        self._set("session/mix_device", value or "")

    @property
    def mix_enabled(self) -> bool:
        """"Also caption what I hear": mix the input with `mix_device`."""
        return self._bool("session/mix_enabled", False)

    @mix_enabled.setter
    def mix_enabled(self, value: bool) -> None:
        self._set("session/mix_enabled", bool(value))

    def endpoint(self, provider: str) -> str:
        """The remembered endpoint. One that holds a key (written by an older
        version, or by hand) is removed from the file, never shown."""
        name = f"providers/{provider}/endpoint"
        value = self._str(name, "")
        if value and carries_secret(value):
            self._forget_secret(name, f"the saved endpoint for {provider} held a key or password")
            return ""
        return value

    def _forget_secret(self, name: str, what: str) -> None:
        self.qs.remove(name)
        self.removed_secrets.append(f"{what}: it was removed from the settings file. Keys belong in Settings → API keys.")
        log.warning("removed a setting that held a secret: %s", name)

    def set_endpoint(self, provider: str, value: str | None) -> None:
        """An endpoint with a key in it is not remembered (starting with it
        fails with an error that says where the key belongs)."""
        if value and carries_secret(value):
            return
        self._set(f"providers/{provider}/endpoint", value or "")

    def options(self, provider: str) -> dict[str, str]:
        """Provider options as strings (validated by the provider's options class on use)."""
        self.qs.beginGroup(f"providers/{provider}/options")
        try:
            values = {k: str(self.qs.value(k, "")) for k in self.qs.childKeys()}
        finally:
            self.qs.endGroup()
        for name, value in list(values.items()):
            if carries_secret(value):
                del values[name]
                self._forget_secret(f"providers/{provider}/options/{name}", f"the saved {name} for {provider} held a password")
        return values

    def set_options(self, provider: str, values: dict[str, Any]) -> None:
        """A value that holds a password (a URL with user:password@) is used
        for the session but not remembered, as with endpoints."""
        group = f"providers/{provider}/options"
        self.qs.remove(group)
        for name, value in values.items():
            text = "" if value is None else str(value)
            if not carries_secret(text):
                self._set(f"{group}/{name}", text)

    # ------------------------------------------------------------- overlay
    def style(self) -> OverlayStyle:
        self.qs.beginGroup("overlay/style")
        try:
            values = {k: self.qs.value(k) for k in self.qs.childKeys()}
        finally:
            self.qs.endGroup()
        return OverlayStyle.from_dict(values)

    def set_style(self, style: OverlayStyle, since: OverlayStyle | None = None) -> None:
        """With `since`, only the fields that differ from it are written."""
        before = since.normalized().to_dict() if since is not None else {}
        for name, value in style.normalized().to_dict().items():
            if name not in before or before[name] != value:
                self._set(f"overlay/style/{name}", value)

    def overlay_geometry(self, screen_key: str) -> QRect | None:
        """The overlay's rectangle on that screen, relative to the screen's origin."""
        raw = self._str(f"overlay/geometry/{_safe(screen_key)}", "")
        parts = raw.split(",")
        if len(parts) != 4:
            return None
        try:
            x, y, w, h = (int(p) for p in parts)
        except ValueError:
            return None
        if w <= 0 or h <= 0 or max(abs(x), abs(y), w, h) > 1_000_000:  # no screen is a million pixels wide
            return None
        return QRect(x, y, w, h)

    def set_overlay_geometry(self, screen_key: str, rect: QRect) -> None:
        self._set(f"overlay/geometry/{_safe(screen_key)}", f"{rect.x()},{rect.y()},{rect.width()},{rect.height()}")
        self._set("overlay/last_screen", screen_key)

    @property
    def last_screen(self) -> str:
        return self._str("overlay/last_screen", "")

    @property
    def pinned(self) -> bool:
        return self._bool("overlay/pinned", False)

    @pinned.setter
    def pinned(self, value: bool) -> None:
        self._set("overlay/pinned", bool(value))

    @property
    def overlay_visible(self) -> bool:
        return self._bool("overlay/visible", True)

    @overlay_visible.setter
    def overlay_visible(self, value: bool) -> None:
        self._set("overlay/visible", bool(value))

    # ------------------------------------------------------------- hotkeys
    def hotkeys(self) -> dict[str, str]:
        out = dict(DEFAULT_HOTKEYS)
        for action in DEFAULT_HOTKEYS:
            value = self.qs.value(f"shortcuts/{action}")
            if value is not None:
                out[action] = str(value)
        return out

    def set_hotkeys(self, values: dict[str, str]) -> None:
        for action, seq in values.items():
            if action in DEFAULT_HOTKEYS:
                self._set(f"shortcuts/{action}", seq)

    # --------------------------------------------------------------- start
    def start_options(self) -> StartOptions:
        return StartOptions(
            start_on_launch=self._bool("start/start_on_launch", False),
            show_overlay=self._bool("start/show_overlay", True),
        )

    def set_start_options(self, opts: StartOptions, since: StartOptions | None = None) -> None:
        """With `since`, only the options that differ from it are written."""
        if since is None or opts.start_on_launch != since.start_on_launch:
            self._set("start/start_on_launch", opts.start_on_launch)
        if since is None or opts.show_overlay != since.show_overlay:
            self._set("start/show_overlay", opts.show_overlay)


def _safe(key: str) -> str:
    """A screen key usable as one QSettings path segment."""
    return "".join(c if c.isalnum() or c in "-_.x@" else "_" for c in key) or "screen"
