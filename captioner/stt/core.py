"""What every captioning session shares, cloud or local: listeners, state
changes, and the sample clock.

The clock counts samples, never wall time. `stream position` counts the
samples that reached the recognizer; `session time` also counts audio that
never did (a backlog that overflowed, an unplugged device) as holes, so every
caption time stays true to the source.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from captioner.stt.events import Gap, SessionState, StateChanged

log = logging.getLogger(__name__)

Listener = Callable[[Any], None]


class SessionCore:
    """Mixed into StreamSession and LocalSession; call `_init_core` first."""

    sample_rate: int
    stats: Any  # has .gaps

    def _init_core(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.state = SessionState.CONNECTING
        self._listeners: list[Listener] = []
        self._holes: list[tuple[int, int]] = []  # (stream position, samples that never reached it)
        self._stream_end = 0  # stream position of the next sample taken in

    # ----------------------------------------------------------- listeners
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, event: Any) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken consumer must not kill the session
                log.exception("caption event listener failed")

    def _set_state(self, state: SessionState, detail: str = "") -> None:
        self.state = state
        self._emit(StateChanged(state, self._redact(detail)))

    def _redact(self, text: str) -> str:
        return text

    # --------------------------------------------------------------- clock
    def session_time(self, position: int) -> float:
        """Seconds on the session timeline of a stream position."""
        dropped = 0
        for at, samples in self._holes:
            if at <= position:
                dropped += samples
        return (position + dropped) / self.sample_rate

    @property
    def audio_time(self) -> float:
        """Seconds of source audio taken in so far (holes included)."""
        return self.session_time(self._stream_end)

    def _add_hole(self, samples: int, reason: str) -> None:
        """Audio that never reached the recognizer at the current position:
        later times shift past it, and the gap is shown."""
        start = self.session_time(self._stream_end)
        self._holes.append((self._stream_end, samples))
        self.stats.gaps += 1
        self._emit(Gap(start, start + samples / self.sample_rate, reason))

    def mark_gap(self, seconds: float, reason: str) -> None:
        """Record audio that never existed for the recognizer (e.g. the input
        device was unplugged for `seconds`)."""
        samples = int(round(seconds * self.sample_rate))
        if samples > 0:
            self._add_hole(samples, reason)
