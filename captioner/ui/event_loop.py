"""The asyncio loop inside Qt: qasync's, with a leaner path per callback.

qasync runs every asyncio callback as its own Qt timer (startTimer, a timer
event through Python, killTimer) and, before scheduling one, asks
`asyncio.iscoroutinefunction(callback)`, which for a bound method walks
`inspect`. Captioning live schedules ~120 callbacks a second (audio blocks,
socket frames, task steps), most of them `call_soon` chains a few links long.

Here `call_soon` appends to a ready queue that one zero-interval QTimer drains:
a chain of task steps runs in one Qt event instead of one timer each, in the
same FIFO order asyncio gives. A drain runs at most `MAX_BATCH` callbacks,
then lets Qt handle its own events before the next. The coroutine check is
made only in debug mode, as asyncio's own loops do; delayed callbacks stay
qasync's timers.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Callable

import qasync
from PySide6.QtCore import QTimer

MAX_BATCH = 100


class CaptionerEventLoop(qasync.QEventLoop):  # type: ignore[misc,valid-type]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._ready_queue: collections.deque[asyncio.Handle] = collections.deque()
        self._drain_timer = QTimer()
        self._drain_timer.setSingleShot(True)
        self._drain_timer.setInterval(0)
        self._drain_timer.timeout.connect(self._drain)
        super().__init__(*args, **kwargs)

    def call_soon(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.Handle:
        if self.get_debug():
            return super().call_soon(callback, *args, context=context)
        handle = asyncio.Handle(callback, args, self, context=context)
        self._ready_queue.append(handle)
        if not self._drain_timer.isActive():
            self._drain_timer.start()
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.Handle:
        if self.get_debug():
            return super().call_later(delay, callback, *args, context=context)
        if delay <= 0:
            return self.call_soon(callback, *args, context=context)
        return self._add_callback(asyncio.Handle(callback, args, self, context=context), delay)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.Handle:
        return self.call_later(when - self.time(), callback, *args, context=context)

    def _drain(self) -> None:
        queue = self._ready_queue
        for _ in range(MAX_BATCH):
            if not queue:
                return
            handle = queue.popleft()
            if not handle._cancelled:
                handle._run()  # exceptions go to the loop's exception handler
        if queue:
            self._drain_timer.start()  # the rest after Qt's own events

    def close(self) -> None:
        self._drain_timer.stop()
        self._ready_queue.clear()
        super().close()
