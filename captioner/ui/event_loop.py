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

A socket becoming readable or writable, and a block handed over from the
audio thread (`call_soon_threadsafe`), drain the queue at once, in the Qt
event that reported them, as asyncio's own loop runs a selector's callbacks
in the iteration that saw them ready. Each of those wakes the app from sleep,
and a wake-up is dear on a cold CPU: going round Qt's event loop once more
just to reach the drain timer was a fifth of the work per frame. A socket's
notifier also stays on while its callback runs: qasync mutes and unmutes it
around each one, and every such turn changes GLib's poll set and writes its
wake-up fd, which costs the app one more pass round Qt's loop per frame.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Callable

import qasync
from PySide6.QtCore import QObject, QSocketNotifier, Qt, QTimer, Signal

MAX_BATCH = 100


class _Handoff(QObject):
    """Carries `call_soon_threadsafe` calls to the loop's thread. qasync has
    its own such signal, but it drops the caller's context and only queues;
    this one keeps the context and drains once delivered."""

    ready = Signal(object, tuple, object)


class CaptionerEventLoop(qasync.QEventLoop):  # type: ignore[misc,valid-type]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._ready_queue: collections.deque[asyncio.Handle] = collections.deque()
        self._drain_timer = QTimer()
        self._drain_timer.setSingleShot(True)
        self._drain_timer.setInterval(0)
        self._drain_timer.timeout.connect(self._on_drain_timer)
        self._drain_pending = False  # the drain timer is started (asking Qt costs a call into it)
        self._draining = False
        self._debug = False
        #: Called after each drain: periodic GUI-thread work (the GC check)
        #: rides on the wake-ups the app has anyway instead of a timer's own.
        self.after_drain: Callable[[], None] | None = None
        self._handoff = _Handoff()
        # Queued even from the loop's own thread: the callback must never run
        # before call_soon_threadsafe returns.
        self._handoff.ready.connect(self._on_handoff, Qt.ConnectionType.QueuedConnection)
        super().__init__(*args, **kwargs)

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(enabled)
        self._debug = bool(enabled)

    def call_soon(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.Handle:
        if self._debug:
            return super().call_soon(callback, *args, context=context)
        handle = asyncio.Handle(callback, args, self, context=context)
        self._ready_queue.append(handle)
        if not self._drain_pending:
            self._drain_pending = True
            self._drain_timer.start()
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.Handle:
        if self._debug:
            return super().call_later(delay, callback, *args, context=context)
        if delay <= 0:
            return self.call_soon(callback, *args, context=context)
        return self._add_callback(asyncio.Handle(callback, args, self, context=context), delay)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> asyncio.Handle:
        return self.call_later(when - self.time(), callback, *args, context=context)

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> None:
        """Thread-safe: from any thread (PortAudio's callback among them)."""
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        self._handoff.ready.emit(callback, args, context)

    def _on_handoff(self, callback: Callable[..., Any], args: tuple, context: Any) -> None:
        if self.is_closed():
            return
        self.call_soon(callback, *args, context=context)
        self._drain_now()

    def _add_reader(self, fd: Any, callback: Callable[..., Any], *args: Any) -> None:
        if self._debug:
            super()._add_reader(fd, callback, *args)
            return
        self._check_closed()
        self._remove_reader(fd)
        self._watch(fd, QSocketNotifier.Type.Read, self._read_notifiers, callback, args)

    def _add_writer(self, fd: Any, callback: Callable[..., Any], *args: Any) -> None:
        if self._debug:
            super()._add_writer(fd, callback, *args)
            return
        self._check_closed()
        self._remove_writer(fd)
        self._watch(fd, QSocketNotifier.Type.Write, self._write_notifiers, callback, args)

    def _watch(self, fd: Any, kind: QSocketNotifier.Type, notifiers: dict, callback: Callable[..., Any], args: tuple) -> None:
        """Like qasync's readers and writers, with one slot that queues the
        callback and drains, leaving the notifier on. qasync turns it off and
        on again round every callback, and each turn changes GLib's poll set:
        two wake-up writes and one more pass round Qt's loop per server frame
        (bench/RESULTS.md). qasync's `_remove_reader/_writer` still apply."""
        notifier = QSocketNotifier(qasync._fileno(fd), kind)
        queued = running = muted = False

        def run() -> None:
            nonlocal queued, running, muted
            queued = False
            if notifiers.get(fd) is not notifier:  # removed or replaced while it waited
                return
            running = True
            try:
                callback(*args)
            finally:
                running = False
                if muted and notifiers.get(fd) is notifier:
                    muted = False
                    notifier.setEnabled(True)

        handle = asyncio.Handle(run, (), self)

        def ready(*_: Any) -> None:
            nonlocal queued, muted
            if notifiers.get(fd) is not notifier:
                return
            if running:
                # The callback runs a nested Qt loop and the fd is still ready:
                # mute it until the callback returns (qasync's way), so it is
                # neither re-entered nor reported again and again.
                notifier.setEnabled(False)
                muted = True
                return
            if not queued:  # else it waits behind a full batch already
                queued = True
                self._ready_queue.append(handle)
            self._drain()

        notifier.activated["int"].connect(ready)
        notifiers[fd] = notifier

    def _drain_now(self) -> None:
        """Run what a wake-up queued, in this Qt event. Not from inside a
        drain (a nested Qt loop): the drain timer covers that."""
        if self._draining or self._debug or self.is_closed():
            return
        self._drain()

    def _on_drain_timer(self) -> None:
        self._drain_pending = False  # it fired: a call_soon from here on starts it again
        self._drain()

    def _drain(self) -> None:
        outer = self._draining  # a drain can run inside another (a nested Qt loop in a callback)
        self._draining = True
        queue = self._ready_queue
        try:
            for _ in range(MAX_BATCH):
                if not queue:
                    return
                handle = queue.popleft()
                if not handle._cancelled:
                    handle._run()  # exceptions go to the loop's exception handler
        finally:
            self._draining = outer
            if queue:
                if not self._drain_pending:
                    self._drain_pending = True
                    self._drain_timer.start()  # the rest after Qt's own events
            elif self._drain_pending:  # started by a callback whose chain has run since
                self._drain_pending = False
                self._drain_timer.stop()
            if not outer and self.after_drain is not None:
                self.after_drain()  # last: whatever it does, the queue is looked after

    def close(self) -> None:
        self._drain_timer.stop()
        self._drain_pending = False
        self._ready_queue.clear()
        super().close()
