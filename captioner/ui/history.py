"""Session history and recovery.

The History window lists every journaled session (newest first), shows a
session's transcript, renames, deletes and exports it. The recovery bar
offers, once per session, the journals a crash or power loss left
unfinished. Every read and write of a journal or an export runs in a worker
thread (asyncio.to_thread), so a large or slow disk never freezes the UI.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from captioner.ui.tasks import TaskSet

log = logging.getLogger(__name__)

FORMATS = ("srt", "vtt", "txt", "json")
FILTERS = {
    "srt": "SubRip subtitles (*.srt)",
    "vtt": "WebVTT subtitles (*.vtt)",
    "txt": "Plain text (*.txt)",
    "json": "Captioner JSON (*.json)",
}
COLUMNS = ("Started", "Title or source", "Provider", "Captions", "Duration", "")
UNFINISHED = "unfinished"
RUNNING = "recording now"
RUNNING_ELSEWHERE = "recording now (another Captioner)"

ActivePath = Callable[[], "Path | None"]


# ------------------------------------------------------------ formatting
def started_text(started_at: str, fallback: str = "") -> str:
    """A journal's UTC start time as local "YYYY-MM-DD HH:MM"."""
    try:
        when = _dt.datetime.fromisoformat(started_at)
    except (TypeError, ValueError):
        return fallback
    if when.tzinfo is not None:
        when = when.astimezone()
    return when.strftime("%Y-%m-%d %H:%M")


def duration_text(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


def captions_text(n: int) -> str:
    return f"{n} caption" if n == 1 else f"{n} captions"


def session_title(info: Any) -> str:
    return info.title or info.source or "—"


def _provider_name(provider_id: str) -> str:
    try:
        from captioner.stt.registry import PROVIDERS
    except ImportError:
        return provider_id
    p = PROVIDERS.get(provider_id)
    return p.name if p else provider_id


def _error_text(exc: BaseException) -> str:
    """An OSError in words (an ExportError's strerror already names the file)."""
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc)
        if exc.filename and str(exc.filename) not in text:
            text = f"{text}: {exc.filename}"
        return text
    return str(exc)


# --------------------------------------------------------- blocking work
@dataclass(frozen=True)
class Loaded:
    info: Any
    text: str


def _list() -> list[Any]:
    from captioner.transcript.journal import list_sessions

    return list_sessions()


def _load(path: Path) -> Loaded:
    from captioner.transcript.export import to_txt
    from captioner.transcript.journal import load_journal

    transcript, info = load_journal(path)
    return Loaded(info, to_txt(transcript))


def export_session(path: Path, fmt: str, target: str, recover: bool) -> None:
    """Export a journal; `recover` then marks an unfinished one recovered.
    Blocking: call it in a worker thread."""
    from captioner.transcript.export import export
    from captioner.transcript.journal import load_journal, mark_recovered

    transcript, info = load_journal(path)
    export(transcript, fmt, target)
    if recover and not info.finished:
        mark_recovered(path)


def unfinished_sessions(active: Path | None, before: _dt.datetime | None = None) -> list[Any]:
    """Journals a crash cut off, to offer for recovery: unfinished, held by
    no running session (this app's or another Captioner's), with at least one
    caption (without one there is nothing to recover: a session refused at
    once by an older version, say) and, with `before`, only those started
    earlier (this run's own are never crashed ones), newest first."""
    from captioner.transcript.journal import list_sessions

    def earlier(info: Any) -> bool:
        try:
            return before is None or _dt.datetime.fromisoformat(info.started_at) < before
        except (TypeError, ValueError):
            return True  # no readable start time: offer it

    return [
        i for i in list_sessions()
        if not i.finished and not i.running and i.segments > 0 and (active is None or i.path != active) and earlier(i)
    ]


def ask_export_target(parent: QWidget | None, stem: str, fmt: str | None = None) -> tuple[str, str] | None:
    """A save dialog; (path, format), the format from the chosen filter or suffix."""
    formats = [fmt] if fmt else list(FORMATS)
    filters = ";;".join(FILTERS[f] for f in formats)
    title = f"Export {fmt.upper()}" if fmt else "Export the session"
    path, chosen = QFileDialog.getSaveFileName(parent, title, f"{stem}.{formats[0]}", filters)
    if not path:
        return None
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in formats:
        return path, suffix
    picked = next((f for f in formats if FILTERS[f] == chosen), formats[0])
    return f"{path}.{picked}", picked


