"""The tray icon: start/stop, pin/unpin, show/hide and move the overlay, quit.

Only created when the desktop has a tray (`isSystemTrayAvailable()`); without
one the control window offers the same actions and says so.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget


class Tray(QSystemTrayIcon):
    def __init__(
        self,
        icon: QIcon,
        toggle_start: Callable[[], None],
        toggle_pin: Callable[[], None],
        toggle_overlay: Callable[[], None],
        show_window: Callable[[], None],
        quit_app: Callable[[], None],
        place_overlay: Callable[[str], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(icon, parent)
        self.setToolTip("Captioner")
        menu = QMenu()
        self.start_action = QAction("Start captioning", menu)
        self.start_action.triggered.connect(toggle_start)
        self.pin_action = QAction("Pin overlay (click-through)", menu)
        self.pin_action.triggered.connect(toggle_pin)
        self.overlay_action = QAction("Hide overlay", menu)
        self.overlay_action.triggered.connect(toggle_overlay)
        window = QAction("Control window", menu)
        window.triggered.connect(show_window)
        quit_action = QAction("Quit Captioner", menu)
        quit_action.triggered.connect(quit_app)
        for action in (self.start_action, self.pin_action, self.overlay_action):
            menu.addAction(action)
        # A pinned overlay over what the user needs to see is moved from here
        # in one click, without unpinning it to drag it.
        self.place_actions: dict[str, QAction] = {}
        if place_overlay is not None:
            for where in ("top", "bottom"):
                action = QAction(f"Move overlay to the {where}", menu)
                action.triggered.connect(lambda _checked=False, w=where: place_overlay(w))
                menu.addAction(action)
                self.place_actions[where] = action
        menu.addSeparator()
        menu.addAction(window)
        menu.addAction(quit_action)
        self._menu = menu  # keep a reference: the tray does not own the menu
        self.setContextMenu(menu)
        self._show_window = show_window
        self.activated.connect(self._activated)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self._show_window()

    def set_running(self, running: bool) -> None:
        self.start_action.setText("Stop captioning" if running else "Start captioning")

    def set_pinned(self, pinned: bool) -> None:
        self.pin_action.setText("Unpin overlay" if pinned else "Pin overlay (click-through)")

    def set_overlay_shown(self, shown: bool) -> None:
        self.overlay_action.setText("Hide overlay" if shown else "Show overlay")

    def set_status(self, text: str) -> None:
        self.setToolTip(f"Captioner — {text}" if text else "Captioner")
