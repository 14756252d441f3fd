"""LocalSession: captions from an offline recognizer, with StreamSession's face.

The CLI and the GUI drive it exactly like a cloud session (`subscribe`,
`run(blocks, live=...)`, `stop()`, `sample_rate`, `state`, `stats`, `lag`,
`provider_time`, `audio_time`, `mark_gap`, `last_error`, `session_time`) and
get the same events. The recognizer runs in its own process (see worker.py);
two small threads here only move bytes over the pipe, so nothing on the event
loop ever waits for recognition.

The clock is the same as StreamSession's: the engine reports sample
positions of the audio it was given; audio that never reached it (a backlog
overflow, an unplugged device) is recorded as holes, so times stay true.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import queue
import threading
from typing import Any, AsyncIterator

from captioner.stt.events import (
    CaptionEvent,
    ErrorKind,
    Final,
    Partial,
    ProviderError,
    ProviderFailure,
    SessionState,
    StateChanged,
    Word,
)
from captioner.stt.local.engines import SAMPLE_RATE, RawResult
from captioner.stt.local.events import ModelProgress
from captioner.stt.local.options import LocalOptions
from captioner.stt.core import SessionCore
from captioner.stt.session import SessionConfig, SessionStats

log = logging.getLogger(__name__)


class LocalSession(SessionCore):
    """Streams PCM to the offline recognizer process and publishes events."""

    def __init__(self, options: LocalOptions | None = None, config: SessionConfig | None = None) -> None:
        self.options = options or LocalOptions()
        self.config = config or SessionConfig("local:")
        self._init_core(SAMPLE_RATE)  # _stream_end: samples taken in (and sent to the engine)
        self.stats = SessionStats()
        self.provider_time = 0.0
        self.last_error: ProviderError | None = None
        self._processed = 0  # samples the engine has answered for
        self._stopping = False
        self._source_error: BaseException | None = None
        self._space: asyncio.Event | None = None

    @property
    def lag(self) -> float:
        """Seconds of audio taken in that the recognizer has not answered for."""
        return max(0.0, self.audio_time - self.session_time(self._processed))

    # ---------------------------------------------------------------- stop
    def stop(self) -> None:
        """End the audio here; the recognizer finishes what it has."""
        self._stopping = True
        if self._space is not None:
            self._space.set()  # a file source waiting for room stops waiting

    # ----------------------------------------------------------------- run
    async def run(self, blocks: AsyncIterator[bytes], live: bool = True) -> None:
        """Recognize `blocks` to the end. Raises `ProviderFailure` when the
        engine cannot start or fails, or the source's own exception."""
        loop = asyncio.get_running_loop()
        self._space = asyncio.Event()
        inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        outbox: queue.Queue[Any] = queue.Queue()
        ctx = multiprocessing.get_context("spawn")  # never fork a Qt process
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_entry, args=(child, self.options), daemon=True, name="captioner-recognizer")
        self._set_state(SessionState.CONNECTING, "starting the offline recognizer")
        self.stats.connections += 1
        await asyncio.to_thread(proc.start)
        child.close()  # the child's end lives in the child now: its exit means EOF here
        threading.Thread(target=_receive, args=(parent, loop, inbox), daemon=True, name="captioner-recognizer-rx").start()
        threading.Thread(target=_send, args=(parent, outbox), daemon=True, name="captioner-recognizer-tx").start()
        reader = asyncio.ensure_future(self._read(blocks, live, outbox))
        finished = False
        try:
            await self._handle(inbox, reader, proc)
            finished = True
        finally:
            outbox.put(None)
            if not reader.done():
                reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            if finished:
                await asyncio.to_thread(proc.join, 5.0)
            if proc.is_alive():
                proc.terminate()  # on abort: at once (a download resumes next time)
        if self._source_error is not None:
            raise self._source_error

    async def _read(self, blocks: AsyncIterator[bytes], live: bool, outbox: queue.Queue[Any]) -> None:
        assert self._space is not None
        cap = int(self.config.backlog_seconds * self.sample_rate)
        try:
            async for pcm in blocks:
                if self._stopping:
                    break
                samples = len(pcm) // 2
                if not samples:
                    continue
                while not live and self._stream_end - self._processed + samples > cap and not self._stopping:
                    self._space.clear()  # a file waits for the recognizer instead of dropping
                    await self._space.wait()
                if self._stopping:
                    break
                if self._stream_end - self._processed + samples > cap:
                    self.stats.dropped_seconds += samples / self.sample_rate
                    self._add_hole(samples, "the offline recognizer fell behind; audio dropped")
                    continue
                self._stream_end += samples
                self.stats.bytes_sent += samples * 2
                self.stats.messages_sent += 1
                outbox.put(("audio", bytes(pcm[: samples * 2])))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # device lost etc.: finish what we have, then report
            self._source_error = exc
        outbox.put(("end",))

    async def _handle(self, inbox: asyncio.Queue[tuple[Any, ...]], reader: asyncio.Future[None], proc: Any) -> None:
        assert self._space is not None
        draining = False
        while True:
            timeout = self.config.drain_timeout if reader.done() else None
            try:
                message = await asyncio.wait_for(inbox.get(), timeout)
            except asyncio.TimeoutError:
                await self._fail(ProviderError("DRAIN_TIMEOUT", "the offline recognizer did not finish in time"))
            if reader.done() and not draining and self.state is SessionState.LIVE:
                draining = True
                self._set_state(SessionState.DRAINING)
            kind = message[0]
            if kind == "results":
                self._processed = max(self._processed, int(message[1]))
                self._space.set()
                for raw in message[2]:
                    self._publish(raw)
            elif kind == "progress":
                done, total = int(message[1]), message[2]
                self._emit(ModelProgress(done, total))
                shown = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
                self.state = SessionState.CONNECTING
                self._emit(StateChanged(SessionState.CONNECTING, f"downloading the speech model: {shown}"))
            elif kind == "ready":
                self._set_state(SessionState.LIVE, f"{message[1]} on this computer")
            elif kind == "done":
                self._set_state(SessionState.CLOSED)
                return
            elif kind == "error":
                await self._fail(ProviderError(str(message[1]), str(message[2])))
            elif kind == "eof":
                code = await asyncio.to_thread(_exit_code, proc)
                await self._fail(ProviderError("ENGINE_CRASHED", f"the offline recognizer stopped unexpectedly (exit code {code})"))

    def _publish(self, raw: RawResult) -> None:
        t = self.session_time
        if raw.final:
            words = tuple(Word(w.text, t(w.start), t(w.end), w.confidence) for w in raw.words)
            event: CaptionEvent = Final(raw.text, t(raw.start), t(raw.end), words, timed=True)
            self.provider_time = max(self.provider_time, t(raw.end))
        else:
            event = Partial(raw.text, t(raw.start), t(raw.end))
            self.provider_time = max(self.provider_time, t(raw.end))
        self._emit(event)

    async def _fail(self, error: ProviderError) -> None:
        error = ProviderError(error.code, error.message, ErrorKind.FATAL)
        self.last_error = error
        self._emit(error)
        self._set_state(SessionState.FAILED, str(error))
        raise ProviderFailure(error)


def _worker_entry(conn: Any, options: LocalOptions) -> None:
    from captioner.stt.local.worker import worker_main

    worker_main(conn, options)


def _receive(conn: Any, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[tuple[Any, ...]]) -> None:
    """Pipe → loop. Ends when the worker's end closes (it exited)."""
    try:
        while True:
            message = conn.recv()
            loop.call_soon_threadsafe(inbox.put_nowait, message)
    except (EOFError, OSError):
        pass
    except RuntimeError:  # the loop closed first
        conn.close()
        return
    conn.close()
    try:
        loop.call_soon_threadsafe(inbox.put_nowait, ("eof",))
    except RuntimeError:
        pass


def _send(conn: Any, outbox: queue.Queue[Any]) -> None:
    """Loop → pipe, off the loop: a full pipe blocks this thread, not the GUI."""
    while True:
        item = outbox.get()
        if item is None:
            break
        try:
            conn.send(item)
        except (OSError, ValueError):
            break


def _exit_code(proc: Any) -> Any:
    proc.join(2.0)
    return proc.exitcode
