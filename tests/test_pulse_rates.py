"""Each PulseAudio source is listed, and opened, at its own sample rate and
channel count, checked against a real server with sinks of different rates."""

from __future__ import annotations

import asyncio
import subprocess

import captioner.audio.sources as sources
from captioner.audio import pulse as pulse_mod
from captioner.audio.sources import MicrophoneSource
from tests.pulse import pulse  # noqa: F401  (fixture)


async def test_each_monitor_is_listed_and_opened_at_its_own_rate(pulse, monkeypatch):  # noqa: F811
    """pulsectl's sample_spec outlives libpulse's memory: read late, every
    monitor had the rate of the last one listed (a 48 kHz monitor was opened
    at 8 kHz, and a 6 kHz tone in it was lost)."""
    for name, rate, channels in (("six", 48000, 6), ("cd", 44100, 2), ("phone", 8000, 1)):
        subprocess.run(
            ["pactl", "load-module", "module-null-sink", f"sink_name={name}", f"rate={rate}", f"channels={channels}"],
            env=pulse.env, check=True, capture_output=True,
        )
    for key in ("PULSE_SERVER", "PULSE_COOKIE"):
        monkeypatch.setenv(key, pulse.env[key])
    expected = [("captions.monitor", 48000, 1), ("six.monitor", 48000, 6), ("cd.monitor", 44100, 2), ("phone.monitor", 8000, 1)]
    listed = await asyncio.to_thread(pulse_mod.list_sources)
    assert [(s.name, s.rate, s.channels) for s in listed] == expected
    via_pactl = await asyncio.to_thread(pulse_mod._list_with_pactl, 5.0)
    assert [(s.name, s.rate, s.channels) for s in via_pactl] == expected
    try:
        await asyncio.to_thread(sources.refresh_input_devices)
        mic = await asyncio.to_thread(MicrophoneSource, "captions.monitor")
        assert mic.sample_rate == 48000
    finally:
        for key in ("PULSE_SERVER", "PULSE_COOKIE"):
            monkeypatch.delenv(key)
        await asyncio.to_thread(sources._refresh_devices)

