"""Session journals: every final is appended to disk as it arrives.

A journal is JSON lines: a header (provider, source, language and options
when known), one line per final (or gap), a `summary` line with what is known
at the end (seconds of audio taken in, how the session ended), and an `end`
line when the session ended under control (completed, stopped, or failed
with an error). A crash or power loss therefore loses at most the live
partial; a journal without an `end` line is a session a crash cut off, which
the app offers to recover. A session that failed before any caption leaves
no journal at all.

Writes happen on a dedicated thread (write, fsync), so a slow or full disk
never blocks the event loop. A line that cannot be written (disk full, I/O
error) waits in memory (up to MAX_PENDING_BYTES) and is written, in order,
as soon as writing works again: on the next line or after RETRY_SECONDS.
`error` is the current problem; `watch()` reports each change (failing,
writing again) so the UI can tell the user at once.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import logging
import os
import queue
import re
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from captioner.stt.events import CaptionEvent, Final, Gap
from captioner.transcript.journal_lock import SessionInUse, claim, hold, in_use
from captioner.transcript.model import Segment, Transcript, finite_time

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


@dataclass(frozen=True)
class JournalStatus:
    """A change in whether the journal reaches the disk (for `watch`)."""

    error: OSError | None  # None: every line is on disk (again)
    pending: int  # lines waiting in memory for the disk
    dropped: int  # captions not kept because the memory bound was reached
    written: int = 0  # lines written when writing worked again (error None)


class SessionJournal:
    """Appends a session's finals to a JSONL file; call it with each event."""

    MAX_PENDING_BYTES = 8 * 1024 * 1024  # ~8 hours of worded finals waiting for the disk
    RETRY_SECONDS = 2.0  # how often a failing disk is tried again when no line comes

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.error: OSError | None = None
        self.finals = 0  # captions received (written or waiting)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: deque[bytes] = deque()  # encoded lines; the writer thread's only
        self._pending_bytes = 0
        self._head_done = 0  # bytes of _pending[0] already written (a short write)
        self._unsynced = False
        self._hole: list[Any] | None = None  # [count, start, end] of captions not kept
        self._dropped = 0
        self._last_error: OSError | None = None
        self._lock = threading.Lock()
        self._watcher: Callable[[JournalStatus], None] | None = None
        self._remove = False
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        hold(fd)  # until the writer closes the file (or the process dies)
        # Unbuffered: a short or failed write is known exactly, so it is
        # finished later instead of leaving half a line or writing one twice.
        self._file: Any = os.fdopen(fd, "wb", buffering=0)
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
                self.finals += 1
                self._queue.put({"type": "final", **segment.to_dict()})
        elif isinstance(event, Gap):
            self._queue.put({"type": "gap", **Segment.from_gap(event).to_dict()})

    def watch(self, callback: Callable[[JournalStatus], None] | None) -> None:
        """Call `callback` (from the writer thread) when writing starts
        failing and when it works again; at once if it is failing now."""
        with self._lock:
            self._watcher = callback
            now = self.error
            status = JournalStatus(now, len(self._pending), self._dropped) if now is not None else None
        if callback is not None and status is not None:
            callback(status)

    def close(
        self, finished: bool = True, *, audio_duration: float | None = None, outcome: str = "", error: str = ""
    ) -> None:
        """Finish the journal. A known `outcome` (model.OUTCOMES) means the
        session ended under control, so the journal is closed even when
        `finished` is False; only `finished=False` without an outcome leaves
        it unfinished, as a crash would. A failed session without a single
        caption leaves no journal. What is known about the end (seconds of
        audio taken in, how it ended) is kept for `sessions` and exports."""
        if self._closed:
            return
        self._closed = True
        if outcome == "failed" and self.finals == 0:
            self._remove = True  # refused at once (a wrong key…): nothing to keep or recover
        else:
            summary: dict[str, Any] = {}
            if audio_duration is not None:
                summary["audio_duration"] = round(audio_duration, 3)
            if outcome:
                summary["outcome"] = outcome
            if error:
                summary["error"] = error
            if summary:
                self._queue.put({"type": "summary", **summary})
            if finished or outcome:
                self._queue.put({"type": "end", "ended_at": _now()})
        self._queue.put(_STOP)
        self._thread.join(timeout=10)
        with self._lock:
            if self.error is None and self._dropped and not self._remove:
                self.error = self._last_error  # the file misses the captions that were not kept

    # ------------------------------------------------------ writer thread
    def _writer(self) -> None:
        while True:
            try:
                wait = self.RETRY_SECONDS if (self._pending or self._unsynced or self._hole) else None
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                self._drain()  # the disk may have room again
                continue
            if item is _STOP:
                break
            self._keep(item)
            self._drain()
        if self._remove:
            try:
                os.unlink(self.path)  # still locked: no other Captioner is looking at it
            except OSError as exc:
                log.warning("cannot remove the empty journal %s: %s", self.path, exc.strerror or exc)
            self._pending.clear()
        else:
            self._drain()  # a last try
            if self._pending:
                log.error("the session journal %s misses its last %d lines", self.path, len(self._pending))
        try:
            self._file.close()
        except OSError as exc:
            self._report(exc)

    def _keep(self, item: dict[str, Any]) -> None:
        data = (json.dumps(item, ensure_ascii=False) + "\n").encode("utf-8")
        caption = item.get("type") in ("final", "gap")
        if caption and self._pending and self._pending_bytes + len(data) > self.MAX_PENDING_BYTES:
            # The disk has been failing for long: the in-memory transcript
            # (exports) still has these; the journal marks where they are missing.
            if self._hole is None:
                self._hole = [0, item.get("start"), item.get("end")]
            self._hole[0] += 1
            self._hole[2] = item.get("end", self._hole[2])
            self._dropped += 1
            return
        if self._hole is not None:
            self._mark_hole()
        self._pending.append(data)
        self._pending_bytes += len(data)

    def _mark_hole(self) -> None:
        """A gap line where captions could not be kept, so a recovered export shows it."""
        count, start, end = self._hole or (0, None, None)
        self._hole = None
        reason = f"{count} caption(s) not saved: {error_text(self._last_error)}"
        try:
            gap = Segment("[…]", float(start or 0.0), float(end or start or 0.0), gap=True, reason=reason).to_dict()
        except (TypeError, ValueError):
            gap = {"text": "[…]", "start": 0.0, "end": 0.0, "gap": True, "reason": reason}
        data = (json.dumps({"type": "gap", **gap, "unsaved": count}, ensure_ascii=False) + "\n").encode("utf-8")
        self._pending.append(data)
        self._pending_bytes += len(data)

    def _drain(self) -> None:
        """Write what waits, in order, then fsync; report any change."""
        written = 0
        try:
            while self._pending or self._hole is not None:
                if not self._pending:
                    self._mark_hole()  # every kept line is out: now where the others are missing
                line = self._pending[0]
                view = memoryview(line)
                while self._head_done < len(view):
                    n = self._file.write(view[self._head_done:])
                    if not n:
                        raise OSError(errno.EIO, "the journal file took no bytes")
                    self._head_done += n
                self._pending.popleft()
                self._pending_bytes -= len(line)
                self._head_done = 0
                self._unsynced = True
                written += 1
            if self._unsynced:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._unsynced = False
        except OSError as exc:
            self._report(exc)
            return
        if self.error is not None:
            self._report(None, written)

    def _report(self, error: OSError | None, written: int = 0) -> None:
        with self._lock:
            was = self.error
            self.error = error
            if error is not None:
                self._last_error = error
            changed = (was is None) != (error is None)
            status = JournalStatus(error, len(self._pending), self._dropped, written)
            watcher = self._watcher
        if not changed:
            return
        if error is not None:
            log.error("cannot write the session journal %s: %s (kept in memory)", self.path, error_text(error))
        else:
            log.warning("the session journal %s is written again (%d waiting lines saved)", self.path, written)
        if watcher is not None:
            try:
                watcher(status)
            except Exception:  # a broken watcher must not stop the journal
                log.exception("journal watcher failed")


