"""AudioFeed: the bounded hand-off from the PortAudio thread to the event loop.

The capture callback calls `loop.call_soon_threadsafe(feed.push, block)`; the
loop side iterates the feed. When the consumer falls behind, the newest block
is refused and counted instead of blocking anyone or growing without bound.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import Callable

import numpy as np


class AudioSourceError(RuntimeError):
    """The capture device failed or disappeared (message is safe to show)."""


@dataclass(slots=True)
class FeedStats:
    blocks: int = 0
    frames: int = 0
    dropped_blocks: int = 0  # refused because the feed was full (our overflow)
    dropped_frames: int = 0
    device_overflows: int = 0  # PortAudio's own input_overflow flags
    stalls: int = 0  # breaks in the device's timeline: audio the sound server had to throw away
    stalled_frames: int = 0


_END = object()


class AudioFeed:
    """A bounded queue of float32 blocks, filled on the loop thread."""

    def __init__(self, max_blocks: int = 256) -> None:
        self._blocks: collections.deque = collections.deque()
        self._max = max_blocks
        self._waiter: asyncio.Future | None = None
        self.stats = FeedStats()
        self._error: AudioSourceError | None = None
        self._closed = False
        #: Called (on the consumer's side, in order with the blocks) with the
        #: frames lost where `mark_lost` was called.
        self.on_lost: Callable[[int], None] | None = None
        self.queued_frames = 0  # audio waiting for the consumer

    def mark_lost(self, frames: int) -> None:
        """The device's audio skips `frames` here (the process was stopped or
        starved longer than the sound server's buffer): the consumer hears of
        it between the blocks before and after, through `on_lost`."""
        if self._closed or self._error is not None or frames <= 0:
            return
        self.stats.stalls += 1
        self.stats.stalled_frames += frames
        self._blocks.append(_Lost(frames))

    def push(self, block: np.ndarray, bounded: bool = True) -> None:
        """Take one block (call on the loop thread). After `fail`, blocks are
        refused until `clear_error`: a stream the sound server moved to another
        source may still deliver, and that is not the chosen device's audio.
        `bounded=False`: blocks the source held back itself (bounded there),
        handed over at once; the limit is for a consumer that stopped taking."""
        if self._closed or self._error is not None:
            return
        if bounded and len(self._blocks) >= self._max:
            self.stats.dropped_blocks += 1
            self.stats.dropped_frames += len(block)
            last = self._blocks[-1]
            if isinstance(last, _Missing):
                last.frames += len(block)
            else:
                self._blocks.append(_Missing(len(block), tuple(block.shape[1:])))
        else:
            self._blocks.append(block)
            self.stats.blocks += 1
            self.stats.frames += len(block)
        self.queued_frames += len(block)
        self._wake()

    def clear_error(self) -> None:
        """Forget a device failure once the device has been reopened."""
        self._error = None

    def fail(self, error: AudioSourceError) -> None:
        self._error = error
        self._wake()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._blocks.append(_END)
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> "AudioFeed":
        return self

    async def __anext__(self) -> np.ndarray:
        while not self._blocks:
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        block = self._blocks.popleft()
        if block is _END:
            raise StopAsyncIteration
        if isinstance(block, _Lost):
            if self.on_lost is not None:
                self.on_lost(block.frames)
            return await self.__anext__()
        self.queued_frames -= len(block)
        if isinstance(block, _Missing):
            # Audio we could not keep: stand in silence of the same length so
            # every later caption time stays true to the source.
            return np.zeros((block.frames,) + tuple(block.tail), dtype=np.float32)
        return block


@dataclass(slots=True)
class _Lost:
    frames: int


@dataclass(slots=True)
class _Missing:
    frames: int
    tail: tuple

    def __len__(self) -> int:
        return self.frames
