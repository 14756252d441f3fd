"""The control window driven end to end against the strict fake AudioPod,
fed from tone WAVs through the controller's injectable source factory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import keyring
from keyring.backends.fail import Keyring as FailKeyring
from PySide6.QtCore import QRect, Qt

from captioner import keys
from captioner.app import CaptionerApp, build_parser
from captioner.audio.sources import WavFileSource
from captioner.stt.session import RetryPolicy
from captioner.ui import control_window
from captioner.ui.controller import CaptionController
from tests.conftest import SCRIPT, MemoryKeyring
from tests.fakes.audiopod import FakeAudioPod

FAST_RETRY = RetryPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.05, max_attempts=2)
FINALS = [" ".join(u) for u in SCRIPT]


def make_app(settings, wav: Path, args: list[str] | None = None, speed: float = 0.0) -> CaptionerApp:  # noqa: ANN001
    sources: list[str | None] = []

    def source_factory(device: str | None) -> WavFileSource:
        sources.append(device)
        return WavFileSource(wav, speed=speed)

    controller = CaptionController(source_factory=source_factory, retry=FAST_RETRY)
    controller.LEVEL_INTERVAL = 0.0  # every block reaches the meter: unpaced files run in milliseconds
    capp = CaptionerApp(settings, build_parser().parse_args(args or []), controller, tray_available=False, device_lister=lambda: [])
    capp.sources = sources  # type: ignore[attr-defined]
    return capp


async def shown(qtbot, capp: CaptionerApp) -> None:  # noqa: ANN001
    """Both windows on screen, as after start-up, and closed with the test."""
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    capp.show()
    await capp.after_first_paint()


async def finish(capp: CaptionerApp) -> None:
    await capp.settle()
    await capp.controller.wait()
    await capp.settle()


def transcript_lines(capp: CaptionerApp) -> list[str]:
    return [line for line in capp.window.transcript_view.toPlainText().splitlines() if line]


async def captioned(qtbot, settings, wav: Path, fake: FakeAudioPod) -> CaptionerApp:  # noqa: ANN001
    """The app, shown, after a whole session captioned from the window (AudioPod's fake)."""
    keys.set_key("audiopod", fake.key)
    capp = make_app(settings, wav, ["--provider", "audiopod", "--endpoint", fake.url])
    qtbot.addWidget(capp.window)
    capp.show()
    await capp.after_first_paint()
    assert await capp.window.start()
    await finish(capp)
    return capp


async def test_start_button_captions_a_session_end_to_end(qtbot, settings, tone_wav, tmp_path, data_dir):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        keys.set_key("audiopod", fake.key)
        capp = make_app(settings, wav)
        qtbot.addWidget(capp.window)
        qtbot.addWidget(capp.overlay)
        capp.show()
        w = capp.window
        w.provider_combo.setCurrentIndex(w.provider_combo.findData("audiopod"))
        await w.refresh_key_status()
        assert w.key_status.text() == "Key: stored in the OS keyring"
        w.endpoint_edit.setText(fake.url)
        w._option_widgets["language"].setText("fr")
        states: list[str] = []
        capp.controller.state_changed.connect(lambda s, d: states.append(s))
        levels: list[float] = []
        capp.controller.level.connect(levels.append)
        w.start_button.click()
        await finish(capp)
    assert fake.violations == []
    assert transcript_lines(capp) == FINALS
    assert [line.text for line in capp.overlay.renderer.lines] == FINALS  # 3 lines fit the default 3
    assert capp.overlay.renderer.partial is None
    assert "connecting" in states and "live" in states and states[-1] == "idle"
    assert w.status_label.text() == "Not captioning"
    assert w.start_button.text() == "Start captioning" and w.start_button.isEnabled()
    assert levels and max(levels) > -20  # the tones moved the meter
    assert all(b.isEnabled() for b in w.export_buttons.values())
    # choices are remembered, the key is not
    settings.sync()
    assert settings.provider == "audiopod" and settings.endpoint("audiopod") == fake.url
    # the session was journaled to disk as it ran
    journals = list((data_dir / "sessions").glob("*.jsonl"))
    assert len(journals) == 1
    items = [json.loads(line) for line in journals[0].read_text().splitlines()]
    assert [i["text"] for i in items if i["type"] == "final"] == FINALS
    assert items[-1]["type"] == "end"
    facts = {"language": "fr", "options": {"language": "fr", "diarize": False, "word_units": "auto", "rollover_margin_s": 20.0}}
    assert {k: items[0].get(k) for k in facts} == facts  # what a recovered session's export says
    # exports through the same buttons' code path
    for fmt in ("srt", "vtt", "txt", "json"):
        target = tmp_path / f"out.{fmt}"
        w.ask_save_path = lambda _fmt, t=target: str(t)
        assert await w.export_dialog(fmt) == str(target)
    assert (tmp_path / "out.txt").read_text() == "\n".join(FINALS) + "\n"
    assert (tmp_path / "out.srt").read_text().startswith("1\n00:00:00,")
    assert (tmp_path / "out.vtt").read_text().startswith("WEBVTT")
    exported = json.loads((tmp_path / "out.json").read_text())
    assert exported["provider"] == "audiopod" and {k: exported.get(k) for k in facts} == facts
    await capp.shutdown()


async def test_command_line_start_begins_at_once(qtbot, settings, tone_wav):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        keys.set_key("audiopod", fake.key)
        capp = make_app(settings, wav, ["--provider", "audiopod", "--device", "Fake Mic", "--endpoint", fake.url, "--start"])
        await shown(qtbot, capp)
        await finish(capp)
    assert capp.window.provider_id == "audiopod"
    assert capp.sources == ["Fake Mic"]  # the device reached the source factory
    assert transcript_lines(capp) == FINALS
    await capp.shutdown()


async def test_stop_ends_gracefully_mid_session(qtbot, settings, tone_wav):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        keys.set_key("audiopod", fake.key)
        capp = make_app(settings, wav, ["--provider", "audiopod", "--endpoint", fake.url], speed=4.0)
        qtbot.addWidget(capp.window)
        capp.show()
        first = asyncio.get_running_loop().create_future()

        def on_event(event) -> None:  # noqa: ANN001
            if type(event).__name__ == "Final" and not first.done():
                first.set_result(event)

        capp.controller.caption_event.connect(on_event)
        await capp.after_first_paint()
        assert await capp.window.start()
        await asyncio.wait_for(first, 10)
        assert capp.controller.running
        capp.window.toggle_start()  # the Stop button
        assert capp.window.start_button.text() == "Stopping…"
        await finish(capp)
    assert not capp.controller.running
    lines = transcript_lines(capp)
    assert lines[0] == FINALS[0] and len(lines) < len(FINALS)
    assert fake.records[0].messages[-1] == {"type": "end"}  # asked the provider to finish
    await capp.shutdown()


async def test_stop_pressed_while_starting_is_not_lost(qtbot, settings, tone_wav):
    """Start, then Stop while the key is still being read: the session went
    live anyway and the button stayed at "Stopping…" for the whole session."""
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        capp = make_app(settings, wav, ["--provider", "audiopod", "--endpoint", fake.url], speed=1.0)
        qtbot.addWidget(capp.window)
        capp.show()
        reading = asyncio.Event()

        async def slow_keyring(provider: str) -> str:
            reading.set()
            await asyncio.sleep(0.3)  # a keyring that asks to be unlocked
            return fake.key

        capp.controller.key_getter = slow_keyring
        await capp.after_first_paint()
        w = capp.window
        w.toggle_start()  # Start
        await asyncio.wait_for(reading.wait(), 5)
        w.toggle_start()  # Stop, while the key is read
        assert w.start_button.text() == "Stopping…"
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(0.5)
        await asyncio.wait_for(finish(capp), 5)
        assert loop.time() - t0 < 3.0  # not the file's 5.5 s of audio
    assert not capp.controller.running
    assert w.start_button.text() == "Start captioning" and w.start_button.isEnabled()
    assert len(transcript_lines(capp)) < len(FINALS)
    await capp.shutdown()


async def test_a_starting_session_offers_no_export_of_the_last_one_and_its_clock_reads_zero(qtbot, settings, tone_wav):
    """While the next session connected, Export wrote the previous session's
    captions and the clock showed its time."""
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        capp = await captioned(qtbot, settings, wav, fake)
        w = capp.window
        assert all(b.isEnabled() for b in w.export_buttons.values())
        capp.controller._started_at -= 75  # as if the last session had run 75 s
        w._tick()
        assert w.timer_label.text() != "00:00:00"
        reading = asyncio.Event()

        async def slow_keyring(provider: str) -> str:
            reading.set()
            await asyncio.sleep(0.3)
            return fake.key

        capp.controller.key_getter = slow_keyring
        w.toggle_start()
        await asyncio.wait_for(reading.wait(), 5)
        assert not any(b.isEnabled() for b in w.export_buttons.values())
        assert w.timer_label.text() == "00:00:00"
        await finish(capp)
        assert all(b.isEnabled() for b in w.export_buttons.values())  # the new session's captions
    await capp.shutdown()


async def test_refused_key_is_shown_in_words_without_the_key(qtbot, settings, tone_wav):
    wav, _ = tone_wav
    async with FakeAudioPod() as fake:
        keys.set_key("audiopod", "ap_wrong_key_zzzz")
        capp = make_app(settings, wav, ["--provider", "audiopod", "--endpoint", fake.url])
        qtbot.addWidget(capp.window)
        capp.show()
        await capp.after_first_paint()
        await capp.window.start()
        await finish(capp)
    text = capp.window.status_label.text()
    assert text.startswith("Error: AudioPod: the provider rejected the API key")
    assert text.endswith("(KEY_REJECTED) — replace the key in Settings → API keys")
    assert "ap_wrong_key_zzzz" not in text
    assert capp.overlay.status_text()[1] == "error"
    assert "rejected the API key" in capp.overlay.status_text()[0]
    assert not any(b.isEnabled() for b in capp.window.export_buttons.values())  # nothing to export
    await capp.shutdown()


async def test_missing_key_and_missing_keyring_are_explained(qtbot, settings, tone_wav):
    wav, _ = tone_wav
    capp = make_app(settings, wav, ["--provider", "audiopod"])
    qtbot.addWidget(capp.window)
    capp.show()
    await capp.after_first_paint()
    assert capp.window.key_status.text().startswith("Key: none yet")
    assert not await capp.window.start()
    assert capp.window.status_label.text() == "Error: no API key for AudioPod: add one in Settings → API keys"
    keyring.set_keyring(FailKeyring())
    await capp.window.refresh_key_status()
    assert capp.window.key_status.text() == "Key: the OS keyring is not available"
    assert not await capp.window.start()
    assert "the OS keyring is not available" in capp.window.status_label.text()
    assert capp.sources == []  # nothing was opened
    await capp.shutdown()


def shown_status(capp: CaptionerApp) -> tuple[str, str]:
    """(the window's status line, the overlay's status colour key)."""
    return capp.window.status_label.text(), capp.overlay.status_text()[1]


NOT_CAPTIONING = ("Not captioning", "idle")


async def store_key_in_settings(capp: CaptionerApp, pid: str, key: str) -> None:
    capp.open_settings()
    d = capp.dialog
    d.key_edits[pid].setText(key)
    d.save()  # stores it in the keyring, then closes
    await d.settle()
    await capp.settle()


async def test_a_no_key_error_goes_once_a_key_is_stored_for_that_provider(qtbot, settings, tone_wav):
    """The key line said "stored in the OS keyring" while the overlay (always
    on top) and the window still said "Error: no API key for AudioPod"."""
    capp = make_app(settings, tone_wav[0], ["--provider", "audiopod"])
    await shown(qtbot, capp)
    assert not await capp.window.start()
    no_key = ("Error: no API key for AudioPod: add one in Settings → API keys", "error")
    assert shown_status(capp) == no_key
    await store_key_in_settings(capp, "uglabs", "ug_some_key_1234")
    assert shown_status(capp) == no_key  # still true: AudioPod has no key
    await store_key_in_settings(capp, "audiopod", "ap_new_key_5678")
    assert capp.window.key_status.text() == "Key: stored in the OS keyring"
    assert shown_status(capp) == NOT_CAPTIONING
    await capp.shutdown()


async def test_a_refused_key_error_goes_once_a_new_key_is_stored(qtbot, settings, tone_wav):
    async with FakeAudioPod() as fake:
        keys.set_key("audiopod", "ap_wrong_key_zzzz")
        capp = make_app(settings, tone_wav[0], ["--provider", "audiopod", "--endpoint", fake.url])
        await shown(qtbot, capp)
        await capp.window.start()
        await finish(capp)
        assert shown_status(capp)[1] == "error" and "KEY_REJECTED" in shown_status(capp)[0]
        await store_key_in_settings(capp, "audiopod", fake.key)
        assert shown_status(capp) == NOT_CAPTIONING
        await capp.window.start()  # and the new key works
        await finish(capp)
        assert transcript_lines(capp) == FINALS
    await capp.shutdown()


async def test_choosing_another_provider_clears_only_errors_about_the_last_one(qtbot, settings, tone_wav):
    from captioner.audio.feed import AudioSourceError

    capp = make_app(settings, tone_wav[0], ["--provider", "audiopod"])
    await shown(qtbot, capp)
    combo = capp.window.provider_combo
    assert not await capp.window.start()
    assert shown_status(capp)[1] == "error"
    combo.setCurrentIndex(combo.findData("local"))  # needs no key
    assert shown_status(capp) == NOT_CAPTIONING
    # The OS keyring failing is still true for any provider that needs a key.
    combo.setCurrentIndex(combo.findData("audiopod"))
    keyring.set_keyring(FailKeyring())
    assert not await capp.window.start()
    keyring_error = shown_status(capp)
    assert keyring_error[1] == "error" and "keyring" in keyring_error[0]
    combo.setCurrentIndex(combo.findData("uglabs"))
    assert shown_status(capp) == keyring_error
    combo.setCurrentIndex(combo.findData("local"))
    assert shown_status(capp) == NOT_CAPTIONING
    # The input failing is true whatever the provider.
    capp.controller.source_factory = lambda device: (_ for _ in ()).throw(AudioSourceError("the microphone is gone"))
    combo.setCurrentIndex(combo.findData("audiopod"))
    keyring.set_keyring(MemoryKeyring())
    keys.set_key("audiopod", "ap_some_key_1234")
    assert not await capp.window.start()
    assert shown_status(capp) == ("Error: the microphone is gone", "error")
    combo.setCurrentIndex(combo.findData("local"))
    assert shown_status(capp) == ("Error: the microphone is gone", "error")
    await capp.shutdown()


async def test_open_saved_sessions_folder(qtbot, settings, tone_wav, data_dir):
    capp = make_app(settings, tone_wav[0])
    qtbot.addWidget(capp.window)
    opened = []
    capp.window.open_url = lambda url: opened.append(url.toLocalFile()) or True
    capp.window.open_folder_button.click()
    await capp.settle()
    assert opened == [str(data_dir / "sessions")]
    assert (data_dir / "sessions").is_dir()


async def test_overlay_actions_hotkeys_and_no_tray_fallback(qtbot, settings, tone_wav):
    capp = make_app(settings, tone_wav[0])
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    capp.show()
    w, ov = capp.window, capp.overlay
    assert "No system tray" in w.banner.text() and w.banner.isVisibleTo(w)
    w.pin_check.setChecked(True)
    assert ov.pinned
    ov.set_pinned(False)
    assert not w.pin_check.isChecked()  # kept in sync both ways
    w.show_overlay_check.setChecked(False)
    assert not ov.isVisible()
    shortcuts = {sc.key().toString(): sc for sc in w._shortcuts}
    assert set(shortcuts) == {"Ctrl+Shift+L", "Ctrl+Shift+O", "Ctrl+Shift+R"}
    assert all(sc.context() == Qt.ShortcutContext.ApplicationShortcut for sc in shortcuts.values())
    shortcuts["Ctrl+Shift+L"].activated.emit()
    assert ov.pinned and w.pin_check.isChecked()
    shortcuts["Ctrl+Shift+O"].activated.emit()
    assert ov.isVisible()
    quits = []
    w.quit_requested.connect(lambda: quits.append(1))
    w.close()  # without a tray, closing the window quits
    assert quits == [1]
    await capp.settle()


async def test_the_overlay_is_moved_from_the_keyboard(qtbot, settings, tone_wav):
    """The overlay never takes focus: the control window's Top and Bottom
    buttons, reached with Tab and pressed with Space, move it."""
    capp = make_app(settings, tone_wav[0])
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    capp.show()
    w, ov = capp.window, capp.overlay
    qtbot.waitExposed(w)
    ov.setGeometry(QRect(40, 300, 520, 140))
    area = ov.screen().availableGeometry()
    top, bottom = w.place_buttons["top"], w.place_buttons["bottom"]
    assert top.text() == "&Top" and bottom.text() == "&Bottom"
    assert w.pin_check.nextInFocusChain() is top and top.nextInFocusChain() is bottom
    top.setFocus()
    qtbot.keyClick(top, Qt.Key.Key_Space)
    assert ov.geometry().top() < area.top() + area.height() // 4 and ov.size().width() == 520
    assert abs(ov.geometry().center().x() - area.center().x()) <= 1
    bottom.setFocus()
    qtbot.keyClick(bottom, Qt.Key.Key_Space)
    assert ov.geometry().bottom() > area.bottom() - area.height() // 4 and ov.size().width() == 520
    await capp.settle()


async def test_markup_in_a_providers_error_is_shown_as_written(qtbot, settings, tone_wav):
    """An error message is the provider's text: "<b>" in it is not bold."""
    capp = make_app(settings, tone_wav[0])
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    w = capp.window
    w._on_state("error", "bad request: <b>ja</b> is not <big>a&lt;b</big>")
    assert "<b>ja</b> is not <big>a&lt;b</big>" in w.status_label.text()
    assert w.status_label.textFormat() == Qt.TextFormat.PlainText
    assert w.banner.textFormat() == w.key_status.textFormat() == Qt.TextFormat.PlainText
    await capp.settle()


def test_wayland_is_detected_and_explained(qtbot, settings, tone_wav, monkeypatch):
    monkeypatch.setattr(control_window, "is_wayland", lambda: True)
    capp = make_app(settings, tone_wav[0])
    qtbot.addWidget(capp.window)
    assert "QT_QPA_PLATFORM=xcb" in capp.window.banner.text()
    assert "Wayland" in capp.window.banner.text()


async def test_all_five_providers_and_accessible_names(qtbot, settings, tone_wav):
    from PySide6.QtWidgets import QAbstractButton, QComboBox, QLineEdit

    capp = make_app(settings, tone_wav[0])
    w = capp.window
    qtbot.addWidget(w)
    ids = [w.provider_combo.itemData(i) for i in range(w.provider_combo.count())]
    assert sorted(ids) == sorted(["uglabs", "audiopod", "voicerun", "smallest", "inworld", "local"])
    for i in range(w.provider_combo.count()):
        w.provider_combo.setCurrentIndex(i)  # every provider's options form builds
        assert w.options_form.rowCount() >= 1
    for cls in (QAbstractButton, QComboBox, QLineEdit):
        for child in w.findChildren(cls):
            if child.isVisibleTo(w) and not child.objectName().startswith("qt_"):
                if isinstance(child, QLineEdit) and isinstance(child.parent(), QComboBox):
                    continue
                assert child.accessibleName(), f"{type(child).__name__} {getattr(child, 'text', lambda: '')()!r} has no accessible name"
    await w.settle()


def test_level_meter_keeps_the_peak_of_each_interval(qapp):
    c = CaptionController()
    c.LEVEL_INTERVAL = 10.0
    got: list[float] = []
    c.level.connect(got.append)
    c._on_level(-50.0)
    c._on_level(-10.0)
    c._on_level(-40.0)
    assert got == [-50.0]
    c._last_level_at -= 20
    c._on_level(-60.0)
    assert got == [-50.0, -10.0]  # the short loud block was not lost


async def test_while_audio_flows_the_lag_is_polled_on_its_blocks_not_by_a_timer(qapp):
    """The lag poll rides on audio blocks, which wake the app anyway; its timer
    is only the fallback for when no block comes, and must not fire (a wake-up
    of its own, twice a second) while they do."""
    import asyncio
    import types

    c = CaptionController()
    c.session = types.SimpleNamespace(lag=0.25)
    lags: list[float] = []
    c.lag_changed.connect(lags.append)
    fired: list[int] = []
    c._lag_timer.timeout.connect(lambda: fired.append(1))
    c._lag_timer.start()
    try:
        for _ in range(20):  # two seconds of 100 ms blocks
            await asyncio.sleep(0.1)
            c._on_level(-30.0)
        assert fired == [] and 3 <= len(lags) <= 4
        await asyncio.sleep(c._lag_timer.interval() / 1000 + 0.3)  # the blocks stop: the fallback polls
        assert fired and len(lags) >= 4
    finally:
        c._lag_timer.stop()


async def test_tray_menu_mirrors_app_state(qtbot, settings, tone_wav):
    capp = CaptionerApp(settings, build_parser().parse_args([]), CaptionController(), tray_available=True, device_lister=lambda: [])
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    capp.show()
    tray = capp.tray
    assert "No system tray" not in capp.window.banner.text()
    assert tray.overlay_action.text() == "Hide overlay"
    tray.pin_action.trigger()
    assert capp.overlay.pinned and tray.pin_action.text() == "Unpin overlay"
    tray.pin_action.trigger()
    assert not capp.overlay.pinned
    area = capp.overlay.screen().availableGeometry()
    tray.pin_action.trigger()  # pinned, and moved without unpinning
    tray.place_actions["top"].trigger()
    assert capp.overlay.pinned and capp.overlay.geometry().top() < area.top() + area.height() // 4
    tray.place_actions["bottom"].trigger()
    assert capp.overlay.pinned and capp.overlay.geometry().bottom() > area.bottom() - area.height() // 4
    tray.pin_action.trigger()
    tray.overlay_action.trigger()
    assert not capp.overlay.isVisible() and tray.overlay_action.text() == "Show overlay"
    capp.window.close()  # with a tray, closing hides to the tray instead of quitting
    assert not capp.window.isVisible() and not capp.closed.is_set()
    await capp.shutdown()
    assert capp.closed.is_set()


async def test_the_gc_check_rides_on_the_loops_drains_not_a_timer(qapp):
    """While the loop is busy (captioning wakes it ~20 times a second), the GC
    check runs after its drains, once an interval; its timer, a fallback for
    an idle app, does not fire."""
    import asyncio
    import gc
    import time

    from captioner.app import MainThreadGC

    was = gc.isenabled()
    collector = MainThreadGC(interval_ms=200)
    checks: list[float] = []
    real_check = collector.check
    collector.check = lambda: (checks.append(time.monotonic()), real_check())  # type: ignore[method-assign]
    fired: list[int] = []
    collector._timer.timeout.connect(lambda: fired.append(1))
    loop = asyncio.get_running_loop()
    collector.ride(loop)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:
            await asyncio.sleep(0.05)  # each wake-up drains the loop
        assert fired == [] and 4 <= len(checks) <= 6
        assert all(b - a >= 0.19 for a, b in zip(checks, checks[1:]))
    finally:
        loop.after_drain = None
        collector.stop()
        if not was:
            gc.disable()


def test_gc_runs_on_the_gui_thread_only(qapp):
    import gc

    from captioner.app import MainThreadGC

    was = gc.isenabled()
    gc.enable()
    collector = MainThreadGC(interval_ms=10_000)
    try:
        assert not gc.isenabled()
        junk = []
        for _ in range(gc.get_threshold()[0] + 10):
            a: list = []
            a.append(a)
            junk.append(a)
        del junk, a
        assert gc.get_count()[0] > gc.get_threshold()[0]
        collector.check()
        assert gc.get_count()[0] < gc.get_threshold()[0]
    finally:
        collector.stop()
        assert gc.isenabled()
        if not was:
            gc.disable()


async def test_words_finalized_after_an_outage_began_are_shown_before_its_gap(qtbot, settings, tone_wav):
    """As in the exports: the device was lost at 7.98 s and said so at
    once; "juliet hotel" (7.32–7.92 s) was finalized after that."""
    capp = make_app(settings, tone_wav[0])
    w = capp.window
    qtbot.addWidget(w)
    from captioner.stt.events import Final, Gap

    w._on_caption_event(Final("before", 5.0, 6.0))
    w._on_caption_event(Gap(7.98, 11.26, "the input device was lost"))
    w._on_caption_event(Final("juliet hotel", 7.32, 7.92))
    w._on_caption_event(Final("after", 11.5, 12.0))
    lines = transcript_lines(capp)
    assert lines[:2] == ["before", "juliet hotel"] and lines[2].startswith("[…]") and lines[3] == "after"
    await capp.settle()


async def test_a_notice_about_the_last_session_goes_when_the_next_one_starts(qtbot, settings, tone_wav):
    capp = make_app(settings, tone_wav[0])
    w = capp.window
    qtbot.addWidget(w)
    w.show_notice("The input device stopped delivering audio; trying to reopen it…")
    assert "trying to reopen" in w.banner.text()
    await w.start()
    await finish(capp)
    assert "trying to reopen" not in w.banner.text()


async def test_a_key_with_a_pasted_character_is_named_at_once_as_a_key_problem(qtbot, settings, tone_wav, monkeypatch):
    """A key from the environment holding a pasted "…" is refused before
    connecting, as a key error (not "could not start"), without the key."""
    monkeypatch.setenv("CAPTIONER_AUDIOPOD_KEY", "ap_key_1234\u2026")
    capp = make_app(settings, tone_wav[0], ["--provider", "audiopod"])
    await shown(qtbot, capp)
    assert not await capp.window.start()
    status, colour = shown_status(capp)
    assert colour == "error" and "AudioPod key cannot be used" in status and "U+2026" in status, status
    assert "could not start" not in status and "ap_key_1234" not in status
    assert capp.controller.error_cause == ("key", "audiopod")
    await capp.shutdown()


async def test_a_key_refused_in_a_providers_own_words_goes_once_a_new_key_is_stored(qtbot, settings, tone_wav):
    """AudioPod's INVALID_API_KEY (Inworld's UNAUTHENTICATED, …) is about the
    key as much as KEY_REJECTED is."""
    from tests.fakes.base import Fault

    async with FakeAudioPod() as fake:
        fake.faults.append(Fault("error", after_bytes=1, payload={"type": "error", "code": "INVALID_API_KEY",
                                                                 "message": "no such key"}))
        keys.set_key("audiopod", fake.key)
        capp = make_app(settings, tone_wav[0], ["--provider", "audiopod", "--endpoint", fake.url])
        await shown(qtbot, capp)
        await capp.window.start()
        await finish(capp)
        assert shown_status(capp)[1] == "error" and "INVALID_API_KEY" in shown_status(capp)[0]
        await store_key_in_settings(capp, "audiopod", "ap_new_key_5678")
        assert shown_status(capp) == NOT_CAPTIONING
    await capp.shutdown()
