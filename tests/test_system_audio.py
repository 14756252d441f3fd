"""System audio ("what you hear"): Linux monitor sources through PortAudio's
`pulse` device with PULSE_SOURCE, checked for real against a PulseAudio with
two null sinks; Windows WASAPI loopback through a fake PyAudioWPatch module;
macOS loopback devices (BlackHole) by name, and the help shown without one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import captioner.audio.sources as sources
from captioner.audio import pulse as pulse_mod
from captioner.audio import system
from captioner.audio.feed import AudioSourceError
from captioner.audio.pulse import PulseSource
from captioner.audio.sources import MicrophoneSource, find_input_device, list_input_devices
from tests.fakes.audiopod import FakeAudioPod
from tests.fakes.tones import synthesize, write_wav
from tests.helpers import FakeStream
from tests.pulse import pulse  # noqa: F401  (fixture)


class RecordingStream(FakeStream):
    """sounddevice.InputStream stand-in that notes the PULSE_SOURCE it was opened under."""

    instances: list["RecordingStream"] = []  # type: ignore[assignment]

    def __init__(self, **kwargs):
        self.pulse_source = os.environ.get("PULSE_SOURCE")
        super().__init__(**kwargs)


def fake_sd(names, hostapi="ALSA", default=0):
    devs = [{"name": n, "max_input_channels": 2, "hostapi": 0, "default_samplerate": 44100.0} for n in names]
    return types.SimpleNamespace(
        InputStream=RecordingStream,
        query_devices=lambda: devs,
        query_hostapis=lambda: [{"name": hostapi}],
        default=types.SimpleNamespace(device=(default, 0)),
    )


MONITORS = [
    PulseSource("alsa_output.pci-0000_00_1f.3.analog-stereo.monitor", "Monitor of Built-in Audio Analog Stereo",
                "alsa_output.pci-0000_00_1f.3.analog-stereo", 48000, 2),
    PulseSource("bluez_sink.AA_BB.a2dp_sink.monitor", "Monitor of WH-1000XM4", "bluez_sink.AA_BB.a2dp_sink", 44100, 2),
]


# ------------------------------------------------------------------- Linux


def test_linux_monitors_are_listed_as_system_audio_and_matched_by_name(monkeypatch):
    monkeypatch.setattr(sources, "_sd", lambda: fake_sd(["HDA Intel PCH: ALC (hw:0,0)", "pulse", "default"], default=2))
    monkeypatch.setattr(sources, "_platform", lambda: "linux")
    monkeypatch.setattr(sources, "_pulse_monitors", lambda: list(MONITORS))
    devices = list_input_devices()
    assert [d.name for d in devices] == ["HDA Intel PCH: ALC (hw:0,0)", "pulse", "default"] + [m.name for m in MONITORS]
    mon = devices[3]
    assert (mon.kind, mon.backend, mon.index, mon.target) == ("system", "pulse", 1, MONITORS[0].name)
    assert mon.label == "Built-in Audio Analog Stereo — what you hear" and mon.default_rate == 48000
    assert [d.is_system for d in devices] == [False, False, False, True, True]
    assert list_input_devices(system=False) == devices[:3]
    assert find_input_device(MONITORS[1].name).target == MONITORS[1].name
    assert find_input_device("wh-1000").name == MONITORS[1].name  # a part of the label
    assert find_input_device("analog-stereo.monitor").name == MONITORS[0].name
    assert find_input_device("1").name == "pulse"  # indexes name PortAudio devices only
    assert find_input_device(None).name == "default"
    with pytest.raises(AudioSourceError, match="matches several devices"):
        find_input_device("monitor")
    assert sources.system_audio_help(devices) is None
    assert "PulseAudio" in sources.system_audio_help(devices[:3])


def test_no_pulse_device_means_no_monitors_and_no_server_query(monkeypatch):
    def boom():
        raise AssertionError("the sound server must not be asked")

    monkeypatch.setattr(sources, "_sd", lambda: fake_sd(["hw mic"]))
    monkeypatch.setattr(sources, "_platform", lambda: "linux")
    monkeypatch.setattr(sources, "_pulse_monitors", boom)
    assert [d.name for d in list_input_devices()] == ["hw mic"]


async def test_a_monitor_opens_the_pulse_device_with_pulse_source_set_only_while_opening(monkeypatch):
    monkeypatch.setattr(sources, "_sd", lambda: fake_sd(["pulse", "default"]))
    monkeypatch.setattr(sources, "_platform", lambda: "linux")
    monkeypatch.setattr(sources, "_pulse_monitors", lambda: list(MONITORS))
    monkeypatch.setenv("PULSE_SOURCE", "the.users.own.choice")
    mic = MicrophoneSource("WH-1000XM4")
    assert (mic.name, mic.sample_rate, mic.channels) == (MONITORS[1].name, 44100, 2)
    await mic.start()
    stream = RecordingStream.instances[-1]
    assert stream.kwargs["device"] == 0 and stream.pulse_source == MONITORS[1].name
    assert os.environ["PULSE_SOURCE"] == "the.users.own.choice"  # put back
    mic.stop()
    monkeypatch.delenv("PULSE_SOURCE")
    await MicrophoneSource("pulse").start()  # an ordinary device: no PULSE_SOURCE at all
    assert RecordingStream.instances[-1].pulse_source is None and "PULSE_SOURCE" not in os.environ


def test_pactl_output_is_parsed_in_both_formats():
    js = (
        '[{"index":0,"name":"captions.monitor","description":"Monitor of Null Output",'
        '"sample_specification":"s16le 1ch 48000Hz","monitor_source":"captions",'
        '"properties":{"device.class":"monitor"}},'
        '{"index":1,"name":"alsa_input.usb-mic","description":"USB Mic",'
        '"sample_specification":"s16le 2ch 44100Hz","monitor_source":"","properties":{"device.class":"sound"}}]'
    )
    assert pulse_mod.parse_pactl_json(js) == [
        PulseSource("captions.monitor", "Monitor of Null Output", "captions", 48000, 1),
        PulseSource("alsa_input.usb-mic", "USB Mic", "", 44100, 2),
    ]
    short = "0\tcaptions.monitor\tmodule-null-sink.c\ts16le 1ch 48000Hz\tIDLE\n1\tmic\tmodule-alsa-card.c\ts32le 2ch 96000Hz\tRUNNING\n"
    parsed = pulse_mod.parse_pactl_short(short)
    assert [(p.name, p.is_monitor, p.rate, p.channels) for p in parsed] == [
        ("captions.monitor", True, 48000, 1), ("mic", False, 96000, 2)
    ]
    assert parsed[0].label == "captions — what you hear"


# ----------------------------------------------------------------- Windows


class FakePaStream:
    def __init__(self, kwargs):
        self.kwargs, self.calls = kwargs, []

    def start_stream(self):
        self.calls.append("start")

    def stop_stream(self):
        self.calls.append("stop")

    def close(self):
        self.calls.append("close")


class FakePyAudio:
    """The slice of PyAudioWPatch's PyAudio that we use, as it behaves."""

    instances: list["FakePyAudio"] = []

    def __init__(self):
        self.terminated = False
        self.streams: list[FakePaStream] = []
        FakePyAudio.instances.append(self)

    def get_host_api_info_by_type(self, kind):
        assert kind == fake_pyaudiowpatch.paWASAPI
        return {"defaultOutputDevice": 4}

    def get_device_info_by_index(self, index):
        return {4: {"name": "Speakers (Realtek(R) Audio)"}}[index]

    def get_loopback_device_info_generator(self):
        yield {"index": 9, "name": "Headphones (USB Audio) [Loopback]", "maxInputChannels": 2, "defaultSampleRate": 44100.0}
        yield {"index": 8, "name": "Speakers (Realtek(R) Audio) [Loopback]", "maxInputChannels": 2, "defaultSampleRate": 48000.0}

    def open(self, **kwargs):
        self.streams.append(FakePaStream(kwargs))
        return self.streams[-1]

    def terminate(self):
        self.terminated = True


