"""CaptionerEventLoop: qasync with a batched ready queue. asyncio's contract
must hold: FIFO call_soon, cancelled handles skipped, exceptions to the
handler, long chains not starving Qt, timers at their time."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import socket
import threading
import time
from typing import Any, Iterator

from PySide6.QtCore import QTimer

from captioner.ui import event_loop


async def test_call_soon_is_fifo_and_skips_cancelled_handles():
    loop = asyncio.get_running_loop()
    assert isinstance(loop, event_loop.CaptionerEventLoop)
    order: list[int] = []
    done = loop.create_future()
    handles = [loop.call_soon(order.append, i) for i in range(5)]
    handles[2].cancel()
    loop.call_soon(done.set_result, None)
    await done
    assert order == [0, 1, 3, 4]


async def test_a_long_chain_runs_in_batches_and_lets_qt_in():
    loop = asyncio.get_running_loop()
    n = event_loop.MAX_BATCH * 3
    ran: list[int] = []
    qt_ticks: list[int] = []
    done = loop.create_future()

    def step(i: int) -> None:
        ran.append(i)
        if i + 1 < n:
            loop.call_soon(step, i + 1)
        else:
            done.set_result(None)

    QTimer.singleShot(0, lambda: qt_ticks.append(len(ran)))  # a Qt event queued behind the chain's start
    loop.call_soon(step, 0)
    await done
    assert ran == list(range(n))
    assert qt_ticks and qt_ticks[0] < n  # Qt ran between batches, not only after the whole chain


async def test_callback_errors_go_to_the_exception_handler_and_the_loop_goes_on():
    loop = asyncio.get_running_loop()
    seen: list[dict] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    try:
        after = loop.create_future()
        loop.call_soon(lambda: 1 / 0)
        loop.call_soon(after.set_result, "still running")
        assert await after == "still running"
    finally:
        loop.set_exception_handler(old)
    assert isinstance(seen[0]["exception"], ZeroDivisionError)


async def test_timers_fire_at_their_time_and_zero_delay_goes_first():
    loop = asyncio.get_running_loop()
    order: list[str] = []
    t0 = time.monotonic()
    later = loop.create_future()
    loop.call_later(0.15, lambda: (order.append("timer"), later.set_result(time.monotonic() - t0)))
    loop.call_later(0, order.append, "soon")
    elapsed = await later
    assert order == ["soon", "timer"]
    assert 0.14 <= elapsed < 1.0
    await asyncio.sleep(0.05)  # sleep() works (a timer, then a task step)


def _count_timer_drains(loop: event_loop.CaptionerEventLoop) -> list[int]:
    """Counts the drains the zero timer runs (counted as it fires, before the
    callbacks it runs look at the count)."""
    fired: list[int] = []

    def counting() -> None:
        fired.append(1)
        loop._on_drain_timer()

    loop._drain_timer.timeout.disconnect()
    loop._drain_timer.timeout.connect(counting)
    return fired


async def test_a_readable_socket_runs_its_chain_in_the_qt_event_that_reported_it():
    """A server frame wakes the app: its callback, and the task it wakes, run
    right then, not after another turn of Qt's loop to reach the drain timer."""
    loop = asyncio.get_running_loop()
    timer_drains = _count_timer_drains(loop)
    with _socket_pair(loop) as (a, b):
        got = loop.create_future()
        loop.add_reader(a.fileno(), lambda: got.done() or got.set_result(a.recv(16)))
        await asyncio.sleep(0.05)
        before = len(timer_drains)
        threading.Timer(0.05, b.send, (b"frame",)).start()
        assert await asyncio.wait_for(got, 5) == b"frame"
        assert len(timer_drains) == before  # this task woke in the notifier's own event


async def test_call_soon_threadsafe_runs_at_once_in_order_with_its_context():
    loop = asyncio.get_running_loop()
    timer_drains = _count_timer_drains(loop)
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "from the caller")
    seen: list[tuple[int, str]] = []
    done = loop.create_future()

    def from_thread() -> None:  # e.g. PortAudio's callback thread
        for i in range(3):
            loop.call_soon_threadsafe(lambda i=i: seen.append((i, var.get())), context=ctx)
        loop.call_soon_threadsafe(done.set_result, None)

    await asyncio.sleep(0.05)
    before = len(timer_drains)
    threading.Thread(target=from_thread).start()
    await asyncio.wait_for(done, 5)
    assert seen == [(0, "from the caller"), (1, "from the caller"), (2, "from the caller")]
    assert len(timer_drains) == before


