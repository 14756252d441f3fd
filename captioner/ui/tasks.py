"""Coroutines a window starts on the loop: kept referenced until they end,
failures logged and shown in words, and `settle()` awaits them all (for a
clean shutdown and for tests)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)


class TaskSet:
    def __init__(self, on_error: Callable[[str], None] | None = None) -> None:
        self._tasks: set[asyncio.Task] = set()
        self._on_error = on_error

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task | None:
        """Run `coro` on the running loop; None (and the coroutine closed)
        when there is no loop any more because the app is going away."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            getattr(coro, "close", lambda: None)()
            return None
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        log.error("background task failed: %s", task.exception())
        if self._on_error is not None:
            self._on_error(f"Something went wrong: {task.exception()}")

    async def settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def __len__(self) -> int:
        return len(self._tasks)