fake_pyaudiowpatch = types.SimpleNamespace(
    PyAudio=FakePyAudio, paWASAPI=13, paFloat32=1, paContinue=0, paInputOverflow=2
)


async def test_windows_loopback_devices_are_listed_and_captured(monkeypatch):
    monkeypatch.setattr(sources, "_sd", lambda: fake_sd(["Microphone (Realtek(R) Audio)"], hostapi="Windows WASAPI"))
    monkeypatch.setattr(sources, "_platform", lambda: "win32")
    monkeypatch.setattr(system, "import_pyaudiowpatch", lambda: fake_pyaudiowpatch)
    devices = list_input_devices()
    assert [d.name for d in devices] == [
        "Microphone (Realtek(R) Audio)",
        "Speakers (Realtek(R) Audio) [Loopback]",  # the default output first
        "Headphones (USB Audio) [Loopback]",
    ]
    spk = devices[1]
    assert (spk.kind, spk.backend, spk.index) == ("system", "wasapi-loopback", 8)
    assert spk.label == "Speakers (Realtek(R) Audio) — what you hear"
    assert FakePyAudio.instances[-1].terminated  # listing does not keep PortAudio open
    assert sources.system_audio_help(devices) is None

    mic = MicrophoneSource("speakers")
    await mic.start()
    pa = FakePyAudio.instances[-1]
    stream = pa.streams[-1]
    kw = stream.kwargs
    assert (kw["input_device_index"], kw["format"], kw["channels"], kw["rate"]) == (8, 1, 2, 48000)
    assert (kw["input"], kw["start"], kw["frames_per_buffer"]) == (True, False, 4800)  # 100 ms blocks
    assert stream.calls == ["start"]
    frames = np.arange(960 * 2, dtype=np.float32).reshape(960, 2) / 4096
    assert kw["stream_callback"](frames.tobytes(), 960, {}, 0) == (None, 0)
    assert kw["stream_callback"](frames.tobytes(), 960, {}, 2) == (None, 0)  # paInputOverflow
    await asyncio.sleep(0)
    mic.stop()
    blocks = [b async for b in mic]
    assert len(blocks) == 2 and np.array_equal(blocks[0], frames) and blocks[0].shape == (960, 2)
    assert mic.stats.device_overflows == 1
    assert stream.calls == ["start", "stop", "close"] and pa.terminated


