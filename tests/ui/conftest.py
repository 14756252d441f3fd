"""UI test set-up: async tests run on a qasync loop over pytest-qt's
QApplication; settings go to a temp INI file; journals to a temp folder."""

from __future__ import annotations

import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from captioner.settings import Settings, open_qsettings
from captioner.ui.event_loop import CaptionerEventLoop


def _app() -> QApplication:
    return QApplication.instance() or QApplication([])


def pytest_asyncio_loop_factories(config, item):  # noqa: ANN001
    return {"qasync": lambda: CaptionerEventLoop(_app())}


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    return tmp_path / "captioner.ini"


@pytest.fixture
def settings(qapp, settings_path: Path) -> Settings:  # noqa: ANN001
    return Settings(open_qsettings(str(settings_path)))


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("CAPTIONER_DATA_DIR", str(path))
    return path


@pytest.fixture(autouse=True)
def collect_on_main_thread():
    """Python's GC runs in whichever thread allocates; if it frees a QObject
    in a worker thread (asyncio.to_thread, the journal writer), Qt's timer
    list keeps a dangling pointer and a later test crashes. The app runs GC
    on the GUI thread only (captioner.app.MainThreadGC); tests do the same."""
    gc.disable()
    yield
    gc.collect()
    gc.enable()


@pytest.fixture
def a11y_app(qtbot, settings, monkeypatch):  # noqa: ANN001, ANN201
    """The app as a keyboard or screen-reader user meets it: no keys, a tray,
    no devices; its windows hidden again afterwards."""
    import shiboken6

    from captioner.app import CaptionerApp, build_parser

    for name in ("AUDIOPOD", "UGLABS", "VOICERUN", "SMALLEST", "INWORLD"):
        monkeypatch.delenv(f"CAPTIONER_{name}_KEY", raising=False)
    app = CaptionerApp(settings, build_parser().parse_args([]), tray_available=True, device_lister=lambda: [])
    qtbot.addWidget(app.window)
    qtbot.addWidget(app.overlay)
    yield app
    for shown in (app.window, app.overlay, app.tray):
        if shown is not None and shiboken6.isValid(shown):  # async tests: qtbot may have closed them first
            shown.hide()


def show_active(qtbot, w) -> None:  # noqa: ANN001
    """Shown and the active window (keyboard events go to it)."""
    w.show()
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=2000)
