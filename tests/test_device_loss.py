"""A capture device that goes away mid-session: noticed (even when the sound
server quietly moves the stream to another source), never swapped for another
device, reopened when it returns, and its outage a gap measured on the audio's
own clock. Mixed inputs: tests/test_mixer_outage.py."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import types

import numpy as np
import pytest

import captioner.audio.sources as sources
from captioner.audio import pulse as pulse_mod
from captioner.audio.feed import AudioFeed, AudioSourceError
from captioner.audio.sources import MicrophoneSource
from tests.fakes.tones import write_wav
from tests.helpers import FakeStream
from tests.pulse import pulse  # noqa: F401  (fixture)

OK = types.SimpleNamespace(input_overflow=False)


def fake_sd(devices: list[dict], default: int = 0) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        InputStream=FakeStream,
        query_devices=lambda: list(devices),
        query_hostapis=lambda: [{"name": "ALSA"}],
        default=types.SimpleNamespace(device=(default, 0)),
        _terminate=lambda: None,
        _initialize=lambda: None,
    )


def device(name: str) -> dict:
    return {"name": name, "max_input_channels": 1, "hostapi": 0, "default_samplerate": 16000.0}


async def _new_stream_after(old: FakeStream, timeout: float = 5.0) -> FakeStream:
    for _ in range(int(timeout / 0.01)):
        if FakeStream.instances[-1] is not old:
            return FakeStream.instances[-1]
        await asyncio.sleep(0.01)
    raise AssertionError("the device was not reopened")


# ------------------------------------------------------------- one input


async def test_the_outage_lasts_until_audio_flows_again_not_until_the_reopen(monkeypatch):
    """A reopened sound-server stream delivers its first block seconds after it
    opens (an idle monitor: ~2 s). That time is missing audio too: counted only
    up to the reopen, every later caption came that much too early."""
    monkeypatch.setattr(sources, "_sd", lambda: fake_sd([device("USB Mic")]))
    mic = MicrophoneSource("USB Mic", reopen_timeout=5)
    gaps: list[float] = []
    states: list[bool] = []
    mic.on_gap = lambda seconds, why: gaps.append(seconds)
    mic.on_device_state = states.append
    await mic.start()
    first = FakeStream.instances[-1]
    got: list[float] = []

    async def consume() -> None:
        async for block in mic:
            got.append(float(block[0, 0]))
            if len(got) == 2:
                mic.stop()

    task = asyncio.ensure_future(consume())
    first.kwargs["callback"](np.full((320, 1), 0.1, np.float32), 320, None, OK)
    await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()
    lost_at = loop.time()
    first.kwargs["finished_callback"]()  # the stream dies
    second = await _new_stream_after(first)  # reopened at once…
    await asyncio.sleep(0.6)  # …but its audio only starts 0.6 s later
    assert gaps == []  # not yet: the outage is not over before audio flows
    assert states == [False]
    flows_at = loop.time()
    second.kwargs["callback"](np.full((320, 1), 0.2, np.float32), 320, None, OK)
    await asyncio.wait_for(task, 5)
    assert got == [pytest.approx(0.1), pytest.approx(0.2)]
    assert states == [False, True]
    # Missing: from the loss to where the first new block's audio began (320 frames = 20 ms before it came).
    assert gaps == [pytest.approx(flows_at - lost_at - 0.02, abs=0.05)]


async def test_a_chosen_device_is_never_swapped_for_the_default(monkeypatch):
    """The device captioned (a meeting's monitor, a headset) goes away: the
    default input hears something else, so the session waits for the chosen
    one and then ends with a clear error — it never captions the wrong room."""
    devices = [device("Built-in Mic"), device("USB Headset")]
    monkeypatch.setattr(sources, "_sd", lambda: fake_sd(devices, default=0))
    mic = MicrophoneSource("USB Headset", reopen_timeout=0.4)
    await mic.start()
    first = FakeStream.instances[-1]
    assert first.kwargs["device"] == 1
    del devices[1]  # unplugged for good
    first.kwargs["finished_callback"]()

    async def consume() -> None:
        async for _ in mic:
            pass

    with pytest.raises(AudioSourceError, match=r"'USB Headset' stopped delivering audio, and it did not come back within 0.4 s"):
        await asyncio.wait_for(consume(), 5)
    assert FakeStream.instances[-1] is first  # nothing else was opened


async def test_the_default_input_follows_the_new_default(monkeypatch):
    """Asked for the default input, the new default is the right device."""
    devices = [device("USB Headset"), device("Built-in Mic")]
    monkeypatch.setattr(sources, "_sd", lambda: fake_sd(devices, default=0))
    mic = MicrophoneSource(None, reopen_timeout=5)
    await mic.start()
    first = FakeStream.instances[-1]
    del devices[0]  # the headset goes; the built-in mic is the default now
    first.kwargs["finished_callback"]()
    blocks = mic.__aiter__()
    pending = asyncio.ensure_future(blocks.__anext__())
    second = await _new_stream_after(first)
    assert mic.device.name == "Built-in Mic"
    second.kwargs["callback"](np.full((160, 1), 0.3, np.float32), 160, None, OK)
    assert float((await asyncio.wait_for(pending, 5))[0, 0]) == pytest.approx(0.3)
    mic.stop()


async def test_audio_after_a_loss_is_refused_until_the_device_is_back():
    """A stream the sound server moved elsewhere goes on delivering: once the
    loss is known, what it delivers is not the chosen device's audio."""
    feed = AudioFeed()
    feed.push(np.full((4, 1), 0.1, np.float32))
    feed.fail(AudioSourceError("the input device 'meet.monitor' was disconnected"))
    feed.push(np.full((4, 1), 0.9, np.float32))  # the fallback source's audio
    it = feed.__aiter__()
    assert float((await it.__anext__())[0, 0]) == pytest.approx(0.1)
    with pytest.raises(AudioSourceError, match="disconnected"):
        await it.__anext__()
    feed.clear_error()
    feed.push(np.full((4, 1), 0.2, np.float32))  # the device is back
    assert float((await it.__anext__())[0, 0]) == pytest.approx(0.2)


async def test_a_late_stop_callback_of_the_old_stream_does_not_fail_the_new_one(monkeypatch):
    monkeypatch.setattr(sources, "_sd", lambda: fake_sd([device("USB Mic")]))
    mic = MicrophoneSource("USB Mic", reopen_timeout=5)
    await mic.start()
    first = FakeStream.instances[-1]
    blocks = mic.__aiter__()
    pending = asyncio.ensure_future(blocks.__anext__())
    first.kwargs["finished_callback"]()
    second = await _new_stream_after(first)
    first.kwargs["finished_callback"]()  # again, late: it must be ignored
    await asyncio.sleep(0.05)
    second.kwargs["callback"](np.full((160, 1), 0.4, np.float32), 160, None, OK)
    assert float((await asyncio.wait_for(pending, 5))[0, 0]) == pytest.approx(0.4)
    assert FakeStream.instances[-1] is second
    mic.stop()


# ------------------------------------------------------- real PulseAudio


def _module_of(pulse, sink: str) -> str:  # noqa: F811
    out = subprocess.run(["pactl", "list", "short", "modules"], env=pulse.env, capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        if f"sink_name={sink}" in line:
            return line.split("\t")[0]
    raise AssertionError(f"no module for {sink}")


async def _use_server(pulse, monkeypatch) -> None:  # noqa: F811
    for key in ("PULSE_SERVER", "PULSE_COOKIE"):
        monkeypatch.setenv(key, pulse.env[key])
    await asyncio.to_thread(sources.refresh_input_devices)  # PortAudio meets this server


async def test_an_unloaded_monitor_is_noticed_not_replaced_by_the_fallback_source(pulse, tmp_path, monkeypatch):  # noqa: F811
    """The meeting's sink goes away while its monitor is captioned. PulseAudio
    moves the recording stream to the fallback source (the default sink's
    monitor, here playing a loud tone) and the stream never ends: before, that
    other audio was captioned as the meeting's, with no word said. Now the
    loss is noticed, nothing of the other source gets through, and the session
    ends with a clear error when the device does not come back; then, played
    again, the device is reopened by name."""
    meeting = pulse.add_sink("meeting")
    await _use_server(pulse, monkeypatch)
    try:
        tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(48000 * 8) / 48000)
        wav = write_wav(tmp_path / "other.wav", tone[:, None].astype(np.float32), 48000)
        other = pulse.play(wav, "captions")  # what the fallback source hears
        mic = MicrophoneSource(meeting, sample_rate=48000, channels=1, reopen_timeout=1.5)
        notices: list[str] = []
        states: list[bool] = []
        mic.on_notice, mic.on_device_state = notices.append, states.append
        got: list[np.ndarray] = []

        async def record() -> None:
            async for block in mic:
                got.append(block[:, 0].copy())

        async with mic:
            task = asyncio.ensure_future(record())
            await asyncio.sleep(1.0)
            heard_before = sum(len(b) for b in got)
            subprocess.run(["pactl", "unload-module", _module_of(pulse, "meeting")], env=pulse.env, check=True)
            with pytest.raises(AudioSourceError) as caught:
                await asyncio.wait_for(task, 10)
        other.terminate()
        other.wait(5)
        assert heard_before > 0
        audio = np.concatenate(got)
        assert float(np.abs(audio).max()) < 1e-3, "the fallback source's tone was captured"
        assert str(caught.value) == f"the input device {meeting!r} was disconnected, and it did not come back within 1.5 s"
        assert notices == [f"the input device {meeting!r} was disconnected; trying to reopen it…"]
        assert states == [False]
    finally:
        for key in ("PULSE_SERVER", "PULSE_COOKIE"):
            monkeypatch.delenv(key)
        await asyncio.to_thread(sources._refresh_devices)


async def test_a_monitor_that_comes_back_is_reopened_by_name(pulse, tmp_path, monkeypatch):  # noqa: F811
    meeting = pulse.add_sink("meeting")
    await _use_server(pulse, monkeypatch)
    try:
        mic = MicrophoneSource(meeting, sample_rate=48000, channels=1, reopen_timeout=10)
        gaps: list[float] = []
        states: list[bool] = []
        mic.on_gap, mic.on_device_state = (lambda s, why: gaps.append(s)), states.append
        tone = 0.4 * np.sin(2 * np.pi * 660 * np.arange(48000 * 2) / 48000)
        wav = write_wav(tmp_path / "meet.wav", tone[:, None].astype(np.float32), 48000)
        got: list[np.ndarray] = []
        back = asyncio.Event()

        async def record() -> None:
            async for block in mic:
                got.append(block[:, 0].copy())
                if states == [False, True]:
                    back.set()

        async with mic:
            task = asyncio.ensure_future(record())
            await asyncio.sleep(0.5)
            subprocess.run(["pactl", "unload-module", _module_of(pulse, "meeting")], env=pulse.env, check=True)
            await asyncio.sleep(1.0)
            subprocess.run(
                ["pactl", "load-module", "module-null-sink", "sink_name=meeting", "rate=48000", "channels=1"],
                env=pulse.env, check=True, capture_output=True,
            )
            player = pulse.play(wav, "meeting")
            await asyncio.wait_for(back.wait(), 15)
            await asyncio.sleep(1.0)
            mic.stop()
            await asyncio.wait_for(task, 5)
            player.wait(10)
        assert states == [False, True] and mic.device.name == meeting
        assert len(gaps) == 1 and gaps[0] >= 0.9  # at least the second it was gone
        assert float(np.abs(np.concatenate(got)).max()) > 0.3  # the meeting is heard again
    finally:
        for key in ("PULSE_SERVER", "PULSE_COOKIE"):
            monkeypatch.delenv(key)
        await asyncio.to_thread(sources._refresh_devices)


def test_a_source_watch_reports_a_removed_source_and_stops_quietly(pulse, monkeypatch):  # noqa: F811
    meeting = pulse.add_sink("meeting")
    for key in ("PULSE_SERVER", "PULSE_COOKIE"):
        monkeypatch.setenv(key, pulse.env[key])
    gone, wrongly_gone = threading.Event(), threading.Event()
    watch = pulse_mod.SourceWatch(meeting, gone.set).start()
    idle = pulse_mod.SourceWatch("captions.monitor", wrongly_gone.set).start()
    assert watch.ready.wait(5) and idle.ready.wait(5)
    subprocess.run(["pactl", "unload-module", _module_of(pulse, "meeting")], env=pulse.env, check=True)
    assert gone.wait(5)
    watch.join(5)
    idle.stop()
    idle.join(5)
    assert not watch._thread.is_alive() and not idle._thread.is_alive()
    assert not wrongly_gone.is_set()  # captions.monitor is still there; a stop is not a loss
    missing = threading.Event()
    pulse_mod.SourceWatch("no.such.monitor", missing.set).start().join(5)
    assert missing.is_set()


def test_listen_duration_counts_the_audio_not_the_wall_clock(monkeypatch, tmp_path):
    """`listen --duration 3` with the process standing still from 1 s to 4 s
    (the computer slept): the wall clock ran out while it stood still, and
    the session ended the moment it woke, throwing away the 3 s the sound
    server had kept. Now it ends after 3 s of audio, the kept audio in."""
    import json
    import time

    from bench.common import FakeProcess
    from captioner import cli

    monkeypatch.setattr(sources, "_sd", lambda: fake_sd([device("Mic")]))
    monkeypatch.setattr(sources, "_pulse_monitors", lambda: [])
    ok = types.SimpleNamespace(input_overflow=False)
    stop = threading.Event()

    def drive() -> None:  # PortAudio's thread: 100-ms blocks of a tone, with their capture times
        while not FakeStream.instances:
            time.sleep(0.01)
        stream, captured, t = FakeStream.instances[-1], 1000.0, np.arange(1600) / 16000
        block = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32).reshape(-1, 1)
        began = time.monotonic()
        for i in range(200):
            if stop.is_set():
                return
            if i == 10:
                time.sleep(3.0)  # asleep: then what the server kept comes at once
            if i < 10 or i >= 40:
                time.sleep(max(0.0, began + 0.1 * i + (3.0 if i >= 10 else 0.0) - time.monotonic()))
            stream.kwargs["callback"](block, 1600, types.SimpleNamespace(inputBufferAdcTime=captured), ok)
            captured += 0.1

    driver = threading.Thread(target=drive, daemon=True)
    FakeStream.instances.clear()
    with FakeProcess("audiopod") as fake:
        monkeypatch.setenv("CAPTIONER_AUDIOPOD_KEY", fake.key)
        driver.start()
        try:
            code = cli.main(["listen", "--provider", "audiopod", "--endpoint", fake.url, "--device", "Mic",
                             "--duration", "3", "--json", str(tmp_path / "out.json"), "--no-save"])
        finally:
            stop.set()
            driver.join(5)
    assert code == 0
    heard = json.loads((tmp_path / "out.json").read_text())["audio_duration"]
    assert 3.0 <= heard < 5.5, heard  # not 1 s
