"""Session journals: appended as finals arrive, user-only permissions,
recovery of an unfinished session, history operations."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from captioner.stt.events import Final, Gap, Partial, Word
from captioner.transcript.journal import (
    SessionJournal,
    delete_session,
    find_session,
    list_sessions,
    load_journal,
    mark_recovered,
    rename_session,
    sessions_dir,
)


def test_each_final_is_on_disk_before_the_next_event(tmp_path):
    j = SessionJournal.create("audiopod", "mic", tmp_path)
    j(Final("one two", 0.5, 1.0, (Word("one", 0.5, 0.7), Word("two", 0.8, 1.0))))
    j(Partial("thr"))
    # the writer thread flushes each line; wait for it without closing
    import time

    for _ in range(200):
        lines = j.path.read_text().splitlines()
        if len(lines) == 2:
            break
        time.sleep(0.01)
    assert [json.loads(line)["type"] for line in lines] == ["session", "final"]
    j(Gap(1.0, 2.0, "network"))
    j.close(finished=False)  # as after a crash: no end line
    transcript, info = load_journal(j.path)
    assert not info.finished
    assert [s.text for s in transcript.segments] == ["one two", "[…]"]
    assert transcript.segments[0].words[1] == Word("two", 0.8, 1.0)


def test_files_are_private(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTIONER_DATA_DIR", str(tmp_path / "data"))
    d = sessions_dir()
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    j = SessionJournal.create("x", "y")
    j.close()
    assert stat.S_IMODE(os.stat(j.path).st_mode) == 0o600


def test_truncated_last_line_is_tolerated(tmp_path):
    j = SessionJournal.create("smallest", "a.wav", tmp_path)
    j(Final("kept", 0.0, 1.0))
    j.close(finished=False)
    with open(j.path, "a") as f:
        f.write('{"type": "final", "text": "half-writ')
    transcript, info = load_journal(j.path)
    assert [s.text for s in transcript.segments] == ["kept"]
    mark_recovered(j.path)
    assert load_journal(j.path)[1].finished


def test_history_list_find_rename_delete(tmp_path):
    a = SessionJournal.create("audiopod", "a.wav", tmp_path)
    a(Final("hello", 0.0, 1.0))
    a.close()
    b = SessionJournal.create("inworld", "b.wav", tmp_path)
    b.close()
    infos = list_sessions(tmp_path)
    assert {i.provider for i in infos} == {"audiopod", "inworld"}
    assert find_session(a.path.stem, tmp_path) == a.path
    rename_session(a.path, "Weekly sync")
    assert load_journal(a.path)[1].title == "Weekly sync"
    delete_session(b.path)
    assert [i.path for i in list_sessions(tmp_path)] == [a.path]


def test_full_disk_is_reported_not_raised(tmp_path):
    j = SessionJournal.create("audiopod", "mic", tmp_path)
    real = j._file

    class Full:
        def write(self, text):
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

        def fileno(self):
            return real.fileno()

        def close(self):
            real.close()

    j._file = Full()
    j(Final("lost to disk", 0.0, 1.0))
    j.close()
    assert j.error is not None and j.error.errno == 28


_WRITER = """
import sys, time
from pathlib import Path
from captioner.stt.events import Final
from captioner.transcript.journal import SessionJournal
j = SessionJournal.create("audiopod", "mic", Path(sys.argv[1]))
j(Final("still talking", 0.0, 1.0))
for _ in range(500):
    if j.path.read_text().count("\\n") >= 2:
        break
    time.sleep(0.01)
print(j.path, flush=True)
time.sleep(60)
"""


def test_a_session_running_in_another_captioner_is_left_alone():
    """A second Captioner must not offer a live journal for recovery, append
    a title or a "recovered" mark into it, or delete it. When the writer dies
    (a crash), the lock goes with it and the journal is recoverable."""
    import subprocess
    import sys

    import pytest

    from captioner.transcript.journal_lock import SessionInUse
    from captioner.ui.history import unfinished_sessions

    directory = sessions_dir()  # a fresh folder per test (conftest); unfinished_sessions() looks there
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(directory)], stdout=subprocess.PIPE, text=True)
    try:
        path = Path(writer.stdout.readline().strip())
        (info,) = list_sessions(directory)
        assert info.path == path and info.running and not info.finished
        assert unfinished_sessions(None) == []
        before = path.read_bytes()
        for change in (rename_session, delete_session, mark_recovered):
            with pytest.raises(SessionInUse) as caught:
                change(path, "x") if change is rename_session else change(path)
            assert "still being recorded" in str(caught.value)
        assert path.read_bytes() == before
    finally:
        writer.kill()  # a crash: no end line
        writer.wait()
    (info,) = list_sessions(directory)
    assert not info.running and not info.finished
    assert [i.path for i in unfinished_sessions(None)] == [path]
    mark_recovered(path)
    assert list_sessions(directory)[0].finished


def test_this_process_running_journal_counts_as_running_until_closed(tmp_path):
    j = SessionJournal.create("audiopod", "mic", tmp_path)
    j(Final("hello", 0.0, 1.0))
    (info,) = list_sessions(tmp_path)
    assert info.running
    j.close(finished=False)  # the app quit without finishing: unfinished, no longer held
    (info,) = list_sessions(tmp_path)
    assert not info.running and not info.finished


def _write(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


def test_a_damaged_caption_line_is_skipped_not_the_session(tmp_path):
    """Valid JSON with a null word text or a NaN/infinite time emptied the
    History list and made `captioner sessions` and `export` crash."""
    header = {"type": "session", "version": 1, "provider": "audiopod", "source": "mic", "started_at": "2026-11-20T09:00:00+00:00"}
    good = {"type": "final", "text": "kept", "start": 0.0, "end": 1.0}
    damaged = [
        {"type": "final", "text": "word", "start": 1.0, "end": 2.0, "words": [{"text": None, "start": 1.0, "end": 2.0}]},
        {"type": "final", "text": 5, "start": 2.0, "end": 3.0},
        json.loads('{"type": "final", "text": "nan", "start": NaN, "end": 3.0}'),
        {"type": "final", "text": "inf", "start": 3.0, "end": 1e999},
        json.loads('{"type": "gap", "start": 4.0, "end": Infinity}'),
    ]
    bad = _write(tmp_path / "20261120-090000-audiopod.jsonl", [header, good, *damaged, {"type": "end"}])
    other = SessionJournal.create("inworld", "b.wav", tmp_path)
    other(Final("another", 0.0, 1.0))
    other.close()
    transcript, info = load_journal(bad)
    assert [s.text for s in transcript.segments] == ["kept"] and info.segments == 1
    assert {i.path for i in list_sessions(tmp_path)} == {bad, other.path}
    from captioner.transcript.export import to_srt

    assert "kept" in to_srt(transcript)


def test_sessions_are_listed_by_when_they_started_not_by_file_name(tmp_path):
    """File names are local time: after a time-zone or DST change a newer
    session's name can sort before an older one's."""
    def session(name: str, started: str) -> Path:
        return _write(tmp_path / name, [{"type": "session", "version": 1, "provider": "audiopod", "source": "mic",
                                          "started_at": started}, {"type": "final", "text": "x", "start": 0, "end": 1},
                                         {"type": "end"}])

    older = session("20261120-180000-audiopod.jsonl", "2026-11-20T17:00:00+00:00")  # Berlin, 18:00 local
    newer = session("20261120-130000-audiopod.jsonl", "2026-11-20T18:30:00+00:00")  # New York, 13:30 local
    assert [i.path for i in list_sessions(tmp_path)] == [newer, older]