def test_call_soon_threadsafe_on_a_closed_loop_raises(qapp):  # noqa: ANN001
    loop = event_loop.CaptionerEventLoop(qapp)
    loop.close()
    try:
        loop.call_soon_threadsafe(print)
    except RuntimeError:
        pass
    else:
        raise AssertionError("a closed loop took a callback")


async def test_call_soon_threadsafe_from_the_loop_thread_never_runs_the_callback_at_once():
    """From a Qt slot on the loop's own thread (not inside a drain), the
    hand-off is still queued: the callback runs after the call returns."""
    loop = asyncio.get_running_loop()
    ran: list[int] = []
    seen_on_return: list[list[int]] = []
    done = loop.create_future()

    def slot() -> None:
        loop.call_soon_threadsafe(ran.append, 1)
        seen_on_return.append(list(ran))
        loop.call_soon_threadsafe(done.set_result, None)

    QTimer.singleShot(0, slot)
    await asyncio.wait_for(done, 5)
    assert seen_on_return == [[]] and ran == [1]


async def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@contextlib.contextmanager
def _socket_pair(loop: asyncio.AbstractEventLoop) -> Iterator[tuple[socket.socket, socket.socket]]:
    """(a, b): a connected pair, `a` non-blocking; on leaving, whatever watches
    `a` is removed and both ends are closed."""
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        yield a, b
    finally:
        loop.remove_reader(a.fileno())
        loop.remove_writer(a.fileno())
        a.close()
        b.close()


async def test_a_reader_serves_every_frame_in_order_with_its_notifier_left_on():
    """qasync turns a reader's notifier off and on round every callback (a
    GLib poll-set change and a wake-up write each); ours stays on."""
    loop = asyncio.get_running_loop()
    got = bytearray()
    notifier_on: list[bool] = []
    done = loop.create_future()
    with _socket_pair(loop) as (a, b):

        def on_readable() -> None:
            notifier_on.append(loop._read_notifiers[a.fileno()].isEnabled())
            got.extend(a.recv(64))
            if got.endswith(b"4;") and not done.done():
                done.set_result(None)

        def send() -> None:
            for i in range(5):
                b.send(f"{i};".encode())
                time.sleep(0.02)

        loop.add_reader(a.fileno(), on_readable)
        threading.Thread(target=send).start()
        await asyncio.wait_for(done, 5)
        assert bytes(got) == b"0;1;2;3;4;"
        assert notifier_on and all(notifier_on)


async def test_a_writer_runs_with_its_notifier_left_on_and_stops_when_removed():
    """Writers (a transport whose send buffer filled up) take the same path
    as readers."""
    loop = asyncio.get_running_loop()
    notifier_on: list[bool] = []
    with _socket_pair(loop) as (a, b):

        def on_writable() -> None:
            notifier_on.append(loop._write_notifiers[a.fileno()].isEnabled())
            a.send(b"flushed")
            loop.remove_writer(a.fileno())

        loop.add_writer(a.fileno(), on_writable)  # a fresh socket is writable at once
        await _until(lambda: notifier_on)
        await asyncio.sleep(0.05)
        assert notifier_on == [True]
        assert b.recv(64) == b"flushed"
        assert loop.remove_writer(a.fileno()) is False


async def test_a_replaced_or_removed_reader_is_not_called_again():
    loop = asyncio.get_running_loop()
    calls: list[str] = []
    with _socket_pair(loop) as (a, b):

        def reader(name: str) -> None:
            calls.append(name)
            a.recv(64)

        loop.add_reader(a.fileno(), reader, "old")
        loop.add_reader(a.fileno(), reader, "new")
        b.send(b"x")
        await _until(lambda: calls)
        await asyncio.sleep(0.05)
        assert calls == ["new"]
        assert loop.remove_reader(a.fileno()) is True
        b.send(b"y")
        await asyncio.sleep(0.1)
        assert calls == ["new"]
        assert loop.remove_reader(a.fileno()) is False


