"""Session history (list, read, rename, delete, export) and recovery of
unfinished sessions, against journals written in a temp CAPTIONER_DATA_DIR."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from PySide6.QtWidgets import QAbstractButton

from captioner.app import CaptionerApp, build_parser
from captioner.stt.events import Final
from captioner.transcript.journal import SessionJournal, load_journal, sessions_dir
from captioner.ui.controller import CaptionController
from captioner.ui.history import HistoryWindow, RecoveryBar, started_text


def write_journal(
    name: str,
    started: dt.datetime,
    finals: list[tuple[str, float, float]],
    finished: bool,
    provider: str = "audiopod",
    source: str = "USB Mic",
    title: str | None = None,
) -> Path:
    """A journal as SessionJournal writes it, with a chosen start time."""
    path = sessions_dir() / f"{name}.jsonl"
    lines = [{"type": "session", "version": 1, "provider": provider, "source": source,
              "started_at": started.isoformat(timespec="seconds")}]
    lines += [{"type": "final", "text": t, "start": a, "end": b} for t, a, b in finals]
    if title is not None:
        lines.append({"type": "title", "title": title})
    if finished:
        lines.append({"type": "end", "ended_at": started.isoformat(timespec="seconds")})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


UTC = dt.timezone.utc
OLD = dt.datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
NEWER = dt.datetime(2024, 3, 2, 14, 5, tzinfo=UTC)


@pytest.fixture
def journals(data_dir) -> dict[str, Path]:  # noqa: ANN001
    return {
        "old": write_journal("20240301-093000-audiopod", OLD, [("hello there", 0.5, 1.5), ("second line", 2.0, 65.0)], True),
        "new": write_journal("20240302-140500-smallest", NEWER, [("only one", 1.0, 2.0)], False, provider="smallest", source="pulse monitor"),
    }


async def make_history(qtbot, active=lambda: None) -> HistoryWindow:  # noqa: ANN001
    h = HistoryWindow(active)
    qtbot.addWidget(h)
    h.show()
    await h.load()
    return h


async def test_lists_sessions_newest_first_with_details(qtbot, journals):
    h = await make_history(qtbot)
    assert h.rows() == [
        [started_text(NEWER.isoformat()), "pulse monitor", "Smallest.ai Waves", "1", "0:02", "unfinished"],
        [started_text(OLD.isoformat()), "USB Mic", "AudioPod", "2", "1:05", ""],
    ]
    # local time, minutes
    assert h.rows()[1][0] == OLD.astimezone().strftime("%Y-%m-%d %H:%M")
    assert not h.rename_button.isEnabled()  # nothing chosen yet
    for b in h.findChildren(QAbstractButton):
        assert b.accessibleName(), b.text()
    assert h.list.accessibleName() and h.view.accessibleName()


async def test_view_rename_and_delete(qtbot, journals):
    h = await make_history(qtbot)
    h.select(journals["old"])
    await h.settle()
    assert h.view.toPlainText() == "hello there\nsecond line\n"
    assert "2 captions" in h.status_label.text() and "finished" in h.status_label.text()

    h.ask_title = lambda current: "  Weekly   standup "
    h.rename_button.click()
    await h.settle()
    assert h.rows()[1][1] == "Weekly standup"  # whitespace tidied, order kept
    assert load_journal(journals["old"])[1].title == "Weekly standup"
    assert h.current_info().path == journals["old"]  # still selected after the reload

    h.confirm = lambda question: False
    h.delete_button.click()
    await h.settle()
    assert journals["old"].exists() and len(h.rows()) == 2
    asked: list[str] = []
    h.confirm = lambda question: asked.append(question) or True
    h.delete_button.click()
    await h.settle()
    assert "Weekly standup" in asked[0] and "cannot be undone" in asked[0]
    assert not journals["old"].exists()
    assert [r[1] for r in h.rows()] == ["pulse monitor"]
    assert h.status_label.text() == "The session was deleted."


async def test_export_every_format_and_errors_in_words(qtbot, journals, tmp_path):
    h = await make_history(qtbot)
    h.select(journals["old"])
    await h.settle()
    for fmt in ("srt", "vtt", "txt", "json"):
        target = tmp_path / f"out.{fmt}"
        h.ask_save_path = lambda f, stem, t=target: str(t)
        h.export_buttons[fmt].click()
        await h.settle()
        assert h.status_label.text() == f"Saved {target}"
    assert (tmp_path / "out.txt").read_text() == "hello there\nsecond line\n"
    assert (tmp_path / "out.srt").read_text().startswith("1\n00:00:00,500 --> 00:00:01,500\nhello there\n")
    assert (tmp_path / "out.vtt").read_text().startswith("WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nhello there")
    assert [s["text"] for s in json.loads((tmp_path / "out.json").read_text())["segments"]] == ["hello there", "second line"]

    missing = tmp_path / "no such folder" / "out.srt"
    h.ask_save_path = lambda f, stem: str(missing)
    h.export_buttons["srt"].click()
    await h.settle()
    text = h.status_label.text()
    assert text.startswith(f"Export failed: cannot write {missing}: ") and "No such file or directory" in text


async def test_exporting_an_unfinished_session_marks_it_recovered(qtbot, journals, tmp_path):
    h = await make_history(qtbot)
    got: list[Path] = []
    h.recovered.connect(got.append)
    assert await h.export(journals["new"], "txt", str(tmp_path / "n.txt"))
    assert (tmp_path / "n.txt").read_text() == "only one\n"
    assert got == [journals["new"]]
    assert load_journal(journals["new"])[1].finished
    assert h.rows()[0][5] == ""


async def test_the_running_session_is_marked_and_protected(qtbot, journals, tmp_path):
    h = await make_history(qtbot, active=lambda: journals["new"])
    assert h.rows()[0][5] == "recording now"
    assert not await h.delete(journals["new"])
    assert "still running" in h.status_label.text() and journals["new"].exists()
    assert not await h.rename(journals["new"], "x")
    assert await h.export(journals["new"], "txt", str(tmp_path / "live.txt"))  # reading is fine
    assert not load_journal(journals["new"])[1].finished  # and it stays the writer's


async def test_a_session_another_captioner_records_is_marked_and_protected(qtbot, journals, tmp_path):
    """Held by a writer that is not this window's session (in the app: another
    running Captioner): marked, not offered for recovery, not renamed."""
    other = SessionJournal.create("audiopod", "mic", sessions_dir())
    try:
        h = await make_history(qtbot)
        assert "recording now (another Captioner)" in [r[5] for r in h.rows()]
        assert not await h.rename(other.path, "x")
        assert "still being recorded" in h.status_label.text()
        assert not await h.delete(other.path) and other.path.exists()
        bar = RecoveryBar(lambda: None)
        qtbot.addWidget(bar)
        bar.since = None  # any start time: only the lock keeps it out
        offered = [i.path for i in await bar.check()]
        assert journals["new"] in offered and other.path not in offered
    finally:
        other.close()


# ------------------------------------------------------------------ recovery
def make_app(settings) -> CaptionerApp:  # noqa: ANN001
    capp = CaptionerApp(settings, build_parser().parse_args([]), CaptionController(), tray_available=False, device_lister=lambda: [])
    return capp


async def test_recovery_is_offered_once_and_not_again(qtbot, settings, journals):
    capp = make_app(settings)
    qtbot.addWidget(capp.window)
    capp.show()
    await capp.after_first_paint()  # looks for unfinished sessions in the background
    await capp.settle()
    bar = capp.window.recovery
    assert bar.isVisibleTo(capp.window)
    assert bar.label.text().startswith(f"A session from {started_text(NEWER.isoformat())} was not finished (1 caption)")
    bar.dismiss_button.click()
    await capp.settle()
    assert not bar.isVisibleTo(capp.window)
    assert load_journal(journals["new"])[1].finished  # marked recovered on disk
    assert json.loads(journals["new"].read_text().splitlines()[-1])["recovered"] is True
    await capp.shutdown()

    again = make_app(settings)
    qtbot.addWidget(again.window)
    again.show()
    assert await again.window.offer_recovery() == []
    assert not again.window.recovery.isVisibleTo(again.window)
    await again.shutdown()


async def test_recovery_export_and_open_in_history(qtbot, settings, data_dir, tmp_path):
    a = write_journal("20240301-000000-audiopod", OLD, [("first crash", 0.0, 1.0)], False)
    b = write_journal("20240302-000000-audiopod", NEWER, [("second crash", 0.0, 1.0)], False, title="Interview")
    capp = make_app(settings)
    qtbot.addWidget(capp.window)
    capp.show()
    w = capp.window
    offered = await w.offer_recovery()
    assert [i.path for i in offered] == [b, a]  # newest first
    assert "— Interview was not finished" in w.recovery.label.text() and "1 more after this one" in w.recovery.label.text()

    target = tmp_path / "interview.vtt"
    w.recovery.ask_export = lambda stem: (str(target), "vtt") if stem == "Interview" else None
    w.recovery.export_button.click()
    await w.settle()
    assert "second crash" in target.read_text()
    assert load_journal(b)[1].finished
    assert w.recovery.current.path == a  # on to the next one

    w.recovery.open_button.click()  # not marked: just opened in the history
    await w.settle()
    assert w.history is not None and w.history.isVisible()
    assert w.history.current_info().path == a
    assert w.history.view.toPlainText() == "first crash\n"
    assert not w.recovery.isVisibleTo(w)
    assert not load_journal(a)[1].finished
    await capp.shutdown()


async def test_a_session_deleted_in_the_history_is_no_longer_offered_for_recovery(qtbot, settings, data_dir):
    """The bar kept offering it; Export then failed with "No such file"."""
    a = write_journal("20240301-000000-audiopod", OLD, [("first crash", 0.0, 1.0)], False)
    b = write_journal("20240302-000000-audiopod", NEWER, [("second crash", 0.0, 1.0)], False)
    capp = make_app(settings)
    qtbot.addWidget(capp.window)
    capp.show()
    w = capp.window
    await w.offer_recovery()
    assert w.recovery.current.path == b
    await w.open_history()
    assert await w.history.delete(b)
    assert w.recovery.current.path == a and "1 more" not in w.recovery.label.text()
    assert await w.history.delete(a)
    assert not w.recovery.isVisibleTo(w)
    await capp.shutdown()


async def test_recovery_export_error_is_shown_and_it_stays_offered(qtbot, data_dir, tmp_path):
    path = write_journal("20240301-000000-audiopod", OLD, [("words", 0.0, 1.0)], False)
    bar = RecoveryBar()
    qtbot.addWidget(bar)
    await bar.check()
    assert not await bar.export(str(tmp_path / "missing" / "x.txt"), "txt")
    assert bar.label.text().startswith(f"Export failed: cannot write {tmp_path / 'missing' / 'x.txt'}")
    assert bar.current.path == path and not load_journal(path)[1].finished


async def test_this_runs_own_and_the_running_journal_are_never_offered(qtbot, data_dir):
    bar = RecoveryBar()
    qtbot.addWidget(bar)
    mine = SessionJournal.create("audiopod", "mic")  # started by this run
    mine(Final("mine", 0.0, 1.0))
    mine.close(finished=False)
    old = write_journal("20240301-000000-audiopod", OLD, [("old", 0.0, 1.0)], False)
    running = write_journal("20240302-000000-audiopod", NEWER, [("running", 0.0, 1.0)], False)
    bar.active_path = lambda: running
    assert [i.path for i in await bar.check()] == [old]
    assert not bar.isHidden() and "was not finished" in bar.label.text()


async def test_history_button_opens_the_window(qtbot, settings, journals):
    capp = make_app(settings)
    qtbot.addWidget(capp.window)
    capp.show()
    capp.window.history_button.click()
    await capp.settle()
    assert capp.window.history.isVisible() and len(capp.window.history.rows()) == 2
    await capp.shutdown()


async def test_open_history_follows_a_session_that_ends(qtbot, settings, tone_wav):
    from captioner import keys
    from captioner.audio.sources import WavFileSource
    from tests.fakes.audiopod import FakeAudioPod

    async with FakeAudioPod() as fake:
        keys.set_key("audiopod", fake.key)
        controller = CaptionController(source_factory=lambda d: WavFileSource(tone_wav[0], speed=0.0))
        capp = CaptionerApp(settings, build_parser().parse_args([]), controller, tray_available=False, device_lister=lambda: [])
        w = capp.window
        qtbot.addWidget(w)
        w.show()
        h = await w.open_history()
        assert h.rows() == []
        w.provider_combo.setCurrentIndex(w.provider_combo.findData("audiopod"))
        w.endpoint_edit.setText(fake.url)
        assert await w.start()
        await controller.wait()
        await w.settle()
    assert [r[2:4] + r[5:] for r in h.rows()] == [["AudioPod", "3", ""]]  # reloaded when it ended
    await capp.shutdown()
