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
