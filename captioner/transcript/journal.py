"""Session journals: every final is appended to disk as it arrives.

A journal is JSON lines: a header (provider, source, language and options
when known), one line per final (or gap), a `summary` line with what is known
at the end (seconds of audio taken in, how the session ended), and an `end`
line when the session finished cleanly. A crash or power loss therefore
loses at most the live partial; a journal without an `end` line is an
unfinished session the app offers to recover.

Writes happen on a dedicated thread (write, flush, fsync), so a slow or full
disk never blocks the event loop; a write failure is kept in `error` for the
UI to show while the in-memory transcript keeps everything.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from captioner.stt.events import CaptionEvent, Final, Gap
from captioner.transcript.journal_lock import SessionInUse, claim, hold, in_use
from captioner.transcript.model import Segment, Transcript

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"


def sessions_dir() -> Path:
    """Where journals live: the platform's user data folder (overridable with
    CAPTIONER_DATA_DIR), readable by the user only."""
    base = os.environ.get("CAPTIONER_DATA_DIR")
    if base:
        root = Path(base)
    else:
        import platformdirs

        root = Path(platformdirs.user_data_dir("captioner", appauthor=False))
    path = root / "sessions"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass
    return path


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


_STOP = object()


class SessionJournal:
    """Appends a session's finals to a JSONL file; call it with each event."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.error: OSError | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        hold(fd)  # until the writer closes the file (or the process dies)
        self._file = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        self._queue.put(header)
        self._thread = threading.Thread(target=self._writer, name="captioner-journal", daemon=True)
        self._thread.start()
        self._closed = False

    @classmethod
    def create(
        cls,
        provider: str,
        source: str,
        directory: Path | None = None,
        *,
        language: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> "SessionJournal":
        directory = directory or sessions_dir()
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", provider)[:32]
        header: dict[str, Any] = {"type": "session", "version": 1, "provider": provider, "source": source, "started_at": _now()}
        if language is not None:
            header["language"] = language
        if options:
            header["options"] = options
        for n in range(100):
            path = directory / f"{stamp}-{safe}{'-' + str(n) if n else ''}{SUFFIX}"
            try:
                return cls(path, header)
            except FileExistsError:
                continue
        raise FileExistsError(f"cannot create a journal in {directory}")

    def __call__(self, event: CaptionEvent) -> None:
        if self._closed:
            return
        if isinstance(event, Final):
            segment = Segment.from_final(event)
            if segment.text:
                self._queue.put({"type": "final", **segment.to_dict()})
        elif isinstance(event, Gap):
            self._queue.put({"type": "gap", **Segment.from_gap(event).to_dict()})

    def close(
        self, finished: bool = True, *, audio_duration: float | None = None, outcome: str = "", error: str = ""
    ) -> None:
        """Finish the journal; `finished=False` leaves it marked unfinished.
        What is known about the end (seconds of audio taken in, how the
        session ended: model.OUTCOMES) is kept for `sessions` and exports."""
        if self._closed:
            return
        self._closed = True
        summary: dict[str, Any] = {}
        if audio_duration is not None:
            summary["audio_duration"] = round(audio_duration, 3)
        if outcome:
            summary["outcome"] = outcome
        if error:
            summary["error"] = error
        if summary:
            self._queue.put({"type": "summary", **summary})
        if finished:
            self._queue.put({"type": "end", "ended_at": _now()})
        self._queue.put(_STOP)
        self._thread.join(timeout=10)

    def _writer(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            if self.error is not None:
                continue
            try:
                self._file.write(json.dumps(item, ensure_ascii=False) + "\n")
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as exc:
                self.error = exc
                log.error("cannot write the session journal %s: %s", self.path, exc.strerror or exc)
        try:
            self._file.close()
        except OSError as exc:
            self.error = self.error or exc


@dataclass(frozen=True)
class SessionInfo:
    path: Path
    provider: str
    source: str
    started_at: str
    finished: bool
    segments: int
    duration: float
    title: str
    running: bool = False  # unfinished and still being written (by this or another Captioner)
    audio_duration: float | None = None  # seconds of audio, when the journal recorded it
    # `duration` is `audio_duration` when known, else where the last caption ends.

    @property
    def id(self) -> str:
        return self.path.stem


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if isinstance(item, dict):
                yield item


def load_journal(path: Path) -> tuple[Transcript, SessionInfo]:
    """The transcript a journal holds, and what is known about the session."""
    transcript = Transcript()
    header: dict[str, Any] = {}
    finished = False
    title = ""
    for item in _lines(path):
        kind = item.get("type")
        if kind == "session":
            header = item
        elif kind == "final":
            try:
                transcript.segments.append(Segment.from_dict(item))
            except (KeyError, TypeError, ValueError):
                continue
        elif kind == "gap":
            try:
                transcript.segments.append(
                    Segment("[…]", float(item["start"]), float(item["end"]), gap=True, reason=str(item.get("reason", "")))
                )
            except (KeyError, TypeError, ValueError):
                continue
        elif kind == "summary":
            try:
                if item.get("audio_duration") is not None:
                    transcript.audio_duration = float(item["audio_duration"])
            except (TypeError, ValueError):
                pass
            transcript.outcome = str(item.get("outcome", ""))
            transcript.error = str(item.get("error", ""))
        elif kind == "end":
            finished = True
        elif kind == "title":
            title = str(item.get("title", ""))
    transcript.provider = header.get("provider", "")
    transcript.source = header.get("source", "")
    transcript.started_at = header.get("started_at", "")
    if isinstance(header.get("language"), str):
        transcript.language = header["language"]
    if isinstance(header.get("options"), dict):
        transcript.options = header["options"]
    audio = transcript.audio_duration
    info = SessionInfo(
        path, transcript.provider, transcript.source, transcript.started_at, finished,
        sum(1 for s in transcript.segments if not s.gap), transcript.duration if audio is None else audio, title,
        running=not finished and in_use(path), audio_duration=audio,
    )
    return transcript, info


def list_sessions(directory: Path | None = None) -> list[SessionInfo]:
    """All journals, newest first."""
    directory = directory or sessions_dir()
    infos = []
    for path in sorted(directory.glob(f"*{SUFFIX}"), reverse=True):
        try:
            infos.append(load_journal(path)[1])
        except OSError:
            continue
    return infos


def find_session(spec: str, directory: Path | None = None) -> Path:
    """A journal by path, id (file stem) or unique id prefix."""
    candidate = Path(spec)
    if candidate.suffix == SUFFIX and candidate.exists():
        return candidate
    directory = directory or sessions_dir()
    matches = [p for p in directory.glob(f"*{SUFFIX}") if p.stem == spec] or [
        p for p in directory.glob(f"*{SUFFIX}") if p.stem.startswith(spec)
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise FileNotFoundError(f"no session {spec!r} in {directory}")
    raise FileNotFoundError(f"{spec!r} matches several sessions: {', '.join(sorted(p.stem for p in matches))}")


def _append_line(path: Path, item: dict[str, Any]) -> None:
    """Append one JSON line, first ending a line a crash may have cut short."""
    with open(path, "rb+") as f:
        claim(f, path)  # not while a running session writes it: the lines would interleave
        f.seek(0, os.SEEK_END)
        torn = False
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"
        f.write((b"\n" if torn else b"") + (json.dumps(item, ensure_ascii=False) + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def rename_session(path: Path, title: str) -> None:
    """Give a session a title (appended, so the journal stays append-only)."""
    _append_line(path, {"type": "title", "title": title})


def delete_session(path: Path) -> None:
    if in_use(path):
        raise SessionInUse(path)
    path.unlink()


def mark_recovered(path: Path) -> None:
    """Close an unfinished journal after its session was offered for export."""
    _append_line(path, {"type": "end", "ended_at": _now(), "recovered": True})