def error_text(exc: BaseException | None) -> str:
    """A write error in words for a message ("No space left on device")."""
    if exc is None:
        return "unknown error"
    return getattr(exc, "strerror", None) or str(exc)


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
                transcript.segments.append(Segment("[…]", finite_time(item["start"]), finite_time(item["end"]), gap=True,
                                                   reason=str(item.get("reason", ""))))
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
            if transcript.outcome:
                finished = True  # it ended under control (older versions wrote no `end` after a failure)
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


_FINAL_FIELD = b'"type": "final"'  # as json.dumps writes it; inside a caption's text a quote is escaped
_TAIL_BYTES = 256 * 1024
_CHUNK = 1 << 20


def session_info(path: Path) -> SessionInfo:
    """What a session list shows, without parsing every caption: the header
    (the first line), the finals counted by their type field, and the last
    lines (summary, end, title, the last caption's end). `load_journal` parses
    every line: a few hundred ms for an 8-hour journal, so listing twenty of
    them stalled the app's start-up check and History for seconds."""
    with open(path, "rb") as f:
        first = f.readline()
        finals, carry = first.count(_FINAL_FIELD), b""
        while chunk := f.read(_CHUNK):
            block = carry + chunk
            finals += block.count(_FINAL_FIELD)
            carry = block[-(len(_FINAL_FIELD) - 1):]  # a field cut by a chunk's end is counted in the next block
        size = f.tell()
        f.seek(max(len(first), size - _TAIL_BYTES))
        tail = f.read()
    lines = tail.split(b"\n")
    if size - _TAIL_BYTES > len(first):
        lines = lines[1:]  # the first is probably a piece of a line
    header = _json_dict(first) or {}
    last_end: float | None = None
    audio: float | None = None
    finished, title = False, ""
    for raw in lines:
        item = _json_dict(raw)
        if item is None:
            finals -= raw.count(_FINAL_FIELD)  # a line a crash cut short: load_journal skips it too
            continue
        kind = item.get("type")
        if kind in ("final", "gap"):
            try:
                last_end = finite_time(item["end"])
            except (KeyError, TypeError, ValueError):
                if kind == "final":
                    finals -= 1
        elif kind == "summary":
            try:
                audio = float(item["audio_duration"]) if item.get("audio_duration") is not None else audio
            except (TypeError, ValueError):
                pass
            finished = finished or bool(item.get("outcome"))
        elif kind == "end":
            finished = True
        elif kind == "title":
            title = str(item.get("title", ""))
    if last_end is None and finals > 0:  # captions only before the tail: rare enough to read it all
        return load_journal(path)[1]
    provider, source, started = (str(header.get(k, "")) for k in ("provider", "source", "started_at"))
    return SessionInfo(
        path, provider, source, started, finished, max(0, finals), (last_end or 0.0) if audio is None else audio, title,
        running=not finished and in_use(path), audio_duration=audio,
    )


def _json_dict(raw: bytes) -> dict[str, Any] | None:
    try:
        item = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    return item if isinstance(item, dict) else None


def list_sessions(directory: Path | None = None) -> list[SessionInfo]:
    """All journals, newest first."""
    directory = directory or sessions_dir()
    infos = []
    for path in directory.glob(f"*{SUFFIX}"):
        try:
            infos.append(session_info(path))
        except OSError:
            continue
        except Exception:  # one damaged file must not hide every other session
            log.warning("skipped unreadable session journal %s", path.name, exc_info=True)
    # By when each started (UTC in the header; the file name is local time,
    # which a time-zone or daylight-saving change reorders), then by name.
    infos.sort(key=lambda info: (info.started_at, info.path.name), reverse=True)
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
