"""The asyncio loop inside Qt: qasync's, with a leaner path per callback.

qasync runs every asyncio callback as a Qt timer and, before scheduling one,
asks `asyncio.iscoroutinefunction(callback)`, which for a bound method walks
`inspect` (~40 µs each with its signature checks). Captioning live schedules
~120 callbacks a second (audio blocks, socket frames, timeouts), so that check
alone was ~0.1 % of a core. asyncio's own loops only make it in debug mode;
so does this one. Scheduling itself is unchanged: qasync's timers.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import qasync


class CaptionerEventLoop(qasync.QEventLoop):  # type: ignore[misc,valid-type]
    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.Handle:
        if self.get_debug():
            return super().call_later(delay, callback, *args, context=context)
        return self._add_callback(asyncio.Handle(callback, args, self, context=context), delay)

    def call_soon(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.Handle:
        return self.call_later(0, callback, *args, context=context)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.Handle:
        return self.call_later(when - self.time(), callback, *args, context=context)
