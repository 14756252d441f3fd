"""Mix sources into one: the microphone and system audio together, so the
user's own voice is captioned along with the meeting.

Each input is downmixed and stream-resampled to the mix rate as it arrives
and queued; a block is mixed when every input has one (a small jitter buffer
absorbs their different block sizes and timing). An input that falls silent —
a device being reopened, a stalled stream — does not hold the others back:
once another input has `max_lag_s` queued, the quiet one is filled with
silence (counted in `stats`) until it delivers again. Its late audio, if it
comes, is played after, never dropped. Inputs are summed at −6 dB each and a
soft limiter keeps the sum below full scale. All math is on whole blocks.

An input that reports an outage (`on_gap`: its device was lost, then came
back) gets that much "hole" queued before its next audio, less the silence
already filled in for it, so it stays aligned with the others. Where every
input is a hole, no input heard anything: the mix reports that stretch as its
own gap (a visible gap, times kept on the audio's clock) instead of audio.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Sequence

import numpy as np

from captioner.audio.dsp import StreamResampler, downmix
from captioner.audio.feed import FeedStats

#: Where the soft limiter starts bending (linear below, so quiet speech is untouched).
LIMIT_KNEE = 0.9


def soft_limit(x: np.ndarray, knee: float = LIMIT_KNEE) -> np.ndarray:
    """Identity for |x| ≤ knee; above it a tanh curve that approaches but never
    reaches 1.0 and joins the line smoothly (slope 1 at the knee)."""
    data = np.asarray(x, dtype=np.float32)
    mag = np.abs(data)
    if data.size == 0 or float(mag.max()) <= knee:
        return data
    room = 1.0 - knee
    bent = knee + room * np.tanh((mag - knee) / room)
    # float32 rounds tanh(large) up to exactly 1.0; stay a hair below full scale.
    bent = np.minimum(bent, np.float32(1.0) - np.float32(2.0**-23))
    return np.where(mag > knee, np.copysign(bent, data), data).astype(np.float32)


def mix(blocks: Sequence[np.ndarray], gain: float) -> np.ndarray:
    """Sum equal-length mono blocks at `gain` each, then soft-limit."""
    total = np.zeros(len(blocks[0]), dtype=np.float32)
    for block in blocks:  # per input (2-3), not per sample
        total += block
    total *= np.float32(gain)
    return soft_limit(total)


class _Queue:
    """Mono float32 frames waiting to be mixed; an int part is a hole of that
    many frames (audio the input never captured)."""

    def __init__(self) -> None:
        self._parts: collections.deque[np.ndarray | int] = collections.deque()
        self.frames = 0

    def put(self, data: np.ndarray) -> None:
        if len(data):
            self._parts.append(data)
            self.frames += len(data)

    def put_hole(self, frames: int) -> None:
        if frames > 0:
            self._parts.append(int(frames))
            self.frames += int(frames)

    def take(self, n: int) -> tuple[np.ndarray, bool]:
        """Exactly n frames: what is queued, then silence; and whether any of
        them was captured audio (not a hole, not silence filled in)."""
        out = np.zeros(n, dtype=np.float32)
        filled = 0
        heard = False
        while filled < n and self._parts:
            part = self._parts.popleft()
            if isinstance(part, int):
                use = min(n - filled, part)
                if use < part:
                    self._parts.appendleft(part - use)
            else:
                use = min(n - filled, len(part))
                out[filled : filled + use] = part[:use]
                if use < len(part):
                    self._parts.appendleft(part[use:])
                heard = True
            filled += use
        self.frames -= filled
        return out, heard


@dataclass(slots=True)
class MixStats(FeedStats):
    """The mix's own output counts, the inputs' drops and overflows summed,
    and per input: silence filled in while it stalled, and how many stalls."""

    filled_frames: list[int] = field(default_factory=list)
    stalls: list[int] = field(default_factory=list)


class Mixer:
    """The pure part: queues, the stall rule and the sum (no asyncio)."""

    def __init__(self, inputs: int, block_frames: int, max_lag_frames: int, gain: float) -> None:
        self.queues = [_Queue() for _ in range(inputs)]
        self.ended = [False] * inputs
        self.stalled = [False] * inputs
        self.block_frames = block_frames
        self.max_lag_frames = max_lag_frames
        self.gain = gain
        self.filled_frames = [0] * inputs
        self.stalls = [0] * inputs
        self._filled_at_stall = [0] * inputs
        #: False when the last block had no captured audio from any input (a hole in them all).
        self.heard = True

    def gap(self, i: int, frames: int) -> None:
        """Input i missed `frames` just before what it puts next: queue a hole
        so it stays aligned, less the silence filled in for it while it
        stalled (that time is already in the mix)."""
        if self.stalled[i]:
            frames -= self.filled_frames[i] - self._filled_at_stall[i]
        self.queues[i].put_hole(frames)

    def put(self, i: int, mono: np.ndarray) -> None:
        self.queues[i].put(mono)
        if self.stalled[i] and self.queues[i].frames >= self.block_frames:
            self.stalled[i] = False  # it delivers again

    def end(self, i: int) -> None:
        self.ended[i] = True

    @property
    def done(self) -> bool:
        return all(self.ended) and not any(q.frames for q in self.queues)

    def next_block(self) -> np.ndarray | None:
        """The next mixed block, or None while it must wait for input."""
        n = self.block_frames
        have = [q.frames for q in self.queues]
        if all(self.ended):
            if not any(have):
                return None
            n = min(n, max(have))
        elif max(have) < n:
            return None  # nothing to mix yet (silence is only filled in beside real audio)
        elif not all(h >= n or e or s for h, e, s in zip(have, self.ended, self.stalled)):
            if max(have) < n + self.max_lag_frames:
                return None  # within the jitter bound: wait for the slow one
            for i, h in enumerate(have):
                if h < n and not self.ended[i] and not self.stalled[i]:
                    self.stalled[i] = True
                    self.stalls[i] += 1
                    self._filled_at_stall[i] = self.filled_frames[i]
        live = [i for i in range(len(have)) if not self.ended[i]]
        for i in live:
            if self.stalled[i]:
                self.filled_frames[i] += max(0, n - have[i])
        taken = [q.take(n) for q in self.queues]
        self.heard = any(heard for _, heard in taken)
        return mix([block for block, _ in taken], self.gain)


class MixedSource:
    """Several sources as one: an async iterator of float32 (frames, 1) blocks
    at `sample_rate`, with `name` and `stats` like any other source."""

    def __init__(
        self,
        *sources: Any,
        sample_rate: int | None = None,
        gain_db: float = -6.0,
        block_ms: int = 20,
        max_lag_s: float = 1.0,  # a busy machine delays callbacks by far more than 0.25 s
    ) -> None:
        if not sources:
            raise ValueError("mixing needs at least one source")
        self.sources = list(sources)
        self.sample_rate = int(sample_rate or max(int(s.sample_rate) for s in sources))
        self.gain = float(10.0 ** (gain_db / 20.0))
        self.block_frames = max(1, self.sample_rate * block_ms // 1000)
        self.max_lag_frames = max(1, int(max_lag_s * self.sample_rate))
        self._mixer = Mixer(len(sources), self.block_frames, self.max_lag_frames, self.gain)
        self._out = MixStats()
        self._stack: contextlib.AsyncExitStack | None = None
        #: Called with (seconds, reason) for a stretch no input captured; unset,
        #: that stretch is given as silence (times stay true either way).
        self.on_gap: Callable[[float, str], None] | None = None
        #: Called with False when an input's device is lost, True once every lost one delivers again.
        self.on_device_state: Callable[[bool], None] | None = None
        self._lost: set[int] = set()
        for i, source in enumerate(self.sources):
            if hasattr(source, "on_gap"):
                source.on_gap = functools.partial(self._input_gap, i)
            if hasattr(source, "on_device_state"):
                source.on_device_state = functools.partial(self._input_state, i)

    @property
    def name(self) -> str:
        return " + ".join(str(getattr(s, "name", "?")) for s in self.sources)

    @property
    def stats(self) -> MixStats:
        inputs = [getattr(s, "stats", None) or FeedStats() for s in self.sources]
        out = self._out
        out.dropped_blocks = sum(s.dropped_blocks for s in inputs)
        out.dropped_frames = sum(s.dropped_frames for s in inputs)
        out.device_overflows = sum(s.device_overflows for s in inputs)
        out.filled_frames = list(self._mixer.filled_frames)
        out.stalls = list(self._mixer.stalls)
        return out

    @property
    def on_notice(self) -> Callable[[str], None] | None:
        return getattr(self, "_on_notice", None)

    @on_notice.setter
    def on_notice(self, callback: Callable[[str], None] | None) -> None:
        """Pass device notices (lost, reopened) through from every input."""
        self._on_notice = callback
        for source in self.sources:
            if hasattr(source, "on_notice"):
                source.on_notice = callback

    def _input_gap(self, i: int, seconds: float, reason: str) -> None:
        self._mixer.gap(i, int(round(seconds * self.sample_rate)))

    def _input_state(self, i: int, ok: bool) -> None:
        was_lost = bool(self._lost)
        if ok:
            self._lost.discard(i)
        else:
            self._lost.add(i)
        if was_lost != bool(self._lost) and self.on_device_state is not None:
            self.on_device_state(ok)

    async def __aenter__(self) -> "MixedSource":
        async with contextlib.AsyncExitStack() as stack:
            for source in self.sources:
                await stack.enter_async_context(source)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    def stop(self) -> None:
        """Stop every input that can be stopped; the mix ends when all have."""
        for source in self.sources:
            if hasattr(source, "stop"):
                source.stop()

    def __aiter__(self) -> AsyncIterator[np.ndarray]:
        return self._blocks()

    async def _blocks(self) -> AsyncIterator[np.ndarray]:
        mixer = self._mixer
        wake = asyncio.Event()
        errors: list[BaseException] = []

        async def pump(i: int, source: Any) -> None:
            resampler = StreamResampler(int(source.sample_rate), self.sample_rate)
            try:
                async for block in source:
                    mixer.put(i, resampler.process(downmix(block)))
                    wake.set()
                mixer.put(i, resampler.flush())
            except Exception as exc:  # surfaced to the consumer below
                errors.append(exc)
            finally:
                mixer.end(i)
                wake.set()

        tasks = [asyncio.ensure_future(pump(i, s)) for i, s in enumerate(self.sources)]
        hole = 0  # frames no input captured, not yet reported
        try:
            while True:
                await wake.wait()
                wake.clear()
                if errors:
                    raise errors[0]
                while (block := mixer.next_block()) is not None:
                    if not mixer.heard and self.on_gap is not None:
                        hole += len(block)
                        continue
                    if hole:
                        self._report_hole(hole)
                        hole = 0
                    self._out.blocks += 1
                    self._out.frames += len(block)
                    yield block[:, None]
                if mixer.done:
                    if hole:
                        self._report_hole(hole)
                    return
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _report_hole(self, frames: int) -> None:
        seconds = frames / self.sample_rate
        if self.on_gap is not None:
            self.on_gap(seconds, f"input devices interrupted for {seconds:.1f} s")
