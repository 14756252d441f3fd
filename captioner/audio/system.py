"""System audio ("what you hear") on Windows and macOS, and what to tell the
user when there is none.

Windows: WASAPI loopback of an output device. PortAudio can do it, but the
released sounddevice does not expose it (python-sounddevice issue #510), so
it goes through PyAudioWPatch (a PyAudio fork whose PortAudio lists each
output device again as a "[Loopback]" input). It is an optional, Windows-only
dependency, imported only when devices are listed, and adapted here to the
sounddevice-style callback and stream that MicrophoneSource already drives.

macOS: no loopback API short of ScreenCaptureKit, so we recognize the virtual
loopback devices people install (BlackHole, Loopback, Soundflower, …) among
the ordinary inputs, and explain how to get one when there is none.

Linux lives in pulse.py.
"""

from __future__ import annotations

import re
import types
from typing import Any, Callable

import numpy as np

#: Virtual devices that carry what the computer plays (by name, case-insensitive).
LOOPBACK_NAMES = re.compile(
    r"blackhole|soundflower|loopback audio|^loopback\b|background music|ishowu|"
    r"cable output|vb-audio|voicemeeter out|stereo mix|what u hear|wave out mix",
    re.IGNORECASE,
)

MACOS_HELP = (
    "No system-audio device was found. macOS has no built-in way to record what you hear: install the free "
    "BlackHole driver (https://existential.audio/blackhole/, or `brew install blackhole-2ch`), then in Audio MIDI "
    "Setup create a Multi-Output Device with your speakers and BlackHole 2ch and make it the sound output, so you "
    "still hear the meeting. Then choose \"BlackHole 2ch\" here (Loopback or Soundflower work too)."
)
WINDOWS_HELP = (
    "System audio on Windows needs the PyAudioWPatch package (WASAPI loopback): pip install PyAudioWPatch"
)
LINUX_HELP = (
    "No PulseAudio/PipeWire monitor source was found. System audio on Linux needs a PulseAudio or PipeWire "
    "sound server (with pipewire-pulse) and the ALSA pulse plugin (Debian/Ubuntu: libasound2-plugins), "
    "which provides PortAudio's \"pulse\" device."
)


def is_loopback_name(name: str) -> bool:
    """Is this input a virtual cable that records what the computer plays?"""
    return bool(LOOPBACK_NAMES.search(name))


def system_audio_help(platform: str, have_system_audio: bool) -> str | None:
    """The sentence to show when no system-audio input exists, else None."""
    if have_system_audio:
        return None
    if platform == "darwin":
        return MACOS_HELP
    if platform == "win32":
        return WINDOWS_HELP
    return LINUX_HELP


# ----------------------------------------------------------------- Windows


def import_pyaudiowpatch() -> Any | None:
    """The module, or None where it is not installed (or not Windows)."""
    try:
        import pyaudiowpatch  # type: ignore[import-not-found]
    except ImportError:
        return None
    return pyaudiowpatch


def wasapi_loopback_devices(pa_module: Any) -> list[dict]:
    """PyAudioWPatch's loopback devices as dicts (index, name, channels,
    rate, is_default), the default output's loopback marked."""
    pa = pa_module.PyAudio()
    try:
        default_name = ""
        try:
            wasapi = pa.get_host_api_info_by_type(pa_module.paWASAPI)
            default_name = pa.get_device_info_by_index(wasapi["defaultOutputDevice"])["name"]
        except Exception:  # no WASAPI or no output device: list what there is
            pass
        out = []
        for info in pa.get_loopback_device_info_generator():
            out.append(
                {
                    "index": int(info["index"]),
                    "name": str(info["name"]),
                    "channels": int(info["maxInputChannels"]),
                    "rate": float(info["defaultSampleRate"]),
                    "is_default": bool(default_name) and str(info["name"]).startswith(default_name),
                }
            )
        return out
    finally:
        pa.terminate()


class WasapiLoopbackStream:
    """A PyAudioWPatch loopback stream that looks like a sounddevice
    InputStream to MicrophoneSource: start/stop/close, and the same callback
    signature with float32 (frames, channels) blocks."""

    def __init__(
        self,
        pa_module: Any,
        device: int,
        samplerate: int,
        channels: int,
        blocksize: int,
        callback: Callable[[np.ndarray, int, Any, Any], None],
        finished_callback: Callable[[], None] | None = None,
    ) -> None:
        self._pa_module = pa_module
        self._channels = channels
        self._callback = callback
        self._finished = finished_callback
        self._pa = pa_module.PyAudio()
        try:
            self._stream = self._pa.open(
                format=pa_module.paFloat32,
                channels=channels,
                rate=samplerate,
                input=True,
                input_device_index=device,
                frames_per_buffer=blocksize,
                stream_callback=self._on_audio,
                start=False,
            )
        except Exception:
            self._pa.terminate()
            raise

    def _on_audio(self, in_data: bytes, frame_count: int, time_info: Any, status: int) -> tuple[None, int]:
        # PortAudio's thread: view the bytes (the callee copies), hand over, return.
        block = np.frombuffer(in_data, dtype=np.float32).reshape(-1, self._channels)
        flags = types.SimpleNamespace(input_overflow=bool(status & self._pa_module.paInputOverflow))
        self._callback(block, frame_count, time_info, flags)
        return None, self._pa_module.paContinue

    def start(self) -> None:
        self._stream.start_stream()

    def stop(self) -> None:
        self._stream.stop_stream()

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._pa.terminate()
