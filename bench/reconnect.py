"""Reconnect: from a dropped connection to captions flowing again.

The AudioPod fake (own process) aborts the TCP connection (Fault("drop"))
after 6 s of audio on every connection (replayed audio included), N times. The client streams the
48 kHz stereo WAV at real time (WavFileSource, speed 1) with the default
retry policy except `healthy_after=2.0`: each drop is then the first of its
outage, as when drops are minutes apart (otherwise the backoff for repeated
failures would be measured instead). Measured: the fake's monotonic time of
each drop → the first caption event (partial/final) the client gets from the
next connection (CLOCK_MONOTONIC is system-wide on Linux).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.common import FakeProcess, Result, bench_dir, make_session, percentile, speech_wav

AFTER_BYTES = 192_000  # 6 s of 16 kHz Int16: > quick_death (2 s) even after a replay
QUICK_AFTER_BYTES = 96_000  # 3 s: a quick run drops only its first connection, which replays nothing


async def _run(fake: FakeProcess, drops: int) -> tuple[list[tuple[float, int]], Any]:
    from captioner.audio.sources import WavFileSource
    from captioner.captioning import caption_source
    from captioner.stt.events import Final, Partial
    from captioner.stt.session import RetryPolicy

    session = make_session("audiopod", fake, retry=RetryPolicy(healthy_after=2.0))
    events: list[tuple[float, int]] = []

    def on_event(event: Any) -> None:
        if isinstance(event, (Partial, Final)):
            events.append((time.monotonic(), session.stats.connections))

    source = WavFileSource(speech_wav(bench_dir() / "speech48k2ch.wav"), speed=1.0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (drops + 1) * 6 * 2 + 10

    async def stopper() -> None:
        while session.stats.connections <= drops and loop.time() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # captions on the last connection
        session.stop()

    task = asyncio.ensure_future(stopper())
    await caption_source(source, session, [on_event], live=False, provider="audiopod")
    task.cancel()
    return events, session


def run(drops: int, quick: bool = False) -> Result:
    from tests.fakes.base import Fault

    after = QUICK_AFTER_BYTES if quick and drops == 1 else AFTER_BYTES
    faults = [Fault("drop", after_bytes=after, on_connection=i) for i in range(drops)]
    with FakeProcess("audiopod", faults=faults) as fake:
        events, session = asyncio.run(_run(fake, drops))
    drop_times = fake.report.get("drops", [])
    gaps = []
    for k, dropped_at in enumerate(drop_times):
        nxt = next((t for t, conn in events if conn >= k + 2 and t >= dropped_at), None)
        if nxt is not None:
            gaps.append(nxt - dropped_at)
    if not gaps:
        raise RuntimeError(f"no reconnect was observed ({len(drop_times)} drops, {session.stats.connections} connections)")
    p50 = percentile(gaps, 50)
    note = (
        f"{len(gaps)} of {len(drop_times)} drops measured, {session.stats.connections} connections; "
        f"p90 {percentile(gaps, 90):.3f} s, max {max(gaps):.3f} s; includes the first retry delay (50 ms) "
        "and the wait for the replayed audio to complete a word"
    )
    return Result("reconnect → captions again", f"p50 {p50:.3f} s", "<= 1 s p50", p50 <= 1.0, note)
