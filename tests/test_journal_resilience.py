"""Session journals on a failing disk, and how a session's end is recorded.

A full disk is simulated at the journal's file-write boundary (the writer's
unbuffered file object): OSError(ENOSPC) while `full` is set, optionally
after a short write, as a real full filesystem does."""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from pathlib import Path

import pytest

from captioner.stt.events import Final, Gap, Word
from captioner.transcript.journal import JournalStatus, SessionJournal, list_sessions, load_journal
from captioner.ui.history import unfinished_sessions
from tests.helpers import FlakyFile




def until(check, timeout: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def final(n: int) -> Final:
    return Final(f"caption {n}", float(n), n + 0.5, (Word("caption", float(n), n + 0.2), Word(str(n), n + 0.3, n + 0.5)))


def on_disk(path: Path) -> list[str]:
    """Every line parses (no torn or doubled line); the finals' texts."""
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [i["text"] for i in items if i["type"] == "final"]


def flaky_journal(tmp_path: Path, short_write: int = 0) -> tuple[SessionJournal, FlakyFile, list[JournalStatus]]:
    j = SessionJournal.create("audiopod", "mic", tmp_path)
    flaky = FlakyFile(j._file, short_write)
    j._file = flaky
    statuses: list[JournalStatus] = []
    j.watch(statuses.append)
    return j, flaky, statuses


def test_finals_wait_in_memory_while_the_disk_is_full_and_are_written_when_space_returns(tmp_path, monkeypatch):
    monkeypatch.setattr(SessionJournal, "RETRY_SECONDS", 0.05)
    j, flaky, statuses = flaky_journal(tmp_path)
    j(final(0))
    until(lambda: on_disk(j.path) == ["caption 0"])
    flaky.full = True
    for n in (1, 2, 3):
        j(final(n))
    until(lambda: len(statuses) == 1)
    assert statuses[0].error is not None and statuses[0].error.errno == errno.ENOSPC
    assert j.error is not None and j.error.errno == errno.ENOSPC
    time.sleep(0.2)  # retried meanwhile, and still full
    assert flaky.failures >= 3
    assert on_disk(j.path) == ["caption 0"] and len(statuses) == 1  # told once, not at every retry
    flaky.full = False  # space comes back; no new final: the periodic retry writes them
    until(lambda: len(statuses) == 2)
    assert statuses[1] == JournalStatus(None, 0, 0, 3)
    assert j.error is None
    assert on_disk(j.path) == ["caption 0", "caption 1", "caption 2", "caption 3"]
    j(final(4))
    j.close(outcome="completed")
    transcript, info = load_journal(j.path)
    assert [s.text for s in transcript.segments] == [f"caption {n}" for n in range(5)]
    assert transcript.segments[2].words == final(2).words
    assert info.finished and j.error is None


def test_the_next_final_retries_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(SessionJournal, "RETRY_SECONDS", 60.0)  # no periodic retry within this test
    j, flaky, statuses = flaky_journal(tmp_path)
    until(lambda: j.path.read_text().count("\n") == 1)  # the header
    flaky.full = True
    j(final(1))
    j(Gap(1.5, 2.5, "network"))
    until(lambda: len(statuses) == 1)
    flaky.full = False
    j(final(3))
    until(lambda: len(statuses) == 2)
    assert statuses[1].error is None and statuses[1].written == 3
    j.close()
    assert [s.text for s in load_journal(j.path)[0].segments] == ["caption 1", "[…]", "caption 3"]


def test_a_short_write_is_finished_not_torn_or_doubled(tmp_path, monkeypatch):
    monkeypatch.setattr(SessionJournal, "RETRY_SECONDS", 0.02)
    j, flaky, statuses = flaky_journal(tmp_path, short_write=7)
    until(lambda: j.path.read_text().count("\n") == 1)
    flaky.full = True
    j(final(1))
    until(lambda: len(statuses) == 1)
    assert j.path.read_text().splitlines()[-1].startswith('{"type"')  # 7 bytes of the line are out
    flaky.full = False
    until(lambda: len(statuses) == 2)
    j.close()
    assert on_disk(j.path) == ["caption 1"]


def test_a_failing_fsync_is_reported_and_retried(tmp_path, monkeypatch):
    monkeypatch.setattr(SessionJournal, "RETRY_SECONDS", 0.02)
    j, _, statuses = flaky_journal(tmp_path)
    until(lambda: j.path.read_text().count("\n") == 1)
    real_fsync = os.fsync
    broken = threading.Event()
    broken.set()

    def fsync(fd: int) -> None:
        if broken.is_set():
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    j(final(1))
    until(lambda: len(statuses) == 1)
    assert statuses[0].error.errno == errno.EIO
    broken.clear()
    until(lambda: len(statuses) == 2)
    j.close()
    assert on_disk(j.path) == ["caption 1"] and j.error is None


def test_memory_is_bounded_and_the_journal_marks_what_it_could_not_keep(tmp_path, monkeypatch):
    monkeypatch.setattr(SessionJournal, "RETRY_SECONDS", 0.02)
    monkeypatch.setattr(SessionJournal, "MAX_PENDING_BYTES", 600)  # ~2 worded finals
    j, flaky, statuses = flaky_journal(tmp_path)
    until(lambda: j.path.read_text().count("\n") == 1)
    flaky.full = True
    for n in range(1, 9):
        j(final(n))
    until(lambda: len(statuses) == 1)
    time.sleep(0.1)
    flaky.full = False
    until(lambda: len(statuses) == 2)
    kept = statuses[1]
    assert kept.error is None and kept.dropped > 0
    j(final(9))
    j.close(outcome="stopped")
    transcript, info = load_journal(j.path)
    texts = [s.text for s in transcript.segments]
    waited = 8 - kept.dropped
    assert texts == [f"caption {n}" for n in range(1, waited + 1)] + ["[…]", "caption 9"]
    hole = transcript.segments[waited]
    assert hole.gap and hole.reason == f"{kept.dropped} caption(s) not saved: No space left on device"
    assert (hole.start, hole.end) == (float(waited + 1), 8.5)  # where the missing captions were
    assert info.finished
    assert j.error is not None and j.error.errno == errno.ENOSPC  # the file misses captions: said at close


def test_still_full_at_close_leaves_it_recoverable_without_hanging(tmp_path, monkeypatch):
    monkeypatch.setattr(SessionJournal, "RETRY_SECONDS", 0.02)
    j, flaky, _ = flaky_journal(tmp_path)
    j(final(1))
    until(lambda: on_disk(j.path) == ["caption 1"])
    flaky.full = True
    j(final(2))
    started = time.monotonic()
    j.close(outcome="stopped")
    assert time.monotonic() - started < 2
    assert j.error is not None and j.error.errno == errno.ENOSPC
    _, info = load_journal(j.path)
    assert not info.finished and info.segments == 1  # what reached the disk, offered at the next start


def test_watch_reports_a_problem_that_began_before_it_was_set(tmp_path):
    j = SessionJournal.create("audiopod", "mic", tmp_path)
    flaky = FlakyFile(j._file)
    j._file = flaky
    flaky.full = True
    j(final(1))
    until(lambda: j.error is not None)
    got: list[JournalStatus] = []
    j.watch(got.append)
    assert len(got) == 1 and got[0].error.errno == errno.ENOSPC and got[0].pending == 1
    flaky.full = False
    j.close()
    assert on_disk(j.path) == ["caption 1"]


# ------------------------------------------------------- how sessions end
@pytest.mark.parametrize("outcome", ["completed", "stopped", "failed"])
def test_a_session_that_ended_is_closed_and_not_offered(outcome, tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTIONER_DATA_DIR", str(tmp_path))
    j = SessionJournal.create("audiopod", "mic")
    j(final(1))
    j.close(outcome == "completed", outcome=outcome, error="NETWORK" if outcome == "failed" else "")
    transcript, info = load_journal(j.path)
    assert info.finished and transcript.outcome == outcome
    assert unfinished_sessions(None) == []


def test_a_session_refused_before_any_caption_leaves_no_journal(tmp_path):
    j = SessionJournal.create("audiopod", "mic", tmp_path)
    j(Gap(0.0, 1.0, "network"))  # no caption at all
    j.close(False, outcome="failed", error="UNAUTHORIZED")
    assert not j.path.exists() and list_sessions(tmp_path) == [] and j.error is None


def test_an_empty_completed_session_is_kept_but_never_offered(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTIONER_DATA_DIR", str(tmp_path))
    j = SessionJournal.create("audiopod", "silence.wav")
    j.close(audio_duration=10.0, outcome="completed")
    (info,) = list_sessions()
    assert info.finished and info.segments == 0 and info.audio_duration == 10.0


def test_only_a_crash_with_captions_is_offered(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTIONER_DATA_DIR", str(tmp_path))
    crashed = SessionJournal.create("audiopod", "mic")
    crashed(final(1))
    crashed.close(finished=False)  # as a crash leaves it: no summary, no end
    (tmp_path / "sessions" / "20240101-000000-audiopod.jsonl").write_text(  # an older version's refused session
        json.dumps({"type": "session", "provider": "audiopod", "source": "mic", "started_at": "2024-01-01T00:00:00+00:00"}) + "\n"
    )
    (tmp_path / "sessions" / "20240102-000000-audiopod.jsonl").write_text(  # an older version's failed CLI session
        "".join(json.dumps(x) + "\n" for x in (
            {"type": "session", "provider": "audiopod", "source": "mic", "started_at": "2024-01-02T00:00:00+00:00"},
            {"type": "final", "text": "hello", "start": 0.0, "end": 1.0},
            {"type": "summary", "outcome": "failed", "error": "NETWORK"},
        ))
    )
    assert [i.path for i in unfinished_sessions(None)] == [crashed.path]
