"""Parsing of provider word-timestamp lists, whose field names and units vary
(and for some providers are disputed). One place accepts every variant."""

from __future__ import annotations

import logging
import math
from typing import Any, Iterable

from captioner.stt.events import Word
from captioner.stt.protocol import as_float

log = logging.getLogger(__name__)

_TEXT_KEYS = ("punctuated_word", "word", "text", "token")
# (start key, end key, factor to seconds)
_TIME_KEYS = (
    ("startTimeMs", "endTimeMs", 0.001),
    ("start_ms", "end_ms", 0.001),
    ("startMs", "endMs", 0.001),
    ("startTimeSeconds", "endTimeSeconds", 1.0),
    ("start_time", "end_time", None),
    ("startTime", "endTime", None),
    ("start", "end", None),
)


def parse_words(items: Any, units: str = "s") -> tuple[Word, ...]:
    """Words from a provider list. Keys that name their unit (…Ms, …Seconds) are
    taken at their word; unit-less `start`/`end` are read in `units` ("s" or "ms").
    Items without a text or time are skipped rather than guessed. A time that
    is a number but not a finite one ("NaN", "Infinity": proto3 JSON writes
    them as strings) makes the whole list's times untrustworthy: no words are
    returned, so the provider places the final (all of its text) by the
    sample clock; dropping only that word would drop it from the captions.

    Every final of every provider passes here, word by word: numbers that are
    already floats skip `as_float`, and nothing is looked up twice."""
    if not isinstance(items, list):
        return ()
    default = 0.001 if units == "ms" else 1.0
    words: list[Word] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        for k in _TEXT_KEYS:
            text = item.get(k)
            if isinstance(text, str):
                break
        else:
            continue
        for start_key, end_key, factor in _TIME_KEYS:
            if start_key not in item:  # (a membership test first: most keys are absent)
                continue
            s = item[start_key]
            if type(s) is not float:
                s = as_float(s)
            if s is not None:
                break
        else:
            if any(_non_finite(item[k]) for k, _, _ in _TIME_KEYS if k in item):
                return _untrusted()
            continue
        f = default if factor is None else factor
        e = item.get(end_key)
        if type(e) is not float:
            if e is not None and _non_finite(e):
                return _untrusted()
            e = as_float(e)
        start = s * f
        end = start if e is None else e * f
        confidence = item.get("confidence")
        if type(confidence) is not float:
            confidence = as_float(confidence)
        if "speaker" in item:
            speaker = item["speaker"]
        elif "speaker_id" in item:
            speaker = item["speaker_id"]
        else:
            speaker = item.get("speakerId")
        if speaker is not None:
            speaker = None if isinstance(speaker, (dict, list)) else str(speaker)
        words.append(Word(text.strip(), start, max(end, start), confidence, speaker))
    return tuple(words)


#: Typical spoken words last 0.05–2 s: a median word length (end − start in
#: the provider's unit-less numbers) up to this is seconds …
_SECONDS_LONGEST = 5.0
#: … and from this on, milliseconds (between the two, the words' place decides).
_MS_SHORTEST = 20.0
#: A final cannot end much after the audio sent so far: beyond this, read as
#: seconds, its unit-less times must be milliseconds.
_AHEAD_S = 2.0


def _unitless_times(items: Any) -> list[tuple[float, float]]:
    """(start, end) of each word whose times have no unit in their key (the
    key `parse_words` would read), as sent."""
    out: list[tuple[float, float]] = []
    if not isinstance(items, list):
        return out
    for item in items:
        if not isinstance(item, dict):
            continue
        for start_key, end_key, factor in _TIME_KEYS:
            if start_key not in item:
                continue
            start = as_float(item[start_key])
            if start is None:
                continue
            if factor is None and math.isfinite(start):
                end = as_float(item.get(end_key))
                out.append((start, end if end is not None and math.isfinite(end) else start))
            break
    return out


def guess_units(items: Any, audio_sent: float) -> tuple[str, bool]:
    """("s" or "ms", sure) for a word list whose times carry no unit: a
    provider that does not document its unit. Mostly the words' lengths
    tell: a word of "300" is 300 ms, one of "0.3" is 0.3 s. When they cannot
    (one-instant words, lengths in between), a time that would lie past the
    audio sent so far as seconds is milliseconds; that is not sure, so the
    next final is asked again. Nothing to go on: seconds, not sure."""
    times = _unitless_times(items)
    if not times:
        return "s", False
    lengths = sorted(end - start for start, end in times if end > start)
    if lengths:
        median = lengths[len(lengths) // 2]
        if median <= _SECONDS_LONGEST:
            return "s", True
        if median >= _MS_SHORTEST:
            return "ms", True
    latest = max(end for _, end in times)
    return ("ms" if latest > audio_sent + _AHEAD_S else "s"), False


class UnitlessWordTimes:
    """`parse_words` for one connection of a provider whose word times may
    carry no unit: `setting` "s" or "ms" as the user chose, or "auto", where
    the unit is guessed from the words (`guess_units`) until one final makes
    it sure, and then kept. A wrong unit put every caption at 0:00 (ms read as
    s are past the audio: placed by the clock) or squeezed into the first
    seconds (s read as ms)."""

    def __init__(self, setting: str) -> None:
        self.units: str | None = None if setting == "auto" else setting

    def parse(self, items: Any, audio_sent: float) -> tuple[Word, ...]:
        units = self.units
        if units is None:
            units, sure = guess_units(items, audio_sent)
            if sure:
                self.units = units
                log.info("unit-less word times read as %s (from the words' lengths)", "milliseconds" if units == "ms" else "seconds")
        return parse_words(items, units)


def _non_finite(value: Any) -> bool:
    """A number (or numeric string) that is NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    try:
        return not math.isfinite(float(value))
    except OverflowError:
        return True
    except ValueError:
        return False


def _untrusted() -> tuple[Word, ...]:
    log.warning("a provider sent a word time that is not a finite number (NaN or Infinity): "
                "that final's words are placed by the sample clock")
    return ()


def span(words: tuple[Word, ...]) -> tuple[float, float]:
    """(start, end) covered by the words: the earliest start and latest end,
    so out-of-order word lists from a provider never make a backwards cue."""
    return min(w.start for w in words), max(w.end for w in words)


def join_words(words: Iterable[Word]) -> str:
    return " ".join(w.text for w in words if w.text)


def majority_speaker(words: Iterable[Word]) -> str | None:
    """The speaker of most words, for labelling a whole segment."""
    counts: dict[str, int] = {}
    for w in words:
        if w.speaker is not None:
            counts[w.speaker] = counts.get(w.speaker, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None
