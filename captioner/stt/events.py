"""The one normalized event model every provider is translated into.

Times are seconds. A provider module reports them relative to the first sample
of *its own connection*; `StreamSession` shifts them onto the session timeline
(seconds since the first sample of the session's audio) before anyone else
sees them, so consumers never deal with per-connection clocks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Union


@dataclass(frozen=True, slots=True)
class Word:
    """One recognized word with its place on the timeline."""

    text: str
    start: float
    end: float
    confidence: float | None = None
    speaker: str | None = None

    def shifted(self, offset: float) -> "Word":
        if offset == 0.0:
            return self  # frozen: the usual case (one connection, no holes) copies nothing
        # The constructor, not dataclasses.replace: ~5x cheaper, and every
        # word of every final passes here (all fields listed: keep in step).
        return Word(self.text, self.start + offset, self.end + offset, self.confidence, self.speaker)


@dataclass(frozen=True, slots=True)
class Partial:
    """Interim text of the open utterance; replaces the previous partial."""

    text: str
    start: float | None = None
    end: float | None = None
    speaker: str | None = None

    def shifted(self, offset: float) -> "Partial":
        if offset == 0.0:
            return self
        return Partial(
            self.text,
            None if self.start is None else self.start + offset,
            None if self.end is None else self.end + offset,
            self.speaker,
        )


@dataclass(frozen=True, slots=True)
class Final:
    """A stabilized segment. `timed` is False when the provider gave no times
    and `start`/`end` were estimated from the sample clock."""

    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()
    speaker: str | None = None
    end_of_utterance: bool = True
    timed: bool = True

    def shifted(self, offset: float) -> "Final":
        if offset == 0.0:
            return self
        return Final(
            self.text,
            self.start + offset,
            self.end + offset,
            tuple([w.shifted(offset) for w in self.words]),
            self.speaker,
            self.end_of_utterance,
            self.timed,
        )


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at: float | None = None

    def shifted(self, offset: float) -> "SpeechStarted":
        return self if self.at is None else replace(self, at=self.at + offset)


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    at: float | None = None

    def shifted(self, offset: float) -> "SpeechStopped":
        return self if self.at is None else replace(self, at=self.at + offset)


@dataclass(frozen=True, slots=True)
class Usage:
    """Billing or metering figures as the provider reports them."""

    seconds: float | None = None
    credits: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def shifted(self, offset: float) -> "Usage":
        return self


class ErrorKind(enum.Enum):
    """How the session must react to an error."""

    FATAL = "fatal"  # stop now and tell the user (bad key, no credits, bad config)
    RETRYABLE = "retryable"  # reconnect and replay (network drop, upstream hiccup)
    ROLLOVER = "rollover"  # the provider session ended by limit: start a new one at once


@dataclass(frozen=True, slots=True)
class ProviderError:
    """An error in words. `code` is the provider's own code when it has one."""

    code: str
    message: str
    kind: ErrorKind = ErrorKind.FATAL

    @property
    def retryable(self) -> bool:
        return self.kind is not ErrorKind.FATAL

    def shifted(self, offset: float) -> "ProviderError":
        return self

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


class SessionState(enum.Enum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    DRAINING = "draining"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: SessionState
    detail: str = ""

    def shifted(self, offset: float) -> "StateChanged":
        return self


@dataclass(frozen=True, slots=True)
class Gap:
    """Audio between `start` and `end` never reached a provider (shown as […])."""

    start: float
    end: float
    reason: str = ""

    def shifted(self, offset: float) -> "Gap":
        return self


CaptionEvent = Union[
    Partial, Final, SpeechStarted, SpeechStopped, Usage, ProviderError, StateChanged, Gap
]


class ProviderFailure(Exception):
    """Raised by a session that ended on a fatal provider error."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(str(error))
        self.error = error
