"""The window's JSON export says what `captioner export` of the same
session says: how much audio it took in and how it ended."""

from __future__ import annotations

import json

from captioner.transcript.export import to_json
from captioner.transcript.journal import load_journal
from tests.fakes.audiopod import FakeAudioPod
from tests.ui.test_control_window import captioned

FACTS = ("provider", "source", "started_at", "audio_duration", "outcome", "language", "options")


async def test_the_windows_json_export_carries_the_sessions_length_and_outcome(qtbot, settings, tone_wav, tmp_path, data_dir):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        capp = await captioned(qtbot, settings, wav, fake)
    target = tmp_path / "window.json"
    capp.window.ask_save_path = lambda _fmt: str(target)
    assert await capp.window.export_dialog("json") == str(target)
    window = json.loads(target.read_text())
    (journal,) = (data_dir / "sessions").glob("*.jsonl")
    cli = json.loads(to_json(load_journal(journal)[0]))  # what `captioner export SESSION --json` writes
    assert window["outcome"] == "completed" and window["audio_duration"] > 0
    assert {k: window.get(k) for k in FACTS} == {k: cli.get(k) for k in FACTS}
    assert window["segments"] == cli["segments"]
    await capp.shutdown()