# ---------------------------------------------------------------- window
class HistoryWindow(QWidget):
    """Past sessions: list, read, rename, delete, export (non-modal window)."""

    recovered = Signal(Path)  # an unfinished session was exported and marked recovered
    deleted = Signal(Path)  # a session's journal is gone
    changed = Signal()  # the list was reloaded

    def __init__(self, active_path: ActivePath = lambda: None, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.active_path = active_path
        #: Hooks (tests replace them): the save path, the new title, a yes/no question.
        self.ask_save_path: Callable[[str, str], str | None] = self._ask_save_path
        self.ask_title: Callable[[str], str | None] = self._ask_title
        self.confirm: Callable[[str], bool] = self._confirm
        self.tasks = TaskSet(self.show_status)
        self.sessions: list[Any] = []
        self._shown: Path | None = None
        self.setWindowTitle("Captioner — session history")
        self.setAccessibleName("Session history")
        self._build()
        self.resize(900, 560)
        # Closed from the keyboard as other windows are (it is not a dialog,
        # so Esc would not close it by itself).
        self.close_shortcuts = [QShortcut(QKeySequence(key), self) for key in ("Esc", "Ctrl+W")]
        for shortcut in self.close_shortcuts:
            shortcut.activated.connect(self.close)

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        top = QHBoxLayout()
        intro = QLabel("Every session is saved as it runs. Choose one to read, rename, export or delete it.")
        intro.setWordWrap(True)
        top.addWidget(intro, 1)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setAccessibleName("Refresh")
        self.refresh_button.setAccessibleDescription("Reloads the list of sessions.")
        self.refresh_button.clicked.connect(lambda: self.tasks.spawn(self.load()))
        top.addWidget(self.refresh_button)
        outer.addLayout(top)

        split = QSplitter(Qt.Orientation.Vertical)
        self.list = QTreeWidget()
        self.list.setAccessibleName("Saved sessions, newest first")
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setHeaderLabels(list(COLUMNS))
        header = self.list.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.list.currentItemChanged.connect(self._selected)
        split.addWidget(self.list)
        self.view = QPlainTextEdit()
        self.view.setReadOnly(True)
        self.view.setAccessibleName("Transcript of the chosen session")
        self.view.setPlaceholderText("Choose a session to read its transcript.")
        split.addWidget(self.view)
        split.setSizes([220, 320])
        outer.addWidget(split, 1)

        actions = QHBoxLayout()
        self.rename_button = QPushButton("Rename…")
        self.rename_button.setAccessibleName("Rename the chosen session")
        self.rename_button.clicked.connect(self._rename_clicked)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setAccessibleName("Delete the chosen session")
        self.delete_button.clicked.connect(self._delete_clicked)
        actions.addWidget(self.rename_button)
        actions.addWidget(self.delete_button)
        actions.addStretch(1)
        actions.addWidget(QLabel("Export:"))
        self.export_buttons: dict[str, QPushButton] = {}
        for fmt in FORMATS:
            b = QPushButton(fmt.upper())
            b.setAccessibleName(f"Export the chosen session as {fmt.upper()}")
            b.clicked.connect(lambda _=False, f=fmt: self._export_clicked(f))
            self.export_buttons[fmt] = b
            actions.addWidget(b)
        outer.addLayout(actions)
        self.status_label = QLabel()
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)  # text from providers, devices and files: never markup
        self.status_label.setWordWrap(True)
        self.status_label.setAccessibleName("History status")
        outer.addWidget(self.status_label)
        self._enable()

    # ------------------------------------------------------------ state
    def current_info(self) -> Any:
        item = self.list.currentItem()
        return None if item is None else item.data(0, Qt.ItemDataRole.UserRole)

    def _enable(self) -> None:
        has = self.current_info() is not None
        for b in (self.rename_button, self.delete_button, *self.export_buttons.values()):
            b.setEnabled(has)

    def show_status(self, text: str) -> None:
        self.status_label.setText(text)

    def _state(self, info: Any, finished: str, unfinished: str) -> str:
        if self._is_active(info):
            return RUNNING
        if info.running:
            return RUNNING_ELSEWHERE
        return finished if info.finished else unfinished

    def _is_active(self, info: Any) -> bool:
        active = self.active_path()
        return active is not None and Path(active) == info.path

    async def settle(self) -> None:
        await self.tasks.settle()

    # ------------------------------------------------------------- list
    async def load(self, select: Path | None = None) -> None:
        """(Re)read every journal off the loop and fill the list."""
        keep = select or (self.current_info().path if self.current_info() is not None else None)
        self.refresh_button.setEnabled(False)
        try:
            sessions = await asyncio.to_thread(_list)
        except OSError as exc:
            self.show_status(f"Cannot read the saved sessions: {_error_text(exc)}")
            return
        finally:
            self.refresh_button.setEnabled(True)
        self.sessions = sessions
        self.list.blockSignals(True)
        self.list.clear()
        chosen = None
        for info in sessions:
            item = QTreeWidgetItem(self._row(info))
            item.setData(0, Qt.ItemDataRole.UserRole, info)
            item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setTextAlignment(4, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.list.addTopLevelItem(item)
            if keep is not None and info.path == keep:
                chosen = item
        self.list.blockSignals(False)
        if not sessions:
            self.view.clear()
            self._shown = None
            self.show_status("No saved sessions yet.")
        if chosen is not None:
            self.list.setCurrentItem(chosen)  # loads its transcript
        else:
            self.list.setCurrentItem(None)
            self.view.clear()
            self._shown = None
        self._enable()
        self.changed.emit()

    def _row(self, info: Any) -> list[str]:
        mark = self._state(info, "", UNFINISHED)
        return [
            started_text(info.started_at, info.id),
            session_title(info),
            _provider_name(info.provider),
            str(info.segments),
            duration_text(info.duration),
            mark,
        ]

    def rows(self) -> list[list[str]]:
        """What the list shows, row by row (tests, screen readers)."""
        out = []
        for i in range(self.list.topLevelItemCount()):
            item = self.list.topLevelItem(i)
            out.append([item.text(c) for c in range(len(COLUMNS))])
        return out

    def select(self, path: Path) -> bool:
        for i in range(self.list.topLevelItemCount()):
            item = self.list.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole).path == path:
                self.list.setCurrentItem(item)
                return True
        return False

    def _selected(self, *_: object) -> None:
        self._enable()
        info = self.current_info()
        if info is not None:
            self.tasks.spawn(self.show_session(info.path))

    async def show_session(self, path: Path) -> None:
        """Read one journal off the loop and show its transcript."""
        self._shown = path
        try:
            loaded = await asyncio.to_thread(_load, path)
        except OSError as exc:
            if self._shown == path:
                self.view.clear()
                self.show_status(f"Cannot read this session: {_error_text(exc)}")
            return
        if self._shown != path:  # another session was chosen meanwhile
            return
        self.view.setPlainText(loaded.text)
        info = loaded.info
        state = self._state(info, "finished", "not finished (the app stopped before the session ended)")
        self.show_status(f"{session_title(info)} — {captions_text(info.segments)}, {duration_text(info.duration)}, {state}.")

    # ---------------------------------------------------------- actions
    def _rename_clicked(self) -> None:
        info = self.current_info()
        if info is None:
            return
        title = self.ask_title(info.title or info.source)
        if title is not None:
            self.tasks.spawn(self.rename(info.path, title))

    def _delete_clicked(self) -> None:
        info = self.current_info()
        if info is None:
            return
        if self.confirm(f"Delete the session from {started_text(info.started_at, info.id)} ({session_title(info)})? This cannot be undone."):
            self.tasks.spawn(self.delete(info.path))

    def _export_clicked(self, fmt: str) -> None:
        info = self.current_info()
        if info is None:
            return
        target = self.ask_save_path(fmt, info.title or info.id)
        if target:
            self.tasks.spawn(self.export(info.path, fmt, target))

    async def rename(self, path: Path, title: str) -> bool:
        from captioner.transcript.journal import rename_session

        title = " ".join(title.split())
        if self.active_path() is not None and Path(self.active_path()) == path:  # type: ignore[arg-type]
            self.show_status("This session is still running: stop captioning before renaming it.")
            return False
        try:
            await asyncio.to_thread(rename_session, path, title)
        except OSError as exc:
            self.show_status(f"Rename failed: {_error_text(exc)}")
            return False
        await self.load(select=path)
        self.show_status(f"Renamed to “{title}”." if title else "The title was removed.")
        return True

    async def delete(self, path: Path) -> bool:
        from captioner.transcript.journal import delete_session

        if self.active_path() is not None and Path(self.active_path()) == path:  # type: ignore[arg-type]
            self.show_status("This session is still running: stop captioning before deleting it.")
            return False
        try:
            await asyncio.to_thread(delete_session, path)
        except OSError as exc:
            self.show_status(f"Delete failed: {_error_text(exc)}")
            return False
        self.deleted.emit(path)
        await self.load()
        self.show_status("The session was deleted.")
        return True

    async def export(self, path: Path, fmt: str, target: str) -> bool:
        """Export a session; an unfinished one (not running) is then marked
        recovered, so it is not offered for recovery again."""
        active = self.active_path()
        recover = active is None or Path(active) != path
        try:
            await asyncio.to_thread(export_session, path, fmt, target, recover)
        except OSError as exc:
            self.show_status(f"Export failed: {_error_text(exc)}")
            return False
        info = next((i for i in self.sessions if i.path == path), None)
        if recover and info is not None and not info.finished:
            self.recovered.emit(path)
            await self.load(select=path)
        self.show_status(f"Saved {target}")
        return True

    # ---------------------------------------------------------- dialogs
    def _ask_save_path(self, fmt: str, stem: str) -> str | None:
        got = ask_export_target(self, _safe_stem(stem), fmt)
        return got[0] if got else None

    def _ask_title(self, current: str) -> str | None:
        text, ok = QInputDialog.getText(self, "Rename session", "Title:", text=current)
        return text if ok else None

    def _confirm(self, question: str) -> bool:
        answer = QMessageBox.question(self, "Delete session", question)
        return answer == QMessageBox.StandardButton.Yes


