"""Verbose logging never carries a key: qasync logs each worker-thread call's
arguments and result at DEBUG (storing a key, reading it back), so the app
keeps that logger at INFO even with --verbose."""

from __future__ import annotations

import asyncio
import logging

from captioner import keys, logs

SECRET = "ap_verbose_log_key_424242"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_storing_and_reading_a_key_off_the_loop_logs_no_key_even_when_verbose(qapp):  # noqa: ANN001
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("qasync").level, logging.getLogger("websockets").level)
    collect = Collect()
    try:
        logs.setup_logging(verbose=True)
        root.addHandler(collect)  # sees records before any redaction
        assert root.isEnabledFor(logging.DEBUG)
        assert isinstance(asyncio.get_running_loop(), __import__("qasync").QEventLoop)
        await keys.set_key_async("audiopod", SECRET)
        assert await keys.get_key_async("audiopod") == SECRET
        await asyncio.to_thread(lambda: None)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("qasync").setLevel(saved[2])
        logging.getLogger("websockets").setLevel(saved[3])
    assert not [line for line in collect.lines if SECRET in line]
