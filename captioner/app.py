"""The desktop app: QApplication + qasync loop, the overlay, the control
window, the tray and the settings dialog, wired together.

Start-up shows the overlay first: before its first paint only PySide6, the
settings and the overlay are imported (no asyncio, qasync, numpy, keyring,
sounddevice, websockets or provider modules) and nothing else is built. The
control window, the loop and the rest come right after; device listing and
the key check run in worker threads after that.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

from PySide6.QtCore import QEventLoop, QObject, QTimer
from PySide6.QtWidgets import QApplication

from captioner.settings import Settings
from captioner.ui.overlay import CaptionOverlay
from captioner.ui.theme import CONTROL_STYLE, app_icon

if TYPE_CHECKING:
    import asyncio

    from captioner.ui.controller import CaptionController

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="captioner", description="Open the Captioner app.")
    p.add_argument("--provider", help="provider id (local = built in, no key; uglabs, audiopod, voicerun, smallest, inworld)")
    p.add_argument("--device", help="input device name (or part of it); default input if omitted")
    p.add_argument("--endpoint", help="replace the provider's default URL")
    p.add_argument("--start", action="store_true", help="start captioning at once")
    return p


class MainThreadGC(QObject):
    """Run Python's cyclic GC on the GUI thread only.

    Left automatic, a collection can run in any thread that allocates
    (asyncio.to_thread workers, the journal writer); freeing a QObject there
    leaves Qt holding dangling timer pointers and the app crashes later. So
    automatic GC is off and this collects on the GUI thread instead, once a
    second: after the event loop's drains (`ride`), or on its timer when idle."""

    def __init__(self, interval_ms: int = 1000) -> None:
        super().__init__()
        self._threshold = gc.get_threshold()
        gc.disable()
        self._interval = interval_ms / 1000
        self._due = 0.0
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        self._timer.start(interval_ms)

    def ride(self, loop: Any) -> None:
        """Check on the event loop's drains, at most once an interval: while
        captioning the app wakes ~20 times a second anyway, and the timer
        (now twice as slow) is only the fallback for an idle app."""
        self._timer.setInterval(round(self._interval * 2000))
        loop.after_drain = self.tick

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self._due:
            self.check()

    def check(self) -> None:
        self._due = time.monotonic() + self._interval
        if self._timer.isActive():
            self._timer.start()  # the fallback waits a full interval again
        c0, c1, c2 = gc.get_count()
        t0, t1, t2 = self._threshold
        if c0 > t0:
            gc.collect(0)
            if c1 > t1:
                gc.collect(1)
                if c2 > t2:
                    gc.collect(2)

    def freeze_startup(self) -> None:
        """Move everything start-up made (modules, Qt wrappers, ~45,000
        objects) out of the collector's sight: a full collection then takes
        ~0 ms on the GUI thread instead of ~11 ms (bench/RESULTS.md)."""
        gc.collect()
        gc.freeze()

    def stop(self) -> None:
        self._timer.stop()
        gc.enable()


