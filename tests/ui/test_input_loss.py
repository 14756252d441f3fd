"""The input device lost mid-session, as the app shows it: the overlay's status
(not only the control window's notices) says so while it is reopened, the
meter drops to silence instead of freezing at the last level, and "Live"
comes back with the audio."""

from __future__ import annotations

import asyncio


from captioner import keys
from captioner.app import CaptionerApp, build_parser
from captioner.stt.events import SessionState, StateChanged
from captioner.stt.session import RetryPolicy
from captioner.ui.controller import CaptionController
from tests.conftest import SCRIPT
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.tones import synthesize
from tests.helpers import ScriptedInput

INPUT_LOST = "input device lost"
FAST_RETRY = RetryPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.05, max_attempts=2)


class LosingInput(ScriptedInput):
    """A live input (tone speech in 20 ms blocks) whose device is lost after
    `lose_at` seconds and back when `back` is set, reporting it as
    MicrophoneSource does: on_device_state(False) … on_gap, on_device_state(True)."""

    def __init__(self, lose_at: float) -> None:
        super().__init__("USB Mic", 16000)
        self.audio, _ = synthesize(SCRIPT, rate=self.sample_rate, amplitude=0.5)
        self.lose_at = int(lose_at * self.sample_rate)
        self.lost = asyncio.Event()
        self.back = asyncio.Event()

    async def _gen(self):
        step = self.sample_rate // 50
        for at in range(0, len(self.audio), step):
            if at == self.lose_at:
                self.tell("notice", "the input device 'USB Mic' stopped delivering audio; trying to reopen it…")
                self.tell("device_state", False)
                self.lost.set()
                await self.back.wait()
                self.tell("gap", 0.5, "input device interrupted for 0.5 s")
                self.tell("notice", "capturing again from 'USB Mic'")
                self.tell("device_state", True)
            yield self.audio[at : at + step]
            await asyncio.sleep(0.002)


async def _until(predicate, timeout: float = 10.0) -> None:  # noqa: ANN001
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_a_lost_input_shows_on_the_overlay_and_live_returns_with_the_audio(qtbot, settings):
    source = LosingInput(lose_at=1.0)
    controller = CaptionController(source_factory=lambda device: source, retry=FAST_RETRY)
    controller.LEVEL_INTERVAL = 0.0
    capp = CaptionerApp(settings, build_parser().parse_args([]), controller, tray_available=False, device_lister=lambda: [])
    qtbot.addWidget(capp.window)
    qtbot.addWidget(capp.overlay)
    capp.show()
    levels: list[float] = []
    controller.level.connect(levels.append)
    notices: list[str] = []
    controller.notice.connect(notices.append)
    async with FakeAudioPod() as fake:
        keys.set_key("audiopod", fake.key)
        assert await controller.start("audiopod", {}, fake.url, device="USB Mic")
        await _until(lambda: controller.state == "live")
        await asyncio.wait_for(source.lost.wait(), 10)
        await capp.settle()
        assert (controller.state, controller.detail) == ("reconnecting", INPUT_LOST)
        assert capp.overlay.status_text() == (f"Reconnecting… {INPUT_LOST}", "reconnecting")
        assert capp.window.status_label.text() == f"Reconnecting… ({INPUT_LOST})"
        assert max(levels) > -20 and levels[-1] == -120.0  # the meter fell silent, not frozen at speech
        # The session's own "live" (a reconnect that ended meanwhile) does not hide the lost input.
        controller._on_event(StateChanged(SessionState.LIVE))
        await capp.settle()
        assert capp.overlay.status_text()[1] == "reconnecting" and controller.detail == INPUT_LOST
        source.back.set()
        await _until(lambda: controller.state == "live")
        await capp.settle()
        assert capp.overlay.status_text() == ("Live", "live")
        assert capp.window.status_label.text().startswith("Live")
        controller.stop()
        await controller.wait()
    assert notices[:2] == ["the input device 'USB Mic' stopped delivering audio; trying to reopen it…", "capturing again from 'USB Mic'"]
    transcript = controller.live_transcript()
    assert any(getattr(seg, "gap", False) for seg in transcript.segments)  # the outage is on the timeline
    await capp.shutdown()
