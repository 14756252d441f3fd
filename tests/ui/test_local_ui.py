"""The app with no key at all: the built-in offline engine is preselected,
needs no keyring, captions real speech, and shows a model download."""

from __future__ import annotations

import keyring
import pytest
from keyring.backends.fail import Keyring as FailKeyring

from captioner.stt.local.events import ModelProgress
from tests.speech import SENTENCES, MissingTool, sentence_wav, wer
from tests.ui.test_control_window import finish, make_app, transcript_lines

SPOKEN = SENTENCES[:2]


async def test_first_run_with_no_key_captions_offline(qtbot, settings, tmp_path):
    try:
        wav, _ = sentence_wav(tmp_path, SPOKEN)
    except MissingTool as exc:
        pytest.fail(str(exc))
    keyring.set_keyring(FailKeyring())  # no keyring at all: the offline engine must not ask it
    capp = make_app(settings, wav)
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    capp.show()
    w = capp.window
    assert w.provider_id == "local"  # nothing saved, no key in the environment
    assert "basic accuracy, on this computer" in w.provider_combo.currentText()
    await w.refresh_key_status()
    assert w.key_status.text() == "Key: none needed — audio stays on this computer"
    states: list[str] = []
    capp.controller.state_changed.connect(lambda s, d: states.append(s))
    assert await w.start()
    await finish(capp)
    lines = transcript_lines(capp)
    assert len(lines) == len(SPOKEN) and wer(" ".join(SPOKEN), " ".join(lines)) <= 0.3, lines
    assert "live" in states and states[-1] == "idle", states
    assert settings.provider == "local"
    await capp.shutdown()


async def test_model_download_progress_is_a_progress_bar(qtbot, settings, tone_wav):
    capp = make_app(settings, tone_wav[0])
    qtbot.addWidget(capp.window)
    w = capp.window
    assert w.model_progress.isHidden()
    capp.controller.caption_event.emit(ModelProgress(10_000_000, 40_000_000))
    assert not w.model_progress.isHidden() and w.model_progress.value() == 250
    assert w.model_progress.accessibleName() == "Speech model download"
    capp.controller.state_changed.emit("live", "vosk on this computer")
    assert w.model_progress.isHidden()
    await w.settle()


def test_a_saved_provider_this_version_lacks_opens_the_keyless_engine(qtbot, settings, tmp_path):
    """`provider=deepgram` in the INI opened UG Labs (the list's first), which needs a key."""
    settings.provider = "deepgram"
    capp = make_app(settings, tmp_path / "unused.wav")
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    assert capp.window.provider_id == "local"