class CaptionerApp(QObject):
    """Owns the windows and the controller; the tray and hotkeys call into it."""

    def __init__(
        self,
        settings: Settings,
        args: argparse.Namespace | None = None,
        controller: CaptionController | None = None,
        tray_available: bool | None = None,
        device_lister: Callable[[], list[Any]] | None = None,
        overlay: CaptionOverlay | None = None,
    ) -> None:
        import asyncio

        from PySide6.QtWidgets import QSystemTrayIcon

        from captioner.ui.control_window import ControlWindow, list_devices
        from captioner.ui.controller import CaptionController

        super().__init__()
        self.settings = settings
        self.args = args or build_parser().parse_args([])
        self.controller = controller or CaptionController()
        self.overlay = overlay or CaptionOverlay(settings)
        device_lister = device_lister or list_devices
        if tray_available is None:
            tray_available = QSystemTrayIcon.isSystemTrayAvailable()
        self.window = ControlWindow(settings, self.controller, self.overlay, tray_available, device_lister)
        self.window.setStyleSheet(CONTROL_STYLE)
        self.window.setWindowIcon(app_icon())
        self.window.settings_requested.connect(self.open_settings)
        self.window.quit_requested.connect(self.quit)
        self.overlay.settings_requested.connect(self.open_settings)
        self.overlay.control_window_requested.connect(self.show_window)
        self.closed = asyncio.Event()
        from captioner.ui.tasks import TaskSet

        self.tasks = TaskSet()
        self.dialog: Any = None
        self.tray: Any = None
        if tray_available:
            from captioner.ui.tray import Tray

            self.tray = Tray(
                app_icon(), self.window.toggle_start, self.overlay.toggle_pinned, self.overlay.toggle_shown,
                self.show_window, self.quit, self.overlay.place,
            )
            self.controller.running_changed.connect(self.tray.set_running)
            self.overlay.pinned_changed.connect(self.tray.set_pinned)
            self.overlay.shown_changed.connect(self.tray.set_overlay_shown)
            self.controller.state_changed.connect(lambda s, d: self.tray.set_status(s if not d else f"{s}: {d}"))
            self.tray.set_pinned(self.overlay.pinned)

    # ------------------------------------------------------------- tasks
    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task | None:
        return self.tasks.spawn(coro)

    async def settle(self) -> None:
        await self.tasks.settle()
        await self.window.settle()

    # --------------------------------------------------------------- show
    def show(self) -> None:
        self.window.show()
        if self.settings.start_options().show_overlay and self.settings.overlay_visible:
            self.overlay.show()
        if self.overlay.isVisible():
            # The overlay may have been shown before this window (fast start):
            # keep it above it even where no window manager enforces "on top".
            self.overlay.raise_()
        if self.tray is not None:
            self.tray.set_overlay_shown(self.overlay.isVisible())
            self.tray.show()

    def show_window(self) -> None:
        self.window.showNormal()
        self.window.raise_()
        self.window.activateWindow()
        if self.overlay.isVisible():
            self.overlay.raise_()

    async def after_first_paint(self) -> None:
        """Apply the command line, list devices, check keys; start if asked."""
        a = self.args
        w = self.window
        if a.provider:
            w.provider_combo.setCurrentIndex(max(0, w.provider_combo.findData(a.provider)))
        if a.endpoint:
            w.endpoint_edit.setText(a.endpoint)
        if a.device:
            w.device_combo.addItem(a.device, a.device)
            w.device_combo.setCurrentIndex(w.device_combo.count() - 1)
        await w.load_devices()
        w.spawn(w.offer_recovery())  # unfinished sessions from a crash, in the background
        import asyncio  # not at import time: the first paint comes before it

        unsaved = await asyncio.to_thread(self.settings.unsaved_reason)
        if unsaved:
            w.add_note(f"Settings cannot be saved: {unsaved}. Changes last until Captioner closes.")
        if a.device:
            w.device_combo.setCurrentIndex(max(0, w.device_combo.findData(a.device)))
        await w.refresh_key_status()
        if a.start or self.settings.start_options().start_on_launch:
            await w.start()

    # ----------------------------------------------------------- settings
    def open_settings(self) -> None:
        from captioner.ui.settings_dialog import SettingsDialog

        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            self.dialog.activateWindow()
            return
        dialog = SettingsDialog(self.settings, self.window, self.window.provider_id)
        dialog.setStyleSheet(CONTROL_STYLE)
        # A preview is not remembered: only Save makes the overlay's new size the one to reopen with.
        dialog.style_previewed.connect(lambda style: self.overlay.set_style(style, remember=False))
        dialog.applied.connect(self._settings_applied)
        dialog.key_stored.connect(self.controller.key_stored)  # "no API key for …" goes
        dialog.finished.connect(lambda _r: self.spawn(self.window.refresh_key_status()))
        self.dialog = dialog
        dialog.show()
        self.spawn(dialog.load_key_states())

    def _settings_applied(self) -> None:
        self.window.apply_hotkeys(self.settings.hotkeys())
        self.overlay.set_style(self.settings.style())
        self.overlay.save_geometry()  # the size the saved style gave it (the preview did not remember it)

    def cancel_settings(self) -> None:
        """Close an open Settings dialog as Cancel does: a previewed style,
        and the overlay size it brought, are put back."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.reject()

    # --------------------------------------------------------------- quit
    def quit(self) -> None:
        self.spawn(self.shutdown())

    async def shutdown(self) -> None:
        """Stop captioning gracefully (the journal is closed), remember where
        the overlay was, and let the loop end. Settings left open count as
        Cancel, first: the overlay's size is saved for its saved style, not
        for a preview (a 3-line style in a full-height window at next start)."""
        self.cancel_settings()
        await self.controller.stop_and_wait()
        self.overlay.save_geometry()
        self.settings.sync()
        if self.tray is not None:
            self.tray.hide()
        self.overlay.hide_for_quit()
        self.window.hide()
        self.closed.set()


def show_overlay_first(settings: Settings, timeout_ms: int = 1000) -> CaptionOverlay:
    """Create the overlay and, if it opens at start, let it paint before
    anything else is imported or built (waits at most `timeout_ms`)."""
    overlay = CaptionOverlay(settings)
    if settings.start_options().show_overlay and settings.overlay_visible:
        waiter = QEventLoop()
        overlay.first_painted.connect(waiter.quit)
        timer = QTimer(waiter)
        timer.setSingleShot(True)
        timer.timeout.connect(waiter.quit)
        timer.start(timeout_ms)
        overlay.show()
        if not overlay.has_painted:
            waiter.exec()
        timer.stop()
        overlay.first_painted.disconnect(waiter.quit)
    return overlay


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.provider:
        from captioner.stt.registry import PROVIDERS

        if args.provider not in PROVIDERS:
            print(f"error: unknown provider {args.provider!r}; choose one of: {', '.join(PROVIDERS)}", file=sys.stderr)
            return 2

    held = _hold_signals()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Captioner")
    app.setOrganizationName("Captioner")
    app.setDesktopFileName("captioner")
    app.setQuitOnLastWindowClosed(False)
    collector = MainThreadGC()
    from captioner import logs

    logs.setup_logging(False)
    settings = Settings()
    overlay = show_overlay_first(settings)

    # After the overlay's first paint: the loop, the control window and the rest.
    import asyncio

    from captioner.ui.event_loop import CaptionerEventLoop

    app.setWindowIcon(app_icon())
    loop = CaptionerEventLoop(app)
    asyncio.set_event_loop(loop)
    collector.ride(loop)
    capp = CaptionerApp(settings, args, overlay=overlay)
    capp.show()
    # after the first paint: nothing that can block or is slow to import before it
    if os.environ.get("CAPTIONER_SMOKE_TEST") == "1":
        # Packaging smoke test: open, finish start-up (devices, keyring), close cleanly.
        async def smoke() -> None:
            await capp.after_first_paint()
            print("smoke test: first paint", file=sys.stderr, flush=True)
            await capp.shutdown()

        QTimer.singleShot(0, lambda: capp.spawn(smoke()))
    else:
        async def start_up() -> None:
            await capp.after_first_paint()
            collector.freeze_startup()

        QTimer.singleShot(0, lambda: capp.spawn(start_up()))
    signalled = _quit_on_signals(loop, capp, held)
    with loop:
        try:
            loop.run_until_complete(capp.closed.wait())
        except KeyboardInterrupt:
            pass
        loop.run_until_complete(capp.settle())
    collector.stop()
    # As the CLI: Ctrl-C is how one ends it; SIGTERM and SIGHUP say 128 + the signal.
    return 128 + signalled[0] if signalled and signalled[0] != signal.SIGINT else 0


_QUIT_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class _HeldSignals(list):
    """Quit signals that came during start-up, and the handlers they replaced."""

    previous: dict[int, Any]


def _hold_signals() -> _HeldSignals:
    """Until the loop takes them (`_quit_on_signals`), Ctrl-C, SIGTERM and
    SIGHUP are noted, not fatal: start-up takes seconds on a busy machine,
    and a signal in them killed the app on the spot (SIGTERM) or printed a
    KeyboardInterrupt traceback (Ctrl-C). The same signal twice still ends
    it at once."""
    held = _HeldSignals()
    held.previous = {}

    def hold(signum: int, _frame: Any) -> None:
        if held:
            os._exit(128 + signum)
        held.append(signum)

    for name in _QUIT_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None:
            try:
                held.previous[signum] = signal.signal(signum, hold)
            except (ValueError, OSError):  # not the main thread (tests), or not settable here
                pass
    return held


def _quit_on_signals(loop: Any, capp: CaptionerApp, held: _HeldSignals | None = None) -> list[int]:
    """Ctrl-C in the terminal, SIGTERM and SIGHUP quit as the Quit button
    does (the session finishes, its journal is closed); the same signal again
    ends the process at once. Without this, Ctrl-C printed a traceback from
    whichever Qt callback was running and the app went on. A signal `held`
    during start-up quits now."""
    received: list[int] = []

    def on_signal(signum: int) -> None:
        if received:
            os._exit(128 + signum)
        received.append(signum)
        capp.quit()

    for name in _QUIT_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        try:
            loop.add_signal_handler(signum, on_signal, signum)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows: Ctrl-C stays Python's
            if held is not None and signum in held.previous:
                signal.signal(signum, held.previous[signum])
    if held:
        loop.call_soon(on_signal, held[0])
    return received
