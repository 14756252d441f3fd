"""The device picker (display names, system audio, help, hot-plug refresh),
"also caption what I hear" mixing, and the meter-only input test."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

from captioner import keys
from captioner.app import CaptionerApp, build_parser
from captioner.audio.mixer import MixedSource
from captioner.audio.sources import BACKEND_PULSE, KIND_SYSTEM, InputDevice, WavFileSource, system_audio_help
from captioner.ui.control_window import NO_INPUT_HELP, NO_INPUT_ITEM, SYSTEM_HEADER
from captioner.ui.controller import CaptionController
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.tones import write_wav
from tests.ui.test_control_window import FAST_RETRY, FINALS, finish, transcript_lines

MIC = InputDevice(3, "hw:CARD=USB,DEV=0", "ALSA", 1, 48000.0, True, label="USB Mic")
SPEAKERS = InputDevice(
    7, "alsa_output.pci.analog-stereo.monitor", "PulseAudio monitor", 2, 48000.0, False,
    kind=KIND_SYSTEM, backend=BACKEND_PULSE, target="alsa_output.pci.analog-stereo.monitor",
    label="Built-in Audio — what you hear",
)
HEADSET = InputDevice(4, "Headset", "ALSA", 1, 16000.0, False)


class TrackedWav(WavFileSource):
    """A WAV source that logs when it is opened and closed."""

    def __init__(self, path: Path, tag: str, log: list[str], speed: float = 0.0) -> None:
        super().__init__(path, speed=speed)
        self.tag, self.log = tag, log

    async def __aenter__(self) -> "TrackedWav":
        self.log.append(f"open {self.tag}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.log.append(f"close {self.tag}")


def make_app(settings, lister, factory=None) -> CaptionerApp:  # noqa: ANN001
    controller = CaptionController(source_factory=factory, retry=FAST_RETRY)
    controller.LEVEL_INTERVAL = 0.0
    capp = CaptionerApp(settings, build_parser().parse_args([]), controller, tray_available=False, device_lister=lister)
    return capp


def combo_rows(combo) -> list[tuple[str, object, bool]]:  # noqa: ANN001
    model = combo.model()
    return [(combo.itemText(i), combo.itemData(i), model.item(i).isEnabled()) for i in range(combo.count())]


async def test_picker_shows_display_names_and_groups_system_audio(qtbot, settings):
    capp = make_app(settings, lambda: [MIC, HEADSET, SPEAKERS])
    w = capp.window
    qtbot.addWidget(w)
    await w.load_devices()
    assert combo_rows(w.device_combo) == [
        ("System default input", "", True),
        ("USB Mic (default)", MIC.name, True),
        ("Headset", "Headset", True),
        ("", None, False),  # separator
        (SYSTEM_HEADER, None, False),  # a heading that cannot be chosen
        ("    Built-in Audio — what you hear", SPEAKERS.name, True),
    ]
    assert SYSTEM_HEADER == "Speakers — what you hear"
    assert combo_rows(w.mix_combo) == [("Built-in Audio — what you hear", SPEAKERS.name, True)]
    assert w.mix_check.isEnabled() and w.system_help.isHidden()
    assert "System audio" in w.device_combo.itemData(5, Qt.ItemDataRole.ToolTipRole)

    # the choice is remembered by name, not by the label
    w.device_combo.setCurrentIndex(5)
    await w.start()  # no key: it stops early, but the choices are saved
    assert settings.device == SPEAKERS.name
    capp2 = make_app(settings, lambda: [MIC, HEADSET, SPEAKERS])
    qtbot.addWidget(capp2.window)
    await capp2.window.load_devices()
    assert capp2.window.device_combo.currentData() == SPEAKERS.name
    await w.settle()


async def test_without_system_audio_the_help_is_shown_and_mixing_is_off(qtbot, settings):
    capp = make_app(settings, lambda: [MIC])
    w = capp.window
    qtbot.addWidget(w)
    w.show()
    await w.load_devices()
    expected = system_audio_help([MIC])
    assert expected and w.system_help.text() == expected and w.system_help.isVisible()
    assert SYSTEM_HEADER not in [w.device_combo.itemText(i) for i in range(w.device_combo.count())]
    assert not w.mix_check.isEnabled() and w.mix_combo.count() == 0
    w.mix_check.setChecked(True)
    assert w.chosen_devices() == ("", None)  # no system audio: nothing to mix


async def test_with_no_input_at_all_the_picker_says_so_and_how_to_get_one(qtbot, settings):
    plugged: list[InputDevice] = []
    capp = make_app(settings, lambda: list(plugged))
    w = capp.window
    qtbot.addWidget(w)
    w.show()
    await w.load_devices()
    assert combo_rows(w.device_combo) == [(NO_INPUT_ITEM, "", True)]  # not "System default input"
    assert w.system_help.isVisible() and w.system_help.text().startswith(NO_INPUT_HELP)
    plugged.append(MIC)
    w.refresh_devices_button.click()
    await w.settle()
    assert combo_rows(w.device_combo)[0] == ("System default input", "", True)
    assert NO_INPUT_HELP not in w.system_help.text()


async def test_refresh_on_demand_and_periodically_picks_up_hot_plugged_devices(qtbot, settings, tone_wav):
    plugged = [MIC]
    calls: list[int] = []

    def lister() -> list[InputDevice]:
        calls.append(1)
        return list(plugged)

    capp = make_app(settings, lister, lambda d: WavFileSource(tone_wav[0], speed=1.0))
    w = capp.window
    qtbot.addWidget(w)
    w.show()
    await w.load_devices()
    plugged.append(SPEAKERS)  # plugged in later
    w._auto_refresh_devices()  # the periodic timer's tick
    await w.settle()
    assert len(calls) == 2 and w.device_combo.findData(SPEAKERS.name) > 0
    assert w.system_help.isHidden()
    plugged.remove(SPEAKERS)
    w.refresh_devices_button.click()
    await w.settle()
    assert len(calls) == 3 and w.device_combo.findData(SPEAKERS.name) < 0
    # while the input test has a device open, the timer leaves PortAudio alone
    assert await w.test_input()
    w._auto_refresh_devices()
    await w.settle()
    assert len(calls) == 3
    await capp.controller.stop_monitor()
    assert w._device_timer.isActive() and w._device_timer.interval() >= 5000


async def test_mix_option_builds_a_mixed_source(qapp, tone_wav):
    made: list[str | None] = []

    def factory(device: str | None) -> WavFileSource:
        made.append(device)
        return WavFileSource(tone_wav[0])

    c = CaptionController(source_factory=factory)
    source = c.make_source("USB Mic", SPEAKERS.name)
    assert isinstance(source, MixedSource) and made == ["USB Mic", SPEAKERS.name]
    assert [type(s) for s in source.sources] == [WavFileSource, WavFileSource]
    made.clear()
    assert isinstance(c.make_source("USB Mic", None), WavFileSource) and made == ["USB Mic"]
    from captioner.audio.feed import AudioSourceError

    try:
        c.make_source(SPEAKERS.name, SPEAKERS.name)
    except AudioSourceError as exc:
        assert "chosen twice" in str(exc)
    else:
        raise AssertionError("the same device was opened twice")


async def test_also_caption_what_i_hear_end_to_end(qtbot, settings, tone_wav, tmp_path):
    wav, _ = tone_wav
    silence = write_wav(tmp_path / "quiet.wav", np.zeros((48000 * 2, 2), np.float32), 48000)
    made: list[str | None] = []

    def factory(device: str | None) -> WavFileSource:
        made.append(device)
        # paced like devices: two unpaced files race, and a loaded machine made the
        # mixer fill a "stalled" input with silence in the middle of a word
        return WavFileSource(silence if device == SPEAKERS.name else wav, speed=4.0)

    async with FakeAudioPod() as fake:
        keys.set_key("audiopod", fake.key)
        capp = make_app(settings, lambda: [MIC, SPEAKERS], factory)
        w = capp.window
        qtbot.addWidget(w)
        await w.load_devices()
        w.provider_combo.setCurrentIndex(w.provider_combo.findData("audiopod"))
        w.endpoint_edit.setText(fake.url)
        w.device_combo.setCurrentIndex(w.device_combo.findData(MIC.name))
        w.mix_check.setChecked(True)
        assert await w.start()
        source_name = capp.controller.source_name
        await finish(capp)
    assert made == [MIC.name, SPEAKERS.name]
    assert source_name == "speech.wav + quiet.wav"  # MixedSource's name: both inputs
    assert fake.violations == []
    assert transcript_lines(capp) == FINALS  # the speech survived the mix
    assert settings.mix_enabled and settings.mix_device == SPEAKERS.name
    await capp.shutdown()


async def test_choosing_a_device_moves_the_meter_before_captioning(qtbot, settings, tone_wav):
    made: list[str | None] = []

    def factory(device: str | None) -> WavFileSource:
        made.append(device)
        return WavFileSource(tone_wav[0], speed=0.0)  # unpaced: ends at once

    capp = make_app(settings, lambda: [MIC, SPEAKERS], factory)
    w = capp.window
    qtbot.addWidget(w)
    w.show()
    await w.load_devices()
    levels: list[float] = []
    capp.controller.level.connect(levels.append)
    states: list[bool] = []
    capp.controller.monitoring_changed.connect(states.append)
    meter: list[int] = []
    capp.controller.level.connect(lambda _db: meter.append(w.level_meter.value()))
    index = w.device_combo.findData(MIC.name)
    w.device_combo.setCurrentIndex(index)
    w.device_combo.activated.emit(index)  # the user picked it
    await w.settle()
    await capp.controller._monitor_task
    assert made == [MIC.name]
    assert max(levels) > -20 and max(meter) > 30  # the tones moved the meter
    assert states == [True, False]  # opened, and closed when the input ended
    assert not w.test_input_button.isChecked() and w.test_input_button.text() == "Test input"
    assert w.level_meter.value() == 0
    assert not capp.controller.running  # nothing was captioned or sent


async def test_the_input_test_is_closed_before_captioning_opens_the_device(qtbot, settings, tone_wav):
    wav, _ = tone_wav
    log: list[str] = []
    n = iter(range(100))

    def factory(device: str | None) -> WavFileSource:
        return TrackedWav(wav, f"#{next(n)}", log, speed=1.0)

    async with FakeAudioPod() as fake:
        keys.set_key("audiopod", fake.key)
        capp = make_app(settings, lambda: [MIC], factory)
        w = capp.window
        qtbot.addWidget(w)
        w.show()
        await w.load_devices()
        w.provider_combo.setCurrentIndex(w.provider_combo.findData("audiopod"))
        w.endpoint_edit.setText(fake.url)
        heard = asyncio.get_running_loop().create_future()
        capp.controller.level.connect(lambda db: db > -60 and not heard.done() and heard.set_result(db))
        w.test_input_button.click()  # "Test input"
        await w.settle()
        await asyncio.wait_for(heard, 10)
        assert w.test_input_button.isChecked() and capp.controller.monitoring
        assert await w.start()
        assert not capp.controller.monitoring and not w.test_input_button.isChecked()
        assert not w.test_input_button.isEnabled()  # no input test while captioning
        capp.controller.stop()
        await finish(capp)
    assert log[:3] == ["open #0", "close #0", "open #1"]  # never both open
    await capp.shutdown()


async def test_unchecking_test_input_closes_the_device(qtbot, settings, tone_wav):
    log: list[str] = []
    capp = make_app(settings, lambda: [MIC], lambda d: TrackedWav(tone_wav[0], "t", log, speed=1.0))
    w = capp.window
    qtbot.addWidget(w)
    w.show()
    w.test_input_button.click()
    await w.settle()
    assert capp.controller.monitoring and w.test_input_button.text() == "Stop test"
    await asyncio.sleep(0)  # let the monitor open its source
    w.test_input_button.click()
    await w.settle()
    assert not capp.controller.monitoring
    assert log == ["open t", "close t"]


async def test_input_overflow_and_device_notices_reach_the_window(qapp):
    """PortAudio's overflow flag and a full feed are counted by the source;
    the controller tells the user in words, once per change."""
    from captioner.audio.feed import FeedStats

    class Source:
        sample_rate = 16000
        on_notice = None

        def __init__(self) -> None:
            self.stats = FeedStats()

    c = CaptionController(source_factory=lambda device: Source())
    said: list[str] = []
    c.notice.connect(said.append)
    source = Source()
    c._source = source
    c._report_input_losses()
    assert said == []
    source.stats.device_overflows, source.stats.dropped_frames = 2, 8000
    c._report_input_losses()
    c._report_input_losses()  # nothing new: said once
    assert said == ["The input could not keep up: 2 overflow(s) reported by the audio device, 0.5 s of audio replaced by silence so far"]


async def test_long_help_is_never_squeezed_into_other_rows(qtbot, settings, monkeypatch):
    """The longest help (macOS) and the no-tray notice at the default window
    size: every wrapped label gets the height its text needs, and nothing in
    the left column overlaps the next row (the text was once cut mid-line)."""
    import captioner.audio.sources as sources

    monkeypatch.setattr(sources, "_platform", lambda: "darwin")
    capp = make_app(settings, lambda: [MIC])
    w = capp.window
    qtbot.addWidget(w)
    w.show()
    w.show_notice("No system tray was found: use this window (or the hotkeys) to start/stop, pin/unpin and show/hide the overlay.")
    await w.load_devices()
    w._on_state("error", "AudioPod rejected the API key (4401 unauthorized): check it in Settings → Keys")
    await asyncio.sleep(0.05)
    qtbot.wait(50)
    help_label = w.system_help
    assert help_label.isVisible() and "BlackHole" in help_label.text()
    for label in (help_label, w.banner, w.hotkey_hint, w.status_label):
        if label.isVisible() and label.text():
            assert label.height() >= label.heightForWidth(label.width()), label.accessibleName()
    # ...and the column's wrapped labels no more: no blank lines around their text either
    assert w.status_label.text().startswith("Error:")
    for label in (help_label, w.hotkey_hint, w.status_label):
        assert label.height() < label.heightForWidth(label.width()) + label.fontMetrics().lineSpacing(), label.accessibleName()
    below = w.level_meter.mapTo(w, w.level_meter.rect().topLeft()).y()
    assert help_label.mapTo(w, help_label.rect().bottomLeft()).y() < below
    # the column scrolls when it must, and never clips a control on the right
    from PySide6.QtWidgets import QScrollArea

    port = w.findChild(QScrollArea).viewport()
    for button in (w.refresh_devices_button, w.test_input_button):
        assert button.mapTo(port, button.rect().topRight()).x() < port.width()
