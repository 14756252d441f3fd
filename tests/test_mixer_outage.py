"""Mixed inputs through a device outage: an input that was lost keeps its
place against the others, and a stretch no input captured is the mix's own
gap — visible, with every later caption at its true time."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from captioner.audio.mixer import MixedSource, Mixer
from captioner.captioning import CaptionJob, caption_source, make_session
from captioner.stt.events import Gap
from captioner.stt.session import RetryPolicy, SessionConfig
from tests.conftest import SCRIPT
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.tones import synthesize
from tests.helpers import EventLog, ScriptedInput

FAST = RetryPolicy(first_delay=0.01, base_delay=0.02, max_delay=0.05)



def _drain(mixer: Mixer) -> list[tuple[np.ndarray, bool]]:
    out = []
    while (block := mixer.next_block()) is not None:
        out.append((block, mixer.heard))
    return out


def test_when_every_input_was_out_the_mix_has_a_hole_of_that_length():
    n = 100
    mixer = Mixer(2, n, max_lag_frames=1000, gain=1.0)
    for i in (0, 1):
        mixer.put(i, np.full(2 * n, 0.1, np.float32))
    before = _drain(mixer)
    assert [heard for _, heard in before] == [True, True]
    for i in (0, 1):  # both devices lost (the sound server died), then back
        mixer.gap(i, 5 * n)
        mixer.put(i, np.full(n, 0.2, np.float32))
    after = _drain(mixer)
    assert [heard for _, heard in after] == [False] * 5 + [True]
    assert np.allclose(after[-1][0], 0.4)


def test_an_input_out_while_the_other_delivers_stays_aligned():
    """Silence was filled in for the lost input while the other delivered: its
    gap is that time already, so its audio after the outage is not pushed later."""
    n, lag = 100, 300
    mixer = Mixer(2, n, max_lag_frames=lag, gain=1.0)
    a = np.arange(30 * n, dtype=np.float32) / 1e6  # input 0: a ramp that tells each frame's place
    mixer.put(0, a[: 2 * n])
    mixer.put(1, np.zeros(2 * n, np.float32))
    out = [b for b, _ in _drain(mixer)]
    # input 1 is lost for 10 blocks; input 0 goes on delivering
    for k in range(2, 12):
        mixer.put(0, a[k * n : (k + 1) * n])
        out += [b for b, _ in _drain(mixer)]
    assert mixer.stalls[1] == 1
    mixer.gap(1, 10 * n)  # input 1 is back: it missed 10 blocks
    marker = np.full(n, 0.5, np.float32)
    mixer.put(1, marker)  # its first block after the outage, captured at block 12
    for k in range(12, 16):
        mixer.put(0, a[k * n : (k + 1) * n])
        if k == 12:
            mixer.put(1, np.zeros(3 * n, np.float32))
        out += [b for b, _ in _drain(mixer)]
    mixed = np.concatenate(out)
    where = int(np.argmax(mixed > 0.4))
    assert where == 12 * n  # at its true place: not 10 blocks late


class OutageSource(ScriptedInput):
    """An input that speaks `audio` in 20 ms blocks and loses its device for
    `outage` (start, seconds): that audio is never delivered, and it reports
    the loss like MicrophoneSource does (on_device_state, then on_gap)."""

    def __init__(self, audio: np.ndarray, rate: int, outage: tuple[float, float], name: str) -> None:
        super().__init__(name, rate)
        self.audio, self.outage = audio, outage

    async def _gen(self):
        step = self.sample_rate // 50
        start, seconds = (int(x * self.sample_rate) for x in self.outage)
        at = 0
        while at < len(self.audio):
            if at == start:
                self.on_device_state(False)
                await asyncio.sleep(0.05)
                at += seconds  # never captured
                self.on_gap(seconds / self.sample_rate, "input device interrupted")
                self.on_device_state(True)
            yield self.audio[at : at + step]
            at += step
            await asyncio.sleep(0)


async def test_a_mix_whose_inputs_all_fail_has_a_gap_and_later_captions_keep_their_times():
    """The sound server dies: both mixed inputs lose the same 0.6 s (in a pause,
    so no word is cut). The transcript shows that gap where it was, and every
    later word at its true time — not 0.6 s early, as when the mix simply
    resumed as if nothing had been missed."""
    rate = 16000
    first, said_first = synthesize(SCRIPT[:1], rate=rate, tail_s=2.0)  # a long pause after it…
    rest, said_rest = synthesize(SCRIPT[1:], rate=rate)
    audio = np.concatenate([first, rest])
    offset = len(first) / rate
    words = said_first.words + [(w, a + offset, b + offset) for w, a, b in said_rest.words]
    room = np.zeros_like(audio)
    outage = (1.9, 0.6)  # …in which both inputs are lost
    assert words[2][2] < outage[0] and words[3][1] > sum(outage) + 0.8
    mixed = MixedSource(OutageSource(audio, rate, outage, "meet"), OutageSource(room, rate, outage, "mic"))
    states: list[bool] = []
    mixed.on_device_state = states.append
    async with FakeAudioPod() as fake:
        session = make_session(CaptionJob("audiopod", {}, fake.url), fake.key, SessionConfig(fake.url), FAST)
        log = EventLog()
        async with mixed:
            await caption_source(mixed, session, [log], live=False, provider="audiopod")
    assert fake.violations == []
    (gap,) = [e for e in log.events if isinstance(e, Gap)]
    assert gap.start == pytest.approx(outage[0], abs=0.03) and gap.end - gap.start == pytest.approx(outage[1], abs=0.03)
    got = [w for f in log.finals for w in f.words]
    assert [w.text for w in got] == [w for w, _, _ in words]
    for word, (_, start, _) in zip(got, words):
        assert abs(word.start - start) < 0.08, (word, start)
    assert states == [False, True]  # told once for both inputs, and once when all were back


def test_a_mix_reports_a_lost_input_once_until_every_input_is_back():
    class Input:
        sample_rate = 16000
        on_gap = on_device_state = on_notice = None

    a, b = Input(), Input()
    mixed = MixedSource(a, b)
    seen: list[bool] = []
    mixed.on_device_state = seen.append
    a.on_device_state(False)
    b.on_device_state(False)
    a.on_device_state(True)
    assert seen == [False]
    b.on_device_state(True)
    assert seen == [False, True]
