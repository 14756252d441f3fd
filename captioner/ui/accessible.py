"""Screen-reader support that Qt does not give a widget for free.

- `announce`: a status change is spoken without moving the focus (WCAG 4.1.3),
  which an accessible-description change on an unfocused label never is.
- `set_role`: the custom-painted widgets (live_widgets) would be a bare
  "client" with nothing in it; they get a role like the widget they replace.
- `ThrottledDescription`: their text or value reaches screen readers as an
  accessible description, at most a few times a second, so a value that
  changes ten times a second costs one time comparison per change and never
  floods the accessibility bus; with no assistive technology listening, a
  change costs one call and nothing else.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent
from PySide6.QtWidgets import QAccessibleWidget, QWidget

#: Sends an accessibility event (tests replace it to see what was sent).
dispatch: Callable[[Any], None] = QAccessible.updateAccessibility
#: Whether an assistive technology listens (Qt turns accessibility on when
#: one connects); tests replace it.
active: Callable[[], bool] = QAccessible.isActive


def announce(obj: QObject, text: str, assertive: bool = False) -> None:
    """Have screen readers say `text` now, focus left where it is: politely
    (after what is being read) for a state, assertively for an error."""
    if not text:
        return
    event = QAccessibleAnnouncementEvent(obj, text)
    event.setPoliteness(
        QAccessible.AnnouncementPoliteness.Assertive if assertive else QAccessible.AnnouncementPoliteness.Polite
    )
    dispatch(event)


_ROLES: dict[str, QAccessible.Role] = {}


def _factory(key: str, obj: QObject) -> Any:
    role = _ROLES.get(key)
    if role is None or not isinstance(obj, QWidget):
        return None
    # A C++ interface with only the role changed: name and description come
    # from the widget's own properties, and no Python runs when queried.
    return QAccessibleWidget(obj, role, "")


def set_role(widget_class: type, role: QAccessible.Role) -> None:
    """Expose instances of `widget_class` (by its Qt class name) with `role`."""
    if not _ROLES:
        QAccessible.installFactory(_factory)
    _ROLES[widget_class.__name__] = role


class ThrottledDescription:
    """A widget's accessible description, from `describe()`, brought up to date
    at most once per `every_s` after `changed()`: the newest state of a burst
    is described when the interval is over. `changed()` costs a timer check
    and a clock read; the text is made only when it is set."""

    def __init__(self, widget: QWidget, describe: Callable[[], str], every_s: float = 0.5) -> None:
        self.widget = widget
        self.describe = describe
        self.every_s = every_s
        self._set_at = -1e9
        self._timer = QTimer(widget)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._apply)

    def changed(self) -> None:
        if not active():
            # Nobody listens: no timer, no description (the live app makes
            # ~15 changes a second; a timer of its own is a wake-up it pays for).
            return
        if self._timer.isActive():
            return  # the pending update describes the newest state
        wait = self.every_s - (time.monotonic() - self._set_at)
        if wait <= 0:
            self._apply()
        else:
            self._timer.start(max(1, round(wait * 1000)))

    def flush(self) -> None:
        """Describe the newest state now."""
        self._timer.stop()
        self._apply()

    def _apply(self) -> None:
        self._set_at = time.monotonic()
        text = self.describe()
        if self.widget.accessibleDescription() != text:
            self.widget.setAccessibleDescription(text)