def _safe_stem(text: str) -> str:
    return "".join(c if c.isalnum() or c in " -_." else "_" for c in text).strip() or "session"


# -------------------------------------------------------------- recovery
class RecoveryBar(QFrame):
    """Offers unfinished sessions one at a time: Export… / Open in history /
    Dismiss. Export and Dismiss mark the journal recovered (never offered
    again); Open in history only moves on for this run."""

    open_requested = Signal(Path)

    def __init__(self, active_path: ActivePath = lambda: None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.active_path = active_path
        #: Hook (tests replace it): where to export, as (path, format).
        self.ask_export: Callable[[str], tuple[str, str] | None] = lambda stem: ask_export_target(self, stem)
        self.tasks = TaskSet(self._error)
        self.queue: list[Any] = []
        #: Journals started from now on belong to this run: never offered.
        self.since = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
        self.setObjectName("recoveryBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("QFrame#recoveryBar { background: #e8f0fe; border: 1px solid #9db8ec; border-radius: 5px; }")
        self.setAccessibleName("Unfinished session")
        row = QHBoxLayout(self)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # text from providers, devices and files: never markup
        self.label.setWordWrap(True)
        self.label.setAccessibleName("Unfinished session notice")
        row.addWidget(self.label, 1)
        self.export_button = QPushButton("Export…")
        self.export_button.setAccessibleName("Export the unfinished session")
        self.open_button = QPushButton("Open in history")
        self.open_button.setAccessibleName("Open in history")
        self.open_button.setAccessibleDescription("Opens the unfinished session in the history window.")
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.setAccessibleName("Dismiss: do not offer this session again")
        for b in (self.export_button, self.open_button, self.dismiss_button):
            row.addWidget(b)
        self.export_button.clicked.connect(self._export_clicked)
        self.open_button.clicked.connect(self._open_clicked)
        self.dismiss_button.clicked.connect(lambda: self.tasks.spawn(self.dismiss()))
        self.hide()

    @property
    def current(self) -> Any:
        return self.queue[0] if self.queue else None

    async def check(self) -> list[Any]:
        """Look for unfinished journals (off the loop) and offer them."""
        active = self.active_path()
        try:
            found = await asyncio.to_thread(unfinished_sessions, Path(active) if active else None, self.since)
        except OSError as exc:
            log.warning("cannot look for unfinished sessions: %s", exc)
            found = []
        self.queue = found
        self._show()
        return found

    def _show(self) -> None:
        info = self.current
        if info is None:
            self.hide()
            return
        more = f" ({len(self.queue) - 1} more after this one)" if len(self.queue) > 1 else ""
        what = f" — {info.title}" if info.title else ""
        self.label.setText(
            f"A session from {started_text(info.started_at, info.id)}{what} was not finished "
            f"({captions_text(info.segments)}).{more}"
        )
        self.show()

    def _next(self) -> None:
        if self.queue:
            self.queue.pop(0)
        self._show()

    def forget(self, path: Path) -> None:
        """Drop a session handled elsewhere (exported or deleted in the history)."""
        was = self.current
        self.queue = [i for i in self.queue if i.path != path]
        if was is not None and was.path == path:
            self._show()

    def _error(self, text: str) -> None:
        self.label.setText(text)

    def _export_clicked(self) -> None:
        info = self.current
        if info is None:
            return
        got = self.ask_export(_safe_stem(info.title or info.id))
        if got:
            self.tasks.spawn(self.export(*got))

    def _open_clicked(self) -> None:
        info = self.current
        if info is not None:
            self._next()
            self.open_requested.emit(info.path)

    async def export(self, target: str, fmt: str) -> bool:
        info = self.current
        if info is None:
            return False
        try:
            await asyncio.to_thread(export_session, info.path, fmt, target, True)
        except OSError as exc:
            self.label.setText(f"Export failed: {_error_text(exc)}. Choose another place, or dismiss.")
            return False
        self._next()
        return True

    async def dismiss(self) -> bool:
        from captioner.transcript.journal import mark_recovered

        info = self.current
        if info is None:
            return False
        try:
            await asyncio.to_thread(mark_recovered, info.path)
        except OSError as exc:
            self.label.setText(f"Cannot mark the session as handled: {_error_text(exc)}")
            return False
        self._next()
        return True

    async def settle(self) -> None:
        await self.tasks.settle()
