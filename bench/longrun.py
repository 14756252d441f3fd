"""Long sessions: memory over an 8-hour session at accelerated speed, and the
cost of one event at 10 finals versus at 10,000.

Memory: the whole streaming path (looped 48 kHz stereo WAV → AudioPod fake in
its own process, unpaced) with a Transcript and a session journal attached, as
the CLI runs it. RSS from /proc/self/statm, sampled every 10 audio-minutes;
growth counted from the end of the first audio-hour (warm-up: allocator
arenas, soxr and websockets buffers reach their steady size) to the end. The
transcript's own size is reported beside it: an 8-hour transcript is data the
user asked to keep, not a leak.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from typing import Any

from bench.common import FakeProcess, LoopedWav, Result, bench_dir, make_session, na, rss_mb, speech_wav


def _deep_size(transcript: Any) -> float:
    """Bytes held by the transcript's segments (objects reachable from them)."""
    seen: set[int] = set()
    total = 0
    stack: list[Any] = [transcript.segments]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, (list, tuple)):
            stack.extend(obj)
        elif hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, s) for s in obj.__slots__ if hasattr(obj, s))
    return total / 1e6


async def _session(fake: FakeProcess, hours: float, samples: list[tuple[float, float]]) -> Any:
    from captioner.captioning import caption_source
    from captioner.transcript.journal import SessionJournal

    source = LoopedWav(speech_wav(bench_dir() / "speech48k2ch.wav"), hours * 3600)
    session = make_session("audiopod", fake)
    journal = await asyncio.to_thread(SessionJournal.create, "audiopod", source.name)
    step = 600 * source.sample_rate
    next_at = 0

    async def sampler() -> None:
        nonlocal next_at
        while True:
            if source.frames_done >= next_at:
                gc.collect()
                samples.append((source.frames_done / source.sample_rate, rss_mb()))
                next_at += step
            await asyncio.sleep(0.05)

    task = asyncio.ensure_future(sampler())
    try:
        transcript = await caption_source(source, session, [journal], live=False, provider="audiopod")
    finally:
        task.cancel()
        await asyncio.to_thread(journal.close, True)
    gc.collect()
    samples.append((source.frames_done / source.sample_rate, rss_mb()))
    return transcript


def run(hours: float) -> list[Result]:
    name = f"memory growth beyond the transcript, {hours:g} h session"
    target = "<= 10 MB"
    os.environ.setdefault("CAPTIONER_DATA_DIR", str(bench_dir() / "data"))
    samples: list[tuple[float, float]] = []
    t0 = time.perf_counter()
    with FakeProcess("audiopod") as fake:
        transcript = asyncio.run(_session(fake, hours, samples))
    warm = min(3600.0, hours * 3600 / 4)
    base = next(m for t, m in samples if t >= warm)
    end = samples[-1][1]
    growth = end - base
    kept = _deep_size(transcript)
    other = growth - kept * (1 - warm / (hours * 3600))
    curve = ", ".join(f"{t / 3600:.1f}h {m:.0f}" for t, m in samples[:: max(1, len(samples) // 8)])
    note = (
        f"RSS {base:.1f} → {end:.1f} MB after {warm / 3600:.2f} h warm-up; the transcript holds "
        f"{kept:.1f} MB ({len(transcript.segments)} finals) — growth beyond it {other:+.1f} MB; "
        f"{time.perf_counter() - t0:.0f} s wall; RSS MB by audio time: {curve}"
    )
    return [
        # the figure judged first: a table that showed the total beside "pass" read as a miss
        Result(name, f"{other:+.1f} MB ({growth:+.1f} in all)", target, other <= 10.0, note),
    ]


def _events(n: int) -> list[Any]:
    from captioner.stt.events import Final, Partial, Word

    out: list[Any] = []
    for i in range(n):
        t = i * 3.0
        words = tuple(Word(w, t + k * 0.35, t + k * 0.35 + 0.25, 0.9) for k, w in enumerate(("alpha", "bravo", "charlie", "delta")))
        out += [Partial("alpha", t), Partial("alpha bravo", t), Partial("alpha bravo charlie", t)]
        out.append(Final("alpha bravo charlie delta", t, t + 1.3, words))
    return out


def _cost(apply: Any, prefill: int, batch: list[Any], prefill_events: list[Any], repeats: int) -> float:
    """Best time per event of `batch` applied after `prefill` finals."""
    import gc

    best = float("inf")
    for _ in range(repeats):
        target = apply(prefill_events[: prefill * 4])
        gc.collect()
        gc.disable()  # as in the app, where the cyclic GC runs on its own timer (app.MainThreadGC)
        try:
            t0 = time.perf_counter()
            for e in batch:
                target(e)
            best = min(best, (time.perf_counter() - t0) / len(batch))
        finally:
            gc.enable()
    return best


def per_event_cost(quick: bool) -> list[Result]:
    from captioner.transcript.model import Transcript

    big = 10_000
    events = _events(big + 1000)
    batch = events[-4000:]  # 1,000 finals + 3,000 partials, applied on top of the prefill
    repeats = 5 if quick else 25

    def transcript_at(prefill: list[Any]) -> Any:
        t = Transcript()
        for e in prefill:
            t.apply(e)
        return t.apply

    # Alternate the two sizes (best of each): a drift in the machine's speed
    # during the run then weighs on both alike.
    small_t = big_t = float("inf")
    for _ in range(repeats):
        small_t = min(small_t, _cost(transcript_at, 10, batch, events, 1))
        big_t = min(big_t, _cost(transcript_at, big, batch, events, 1))
    ratio = big_t / small_t
    out = [
        Result(
            "per-event cost, transcript", f"x{ratio:.2f}", "<= x1.20", ratio <= 1.2,
            f"{small_t * 1e6:.2f} µs/event at 10 finals, {big_t * 1e6:.2f} µs at {big:,} (best of {repeats} alternating runs, 4,000 events)",
        )
    ]
    out.append(_overlay_cost(quick))
    return out


def _overlay_cost(quick: bool) -> Result:
    """The overlay, in a child process (Qt offscreen): on_event + a forced repaint."""
    import subprocess

    from bench.common import ROOT

    name, target = "per-event cost, overlay", "<= x1.20"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "bench.gui", "overlay-cost", "1" if quick else "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    if proc.returncode == 3:
        return na(name, target, proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "GUI not available")
    if proc.returncode != 0:
        raise RuntimeError(f"overlay cost run failed: {proc.stderr.strip()[-500:]}")
    small_t, big_t = (float(x) for x in proc.stdout.split()[-2:])
    ratio = big_t / small_t
    return Result(
        name, f"x{ratio:.2f}", target, ratio <= 1.2,
        f"{small_t * 1e3:.2f} ms/event at 10 finals, {big_t * 1e3:.2f} ms at 10,000 (on_event + synchronous repaint of a 900x160 overlay, offscreen)",
    )
