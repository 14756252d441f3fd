"""CaptionerEventLoop: qasync with a batched ready queue. asyncio's contract
must hold: FIFO call_soon, cancelled handles skipped, exceptions to the
handler, long chains not starving Qt, timers at their time."""

from __future__ import annotations

import asyncio
import contextvars
import socket
import threading
import time

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
    a, b = socket.socketpair()
    got = loop.create_future()
    loop.add_reader(a.fileno(), lambda: got.done() or got.set_result(a.recv(16)))
    try:
        await asyncio.sleep(0.05)
        before = len(timer_drains)
        threading.Timer(0.05, b.send, (b"frame",)).start()
        assert await asyncio.wait_for(got, 5) == b"frame"
        assert len(timer_drains) == before  # this task woke in the notifier's own event
    finally:
        loop.remove_reader(a.fileno())
        a.close()
        b.close()


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