def test_windows_without_pyaudiowpatch_lists_inputs_and_says_what_to_install(monkeypatch):
    monkeypatch.setattr(sources, "_sd", lambda: fake_sd(["Microphone"], hostapi="Windows WASAPI"))
    monkeypatch.setattr(sources, "_platform", lambda: "win32")
    monkeypatch.setattr(system, "import_pyaudiowpatch", lambda: None)
    devices = list_input_devices()
    assert [d.name for d in devices] == ["Microphone"]
    assert "PyAudioWPatch" in sources.system_audio_help(devices)


# ------------------------------------------------------------------- macOS


def test_macos_loopback_devices_are_system_audio(monkeypatch):
    names = ["MacBook Pro Microphone", "BlackHole 2ch", "Loopback Audio", "Soundflower (2ch)"]
    monkeypatch.setattr(sources, "_sd", lambda: fake_sd(names, hostapi="Core Audio"))
    monkeypatch.setattr(sources, "_platform", lambda: "darwin")
    devices = list_input_devices()
    assert [d.kind for d in devices] == ["input", "system", "system", "system"]
    assert all(d.backend == "portaudio" for d in devices)  # ordinary inputs, opened as such
    assert sources.system_audio_help(devices) is None
    help_text = sources.system_audio_help(devices[:1])
    assert "BlackHole" in help_text and "Multi-Output Device" in help_text
    assert not system.is_loopback_name("USB Microphone") and system.is_loopback_name("BlackHole 16ch")


# ------------------------------------------------- real PulseAudio, two sinks


def _aligned_correlation(recorded: np.ndarray, reference: np.ndarray) -> float:
    """Correlation of `reference` with the stretch of `recorded` where it best fits (FFT)."""
    n = 1 << int(np.ceil(np.log2(len(recorded) + len(reference))))
    xc = np.fft.irfft(np.fft.rfft(recorded, n) * np.conj(np.fft.rfft(reference, n)), n)
    lag = int(np.argmax(xc[: len(recorded) - len(reference) + 1]))
    seg = recorded[lag : lag + len(reference)]
    return float(np.corrcoef(seg, reference)[0, 1]) if seg.std() > 0 else 0.0


