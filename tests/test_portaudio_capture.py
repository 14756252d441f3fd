"""The real PortAudio path: audio played into a PulseAudio null sink is captured
from its monitor by `captioner listen` (PortAudio callback → feed → resampler →
Int16LE → WebSocket) and captioned by the fake provider."""

from __future__ import annotations

import asyncio
import os
import sys

from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.tones import synthesize, write_wav
from tests.pulse import pulse  # noqa: F401  (fixture)

WORDS = [["alpha", "charlie", "echo"], ["golf", "india", "kilo"]]


async def start_listen(sound, fake, tmp_path, *outputs: str) -> tuple[asyncio.subprocess.Process, bytes]:
    """`captioner listen` on the tests' PulseAudio (`sound`) monitor, captioned by `fake`;
    returns once the capture stream is open (the CLI says so on stderr), with
    that first line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "captioner", "listen", "--provider", "audiopod", "--device", "pulse",
        "--endpoint", fake.url, *outputs,
        env={**sound.env, "CAPTIONER_AUDIOPOD_KEY": fake.key, "CAPTIONER_DATA_DIR": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    first = await asyncio.wait_for(proc.stderr.readline(), 30)
    assert first.startswith(b"listening on"), first
    return proc, first


async def test_listen_captions_what_the_device_hears(pulse, tmp_path):  # noqa: F811
    audio, spoken = synthesize(WORDS, rate=48000, lead_s=0.3, tail_s=1.0, amplitude=0.4)
    wav = write_wav(tmp_path / "speech.wav", audio, 48000)
    srt = tmp_path / "live.srt"
    async with FakeAudioPod() as fake:
        proc, first = await start_listen(pulse, fake, tmp_path, "--duration", "6", "--srt", str(srt))
        await asyncio.sleep(0.7)
        player = pulse.play(wav)
        out, rest = await asyncio.wait_for(proc.communicate(), 30)
        err = first + rest
        player.wait(10)
    assert proc.returncode == 0, err.decode()
    assert out.decode().splitlines() == [" ".join(u) for u in WORDS], err.decode()
    assert fake.violations == []
    # The fake heard about 6 s of 16 kHz mono: nothing lost, nothing doubled.
    assert abs(len(fake.records[0].audio) / 32000 - 6.0) < 0.5
    # Relative word timing survives the trip through the sound server.
    text = srt.read_text()
    assert text.startswith("1\n") and "alpha charlie echo" in text


def test_devices_lists_pulse(pulse):  # noqa: F811
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "captioner", "devices"], env={**os.environ, **pulse.env}, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    names = [line.split("\t")[1] for line in out.stdout.splitlines()]
    assert "pulse" in names


async def test_a_freeze_past_the_sound_servers_buffer_is_a_gap_and_later_times_stay_true(pulse, tmp_path):  # noqa: F811
    """`captioner listen` stopped (SIGSTOP: a laptop lid, a debugger, a
    starved VM) for 16 s: PulseAudio keeps ~12 s of its 44.1 kHz stereo float
    stream and throws the rest away, with no overflow flag. Before, the lost
    ~4 s vanished: no gap, and every later word came ~4 s early. Now the
    capture timeline's jump is a gap, and a word spoken after the freeze is
    placed where it was said."""
    import json
    import signal
    import time

    before, said_before = synthesize([WORDS[0]], rate=48000, lead_s=0.3, tail_s=0.3, amplitude=0.4)
    after, said_after = synthesize([WORDS[1]], rate=48000, lead_s=0.3, tail_s=1.0, amplitude=0.4)
    wavs = write_wav(tmp_path / "before.wav", before, 48000), write_wav(tmp_path / "after.wav", after, 48000)
    out_json = tmp_path / "live.json"
    async with FakeAudioPod() as fake:
        proc, first = await start_listen(pulse, fake, tmp_path, "--duration", "24", "--json", str(out_json))
        # Times are measured between two utterances, one before the freeze and
        # one after: when the capture's first sample came is not the test's to know.
        started = [time.monotonic()]
        await asyncio.to_thread(pulse.play(wavs[0]).wait, 10)
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGSTOP)
        await asyncio.sleep(16.0)
        proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(1.5)
        started.append(time.monotonic())
        player = pulse.play(wavs[1])
        out, rest = await asyncio.wait_for(proc.communicate(), 60)
        err = (first + rest).decode()
        player.wait(10)
    assert proc.returncode == 0, err
    assert out.decode().splitlines() == [" ".join(u) for u in WORDS], err
    segments = json.loads(out_json.read_text())["segments"]
    gaps = [s for s in segments if s.get("gap")]
    assert len(gaps) == 1 and 2.0 < gaps[0]["end"] - gaps[0]["start"] < 7.0, (gaps, err)
    assert "audio lost" in gaps[0]["reason"] and "slept or was too busy" in err
    heard = [s["start"] for s in segments if not s.get("gap")]
    said = [at + spoken.words[0][1] for at, spoken in zip(started, (said_before, said_after))]
    assert abs((heard[1] - heard[0]) - (said[1] - said[0])) < 0.6, (heard, said, err)
