"""A stand-in for sounddevice: one 48 kHz stereo "device" whose InputStream
calls the real `MicrophoneSource._callback` from its own thread at real-time
pace, in the blocks the source asks for (MicrophoneSource: 100 ms), with
audio looped from a WAV. Each block's callback time
(perf_counter, taken just before the callback runs) is recorded."""

from __future__ import annotations

import threading
import time
import types
from pathlib import Path
from typing import Any

import numpy as np


class _Status:
    input_overflow = False

    def __bool__(self) -> bool:
        return False


class FakeInputStream:
    instances: list["FakeInputStream"] = []
    audio: np.ndarray = np.zeros((48000, 2), np.float32)

    def __init__(self, device: Any = None, samplerate: int = 48000, channels: int = 2, dtype: str = "float32",
                 blocksize: int = 960, callback: Any = None, finished_callback: Any = None, **_: Any) -> None:
        self.samplerate, self.channels, self.blocksize = int(samplerate), int(channels), int(blocksize)
        self.callback, self.finished_callback = callback, finished_callback
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        FakeInputStream.instances.append(self)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        audio = FakeInputStream.audio[:, : self.channels]
        n, at, k = self.blocksize, 0, 0
        t0 = time.perf_counter()
        status = _Status()
        while not self._stop.is_set():
            due = t0 + (k + 1) * n / self.samplerate  # a block is delivered once it is complete
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if at + n > len(audio):
                at = 0
            block = audio[at : at + n]
            at += n
            k += 1
            self.times.append(time.perf_counter())
            self.callback(block, n, None, status)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(2)

    def close(self) -> None:
        self.stop()


def install(wav: Path) -> Any:
    """Patch captioner.audio.sources to use the fake device; returns the module."""
    import soundfile

    import captioner.audio.sources as sources

    data, _ = soundfile.read(str(wav), dtype="float32", always_2d=True)
    FakeInputStream.audio = np.ascontiguousarray(data)
    FakeInputStream.instances = []
    fake_sd = types.SimpleNamespace(
        query_devices=lambda: [{"name": "bench mic", "max_input_channels": 2, "hostapi": 0, "default_samplerate": 48000.0}],
        query_hostapis=lambda: [{"name": "bench"}],
        default=types.SimpleNamespace(device=(0, 0)),
        InputStream=FakeInputStream,
        _terminate=lambda: None,
        _initialize=lambda: None,
    )
    sources._sd = lambda: fake_sd  # type: ignore[assignment]
    return sources