async def test_a_reader_that_raises_goes_to_the_handler_and_is_served_again():
    loop = asyncio.get_running_loop()
    errors: list[BaseException] = []
    seen: list[bytes] = []
    second = loop.create_future()
    loop.set_exception_handler(lambda _loop, context: errors.append(context.get("exception")))
    try:
        with _socket_pair(loop) as (a, b):

            def reader() -> None:
                data = a.recv(64)
                seen.append(data)
                if data == b"bad":
                    raise ValueError("a malformed frame")
                if not second.done():
                    second.set_result(None)

            loop.add_reader(a.fileno(), reader)
            b.send(b"bad")
            await _until(lambda: errors)
            b.send(b"good")
            await asyncio.wait_for(second, 5)
        assert seen == [b"bad", b"good"]
        assert len(errors) == 1 and isinstance(errors[0], ValueError)
    finally:
        loop.set_exception_handler(None)


async def test_a_reader_is_served_inside_a_nested_qt_loop_and_never_reentered():
    """A callback that runs a modal loop (a file dialog from a coroutine) must
    not stop sockets from being read; a reader whose own callback runs one is
    not called inside itself, and is served again once it returns."""
    from PySide6.QtCore import QEventLoop

    loop = asyncio.get_running_loop()
    running: dict[str, bool] = {"a": False, "c": False}
    reentered: list[str] = []
    got: list[bytes] = []
    outcome: list[str] = []

    def nested_until(done: Any) -> None:
        nested = QEventLoop()
        poll = QTimer()
        poll.timeout.connect(lambda: done() and nested.quit())
        poll.start(5)
        QTimer.singleShot(3000, lambda: (outcome.append("timed out"), nested.quit()))
        nested.exec()
        poll.stop()

    with _socket_pair(loop) as (a, b), _socket_pair(loop) as (c, d):

        def reader(name: str, sock: socket.socket) -> None:
            if running[name]:
                reentered.append(name)
            running[name] = True
            try:
                data = sock.recv(64)
                got.append(data)
                if data == b"modal in a reader":
                    # c stays readable while this one waits: it must not come back in here.
                    d.send(b"more for c")
                    threading.Timer(0.05, b.send, (b"a meanwhile",)).start()
                    nested_until(lambda: b"a meanwhile" in got)
            finally:
                running[name] = False

        def modal() -> None:  # runs inside a drain, as a coroutine's step would
            threading.Timer(0.05, b.send, (b"a in the dialog",)).start()
            nested_until(lambda: b"a in the dialog" in got)
            outcome.append("closed")

        loop.add_reader(a.fileno(), reader, "a", a)
        loop.add_reader(c.fileno(), reader, "c", c)
        loop.call_soon(modal)
        await _until(lambda: outcome)
        assert outcome == ["closed"]
        d.send(b"modal in a reader")
        await _until(lambda: b"more for c" in got)
        assert got == [b"a in the dialog", b"modal in a reader", b"a meanwhile", b"more for c"]
        assert reentered == [] and outcome == ["closed"]


async def test_a_reader_removed_while_its_callback_waits_in_the_queue_is_not_called():
    """asyncio's own loops cancel a reader's pending callback on removal: a
    transport that has closed must not be read once more."""
    from PySide6.QtCore import QCoreApplication

    loop = asyncio.get_running_loop()
    calls: list[bytes] = []
    drain = loop._drain
    with _socket_pair(loop) as (a, b):
        loop.add_reader(a.fileno(), lambda: calls.append(a.recv(64)))
        try:
            loop._drain = lambda: None  # type: ignore[method-assign]  # the callback stays queued
            b.send(b"x")
            deadline = time.monotonic() + 5
            while not loop._ready_queue and time.monotonic() < deadline:
                QCoreApplication.processEvents()
            assert loop._ready_queue, "the notifier never reported the socket"
            loop.remove_reader(a.fileno())
        finally:
            del loop._drain  # the method again
        assert loop._drain == drain
        drain()
        await asyncio.sleep(0.05)
        assert calls == []
