"""What a session leaves for recovery, and a failing journal told at once:
real captioning sessions (fake AudioPod, a tone WAV as the input) through
the GUI's controller, journals in the temp CAPTIONER_DATA_DIR."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from captioner.app import CaptionerApp, build_parser
from captioner.audio.sources import WavFileSource
from captioner.transcript.journal import SessionJournal, list_sessions, load_journal
from captioner.ui.controller import CaptionController
from tests.helpers import FlakyFile
from tests.conftest import SCRIPT
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.base import Fault

FINALS = [" ".join(u) for u in SCRIPT]


def controller_for(wav: Path, key: str, speed: float = 0.0, journal_factory: Any = None) -> CaptionController:
    async def get_key(_provider: str) -> str:
        return key

    kwargs = {} if journal_factory is None else {"journal_factory": journal_factory}
    return CaptionController(source_factory=lambda _d: WavFileSource(wav, speed=speed), key_getter=get_key, **kwargs)


def journals(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "sessions").glob("*.jsonl"))


async def offered_at_next_start(qtbot, settings) -> list[Any]:  # noqa: ANN001
    """What a new Captioner offers for recovery."""
    capp = CaptionerApp(settings, build_parser().parse_args([]), CaptionController(), tray_available=False, device_lister=lambda: [])
    qtbot.addWidget(capp.window)
    capp.show()
    offered = await capp.window.offer_recovery()
    await capp.shutdown()
    return offered


async def test_a_refused_key_leaves_nothing_to_recover(qtbot, settings, tone_wav, data_dir):
    async with FakeAudioPod() as fake:
        c = controller_for(tone_wav[0], "WRONG_key_zz9")
        assert await c.start("audiopod", endpoint=fake.url)
        await c.wait()
    assert c.state == "error" and "Invalid API key" in c.detail
    assert journals(data_dir) == []  # not even an empty journal
    assert await offered_at_next_start(qtbot, settings) == []


async def test_a_session_that_failed_after_captions_is_closed_not_offered(qtbot, settings, tone_wav, data_dir):
    async with FakeAudioPod() as fake:
        # after the first utterance (16 kHz, 16-bit mono): out of credits
        fake.faults.append(Fault("error", after_bytes=int(2.2 * 32000),
                                 payload={"type": "error", "code": "INSUFFICIENT_CREDITS", "message": "no credits"}))
        c = controller_for(tone_wav[0], fake.key)
        assert await c.start("audiopod", endpoint=fake.url)
        await c.wait()
    assert c.state == "error" and "INSUFFICIENT_CREDITS" in c.detail
    (path,) = journals(data_dir)
    transcript, info = load_journal(path)
    assert [s.text for s in transcript.segments] == FINALS[:1]
    assert info.finished and transcript.outcome == "failed" and transcript.error == "INSUFFICIENT_CREDITS"
    assert transcript.audio_duration and transcript.audio_duration > 2
    assert await offered_at_next_start(qtbot, settings) == []


async def test_a_stopped_session_is_recorded_as_stopped(tone_wav, data_dir):
    async with FakeAudioPod() as fake:
        c = controller_for(tone_wav[0], fake.key, speed=4.0)
        c.caption_event.connect(lambda e: c.stop() if type(e).__name__ == "Final" else None)
        assert await c.start("audiopod", endpoint=fake.url)
        await c.wait()
    (info,) = list_sessions()
    transcript, _ = load_journal(info.path)
    assert info.finished and transcript.outcome == "stopped" and info.segments >= 1


def full_disk(real: Any) -> FlakyFile:
    """The journal's file with a full disk, until `full` is cleared."""
    disk = FlakyFile(real)
    disk.full = True
    return disk


async def test_a_full_disk_is_told_at_once_and_so_is_its_end(tone_wav, data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(SessionJournal, "RETRY_SECONDS", 0.05)
    disks: list[FlakyFile] = []

    def journal_factory(provider: str, source: str, **facts: Any) -> SessionJournal:
        j = SessionJournal.create(provider, source)
        j._file = disks.append(full_disk(j._file)) or disks[0]
        return j

    notices: list[tuple[str, bool, str]] = []
    async with FakeAudioPod() as fake:
        c = controller_for(tone_wav[0], fake.key, speed=4.0, journal_factory=journal_factory)

        def noticed(text: str) -> None:
            notices.append((text, c.running, c.state))
            if "not being saved" in text:
                disks[0].full = False  # space comes back while captioning goes on

        c.notice.connect(noticed)
        assert await c.start("audiopod", endpoint=fake.url)
        await c.wait()
    assert len(notices) == 2, notices
    failing, again = notices
    assert failing[0] == (
        "Captions are not being saved to disk: No space left on device. They are kept in memory "
        "and saved as soon as writing works again; Export also has them all."
    )
    assert failing[1:] == (True, "live")  # during the session, not after Stop
    assert again[0].startswith("Captions are being saved to disk again") and again[1]
    # nothing was lost: the journal and the export hold every caption
    (path,) = journals(data_dir)
    transcript, info = load_journal(path)
    assert [s.text for s in transcript.segments] == FINALS and info.finished
    await c.export("txt", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "\n".join(FINALS) + "\n"
    assert [json.loads(line)["type"] for line in path.read_text().splitlines()][-2:] == ["summary", "end"]


async def test_a_disk_still_full_at_the_end_is_said_and_the_export_has_everything(tone_wav, data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(SessionJournal, "RETRY_SECONDS", 0.05)

    def journal_factory(provider: str, source: str, **facts: Any) -> SessionJournal:
        j = SessionJournal.create(provider, source)
        j._file = full_disk(j._file)
        return j

    notices: list[str] = []
    async with FakeAudioPod() as fake:
        c = controller_for(tone_wav[0], fake.key, journal_factory=journal_factory)
        c.notice.connect(notices.append)
        assert await c.start("audiopod", endpoint=fake.url)
        await c.wait()
    assert notices[0].startswith("Captions are not being saved to disk: No space left on device.")
    assert notices[-1] == "The saved session misses captions (No space left on device): export it now to keep every caption."
    await c.export("txt", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "\n".join(FINALS) + "\n"
