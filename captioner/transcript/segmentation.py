"""Caption cues from transcript segments, with broadcast-style limits.

Defaults follow common subtitle guidelines: at most 2 lines of at most 42
characters, cues between 0.8 s and 7 s, no overlaps. Cues are cut at word
times when the provider gave them, preferring breaks after punctuation.
"""

from __future__ import annotations

from dataclasses import dataclass

from captioner.stt.events import Word
from captioner.transcript.model import Segment

_BREAK_AFTER = (".", "?", "!", ",", ";", ":", "…")


@dataclass(frozen=True, slots=True)
class CueRules:
    max_chars_per_line: int = 42
    max_lines: int = 2
    min_duration: float = 0.8
    max_duration: float = 7.0


@dataclass(frozen=True, slots=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]
    speaker: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def wrap_lines(text: str, width: int) -> list[str]:
    """Greedy word wrap; a line breaks early after punctuation when the
    remainder still fits, so clauses stay together."""
    words = text.split()
    lines: list[str] = []
    current: list[str] = []
    for word in words:
        candidate = " ".join(current + [word])
        if current and len(candidate) > width:
            lines.append(" ".join(current))
            current = [word]
        else:
            current.append(word)
    if current:
        lines.append(" ".join(current))
    return lines


def balance_two(text: str, width: int) -> list[str]:
    """Split text that needs two lines near the middle (bottom-heavy), at a
    punctuation mark when one is close."""
    if len(text) <= width:
        return [text]
    words = text.split()
    best: tuple[float, int] | None = None
    for i in range(1, len(words)):
        top, bottom = " ".join(words[:i]), " ".join(words[i:])
        if len(top) > width or len(bottom) > width:
            continue
        score = abs(len(top) - len(bottom)) + (0 if len(bottom) >= len(top) else 2)
        if words[i - 1].endswith(_BREAK_AFTER):
            score -= 8
        if best is None or score < best[0]:
            best = (score, i)
    if best is None:
        return wrap_lines(text, width)
    return [" ".join(words[: best[1]]), " ".join(words[best[1] :])]


def _fits(words: list[str], rules: CueRules) -> bool:
    return len(balance_two(" ".join(words), rules.max_chars_per_line)) <= rules.max_lines and all(
        len(w) <= rules.max_chars_per_line for w in words
    ) or len(words) == 1


def _estimated_words(segment: Segment) -> list[Word]:
    """Word times spread by character count when the provider gave none."""
    tokens = segment.text.split()
    if not tokens:
        return []
    total = sum(len(t) + 1 for t in tokens)
    span = max(segment.end - segment.start, 0.0)
    out, at = [], segment.start
    for t in tokens:
        dur = span * (len(t) + 1) / total
        out.append(Word(t, at, at + dur, speaker=segment.speaker))
        at += dur
    return out


def cues_for_segment(segment: Segment, rules: CueRules) -> list[Cue]:
    words = list(segment.words) or _estimated_words(segment)
    if segment.gap or not words:
        return [Cue(segment.start, segment.end, (segment.text,), segment.speaker)] if segment.text else []
    cues: list[Cue] = []
    chunk: list[Word] = []

    def flush() -> None:
        if chunk:
            text = " ".join(w.text for w in chunk)
            lines = balance_two(text, rules.max_chars_per_line)
            speaker = chunk[0].speaker if chunk[0].speaker is not None else segment.speaker
            cues.append(Cue(chunk[0].start, chunk[-1].end, tuple(lines), speaker))
            chunk.clear()

    for word in words:
        if chunk:
            too_long = word.end - chunk[0].start > rules.max_duration
            texts = [w.text for w in chunk] + [word.text]
            speaker_change = word.speaker is not None and word.speaker != chunk[-1].speaker
            if too_long or speaker_change or not _fits(texts, rules):
                # Prefer to cut after the last punctuation in the second half of the chunk.
                cut = next(
                    (i + 1 for i in range(len(chunk) - 1, len(chunk) // 2 - 1, -1) if chunk[i].text.endswith(_BREAK_AFTER)),
                    len(chunk),
                )
                rest = chunk[cut:]
                del chunk[cut:]
                flush()
                chunk.extend(rest)
        chunk.append(word)
    flush()
    return cues


def build_cues(segments: list[Segment], rules: CueRules | None = None) -> list[Cue]:
    """All cues of a transcript, ordered, non-overlapping, each at least
    `min_duration` long where the next cue leaves room."""
    rules = rules or CueRules()
    cues: list[Cue] = []
    for segment in segments:
        cues.extend(cues_for_segment(segment, rules))
    cues.sort(key=lambda c: c.start)
    fixed: list[Cue] = []
    for i, cue in enumerate(cues):
        start = max(cue.start, fixed[-1].end if fixed else 0.0)
        end = max(cue.end, start + rules.min_duration)
        if i + 1 < len(cues):
            end = min(end, max(cues[i + 1].start, start + 0.001))
        end = max(end, start + 0.001)
        fixed.append(Cue(start, end, cue.lines, cue.speaker))
    return fixed
