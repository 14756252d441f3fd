"""The session list reads a journal's header, counts its finals and parses
only its last lines (`session_info`): it must say exactly what parsing the
whole journal (`load_journal`) says, for every kind of journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from captioner.stt.events import Final, Gap, Word
from captioner.transcript import journal as jm
from captioner.transcript.journal import SessionJournal, list_sessions, load_journal, rename_session, session_info


def _write(tmp_path: Path, finals: int, *, close: str = "done", text: str = "word {i}", gaps: bool = False) -> Path:
    j = SessionJournal.create("audiopod", "mic", tmp_path, language="en")
    for i in range(finals):
        t = i * 2.0
        j(Final(text.format(i=i), t, t + 1.5, (Word("word", t, t + 0.5),)))
        if gaps and i % 7 == 3:
            j(Gap(t + 1.5, t + 2.0, "replay buffer exceeded; audio lost"))
    if close == "done":
        j.close(audio_duration=finals * 2.0 + 0.5, outcome="completed")
    elif close == "failed":
        j.close(finished=False, outcome="failed", error="CONNECT_FAILED: gave up")
    else:
        j.close(finished=False)  # a crash: no summary, no end
    return j.path


CASES = {
    "completed": dict(finals=12),
    "empty": dict(finals=0),
    "failed": dict(finals=5, close="failed"),
    "crashed": dict(finals=9, close="crash", gaps=True),
    # a caption quoting the type field: inside a JSON string its quotes are escaped
    "quoting": dict(finals=4, text='he typed "type": "final" {i}'),
    # longer than the tail and than one read: counted across chunk boundaries
    "long": dict(finals=4000, gaps=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_list_says_what_the_whole_journal_says(tmp_path, monkeypatch, case):
    monkeypatch.setattr(jm, "_CHUNK", 4096)  # many chunk boundaries even in small journals
    monkeypatch.setattr(jm.os, "fsync", lambda fd: None)  # thousands of lines: the writer need not wait on the disk
    path = _write(tmp_path, **CASES[case])
    assert session_info(path) == load_journal(path)[1]
    rename_session(path, "Weekly sync")
    assert session_info(path) == load_journal(path)[1]
    assert session_info(path).title == "Weekly sync"


def test_a_line_a_crash_cut_short_is_not_counted(tmp_path):
    path = _write(tmp_path, 6, close="crash")
    with open(path, "ab") as f:
        f.write(b'{"type": "final", "text": "half a li')  # the power went
    fast, full = session_info(path), load_journal(path)[1]
    assert fast == full and fast.segments == 6 and not fast.finished and fast.duration == pytest.approx(11.5)


def test_listing_many_long_journals_reads_few_of_their_lines(tmp_path, monkeypatch):
    """The list must not parse every caption (it did: seconds for a few
    8-hour journals, at each start-up and each History refresh)."""
    monkeypatch.setattr(jm.os, "fsync", lambda fd: None)
    for _ in range(3):
        _write(tmp_path, 1500)
    parsed = []
    real = jm._json_dict

    def counting(raw: bytes):
        parsed.append(raw)
        return real(raw)

    monkeypatch.setattr(jm, "_TAIL_BYTES", 16 * 1024)  # a tail much shorter than the journals
    monkeypatch.setattr(jm, "_json_dict", counting)
    monkeypatch.setattr(jm, "load_journal", lambda path: pytest.fail("the list parsed a whole journal"))
    infos = list_sessions(tmp_path)
    assert [i.segments for i in infos] == [1500] * 3
    assert len(parsed) < 3 * 200
