"""Helpers for driving sessions against fakes in tests."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from captioner.stt.events import CaptionEvent, Final, Partial, ProviderError, StateChanged


@dataclass
class EventLog:
    events: list[CaptionEvent] = field(default_factory=list)

    def __call__(self, event: CaptionEvent) -> None:
        self.events.append(event)

    @property
    def finals(self) -> list[Final]:
        return [e for e in self.events if isinstance(e, Final)]

    @property
    def partials(self) -> list[Partial]:
        return [e for e in self.events if isinstance(e, Partial)]

    @property
    def errors(self) -> list[ProviderError]:
        return [e for e in self.events if isinstance(e, ProviderError)]

    @property
    def states(self) -> list[str]:
        return [e.state.value for e in self.events if isinstance(e, StateChanged)]

    @property
    def words(self) -> list[str]:
        return [w.text for f in self.finals for w in f.words] if all(f.words for f in self.finals) else " ".join(f.text for f in self.finals).split()


def assert_times_match(finals: list[Final], spoken: Any, tolerance: float = 0.08) -> None:
    """Each final word starts and ends where the source spoke it."""
    got = [w for f in finals for w in f.words]
    assert [w.text for w in got] == [w for w, _, _ in spoken.words]
    for word, (_, start, end) in zip(got, spoken.words):
        assert abs(word.start - start) <= tolerance, (word, start)
        assert abs(word.end - end) <= tolerance, (word, end)


class FakeStream:
    """Stands in for sounddevice.InputStream so the real callback can be
    driven; each opened stream is appended to its class's `instances`."""

    instances: list["FakeStream"] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        type(self).instances.append(self)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


class FlakyFile:
    """A file (the journal's) on a disk that can be made full: `full` on, writes
    fail with ENOSPC (after `short_write` bytes of the first, a short write)."""

    def __init__(self, real: Any, short_write: int = 0) -> None:
        self.real = real
        self.full = False
        self.short_write = short_write  # bytes a write still takes before the disk is full
        self.failures = 0

    def write(self, data: Any) -> int:
        if self.full:
            if self.short_write and len(data) > self.short_write:
                n = self.real.write(bytes(data[: self.short_write]))
                self.short_write = 0
                return n
            self.failures += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real.write(data)

    def flush(self) -> None:
        self.real.flush()

    def fileno(self) -> int:
        return self.real.fileno()

    def close(self) -> None:
        self.real.close()


class ScriptedInput:
    """A live input for tests that script a device's life (lost, back): the
    source surface MicrophoneSource offers (name, sample_rate, stats, the
    on_notice / on_gap / on_device_state callbacks, async context and
    iteration); a subclass writes `_gen`, the blocks it delivers."""

    def __init__(self, name: str, sample_rate: int) -> None:
        from captioner.audio.feed import FeedStats

        self.name, self.sample_rate = name, sample_rate
        self.on_notice = self.on_gap = self.on_device_state = None
        self.stats = FeedStats()

    async def __aenter__(self) -> "ScriptedInput":
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __aiter__(self) -> Any:
        return self._gen()

    def _gen(self) -> Any:
        raise NotImplementedError

    def tell(self, callback: str, *args: Any) -> None:
        """Call `on_<callback>` if anyone listens."""
        listener = getattr(self, f"on_{callback}")
        if listener is not None:
            listener(*args)