async def test_each_monitor_records_its_own_sink_through_portaudio(pulse, tmp_path, monkeypatch):  # noqa: F811
    meeting = pulse.add_sink("meeting")
    for key in ("PULSE_SERVER", "PULSE_COOKIE"):
        monkeypatch.setenv(key, pulse.env[key])
    devices = await asyncio.to_thread(sources.refresh_input_devices)  # PortAudio meets the new server
    try:
        by_name = {d.name: d for d in devices}
        assert by_name[meeting].is_system and by_name["captions.monitor"].backend == "pulse"
        via_pactl = await asyncio.to_thread(pulse_mod._list_with_pactl, 5.0)  # the fallback agrees
        assert [(s.name, s.monitor_of) for s in via_pactl] == [("captions.monitor", "captions"), (meeting, "meeting")]
        audio, _ = synthesize([["alpha", "echo", "kilo"]], rate=48000, lead_s=0.1, tail_s=0.1, amplitude=0.4)
        wav = write_wav(tmp_path / "tone.wav", audio, 48000)
        chosen = MicrophoneSource(meeting, sample_rate=48000, channels=1)
        default = MicrophoneSource("captions.monitor", sample_rate=48000, channels=1)  # also the default source
        got: dict[str, list[np.ndarray]] = {meeting: [], "captions.monitor": []}

        async def record(src):
            async for block in src:
                got[src.name].append(block[:, 0])

        async with chosen, default:
            tasks = [asyncio.ensure_future(record(s)) for s in (chosen, default)]
            await asyncio.sleep(0.3)
            player = await asyncio.create_subprocess_exec("paplay", "--device=meeting", str(wav), env=pulse.env)
            await asyncio.wait_for(player.wait(), 15)
            await asyncio.sleep(0.4)
            chosen.stop()
            default.stop()
            await asyncio.gather(*tasks)
        heard = np.concatenate(got[meeting])
        other = np.concatenate(got["captions.monitor"])
        corr = _aligned_correlation(heard, audio[:, 0])
        print(f"monitor correlation {corr:.4f}; other monitor peak {np.abs(other).max():.6f}")
        assert corr > 0.99
        assert float(np.abs(other).max()) < 1e-3  # the default source heard none of it
    finally:
        for key in ("PULSE_SERVER", "PULSE_COOKIE"):
            monkeypatch.delenv(key)
        await asyncio.to_thread(sources._refresh_devices)


WORDS_MEETING = [["bravo", "delta", "foxtrot"], ["hotel", "juliet", "lima"]]
WORDS_ROOM = [["mike", "oscar", "papa"]]


async def _listen(pulse, tmp_path, args, plays, duration):  # noqa: F811
    async with FakeAudioPod() as fake:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "captioner", "listen", "--provider", "audiopod", *args,
            "--endpoint", fake.url, "--duration", str(duration), "--no-save",
            env={**pulse.env, "CAPTIONER_AUDIOPOD_KEY": fake.key, "CAPTIONER_DATA_DIR": str(tmp_path)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        first = await asyncio.wait_for(proc.stderr.readline(), 20)  # "listening on …": the device was found
        await asyncio.sleep(1.0)  # let the stream open
        players = []
        for delay, wav, sink in plays:
            await asyncio.sleep(delay)
            players.append(pulse.play(wav, sink))
        out, err = await asyncio.wait_for(proc.communicate(), 40)
        for p in players:
            p.wait(10)
    assert proc.returncode == 0, err.decode()
    assert fake.violations == []
    return out.decode().splitlines(), first.decode() + err.decode()


async def test_listen_captions_a_monitor_that_is_not_the_default_source(pulse, tmp_path):  # noqa: F811
    meeting = pulse.add_sink("meeting")
    listed = subprocess.run(
        [sys.executable, "-m", "captioner", "devices"], env=pulse.env, capture_output=True, text=True, timeout=30
    )
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert ["-", meeting] in [r[:2] for r in rows] and ["-", "captions.monitor"] in [r[:2] for r in rows]
    assert "system audio" in listed.stdout
    meet = write_wav(tmp_path / "meet.wav", synthesize(WORDS_MEETING, rate=48000, lead_s=0.3, amplitude=0.4)[0], 48000)
    room = write_wav(tmp_path / "room.wav", synthesize(WORDS_ROOM, rate=48000, lead_s=0.3, amplitude=0.4)[0], 48000)
    # The meeting plays into sink B while other sound plays into the default sink A.
    lines, err = await _listen(pulse, tmp_path, ["--device", meeting], [(0, meet, "meeting"), (0, room, "captions")], 6)
    assert lines == [" ".join(u) for u in WORDS_MEETING], err
    assert f"listening on {meeting}" in err


async def test_listen_mixes_the_meeting_with_another_input(pulse, tmp_path):  # noqa: F811
    meeting = pulse.add_sink("meeting")
    meet = write_wav(tmp_path / "meet.wav", synthesize(WORDS_MEETING[:1], rate=48000, lead_s=0.1, tail_s=0.1, amplitude=0.4)[0], 48000)
    room = write_wav(tmp_path / "room.wav", synthesize(WORDS_ROOM, rate=48000, lead_s=0.1, tail_s=0.1, amplitude=0.4)[0], 48000)
    # "You" speak on one input, then the meeting answers on the other.
    lines, err = await _listen(
        pulse, tmp_path, ["--device", "captions.monitor", "--mix-with", meeting],
        [(0, room, "captions"), (2.0, meet, "meeting")], 7,
    )
    assert lines == [" ".join(WORDS_ROOM[0]), " ".join(WORDS_MEETING[0])], err
    assert f"listening on captions.monitor + {meeting}" in err
