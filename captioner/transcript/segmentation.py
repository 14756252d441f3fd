"""Caption cues from transcript segments, with broadcast-style limits.

Defaults follow common subtitle guidelines (e.g. the BBC's and Netflix's
timed-text style guides): at most 2 lines of at most 42 characters, reading
speed at most ~20 characters per second where the gap to the next cue allows,
cues between 0.8 s and 7 s, no overlaps. Cues are cut at word times when the
provider gave them, preferring breaks after punctuation, and lines never end
on a word that binds to the next one (an article, a preposition, a title)
when another break fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from captioner.stt.events import Word
from captioner.transcript.model import Segment

_BREAK_AFTER = (".", "?", "!", ",", ";", ":", "…")
# Words that bind to the next one: a line or cue should not end on them.
_BINDS_FORWARD = frozenset(
    """a an the of to in on at by for from with into onto about over under between
    and or but nor my your his her its our their this that these those
    mr. mrs. ms. dr. prof. st. mr mrs ms dr prof""".split()
)
# Words a new line may well start with (a clause begins).
_STARTS_CLAUSE = frozenset("and but or so because which who when while although if".split())


def _binds(word: str) -> bool:
    return word.lower() in _BINDS_FORWARD


@dataclass(frozen=True, slots=True)
class CueRules:
    max_chars_per_line: int = 42
    max_lines: int = 2
    min_duration: float = 0.8
    max_duration: float = 7.0
    max_chars_per_second: float = 20.0  # reading speed; cues are lengthened into silence to meet it


class Cue(NamedTuple):
    """One caption cue (a tuple: an 8-hour export makes ~15,000 of them, and a
    frozen dataclass is several times slower to create)."""

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
    punctuation mark when one is close. One pass over the word lengths."""
    if len(text) <= width:
        return [text]
    words = text.split()
    total = sum(map(len, words)) + len(words) - 1
    best: tuple[float, int] | None = None
    top = -1  # len(" ".join(words[:i]))
    for i in range(1, len(words)):
        top += len(words[i - 1]) + 1
        if top > width:
            break
        bottom = total - top - 1
        if bottom > width:
            continue
        score = abs(top - bottom) + (0 if bottom >= top else 2)
        if _binds(words[i - 1]):
            score += 12  # never "the | meeting", "Dr. | Smith" when another split fits
        elif words[i - 1].endswith(_BREAK_AFTER):
            score -= 8
        elif words[i].lower() in _STARTS_CLAUSE:
            score -= 4
        if best is None or score < best[0]:
            best = (score, i)
    if best is None:
        return wrap_lines(text, width)
    return [" ".join(words[: best[1]]), " ".join(words[best[1] :])]


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

    width = rules.max_chars_per_line
    # Greedy wrap of the chunk, kept as words come: greedy wrapping uses the
    # fewest lines, so "fits" is "greedy needs at most max_lines" — O(1) per word.
    lines_used, line_len, overlong = 0, 0, False

    def add(length: int) -> None:
        nonlocal lines_used, line_len, overlong
        if lines_used and line_len + 1 + length <= width:
            line_len += 1 + length
        else:
            lines_used += 1
            line_len = length
        overlong = overlong or length > width

    max_duration, max_lines = rules.max_duration, rules.max_lines
    for word in words:
        length = len(word.text)
        if chunk:
            if (
                overlong
                or (line_len + 1 + length > width and (lines_used >= max_lines or length > width))
                or word.end - chunk[0].start > max_duration
                or (word.speaker is not None and word.speaker != chunk[-1].speaker)
            ):
                # Prefer to cut after the last punctuation in the second half of the chunk.
                cut = next(
                    (
                        i + 1
                        for i in range(len(chunk) - 1, len(chunk) // 2 - 1, -1)
                        if chunk[i].text.endswith(_BREAK_AFTER) and not _binds(chunk[i].text)
                    ),
                    len(chunk),
                )
                # A cue should not end on "the", "of", "Dr.": carry such words over.
                while cut > max(1, len(chunk) // 2) and _binds(chunk[cut - 1].text):
                    cut -= 1
                rest = chunk[cut:]
                del chunk[cut:]
                flush()
                chunk.extend(rest)
                lines_used, line_len, overlong = 0, 0, False
                for w in chunk:
                    add(len(w.text))
        # add(length), inlined: this loop runs once per word of the transcript
        if lines_used and line_len + 1 + length <= width:
            line_len += 1 + length
        else:
            lines_used += 1
            line_len = length
            overlong = overlong or length > width
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
        chars = sum(map(len, cue.lines))
        reading = chars / rules.max_chars_per_second if rules.max_chars_per_second > 0 else 0.0
        end = max(cue.end, start + rules.min_duration, min(start + reading, start + rules.max_duration))
        if i + 1 < len(cues):
            end = min(end, max(cues[i + 1].start, start + 0.001))
        end = max(end, start + 0.001)
        fixed.append(Cue(start, end, cue.lines, cue.speaker))
    return fixed
