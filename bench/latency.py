"""Added latency from the PortAudio callback to the socket.

MicrophoneSource runs for real, its `_callback` driven from a thread at real
time (bench/fakemic.py: 48 kHz stereo, 20 ms blocks). Every binary frame the
session writes is timestamped when `ClientConnection.send` returns (the bytes
are in the kernel by then on loopback). For each frame, the block whose arrival
completed it is found by replaying the same blocks through an identical
converter offline (soxr's output counts are deterministic): latency = frame
written − that block's callback time. The wait for the frame's own 100 ms of
audio is therefore not counted; everything after the last sample arrived is.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from typing import Any

import numpy as np

from bench.common import FakeProcess, Result, bench_dir, make_session, percentile, speech_wav
from bench.fakemic import FakeInputStream, install


async def _capture(fake: FakeProcess, seconds: float) -> tuple[list[tuple[float, int]], Any]:
    import websockets.asyncio.client as wsc

    from captioner.captioning import caption_source

    sources = install(speech_wav(bench_dir() / "speech48k2ch.wav"))
    writes: list[tuple[float, int]] = []  # (time written, cumulative audio bytes)
    total = 0
    orig = wsc.ClientConnection.send

    async def send(self: Any, message: Any, *a: Any, **k: Any) -> None:
        nonlocal total
        await orig(self, message, *a, **k)
        if isinstance(message, (bytes, bytearray, memoryview)):
            total += len(message)
            writes.append((time.perf_counter(), total))

    wsc.ClientConnection.send = send  # type: ignore[method-assign]
    try:
        mic = sources.MicrophoneSource(None, sample_rate=48000, channels=2)
        session = make_session("audiopod", fake)
        loop = asyncio.get_running_loop()
        loop.call_later(seconds, session.stop)
        async with mic:
            await caption_source(mic, session, [], live=True, provider="audiopod")
    finally:
        wsc.ClientConnection.send = orig  # type: ignore[method-assign]
    return writes, FakeInputStream.instances[-1]


def callback_to_socket(seconds: float) -> Result:
    from captioner.audio.dsp import PcmConverter

    name = "latency callback→socket"
    target = "<= 5 ms p99"
    with FakeProcess("audiopod") as fake:
        writes, stream = asyncio.run(_capture(fake, seconds))
    # offline: cumulative PCM bytes after each block, through the same conversion
    conv = PcmConverter(48000, 16000)
    audio = FakeInputStream.audio
    produced, at, total = [], 0, 0
    for _ in stream.times:
        if at + stream.blocksize > len(audio):
            at = 0
        total += len(conv.convert(audio[at : at + stream.blocksize]))
        at += stream.blocksize
        produced.append(total)
    lat = []
    for written_at, upto in writes[:-1]:  # the last frame is the end-of-stream flush
        i = bisect.bisect_left(produced, upto)
        if i < len(stream.times):
            lat.append((written_at - stream.times[i]) * 1000)
    lat = lat[5:]  # connection warm-up
    if not lat:
        raise RuntimeError("no audio frames were written")
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    note = (
        f"{len(lat)} frames over {seconds:g} s real time, 20 ms blocks 48k/2ch → 100 ms frames 16k; "
        f"p50 {p50:.2f} ms, max {max(lat):.2f} ms; negative values impossible: min {min(lat):.2f} ms"
    )
    return Result(name, f"p50 {p50:.2f} / p99 {p99:.2f} ms", target, p99 <= 5.0, note)
