"""The transcript of a session: finals in order, plus the one live partial.

Every time is on the session's audio timeline. Applying an event is O(1)
however long the session has run. Caption text is cleaned here, where it
enters the transcript (see `clean_text`), so no export, journal or stdout
line ever carries a provider's newline or control character.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from captioner.stt.events import CaptionEvent, Final, Gap, Partial, Word
from captioner.transcript.spacing import single_spaced

# 2: session facts (audio_duration, outcome, error, language, options) and
# each gap's reason; times rounded to the millisecond. Version 1 files still load.
FORMAT_VERSION = 2

# C0 and C1 controls and DEL, minus the whitespace ones (split() turns those
# into single spaces): dropped, as they never belong in a caption.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
# Characters that show nothing of their own (zero-width spaces and joiners,
# direction marks, the BOM): kept inside text, but a caption of only these is empty.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u061c\ufeff ]*")


def clean_text(text: str) -> str:
    """One caption line: runs of whitespace (newlines, tabs, CR included)
    become one space, other control characters are dropped, the ends are
    trimmed. Everything else (no-break spaces, RTL text, emoji and their
    joiners, CJK) is kept. Text that is already clean is returned as is,
    without a copy."""
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text  # the usual case: no control, no space but single inner ones
    text = single_spaced(_CONTROLS.sub("", text))
    return "" if _INVISIBLE.fullmatch(text) else text


def _ms(t: float) -> float:
    """Seconds to the millisecond: 1.9 rather than 1.9000000000000001 in files.
    Floor of t + half a millisecond: the nearest double to a whole number of
    milliseconds, whose shortest repr has at most 3 decimals; half the time of
    round(t, 3), and it never raises, even on a NaN."""
    return (t * 1000 + 0.5) // 1 / 1000


def _clean_speaker(speaker: str | None) -> str | None:
    return speaker if speaker is None else clean_text(speaker) or None


def clean_final(final: Final) -> Final:
    """`final` with clean text, words (a word left empty is dropped) and
    speaker ids (they become labels in SRT and text)."""
    text, speaker = clean_text(final.text), _clean_speaker(final.speaker)
    words = final.words
    if any(clean_text(w.text) is not w.text or _clean_speaker(w.speaker) is not w.speaker for w in words):
        words = tuple(
            Word(t, w.start, w.end, w.confidence, _clean_speaker(w.speaker)) for w in words if (t := clean_text(w.text))
        )
    if text is final.text and words is final.words and speaker is final.speaker:
        return final
    return Final(text, final.start, final.end, words, speaker, final.end_of_utterance, final.timed)


def _word_dict(w: Word) -> dict[str, Any]:
    d: dict[str, Any] = {"text": w.text, "start": w.start, "end": w.end}  # rounded by Segment already
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
    reason: str = ""  # why a gap's audio was lost

    def __post_init__(self) -> None:
        # Times to the millisecond once, when the segment is made (a final's
        # few words as it arrives), not on every export: an 8-hour JSON export
        # holds ~150,000 word times and must stay well under 0.1 s.
        ms = _ms
        self.start, self.end = ms(self.start), ms(self.end)
        for w in self.words:
            if ms(w.start) != w.start or ms(w.end) != w.end:
                self.words = tuple(Word(w.text, ms(w.start), ms(w.end), w.confidence, w.speaker) for w in self.words)
                break

    @classmethod
    def from_final(cls, final: Final) -> "Segment":
        final = clean_final(final)
        return cls(final.text, final.start, final.end, final.words, final.speaker, final.timed)

    @classmethod
    def from_gap(cls, gap: Gap) -> "Segment":
        return cls("[…]", gap.start, gap.end, timed=True, gap=True, reason=clean_text(gap.reason))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"text": self.text, "start": self.start, "end": self.end}  # rounded when made
        if self.speaker is not None:
            d["speaker"] = self.speaker
        if not self.timed:
            d["timed"] = False
        if self.gap:
            d["gap"] = True
            if self.reason:
                d["reason"] = self.reason
        if self.words:
            d["words"] = [_word_dict(w) for w in self.words]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Segment":
        """From a journal line or a JSON export. A damaged or hand-edited one
        (text that is not text, a time that is not a finite number) raises
        ValueError: the caller skips that caption, not the whole session."""
        words = tuple(
            Word(t, finite_time(w["start"]), finite_time(w["end"]), w.get("confidence"), w.get("speaker"))
            for w in d.get("words", ())
            if (t := clean_text(_text(w["text"])))
        )
        return cls(
            clean_text(_text(d["text"])), finite_time(d["start"]), finite_time(d["end"]), words, d.get("speaker"),
            d.get("timed", True), d.get("gap", False), str(d.get("reason", "")),
        )


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"caption text is {type(value).__name__}, not text")
    return value


def finite_time(value: Any) -> float:
    """A time read from a file: a finite number of seconds, else ValueError."""
    t = float(value)
    if not math.isfinite(t):
        raise ValueError(f"time {value!r} is not a finite number")
    return t


@dataclass
class Transcript:
    segments: list[Segment] = field(default_factory=list)
    partial: Partial | None = None
    provider: str = ""
    source: str = ""
    started_at: str = ""  # ISO-8601 wall-clock start, for the user's records only
    # What is known about the session beyond its captions (None / "" / {}: not known).
    audio_duration: float | None = None  # seconds of audio the session took in
    outcome: str = ""  # OUTCOMES: how the session ended
    error: str = ""  # the error code when outcome == "failed"
    language: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def apply(self, event: CaptionEvent) -> bool:
        """Fold one event in; True when the visible text changed."""
        if isinstance(event, Partial):
            text = clean_text(event.text)
            if text is not event.text:
                event = Partial(text, event.start, event.end, event.speaker)
            self.partial = event if text else None
            return True
        if isinstance(event, Final):
            self.partial = None
            segment = Segment.from_final(event)
            if segment.text:
                self._insert_final(segment)
            return True
        if isinstance(event, Gap):
            self.segments.append(Segment.from_gap(event))
            return True
        return False

    def _insert_final(self, segment: Segment) -> None:
        """Append, or place before the gaps that came just before it but lie
        after its start: an outage is reported when it begins, while the
        words said just before it are finalized later, so TXT and JSON (which
        keep this order) showed "[…]" before them. Finals keep their order."""
        segments = self.segments
        at = len(segments)
        while at and segments[at - 1].gap and segments[at - 1].start > segment.start:
            at -= 1
        segments.insert(at, segment)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if not s.gap)

    @property
    def duration(self) -> float:
        """Where the captions end (not the audio's length: see `audio_duration`)."""
        return self.segments[-1].end if self.segments else 0.0

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": "captioner-transcript",
            "version": FORMAT_VERSION,
            "provider": self.provider,
            "source": self.source,
            "started_at": self.started_at,
        }
        if self.audio_duration is not None:
            d["audio_duration"] = _ms(self.audio_duration)
        if self.outcome:
            d["outcome"] = self.outcome
        if self.error:
            d["error"] = self.error
        if self.language is not None:
            d["language"] = self.language
        if self.options:
            d["options"] = self.options
        d["segments"] = [s.to_dict() for s in self.segments]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Transcript":
        if d.get("format") != "captioner-transcript":
            raise ValueError("not a Captioner transcript (missing format marker)")
        duration = d.get("audio_duration")
        return cls(
            segments=[Segment.from_dict(s) for s in d.get("segments", ())],
            provider=d.get("provider", ""),
            source=d.get("source", ""),
            started_at=d.get("started_at", ""),
            audio_duration=None if duration is None else float(duration),
            outcome=str(d.get("outcome", "")),
            error=str(d.get("error", "")),
            language=d.get("language"),
            options=dict(d.get("options") or {}),
        )


# How a session ended, as `Transcript.outcome` records it.
OUTCOMES = {
    "completed": "the source ran out (end of the file, --duration) and the provider finished",
    "stopped": "stopped before the source ended (Ctrl-C, SIGTERM, SIGHUP)",
    "failed": "cut off by an error (`error` holds its code)",
}
