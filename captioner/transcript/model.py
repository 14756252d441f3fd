"""The transcript of a session: finals in order, plus the one live partial.

Every time is on the session's audio timeline. Applying an event is O(1)
however long the session has run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from captioner.stt.events import CaptionEvent, Final, Gap, Partial, Word

FORMAT_VERSION = 1


def _word_dict(w: Word) -> dict[str, Any]:
    d: dict[str, Any] = {"text": w.text, "start": w.start, "end": w.end}
    if w.confidence is not None:
        d["confidence"] = w.confidence
    if w.speaker is not None:
        d["speaker"] = w.speaker
    return d


@dataclass(slots=True)
class Segment:
    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()
    speaker: str | None = None
    timed: bool = True
    gap: bool = False  # audio that never reached the provider, shown as […]

    @classmethod
    def from_final(cls, final: Final) -> "Segment":
        return cls(final.text, final.start, final.end, final.words, final.speaker, final.timed)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"text": self.text, "start": self.start, "end": self.end}
        if self.speaker is not None:
            d["speaker"] = self.speaker
        if not self.timed:
            d["timed"] = False
        if self.gap:
            d["gap"] = True
        if self.words:
            d["words"] = [_word_dict(w) for w in self.words]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Segment":
        words = tuple(
            Word(w["text"], float(w["start"]), float(w["end"]), w.get("confidence"), w.get("speaker"))
            for w in d.get("words", ())
        )
        return cls(
            d["text"], float(d["start"]), float(d["end"]), words, d.get("speaker"), d.get("timed", True), d.get("gap", False)
        )


@dataclass
class Transcript:
    segments: list[Segment] = field(default_factory=list)
    partial: Partial | None = None
    provider: str = ""
    source: str = ""
    started_at: str = ""  # ISO-8601 wall-clock start, for the user's records only

    def apply(self, event: CaptionEvent) -> bool:
        """Fold one event in; True when the visible text changed."""
        if isinstance(event, Partial):
            self.partial = event if event.text else None
            return True
        if isinstance(event, Final):
            self.partial = None
            if event.text.strip():
                self.segments.append(Segment.from_final(event))
            return True
        if isinstance(event, Gap):
            self.segments.append(Segment("[…]", event.start, event.end, timed=True, gap=True))
            return True
        return False

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if not s.gap)

    @property
    def duration(self) -> float:
        return self.segments[-1].end if self.segments else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "captioner-transcript",
            "version": FORMAT_VERSION,
            "provider": self.provider,
            "source": self.source,
            "started_at": self.started_at,
            "segments": [s.to_dict() for s in self.segments],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Transcript":
        if d.get("format") != "captioner-transcript":
            raise ValueError("not a Captioner transcript (missing format marker)")
        return cls(
            segments=[Segment.from_dict(s) for s in d.get("segments", ())],
            provider=d.get("provider", ""),
            source=d.get("source", ""),
            started_at=d.get("started_at", ""),
        )
